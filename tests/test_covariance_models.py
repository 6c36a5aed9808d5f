"""mclust's fourteen covariance models: M-step oracles, EM invariants, counts, published values."""

import warnings

import numpy as np
import pytest
from scipy import optimize, stats

from bayesgmm import (
    ConjugatePrior,
    DPGaussianMixture,
    EMGaussianMixture,
    MarginalGaussianMixture,
    io,
)
from bayesgmm import _gaussian as g
from bayesgmm import _mclust_models as mm
from bayesgmm.datasets import load_iris
from bayesgmm.em import ConvergenceWarning
from bayesgmm.selection import select_n_components

MODELS = mm.MCLUST_MODELS


@pytest.fixture(scope="module")
def small():
    """Two overlapping anisotropic blobs in three dimensions, and fixed responsibilities."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(30, 3)) @ np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.4]])
    b = rng.normal(size=(25, 3)) @ np.array([[0.5, 0.0, 0.0], [0.7, 1.5, 0.0], [0.2, 0.0, 1.0]])
    X = np.vstack([a, b + [1.0, 2.0, -1.0]])
    resp = rng.dirichlet([1.0, 1.0], size=X.shape[0])
    return X - X.mean(axis=0), resp


def _scatter(X, resp):
    nk = resp.sum(axis=0)
    means = resp.T @ X / nk[:, None]
    centred = X[None] - means[:, None]
    return np.einsum("ik,kij,kil->kjl", resp, centred, centred), nk


def _m_step_full(model, X, resp):
    """The registry's M-step for ``model`` (reg 0), expanded to (K, d, d)."""
    stats = g.statistics_from_responsibilities(X, resp, model)
    _, _, cov = g.covariances_from_statistics(stats, 0.0)
    return g.full_covariances(cov, model, resp.shape[1], X.shape[1])


# ------------------------------------------------------------ M-step oracles
def _rotation(skew_entries, d):
    """Cayley transform of a skew-symmetric matrix: a rotation, and every rotation near I."""
    skew = np.zeros((d, d))
    skew[np.triu_indices(d, 1)] = skew_entries
    skew -= skew.T
    return np.linalg.solve(np.eye(d) - skew, np.eye(d) + skew)


def _constrained(model, theta, k, d):
    """Covariances of ``model`` from unconstrained parameters: the oracle's own parametrisation.

    Volumes and shapes in logs (a shape's logs sum to zero), orientations as
    Cayley transforms of skew-symmetric matrices; each Equal once, Varying K times.
    """
    volume, shape, orientation = model
    m = d * (d - 1) // 2
    count = {"E": 1, "V": k, "I": 0}
    sizes = [count[volume], count[shape] * (d - 1), count[orientation] * m]
    log_volumes, log_shapes, skews = np.split(theta, np.cumsum(sizes)[:-1])
    volumes = np.broadcast_to(np.exp(log_volumes), (k,))
    shapes = np.ones((k, d))
    if shape != "I":
        free = log_shapes.reshape(-1, d - 1)
        logs = np.hstack([free, -free.sum(axis=1, keepdims=True)])
        shapes = np.broadcast_to(np.exp(logs), (k, d))
    rotations = np.broadcast_to(np.eye(d), (k, d, d))
    if orientation != "I":
        rotations = np.stack([_rotation(s, d) for s in skews.reshape(-1, m)])
        rotations = np.broadcast_to(rotations, (k, d, d))
    return np.einsum("k,kij,kj,klj->kil", volumes, rotations, shapes, rotations)


def _numerical_maximum(model, scatter, nk, starts=3, seed=0):
    """Best Q found by BFGS over the model's own parametrisation, from several starts."""
    k, d = nk.shape[0], scatter.shape[-1]
    count = {"E": 1, "V": k, "I": 0}
    size = count[model[0]] + count[model[1]] * (d - 1) + count[model[2]] * (d * (d - 1) // 2)
    rng = np.random.default_rng(seed)

    def loss(theta):
        return -mm.expected_log_likelihood(scatter, nk, _constrained(model, theta, k, d))

    best = np.inf
    for _ in range(starts):
        result = optimize.minimize(loss, rng.normal(scale=0.5, size=size), method="BFGS")
        best = min(best, result.fun)
    return -best


def _satisfies(model, cov, atol=1e-8):
    """Whether (K, d, d) covariances have the model's equal volumes, shapes and orientations."""
    d = cov.shape[-1]
    volumes = np.exp(np.linalg.slogdet(cov)[1] / d)
    ok = True
    if model[0] == "E":
        ok &= np.allclose(volumes, volumes[0], rtol=1e-8)
    if model[2] == "I":
        ok &= np.allclose(cov * (1 - np.eye(d)), 0.0, atol=atol)
    if model[2] == "E":  # one orientation: the matrices commute
        ok &= all(np.allclose(a @ b, b @ a, atol=atol) for a in cov for b in cov)
    if model[1] in "EI":
        shapes = np.linalg.eigvalsh(cov) / volumes[:, None]
        target = np.ones(d) if model[1] == "I" else shapes[0]
        ok &= np.allclose(shapes, target, rtol=1e-7)
    return bool(ok)


@pytest.mark.parametrize("model", MODELS)
def test_m_step_is_the_constrained_maximiser(small, model):
    """The M-step satisfies the model's constraints and no direct optimisation beats its Q."""
    X, resp = small
    cov = _m_step_full(model, X, resp)
    scatter, nk = _scatter(X, resp)
    assert _satisfies(model, cov), model
    ours = mm.expected_log_likelihood(scatter, nk, cov)
    oracle = _numerical_maximum(model, scatter, nk)
    # Nothing beats the M-step, and the optimiser does reach it (so the bound is tight).
    assert ours >= oracle - 1e-7 * abs(oracle), (model, ours, oracle)
    assert oracle >= ours - 1e-5 * abs(ours), (model, ours, oracle)


def test_oracle_detects_a_wrong_m_step(small):
    """The oracle has teeth: VVV's covariances are not EEV's, and rescaling loses Q."""
    X, resp = small
    scatter, nk = _scatter(X, resp)
    assert not _satisfies("EEV", _m_step_full("VVV", X, resp))
    cov = _m_step_full("VEV", X, resp)
    best = _numerical_maximum("VEV", scatter, nk)
    assert mm.expected_log_likelihood(scatter, nk, 1.05 * cov) < best - 1e-6


@pytest.mark.parametrize(
    ("model", "alias"), [("VVV", "full"), ("EEE", "tied"), ("VVI", "diag"), ("VII", "spherical")]
)
def test_aliases_have_the_same_m_step_and_count(small, model, alias):
    X, resp = small
    for reg in (0.0, 1e-3):
        a = g.covariances_from_statistics(g.statistics_from_responsibilities(X, resp, model), reg)
        b = g.covariances_from_statistics(g.statistics_from_responsibilities(X, resp, alias), reg)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    for k, d in [(1, 1), (3, 4)]:
        assert g.n_free_parameters(k, d, model) == g.n_free_parameters(k, d, alias)


def test_closed_forms_agree_with_special_cases(small):
    """EVV's covariances are VVV's rescaled to a common volume; EEV's eigenvalues are pooled."""
    X, resp = small
    scatter, nk = _scatter(X, resp)
    vvv = _m_step_full("VVV", X, resp)
    evv = _m_step_full("EVV", X, resp)
    ratio = evv / vvv
    np.testing.assert_allclose(ratio, ratio[:, :1, :1] * np.ones_like(ratio), rtol=1e-9)
    eev = _m_step_full("EEV", X, resp)
    pooled = np.sort(np.linalg.eigvalsh(scatter), axis=1).sum(axis=0) / nk.sum()
    np.testing.assert_allclose(np.linalg.eigvalsh(eev), np.stack([pooled] * 2), rtol=1e-9)


# ------------------------------------------------------------ parameter counts
def _n_var_params(model, d, g_):
    """mclust 6.0's ``nVarParams``, transcribed case by case from its R source."""
    return {
        "EII": 1,
        "VII": g_,
        "EEI": d,
        "VEI": g_ + (d - 1),
        "EVI": 1 + g_ * (d - 1),
        "VVI": g_ * d,
        "EEE": d * (d + 1) / 2,
        "EVE": 1 + g_ * (d - 1) + d * (d - 1) / 2,
        "VEE": g_ + (d - 1) + d * (d - 1) / 2,
        "VVE": g_ + g_ * (d - 1) + d * (d - 1) / 2,
        "EEV": 1 + (d - 1) + g_ * d * (d - 1) / 2,
        "VEV": g_ + (d - 1) + g_ * d * (d - 1) / 2,
        "EVV": 1 - g_ + g_ * d * (d + 1) / 2,
        "VVV": g_ * d * (d + 1) / 2,
    }[model]


@pytest.mark.parametrize("model", MODELS)
def test_parameter_counts_are_mclusts(model):
    """``nMclustParams``: covariances + G d means + G - 1 proportions, over a grid of d and G."""
    for d in range(1, 8):
        for k in range(1, 10):
            expected = _n_var_params(model, d, k) + k * d + k - 1
            assert g.n_free_parameters(k, d, model) == expected, (model, d, k)


# ------------------------------------------------------------ EM invariants
@pytest.fixture(scope="module")
def blobs3():
    rng = np.random.default_rng(5)
    parts = [
        rng.normal(size=(80, 3)) @ rng.normal(size=(3, 3)) + rng.normal(scale=3, size=3)
        for _ in range(3)
    ]
    return np.vstack(parts) + 20.0


def _poor_start(X, model, k=3, seed=2):
    rng = np.random.default_rng(seed)
    layout = g.LAYOUTS[model]
    return {
        "weights_init": np.full(k, 1.0 / k),
        "means_init": X[rng.choice(X.shape[0], size=k, replace=False)],
        "precisions_init": layout.unit_covariances(k, X.shape[1]) * 0.5,
    }


@pytest.mark.parametrize("model", MODELS)
def test_em_log_likelihood_never_decreases(blobs3, model):
    """Without ``reg_covar`` (which changes the function maximised) every EM step climbs."""
    X = blobs3
    gm = EMGaussianMixture(
        3, covariance_type=model, tol=0.0, max_iter=60, reg_covar=0.0, **_poor_start(X, model)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    trace = gm.log_likelihood_trace_
    assert trace.size == 60
    assert np.all(np.diff(trace) >= -1e-10 * np.abs(trace[1:])), (model, np.diff(trace).min())
    assert trace[-1] > trace[0] + 0.1


@pytest.mark.parametrize("model", MODELS)
def test_fitted_model_scores_like_scipy_and_samples(blobs3, model):
    """``score_samples`` is the mixture density of the stored covariances; ``sample`` runs."""
    X = blobs3
    gm = EMGaussianMixture(2, covariance_type=model, random_state=0).fit(X)
    cov = gm.params_.full_covariances()
    dens = sum(
        w * stats.multivariate_normal(m, c).pdf(X)
        for w, m, c in zip(gm.weights_, gm.means_, cov, strict=True)
    )
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-9, atol=1e-9)
    assert _satisfies(model, cov, atol=1e-6 * np.abs(cov).max())
    drawn, labels = gm.sample(50, random_state=1)
    assert drawn.shape == (50, 3) and labels.shape == (50,)


def test_one_dimension_has_only_equal_and_varying(blobs3):
    """In one dimension E and V are all there is: each model fits as EII or as VII."""
    X = blobs3[:, :1]
    start = {
        "weights_init": [0.5, 0.5],
        "means_init": [[X.min()], [X.max()]],
        "max_iter": 40,
        "tol": 0.0,
        "random_state": 0,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = {m: EMGaussianMixture(2, covariance_type=m, **start).fit(X) for m in MODELS}
    for model, gm in fits.items():
        reference = fits["EII" if model[0] == "E" else "VII"]
        np.testing.assert_allclose(
            gm.log_likelihood_trace_, reference.log_likelihood_trace_, rtol=1e-9
        )
        same = reference.covariance_type
        assert g.n_free_parameters(2, 1, model) == g.n_free_parameters(2, 1, same)


# ------------------------------------------------------------ published values
def test_iris_vev_two_components_reproduces_mclust():
    """mclust 6, ``Mclust(iris[, 1:4], G = 2, modelNames = "VEV")``: -215.726, BIC -561.73."""
    X, _ = load_iris()
    gm = EMGaussianMixture(
        2, covariance_type="VEV", n_init=3, tol=1e-8, max_iter=1000, reg_covar=0.0, random_state=0
    ).fit(X)
    assert gm.score(X) * X.shape[0] == pytest.approx(-215.726, abs=0.01)
    assert gm.bic(X) == pytest.approx(561.73, abs=0.01)  # bayesgmm's sign: lower is better
    assert g.n_free_parameters(2, 4, "VEV") == 26


@pytest.mark.slow
def test_select_all_models_on_iris_is_at_least_as_good_as_mclust():
    """All fourteen models, K = 1..3: the best BIC is at least mclust's best (VEV, 2, -561.73)."""
    X, _ = load_iris()
    result = select_n_components(X, range(1, 4), covariance_types="all", n_init=2, random_state=0)
    assert set(result.table["covariance_type"]) == set(MODELS)
    assert len(result.table) == 14 * 3
    assert result.table["bic"].min() <= 561.73 + 0.01
    assert result.best_covariance_type in MODELS


# ------------------------------------------------------------ plumbing
@pytest.mark.parametrize("model", ["EII", "EEI", "EVE", "VEV"])
def test_save_and_load_round_trip(blobs3, tmp_path, model):
    gm = EMGaussianMixture(2, covariance_type=model, random_state=0).fit(blobs3)
    path = io.save(gm, tmp_path / f"{model}.json")
    loaded = io.load(path)
    assert loaded.covariance_type == model
    np.testing.assert_array_equal(loaded.score_samples(blobs3), gm.score_samples(blobs3))
    assert loaded.bic(blobs3) == gm.bic(blobs3)


def test_dask_fit_equals_in_memory(blobs3):
    da = pytest.importorskip("dask.array")
    kwargs = dict(covariance_type="VVE", tol=0.0, max_iter=15, **_poor_start(blobs3, "VVE", k=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = EMGaussianMixture(2, **kwargs).fit(blobs3)
        lazy = EMGaussianMixture(2, **kwargs).fit(da.from_array(blobs3, chunks=(100, 3)))
    np.testing.assert_allclose(lazy.log_likelihood_trace_, memory.log_likelihood_trace_, rtol=1e-9)
    np.testing.assert_allclose(lazy.covariances_, memory.covariances_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("estimator", [DPGaussianMixture, MarginalGaussianMixture])
def test_bayesian_engines_refuse_mclust_names(blobs3, estimator):
    with pytest.raises(ValueError, match="covariance_type"):
        estimator(2, covariance_type="VEV").fit(blobs3)


def test_selection_refuses_mclust_names_for_loo_and_dp(blobs3):
    for method in ("loo", "dp"):
        with pytest.raises(ValueError, match="covariance_types"):
            select_n_components(blobs3, range(1, 3), method=method, covariance_types="all")


def test_unknown_model_name_is_refused(blobs3):
    with pytest.raises(ValueError, match="covariance_type"):
        EMGaussianMixture(2, covariance_type="VVX").fit(blobs3)


# ------------------------------------------------------------ conjugate prior
# Mclust(iris[, 1:4], G, modelNames = m, prior = priorControl(),
#        control = emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))) with mclust 6.0.0:
# (model, G, log-likelihood, BIC in mclust's sign).
MCLUST_PRIOR_FITS = [
    ("EII", 3, -401.9532, -879.066),
    ("VII", 2, -478.6158, -1012.349),
    ("EEI", 3, -362.1510, -814.493),
    ("VEI", 3, -345.4286, -791.070),
    ("EVI", 3, -342.2539, -804.763),
    ("VVI", 2, -393.1146, -871.410),
    ("EEE", 3, -257.7394, -635.734),
    ("EEV", 3, -221.8393, -624.061),
    ("VEV", 2, -225.2685, -580.814),
    ("VVV", 3, -192.6953, -605.859),
]


@pytest.mark.parametrize(("model", "k", "loglik", "bic"), MCLUST_PRIOR_FITS)
def test_prior_reproduces_mclust_on_iris(model, k, loglik, bic):
    """From mclust's start, the MAP fit and its BIC (at the MAP, as mclust has it) are mclust's.

    mclust runs its EM from the hierarchical partition alone (``init_params="hc"``,
    whose first M-step is the posterior-mode one); the default starts add k-means
    and may end at another posterior mode, with a log-likelihood at least as high.
    """
    X, _ = load_iris()
    settings = dict(covariance_type=model, prior="default", reg_covar=0.0, tol=1e-9, max_iter=2000)
    gm = EMGaussianMixture(k, init_params="hc", **settings).fit(X)
    assert gm.score(X) * X.shape[0] == pytest.approx(loglik, abs=2e-3)
    assert -gm.bic(X) == pytest.approx(bic, abs=5e-3)
    default = EMGaussianMixture(k, random_state=0, **settings).fit(X)
    assert default.score(X) * X.shape[0] >= loglik - 2e-3


def test_prior_keeps_a_collapsing_component_away_from_the_spike():
    """Points on a line make VVV's likelihood unbounded; the prior's variance stays of order one."""
    rng = np.random.default_rng(0)
    line = np.linspace(5.0, 6.5, 5)
    X = np.vstack([rng.normal(size=(60, 2)), np.column_stack([line, line])])
    start = dict(
        weights_init=[0.9, 0.1], means_init=[[0.0, 0.0], [5.7, 5.7]], reg_covar=0.0, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spike = EMGaussianMixture(2, max_iter=50, **start).fit(X)
    regularised = EMGaussianMixture(2, prior="default", max_iter=50, **start).fit(X)
    assert np.linalg.eigvalsh(spike.covariances_)[1, 0] < 1e-6
    assert np.linalg.eigvalsh(regularised.covariances_)[1, 0] > 1e-2
    assert regularised.degenerate_components_.size == 0


def test_prior_alias_equals_model_name(blobs3):
    kwargs = dict(prior="default", random_state=0, tol=1e-8)
    a = EMGaussianMixture(2, covariance_type="full", **kwargs).fit(blobs3)
    b = EMGaussianMixture(2, covariance_type="VVV", **kwargs).fit(blobs3)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-10)


def test_explicit_prior_equal_to_default_gives_the_same_fit(blobs3):
    X = blobs3
    d, k = X.shape[1], 2
    explicit = ConjugatePrior(
        shrinkage=0.01,
        mean=X.mean(axis=0),
        dof=d + 2,
        scale=np.cov(X, rowvar=False) / k ** (2 / d),
    )
    kwargs = dict(covariance_type="VEV", random_state=0, tol=1e-8)
    a = EMGaussianMixture(k, prior="default", **kwargs).fit(X)
    b = EMGaussianMixture(k, prior=explicit, **kwargs).fit(X)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    stronger = EMGaussianMixture(k, prior=ConjugatePrior(shrinkage=50.0), **kwargs).fit(X)
    assert np.abs(stronger.means_ - X.mean(axis=0)).max() < np.abs(a.means_ - X.mean(axis=0)).max()


@pytest.mark.parametrize("model", ["VEE", "EVE", "VVE", "EVV"])
def test_prior_refused_where_mclust_defines_none(blobs3, model):
    with pytest.raises(ValueError, match="prior"):
        EMGaussianMixture(2, covariance_type=model, prior="default").fit(blobs3)


@pytest.mark.parametrize(
    ("prior", "error"),
    [
        ("mclust", TypeError),
        (ConjugatePrior(shrinkage=-1.0), ValueError),
        (ConjugatePrior(dof=0.5), ValueError),
        (ConjugatePrior(mean=[0.0, 1.0]), ValueError),
        (ConjugatePrior(scale=np.eye(2)), ValueError),
        (ConjugatePrior(scale=-np.eye(3)), ValueError),
    ],
)
def test_bad_prior_is_refused(blobs3, prior, error):
    with pytest.raises(error, match="prior"):
        EMGaussianMixture(2, covariance_type="VVV", prior=prior).fit(blobs3)


def test_prior_round_trips_through_save(blobs3, tmp_path):
    prior = ConjugatePrior(shrinkage=0.1, dof=7.0)
    gm = EMGaussianMixture(2, covariance_type="EEV", prior=prior, random_state=0).fit(blobs3)
    loaded = io.load(io.save(gm, tmp_path / "prior.json"))
    assert loaded.prior == prior
    np.testing.assert_array_equal(loaded.score_samples(blobs3), gm.score_samples(blobs3))


def test_iris_is_fishers_table():
    """R's ``colMeans(iris[, 1:4])`` and ``sapply(iris[, 1:4], sd)``, and the species counts."""
    X, species = load_iris()
    assert X.shape == (150, 4) and species.shape == (150,)
    np.testing.assert_allclose(X.mean(axis=0), [5.843333, 3.057333, 3.758, 1.199333], atol=1e-6)
    np.testing.assert_allclose(
        X.std(axis=0, ddof=1), [0.8280661, 0.4358663, 1.7652982, 0.7622377], atol=1e-7
    )
    assert X[0].tolist() == [5.1, 3.5, 1.4, 0.2] and X[-1].tolist() == [5.9, 3.0, 5.1, 1.8]
    assert {name: int((species == name).sum()) for name in set(species)} == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }
    frame = load_iris(as_frame=True)
    assert list(frame.columns)[-1] == "species" and frame.shape == (150, 5)
    with pytest.raises(TypeError, match="as_frame"):
        load_iris(as_frame="yes")
