"""Tests for EMGaussianMixture: parity with scikit-learn, EM invariants, oracles, inputs."""

import json
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import COVARIANCE_TYPES, make_mixture_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.special import logsumexp
from sklearn import mixture as sklearn_mixture

from bayesgmm import DegenerateCovarianceError, EMGaussianMixture, NotFittedError
from bayesgmm import _gaussian as g
from bayesgmm import em as em_module
from bayesgmm._kmeans import kmeans, kmeans_plusplus
from bayesgmm.em import ConvergenceWarning, DegenerateComponentWarning

K = 3


@pytest.fixture(scope="module")
def data():
    """Three anisotropic blobs far from the origin (exercises the centring)."""
    X, labels = make_mixture_data(n=400, d=3, k=K, seed=4)
    return X + 50.0, labels


def _inits(X, covariance_type, seed=1, k=K):
    """Deliberately poor but valid initial parameters: random points, unit precisions."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    precisions = {
        "full": np.stack([np.eye(d) * 0.5] * k),
        "tied": np.eye(d) * 0.5,
        "diag": np.full((k, d), 0.5),
        "spherical": np.full(k, 0.5),
    }[covariance_type]
    return {
        "weights_init": rng.dirichlet(np.ones(k) * 5),
        "means_init": X[rng.choice(X.shape[0], size=k, replace=False)],
        "precisions_init": precisions,
    }


def _fit_quiet(model, X):
    """Fit, ignoring convergence warnings (ours and scikit-learn's) that tol=0 provokes."""
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return model.fit(X)


def _full_covariances(model):
    return model.params_.full_covariances()


# ------------------------------------------------------------------ parity
# scikit-learn adds reg_covar=1e-6 in the data's units ("absolute") and stops on the absolute
# change of the mean log-likelihood ("change"): its semantics.
ABSOLUTE = {"reg_covar": 1e-6, "reg_covar_scale": "absolute", "stopping": "change"}


@pytest.mark.parametrize("max_iter", [1, 25])
def test_parity_with_sklearn(data, covariance_type, max_iter):
    X, _ = data
    kwargs = dict(
        covariance_type=covariance_type, tol=0.0, max_iter=max_iter, **_inits(X, covariance_type)
    )
    ours = _fit_quiet(EMGaussianMixture(K, **kwargs, **ABSOLUTE), X)
    ref = _fit_quiet(sklearn_mixture.GaussianMixture(K, **kwargs), X)
    rtol = 1e-8
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=rtol)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=rtol)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=rtol)
    np.testing.assert_allclose(ours.aic(X), ref.aic(X), rtol=rtol)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=rtol)
    np.testing.assert_allclose(ours.log_likelihood_trace_, ref.lower_bounds_, rtol=rtol)
    assert ours.n_iter_ == ref.n_iter_ == max_iter
    assert ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-7)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-8)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_parity_with_sklearn_convergence_semantics(data):
    """With tol > 0 both stop at the same iteration and report convergence."""
    X, _ = data
    kwargs = dict(tol=1e-5, max_iter=500, **_inits(X, "full"))
    ours = EMGaussianMixture(K, **kwargs, **ABSOLUTE).fit(X)
    ref = sklearn_mixture.GaussianMixture(K, **kwargs).fit(X)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-8)


def test_e_step_kernel_matches_scipy_and_ignores_threads(covariance_type):
    """The one E-step kernel against a scipy oracle; threads change nothing, bitwise."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    resp = rng.dirichlet(np.ones(3), size=3000)
    s = g.statistics_from_responsibilities(X, resp, covariance_type)
    w, mu, cov = g.covariances_from_statistics(s, 1e-6)
    chol = g.compute_precision_cholesky(cov, covariance_type)
    eta, const = g.natural_parameters(mu, chol, covariance_type)
    logw = np.log(w)
    full = g.full_covariances(cov, covariance_type, 3, 4)
    log_joint = np.column_stack(
        [stats.multivariate_normal(mu[k], full[k]).logpdf(X) + logw[k] for k in range(3)]
    )
    oracle_resp = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    resp_out = np.empty((3000, 3))
    ours = g.e_step_statistics(
        X, logw, eta, const, covariance_type, chunk_size=700, resp_out=resp_out
    )
    np.testing.assert_allclose(resp_out, oracle_resp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.nk, oracle_resp.sum(axis=0), rtol=1e-11)
    np.testing.assert_allclose(ours.sum_x, oracle_resp.T @ X, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ours.log_normalizer, logsumexp(log_joint, axis=1).sum(), rtol=1e-12)
    with ThreadPoolExecutor(2) as pool:
        threaded = g.e_step_statistics(
            X, logw, eta, const, covariance_type, chunk_size=700, executor=pool, n_workers=2
        )
    np.testing.assert_array_equal(threaded.sum_xx, ours.sum_xx)
    assert threaded.log_normalizer == ours.log_normalizer


# --------------------------------------------------------------- invariants


def test_log_likelihood_never_decreases(data, covariance_type):
    X, _ = data
    model = EMGaussianMixture(
        4,
        covariance_type=covariance_type,
        init_params="random",
        tol=0.0,
        max_iter=60,
        random_state=3,
    )
    trace = _fit_quiet(model, X).log_likelihood_trace_
    assert trace.shape == (60,)
    steps = np.diff(trace)
    assert np.all(steps >= -1e-10 * np.abs(trace[:-1])), steps.min()
    assert trace[-1] > trace[0]  # it did move


def test_score_samples_matches_scipy(data, covariance_type):
    X, _ = data
    model = EMGaussianMixture(K, covariance_type=covariance_type, random_state=0).fit(X)
    full = _full_covariances(model)
    log_comp = np.column_stack(
        [stats.multivariate_normal(model.means_[k], full[k]).logpdf(X) for k in range(K)]
    )
    expected = logsumexp(log_comp + np.log(model.weights_), axis=1)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(model.score(X), expected.mean(), rtol=1e-10)
    resp = np.exp(log_comp + np.log(model.weights_) - expected[:, None])
    np.testing.assert_allclose(model.predict_proba(X), resp, rtol=1e-8, atol=1e-12)


def _one_m_step(X, covariance_type, reg_covar=1e-6):
    """One EM iteration from known parameters, and the responsibilities it used (oracle).

    The model adds ``reg_covar`` times each feature's variance (the default scale).
    """
    inits = _inits(X, covariance_type, seed=2)
    model = _fit_quiet(
        EMGaussianMixture(
            K, covariance_type=covariance_type, max_iter=1, reg_covar=reg_covar, **inits
        ),
        X,
    )
    precisions = inits["precisions_init"]
    d = X.shape[1]
    covs = {
        "full": lambda: np.linalg.inv(precisions),
        "tied": lambda: np.broadcast_to(np.linalg.inv(precisions), (K, d, d)),
        "diag": lambda: np.stack([np.diag(1 / p) for p in precisions]),
        "spherical": lambda: np.stack([np.eye(d) / p for p in precisions]),
    }[covariance_type]()
    log_comp = np.column_stack(
        [stats.multivariate_normal(inits["means_init"][k], covs[k]).logpdf(X) for k in range(K)]
    ) + np.log(inits["weights_init"])
    resp = np.exp(log_comp - logsumexp(log_comp, axis=1, keepdims=True))
    return model, resp


def _weighted_full(X, resp):
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, None]
    covs = np.stack(
        [(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] for k in range(K)]
    )
    return nk, means, covs


def test_full_m_step_is_weighted_covariance(data):
    X, _ = data
    model, resp = _one_m_step(X, "full")
    _, means, covs = _weighted_full(X, resp)
    np.testing.assert_allclose(model.reg_covar_, model.reg_covar * X.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.means_, means, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, covs + np.diag(model.reg_covar_), rtol=1e-9)


def test_tied_equals_pooled_full(data):
    X, _ = data
    model, resp = _one_m_step(X, "tied")
    nk, means, covs = _weighted_full(X, resp)
    pooled = np.einsum("k,kij->ij", nk, covs) / nk.sum()
    np.testing.assert_allclose(model.means_, means, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, pooled + np.diag(model.reg_covar_), rtol=1e-9)


def test_diag_equals_diagonal_of_full(data):
    X, _ = data
    model, resp = _one_m_step(X, "diag")
    _, _, covs = _weighted_full(X, resp)
    expected = np.diagonal(covs, axis1=1, axis2=2) + model.reg_covar * X.var(axis=0)
    np.testing.assert_allclose(model.covariances_, expected, rtol=1e-9)


def test_spherical_is_mean_of_diagonal(data):
    X, _ = data
    model, resp = _one_m_step(X, "spherical")
    _, _, covs = _weighted_full(X, resp)
    expected = (
        np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + model.reg_covar * X.var(axis=0).mean()
    )
    np.testing.assert_allclose(model.covariances_, expected, rtol=1e-9)
    np.testing.assert_allclose(model.reg_covar_, np.full(3, model.reg_covar * X.var(axis=0).mean()))


def test_fit_predict_equals_fit_then_predict(data, covariance_type):
    X, _ = data
    kwargs = dict(covariance_type=covariance_type, random_state=7, max_iter=3, tol=0.0)
    labels = _fit_quiet_predict(EMGaussianMixture(K, **kwargs), X)
    model = _fit_quiet(EMGaussianMixture(K, **kwargs), X)
    np.testing.assert_array_equal(labels, model.predict(X))


def _fit_quiet_predict(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit_predict(X)


def test_score_is_invariant_to_row_order(data):
    X, _ = data
    perm = np.random.default_rng(0).permutation(X.shape[0])
    model = EMGaussianMixture(K, random_state=0).fit(X)
    np.testing.assert_allclose(model.score(X[perm]), model.score(X), rtol=1e-13)
    np.testing.assert_allclose(
        model.score_samples(X[perm]), model.score_samples(X)[perm], rtol=1e-13
    )
    # Fitting on reordered rows from the same start gives the same mixture.
    kwargs = dict(tol=0.0, max_iter=20, **_inits(X, "full"))
    a = _fit_quiet(EMGaussianMixture(K, **kwargs), X)
    b = _fit_quiet(EMGaussianMixture(K, **kwargs), X[perm])
    np.testing.assert_allclose(a.score(X), b.score(X), rtol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9)


def test_sample_shapes_labels_and_moments(data):
    X, _ = data
    model = EMGaussianMixture(K, random_state=0).fit(X)
    Xs, labels = model.sample(30_000, random_state=1)
    assert Xs.shape == (30_000, 3) and labels.shape == (30_000,)
    assert set(np.unique(labels)) <= set(range(K))
    counts = np.bincount(labels, minlength=K)
    sd = np.sqrt(30_000 * model.weights_ * (1 - model.weights_))
    assert np.all(np.abs(counts - 30_000 * model.weights_) < 5 * sd)
    for k in range(K):
        draws = Xs[labels == k]
        se = np.sqrt(np.diag(model.covariances_[k]) / len(draws))
        assert np.all(np.abs(draws.mean(axis=0) - model.means_[k]) < 5 * se)
        np.testing.assert_allclose(
            np.cov(draws, rowvar=False),
            model.covariances_[k],
            rtol=0.15,
            atol=0.1 * np.abs(model.covariances_[k]).max(),
        )
    a, _ = model.sample(5, random_state=3)
    b, _ = model.sample(5, random_state=3)
    np.testing.assert_array_equal(a, b)


def test_same_seed_is_bitwise_reproducible(data, covariance_type):
    X, _ = data
    kwargs = dict(covariance_type=covariance_type, n_init=2, random_state=11)
    a = EMGaussianMixture(K, **kwargs).fit(X)
    b = EMGaussianMixture(K, **kwargs).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    np.testing.assert_array_equal(a.log_likelihood_trace_, b.log_likelihood_trace_)


def test_n_init_keeps_the_best_lower_bound(data):
    X, _ = data
    kwargs = dict(init_params="random", random_state=5, max_iter=30, tol=1e-8)
    one = _fit_quiet(EMGaussianMixture(K, n_init=1, **kwargs), X)
    five = _fit_quiet(EMGaussianMixture(K, n_init=5, **kwargs), X)
    # The first of the five initialisations is the single one (same random stream).
    assert five.lower_bound_ >= one.lower_bound_


def test_warm_start_continues_from_last_solution(data):
    X, _ = data
    inits = _inits(X, "full")
    straight = _fit_quiet(EMGaussianMixture(K, tol=0.0, max_iter=10, **inits), X)
    warm = EMGaussianMixture(K, tol=0.0, max_iter=5, warm_start=True, **inits)
    _fit_quiet(warm, X)
    _fit_quiet(warm, X)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-10)
    np.testing.assert_allclose(warm.score(X), straight.score(X), rtol=1e-12)


def test_convergence_warning_when_not_converged(data):
    X, _ = data
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        EMGaussianMixture(K, tol=0.0, max_iter=2, random_state=0).fit(X)


def test_max_iter_zero_keeps_initial_parameters(data):
    X, _ = data
    inits = _inits(X, "diag")
    model = EMGaussianMixture(K, covariance_type="diag", max_iter=0, **inits).fit(X)
    np.testing.assert_allclose(model.means_, inits["means_init"], rtol=1e-14)
    np.testing.assert_allclose(model.precisions_, inits["precisions_init"], rtol=1e-12)
    assert model.n_iter_ == 0


# ---------------------------------------------------------- initialisation


def _scale_trap(seed):
    """Three clusters along feature 0; feature 1 is pure noise 1000 times wider."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 600)
    return np.column_stack(
        [
            np.array([-4.0, 0.0, 4.0])[labels] + rng.normal(size=600),
            rng.normal(scale=1000.0, size=600),
        ]
    )


def _small_cluster_trap(seed):
    """Two big round clusters and a small tight one off to the side."""
    rng = np.random.default_rng(seed)
    return np.vstack(
        [
            rng.normal([0, 0], 3, size=(500, 2)),
            rng.normal([12, 0], 3, size=(500, 2)),
            rng.normal([6, 15], 0.3, size=(15, 2)),
        ]
    )


@pytest.mark.parametrize("make", [_scale_trap, _small_cluster_trap])
def test_kmeans_short_em_init_beats_sklearn_single_kmeans(make):
    X = make(0)
    ours = np.array(
        [
            EMGaussianMixture(3, random_state=s, init_params="kmeans", tol=1e-3, **ABSOLUTE)
            .fit(X)
            .score(X)
            for s in range(5)
        ]
    )
    theirs = np.array(
        [sklearn_mixture.GaussianMixture(3, random_state=s).fit(X).score(X) for s in range(5)]
    )
    best = max(ours.max(), theirs.max())
    # tol=1e-3 on the mean log-likelihood bounds how far a converged run can sit below.
    assert np.all(ours > best - 5e-3), ours
    # The data are a real trap: some scikit-learn start ends in a worse optimum.
    assert np.any(theirs < best - 2e-2), theirs


@pytest.mark.parametrize("init_params", ["k-means++", "random", "random_from_data"])
def test_other_init_params_run(data, init_params):
    X, _ = data
    model = EMGaussianMixture(K, init_params=init_params, random_state=0, max_iter=300).fit(X)
    assert model.converged_ and np.isfinite(model.score(X))


def test_kmeans_helpers():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = rng.integers(0, 3, 300)
    X = centers[truth] + rng.normal(scale=0.5, size=(300, 2))
    seeds, idx = kmeans_plusplus(X, 3, np.random.default_rng(1))
    assert len(set(idx.tolist())) == 3
    np.testing.assert_array_equal(seeds, X[idx])
    result = kmeans(X, 3, np.random.default_rng(2))
    # Same partition as the truth up to relabelling.
    contingency = np.zeros((3, 3), int)
    np.add.at(contingency, (truth, result.labels), 1)
    assert (contingency.max(axis=1) == np.bincount(truth)).all()
    manual = sum(((X[result.labels == k] - result.centers[k]) ** 2).sum() for k in range(3))
    np.testing.assert_allclose(result.inertia, manual, rtol=1e-10)


# -------------------------------------------------------------- degeneracy


def test_degenerate_component_is_flagged_and_bic_is_inf():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(200, 2)), np.tile([[8.0, 8.0]], (30, 1))])
    model = EMGaussianMixture(2, means_init=[[0.0, 0.0], [8.0, 8.0]], random_state=0)
    with pytest.warns(DegenerateComponentWarning, match="reg_covar"):
        model.fit(X)
    np.testing.assert_array_equal(model.degenerate_components_, [1])
    assert model.bic(X) == np.inf and model.aic(X) == np.inf and model.icl(X) == np.inf
    # The inflated likelihood would otherwise win: one Gaussian has a lower score.
    single = EMGaussianMixture(1).fit(X)
    assert single.degenerate_components_.size == 0
    assert np.isfinite(single.bic(X)) and model.score(X) > single.score(X)


def test_too_few_points_is_degenerate():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(100, 3)), [[30.0, 30.0, 30.0], [31.0, 29.0, 30.5]]])
    model = EMGaussianMixture(2, means_init=[[0, 0, 0], [30.5, 29.5, 30.2]])
    with pytest.warns(DegenerateComponentWarning):
        model.fit(X)
    assert model.degenerate_components_.tolist() == [1]


@pytest.mark.parametrize("reg_covar", [1e-6, 1e-2])
def test_reg_covar_attribute_is_what_the_m_step_added(data, covariance_type, reg_covar):
    """reg_covar_ is reg_covar * var_j ("variance", the default) or reg_covar ("absolute")."""
    X, _ = data
    X = X * [1e-3, 1.0, 1e3]  # features in very different units
    variance = X.var(axis=0)
    kwargs = dict(covariance_type=covariance_type, reg_covar=reg_covar, random_state=0)
    model = EMGaussianMixture(K, **kwargs).fit(X)
    expected = reg_covar * (variance.mean() if covariance_type == "spherical" else variance)
    np.testing.assert_allclose(model.reg_covar_, np.broadcast_to(expected, (3,)), rtol=1e-12)
    assert model.get_params()["reg_covar_scale"] == "variance"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # absolute 1e-2 swamps feature 0
        absolute = EMGaussianMixture(K, reg_covar_scale="absolute", **kwargs).fit(X)
    np.testing.assert_array_equal(absolute.reg_covar_, np.full(3, reg_covar))
    assert repr(absolute).endswith("reg_covar_scale='absolute', random_state=0)")


def test_singular_covariance_is_a_clear_error():
    X = np.column_stack([np.arange(10.0), np.ones(10)])
    with pytest.raises(DegenerateCovarianceError, match="reg_covar"):
        EMGaussianMixture(1, reg_covar=0.0).fit(X)


def test_well_separated_fit_has_no_degenerate_components(data):
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateComponentWarning)
        model = EMGaussianMixture(K, random_state=0).fit(X)
    assert model.degenerate_components_.size == 0
    assert model.degenerate_components_.dtype.kind == "i"


def test_icl_entropy_is_bic_plus_twice_entropy(data):
    X, _ = data
    model = EMGaussianMixture(K, random_state=0).fit(X)
    resp = model.predict_proba(X)
    entropy = -np.sum(resp * np.log(np.clip(resp, 1e-300, None)))
    icl = model.icl(X, kind="entropy")
    np.testing.assert_allclose(icl, model.bic(X) + 2 * entropy, rtol=1e-12)
    assert icl >= model.icl(X) >= model.bic(X)


# ------------------------------------------------------------------- input


def test_integer_input_works():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.integers(0, 10, (50, 2)), rng.integers(40, 50, (50, 2))])
    model = EMGaussianMixture(2, random_state=0).fit(X)
    assert np.isfinite(model.score(X))
    assert sorted(np.bincount(model.predict(X)).tolist()) == [50, 50]


def test_dataframe_keeps_feature_names(data):
    X, _ = data
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    model = EMGaussianMixture(K, random_state=0).fit(df)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert model.n_features_in_ == 3
    np.testing.assert_allclose(model.score_samples(df), model.score_samples(X))
    model.fit(X)
    assert not hasattr(model, "feature_names_in_")


@pytest.mark.parametrize(
    ("X", "exc"),
    [
        (np.arange(10.0), ValueError),
        (np.array([[np.nan, np.nan], [2.0, 3.0], [1.0, 1.0]]), ValueError),
        (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), ValueError),
        (np.empty((0, 2)), ValueError),
        ([["a", "b"], ["c", "d"]], TypeError),
        (np.ones((5, 2)) + 1j, TypeError),
        (np.array([[object(), 1.0], [2.0, 3.0]], dtype=object), TypeError),
        ("not an array", TypeError),
    ],
    ids=["1d", "all-NaN row", "inf", "empty", "strings", "complex", "object", "str"],
)
def test_bad_X_is_rejected(X, exc):
    model = EMGaussianMixture(1)
    with pytest.raises(exc, match=r"^X: expected"):
        model.fit(X)
    assert not hasattr(model, "params_")


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match=r"^X: expected at least n_components=3"):
        EMGaussianMixture(3).fit(np.ones((2, 2)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": 2.5}, TypeError, "n_components"),
        ({"n_components": "2"}, TypeError, "n_components"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"tol": "small"}, TypeError, "tol"),
        ({"tol": np.nan}, ValueError, "tol"),
        ({"reg_covar": -1e-6}, ValueError, "reg_covar"),
        ({"reg_covar": None}, TypeError, "reg_covar"),
        ({"reg_covar_scale": "relative"}, ValueError, "reg_covar_scale"),
        ({"reg_covar_scale": "Variance"}, ValueError, "reg_covar_scale"),
        ({"reg_covar_scale": None}, TypeError, "reg_covar_scale"),
        ({"reg_covar_scale": 1.0}, TypeError, "reg_covar_scale"),
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"max_iter": 10.0}, TypeError, "max_iter"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"n_init": True}, TypeError, "n_init"),
        ({"covariance_type": "banana"}, ValueError, "covariance_type"),
        ({"covariance_type": 1}, TypeError, "covariance_type"),
        ({"init_params": "kmeans++"}, ValueError, "init_params"),
        ({"init_params": None}, TypeError, "init_params"),
        ({"random_state": -1}, ValueError, "random_state"),
        ({"random_state": "seed"}, TypeError, "random_state"),
        ({"warm_start": "yes"}, TypeError, "warm_start"),
        ({"verbose": -1}, ValueError, "verbose"),
        ({"verbose_interval": 0}, ValueError, "verbose_interval"),
        ({"weights_init": [0.5, 0.5]}, ValueError, "weights_init"),
        ({"weights_init": [0.5, 0.2, 0.2]}, ValueError, "weights_init"),
        ({"weights_init": [1.5, -0.25, -0.25]}, ValueError, "weights_init"),
        ({"weights_init": ["a", "b", "c"]}, TypeError, "weights_init"),
        ({"means_init": np.zeros((3, 3))}, ValueError, "means_init"),
        ({"means_init": np.full((3, 2), np.nan)}, ValueError, "means_init"),
        ({"precisions_init": np.ones((3, 2))}, ValueError, "precisions_init"),
        ({"precisions_init": np.stack([-np.eye(2)] * 3)}, ValueError, "precisions_init"),
        (
            {"precisions_init": np.stack([[[1.0, 2.0], [0.0, 1.0]]] * 3)},
            ValueError,
            "precisions_init",
        ),
    ],
)
def test_bad_parameters_are_rejected(kwargs, exc, name):
    X = make_mixture_data(n=60, d=2, k=3, seed=0)[0]
    params = {"n_components": 3, **kwargs}
    model = EMGaussianMixture(**params)
    with pytest.raises(exc, match=rf"^{name}: expected"):
        model.fit(X)
    assert not hasattr(model, "params_")
    assert model.get_params()[next(iter(kwargs))] is kwargs[next(iter(kwargs))]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_init_shape_checked_per_type(covariance_type):
    X = make_mixture_data(n=60, d=2, k=3, seed=0)[0]
    wrong = np.ones((7,))
    with pytest.raises(ValueError, match=r"^precisions_init: expected shape"):
        EMGaussianMixture(3, covariance_type=covariance_type, precisions_init=wrong).fit(X)


def test_methods_need_a_fitted_model():
    model = EMGaussianMixture(2)
    for method in ("predict", "predict_proba", "score", "score_samples", "bic", "aic", "icl"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(model, method)(np.ones((3, 2)))
    with pytest.raises(NotFittedError):
        model.sample(3)


def test_wrong_number_of_features_at_predict(data):
    X, _ = data
    model = EMGaussianMixture(K, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"^X: expected 3 feature\(s\)"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"^n_samples: expected"):
        model.sample(0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    X=st.integers(1, 3).flatmap(
        lambda d: hnp.arrays(
            np.float64,
            st.tuples(st.integers(6, 40), st.just(d)),
            elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        )
    ),
    n_components=st.integers(1, 3),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
)
def test_valid_inputs_fit_and_score_finite(X, n_components, covariance_type):
    model = EMGaussianMixture(
        n_components, covariance_type=covariance_type, random_state=0, max_iter=20
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        model.fit(X)
    assert np.isfinite(model.score(X))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)


# ------------------------------------------------- estimator conventions, io


def test_get_set_params_clone_and_repr():
    from sklearn.base import clone

    model = EMGaussianMixture(3, covariance_type="diag", tol=1e-4)
    assert model.get_params()["covariance_type"] == "diag"
    assert repr(model) == "EMGaussianMixture(3, covariance_type='diag', tol=0.0001)"
    assert repr(EMGaussianMixture()) == "EMGaussianMixture()"
    assert model.set_params(n_init=2) is model and model.n_init == 2
    with pytest.raises(ValueError, match="^params: expected"):
        model.set_params(bogus=1)
    copy = clone(model)
    assert copy.get_params() == model.get_params()


def test_constructor_only_stores_arguments():
    means = [[0.0], [1.0]]
    model = EMGaussianMixture(2, means_init=means, tol="nonsense")  # validated at fit
    assert model.means_init is means and model.tol == "nonsense"
    with pytest.raises(TypeError, match=r"^EMGaussianMixture.__init__\(\) takes"):
        EMGaussianMixture(2, "full")


def test_docstring_examples_run():
    import doctest

    from bayesgmm import _kmeans

    for module in (em_module, _kmeans):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted > 0


def test_export_import_round_trip(data):
    X, _ = data
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    model = EMGaussianMixture(K, covariance_type="tied", random_state=np.random.default_rng(0))
    model.fit(df)
    state = json.loads(json.dumps(model._export_state()))
    assert state["class"] == "EMGaussianMixture"
    assert state["params"]["covariance_type"] == "tied"
    again = EMGaussianMixture._import_state(state)
    np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert again.bic(X) == model.bic(X)
    assert list(again.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(again.degenerate_components_, model.degenerate_components_)


def test_save_and_load_round_trip(data, tmp_path):
    import bayesgmm

    X, _ = data
    model = EMGaussianMixture(K, covariance_type="diag", random_state=0).fit(X)
    path = tmp_path / "em-model"
    model.save(path)
    loaded = bayesgmm.load(path)
    assert isinstance(loaded, EMGaussianMixture)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.get_params() == model.get_params()
