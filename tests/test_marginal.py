"""MarginalGaussianMixture: structure without sampling, then the one shared sampled fit.

Tiers: (1) the PyMC graph (coords, dims, log density against SciPy) with no
sampling; (2) every sampling test uses the session fixture ``marginal_fit`` from
conftest.py (one compiled model in the default run); (3) recovery per covariance
type, marked slow.
"""

import itertools
import warnings

import numpy as np
import pytest
from conftest import make_mixture_data
from scipy import stats
from scipy.special import logsumexp

from bayesgmm._marginal_model import STDS_SHAPE
from bayesgmm._validation import NotFittedError
from bayesgmm.marginal import DEFAULT_PRIORS, MarginalGaussianMixture, SamplingWarning
from bayesgmm.params import GaussianMixtureParams

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _transformed_point(model, values):
    from pymc.initial_point import make_initial_point_fn

    fn = make_initial_point_fn(
        model=model, overrides=values, jitter_rvs=set(), return_transformed=True
    )
    return fn(0)


def _values(kind, rng, k=2, d=2):
    """Model variables (constrained) and the matching standardised-unit covariances."""
    weights = rng.dirichlet(np.ones(k) * 3)
    means = rng.normal(size=(k, d))
    values = {"weights": weights, "means": means}
    if kind == "full":
        stds = rng.uniform(0.3, 1.2, size=(k, d))
        r = rng.uniform(-0.8, 0.8, size=k)
        corr_chol = np.zeros((k, d, d))
        corr_chol[:, 0, 0] = 1.0
        corr_chol[:, 1, 0] = r
        corr_chol[:, 1, 1] = np.sqrt(1 - r**2)
        values.update(stds=stds, corr_chol=corr_chol)
        chol = stds[:, :, None] * corr_chol
        covs = chol @ np.swapaxes(chol, 1, 2)
    elif kind == "tied":
        stds = rng.uniform(0.3, 1.2, size=d)
        r = rng.uniform(-0.8, 0.8)
        corr_chol = np.array([[1.0, 0.0], [r, np.sqrt(1 - r**2)]])
        values.update(stds=stds, corr_chol=corr_chol)
        chol = stds[:, None] * corr_chol
        covs = np.broadcast_to(chol @ chol.T, (k, d, d))
    elif kind == "diag":
        stds = rng.uniform(0.3, 1.2, size=(k, d))
        values["stds"] = stds
        covs = stds[:, :, None] ** 2 * np.eye(d)
    else:
        stds = rng.uniform(0.3, 1.2, size=k)
        values["stds"] = stds
        covs = stds[:, None, None] ** 2 * np.eye(d)
    return values, covs


def _scipy_mixture_loglik(Z, weights, means, covs):
    comp = np.column_stack(
        [stats.multivariate_normal(means[j], covs[j]).logpdf(Z) for j in range(len(weights))]
    )
    return logsumexp(comp + np.log(weights), axis=1)


@pytest.fixture(scope="module")
def small_data():
    X, _ = make_mixture_data(n=40, d=2, k=2, seed=3)
    return X


# ------------------------------------------------------------------- structure
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_build_model_names_coords_and_dims(small_data, kind):
    model = MarginalGaussianMixture(2, covariance_type=kind).build_model(small_data)
    assert len(model.coords["component"]) == 2
    assert len(model.coords["feature"]) == 2
    assert len(model.coords["obs_id"]) == 40
    dims = model.named_vars_to_dims
    assert dims["weights"] == ("component",)
    assert dims["means"] == ("component", "feature")
    assert dims["obs"] == ("obs_id", "feature")
    assert dims["X"] == ("obs_id", "feature")
    free = sorted(rv.name for rv in model.free_RVs)
    expected = {
        "full": ["corr_chol", "means", "stds", "weights"],
        "tied": ["corr_chol", "means", "stds", "weights"],
        "diag": ["means", "stds", "weights"],
        "spherical": ["means", "stds", "weights"],
    }[kind]
    assert free == expected
    assert [rv.name for rv in model.observed_RVs] == ["obs"]


def test_build_model_uses_dataframe_column_names(small_data):
    import pandas as pd

    frame = pd.DataFrame(small_data, columns=["height", "width"])
    model = MarginalGaussianMixture(2).build_model(frame)
    assert list(model.coords["feature"]) == ["height", "width"]


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_likelihood_term_equals_scipy_mixture(small_data, kind):
    rng = np.random.default_rng(11)
    model = MarginalGaussianMixture(2, covariance_type=kind).build_model(small_data)
    values, covs = _values(kind, rng)
    point = _transformed_point(model, values)
    loglik = model.compile_logp(vars=[model["obs"]], jacobian=False, mode="FAST_COMPILE")(point)
    Z = (small_data - small_data.mean(0)) / small_data.std(0)
    expected = _scipy_mixture_loglik(Z, values["weights"], values["means"], covs).sum()
    assert loglik == pytest.approx(expected, rel=1e-10)


def test_total_log_density_equals_scipy_likelihood_plus_priors(small_data):
    rng = np.random.default_rng(5)
    priors = {
        "weights_concentration": 1.5,
        "means_loc": 0.2,
        "means_scale": 1.7,
        "stds_scale": 0.9,
        "lkj_eta": 3.0,
    }
    model = MarginalGaussianMixture(2, priors=priors).build_model(small_data)
    values, covs = _values("full", rng)
    point = _transformed_point(model, values)
    total = model.compile_logp(jacobian=False, mode="FAST_COMPILE")(point)
    Z = (small_data - small_data.mean(0)) / small_data.std(0)
    r = values["corr_chol"][:, 1, 0]
    eta = priors["lkj_eta"]
    expected = (
        _scipy_mixture_loglik(Z, values["weights"], values["means"], covs).sum()
        + stats.dirichlet.logpdf(values["weights"], np.full(2, 1.5))
        + stats.norm.logpdf(values["means"], 0.2, 1.7).sum()
        + stats.invgamma.logpdf(values["stds"], STDS_SHAPE, scale=0.9).sum()
        # LKJ(eta) in 2-D: (r + 1) / 2 ~ Beta(eta, eta).
        + (stats.beta.logpdf((r + 1) / 2, eta, eta) - np.log(2)).sum()
    )
    assert total == pytest.approx(expected, rel=1e-10)


def test_priors_are_scaled_to_the_data(small_data):
    """Data in other units (x 1e4, shifted) give the same standardised model."""
    rng = np.random.default_rng(2)
    a = MarginalGaussianMixture(2).build_model(small_data)
    b = MarginalGaussianMixture(2).build_model(small_data * 1e4 + 3e5)
    np.testing.assert_allclose(a["X"].get_value(), b["X"].get_value(), rtol=1e-9, atol=1e-9)
    values, _ = _values("full", rng)
    point = _transformed_point(a, values)
    logp_a = a.compile_logp(mode="FAST_COMPILE")(point)
    logp_b = b.compile_logp(mode="FAST_COMPILE")(point)
    assert logp_a == pytest.approx(logp_b, rel=1e-9)


def test_fixed_loc_and_scale_set_the_model_units(small_data):
    """``z = (x - loc) / scale`` with the given numbers (a number applies to every feature)."""
    raw = MarginalGaussianMixture(2, loc=0.0, scale=1.0).build_model(small_data)
    np.testing.assert_array_equal(raw["X"].get_value(), small_data)
    loc, scale = np.array([1.0, -2.0]), np.array([3.0, 0.5])
    model = MarginalGaussianMixture(2, loc=loc, scale=scale).build_model(small_data)
    np.testing.assert_allclose(model["X"].get_value(), (small_data - loc) / scale, rtol=1e-15)
    # One of the two fixed: the other still comes from the data.
    only_scale = MarginalGaussianMixture(2, scale=2.0).build_model(small_data)
    expected = (small_data - small_data.mean(axis=0)) / 2.0
    np.testing.assert_allclose(only_scale["X"].get_value(), expected, rtol=1e-12, atol=1e-15)


def test_fixed_loc_and_scale_make_the_prior_independent_of_the_data(small_data):
    """With loc and scale fixed, data in other units no longer give the same model."""
    rng = np.random.default_rng(2)
    values, _ = _values("full", rng)
    logps = []
    for X in (small_data, small_data * 10.0 + 5.0):
        model = MarginalGaussianMixture(2, loc=0.0, scale=1.0).build_model(X)
        point = _transformed_point(model, values)
        prior = model.compile_fn(model.logp(vars=model.free_RVs), mode="FAST_COMPILE")
        logps.append((model.compile_logp(mode="FAST_COMPILE")(point), prior(point)))
    assert logps[0][1] == pytest.approx(logps[1][1], rel=1e-12)  # the same prior
    assert logps[0][0] != pytest.approx(logps[1][0], rel=1e-3)  # another likelihood


def test_sklearn_clone_keeps_loc_and_scale():
    from sklearn.base import clone

    model = MarginalGaussianMixture(2, covariance_type="diag", loc=[0.0, 1.0], scale=2.0)
    copy = clone(model)
    assert copy is not model
    assert copy.get_params()["loc"] == [0.0, 1.0]
    assert copy.get_params()["scale"] == 2.0


def test_default_priors_are_documented_and_overridable():
    assert set(DEFAULT_PRIORS) == {
        "weights_concentration",
        "means_loc",
        "means_scale",
        "stds_scale",
        "lkj_eta",
    }
    model = MarginalGaussianMixture(2, priors={"lkj_eta": 4.0})
    assert model.get_params()["priors"] == {"lkj_eta": 4.0}  # constructor args untouched


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": 2.5}, TypeError, "n_components"),
        ({"n_components": 2, "covariance_type": "banded"}, ValueError, "covariance_type"),
        ({"n_components": 2, "priors": {"eta": 1.0}}, ValueError, "priors"),
        ({"n_components": 2, "priors": {"lkj_eta": -1.0}}, ValueError, r"priors\['lkj_eta'\]"),
        ({"n_components": 2, "priors": [1.0]}, TypeError, "priors"),
        ({"n_components": 2, "loc": "centre"}, TypeError, "loc"),
        ({"n_components": 2, "loc": True}, TypeError, "loc"),
        ({"n_components": 2, "loc": [0.0, np.nan]}, ValueError, "loc"),
        ({"n_components": 2, "loc": [0.0, 1.0, 2.0]}, ValueError, "loc"),
        ({"n_components": 2, "scale": 0.0}, ValueError, "scale"),
        ({"n_components": 2, "scale": [1.0, -1.0]}, ValueError, "scale"),
        ({"n_components": 2, "scale": [[1.0, 1.0]]}, TypeError, "scale"),
    ],
)
def test_bad_constructor_arguments_fail_at_build_and_fit(small_data, kwargs, error, name):
    model = MarginalGaussianMixture(**kwargs)
    with pytest.raises(error, match=f"^{name}"):
        model.build_model(small_data)
    with pytest.raises(error, match=f"^{name}"):
        model.fit(small_data)
    assert not hasattr(model, "params_")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"draws": 0}, ValueError, "draws"),
        ({"tune": -1}, ValueError, "tune"),
        ({"chains": 1.5}, TypeError, "chains"),
        ({"nuts_sampler": "stan"}, ValueError, "nuts_sampler"),
        ({"random_state": "seed"}, TypeError, "random_state"),
        ({"random_seed": "seed"}, TypeError, "random_seed"),
        ({"random_state": 1, "random_seed": 1}, TypeError, "random_seed"),
        ({"progressbar": "yes"}, TypeError, "progressbar"),
        ({"nuts_sampler_kwargs": "low_rank"}, TypeError, "nuts_sampler_kwargs"),
        ({"nuts_sampler_kwargs": {1: "x"}}, TypeError, "nuts_sampler_kwargs"),
        ({"nuts_sampler_kwargs": {"draws": 10}}, ValueError, "nuts_sampler_kwargs"),
        ({"nuts_sampler_kwargs": {"seed": 1}}, ValueError, "nuts_sampler_kwargs"),
        ({"method": "advi"}, ValueError, "method"),
        ({"method": None}, TypeError, "method"),
        (
            {"method": "laplace", "nuts_sampler_kwargs": {"maxdepth": 5}},
            ValueError,
            "nuts_sampler_kwargs",
        ),
        ({"subsample": 2}, ValueError, "subsample"),
        ({"subsample": 41}, ValueError, "subsample"),
        ({"subsample": 20.0}, TypeError, "subsample"),
        ({"subsample": True}, TypeError, "subsample"),
        ({"log_likelihood": "always"}, ValueError, "log_likelihood"),
        ({"log_likelihood": 1}, TypeError, "log_likelihood"),
        ({"log_likelihood": None}, TypeError, "log_likelihood"),
    ],
)
def test_bad_fit_arguments_are_rejected_before_any_work(small_data, kwargs, error, name):
    model = MarginalGaussianMixture(2)
    with pytest.raises(error, match=f"^{name}"):
        model.fit(small_data, **kwargs)
    assert not hasattr(model, "params_")


def test_bad_data_is_rejected(small_data):
    X = small_data.copy()
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match="^X"):
        MarginalGaussianMixture(2).build_model(X)
    with pytest.raises(ValueError, match="^X"):
        MarginalGaussianMixture(2).fit(small_data[:2])


def test_methods_need_a_fitted_model(small_data):
    model = MarginalGaussianMixture(2)
    for call in (
        lambda: model.predict(small_data),
        lambda: model.predict_proba(small_data),
        lambda: model.score_samples(small_data),
        lambda: model.sample(3),
        lambda: model.membership_draws(small_data),
        lambda: model.summary(),
        lambda: model.sample_posterior_predictive(3),
    ):
        with pytest.raises(NotFittedError):
            call()


def test_get_and_set_params():
    model = MarginalGaussianMixture(3, covariance_type="diag")
    assert model.get_params() == {
        "n_components": 3,
        "covariance_type": "diag",
        "priors": None,
        "loc": None,
        "scale": None,
        "noise": False,
        "hypervolume": None,
    }
    assert model.set_params(n_components=4) is model
    assert model.n_components == 4
    with pytest.raises(ValueError, match="^params"):
        model.set_params(reg_covar=1.0)


def test_deprecated_seed_name_of_fit_warns_and_names_itself_in_errors(small_data):
    model = MarginalGaussianMixture(2)
    with pytest.warns(FutureWarning, match="random_seed is deprecated"):
        with pytest.raises(TypeError, match="^random_seed: expected"):
            model.fit(small_data, random_seed="seed")
    assert not hasattr(model, "params_")


# ---------------------------------------------------------------- compile cache
def test_compile_cache_keeps_the_most_recently_used_models():
    from bayesgmm._marginal_model import ModelSpec, check_priors
    from bayesgmm._nuts import CompileCache, CompileSpec

    specs = [
        CompileSpec(ModelSpec.create(k, "full", check_priors(None), ["a", "b"]), "nutpie")
        for k in (1, 2, 3)
    ]
    # Equal arguments give equal, hashable specs; any difference gives another key.
    again = CompileSpec(ModelSpec.create(1, "full", check_priors(None), ("a", "b")), "nutpie")
    assert again == specs[0] and hash(again) == hash(specs[0])
    assert CompileSpec(specs[0].model, "laplace") != specs[0]
    other_prior = ModelSpec.create(1, "full", check_priors({"lkj_eta": 3.0}), ["a", "b"])
    assert CompileSpec(other_prior, "nutpie") != specs[0]
    assert specs[0].model.n_features == 2

    cache = CompileCache(maxsize=2)
    calls = []

    def compile_for(i):
        return lambda: calls.append(i) or f"model {i}"

    assert cache.get(specs[0], compile_for(0))[0] == "model 0"
    assert cache.get(specs[1], compile_for(1))[0] == "model 1"
    model, seconds = cache.get(again, compile_for(99))  # a hit: nothing compiled
    assert (model, seconds) == ("model 0", 0.0) and calls == [0, 1]
    cache.get(specs[2], compile_for(2))  # evicts specs[1], the least recently used
    assert len(cache) == 2 and specs[0] in cache and specs[1] not in cache
    cache.clear()
    assert len(cache) == 0


def test_pareto_k_threshold_is_arviz_rule_for_the_number_of_draws():
    from bayesgmm._laplace import good_k

    # min(1 - 1 / log10(S), 0.7): 0.5 at 100 draws, 0.565 at the check's 200, 0.7 from
    # 10^(10/3) ~ 2154 draws on.
    assert good_k(100) == pytest.approx(0.5)
    assert good_k(200) == pytest.approx(1 - 1 / np.log10(200))
    assert good_k(2154) < 0.7 and good_k(2155) == 0.7 == good_k(10**6)
    assert good_k(1) == 0.7


def test_laplace_check_warns_above_the_threshold_for_its_number_of_draws():
    """k = 0.6 passed the old fixed 0.7; over 200 draws ArviZ trusts only k <= 0.565."""
    from bayesgmm._laplace import good_k, problems

    info = {"converged": True, "check_draws": 200, "good_k": good_k(200)}
    assert problems({**info, "pareto_k": 0.55}) == []
    (text,) = problems({**info, "pareto_k": 0.6})
    assert "Pareto k 0.60 > 0.57" in text and "200 draws" in text
    assert len(problems({**info, "pareto_k": float("inf")})) == 1


# -------------------------------------------------------------- sampled model
@pytest.mark.sampling
def test_datatree_follows_the_shared_contract(marginal_fit):
    model, X = marginal_fit
    idata = model.idata_
    for group in ("posterior", "posterior_raw", "log_likelihood", "observed_data", "sample_stats"):
        assert group in idata.children
    post = idata["posterior"]
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 300
    np.testing.assert_array_equal(post["component"].values, [0, 1, 2])
    np.testing.assert_array_equal(post["feature"].values, [0, 1])
    assert idata["log_likelihood"]["obs"].dims == ("chain", "draw", "obs_id")
    np.testing.assert_array_equal(idata["log_likelihood"]["obs_id"].values, np.arange(300))
    np.testing.assert_array_equal(idata["observed_data"]["obs"].values, X)
    assert int(idata["sample_stats"]["diverging"].sum()) == 0
    assert idata.attrs["inference_method"] == "nuts"
    assert model.params_.n_components == 3 and model.n_features_in_ == 2


@pytest.mark.sampling
def test_pointwise_log_likelihood_is_the_mixture_density_of_each_draw(marginal_fit):
    model, X = marginal_fit
    post = model.idata_["posterior"]
    loglik = model.idata_["log_likelihood"]["obs"].values
    for chain, draw in ((0, 0), (1, 299), (0, 123)):
        params = GaussianMixtureParams(
            post["weights"].values[chain, draw],
            post["means"].values[chain, draw],
            post["covariances"].values[chain, draw],
            "full",
        )
        np.testing.assert_allclose(loglik[chain, draw], params.score_samples(X), rtol=1e-9)


@pytest.mark.sampling
def test_relabelled_posterior_is_consistent_and_raw_draws_are_kept(marginal_fit):
    model, _ = marginal_fit
    post = model.idata_["posterior"]
    raw = model.idata_["posterior_raw"]
    perm = model.permutations_
    assert perm.shape == (2, 300, 3)
    np.testing.assert_array_equal(np.sort(perm, axis=-1), np.broadcast_to(np.arange(3), perm.shape))
    rows = np.arange(2)[:, None, None], np.arange(300)[None, :, None]
    np.testing.assert_array_equal(post["means"].values, raw["means"].values[rows[0], rows[1], perm])
    # Per component, the relabelled means sit around the EM reference they were matched to.
    sd = post["means"].std(("chain", "draw")).values
    mean = post["means"].mean(("chain", "draw")).values
    assert np.all(np.abs(mean - model.reference_.means) < 4 * sd)
    np.testing.assert_allclose(model.params_.means, mean, rtol=1e-12)
    assert np.all(model.chain_distance_ < 4)


@pytest.mark.sampling
def test_posterior_recovers_the_clusters(marginal_fit):
    from sklearn.metrics import adjusted_rand_score

    model, X = marginal_fit
    _, labels = make_mixture_data(n=300, d=2, k=3, seed=1)
    assert adjusted_rand_score(labels, model.predict(X)) > 0.95
    # Posterior means near the sample means of the true clusters (label-matched).
    sample_means = np.array([X[labels == j].mean(0) for j in range(3)])
    order = [int(np.argmin(((model.params_.means - m) ** 2).sum(1))) for m in sample_means]
    assert sorted(order) == [0, 1, 2]
    sd = model.idata_["posterior"]["means"].std(("chain", "draw")).values[order]
    assert np.all(np.abs(model.params_.means[order] - sample_means) < 4 * sd)


@pytest.mark.sampling
def test_predictions_average_the_draws(marginal_fit):
    model, X = marginal_fit
    post = model.idata_["posterior"]
    w = post["weights"].values.reshape(600, 3)
    m = post["means"].values.reshape(600, 3, 2)
    c = post["covariances"].values.reshape(600, 3, 2, 2)
    Xt = X[::15]
    # Oracle: the textbook Gaussian log density per draw and component, all draws at once.
    diff = Xt[None, :, None, :] - m[:, None, :, :]  # (S, n, K, d)
    solved = np.linalg.solve(c[:, None], diff[..., None])[..., 0]
    _, logdet = np.linalg.slogdet(c)
    log_comp = -0.5 * (
        np.einsum("snkd,snkd->snk", diff, solved) + logdet[:, None] + 2 * np.log(2 * np.pi)
    )
    log_joint = log_comp + np.log(w)[:, None, :]
    densities = logsumexp(log_joint, axis=-1)
    probs = np.exp(log_joint - densities[..., None])
    expected_score = logsumexp(densities, axis=0) - np.log(600)
    np.testing.assert_allclose(model.score_samples(Xt), expected_score, rtol=1e-9)
    assert model.score(Xt) == pytest.approx(expected_score.mean(), rel=1e-9)
    np.testing.assert_allclose(model.predict_proba(Xt), np.mean(probs, axis=0), atol=1e-12)
    np.testing.assert_array_equal(model.predict(Xt), np.mean(probs, axis=0).argmax(1))
    draws = model.membership_draws(Xt)
    assert draws.shape == (600, len(Xt), 3)
    np.testing.assert_allclose(draws, probs, atol=1e-12)


@pytest.mark.sampling
def test_membership_intervals(marginal_fit):
    model, X = marginal_fit
    result = model.predict_proba(X[:20], ci_prob=0.9)
    assert set(result.data_vars) == {"mean", "median", "lower", "upper"}
    assert result["mean"].dims == ("obs_id", "component")
    assert np.all(result["lower"].values <= result["upper"].values)
    assert np.all((result["lower"].values >= 0) & (result["upper"].values <= 1))
    np.testing.assert_allclose(result["mean"].sum("component").values, 1.0, rtol=1e-12)
    sub = model.membership_draws(X[:20], max_draws=50, random_state=4)
    assert sub.shape == (50, 20, 3)
    np.testing.assert_array_equal(sub, model.membership_draws(X[:20], max_draws=50, random_state=4))
    with pytest.raises(ValueError, match="^ci_prob"):
        model.predict_proba(X, ci_prob=1.5)
    with pytest.raises(ValueError, match="^X"):
        model.predict(X[:, :1])


@pytest.mark.sampling
@pytest.mark.parametrize("ci_kind", ["eti", "hdi"])
def test_membership_intervals_contain_their_median(marginal_fit, ci_kind):
    """The interval is reported with the median, which it always contains (the mean need not)."""
    model, X = marginal_fit
    result = model.predict_proba(X, ci_prob=0.9, ci_kind=ci_kind)
    assert result.attrs == {"ci_prob": 0.9, "ci_kind": ci_kind, "interval_method": "NUTS"}
    lower, median, upper = (result[v].values for v in ("lower", "median", "upper"))
    assert np.all((lower <= median) & (median <= upper))
    assert np.all((lower >= 0) & (upper <= 1))
    # Oracle: the median and quantiles of the same 600 draws (all of them: fewer than 1000).
    draws = model.membership_draws(X)
    np.testing.assert_allclose(median, np.median(draws, axis=0), rtol=1e-12, atol=1e-15)
    if ci_kind == "eti":
        expected = np.quantile(draws, [0.05, 0.95], axis=0)
        np.testing.assert_allclose(lower, expected[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(upper, expected[1], rtol=1e-12, atol=1e-15)
    else:
        # The highest-density interval holds at least 90% of the draws.
        inside = ((draws >= lower) & (draws <= upper)).mean(axis=0)
        assert np.all(inside >= 0.9)


@pytest.mark.sampling
def test_deprecated_argument_names_warn_and_give_the_same_answer(marginal_fit):
    model, X = marginal_fit
    with pytest.warns(FutureWarning, match="hdi_prob is deprecated"):
        old = model.predict_proba(X[:20], hdi_prob=0.9)
    new = model.predict_proba(X[:20], ci_prob=0.9)
    for name in new.data_vars:
        np.testing.assert_array_equal(old[name].values, new[name].values)
    with pytest.warns(FutureWarning, match="random_seed is deprecated"):
        old_draws = model.membership_draws(X[:20], max_draws=50, random_seed=4)
    np.testing.assert_array_equal(
        old_draws, model.membership_draws(X[:20], max_draws=50, random_state=4)
    )
    with pytest.warns(FutureWarning, match="random_seed is deprecated"):
        old_points, _ = model.sample_posterior_predictive(20, random_seed=1)
    np.testing.assert_array_equal(
        old_points, model.sample_posterior_predictive(20, random_state=1)[0]
    )
    with pytest.raises(TypeError, match="pass only random_state"):
        model.membership_draws(X[:20], max_draws=5, random_state=1, random_seed=1)


@pytest.mark.sampling
def test_sampling_from_the_fitted_model(marginal_fit):
    model, X = marginal_fit
    Xs, labels = model.sample(500, random_state=0)
    assert Xs.shape == (500, 2) and labels.shape == (500,)
    Xp, lp = model.sample_posterior_predictive(4000, random_state=0)
    assert Xp.shape == (4000, 2) and set(np.unique(lp)) <= {0, 1, 2}
    Xp2, _ = model.sample_posterior_predictive(4000, random_state=0)
    np.testing.assert_array_equal(Xp, Xp2)
    # The predictive mean matches the data mean within Monte Carlo error.
    se = X.std(0) / np.sqrt(4000) + X.std(0) / np.sqrt(300)
    assert np.all(np.abs(Xp.mean(0) - X.mean(0)) < 5 * se)


@pytest.mark.sampling
def test_summary_reports_rhat_and_ess(marginal_fit):
    model, _ = marginal_fit
    table = model.summary()
    assert "r_hat" in table.columns and "ess_bulk" in table.columns
    assert "weights[0]" in table.index
    weights_rows = table.loc[[f"weights[{k}]" for k in range(3)]]
    assert (weights_rows["r_hat"].astype(float) < 1.05).all()


@pytest.mark.sampling
def test_state_round_trip_predicts_exactly(marginal_fit):
    model, X = marginal_fit
    state = model._export_state()
    assert state["class"] == "MarginalGaussianMixture"
    assert state["params"] == model.get_params()
    clone = MarginalGaussianMixture._import_state(state)
    np.testing.assert_array_equal(clone.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(clone.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(clone.params_.covariances, model.params_.covariances)


@pytest.mark.sampling
def test_refit_on_new_data_of_the_same_shape_reuses_the_compiled_model(marginal_fit):
    model, _ = marginal_fit
    X2, _ = make_mixture_data(n=200, d=2, k=3, seed=2)
    refit = MarginalGaussianMixture(3, covariance_type="full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        refit.fit(X2, draws=60, tune=60, chains=1, random_state=0, progressbar=False)
    assert refit.timings_["compile"] == 0.0
    assert refit.idata_["log_likelihood"].sizes["obs_id"] == 200
    np.testing.assert_array_equal(refit.idata_["observed_data"]["obs"].values, X2)


@pytest.mark.sampling
def test_loc_and_scale_set_to_the_data_own_give_the_default_fit(marginal_fit, tmp_path):
    """The default standardisation, given explicitly, changes no draw; it is saved and loaded."""
    from bayesgmm.io import load

    model, X = marginal_fit
    fixed = MarginalGaussianMixture(
        3, covariance_type="full", loc=X.mean(axis=0), scale=X.std(axis=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        fixed.fit(X, draws=300, tune=300, chains=2, random_state=1, progressbar=False)
    np.testing.assert_array_equal(
        fixed.idata_["posterior"]["means"].values, model.idata_["posterior"]["means"].values
    )
    np.testing.assert_array_equal(fixed.predict_proba(X), model.predict_proba(X))
    fixed.save(tmp_path / "fixed")
    loaded = load(tmp_path / "fixed")
    np.testing.assert_array_equal(loaded.get_params()["loc"], X.mean(axis=0))
    np.testing.assert_array_equal(loaded.get_params()["scale"], X.std(axis=0))
    np.testing.assert_array_equal(loaded.score_samples(X), fixed.score_samples(X))


# --------------------------------------------------------------------- recovery
def _truth(kind, rng, k=3, d=2):
    weights = np.array([0.3, 0.3, 0.4])
    means = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]]) * 1e3
    scale = 1e3
    if kind == "full":
        A = rng.normal(size=(k, d, d)) * 0.4 + np.eye(d)
        covs = A @ np.swapaxes(A, 1, 2) * scale**2
    elif kind == "tied":
        A = rng.normal(size=(d, d)) * 0.4 + np.eye(d)
        covs = A @ A.T * scale**2
    elif kind == "diag":
        covs = rng.uniform(0.5, 1.5, size=(k, d)) * scale**2
    else:
        covs = rng.uniform(0.5, 1.5, size=k) * scale**2
    return GaussianMixtureParams(weights, means, covs, kind)


@pytest.mark.slow
@pytest.mark.sampling
@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_recovery_of_known_parameters(kind):
    """R-hat and ESS first, then the 94% intervals cover the truth at about the expected rate.

    15 scalars (3 weights, 6 mean coordinates, 6 variances); with 94% coverage each,
    fewer than 10 covered has probability below 1e-4. Four chains: with two of 500
    draws the largest split R-hat of nine scalars reached 1.023 at a bulk ESS of 1400,
    noise in the diagnostic rather than a sampler that had not mixed.
    """
    import arviz_stats

    rng = np.random.default_rng(20)
    truth = _truth(kind, rng)
    X, _ = truth.sample(600, rng)
    model = MarginalGaussianMixture(3, covariance_type=kind)
    model.fit(X, draws=500, tune=500, chains=4, random_state=7, progressbar=False)
    post = model.idata_["posterior"].to_dataset()[["weights", "means"]]
    assert float(arviz_stats.rhat(post).to_array().max()) <= 1.02
    assert float(arviz_stats.ess(post, method="bulk").to_array().min()) >= 200
    # Match the relabelled components to the true ones.
    order = [int(np.argmin(((model.params_.means - m) ** 2).sum(1))) for m in truth.means]
    assert sorted(order) == [0, 1, 2]
    full = model.idata_["posterior"]
    samples = {
        "weights": full["weights"].values.reshape(-1, 3)[:, order],
        "means": full["means"].values.reshape(-1, 3, 2)[:, order],
        "variances": np.diagonal(
            full["covariances"].values.reshape(-1, 3, 2, 2), axis1=-2, axis2=-1
        )[:, order],
    }
    true = {
        "weights": truth.weights,
        "means": truth.means,
        "variances": np.diagonal(truth.full_covariances(), axis1=-2, axis2=-1),
    }
    covered = []
    for name in samples:
        lo, hi = np.quantile(samples[name], [0.03, 0.97], axis=0)
        covered.append(((lo <= true[name]) & (true[name] <= hi)).ravel())
    covered = np.concatenate(covered)
    assert covered.size == 15
    assert covered.sum() >= 10


@pytest.mark.sampling
def test_save_and_load_predict_exactly(marginal_fit, tmp_path):
    from bayesgmm.io import load

    model, X = marginal_fit
    path = tmp_path / "marginal"
    model.save(path)
    loaded = load(path)
    assert isinstance(loaded, MarginalGaussianMixture)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(
        loaded.idata_["posterior"]["means"].values, model.idata_["posterior"]["means"].values
    )


@pytest.mark.sampling
def test_datatree_goes_straight_into_arviz_loo(marginal_fit):
    import arviz_stats

    model, X = marginal_fit
    result = arviz_stats.loo(model.idata_, pointwise=True)
    # elpd_loo <= lppd = sum_i log mean_s p(x_i | theta_s), and the effective number of
    # parameters is near the model's 17 free parameters on well-separated clusters.
    lppd = model.score_samples(X).sum()
    assert result.elpd <= lppd + 1e-8
    assert 8 < result.p < 35
    assert np.asarray(result.pareto_k).shape == (300,)


@pytest.mark.sampling
def test_sampler_kwargs_reach_nutpie_with_bayesgmm_defaults(marginal_fit, monkeypatch):
    import nutpie

    model, X = marginal_fit
    assert model.sampler_ == "nutpie"  # nutpie is a dependency: "auto" must pick it
    seen = []
    real_sample = nutpie.sample

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    refit = MarginalGaussianMixture(3, covariance_type="full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        refit.fit(X, draws=10, tune=10, chains=1, random_state=0, progressbar=False)
        refit.fit(
            X,
            draws=10,
            tune=10,
            chains=1,
            random_state=0,
            progressbar=False,
            nuts_sampler_kwargs={"adaptation": "diag", "maxdepth": 6, "target_accept": 0.85},
        )
    assert seen[0]["adaptation"] == "low_rank" and seen[0]["target_accept"] == 0.9
    assert seen[1]["adaptation"] == "diag" and seen[1]["maxdepth"] == 6
    assert seen[1]["target_accept"] == 0.85
    assert int(refit.idata_["sample_stats"]["depth"].max()) <= 6


def test_interrupted_sampling_raises_and_keeps_the_fit(marginal_fit, monkeypatch):
    """nutpie returns the draws made so far on Ctrl-C: fit must not pass them off as a posterior."""
    import nutpie

    model, X = marginal_fit
    assert model.sampler_ == "nutpie"  # nutpie is a dependency: "auto" must pick it
    before = model.idata_["posterior"]["means"].values.copy()
    real_sample = nutpie.sample

    def stopped_halfway(*args, **kwargs):
        kwargs["draws"] = kwargs["draws"] // 2
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", stopped_halfway)
    with pytest.raises(KeyboardInterrupt, match="after 10 of 20 draws"):
        model.fit(X, draws=20, tune=20, chains=1, random_state=3, progressbar=False)
    np.testing.assert_array_equal(model.idata_["posterior"]["means"].values, before)


# ------------------------------------------------------- predictions in blocks
@pytest.mark.sampling
def test_predictions_in_small_blocks_equal_one_block(marginal_fit, monkeypatch):
    """Blocking over rows and draws (for large X) changes no number, and bounds each block."""
    from bayesgmm import marginal

    model, X = marginal_fit
    whole = (
        model.predict_proba(X),
        model.score_samples(X),
        model.membership_draws(X[:50]),
        model.predict_proba(X[:40], ci_prob=0.9),
    )
    seen = []
    real = marginal._log_joint_blocks

    def spy(*args):
        for rows, draws, block in real(*args):
            seen.append((rows, draws, block.shape))
            yield rows, draws, block

    monkeypatch.setattr(marginal, "_BLOCK_ELEMENTS", 3000)
    monkeypatch.setattr(marginal, "_log_joint_blocks", spy)
    blocked = (
        model.predict_proba(X),
        model.score_samples(X),
        model.membership_draws(X[:50]),
        model.predict_proba(X[:40], ci_prob=0.9),
    )
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-12)
    np.testing.assert_allclose(blocked[2], whole[2], rtol=1e-12, atol=1e-15)
    for name in ("mean", "median", "lower", "upper"):
        np.testing.assert_allclose(blocked[3][name], whole[3][name], rtol=1e-12, atol=1e-15)
    # 300 rows come in blocks of 256 rows (the least), and then one draw at a time;
    # every block, draws x rows x K x (d + 1) numbers, stays within the budget.
    assert {rows.stop - rows.start for rows, _, _ in seen} >= {256, 44}
    assert all(s * r * 3 * 3 <= 3000 for _, _, (s, r, _) in seen)


# ----------------------------------------------------------- Laplace's method
def _quadratic_and_quartic(a, A):
    """log f(x) = -(x - a)' A (x - a) / 2 - sum((x - a)^4) / 4: mode a, minus Hessian A there."""

    def value_and_grad(x):
        u = x - a
        return -0.5 * u @ A @ u - 0.25 * np.sum(u**4), -(A @ u) - u**3

    return value_and_grad


def test_newton_finds_the_mode_and_the_hessian_of_a_known_density():
    from bayesgmm._laplace import finite_difference_precision, laplace_mode

    rng = np.random.default_rng(0)
    B = rng.normal(size=(4, 4))
    A = B @ B.T + 4 * np.eye(4)
    a = rng.normal(size=4)
    fg = _quadratic_and_quartic(a, A)
    # Central differences are exact for the quadratic part, O(h^2) for the quartic.
    np.testing.assert_allclose(
        finite_difference_precision(lambda x: fg(x)[1], a + 0.3),
        A + 3 * 0.09 * np.eye(4),
        rtol=1e-7,
        atol=1e-7,
    )
    mode, precision, info = laplace_mode(fg, a + rng.normal(size=4))
    # Stopping rule: the remaining Newton step is below 0.01 posterior sd.
    sd = np.sqrt(np.diag(np.linalg.inv(A)))
    assert np.all(np.abs(mode - a) < 0.01 * sd)
    np.testing.assert_allclose(precision, A, rtol=1e-3, atol=1e-6)
    assert info["converged"] and info["newton_decrement"] < 0.01
    assert info["hessian_evaluations"] >= 1 and not info["used_lbfgs"]


def test_newton_uses_a_preconditioner_and_ends_with_the_exact_hessian():
    from bayesgmm._laplace import laplace_mode

    A = np.diag([1.0, 10.0, 100.0])
    a = np.array([1.0, -2.0, 0.5])
    # A preconditioner 10% off: Newton converges anyway, and the Hessian returned is
    # evaluated at the mode, not the preconditioner.
    mode, precision, info = laplace_mode(
        _quadratic_and_quartic(a, A), a + 1.0, preconditioner=1.1 * A
    )
    assert np.all(np.abs(mode - a) < 0.01 / np.sqrt(np.diag(A)))
    np.testing.assert_allclose(precision, A, rtol=1e-3)
    assert info["hessian_evaluations"] == 1


def test_newton_refuses_a_density_without_a_strict_mode():
    from bayesgmm._laplace import laplace_mode

    def flat_in_one_direction(x):  # log f = -x0^2 / 2, constant in x1
        return -0.5 * x[0] ** 2, np.array([-x[0], 0.0])

    with pytest.raises(RuntimeError, match="not positive definite"):
        laplace_mode(flat_in_one_direction, np.array([1.0, 1.0]))


def test_minibatch_model_scales_the_likelihood_to_all_rows():
    """With batch_size the observed term is n / batch_size times the batch's log-likelihood."""
    from bayesgmm._marginal_model import build_pymc_model, check_priors

    rng = np.random.default_rng(3)
    # Identical rows: every minibatch has the same likelihood, so the scaled estimate
    # equals the full-data likelihood exactly, whatever rows were drawn.
    Z = np.tile(rng.normal(size=(1, 2)), (50, 1))
    values, _ = _values("full", rng)
    terms = []
    for batch_size in (None, 7):
        model = build_pymc_model(Z, 2, "full", check_priors(None), [0, 1], batch_size)
        point = _transformed_point(model, values)
        fn = model.compile_logp(vars=[model["obs"]], jacobian=False, mode="FAST_COMPILE")
        terms.append(fn(point))
    assert terms[1] == pytest.approx(terms[0], rel=1e-10)


@pytest.mark.sampling
def test_laplace_fit_follows_the_datatree_contract(laplace_fit):
    model, X, _ = laplace_fit
    idata = model.idata_
    assert set(idata.children) == {
        "posterior",
        "posterior_raw",
        "observed_data",
        "log_likelihood",
        "laplace",
    }
    post = idata["posterior"]
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 1000
    assert post.attrs["inference_method"] == "laplace"
    assert idata.attrs["inference_method"] == "laplace"
    assert idata["log_likelihood"]["obs"].shape == (1, 1000, 3000)
    assert model.inference_method_ == "laplace" and model.sampler_ is None
    assert model.subsample_indices_ is None
    assert {"start", "compile", "optimize", "draw", "log_likelihood"} <= set(model.timings_)
    laplace = idata["laplace"]
    size = 2 + 6 + 6 + 3  # weights (simplex), means, log sds, correlations
    assert laplace["mode"].shape == (size,)
    assert laplace["precision"].shape == (size, size)
    assert "means[2, 1]" in laplace["unconstrained"].values
    np.testing.assert_allclose(laplace["precision"], laplace["precision"].T)
    # Draws are exchangeable and independent: relabelling to the EM reference changes
    # nothing for well-separated clusters.
    np.testing.assert_array_equal(model.permutations_, np.broadcast_to(np.arange(3), (1, 1000, 3)))


@pytest.mark.sampling
def test_laplace_mode_converged_and_the_normal_approximation_passes_its_check(laplace_fit):
    model, _, _ = laplace_fit
    attrs = model.idata_["laplace"].attrs
    assert attrs["newton_decrement"] < 0.01
    assert attrs["pareto_k"] < 0.7
    assert attrs["good_k"] == pytest.approx(1 - 1 / np.log10(200))
    assert attrs["hessian_evaluations"] >= 1 and attrs["used_lbfgs"] == 0
    # log q of the check draws is the normal density of the stored mode and precision.
    laplace = model.idata_["laplace"]
    precision = laplace["precision"].values
    chol = np.linalg.cholesky(precision)
    size = precision.shape[0]
    q_max = np.log(np.diag(chol)).sum() - 0.5 * size * np.log(2 * np.pi)
    assert np.all(laplace["log_q"].values <= q_max)


@pytest.mark.sampling
def test_laplace_recovers_the_cluster_means_with_their_sampling_error(laplace_fit):
    """Posterior of each mean: centred on its cluster's sample mean, sd its standard error.

    For well-separated clusters the posterior of mu_k is, to first order, normal with
    mean the sample mean of cluster k and sd sqrt(s_kj^2 / n_k). The sd of 1000
    independent draws has Monte Carlo error about 1 / sqrt(2000) = 2.2%: 10% is 4.5 of it.
    """
    model, X, labels = laplace_fit
    post = model.idata_["posterior"]
    mean = post["means"].mean(("chain", "draw")).values
    sd = post["means"].std(("chain", "draw")).values
    for j in range(3):
        cluster = X[labels == j]
        k = int(np.argmin(((mean - cluster.mean(0)) ** 2).sum(1)))
        standard_error = np.sqrt(cluster.var(0) / len(cluster))
        assert np.all(np.abs(mean[k] - cluster.mean(0)) < 0.25 * sd[k])
        np.testing.assert_allclose(sd[k], standard_error, rtol=0.10)


@pytest.mark.sampling
def test_laplace_predictions(laplace_fit):
    from sklearn.metrics import adjusted_rand_score

    model, X, labels = laplace_fit
    assert adjusted_rand_score(labels, model.predict(X)) > 0.95
    probs = model.predict_proba(X[:30], ci_prob=0.9)
    np.testing.assert_allclose(probs["mean"].sum("component"), 1.0, rtol=1e-12)
    assert np.all(probs["lower"].values <= probs["upper"].values)
    # The pointwise log-likelihood agrees with score_samples' per-draw densities.
    loglik = model.idata_["log_likelihood"]["obs"].values[0]
    expected = logsumexp(loglik[:, :30], axis=0) - np.log(loglik.shape[0])
    np.testing.assert_allclose(model.score_samples(X[:30]), expected, rtol=1e-10)


@pytest.mark.sampling
def test_laplace_refit_is_reproducible_and_reuses_the_compiled_model(laplace_fit):
    model, X, _ = laplace_fit
    again = MarginalGaussianMixture(3).fit(X, method="laplace", random_state=2)
    assert again.timings_["compile"] == 0.0
    np.testing.assert_array_equal(
        again.idata_["posterior"]["means"].values, model.idata_["posterior"]["means"].values
    )


@pytest.mark.sampling
def test_log_likelihood_auto_stores_up_to_the_limit_and_compare_says_what_to_do(
    laplace_fit, monkeypatch
):
    from bayesgmm import compare, marginal

    _, X, _ = laplace_fit
    X = X[:1000]
    draws = 100
    # At the limit "auto" stores the group; one element above it, it does not.
    monkeypatch.setattr(marginal, "LOG_LIKELIHOOD_MAX_ELEMENTS", draws * 1000)
    fit = lambda **kw: MarginalGaussianMixture(3).fit(  # noqa: E731
        X, method="laplace", draws=draws, random_state=0, **kw
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        stored = fit()
        monkeypatch.setattr(marginal, "LOG_LIKELIHOOD_MAX_ELEMENTS", draws * 1000 - 1)
        skipped = fit()
        forced = fit(log_likelihood=True)
        never = fit(log_likelihood=False)
    assert "log_likelihood" in stored.idata_.children
    assert "log_likelihood" in forced.idata_.children
    for model in (skipped, never):
        assert "log_likelihood" not in model.idata_.children
        assert "log_likelihood" not in model.timings_
    assert "100000 numbers > LOG_LIKELIHOOD_MAX_ELEMENTS" in skipped.idata_.attrs["log_likelihood"]
    assert "log_likelihood=False" in never.idata_.attrs["log_likelihood"]
    with pytest.raises(ValueError, match=r"^models\['big'\]: .*compute_log_likelihood"):
        compare({"big": skipped}, X)
    # Computing it afterwards gives the group fit would have stored.
    skipped.compute_log_likelihood()
    assert "log_likelihood" not in skipped.idata_.attrs
    np.testing.assert_allclose(
        skipped.idata_["log_likelihood"]["obs"].values,
        stored.idata_["log_likelihood"]["obs"].values,
        rtol=1e-12,
    )
    assert compare({"big": skipped}, X, include_waic=False).loc["big", "elpd"] < 0


@pytest.mark.sampling
def test_subsample_fits_the_chosen_rows_and_widens_the_posterior_by_sqrt_n_over_m(laplace_fit):
    """Posterior sds on m of n rows are sqrt(n / m) times those on all rows, to first order."""
    model, X, _ = laplace_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        sub = MarginalGaussianMixture(3).fit(X, method="laplace", subsample=750, random_state=4)
    rows = sub.subsample_indices_
    assert rows.shape == (750,) and np.all(np.diff(rows) > 0) and rows.max() < 3000
    np.testing.assert_array_equal(sub.idata_["observed_data"]["obs_id"].values, rows)
    np.testing.assert_array_equal(sub.idata_["observed_data"]["obs"].values, X[rows])
    assert sub.idata_["log_likelihood"].sizes["obs_id"] == 750

    def sds(fitted):
        post = fitted.idata_["posterior"]
        return np.concatenate(
            [post[v].std(("chain", "draw")).values.ravel() for v in ("weights", "means")]
        )

    ratio = sds(sub) / sds(model)
    assert np.median(ratio) == pytest.approx(2.0, rel=0.15)
    with pytest.raises(ValueError, match="^models"):  # fitted on other rows than X
        from bayesgmm import compare

        compare({"sub": sub}, X)


@pytest.mark.sampling
def test_laplace_save_and_load_round_trip(laplace_fit, tmp_path):
    from bayesgmm.io import load

    model, X, _ = laplace_fit
    model.save(tmp_path / "laplace.nc")
    loaded = load(tmp_path / "laplace.nc")
    assert loaded.inference_method_ == "laplace" and loaded.subsample_indices_ is None
    assert loaded.idata_.attrs["inference_method"] == "laplace"
    np.testing.assert_array_equal(loaded.predict_proba(X[:50]), model.predict_proba(X[:50]))
    np.testing.assert_array_equal(
        loaded.idata_["laplace"]["precision"].values, model.idata_["laplace"]["precision"].values
    )
    assert loaded.idata_["laplace"].attrs["pareto_k"] == model.idata_["laplace"].attrs["pareto_k"]


@pytest.mark.slow
@pytest.mark.sampling
def test_laplace_agrees_with_nuts_on_many_rows():
    """At n = 20,000 the normal approximation and NUTS give the same posterior.

    Means agree within 0.25 NUTS posterior sd and sds within 20% for every weight,
    mean coordinate and log standard deviation (the NUTS sds have Monte Carlo error
    of a few percent at this ESS).
    """
    X, _ = make_mixture_data(n=20_000, d=2, k=3, seed=8)
    nuts = MarginalGaussianMixture(3).fit(
        X, draws=500, tune=500, chains=2, random_state=1, progressbar=False, log_likelihood=False
    )
    laplace = MarginalGaussianMixture(3).fit(
        X, method="laplace", draws=2000, random_state=1, log_likelihood=False
    )

    def scalars(fit):
        post = fit.idata_["posterior"]
        s = post.sizes["chain"] * post.sizes["draw"]
        return np.concatenate(
            [
                post["weights"].values.reshape(s, -1),
                post["means"].values.reshape(s, -1),
                np.log(post["stds"].values.reshape(s, -1)),
            ],
            axis=1,
        )

    a, b = scalars(nuts), scalars(laplace)
    sd = a.std(0)
    assert np.all(np.abs(b.mean(0) - a.mean(0)) < 0.25 * sd)
    np.testing.assert_allclose(b.std(0) / sd, 1.0, atol=0.2)


@pytest.mark.slow
@pytest.mark.sampling
def test_laplace_intervals_cover_the_truth_at_their_level():
    """94% intervals over 10 data sets x 15 scalars cover the truth about 141 times.

    With coverage 0.94 the count is about binomial(150, 0.94), sd 2.9: fewer than
    128 covered (4.5 sd below) has probability below 1e-4.
    """
    rng = np.random.default_rng(30)
    truth = _truth("full", rng)
    covered = 0
    for rep in range(10):
        X, _ = truth.sample(5000, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)
            model = MarginalGaussianMixture(3).fit(
                X, method="laplace", random_state=rep, log_likelihood=False
            )
        order = [int(np.argmin(((model.params_.means - m) ** 2).sum(1))) for m in truth.means]
        assert sorted(order) == [0, 1, 2]
        post = model.idata_["posterior"]
        samples = {
            "weights": post["weights"].values[0][:, order],
            "means": post["means"].values[0][:, order],
            "variances": np.diagonal(post["covariances"].values[0], axis1=-2, axis2=-1)[:, order],
        }
        true = {
            "weights": truth.weights,
            "means": truth.means,
            "variances": np.diagonal(truth.full_covariances(), axis1=-2, axis2=-1),
        }
        for name, values in samples.items():
            lo, hi = np.quantile(values, [0.03, 0.97], axis=0)
            covered += int(((lo <= true[name]) & (true[name] <= hi)).sum())
    assert covered >= 128


@pytest.mark.slow
def test_pymc_nuts_agrees_with_nutpie_on_the_shared_fit(marginal_fit):
    """The fallback sampler runs the same model (compiled Ops included) to the same posterior."""
    import arviz_stats

    model, X = marginal_fit
    assert model.sampler_ == "nutpie"  # nutpie is a dependency: "auto" must pick it
    fallback = MarginalGaussianMixture(3, covariance_type="full").fit(
        X, draws=300, tune=300, chains=2, nuts_sampler="pymc", random_state=3, progressbar=False
    )
    assert fallback.sampler_ == "pymc"
    # The two fits start from different EM runs, so their labels may be permuted.
    ours_means = fallback.idata_["posterior"]["means"].mean(("chain", "draw")).values
    ref_means = model.idata_["posterior"]["means"].mean(("chain", "draw")).values
    order = min(
        itertools.permutations(range(3)),
        key=lambda perm: np.abs(ours_means[list(perm)] - ref_means).sum(),
    )
    for name in ("weights", "means"):
        ours = fallback.idata_["posterior"][name].isel(component=list(order))
        ref = model.idata_["posterior"][name]
        sd = ref.std(("chain", "draw")).values
        gap = np.abs(ours.mean(("chain", "draw")).values - ref.mean(("chain", "draw")).values)
        # Each posterior mean carries Monte Carlo error of about sd / sqrt(ESS) with ESS
        # in the hundreds, so the two differ by ~0.1 sd; 0.5 sd is five of those.
        assert np.all(gap < 0.5 * sd), (name, gap / sd)
        posterior = fallback.idata_["posterior"].to_dataset()[[name]]
        assert float(arviz_stats.rhat(posterior).to_array().max()) < 1.05
