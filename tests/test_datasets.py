import numpy as np
import pytest

from bayesgmm.datasets import (
    load_faithful,
    make_mixture,
    make_moons,
    make_stretched_blobs,
    mixture_separation,
)
from bayesgmm.params import GaussianMixtureParams

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


# ------------------------------------------------------------------ Old Faithful
def test_faithful_matches_r_datasets_faithful():
    X = load_faithful()
    assert X.shape == (272, 2)
    assert X.dtype == np.float64
    assert X[0].tolist() == [3.6, 79.0]
    assert X[-1].tolist() == [4.467, 74.0]
    # Summary figures of R's datasets::faithful (mean, sd with n - 1).
    np.testing.assert_allclose(X.mean(axis=0), [3.487783, 70.897059], atol=5e-7)
    np.testing.assert_allclose(X.std(axis=0, ddof=1), [1.141371, 13.594974], atol=5e-7)
    np.testing.assert_allclose(X.min(axis=0), [1.6, 43.0])
    np.testing.assert_allclose(X.max(axis=0), [5.1, 96.0])
    # Waiting times are whole minutes.
    assert np.array_equal(X[:, 1], np.round(X[:, 1]))


def test_faithful_as_frame():
    frame = load_faithful(as_frame=True)
    assert frame.columns.tolist() == ["eruptions", "waiting"]
    np.testing.assert_array_equal(frame.to_numpy(), load_faithful())


def test_faithful_rejects_non_boolean_flag():
    with pytest.raises(TypeError, match="as_frame"):
        load_faithful(as_frame="yes")


# ---------------------------------------------------------------- make_mixture
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_make_mixture_shapes_and_exact_separation(covariance_type):
    X, labels, params = make_mixture(
        200, 4, 3, covariance_type=covariance_type, separation=1.25, random_state=3
    )
    assert X.shape == (200, 3)
    assert labels.shape == (200,)
    assert set(np.unique(labels)) <= set(range(4))
    assert isinstance(params, GaussianMixtureParams)
    assert params.covariance_type == covariance_type
    assert (params.n_components, params.n_features) == (4, 3)
    assert mixture_separation(params) == pytest.approx(1.25, rel=1e-12)
    eigenvalues = np.linalg.eigvalsh(params.full_covariances())
    assert eigenvalues.min() >= 0.2 - 1e-12
    assert eigenvalues.max() <= 1.0 + 1e-12


def test_make_mixture_is_reproducible_and_seed_dependent():
    a = make_mixture(100, random_state=7)
    b = make_mixture(100, random_state=7)
    c = make_mixture(100, random_state=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2].means, b[2].means)
    assert not np.array_equal(a[0], c[0])


def test_make_mixture_points_follow_their_component():
    # Each component's sample mean sits within 5 standard errors of its true mean
    # (false-failure probability per coordinate about 6e-7).
    X, labels, params = make_mixture(6000, 3, 2, separation=2.0, random_state=11)
    covs = params.full_covariances()
    for k in range(3):
        Xk = X[labels == k]
        se = np.sqrt(np.diag(covs[k]) / len(Xk))
        assert np.all(np.abs(Xk.mean(axis=0) - params.means[k]) < 5 * se)
    counts = np.bincount(labels, minlength=3)
    # Multinomial counts: within 5 binomial standard deviations of n * w.
    sd = np.sqrt(6000 * params.weights * (1 - params.weights))
    assert np.all(np.abs(counts - 6000 * params.weights) < 5 * sd)


def test_make_mixture_given_weights_and_single_component():
    _, labels, params = make_mixture(50, 2, weights=[3, 1], random_state=0)
    np.testing.assert_allclose(params.weights, [0.75, 0.25])
    X, labels, params = make_mixture(30, 1, 2, random_state=0)
    assert np.all(labels == 0)
    np.testing.assert_array_equal(params.means, np.zeros((1, 2)))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.5}, TypeError, "n_samples"),
        ({"n_components": 0}, ValueError, "n_components"),
        ({"covariance_type": "banana"}, ValueError, "covariance_type"),
        ({"separation": 0.0}, ValueError, "separation"),
        ({"separation": float("nan")}, ValueError, "separation"),
        ({"weights": [1.0, -1.0, 1.0]}, ValueError, "weights"),
        ({"weights": [1.0, 1.0]}, ValueError, "weights"),
        ({"random_state": "seed"}, TypeError, "random_state"),
    ],
)
def test_make_mixture_rejects_bad_arguments(kwargs, error, name):
    args = {"n_samples": 10, **kwargs}
    with pytest.raises(error, match=name):
        make_mixture(**args)


def test_make_mixture_parameters_are_recovered_by_em():
    from bayesgmm import em

    X, labels, truth = make_mixture(3000, 3, 2, separation=3.0, random_state=5)
    model = em.EMGaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    fitted = model.params_
    # Match fitted to true components by nearest mean.
    order = [int(np.argmin(np.linalg.norm(fitted.means - m, axis=1))) for m in truth.means]
    assert sorted(order) == [0, 1, 2]
    fitted = fitted.permuted(order)
    # Tolerances: a few standard errors at n_k ~ 1000 with unit-scale covariances.
    np.testing.assert_allclose(fitted.weights, truth.weights, atol=0.05)
    np.testing.assert_allclose(fitted.means, truth.means, atol=0.15)
    np.testing.assert_allclose(fitted.covariances, truth.covariances, atol=0.15)
    # True component l is fitted component order[l].
    assert (model.predict(X) == np.asarray(order)[labels]).mean() > 0.98


# ------------------------------------------------------------------ other shapes
def test_stretched_blobs_are_elongated_by_the_stretch_factor():
    X, labels = make_stretched_blobs(3000, 3, stretch=6.0, random_state=1)
    assert X.shape == (3000, 2)
    assert np.bincount(labels).tolist() == [1000, 1000, 1000]
    for k in range(3):
        eig = np.linalg.eigvalsh(np.cov(X[labels == k].T))
        # Axis ratio sqrt(36) = 6; sample estimate from 1000 points within 10%.
        assert np.sqrt(eig[1] / eig[0]) == pytest.approx(6.0, rel=0.1)


def test_moons_lie_on_two_half_circles():
    X, labels = make_moons(401, noise=0.0, random_state=2)
    assert X.shape == (401, 2)
    assert np.bincount(labels).tolist() == [201, 200]
    upper, lower = X[labels == 0], X[labels == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert upper[:, 1].min() >= 0.0
    assert lower[:, 1].max() <= 0.5
    a, _ = make_moons(50, random_state=4)
    b, _ = make_moons(50, random_state=4)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("func", "kwargs", "name"),
    [
        (make_moons, {"noise": -1.0}, "noise"),
        (make_moons, {"n_samples": 0}, "n_samples"),
        (make_stretched_blobs, {"stretch": 0.5}, "stretch"),
        (make_stretched_blobs, {"n_components": 0}, "n_components"),
    ],
)
def test_shape_generators_reject_bad_arguments(func, kwargs, name):
    with pytest.raises(ValueError, match=name):
        func(**kwargs)
