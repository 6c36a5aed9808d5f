"""The noise component of the marginal (PyMC / NUTS) model: mclust's uniform w_0 / V.

Default tier: the PyMC model's log density against a hand computation with SciPy,
the noise=False model unchanged, the refusals. Slow tier: one small NUTS fit on
clusters with a uniform background, shared by the module.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayesgmm import MarginalGaussianMixture
from bayesgmm._marginal_model import DEFAULT_PRIORS, STDS_SHAPE, build_pymc_model
from bayesgmm._noise import log_hypervolume


def _transformed_point(model, values):
    """The model's unconstrained point for constrained ``values`` (PyMC's own transforms)."""
    from pymc.initial_point import make_initial_point_fn

    return make_initial_point_fn(
        model=model, overrides=values, jitter_rvs=set(), return_transformed=True
    )(0)


def _random_point(rng, k, d, noise):
    weights = rng.dirichlet(np.ones(k + int(noise)))
    return {
        "weights": weights,
        "means": rng.normal(size=(k, d)),
        "stds": rng.uniform(0.5, 1.5, size=(k, d)),
    }


def _gaussians_log_density(Z, weights, means, covariances):
    columns = [
        np.log(w) + stats.multivariate_normal(m, c).logpdf(Z)
        for w, m, c in zip(weights, means, covariances, strict=True)
    ]
    return logsumexp(np.column_stack(columns), axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_model_log_density_equals_scipy_with_priors(seed):
    rng = np.random.default_rng(seed)
    k, d, log_volume = 2, 3, 1.7
    Z = rng.normal(size=(40, d)) * 2.0
    model = build_pymc_model(
        Z, k, "diag", dict(DEFAULT_PRIORS), list(range(d)), noise=True, log_hypervolume=log_volume
    )
    values = _random_point(rng, k, d, noise=True)
    logp = model.compile_logp(jacobian=False)(_transformed_point(model, values))

    w = values["weights"]
    covariances = [np.diag(s**2) for s in values["stds"]]
    likelihood = np.logaddexp(
        _gaussians_log_density(Z, w[:-1], values["means"], covariances), np.log(w[-1]) - log_volume
    ).sum()
    priors = (
        stats.dirichlet(np.full(k + 1, DEFAULT_PRIORS["weights_concentration"])).logpdf(w)
        + stats.norm(DEFAULT_PRIORS["means_loc"], DEFAULT_PRIORS["means_scale"])
        .logpdf(values["means"])
        .sum()
        + stats.invgamma(STDS_SHAPE, scale=DEFAULT_PRIORS["stds_scale"])
        .logpdf(values["stds"])
        .sum()
    )
    assert logp == pytest.approx(likelihood + priors, rel=1e-10, abs=1e-10)


def test_noise_model_full_covariance_likelihood_equals_scipy():
    rng = np.random.default_rng(3)
    k, d, log_volume = 3, 2, 2.3
    Z = rng.normal(size=(50, d))
    model = build_pymc_model(
        Z, k, "full", dict(DEFAULT_PRIORS), ["a", "b"], noise=True, log_hypervolume=log_volume
    )
    values = _random_point(rng, k, d, noise=True)
    corr_chol = np.array([np.linalg.cholesky([[1.0, r], [r, 1.0]]) for r in (-0.6, 0.1, 0.8)])
    values["corr_chol"] = corr_chol
    point = _transformed_point(model, values)
    logp = model.compile_logp(vars=[model["obs"]], jacobian=False)(point)

    chol = values["stds"][:, :, None] * corr_chol
    covariances = chol @ np.swapaxes(chol, -1, -2)
    w = values["weights"]
    expected = np.logaddexp(
        _gaussians_log_density(Z, w[:-1], values["means"], covariances), np.log(w[-1]) - log_volume
    ).sum()
    assert logp == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert model.coords["mixture_component"] == ("0", "1", "2", "noise")


def test_noise_false_builds_the_model_as_before():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(30, 2))
    model = build_pymc_model(Z, 2, "diag", dict(DEFAULT_PRIORS), [0, 1])
    assert "log_hypervolume" not in model.named_vars
    assert "mixture_component" not in model.coords
    assert model.named_vars_to_dims["weights"] == ("component",)
    values = _random_point(rng, 2, 2, noise=False)
    logp = model.compile_logp(vars=[model["obs"]], jacobian=False)(
        _transformed_point(model, values)
    )
    covariances = [np.diag(s**2) for s in values["stds"]]
    expected = _gaussians_log_density(Z, values["weights"], values["means"], covariances).sum()
    assert logp == pytest.approx(expected, rel=1e-10, abs=1e-10)


def test_build_model_puts_the_volume_in_standardised_units():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 2)) * [3.0, 0.2] + [10.0, -1.0]
    model = MarginalGaussianMixture(2, covariance_type="diag", noise=True).build_model(X)
    expected = log_hypervolume(X) - np.log(X.std(axis=0)).sum()
    assert float(model["log_hypervolume"].get_value()) == pytest.approx(expected, rel=1e-12)
    given = MarginalGaussianMixture(2, noise=True, hypervolume=50.0, scale=2.0).build_model(X)
    expected = np.log(50.0) - 2 * np.log(2.0)
    assert float(given["log_hypervolume"].get_value()) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "fit_kwargs", "error", "argument"),
    [
        ({"noise": "yes"}, {}, TypeError, "noise"),
        ({"hypervolume": 3.0}, {}, ValueError, "hypervolume"),
        ({"noise": True, "hypervolume": -1.0}, {}, ValueError, "hypervolume"),
        ({"noise": True, "hypervolume": "big"}, {}, TypeError, "hypervolume"),
        ({"noise": True}, {"method": "laplace"}, ValueError, "method"),
    ],
)
def test_noise_arguments_are_checked_before_any_work(kwargs, fit_kwargs, error, argument):
    X = np.random.default_rng(6).normal(size=(30, 2))
    model = MarginalGaussianMixture(2, covariance_type="diag", **kwargs)
    with pytest.raises(error, match=argument):
        model.fit(X, **fit_kwargs)
    assert not hasattr(model, "params_")


# ---------------------------------------------------------------------- slow tier
N_CLUSTER, N_NOISE = 135, 30


def _clusters_with_background(seed):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0]])
    cov = np.array([[0.6, 0.2], [0.2, 0.5]])
    clusters = np.vstack([rng.multivariate_normal(c, cov, N_CLUSTER) for c in centres])
    low, high = clusters.min(axis=0) - 3.0, clusters.max(axis=0) + 3.0
    X = np.vstack([clusters, rng.uniform(low, high, (N_NOISE, 2))])
    is_noise = np.r_[np.zeros(2 * N_CLUSTER, bool), np.ones(N_NOISE, bool)]
    return X, is_noise


@pytest.fixture(scope="module")
def noise_fit():
    X, is_noise = _clusters_with_background(0)
    model = MarginalGaussianMixture(2, noise=True).fit(
        X, draws=300, tune=400, chains=2, random_state=1, progressbar=False
    )
    return model, X, is_noise


@pytest.mark.slow
def test_noise_weight_interval_covers_the_simulated_share(noise_fit):
    # A 90% interval misses a fixed share with probability about 0.1 per data set;
    # with this data seed and sampler seed the run is fixed, and over data seeds 0-9
    # (the same settings) all ten intervals covered 0.1 (from 0.063-0.134 to 0.086-0.158).
    model, X, is_noise = noise_fit
    draws = model.idata_["posterior"]["noise_weight"].values
    lower, upper = np.quantile(draws, [0.05, 0.95])
    assert lower < is_noise.mean() < upper
    weights = model.idata_["posterior"]["weights"].values
    np.testing.assert_allclose(weights.sum(axis=-1) + draws, 1.0, atol=1e-12)
    assert model.noise_weight_ == pytest.approx(draws.mean())


@pytest.mark.slow
def test_noise_points_are_labelled_minus_one(noise_fit):
    # Over data seeds 0-9 recall was 0.70-0.87 and precision 0.86-1.00 (seed 0: 0.73,
    # 0.92); background points inside the clusters cannot be told from cluster points.
    # The thresholds sit below every one of the ten, so a failure at this fixed seed
    # means a broken noise column, not bad luck (false-failure probability over data
    # seeds below 1 in 10 by that sweep).
    model, X, is_noise = noise_fit
    found = model.predict(X) == -1
    recall = (found & is_noise).sum() / is_noise.sum()
    precision = (found & is_noise).sum() / found.sum()
    assert recall >= 0.6
    assert precision >= 0.75


@pytest.mark.slow
def test_noise_probabilities_intervals_and_log_likelihood(noise_fit):
    model, X, _ = noise_fit
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    labels = model.predict(X)
    np.testing.assert_array_equal(labels == -1, proba.argmax(axis=1) == 2)
    intervals = model.predict_proba(X, ci_prob=0.9)
    assert intervals["upper"].shape == (X.shape[0], 3)
    noise_column = intervals.isel(component=2)
    assert np.all(noise_column["lower"].values <= noise_column["median"].values)
    assert np.all(noise_column["median"].values <= noise_column["upper"].values)
    # Pointwise log-likelihood: log(sum_k w_k N(x | mu_k, Sigma_k) + w_0 / V) per draw.
    post = model.idata_["posterior"]
    s = 7
    w = post["weights"].values.reshape(-1, 2)[s]
    m = post["means"].values.reshape(-1, 2, 2)[s]
    c = post["covariances"].values.reshape(-1, 2, 2, 2)[s]
    w0 = post["noise_weight"].values.reshape(-1)[s]
    expected = np.logaddexp(_gaussians_log_density(X, w, m, c), np.log(w0 / model.hypervolume_))
    stored = model.idata_["log_likelihood"]["obs"].values.reshape(-1, X.shape[0])[s]
    np.testing.assert_allclose(stored, expected, rtol=1e-9)
    assert model.hypervolume_ == pytest.approx(np.exp(log_hypervolume(X)))
    with pytest.raises(ValueError, match="noise"):
        model.sample(5)
    with pytest.raises(ValueError, match="noise"):
        model.condition(X[:1, :1], [0])


@pytest.mark.slow
def test_noise_fit_survives_save_and_load(noise_fit, tmp_path):
    from bayesgmm.io import load

    model, X, _ = noise_fit
    model.save(tmp_path / "noise_model.nc")
    loaded = load(tmp_path / "noise_model.nc")
    assert loaded.hypervolume_ == model.hypervolume_
    assert loaded.noise_weight_ == pytest.approx(model.noise_weight_, rel=1e-12)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-12)
