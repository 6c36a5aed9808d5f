"""Tests of the variational Dirichlet-process mixture (bayesgmm.dirichlet_process)."""

import copy
import dataclasses
import json

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES, make_mixture_data
from scipy import integrate, stats
from scipy.special import gammaln, multigammaln

from bayesgmm import NotFittedError
from bayesgmm.dirichlet_process import DPGaussianMixture


@pytest.fixture(scope="module")
def small_data():
    X, labels = make_mixture_data(n=300, d=2, k=3, seed=3)
    return X, labels


@pytest.fixture(scope="module")
def fitted_full(small_data):
    X, _ = small_data
    return DPGaussianMixture(8, random_state=0).fit(X)


# ------------------------------------------------------------------ the ELBO
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("merge", [True, False])
def test_elbo_never_decreases(small_data, covariance_type, merge):
    X, _ = small_data
    model = DPGaussianMixture(
        8, covariance_type=covariance_type, merge=merge, tol=0.0, max_iter=60, random_state=1
    ).fit(X)
    trace = model.elbo_trace_
    assert trace.size >= 2
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    assert model.elbo_ == trace[-1]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_elbo_never_decreases_from_random_start(small_data, covariance_type):
    X, _ = small_data
    model = DPGaussianMixture(
        6,
        covariance_type=covariance_type,
        init_params="random",
        concentration=2.0,
        max_iter=40,
        random_state=2,
    ).fit(X)
    trace = model.elbo_trace_
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


# --------------------------------------------- conjugate one-component case
def _raw_statistics(X):
    n = X.shape[0]
    xbar = X.mean(axis=0)
    centred = X - xbar
    return n, xbar, centred.T @ centred


def test_truncation_one_full_is_the_exact_normal_wishart_posterior():
    rng = np.random.default_rng(5)
    X = rng.multivariate_normal(
        [1.0, -2.0, 0.5], [[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]], size=80
    )
    d = 3
    m0, beta0, nu0 = np.array([0.5, 0.0, 1.0]), 0.7, d + 3.0
    prior_cov = np.diag([1.5, 2.0, 0.8])
    model = DPGaussianMixture(
        1,
        priors={
            "mean": m0,
            "mean_precision": beta0,
            "degrees_of_freedom": nu0,
            "covariance": prior_cov,
        },
    ).fit(X)
    n, xbar, scatter = _raw_statistics(X)
    w0_inv = (nu0 - d - 1.0) * prior_cov
    beta_n = beta0 + n
    m_n = (beta0 * m0 + n * xbar) / beta_n
    w_n_inv = w0_inv + scatter + beta0 * n / beta_n * np.outer(xbar - m0, xbar - m0)
    nu_n = nu0 + n
    np.testing.assert_allclose(model.means_[0], m_n, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_[0], w_n_inv / (nu_n - d - 1.0), rtol=1e-10)
    # the ELBO of the exact posterior is the log evidence (Bishop 2006, ex. 10.x)
    log_evidence = (
        -0.5 * n * d * np.log(np.pi)
        + 0.5 * d * np.log(beta0 / beta_n)
        + 0.5 * nu0 * np.linalg.slogdet(w0_inv)[1]
        - 0.5 * nu_n * np.linalg.slogdet(w_n_inv)[1]
        + multigammaln(nu_n / 2.0, d)
        - multigammaln(nu0 / 2.0, d)
    )
    assert model.elbo_ == pytest.approx(log_evidence, rel=1e-10)
    assert model.weights_ == pytest.approx([1.0])


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_truncation_one_gamma_families_are_exact(covariance_type):
    rng = np.random.default_rng(6)
    X = rng.normal([0.0, 3.0], [1.0, 0.4], size=(60, 2))
    n, xbar, scatter = _raw_statistics(X)
    d = 2
    m0, beta0, nu0 = np.array([0.2, 2.5]), 0.3, 5.0
    prior_cov = np.array([1.2, 0.7]) if covariance_type == "diag" else 0.9
    model = DPGaussianMixture(
        1,
        covariance_type=covariance_type,
        priors={
            "mean": m0,
            "mean_precision": beta0,
            "degrees_of_freedom": nu0,
            "covariance": prior_cov,
        },
    ).fit(X)
    a0 = nu0 / 2.0
    b0 = (a0 - 1.0) * np.asarray(prior_cov)
    beta_n = beta0 + n
    per_feature = np.diag(scatter) + beta0 * n / beta_n * (xbar - m0) ** 2
    if covariance_type == "diag":
        a_n, b_n = a0 + n / 2.0, b0 + per_feature / 2.0
        gamma_part = np.sum(a0 * np.log(b0) - a_n * np.log(b_n) + gammaln(a_n) - gammaln(a0))
    else:
        a_n, b_n = a0 + n * d / 2.0, b0 + per_feature.sum() / 2.0
        gamma_part = a0 * np.log(b0) - a_n * np.log(b_n) + gammaln(a_n) - gammaln(a0)
    np.testing.assert_allclose(model.covariances_[0], b_n / (a_n - 1.0), rtol=1e-10)
    np.testing.assert_allclose(model.means_[0], (beta0 * m0 + n * xbar) / beta_n, rtol=1e-10)
    log_evidence = -0.5 * n * d * np.log(2 * np.pi) + 0.5 * d * np.log(beta0 / beta_n) + gamma_part
    assert model.elbo_ == pytest.approx(log_evidence, rel=1e-10)


# ------------------------------------------------------------ recovery of K
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_true_number_of_components_found(seed):
    X, labels = make_mixture_data(n=600, d=2, k=3, seed=seed)
    model = DPGaussianMixture(10, random_state=seed).fit(X)
    assert model.converged_
    assert model.effective_n_components_ == 3
    assert np.sum(model.weights_ > 0.01) == 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [2, 4])
def test_true_number_of_components_found_many_seeds(seed, k):
    X, _ = make_mixture_data(n=2000, d=2, k=k, seed=100 + seed, separation=8.0)
    model = DPGaussianMixture(20, random_state=seed).fit(X)
    # a DP may keep a tiny extra cluster for a few outlying points (its posterior
    # of the number of clusters is inconsistent): count non-negligible weights
    assert np.sum(model.weights_ > 0.01) == k
    assert model.effective_n_components_ >= k


# ------------------------------------------------------ posterior predictive
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predictive_integrates_to_one_in_1d(covariance_type):
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(-2, 0.5, 40), rng.normal(2, 1.0, 25)])[:, None]
    model = DPGaussianMixture(5, covariance_type=covariance_type, random_state=0).fit(X)

    def density(x):
        return float(np.exp(model.score_samples(np.array([[x]]))[0]))

    total, error = integrate.quad(density, -np.inf, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_predictive_integrates_to_one_in_2d(small_data, covariance_type):
    X, _ = small_data
    model = DPGaussianMixture(6, covariance_type=covariance_type, random_state=0).fit(X)
    # a wide grid: the Student-t tails decay polynomially, so the box is large
    lo, hi = X.min(axis=0) - 60, X.max(axis=0) + 60
    grid = [np.linspace(lo[j], hi[j], 801) for j in range(2)]
    xx, yy = np.meshgrid(*grid, indexing="ij")
    dens = np.exp(model.score_samples(np.column_stack([xx.ravel(), yy.ravel()])))
    total = integrate.trapezoid(
        integrate.trapezoid(dens.reshape(xx.shape), grid[1], axis=1), grid[0]
    )
    assert total == pytest.approx(1.0, abs=5e-3)


def test_predictive_is_the_mean_over_q_of_the_gaussian_mixture(fitted_full, small_data):
    X, _ = small_data
    model = fitted_full
    tree = model.to_datatree(n_draws=2000, random_state=3)
    post = tree["posterior"]
    w = post["weights"].values[0]
    mu = post["means"].values[0]
    cov = post["covariances"].values[0]
    points = X[:5]
    prec = np.linalg.inv(cov)
    diff = points[None, None, :, :] - mu[:, :, None, :]
    maha = np.einsum("skpi,skij,skpj->skp", diff, prec, diff)
    log_norm = -0.5 * (2 * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1])
    dens = np.einsum("sk,skp->sp", w, np.exp(log_norm[..., None] - 0.5 * maha))
    # the same density for one draw through scipy, as an oracle of the vectorised form
    one = sum(
        w[0, k] * stats.multivariate_normal(mu[0, k], cov[0, k]).pdf(points)
        for k in range(w.shape[1])
    )
    np.testing.assert_allclose(dens[0], one, rtol=1e-10)
    mc = np.log(dens.mean(axis=0))
    # Monte Carlo error of a mean of 2000 draws: well below 3%
    np.testing.assert_allclose(mc, model.score_samples(points), atol=0.03)


# ------------------------------------------------------------ draws from q
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_q_and_log_prior_of_draws_match_scipy(small_data, covariance_type):
    X, _ = small_data
    model = DPGaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    tree = model.to_datatree(n_draws=5, random_state=1)
    post = tree["posterior"]
    state, prior = model._posterior.state, model._posterior.prior
    comps = state.components
    center = model._center
    d = X.shape[1]
    for s in range(5):
        w = post["weights"].values[0, s]
        alpha = float(post["concentration"].values[0, s])
        mu = post["means"].values[0, s] - center
        lam = np.linalg.inv(post["covariances"].values[0, s])
        remaining = 1.0 - np.concatenate([[0.0], np.cumsum(w)[:-1]])
        v = (w / remaining)[:-1]
        log_q = stats.beta.logpdf(v, state.stick_a, state.stick_b).sum()
        log_q += stats.gamma.logpdf(
            alpha, state.concentration.shape, scale=1.0 / state.concentration.rate
        )
        log_p = stats.beta.logpdf(v, 1.0, alpha).sum() + stats.gamma.logpdf(alpha, 1.0)
        for k in range(w.size):
            if covariance_type in ("full", "tied"):
                scale_q = comps.scale if covariance_type == "tied" else comps.scale[k]
                nu = float(comps.dof) if covariance_type == "tied" else comps.dof[k]
                if covariance_type == "full" or k == 0:
                    log_q += stats.wishart.logpdf(lam[k], df=nu, scale=np.linalg.inv(scale_q))
                    log_p += stats.wishart.logpdf(
                        lam[k], df=prior.dof, scale=np.linalg.inv(prior.scale)
                    )
            else:
                lam_k = np.diag(lam[k]) if covariance_type == "diag" else lam[k][:1, 0]
                rate_q = comps.scale[k]
                log_q += stats.gamma.logpdf(lam_k, comps.dof[k], scale=1.0 / rate_q).sum()
                log_p += stats.gamma.logpdf(lam_k, prior.dof, scale=1.0 / prior.scale).sum()
            log_q += stats.multivariate_normal.logpdf(
                mu[k], comps.mean[k], np.linalg.inv(comps.beta[k] * lam[k])
            )
            log_p += stats.multivariate_normal.logpdf(
                mu[k], prior.mean, np.linalg.inv(prior.mean_precision * lam[k])
            )
        loglik = tree["log_likelihood"]["obs"].values[0, s]
        shift = float(tree["sample_stats"]["log_q"].values[0, s]) - log_q
        if model.interval_method_ == "VI+PSIS":
            # a pool draw picked by its smoothed importance weight: log_q is log q plus
            # the log of that weight, the weights scaled to mean one
            log_w = model._importance.log_weights
            scaled = log_w - np.logaddexp.reduce(log_w) + np.log(log_w.size)
            assert np.isclose(shift, scaled, rtol=0, atol=1e-7 * max(1.0, abs(log_q))).any()
        else:
            assert shift == pytest.approx(0.0, abs=1e-7 * abs(log_q))
        assert float(tree["sample_stats"]["log_p"].values[0, s]) == pytest.approx(
            log_p + loglik.sum(), rel=1e-7
        )
    assert d == 2


# Pareto k above 0.7 is the diagnostic of the approximation (Yao et al. 2018) doing its job
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_datatree_layout_and_loo_approximate_posterior(fitted_full, small_data):
    from arviz_stats import loo_approximate_posterior

    X, _ = small_data
    tree = fitted_full.to_datatree(n_draws=200, random_state=0)
    post = tree["posterior"]
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    assert post.sizes["component"] == 8
    np.testing.assert_allclose(post["weights"].values.sum(axis=-1), 1.0, rtol=1e-12)
    assert tree["log_likelihood"]["obs"].dims == ("chain", "draw", "obs_id")
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, X)
    ss = tree["sample_stats"]
    result = loo_approximate_posterior(tree, ss["log_p"], ss["log_q"], pointwise=True)
    assert np.isfinite(result.elpd)
    assert np.all(np.isfinite(result.pareto_k.values))
    # the elpd per point is near the training predictive density
    assert result.elpd / X.shape[0] == pytest.approx(fitted_full.score(X), abs=0.1)


def test_n_occupied_distribution(fitted_full):
    dist = fitted_full.n_occupied_distribution(n_draws=100, random_state=0)
    assert dist.sum() == pytest.approx(1.0)
    assert dist.index.min() >= 1
    assert int(dist.idxmax()) == 3


# ------------------------------------------------------- memberships and API
def test_membership_and_predict_proba(fitted_full, small_data):
    X, labels = small_data
    model = fitted_full
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    draws = model.membership_draws(X[:20], max_draws=30, random_state=0)
    assert draws.shape == (30, 20, 8)
    np.testing.assert_allclose(draws.sum(axis=2), 1.0, rtol=1e-12)
    ds = model.predict_proba(X[:20], ci_prob=0.9)
    assert set(ds.data_vars) == {"mean", "median", "lower", "upper"}
    assert ds["mean"].dims == ("obs_id", "component")
    assert ds.attrs == {"ci_prob": 0.9, "ci_kind": "eti", "interval_method": model.interval_method_}
    assert np.all(ds["lower"].values <= ds["median"].values)
    assert np.all(ds["median"].values <= ds["upper"].values)
    assert np.all((ds["lower"].values >= 0) & (ds["upper"].values <= 1))
    # with well separated clusters, draws agree with the predictive membership
    np.testing.assert_allclose(ds["mean"].values, proba[:20], atol=0.05)


def test_hdi_prob_is_a_deprecated_alias_of_ci_prob(fitted_full, small_data):
    X, _ = small_data
    with pytest.warns(FutureWarning, match="hdi_prob is deprecated"):
        old = fitted_full.predict_proba(X[:20], hdi_prob=0.9)
    new = fitted_full.predict_proba(X[:20], ci_prob=0.9)
    assert old.identical(new)
    with pytest.raises(TypeError, match="pass only ci_prob"):
        fitted_full.predict_proba(X[:20], ci_prob=0.9, hdi_prob=0.9)


def test_highest_density_interval_holds_its_mass_and_the_median(fitted_full, small_data):
    X, _ = small_data
    ds = fitted_full.predict_proba(X[:20], ci_prob=0.8, ci_kind="hdi")
    assert ds.attrs == {
        "ci_prob": 0.8,
        "ci_kind": "hdi",
        "interval_method": fitted_full.interval_method_,
    }
    lower, median, upper = (ds[v].values for v in ("lower", "median", "upper"))
    assert np.all(lower <= median) and np.all(median <= upper)
    # the draws behind the Dataset: 200 from q with seed 0
    draws = fitted_full.membership_draws(X[:20], random_state=0)
    inside = ((draws >= lower) & (draws <= upper)).mean(axis=0)
    assert np.all(inside >= 0.8)
    with pytest.raises(ValueError, match="^ci_prob: expected a probability above 0.5"):
        fitted_full.predict_proba(X[:20], ci_prob=0.4, ci_kind="hdi")
    with pytest.raises(ValueError, match="^ci_kind: expected"):
        fitted_full.predict_proba(X[:20], ci_prob=0.8, ci_kind="quantile")


def test_random_seed_is_a_deprecated_alias_of_random_state(fitted_full, small_data):
    X, _ = small_data
    calls = {
        "membership_draws": lambda **kw: fitted_full.membership_draws(X[:10], max_draws=5, **kw),
        "n_occupied_distribution": lambda **kw: fitted_full.n_occupied_distribution(20, **kw),
        "to_datatree": lambda **kw: fitted_full.to_datatree(n_draws=5, **kw)["posterior"],
    }
    for name, call in calls.items():
        with pytest.warns(FutureWarning, match="random_seed is deprecated"):
            old = call(random_seed=7)
        new = call(random_state=7)
        assert old.identical(new) if name == "to_datatree" else np.array_equal(old, new), name
        with pytest.raises(TypeError, match="^random_seed: expected"), pytest.warns(FutureWarning):
            call(random_seed="a")
        with pytest.raises(TypeError, match="^random_state: expected"):
            call(random_state="a")
        with pytest.raises(TypeError, match="pass only random_state"):
            call(random_state=1, random_seed=1)


def test_datatree_names_the_inference_method(fitted_full):
    tree = fitted_full.to_datatree(n_draws=3, random_state=0)
    assert tree.attrs["inference_method"] == "cavi"
    assert tree["posterior"].attrs["inference_method"] == "cavi"


def _same(a, b):
    """Field-by-field equality of (nested) frozen dataclasses holding arrays and scalars."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b))
    return bool(a == b)


def test_posterior_is_a_comparable_dataclass_and_a_rejected_refit_keeps_it(small_data):
    X, _ = small_data
    model = DPGaussianMixture(4, random_state=0).fit(X)
    posterior = model._posterior
    assert dataclasses.is_dataclass(posterior)
    assert {f.name for f in dataclasses.fields(posterior)} == {"state", "prior"}
    assert _same(posterior, copy.deepcopy(posterior))
    assert not _same(posterior, DPGaussianMixture(4, random_state=1).fit(X[::-1])._posterior)
    before = copy.deepcopy(posterior)
    with pytest.raises(ValueError):
        model.fit(np.full((5, 2), np.inf))
    with pytest.raises(ValueError):
        model.set_params(priors={"bogus": 1.0}).fit(X)
    assert model._posterior is posterior and _same(model._posterior, before)


def test_sample_from_predictive(fitted_full, small_data):
    X, _ = small_data
    a, la = fitted_full.sample(500, random_state=4)
    b, lb = fitted_full.sample(500, random_state=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert a.shape == (500, 2)
    assert set(np.unique(la)) <= set(np.flatnonzero(fitted_full.weights_ > 1e-6))
    # samples land where the training data are
    assert fitted_full.score(a) > fitted_full.score(X) - 0.5


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_from_predictive_every_covariance_type(small_data, covariance_type):
    X, _ = small_data
    model = DPGaussianMixture(6, covariance_type=covariance_type, random_state=0).fit(X)
    a, la = model.sample(400, random_state=4)
    b, lb = model.sample(400, random_state=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert a.shape == (400, 2) and np.all(np.diff(la) >= 0)
    # samples land where the training data are
    assert model.score(a) > model.score(X) - 0.5


def test_reproducible_with_fixed_random_state(small_data):
    X, _ = small_data
    a = DPGaussianMixture(8, random_state=11).fit(X)
    b = DPGaussianMixture(8, random_state=11).fit(X)
    np.testing.assert_array_equal(a.elbo_trace_, b.elbo_trace_)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_components_sorted_and_summaries(fitted_full, small_data):
    X, _ = small_data
    model = fitted_full
    assert np.all(np.diff(model.weights_) <= 1e-12)
    assert model.params_.n_components == 8
    assert model.covariances_.shape == (8, 2, 2)
    assert model.n_features_in_ == 2
    assert model.elbo_ == model.elbo_trace_[-1]
    assert model.score(X) == pytest.approx(model.score_samples(X).mean())


def test_export_import_round_trip(fitted_full, small_data):
    X, _ = small_data
    state = json.loads(json.dumps(fitted_full._export_state()))
    assert state["class"] == "DPGaussianMixture"
    assert state["params"]["truncation"] == 8
    clone = DPGaussianMixture._import_state(state)
    np.testing.assert_array_equal(clone.score_samples(X), fitted_full.score_samples(X))
    np.testing.assert_array_equal(clone.predict_proba(X), fitted_full.predict_proba(X))


def test_dataframe_feature_names(small_data):
    pd = pytest.importorskip("pandas")
    X, _ = small_data
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = DPGaussianMixture(4, random_state=0).fit(frame)
    assert list(model.feature_names_in_) == ["a", "b"]
    tree = model.to_datatree(n_draws=3, random_state=0)
    assert list(tree["posterior"]["feature"].values) == ["a", "b"]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"truncation": 0}, ValueError, "truncation"),
        ({"truncation": 2.5}, TypeError, "truncation"),
        ({"covariance_type": "banana"}, ValueError, "covariance_type"),
        ({"concentration": -1.0}, ValueError, "concentration"),
        ({"concentration": "big"}, TypeError, "concentration"),
        ({"priors": {"bogus": 1}}, ValueError, "priors"),
        ({"priors": {"degrees_of_freedom": 1.0}}, ValueError, "degrees_of_freedom"),
        ({"priors": {"covariance": np.eye(3)}}, ValueError, "covariance"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"init_params": "magic"}, ValueError, "init_params"),
        ({"method": "mcmc"}, ValueError, "method"),
        ({"random_state": "x"}, TypeError, "random_state"),
    ],
)
def test_bad_arguments_raise_before_fitting(small_data, kwargs, error, name):
    X, _ = small_data
    model = DPGaussianMixture(**kwargs)
    with pytest.raises(error, match=name):
        model.fit(X)
    assert not hasattr(model, "params_")


def test_bad_data_and_unfitted_use(fitted_full):
    with pytest.raises(ValueError, match="^X: expected at least one observed"):
        DPGaussianMixture().fit(np.array([[np.nan, np.nan], [1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(NotFittedError):
        DPGaussianMixture().predict(np.zeros((2, 2)))
    with pytest.raises(NotFittedError):
        DPGaussianMixture().to_datatree()
    with pytest.raises(ValueError, match="feature"):
        fitted_full.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="^ci_prob: expected"):
        fitted_full.predict_proba(np.zeros((2, 2)), ci_prob=1.5)


def test_refit_with_bad_data_keeps_fitted_state(small_data):
    X, _ = small_data
    model = DPGaussianMixture(4, random_state=0).fit(X)
    before = model.means_.copy()
    with pytest.raises(ValueError):
        model.fit(np.full((5, 2), np.inf))
    np.testing.assert_array_equal(model.means_, before)


def test_get_set_params():
    model = DPGaussianMixture(5, covariance_type="diag")
    params = model.get_params()
    assert params["truncation"] == 5
    assert params["covariance_type"] == "diag"
    model.set_params(truncation=7)
    assert model.truncation == 7
    with pytest.raises(ValueError, match="params"):
        model.set_params(n_components=3)


# ---------------------------------------------------------------- ADVI
@pytest.mark.sampling
@pytest.mark.slow
def test_advi_gives_the_same_result_layout(small_data):
    from arviz_stats import loo_approximate_posterior

    X, _ = small_data
    X = X[:150]
    model = DPGaussianMixture(
        4, method="advi", advi_iterations=2000, progressbar=False, random_state=0
    ).fit(X)
    assert model.weights_.shape == (4,)
    assert model.weights_.sum() == pytest.approx(1.0)
    assert np.all(np.diff(model.weights_) <= 1e-12)
    assert model.covariances_.shape == (4, 2, 2)
    assert model.params_.n_components == 4
    assert np.all(np.isfinite(model.score_samples(X)))
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0, rtol=1e-10)
    assert np.all(np.isfinite(model.score_samples(np.array([[np.nan, 0.0], [1.0, np.nan]]))))
    assert model.elbo_trace_.size == 2000
    tree = model.to_datatree(n_draws=50, random_state=0)
    assert tree.attrs["inference_method"] == "advi"
    assert {f.name for f in dataclasses.fields(model._posterior)} == {"prior", "pool"}
    ss = tree["sample_stats"]
    assert np.all(np.isfinite(ss["log_p"].values)) and np.all(np.isfinite(ss["log_q"].values))
    result = loo_approximate_posterior(tree, ss["log_p"], ss["log_q"])
    assert np.isfinite(result.elpd)
    clone = DPGaussianMixture._import_state(json.loads(json.dumps(model._export_state())))
    np.testing.assert_allclose(clone.score_samples(X), model.score_samples(X), rtol=1e-12)


# ---------------------------------------------------- the ADVI model, unfitted
def _advi_model(kind, truncation=3, fixed=None):
    from bayesgmm import _cavi, _dp_advi

    X = np.random.default_rng(0).normal(size=(30, 2)) * [1.0, 3.0]
    centred = X - X.mean(axis=0)
    prior = _cavi.data_prior(np.cov(centred, rowvar=False, bias=True), X.mean(0), kind, None, 3)
    conc = _cavi.Concentration(fixed, 1.0, 1.0, 1.0, 1.0)
    return centred, _dp_advi.build_model(centred, prior, conc, truncation)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_advi_model_names_coords_and_dims(covariance_type):
    _, model = _advi_model(covariance_type)
    assert {k: len(v) for k, v in model.coords.items() if k != "feature_pair"} == {
        "component": 3,
        "stick": 2,
        "feature": 2,
        "feature_bis": 2,
        "obs_id": 30,
    }
    dims = model.named_vars_to_dims
    precision = {
        "full": {
            "bartlett_diagonal": ("component", "feature"),
            "bartlett_lower": ("component", "feature_pair"),
        },
        "tied": {"bartlett_diagonal": ("feature",), "bartlett_lower": ("feature_pair",)},
        "diag": {"precision": ("component", "feature")},
        "spherical": {"precision": ("component",)},
    }[covariance_type]
    cholesky = {
        "full": ("component", "feature", "feature_bis"),
        "tied": ("feature", "feature_bis"),
        "diag": ("component", "feature"),
        "spherical": ("component",),
    }[covariance_type]
    assert dims == {
        "v": ("stick",),
        "means": ("component", "feature"),
        **precision,
        "log_weights": ("component",),
        "precision_cholesky": cholesky,
        "log_likelihood": ("obs_id",),
    }
    # every free variable but the scalar concentration has dims
    assert {rv.name for rv in model.free_RVs} == {"concentration"} | (
        dims.keys() - {"log_weights", "precision_cholesky", "log_likelihood"}
    )
    assert {p.name for p in model.potentials} == (
        {"means_prior", "loglik"} if covariance_type in ("full", "tied") else {"loglik"}
    )
    _, fixed = _advi_model(covariance_type, fixed=2.0)
    assert "concentration" not in fixed.named_vars


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_advi_model_likelihood_is_the_mixture_density(covariance_type):
    """At a random point, log_likelihood equals log sum_k w_k N(x | mu_k, (P P')^{-1}) (scipy)."""
    X, model = _advi_model(covariance_type)
    rng = np.random.default_rng(1)
    point = {
        k: v + rng.normal(scale=0.3, size=np.shape(v)) for k, v in model.initial_point().items()
    }
    names = ["log_likelihood", "log_weights", "means", "precision_cholesky"]
    outs = model.replace_rvs_by_values([model[name] for name in names])
    fn = model.compile_fn(
        outs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE"
    )
    loglik, log_w, means, chol = fn(point)
    np.testing.assert_allclose(np.exp(log_w).sum(), 1.0, rtol=1e-12)
    if covariance_type == "tied":
        chol = np.broadcast_to(chol, (3, 2, 2))
    elif covariance_type == "diag":
        chol = chol[..., None] * np.eye(2)
    elif covariance_type == "spherical":
        chol = chol[:, None, None] * np.eye(2)
    cov = np.linalg.inv(chol @ np.swapaxes(chol, -1, -2))
    dens = sum(
        np.exp(log_w[k]) * stats.multivariate_normal(means[k], cov[k]).pdf(X) for k in range(3)
    )
    np.testing.assert_allclose(loglik, np.log(dens), rtol=1e-10)
