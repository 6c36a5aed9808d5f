"""Frequency weights (``sample_weight``) in EM, the variational DP and the marginal model.

Frequency weights mean that row i counts as ``w_i`` copies of itself, so the checks
are equivalences: integer weights equal the rows repeated that many times, a zero
weight equals dropping the row, and the same weight on every row changes nothing
(EM from the same given start; the DP from its k-means start, which is built to be
the same for weights as for repeated rows). They are deterministic computations that
differ only by the order of floating-point sums, so they have no false-failure
probability beyond rounding (observed differences are below 1e-12).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import make_mixture_data

from bayesgmm import DPGaussianMixture, EMGaussianMixture
from bayesgmm._gaussian import e_step_statistics, natural_parameters

EM_MODELS = ["full", "tied", "diag", "spherical", "VEV", "EVE", "VVE", "EEI"]


@pytest.fixture(scope="module")
def weighted_data():
    X, labels = make_mixture_data(n=120, d=2, k=3, seed=11)
    weights = np.random.default_rng(12).integers(0, 4, size=X.shape[0])
    return X, labels, weights


def _quietly(fit, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args, **kwargs)


def _given_start(X, covariance_type):
    start = _quietly(EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit, X)
    return dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )


def _em_params(covariance_type, X):
    """Fifteen EM iterations (tol=0) from a given start, as ``EMGaussianMixture`` arguments."""
    return dict(
        n_components=3,
        covariance_type=covariance_type,
        max_iter=15,
        tol=0.0,
        **_given_start(X, covariance_type),
    )


def test_kernel_statistics_with_integer_weights_equal_repeated_rows(weighted_data):
    X, _, w = weighted_data
    means = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 4.0]])
    chol = np.broadcast_to(np.eye(2), (3, 2, 2)).copy()
    eta, const = natural_parameters(means, chol, "full")
    log_weights = np.log(np.full(3, 1 / 3))
    resp = np.empty((X.shape[0], 3))
    weighted = e_step_statistics(
        X, log_weights, eta, const, "full", sample_weight=w.astype(float), resp_out=resp
    )
    repeated = e_step_statistics(np.repeat(X, w, axis=0), log_weights, eta, const, "full")
    np.testing.assert_allclose(weighted.nk, repeated.nk, rtol=1e-12)
    np.testing.assert_allclose(weighted.sum_x, repeated.sum_x, rtol=1e-12)
    np.testing.assert_allclose(weighted.sum_xx, repeated.sum_xx, rtol=1e-12)
    assert weighted.log_normalizer == pytest.approx(repeated.log_normalizer, rel=1e-12)
    # the responsibilities written out are the rows' own, not weighted
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)


@pytest.mark.parametrize("covariance_type", EM_MODELS)
def test_em_integer_weights_equal_repeated_rows(weighted_data, covariance_type):
    X, _, w = weighted_data
    params = _em_params(covariance_type, X)
    weighted = _quietly(EMGaussianMixture(**params).fit, X, sample_weight=w)
    repeated = _quietly(EMGaussianMixture(**params).fit, np.repeat(X, w, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_ == 15
    np.testing.assert_allclose(
        weighted.log_likelihood_trace_, repeated.log_likelihood_trace_, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_zero_weight_equals_dropping_the_row(weighted_data, covariance_type):
    X, _, w = weighted_data
    keep = w > 0
    params = _em_params(covariance_type, X)
    weighted = _quietly(EMGaussianMixture(**params).fit, X, sample_weight=keep * 1.0)
    dropped = _quietly(EMGaussianMixture(**params).fit, X[keep])
    np.testing.assert_allclose(weighted.lower_bound_, dropped.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, dropped.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, dropped.covariances_, rtol=1e-8, atol=1e-8)


def test_em_uniform_weights_change_nothing(weighted_data):
    X, _, _ = weighted_data
    params = _em_params("full", X)
    plain = _quietly(EMGaussianMixture(**params).fit, X)
    scaled = _quietly(EMGaussianMixture(**params).fit, X, sample_weight=np.full(len(X), 2.5))
    trace = plain.log_likelihood_trace_
    np.testing.assert_allclose(scaled.log_likelihood_trace_, trace, rtol=1e-12)
    np.testing.assert_allclose(scaled.means_, plain.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(scaled.covariances_, plain.covariances_, rtol=1e-10, atol=1e-12)


def test_em_default_start_and_criteria_with_weights(weighted_data):
    """The weighted k-means start fits; score, BIC, AIC and ICL count row i w_i times."""
    X, labels, w = weighted_data
    model = EMGaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    repeated = np.repeat(X, w, axis=0)
    assert model.score(X, sample_weight=w) == pytest.approx(model.score(repeated), rel=1e-12)
    assert model.bic(X, sample_weight=w) == pytest.approx(model.bic(repeated), rel=1e-12)
    assert model.aic(X, sample_weight=w) == pytest.approx(model.aic(repeated), rel=1e-12)
    for kind in ("map", "entropy"):
        assert model.icl(X, kind, sample_weight=w) == pytest.approx(
            model.icl(repeated, kind), rel=1e-12
        )
    # the weighted lower bound is the weighted mean log-likelihood of the fit's
    # parameters before their last M-step, so close to the score at the end
    assert model.lower_bound_ == pytest.approx(model.score(X, sample_weight=w), abs=1e-3)
    # three blobs: every row of positive weight lands in its own blob's component
    kept = w > 0
    predicted = model.predict(X[kept])
    agreement = np.mean([np.bincount(predicted[labels[kept] == j]).max() for j in range(3)])
    assert agreement == pytest.approx(np.mean([np.sum(labels[kept] == j) for j in range(3)]))


def test_em_weights_with_labels_and_prior_equal_repeated_rows(weighted_data):
    from bayesgmm import ConjugatePrior

    X, labels, w = weighted_data
    known = np.where(np.arange(len(X)) % 4 == 0, labels, -1)
    params = dict(covariance_type="full", max_iter=10, tol=0.0, prior=ConjugatePrior())
    params.update(_given_start(X, "full"))
    weighted = _quietly(EMGaussianMixture(3, **params).fit, X, sample_weight=w, labels=known)
    repeated = _quietly(
        EMGaussianMixture(3, **params).fit,
        np.repeat(X, w, axis=0),
        labels=np.repeat(known, w),
    )
    np.testing.assert_allclose(
        weighted.log_likelihood_trace_, repeated.log_likelihood_trace_, rtol=1e-10
    )
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8, atol=1e-8)


def test_dp_integer_weights_equal_repeated_rows(weighted_data):
    X, _, w = weighted_data
    shuffled = np.random.default_rng(5).permutation(len(X))
    kwargs = dict(truncation=6, random_state=3, tol=1e-10)
    weighted = _quietly(DPGaussianMixture(**kwargs).fit, X[shuffled], sample_weight=w[shuffled])
    repeated = _quietly(DPGaussianMixture(**kwargs).fit, np.repeat(X, w, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.elbo_ == pytest.approx(repeated.elbo_, rel=1e-10)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(weighted.concentration_, repeated.concentration_, rtol=1e-8)
    assert weighted.pareto_k_ == pytest.approx(repeated.pareto_k_, rel=1e-6)


def test_dp_zero_weight_equals_dropping_the_row(weighted_data):
    X, _, w = weighted_data
    keep = w > 0
    kwargs = dict(truncation=6, random_state=3, tol=1e-10)
    weighted = _quietly(DPGaussianMixture(**kwargs).fit, X, sample_weight=keep * 1.0)
    dropped = _quietly(DPGaussianMixture(**kwargs).fit, X[keep])
    assert weighted.elbo_ == pytest.approx(dropped.elbo_, rel=1e-10)
    np.testing.assert_allclose(weighted.means_, dropped.means_, rtol=1e-8, atol=1e-8)


def test_dp_weighted_fit_refuses_advi_and_per_observation_results(weighted_data):
    X, _, w = weighted_data
    with pytest.raises(ValueError, match="^sample_weight: expected None with method='advi'"):
        DPGaussianMixture(method="advi").fit(X, sample_weight=w)
    model = _quietly(DPGaussianMixture(truncation=4, random_state=0).fit, X, sample_weight=w)
    with pytest.raises(ValueError, match="^to_datatree: expected a model fitted without"):
        model.to_datatree(n_draws=10)


BAD_WEIGHTS = [
    (lambda n: -np.ones(n), ValueError, "negative values"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError, "NaN or infinite"),
    (lambda n: np.zeros(n), ValueError, "all weights zero"),
    (lambda n: np.ones(n - 1), ValueError, r"shape \(\d+,\)"),
    (lambda n: np.ones((n, 1)), ValueError, r"shape \(\d+, 1\)"),
    (lambda n: np.array(["a"] * n), TypeError, "dtype"),
]


@pytest.mark.parametrize(("make", "error", "got"), BAD_WEIGHTS)
@pytest.mark.parametrize("estimator", [EMGaussianMixture(2), DPGaussianMixture(3)])
def test_bad_weights_are_refused_by_name(weighted_data, estimator, make, error, got):
    X = weighted_data[0]
    with pytest.raises(error, match=f"^sample_weight: expected .*got .*{got}"):
        estimator.fit(X, sample_weight=make(len(X)))


def test_too_few_positive_weights_and_bad_score_weights(weighted_data):
    X = weighted_data[0]
    with pytest.raises(ValueError, match="^sample_weight: expected at least 3 positive"):
        EMGaussianMixture(3).fit(X, sample_weight=np.r_[1.0, 1.0, np.zeros(len(X) - 2)])
    model = EMGaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="^sample_weight: expected"):
        model.score(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="^sample_weight: expected"):
        model.bic(X, sample_weight=np.ones(3))


def test_marginal_weighted_fit_refuses_stored_log_likelihood_and_bad_weights(weighted_data):
    from bayesgmm import MarginalGaussianMixture

    X, _, w = weighted_data
    with pytest.raises(ValueError, match="^log_likelihood: expected False or 'auto' with sample"):
        MarginalGaussianMixture(3).fit(X, sample_weight=w, log_likelihood=True)
    with pytest.raises(ValueError, match="^sample_weight: expected .*got negative values"):
        MarginalGaussianMixture(3).fit(X, sample_weight=-np.ones(len(X)))


# ---------------------------------------------------------------- sampled (slow tier)
@pytest.fixture(scope="module")
def marginal_weighted_pair():
    """The marginal model by NUTS on weighted rows and on the same rows repeated.

    Small (one feature, two components, 40 distinct rows), two short chains each.
    """
    from bayesgmm import MarginalGaussianMixture

    rng = np.random.default_rng(31)
    X = np.r_[rng.normal(-2.0, 0.6, 20), rng.normal(2.0, 0.8, 20)][:, None]
    w = rng.integers(1, 4, size=40)
    settings = dict(draws=500, tune=400, chains=2, random_state=4, progressbar=False)
    model = MarginalGaussianMixture(2, covariance_type="diag")
    weighted = _quietly(model.fit, X, sample_weight=w, **settings)
    weighted_posterior = weighted.idata_["posterior"].to_dataset()
    repeated = _quietly(
        MarginalGaussianMixture(2, covariance_type="diag").fit, np.repeat(X, w, 0), **settings
    )
    return weighted, weighted_posterior, repeated, X, w


@pytest.mark.slow
@pytest.mark.sampling
def test_marginal_nuts_weights_equal_repeated_rows_within_monte_carlo_error(
    marginal_weighted_pair,
):
    """Posterior means of the weights and means agree within 4 Monte Carlo standard errors.

    The two posteriors are the same distribution, so each difference is the sum of two
    independent Monte Carlo errors; at 4 combined standard errors a false failure has
    probability below 1e-4 per quantity (6e-4 over the six compared).
    """
    import arviz_stats

    weighted, weighted_posterior, repeated, _, w = marginal_weighted_pair
    repeated_posterior = repeated.idata_["posterior"].to_dataset()
    # each fit's draws are relabelled to its own EM start: put components in order of their means
    orders = [
        np.argsort(np.asarray(p["means"].mean(("chain", "draw")))[:, 0])
        for p in (weighted_posterior, repeated_posterior)
    ]
    for name in ("weights", "means"):
        a = weighted_posterior[name].isel(component=orders[0])
        b = repeated_posterior[name].isel(component=orders[1])
        se = np.hypot(
            np.asarray(arviz_stats.mcse(a, method="mean")),
            np.asarray(arviz_stats.mcse(b, method="mean")),
        )
        difference = np.asarray(a.mean(("chain", "draw"))) - np.asarray(b.mean(("chain", "draw")))
        assert np.all(np.abs(difference) < 4 * se), (name, difference, se)
    assert "log_likelihood" not in weighted.idata_
    np.testing.assert_array_equal(weighted.idata_["constant_data"]["sample_weight"], w)


def test_select_n_components_with_weights_equals_repeated_rows(weighted_data):
    from bayesgmm import select_n_components

    X, _, w = weighted_data
    kwargs = dict(n_components=range(1, 5), covariance_types=("full", "diag"), random_state=0)
    weighted = select_n_components(X, sample_weight=w, **kwargs)
    repeated = select_n_components(np.repeat(X, w, axis=0), **kwargs)
    assert weighted.best_n_components == repeated.best_n_components == 3
    assert weighted.best_covariance_type == repeated.best_covariance_type
    best = weighted.best_model
    assert weighted.table["bic"].min() == pytest.approx(
        best.bic(np.repeat(X, w, axis=0)), rel=1e-12
    )
    with pytest.raises(ValueError, match="^sample_weight: expected None with method='loo'"):
        select_n_components(X, method="loo", sample_weight=w)


@pytest.mark.parametrize("covariance_type", ["full", "spherical", "VEV"])
def test_weighted_em_on_dask_equals_in_memory(weighted_data, covariance_type):
    da = pytest.importorskip("dask.array")
    X, _, w = weighted_data
    params = _em_params(covariance_type, X)
    memory = _quietly(EMGaussianMixture(**params).fit, X, sample_weight=w)
    lazy = _quietly(
        EMGaussianMixture(**params).fit,
        da.from_array(X, chunks=(35, 2)),
        sample_weight=da.from_array(w, chunks=50),  # rechunked like X's rows
    )
    np.testing.assert_allclose(
        lazy.log_likelihood_trace_, memory.log_likelihood_trace_, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(lazy.means_, memory.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lazy.covariances_, memory.covariances_, rtol=1e-9, atol=1e-9)
    assert lazy.score(da.from_array(X, chunks=40), sample_weight=w) == pytest.approx(
        memory.score(X, sample_weight=w), rel=1e-12
    )
    with pytest.raises(ValueError, match="^sample_weight: expected .*got negative values"):
        EMGaussianMixture(**params).fit(da.from_array(X, chunks=40), sample_weight=-w)


def test_weighted_dp_on_dask_equals_in_memory(weighted_data):
    da = pytest.importorskip("dask.array")
    X, _, w = weighted_data
    kwargs = dict(truncation=6, random_state=3, tol=1e-10)
    memory = _quietly(DPGaussianMixture(**kwargs).fit, X, sample_weight=w)
    lazy = _quietly(
        DPGaussianMixture(**kwargs).fit, da.from_array(X, chunks=(35, 2)), sample_weight=w
    )
    assert lazy.elbo_ == pytest.approx(memory.elbo_, rel=1e-10)
    np.testing.assert_allclose(lazy.means_, memory.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(lazy.covariances_, memory.covariances_, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_marginal_laplace_weights_equal_repeated_rows():
    """The posterior mode and curvature Laplace's method finds are those of the repeated rows.

    The two fits may order the components differently (each follows its own EM start),
    so the mode is compared component by component in order of the means.
    """
    from bayesgmm import MarginalGaussianMixture

    rng = np.random.default_rng(31)
    X = np.r_[rng.normal(-2.0, 0.6, 20), rng.normal(2.0, 0.8, 20)][:, None]
    w = rng.integers(1, 4, size=40)
    settings = dict(method="laplace", draws=100, random_state=1)
    weighted = _quietly(
        MarginalGaussianMixture(2, covariance_type="diag").fit, X, sample_weight=w, **settings
    )
    repeated = _quietly(
        MarginalGaussianMixture(2, covariance_type="diag").fit, np.repeat(X, w, 0), **settings
    )
    # unconstrained mode: [y_w, means (2), log stds (2)]; y_w changes sign with the order
    modes = [fit.idata_["laplace"]["mode"].values for fit in (weighted, repeated)]
    orders = [np.argsort(mode[1:3]) for mode in modes]
    for mode, order in zip(modes, orders, strict=True):
        mode[1:3], mode[3:5] = mode[1:3][order], mode[3:5][order]
        mode[0] = abs(mode[0])
    np.testing.assert_allclose(modes[0], modes[1], rtol=1e-6, atol=1e-6)
