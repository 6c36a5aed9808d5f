"""The zero-avoiding prior on the component standard deviations of the marginal model.

Both densities state it: the PyMC model (:mod:`bayesgmm._marginal_model`) and the numba
density nutpie samples (:mod:`bayesgmm._numba_density`); they are checked against
``scipy.stats.invgamma`` here, and against each other to 1e-10 in
``tests/test_numba_density.py``. The Old Faithful probe is deterministic (no sampling):
it follows the path along which a component collapses onto tied values and integrates
the posterior density along it.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from bayesgmm import EMGaussianMixture
from bayesgmm import _numba_density as nd
from bayesgmm._marginal_model import DEFAULT_PRIORS, STDS_SHAPE, build_pymc_model
from bayesgmm.datasets import load_faithful


@pytest.mark.parametrize("stds_scale", [1.0, 2.0, 0.3])
def test_numba_prior_term_is_the_inverse_gamma(stds_scale):
    """With no rows the numba density is the prior: Dirichlet, Normal, InverseGamma."""
    k, d = 3, 2
    priors = dict(DEFAULT_PRIORS, stds_scale=stds_scale)
    layout = nd.DensityLayout(k, d, "diag")
    buffer = nd.bind_buffer(np.zeros((0, d)), layout, priors)
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = rng.normal(scale=1.5, size=layout.n_unconstrained)
        grad = np.empty_like(theta)
        value = nd.logp_and_grad(theta, buffer, grad)
        y = np.append(theta[: k - 1], -theta[: k - 1].sum())
        weights = np.exp(y - logsumexp(y))
        expected = (
            stats.dirichlet(np.ones(k)).logpdf(weights) + np.log(k) - k * logsumexp(y)
        ) + stats.norm(0.0, priors["means_scale"]).logpdf(theta[k - 1 : k - 1 + k * d]).sum()
        u = theta[k - 1 + k * d :]
        # log p(u) = log InverseGamma(exp(u)) + u (the Jacobian of sigma = exp(u)).
        prior_u = stats.invgamma(STDS_SHAPE, scale=stds_scale).logpdf(np.exp(u)) + u
        np.testing.assert_allclose(value, expected + prior_u.sum(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            grad[k - 1 + k * d :], stds_scale * np.exp(-u) - STDS_SHAPE, rtol=1e-12
        )


def test_pymc_prior_is_the_inverse_gamma_in_double_precision():
    """A whole-valued scale (2.0) must not be taken as an integer and logged in float32."""
    priors = dict(DEFAULT_PRIORS, stds_scale=2.0)
    model = build_pymc_model(np.zeros((4, 1)), 1, "spherical", priors, [0])
    logp = model.compile_logp(vars=[model["stds"]], jacobian=False)
    point = model.initial_point(0)
    for value in (0.05, 0.4, 3.0):
        point["stds_log__"] = np.log(np.array([value]))
        expected = stats.invgamma(STDS_SHAPE, scale=2.0).logpdf(value)
        np.testing.assert_allclose(logp(point), expected, rtol=1e-13)


def _collapse_profile(Z, feature, log_sds, prior_u=None):
    """Log posterior along the collapse of a fifth component onto the most tied value.

    Four components from EM; the fifth holds the rows that share the most repeated
    value of ``feature``, its mean on that value and its sd in ``feature`` set to
    ``exp(log_sds)`` (its sd in the other feature covers those rows). ``prior_u``, if
    given, replaces the InverseGamma's log density of the collapsing sd (on the log
    scale, Jacobian included).
    """
    em = EMGaussianMixture(4, covariance_type="diag", random_state=0).fit(Z)
    values, counts = np.unique(Z[:, feature], return_counts=True)
    tied = Z[:, feature] == values[np.argmax(counts)]
    share = tied.mean()
    weights = np.append(em.weights_ * (1.0 - share), share)
    means = np.vstack([em.means_, Z[tied].mean(axis=0)])
    means[-1, feature] = values[np.argmax(counts)]
    stds = np.vstack([np.sqrt(em.covariances_), Z[tied].std(axis=0) + 0.05])
    layout = nd.DensityLayout(5, Z.shape[1], "diag")
    buffer = nd.bind_buffer(Z, layout, DEFAULT_PRIORS)
    out = np.empty(log_sds.size)
    for i, log_sd in enumerate(log_sds):
        stds[-1, feature] = np.exp(log_sd)
        theta = nd.to_unconstrained({"weights": weights, "means": means, "stds": stds}, layout)
        out[i] = nd.logp_and_grad(theta, buffer, np.empty_like(theta))
        if prior_u is not None:
            scale = DEFAULT_PRIORS["stds_scale"]
            out[i] += prior_u(log_sd) - (-STDS_SHAPE * log_sd - scale * np.exp(-log_sd))
    return out


@pytest.mark.parametrize(("feature", "n_tied"), [(0, 8), (1, 15)])
def test_old_faithful_posterior_has_no_spike_on_tied_values(feature, n_tied):
    """Along the collapse onto Old Faithful's most repeated value, no mass below resolution.

    Old Faithful's durations repeat (8 eruptions of 1.867 min), its waiting times
    more (15 of 78 min). The posterior density of the collapsing component's log sd,
    the rest held at a configuration made for collapsing, is integrated on a grid
    from exp(-20) to exp(1.5) standardised units: the mass below half the data's
    resolution (the check `_collapsed_components` applies to NUTS draws) is below
    1e-6 (6e-10 on the waiting times, 0 to double precision on the durations). A prior
    with positive density at zero (the HalfNormal(1) it replaces) puts all the mass
    there: the probe's own contrast, so that it is known to see a spike.
    """
    X = np.asarray(load_faithful(), dtype=float)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    assert np.unique(Z[:, feature], return_counts=True)[1].max() == n_tied
    half_resolution = np.diff(np.unique(Z[:, feature])).min() / 2.0
    log_sds = np.linspace(-20.0, 1.5, 2000)
    below = log_sds < np.log(half_resolution)

    def mass_below(log_density):
        p = np.exp(log_density - log_density.max())
        return p[below].sum() / p.sum()

    assert mass_below(_collapse_profile(Z, feature, log_sds)) < 1e-6

    def half_normal_u(u):
        return np.log(2.0) + stats.norm.logpdf(np.exp(u)) + u

    assert mass_below(_collapse_profile(Z, feature, log_sds, half_normal_u)) > 0.99
