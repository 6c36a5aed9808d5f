"""Oracle tests for the shared Gaussian maths and the parameter type."""

import numpy as np
import pytest
from scipy import stats

from bayesgmm import GaussianMixtureParams
from bayesgmm import _gaussian as g


def _params(covariance_type, seed=0, k=3, d=4, offset=50.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 2 + offset
    A = rng.normal(size=(k, d, d))
    full = A @ A.transpose(0, 2, 1) + np.eye(d)
    cov = {
        "full": full,
        "tied": full[0],
        "diag": np.stack([np.diag(c) for c in full]),
        "spherical": np.arange(1.0, k + 1),
    }[covariance_type]
    w = rng.dirichlet(np.ones(k))
    return GaussianMixtureParams(w, means, cov, covariance_type)


def test_log_densities_match_scipy(covariance_type):
    p = _params(covariance_type)
    X = np.random.default_rng(1).normal(size=(300, 4)) * 3 + 50
    full = p.full_covariances()
    expected = np.column_stack(
        [stats.multivariate_normal(p.means[k], full[k]).logpdf(X) for k in range(3)]
    )
    np.testing.assert_allclose(p.log_component_densities(X), expected, rtol=1e-11)
    mixture = np.log(np.exp(expected) @ p.weights)
    np.testing.assert_allclose(p.score_samples(X), mixture, rtol=1e-11)
    np.testing.assert_allclose(p.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)


def test_chunked_statistics_equal_one_pass(covariance_type):
    p = _params(covariance_type)
    X = np.random.default_rng(2).normal(size=(1000, 4)) + 50
    center = p.means.mean(axis=0)
    eta, const = g.natural_parameters(p.means - center, p.precisions_cholesky, covariance_type)
    logw = np.log(p.weights)
    whole = g.e_step_statistics(X - center, logw, eta, const, covariance_type, chunk_size=1000)
    parts = g.SufficientStatistics.zeros(3, 4, covariance_type)
    for rows in np.array_split(np.arange(1000), 7):
        parts = parts + g.e_step_statistics(X[rows] - center, logw, eta, const, covariance_type)
    for a, b in [(whole.nk, parts.nk), (whole.sum_x, parts.sum_x), (whole.sum_xx, parts.sum_xx)]:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(whole.log_normalizer, p.score_samples(X).sum(), rtol=1e-12)
    resp = p.predict_proba(X)
    direct = g.statistics_from_responsibilities(X - center, resp, covariance_type)
    np.testing.assert_allclose(whole.sum_xx, direct.sum_xx, rtol=1e-10, atol=1e-8)


def test_m_step_matches_weighted_moments():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    resp = rng.dirichlet(np.ones(2), size=400)
    stats_ = g.statistics_from_responsibilities(X, resp, "full")
    w, mu, cov = g.covariances_from_statistics(stats_, reg_covar=0.0)
    for k in range(2):
        expected = np.cov(X.T, aweights=resp[:, k], bias=True)
        np.testing.assert_allclose(cov[k], expected, rtol=1e-10)
        np.testing.assert_allclose(mu[k], np.average(X, axis=0, weights=resp[:, k]), rtol=1e-12)
    np.testing.assert_allclose(w, resp.mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_m_step_adds_a_per_feature_reg_covar_to_the_diagonal(covariance_type):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3))
    resp = rng.dirichlet(np.ones(2), size=300)
    stats_ = g.statistics_from_responsibilities(X, resp, covariance_type)
    _, _, bare = g.covariances_from_statistics(stats_, 0.0)
    reg = np.array([1e-3, 2e-2, 5e-1])
    _, _, cov = g.covariances_from_statistics(stats_, reg)
    added = {
        "full": lambda: np.broadcast_to(np.diag(reg), bare.shape),
        "tied": lambda: np.diag(reg),
        "diag": lambda: np.broadcast_to(reg, bare.shape),
        "spherical": lambda: np.full(bare.shape, reg.mean()),  # mean of the regularised diagonal
    }[covariance_type]()
    np.testing.assert_allclose(cov - bare, added, rtol=1e-10, atol=1e-15)
    # A vector of equal amounts is the scalar, bit for bit (scikit-learn's case).
    _, _, scalar = g.covariances_from_statistics(stats_, 1e-3)
    _, _, vector = g.covariances_from_statistics(stats_, np.full(3, 1e-3))
    np.testing.assert_array_equal(scalar, vector)
    with pytest.raises(ValueError, match=r"^reg_covar: expected"):
        g.covariances_from_statistics(stats_, np.ones(2))


def test_singular_covariance_is_a_clear_error():
    cov = np.array([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(g.DegenerateCovarianceError, match=r"component\(s\) \[0\].*reg_covar"):
        GaussianMixtureParams([0.5, 0.5], np.zeros((2, 2)), cov, "full")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(weights=[0.5, 0.6]), "weights"),
        (dict(weights=[1.5, -0.5]), "weights"),
        (dict(means=np.zeros((2, 2, 1))), "means"),
        (dict(covariances=np.ones(3)), "covariances"),
        (dict(covariance_type="banana"), "covariance_type"),
    ],
)
def test_params_reject_bad_values(kwargs, name):
    base = dict(
        weights=[0.5, 0.5],
        means=np.zeros((2, 2)),
        covariances=np.ones(2),
        covariance_type="spherical",
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}: expected"):
        GaussianMixtureParams(**base)


def test_params_are_immutable_and_permutable():
    p = _params("full")
    with pytest.raises(ValueError):
        p.means[0, 0] = 1.0
    q = p.permuted([2, 0, 1])
    X = np.random.default_rng(4).normal(size=(50, 4)) + 50
    np.testing.assert_allclose(p.score_samples(X), q.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(p.predict_proba(X)[:, [2, 0, 1]], q.predict_proba(X), rtol=1e-10)
    assert np.all(np.diff(p.sorted_by_weight().weights) <= 0)
    r = GaussianMixtureParams.from_dict(p.to_dict())
    np.testing.assert_array_equal(r.covariances, p.covariances)
