"""Semi-supervised EM, ``EMGaussianMixture.fit(X, labels=...)`` (mclust's MclustSSC): the
labelled rows' responsibilities stay fixed, the objective never decreases, a few labels
beat no labels on overlapping classes, and bad labels are refused by name."""

import itertools
import warnings

import numpy as np
import pytest

from bayesgmm import EMGaussianMixture
from bayesgmm._em_steps import EMState, LabelledRows, Pool, e_step
from bayesgmm._gaussian import (
    LAYOUTS,
    compute_precision_cholesky,
    log_gaussian_prob,
    statistics_from_responsibilities,
)
from bayesgmm.em import ConvergenceWarning


def overlapping_classes(seed, n=600):
    """Three elongated classes side by side, 2 standard deviations apart across their
    long axis: unsupervised EM prefers to cut along the long axis."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    truth = rng.integers(0, 3, n)
    X = means[truth] + rng.multivariate_normal([0.0, 0.0], [[9.0, 0.0], [0.0, 0.6]], n)
    return X, truth


def some_labels(truth, share, seed):
    rng = np.random.default_rng(seed)
    return np.where(rng.uniform(size=truth.shape[0]) < share, truth, -1)


def best_accuracy(prediction, truth, k=3):
    """Accuracy under the best matching of components to classes (labels are arbitrary)."""
    return max(np.mean(np.array(p)[prediction] == truth) for p in itertools.permutations(range(k)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ten_percent_labels_beat_no_labels_on_overlapping_classes(seed):
    """Unsupervised EM finds about 0.65 of the classes, semi-supervised about 0.87 (the
    Bayes rate is about 0.88); the labelled fit's components are the classes themselves,
    without any matching."""
    X, truth = overlapping_classes(seed)
    labels = some_labels(truth, 0.1, seed + 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unsupervised = EMGaussianMixture(3, random_state=seed).fit(X).predict(X)
        semi = EMGaussianMixture(3, random_state=seed).fit(X, labels=labels).predict(X)
    assert np.mean(semi == truth) > best_accuracy(unsupervised, truth) + 0.1
    assert np.mean(semi == truth) > 0.8


@pytest.mark.parametrize("covariance_type", list(LAYOUTS))
def test_objective_never_decreases_and_labelled_rows_keep_their_component(covariance_type):
    X, truth = overlapping_classes(3, n=300)
    labels = some_labels(truth, 0.2, 4)
    model = EMGaussianMixture(
        3, covariance_type=covariance_type, tol=1e-10, max_iter=2000, random_state=0
    )
    assignment = model.fit_predict(X, labels=labels)
    trace = model.log_likelihood_trace_
    assert trace.size > 2
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))
    known = labels >= 0
    np.testing.assert_array_equal(assignment[known], labels[known])
    # The fit is a fixed point of semi-supervised EM: one more M-step on one-hot
    # responsibilities for the labelled rows and posterior ones for the others gives
    # back the fitted means.
    resp = model.predict_proba(X)
    resp[known] = np.eye(3)[labels[known]]
    means = resp.T @ X / resp.sum(axis=0)[:, None]
    np.testing.assert_allclose(model.means_, means, atol=1e-4)


def test_e_step_keeps_labelled_responsibilities_one_hot():
    """The E-step's statistics are those of one-hot responsibilities on the labelled rows
    and posterior ones elsewhere; its log-normaliser is the unlabelled rows' mixture
    log-likelihood plus the labelled rows' log w_y N(x | y). A labelled row placed in
    another component's cluster still counts only for its own component."""
    X, truth = overlapping_classes(5, n=120)
    labels = some_labels(truth, 0.3, 6)
    labels[0] = (truth[0] + 1) % 3  # deliberately labelled against its own cluster
    weights = np.array([0.2, 0.3, 0.5])
    means = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    covariances = np.stack([np.diag([9.0, 0.6])] * 3)
    state = EMState(weights, means, covariances, compute_precision_cholesky(covariances, "full"))
    rows = LabelledRows.split(X, labels, 3, "full")
    stats = e_step(rows, state, "full", Pool())

    log_joint = log_gaussian_prob(X, means, state.precisions_cholesky, "full") + np.log(weights)
    resp = np.exp(log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True))
    known = labels >= 0
    resp[known] = np.eye(3)[labels[known]]
    expected = statistics_from_responsibilities(X, resp, "full")
    np.testing.assert_allclose(stats.nk, expected.nk, rtol=1e-12)
    np.testing.assert_allclose(stats.sum_x, expected.sum_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.sum_xx, expected.sum_xx, rtol=1e-10, atol=1e-10)
    objective = (
        np.logaddexp.reduce(log_joint[~known], axis=1).sum() + log_joint[known, labels[known]].sum()
    )
    assert stats.log_normalizer == pytest.approx(objective, rel=1e-12)
    assert rows.shape == X.shape


def test_every_row_labelled_gives_the_class_means_and_proportions():
    """With every row labelled, EM is the M-step on the classes (discriminant analysis)."""
    X, truth = overlapping_classes(7, n=300)
    model = EMGaussianMixture(3, tol=1e-10, random_state=0).fit(X, labels=truth)
    np.testing.assert_allclose(model.weights_, np.bincount(truth) / truth.size, atol=1e-12)
    for k in range(3):
        np.testing.assert_allclose(model.means_[k], X[truth == k].mean(axis=0), atol=1e-10)
        scatter = np.cov(X[truth == k].T, bias=True)
        np.testing.assert_allclose(model.covariances_[k], scatter, rtol=1e-4)


def test_components_without_labels_are_still_fitted():
    """Labels for two of three components: the third starts among the unlabelled rows,
    far from the labelled means, and takes the remaining cluster."""
    rng = np.random.default_rng(8)
    centres = np.array([[-8.0, 0.0], [0.0, 0.0], [8.0, 0.0]])
    truth = np.repeat([0, 1, 2], 100)
    X = centres[truth] + rng.normal(size=(300, 2))
    labels = np.where((truth < 2) & (np.arange(300) % 10 == 0), truth, -1)
    model = EMGaussianMixture(3, random_state=0).fit(X, labels=labels)
    np.testing.assert_allclose(model.means_, centres, atol=0.5)


def test_no_labelled_row_is_the_ordinary_fit():
    X, _ = overlapping_classes(9, n=200)
    plain = EMGaussianMixture(3, random_state=0).fit(X)
    unlabelled = EMGaussianMixture(3, random_state=0).fit(X, labels=np.full(200, -1))
    np.testing.assert_array_equal(plain.means_, unlabelled.means_)


def test_y_is_not_read_as_labels():
    """A pipeline passes its target as y to every step: EM ignores it, as scikit-learn's."""
    X, truth = overlapping_classes(10, n=200)
    plain = EMGaussianMixture(3, random_state=0).fit(X)
    with_y = EMGaussianMixture(3, random_state=0).fit(X, truth)
    np.testing.assert_array_equal(plain.means_, with_y.means_)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (np.zeros(9, dtype=int), ValueError, r"labels: expected shape \(10,\)"),
        (np.zeros((10, 1), dtype=int), ValueError, r"labels: expected shape \(10,\)"),
        (np.full(10, 3), ValueError, r"labels: .*0\.\.2 \(n_components=3\).*value\(s\) \[3\]"),
        (np.full(10, -2), ValueError, r"labels: .*got value\(s\) \[-2\]"),
        (np.full(10, 0.5), ValueError, r"labels: .*got value\(s\) \[0\.5\]"),
        (np.array([np.nan] * 10), ValueError, "labels: .*non-finite"),
        (np.array(["a"] * 10), TypeError, "labels: expected integers"),
        (np.ones(10, dtype=bool), TypeError, "labels: expected integers"),
    ],
)
def test_bad_labels_are_refused_by_name(labels, error, match):
    X = np.random.default_rng(0).normal(size=(10, 2))
    model = EMGaussianMixture(3)
    with pytest.raises(error, match=match):
        model.fit(X, labels=labels)
    assert not hasattr(model, "params_")


def test_labels_with_dask_input_are_refused():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.random.default_rng(0).normal(size=(20, 2)), chunks=10)
    with pytest.raises(TypeError, match="labels: expected None when X is a Dask array"):
        EMGaussianMixture(2).fit(X, labels=np.zeros(20, dtype=int))
