"""Oracle tests for the shared missing-data maths (``bayesgmm._missing``).

Every quantity is checked against a direct evaluation: scipy's Gaussian log
density on the observed coordinates, the textbook conditional-Gaussian formulas
with explicit inverses, and row-by-row loops for the expected statistics.
"""

import numpy as np
import pytest
from scipy import stats

from bayesgmm import _gaussian as g
from bayesgmm import _missing as m


def _mixture(seed=0, k=3, d=4):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 3
    A = rng.normal(size=(k, d, d))
    covariances = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(d)
    weights = rng.dirichlet(np.ones(k) * 3)
    return weights, means, covariances


def _data_with_holes(seed=1, n=200, d=4, fraction=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 3
    holes = rng.random((n, d)) < fraction
    holes[holes.all(axis=1), 0] = False  # keep one coordinate per row
    X[holes] = np.nan
    return X


def _naive_conditional(x, observed, mean, cov):
    o, mis = np.flatnonzero(observed), np.flatnonzero(~observed)
    inverse = np.linalg.inv(cov[np.ix_(o, o)])
    mu = mean[mis] + cov[np.ix_(mis, o)] @ inverse @ (x[o] - mean[o])
    c = cov[np.ix_(mis, mis)] - cov[np.ix_(mis, o)] @ inverse @ cov[np.ix_(o, mis)]
    return mu, c


def test_patterns_partition_the_rows():
    X = _data_with_holes()
    observed, rows = m.missingness_patterns(X)
    assert observed.shape[1] == 4 and observed.dtype == bool
    assert len({tuple(p) for p in observed}) == observed.shape[0]
    assert observed[-1].all()  # the complete pattern sorts last
    np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(X.shape[0]))
    for pattern, index in zip(observed, rows, strict=True):
        np.testing.assert_array_equal(
            ~np.isnan(X[index]), np.broadcast_to(pattern, (index.size, 4))
        )
        assert np.all(np.diff(index) > 0)


def test_observed_log_density_matches_scipy_on_observed_coordinates():
    _, means, covariances = _mixture()
    X = _data_with_holes()
    got = m.observed_log_density(X, means, covariances)
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(3):
            expected = stats.multivariate_normal(means[k, o], covariances[k][np.ix_(o, o)]).logpdf(
                x[o]
            )
            assert got[i, k] == pytest.approx(expected, rel=1e-11, abs=1e-11)


def test_observed_log_density_of_complete_rows_is_the_gaussian_one():
    _, means, covariances = _mixture()
    X = np.random.default_rng(4).normal(size=(50, 4))
    chol = g.compute_precision_cholesky(covariances, "full")
    np.testing.assert_allclose(
        m.observed_log_density(X, means, covariances),
        g.log_gaussian_prob(X, means, chol, "full"),
        rtol=1e-11,
    )


def test_conditional_moments_match_the_textbook_formulas():
    _, means, covariances = _mixture()
    rng = np.random.default_rng(5)
    observed = np.array([True, False, True, False])
    rows = rng.normal(size=(6, 4))
    cond_means, cond_covs = m.conditional_moments(rows, observed, means, covariances)
    assert cond_means.shape == (3, 6, 2) and cond_covs.shape == (3, 2, 2)
    for k in range(3):
        for i in range(6):
            mu, c = _naive_conditional(rows[i], observed, means[k], covariances[k])
            np.testing.assert_allclose(cond_means[k, i], mu, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(cond_covs[k], c, rtol=1e-10, atol=1e-12)
    # Only the observed coordinates may be passed instead of full rows.
    short_means, short_covs = m.conditional_moments(rows[:, observed], observed, means, covariances)
    np.testing.assert_array_equal(short_means, cond_means)
    np.testing.assert_array_equal(short_covs, cond_covs)


def test_conditional_moments_with_nothing_observed_are_the_marginal():
    _, means, covariances = _mixture()
    observed = np.zeros(4, dtype=bool)
    cond_means, cond_covs = m.conditional_moments(
        np.full((2, 4), np.nan), observed, means, covariances
    )
    np.testing.assert_array_equal(cond_means, np.broadcast_to(means[:, None, :], (3, 2, 4)))
    np.testing.assert_array_equal(cond_covs, covariances)


def test_conditional_moments_refuse_rows_of_the_wrong_width():
    _, means, covariances = _mixture()
    with pytest.raises(ValueError, match="rows: expected 4 columns"):
        m.conditional_moments(
            np.zeros((2, 3)), np.array([True, True, False, False]), means, covariances
        )


def _naive_statistics(X, weights, means, covariances):
    n, d = X.shape
    k_count = means.shape[0]
    nk, sum_x, sum_xx, log_lik = (
        np.zeros(k_count),
        np.zeros((k_count, d)),
        np.zeros((k_count, d, d)),
        0.0,
    )
    for x in X:
        o = ~np.isnan(x)
        dens = np.array(
            [
                weights[k]
                * stats.multivariate_normal(means[k, o], covariances[k][np.ix_(o, o)]).pdf(x[o])
                for k in range(k_count)
            ]
        )
        log_lik += np.log(dens.sum())
        r = dens / dens.sum()
        for k in range(k_count):
            xhat, c = x.copy(), np.zeros((d, d))
            if not o.all():
                mu, cm = _naive_conditional(x, o, means[k], covariances[k])
                xhat[~o] = mu
                c[np.ix_(~o, ~o)] = cm
            nk[k] += r[k]
            sum_x[k] += r[k] * xhat
            sum_xx[k] += r[k] * (np.outer(xhat, xhat) + c)
    return nk, sum_x, sum_xx, log_lik


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV", "EII"])
def test_expected_statistics_match_a_row_by_row_loop(covariance_type):
    weights, means, covariances = _mixture()
    X = _data_with_holes(n=80)
    stats_ = m.missing_statistics(X, np.log(weights), means, covariances, covariance_type)
    nk, sum_x, sum_xx, log_lik = _naive_statistics(X, weights, means, covariances)
    storage = g.LAYOUTS[covariance_type].storage
    expected_xx = {
        "full": sum_xx,
        "tied": sum_xx,
        "diag": np.diagonal(sum_xx, axis1=1, axis2=2),
        "spherical": np.trace(sum_xx, axis1=1, axis2=2),
    }[storage]
    np.testing.assert_allclose(stats_.nk, nk, rtol=1e-10)
    np.testing.assert_allclose(stats_.sum_x, sum_x, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats_.sum_xx, expected_xx, rtol=1e-10, atol=1e-10)
    assert stats_.log_normalizer == pytest.approx(log_lik, rel=1e-11)
    assert stats_.n_samples == 80
    log_density, _ = m.observed_log_mixture_density(X, weights, means, covariances)
    assert log_density.sum() == pytest.approx(log_lik, rel=1e-11)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_expected_statistics_of_complete_rows_equal_the_kernel(covariance_type):
    weights, means, covariances = _mixture()
    X = np.random.default_rng(6).normal(size=(300, 4)) * 3
    layout_cov = {
        "full": covariances,
        "diag": np.stack([np.diag(c) for c in covariances]),
        "spherical": np.array([np.trace(c) / 4 for c in covariances]),
    }[covariance_type]
    full = g.full_covariances(layout_cov, covariance_type, 3, 4)
    chol = g.compute_precision_cholesky(layout_cov, covariance_type)
    eta, const = g.natural_parameters(means, chol, covariance_type)
    resp_kernel, resp_missing = np.empty((300, 3)), np.empty((300, 3))
    kernel = g.e_step_statistics(
        X, np.log(weights), eta, const, covariance_type, resp_out=resp_kernel
    )
    missing = m.missing_statistics(
        X, np.log(weights), means, full, covariance_type, resp_out=resp_missing
    )
    np.testing.assert_allclose(missing.nk, kernel.nk, rtol=1e-10)
    np.testing.assert_allclose(missing.sum_x, kernel.sum_x, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(missing.sum_xx, kernel.sum_xx, rtol=1e-10, atol=1e-9)
    assert missing.log_normalizer == pytest.approx(kernel.log_normalizer, rel=1e-11)
    np.testing.assert_allclose(resp_missing, resp_kernel, rtol=1e-9, atol=1e-12)


def test_imputation_is_the_responsibility_weighted_conditional_mean():
    weights, means, covariances = _mixture()
    X = _data_with_holes(n=60)
    filled = m.impute_conditional_mean(X, weights, means, covariances)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert np.isfinite(filled).all()
    _, log_resp = m.observed_log_mixture_density(X, weights, means, covariances)
    for i, x in enumerate(X):
        o = observed[i]
        if o.all():
            continue
        expected = sum(
            np.exp(log_resp[i, k]) * _naive_conditional(x, o, means[k], covariances[k])[0]
            for k in range(3)
        )
        np.testing.assert_allclose(filled[i, ~o], expected, rtol=1e-10, atol=1e-12)
    assert np.isnan(X).any()  # the input is left as it was
