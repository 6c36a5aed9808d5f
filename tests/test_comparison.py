import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesgmm import comparison, em
from bayesgmm import dirichlet_process as dp_module
from bayesgmm.comparison import compare, elpd, pareto_k_threshold, waic


def log_likelihood_tree(ll, X=None):
    groups = {"log_likelihood": xr.Dataset({"obs": (("chain", "draw", "obs_id"), ll)})}
    if X is not None:
        groups["observed_data"] = xr.Dataset({"obs": (("obs_id", "feature"), X)})
    groups["posterior"] = xr.Dataset({"mu": (("chain", "draw"), ll[..., 0])})
    return xr.DataTree.from_dict(groups)


# ------------------------------------------------------------------- WAIC
def test_waic_matches_a_naive_computation():
    rng = np.random.default_rng(0)
    ll = rng.normal(-1.5, 0.2, size=(2, 150, 12))
    result = waic(log_likelihood_tree(ll))
    flat = ll.reshape(300, 12)
    lppd = np.array([np.log(np.mean(np.exp(flat[:, i]))) for i in range(12)])
    p_i = np.array([np.var(flat[:, i], ddof=1) for i in range(12)])
    elpd_i = lppd - p_i
    assert result.n_samples == 300 and result.n_data_points == 12
    np.testing.assert_allclose(result.elpd_i, elpd_i, rtol=1e-12)
    np.testing.assert_allclose(result.p_waic, p_i.sum(), rtol=1e-12)
    np.testing.assert_allclose(result.elpd_waic, elpd_i.sum(), rtol=1e-12)
    np.testing.assert_allclose(result.se, np.sqrt(12 * np.var(elpd_i)), rtol=1e-12)
    assert not result.warning


def test_waic_agrees_with_psis_loo_on_a_regular_model():
    # y_i ~ N(mu, 1) with a flat prior: the posterior of mu is N(mean(y), 1/n), sampled
    # exactly. WAIC and PSIS-LOO both estimate the same elpd and differ by O(1/n) terms.
    import arviz_stats

    rng = np.random.default_rng(1)
    y = rng.normal(size=100)
    mu = rng.normal(y.mean(), 1 / np.sqrt(y.size), size=(4, 1000))
    ll = stats.norm.logpdf(y[None, None, :], loc=mu[..., None])
    tree = log_likelihood_tree(ll)
    result = waic(tree)
    loo = arviz_stats.loo(tree, var_name="obs")
    assert abs(result.elpd_waic - loo.elpd) < 0.05
    assert abs(result.p_waic - loo.p) < 0.05
    assert abs(result.p_waic - 1.0) < 0.3  # one parameter


def test_waic_warns_on_a_large_pointwise_variance():
    rng = np.random.default_rng(2)
    ll = rng.normal(-1.0, 0.1, size=(1, 200, 10))
    ll[..., 3] = rng.normal(-5.0, 1.0, size=(1, 200))  # variance about 1 > 0.4
    with pytest.warns(UserWarning, match="WAIC is unreliable"):
        result = waic(log_likelihood_tree(ll))
    assert result.warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not waic(log_likelihood_tree(np.delete(ll, 3, axis=-1))).warning


def test_waic_bad_input():
    with pytest.raises(ValueError, match="^fit:"):
        waic(xr.DataTree.from_dict({"posterior": xr.Dataset({"a": ("draw", [1.0, 2.0])})}))
    with pytest.raises(ValueError, match="^fit:"):
        waic(log_likelihood_tree(np.zeros((1, 1, 4))))
    with pytest.raises(ValueError, match="^var_name:"):
        waic(log_likelihood_tree(np.zeros((1, 5, 4))), var_name="y")
    with pytest.raises(TypeError, match="^fit:"):
        waic(object())


# ------------------------------------------------------------ Pareto k
@pytest.mark.parametrize("n_samples", [1, 2, 10, 100, 400, 1000, 4000])
def test_pareto_k_threshold_is_arvizs(n_samples):
    from arviz_stats.loo.loo_helper import _warn_pareto_k

    _, good_k = _warn_pareto_k(np.zeros(3), n_samples, suppress=True)
    assert pareto_k_threshold(n_samples) == good_k


def test_pareto_k_threshold_example_runs():
    import doctest

    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(pareto_k_threshold):
        assert test.examples and runner.run(test).failed == 0


def test_high_pareto_k_is_judged_by_the_results_threshold():
    k = xr.DataArray([0.1, 0.64, 0.69, np.nan], dims="obs_id")
    result = SimpleNamespace(pareto_k=k, good_k=0.62, n_samples=400)
    k_max, count, advice = comparison._diagnostic(result)
    assert (k_max, count) == (0.69, 2)
    assert advice.startswith(
        "2 observation(s) with Pareto k above ArviZ's threshold (0.62 for 400 draws)"
    )
    # Without good_k the same rule is applied to the result's number of draws.
    result = SimpleNamespace(pareto_k=k, good_k=None, n_samples=10_000)
    assert comparison._diagnostic(result)[1] == 0
    k_max, count, advice = comparison._diagnostic(SimpleNamespace(pareto_k=None))  # K-fold
    assert np.isnan(k_max) and count == 0 and advice == ""


# -------------------------------------------------------------- comparisons


@pytest.fixture(scope="module")
def two_clusters():
    rng = np.random.default_rng(3)
    return np.vstack([rng.normal(-3.0, 1.0, (60, 2)), rng.normal(3.0, 1.0, (60, 2))])


def test_kfold_with_one_point_per_fold_is_exact_leave_one_out():
    # EM with one component is the closed-form maximum-likelihood Gaussian, so the
    # leave-one-out predictive density has an oracle.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(25, 2)) @ np.array([[1.0, 0.4], [0.0, 0.7]])
    model = em.EMGaussianMixture(1, reg_covar=1e-6).fit(X)
    result, method = elpd(model, X, k_folds=25, random_state=0)
    expected = []
    for i in range(25):
        rest = np.delete(X, i, axis=0)
        # Each refit adds reg_covar times the variance of its own training fold.
        cov = np.cov(rest, rowvar=False, bias=True) + 1e-6 * np.diag(rest.var(axis=0))
        expected.append(stats.multivariate_normal(rest.mean(axis=0), cov).logpdf(X[i]))
    assert method == "k-fold (k=25)"
    np.testing.assert_allclose(result.elpd_i.values, expected, rtol=1e-8)
    np.testing.assert_allclose(result.elpd, np.sum(expected), rtol=1e-8)


def test_compare_em_models(two_clusters):
    X = two_clusters
    models = {f"K={k}": em.EMGaussianMixture(k, random_state=0).fit(X) for k in (1, 2, 3)}
    table = compare(models, X, k_folds=5, random_state=0)
    assert table.index[0] == "K=2"
    assert list(table["rank"]) == [0, 1, 2]
    for column in (
        "elpd",
        "se",
        "p",
        "elpd_diff",
        "dse",
        "weight",
        "criterion",
        "pareto_k_max",
        "n_high_pareto_k",
        "warning",
        "elpd_waic",
    ):
        assert column in table.columns
    assert (table["criterion"] == "k-fold (k=5)").all()
    np.testing.assert_allclose(table["weight"].sum(), 1.0, atol=1e-6)
    assert table["elpd_waic"].isna().all()  # a point estimate has no WAIC
    assert table.loc["K=1", "elpd"] < table.loc["K=2", "elpd"] - 4 * table.loc["K=1", "dse"]
    again = compare(models, X, k_folds=5, random_state=0)
    np.testing.assert_array_equal(again["elpd"], table["elpd"])


def test_compare_one_model(two_clusters):
    model = em.EMGaussianMixture(2, random_state=0).fit(two_clusters)
    table = compare({"em": model}, two_clusters, k_folds=4, random_state=1)
    assert list(table.index) == ["em"] and table["weight"].iloc[0] == 1.0


@pytest.fixture(scope="module")
def dp_model(two_clusters):
    return dp_module.DPGaussianMixture(6, random_state=0).fit(two_clusters)


def test_compare_em_with_the_variational_dp(two_clusters, dp_model):
    X = two_clusters
    models = {"em": em.EMGaussianMixture(2, random_state=0).fit(X), "dp": dp_model}
    table = compare(models, X, k_folds=5, n_draws=400, random_state=0)
    # The mean-field q is narrower than the posterior here: PSIS of the approximation
    # has Pareto k above ArviZ's threshold, so the DP is cross-validated exactly
    # instead, and says so.
    tree = dp_model.to_datatree(n_draws=400, random_state=0)
    import arviz_stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # arviz's own high-k warning
        psis = arviz_stats.loo_approximate_posterior(
            tree, tree["sample_stats"]["log_p"], tree["sample_stats"]["log_q"], var_name="obs"
        )
    assert psis.good_k == pareto_k_threshold(400) < 0.7
    n_high = int((np.asarray(psis.pareto_k) > psis.good_k).sum())
    assert n_high > 0
    assert re.fullmatch(
        r"k-fold \(k=5\); psis-loo \(approximate posterior\) had \d+ Pareto k above "
        r"ArviZ's threshold \(0\.62 for 400 draws\)",
        table.loc["dp", "criterion"],
    )
    assert table.loc["em", "criterion"] == "k-fold (k=5)"
    assert np.isnan(table.loc["em", "pareto_k_max"])
    assert np.isfinite(table.loc["dp", "elpd_waic"]) and np.isnan(table.loc["em", "elpd_waic"])
    # Both estimate the same elpd of good two-component fits: close, within a few dSE.
    assert abs(table.loc["dp", "elpd"] - table.loc["em", "elpd"]) < 4 * table["dse"].max() + 2
    # Exact K-fold of the DP equals the mean held-out posterior predictive density.
    folds = elpd(dp_model, X, k_folds=5, random_state=0)[0]
    np.testing.assert_allclose(folds.elpd, table.loc["dp", "elpd"], rtol=1e-12)


def test_subsampled_loo_above_the_threshold(two_clusters, dp_model):
    table = compare(
        {"dp": dp_model, "em": em.EMGaussianMixture(2, random_state=0).fit(two_clusters)},
        two_clusters,
        k_folds=5,
        n_draws=300,
        random_state=0,
        subsample_threshold=100,
        subsample_size=60,
    )
    assert table.loc["dp", "criterion"] == (
        "psis-loo (approximate posterior), subsampled (60 of 120)"
    )
    assert np.isfinite(table.loc["dp", "elpd"])
    assert "subsampling_dse" in table.columns
    # Stacking needs every pointwise elpd: outside the subsample the PSIS
    # approximation fills in (left as NaN, the weights would stay uniform).
    assert not np.allclose(table["weight"], 0.5)
    np.testing.assert_allclose(table["weight"].sum(), 1.0, atol=1e-6)


def test_models_fitted_on_other_data_are_an_error(two_clusters, dp_model):
    other = two_clusters + 0.5
    with pytest.raises(ValueError, match=r"^models\['dp'\]: .*fitted on other data"):
        compare({"dp": dp_model}, other)
    with pytest.raises(ValueError, match=r"^models\['dp'\]:"):
        compare({"dp": dp_model}, two_clusters[:100])


def test_compare_bad_input(two_clusters):
    X = two_clusters
    fitted = em.EMGaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="^models:"):
        compare({}, X)
    with pytest.raises(TypeError, match="^models:"):
        compare([fitted], X)
    with pytest.raises(ValueError, match="not fitted"):
        compare({"a": em.EMGaussianMixture(2)}, X)
    with pytest.raises(ValueError, match=r"^models\['a'\]:"):
        compare({"a": fitted}, X[:, :1])
    with pytest.raises(ValueError, match="^method:"):
        compare({"a": fitted}, X, method="best")
    with pytest.raises(ValueError, match="^k_folds:"):
        compare({"a": fitted}, X, k_folds=1)


# ------------------------------------------------- the sampled marginal model
@pytest.mark.sampling
def test_compare_marginal_model_with_em(marginal_fit):
    import arviz_stats

    model, X = marginal_fit
    models = {"nuts": model, "em": em.EMGaussianMixture(3, random_state=0).fit(X)}
    table = compare(models, X, k_folds=5, random_state=0)
    assert table.loc["nuts", "criterion"] == "psis-loo"
    expected = arviz_stats.loo(model.idata_, var_name="obs")
    np.testing.assert_allclose(table.loc["nuts", "elpd"], expected.elpd, rtol=1e-12)
    assert np.isfinite(table.loc["nuts", "elpd_waic"])
    # A well-specified 3-component fit: WAIC and LOO agree to well within one SE.
    assert abs(table.loc["nuts", "elpd_waic"] - table.loc["nuts", "elpd"]) < 1.0
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        direct = waic(model)
    np.testing.assert_allclose(direct.elpd_waic, table.loc["nuts", "elpd_waic"])
    # The variance warning of WAIC lands in the table's warning column.
    assert direct.warning == ("WAIC unreliable" in table.loc["nuts", "warning"])


@pytest.mark.sampling
def test_marginal_model_on_other_data_is_an_error(marginal_fit):
    model, X = marginal_fit
    with pytest.raises(ValueError, match=r"^models\['nuts'\]:"):
        compare({"nuts": model}, X[::-1])


def test_package_name_compare_is_the_function_after_importing_the_module(two_clusters):
    import importlib

    import bayesgmm

    importlib.import_module("bayesgmm.comparison")
    assert callable(bayesgmm.compare) and bayesgmm.compare.__module__ == "bayesgmm.comparison"
    model = em.EMGaussianMixture(1, random_state=0).fit(two_clusters)
    table = bayesgmm.compare({"em": model}, two_clusters, k_folds=3, random_state=0)
    assert list(table.index) == ["em"]
