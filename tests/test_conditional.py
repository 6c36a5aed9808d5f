"""Conditional prediction: ``condition``, ``predict_conditional`` and :mod:`bayesgmm.conditional`.

Oracles: the conditional density of the returned mixture equals the joint mixture
density divided by the marginal density of the observed features, both evaluated
by scipy (exact identity, for every covariance layout); the conditional mean equals
a numerical integral over a grid; the closed form of the bivariate normal. The
interval test samples (slow tier) and reuses the session fixture ``marginal_fit``.
"""

import numpy as np
import pytest
from conftest import make_mixture_data
from scipy import stats
from scipy.special import logsumexp

from bayesgmm import DPGaussianMixture, EMGaussianMixture, GaussianMixtureParams
from bayesgmm.conditional import conditional_mixture, full_covariances


def random_mixture(k, d, seed, covariance_type="full"):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 2.0))
    means = rng.normal(scale=3.0, size=(k, d))
    if covariance_type == "full":
        A = rng.normal(size=(k, d, d))
        covariances = A @ np.swapaxes(A, 1, 2) + 0.5 * np.eye(d)
    elif covariance_type == "tied":
        A = rng.normal(size=(d, d))
        covariances = A @ A.T + 0.5 * np.eye(d)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.3, 2.0, size=(k, d))
    else:
        covariances = rng.uniform(0.3, 2.0, size=k)
    return GaussianMixtureParams(weights, means, covariances, covariance_type)


def log_mixture_density(x, weights, means, covariances):
    """``log sum_k w_k N(x | mu_k, Sigma_k)`` by scipy, one component at a time."""
    terms = [
        np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
        for w, m, c in zip(weights, means, covariances, strict=True)
    ]
    return logsumexp(np.array(terms).reshape(len(weights), -1), axis=0)


def fitted_em(X, k, covariance_type="full", seed=0):
    return EMGaussianMixture(k, covariance_type=covariance_type, random_state=seed).fit(X)


# ------------------------------------------------------------------- oracles
def test_one_component_is_the_conditional_of_a_bivariate_normal():
    mu = np.array([1.0, -2.0])
    sd = np.array([1.5, 0.7])
    rho = 0.6
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    x_a = np.array([[-1.0], [0.5], [3.0]])
    result = conditional_mixture(np.ones(1), mu[None], cov[None], x_a, np.array([0]))
    # Textbook: mu_b + rho sd_b / sd_a (x_a - mu_a), variance sd_b^2 (1 - rho^2).
    expected_mean = mu[1] + rho * sd[1] / sd[0] * (x_a[:, 0] - mu[0])
    np.testing.assert_allclose(result.means[:, 0, 0], expected_mean, rtol=1e-12)
    np.testing.assert_allclose(result.covariances[0, 0, 0], sd[1] ** 2 * (1 - rho**2), rtol=1e-12)
    np.testing.assert_allclose(result.weights, 1.0)
    # Brute force: integrate the joint density over a fine grid of x_b at each x_a.
    grid = np.linspace(mu[1] - 12 * sd[1], mu[1] + 12 * sd[1], 20001)
    joint = stats.multivariate_normal(mu, cov)
    for i, a in enumerate(x_a[:, 0]):
        density = joint.pdf(np.column_stack([np.full_like(grid, a), grid]))
        mass = np.trapezoid(density, grid)
        mean = np.trapezoid(grid * density, grid) / mass
        var = np.trapezoid((grid - mean) ** 2 * density, grid) / mass
        np.testing.assert_allclose(result.means[i, 0, 0], mean, rtol=1e-8)
        np.testing.assert_allclose(result.covariances[0, 0, 0], var, rtol=1e-6)


@pytest.mark.parametrize("observed", [[0], [2, 0], [1, 3]])
def test_conditional_density_is_joint_over_marginal(covariance_type, observed):
    """``p(x_b | x_a) = p(x_a, x_b) / p(x_a)`` exactly, for every layout and split."""
    params = random_mixture(3, 4, seed=11, covariance_type=covariance_type)
    full = full_covariances(params)
    rng = np.random.default_rng(5)
    X = params.sample(6, rng)[0]
    observed = np.array(observed)
    result = conditional_mixture(params.weights, params.means, full, X[:, observed], observed)
    remaining = result.remaining
    np.testing.assert_array_equal(remaining, np.setdiff1d(np.arange(4), observed))
    log_joint = params.score_samples(X)
    log_marginal = log_mixture_density(
        X[:, observed],
        params.weights,
        params.means[:, observed],
        full[:, observed[:, None], observed[None, :]],
    )
    for i in range(X.shape[0]):
        log_conditional = log_mixture_density(
            X[i, remaining], result.weights[i], result.means[i], result.covariances
        )
        np.testing.assert_allclose(log_conditional, log_joint[i] - log_marginal[i], atol=1e-9)
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, atol=1e-12)


def test_conditional_mean_matches_integration_of_the_joint_density():
    """K = 3 in 2-D: E[x_1 | x_0] by quadrature of the joint mixture density."""
    params = random_mixture(3, 2, seed=3)
    full = full_covariances(params)
    x_a = np.array([[-4.0], [-1.0], [0.0], [2.5], [5.0]])
    result = conditional_mixture(params.weights, params.means, full, x_a, np.array([0]))
    grid = np.linspace(-40.0, 40.0, 40001)
    for i, a in enumerate(x_a[:, 0]):
        points = np.column_stack([np.full_like(grid, a), grid])
        density = np.exp(params.score_samples(points))
        expected = np.trapezoid(grid * density, grid) / np.trapezoid(density, grid)
        np.testing.assert_allclose(result.mean()[i, 0], expected, rtol=1e-7, atol=1e-9)
        second = np.trapezoid(grid**2 * density, grid) / np.trapezoid(density, grid)
        np.testing.assert_allclose(
            result.covariance()[i, 0, 0], second - expected**2, rtol=1e-6, atol=1e-9
        )


def test_permuting_components_permutes_the_conditional_mixture():
    params = random_mixture(4, 3, seed=8)
    full = full_covariances(params)
    order = np.array([2, 0, 3, 1])
    x_a = np.random.default_rng(1).normal(size=(7, 1))
    indices = np.array([1])
    base = conditional_mixture(params.weights, params.means, full, x_a, indices)
    permuted = conditional_mixture(
        params.weights[order], params.means[order], full[order], x_a, indices
    )
    np.testing.assert_allclose(permuted.weights, base.weights[:, order], atol=1e-14)
    np.testing.assert_allclose(permuted.means, base.means[:, order], atol=1e-12)
    np.testing.assert_allclose(permuted.covariances, base.covariances[order], atol=1e-12)
    np.testing.assert_allclose(permuted.mean(), base.mean(), atol=1e-12)


def test_a_far_away_component_gets_weight_zero_without_nan():
    weights = np.array([0.5, 0.5])
    means = np.array([[0.0, 0.0], [1e4, 5.0]])
    covariances = np.broadcast_to(np.eye(2), (2, 2, 2)).copy()
    result = conditional_mixture(weights, means, covariances, np.array([[0.0]]), np.array([0]))
    np.testing.assert_array_equal(result.weights, [[1.0, 0.0]])
    assert np.isfinite(result.mean()).all()


# --------------------------------------------------------------- estimators
def test_condition_uses_the_fitted_parameters_in_every_layout(covariance_type, blobs):
    X, _ = blobs
    model = fitted_em(X, 3, covariance_type)
    params = model.params_
    full = np.array([_full_of(params, k) for k in range(params.n_components)])
    x_a = X[:5, 1]
    result = model.condition(x_a, 1)
    expected = conditional_mixture(params.weights, params.means, full, x_a[:, None], np.array([1]))
    np.testing.assert_allclose(result.mean(), expected.mean(), rtol=1e-12)
    np.testing.assert_allclose(result.covariances, expected.covariances, rtol=1e-12)


def _full_of(params, k):
    """Full covariance of component k written out per layout (independent of LAYOUTS)."""
    c, d = params.covariances, params.n_features
    return {
        "full": lambda: c[k],
        "tied": lambda: c,
        "diag": lambda: np.diag(c[k]),
        "spherical": lambda: c[k] * np.eye(d),
    }[params.covariance_type]()


def test_gaussian_mixture_regression_recovers_a_sine():
    rng = np.random.default_rng(42)
    x = rng.uniform(-3.0, 3.0, 3000)
    y = np.sin(x) + rng.normal(0.0, 0.1, x.size)
    model = fitted_em(np.column_stack([x, y]), 10)
    grid = np.linspace(-2.5, 2.5, 101)
    predicted = model.predict_conditional(grid, [0])[:, 0]
    rmse = np.sqrt(np.mean((predicted - np.sin(grid)) ** 2))
    assert rmse < 0.05, rmse
    # Predicting x from y works the same way (the other direction of the same mixture).
    assert model.predict_conditional([[0.0]], [1]).shape == (1, 1)


def test_feature_names_label_the_intervals():
    pd = pytest.importorskip("pandas")
    X, _ = make_mixture_data(n=300, d=3, k=2, seed=2)
    model = DPGaussianMixture(5, random_state=0).fit(pd.DataFrame(X, columns=["a", "b", "c"]))
    result = model.predict_conditional(X[:4, [1]], [1], ci_prob=0.9)
    assert list(result["feature"].values) == ["a", "c"]
    assert result["mean"].shape == (4, 2)
    assert result.attrs == {"ci_prob": 0.9, "ci_kind": "eti"}
    assert (result["lower"] <= result["median"]).all()
    assert (result["median"] <= result["upper"]).all()
    # The interval is around the point prediction (the DP's posterior is narrow here).
    point = model.predict_conditional(X[:4, [1]], [1])
    assert np.all(np.abs(result["median"].values - point) < result["upper"] - result["lower"] + 0.1)


def test_em_without_bootstrap_refuses_intervals(blobs):
    model = fitted_em(blobs[0], 3)
    with pytest.raises(ValueError, match="^ci_prob: "):
        model.predict_conditional(blobs[0][:3, :1], [0], ci_prob=0.9)


def test_em_intervals_come_from_its_bootstrap_replicates(blobs):
    """A ``bootstrap_`` DataTree (layout-shaped covariances) is read as parameter draws."""
    xr = pytest.importorskip("xarray")
    X, _ = blobs
    model = fitted_em(X, 3, "diag")
    p = model.params_
    rng = np.random.default_rng(0)
    shifts = rng.normal(0.0, 0.05, size=(40, 1, 2))
    dims = ("draw", "component")
    group = xr.Dataset(
        {
            "weights": (dims, np.broadcast_to(p.weights, (40, 3))),
            "means": (dims + ("feature",), p.means + shifts),
            "covariances": (dims + ("feature",), np.broadcast_to(p.covariances, (40, 3, 2))),
        }
    )
    model.bootstrap_ = xr.DataTree.from_dict({"bootstrap": group})
    result = model.predict_conditional(X[:5, :1], [0], ci_prob=0.8)
    per_draw = np.array(
        [
            conditional_mixture(
                p.weights, p.means + s, full_covariances(p), X[:5, :1], np.array([0])
            ).mean()
            for s in shifts
        ]
    )
    np.testing.assert_allclose(result["mean"].values, per_draw.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        result["lower"].values, np.quantile(per_draw, 0.1, axis=0), rtol=1e-10
    )


@pytest.mark.parametrize(
    ("X_a", "indices", "error", "fragment"),
    [
        ([[0.0]], [2], ValueError, "^indices: expected feature positions in \\[0, 1\\]"),
        ([[0.0]], [-1], ValueError, "^indices: "),
        ([[0.0, 1.0]], [0, 0], ValueError, "^indices: expected unique"),
        ([[0.0, 1.0]], [0, 1], ValueError, "^indices: expected fewer than all 2"),
        ([[0.0]], [], TypeError, "^indices: "),
        ([[0.0]], ["a"], TypeError, "^indices: "),
        ([[0.0]], 0.5, TypeError, "^indices: "),
        ([[0.0, 1.0]], [0], ValueError, "^X_a: expected 1 column"),
        ([[np.nan]], [0], ValueError, "^X_a: "),
        ([[np.inf]], [0], ValueError, "^X_a: "),
    ],
)
def test_bad_arguments_are_refused_by_name(blobs, X_a, indices, error, fragment):
    model = fitted_em(blobs[0], 2)
    with pytest.raises(error, match=fragment):
        model.predict_conditional(X_a, indices)


def test_unfitted_model_is_refused():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EMGaussianMixture(2).condition([[0.0]], [0])


# ------------------------------------------------------------ marginal model
def _truth_of_marginal_fit_data():
    """Replay ``make_mixture_data(n=300, d=2, k=3, seed=1)``'s generator to get its parameters."""
    rng = np.random.default_rng(1)
    means = rng.normal(scale=6.0, size=(3, 2))
    labels = rng.integers(0, 3, size=300)
    X = np.empty((300, 2))
    covariances = np.empty((3, 2, 2))
    for j in range(3):
        A = rng.normal(size=(2, 2)) * 0.6 + np.eye(2)
        covariances[j] = A @ A.T
        idx = labels == j
        X[idx] = means[j] + rng.standard_normal((idx.sum(), 2)) @ A.T
    return np.full(3, 1 / 3), means, covariances, X


@pytest.mark.slow
@pytest.mark.sampling
def test_marginal_intervals_cover_the_true_regression_function(marginal_fit):
    """90% intervals of E[x_1 | x_0] over NUTS draws cover the truth at about their level.

    The truth is the generating mixture (equal weights). The 30 evaluation points
    are correlated (one posterior), so the check is loose: at least 60% covered,
    which a correct 90% interval misses only when the whole posterior is off.
    """
    model, X = marginal_fit
    weights, means, covariances, X_replayed = _truth_of_marginal_fit_data()
    np.testing.assert_allclose(X_replayed, X)
    grid = np.quantile(X[:, 0], np.linspace(0.05, 0.95, 30))[:, None]
    truth = conditional_mixture(weights, means, covariances, grid, np.array([0])).mean()[:, 0]
    result = model.predict_conditional(grid, [0], ci_prob=0.9)
    lower, upper = result["lower"].values[:, 0], result["upper"].values[:, 0]
    covered = (lower <= truth) & (truth <= upper)
    assert covered.mean() >= 0.6, (covered.mean(), lower, truth, upper)
    # The intervals are informative, not the whole range of x_1.
    assert np.median(upper - lower) < 0.15 * np.ptp(X[:, 1])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "VEV"])
def test_em_intervals_from_its_own_bootstrap(covariance_type):
    """EM's conditional intervals read the replicates ``bootstrap`` keeps, in every layout."""
    from bayesgmm.datasets import load_faithful

    X = load_faithful()
    model = EMGaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    model.bootstrap(X, 60, random_state=0)
    result = model.predict_conditional(X[:5, [0]], [0], ci_prob=0.9)
    point = model.predict_conditional(X[:5, [0]], [0])
    lower, upper = result["lower"].values, result["upper"].values
    assert lower.shape == upper.shape == point.shape
    assert np.all(lower < upper)
    # The fit's own conditional mean lies inside the bootstrap's 90 % interval here:
    # the replicates scatter around the fit on 272 points.
    assert np.all((lower <= point) & (point <= upper))
