"""How close a variational posterior is to the exact one, and the importance-sampling repair.

Yao et al. (2018) check an approximation ``q`` of a posterior ``p(theta | X)`` by
the importance ratios ``r_s = p(theta_s, X) / q(theta_s)`` of draws ``theta_s ~ q``:
Pareto smoothed importance sampling (PSIS; Vehtari et al. 2024) fits a generalised
Pareto distribution to the largest ratios, and its shape ``k`` says how heavy
their tail is. Below ArviZ's sample-size-aware threshold ``good_k = min(1 - 1 /
log10(S), 0.7)`` for ``S`` draws, the smoothed ratios turn the draws of ``q`` into
a reliable weighted sample of the posterior; above it, no reweighting of ``q``'s
draws can be trusted, because ``q`` misses parts of the posterior where the
ratios would have to be huge.

This module computes that check for the Dirichlet-process mixture (one pool of
draws, the joint log density ``log p = sum_i log sum_k pi_k N(x_i | mu_k,
Sigma_k) + log prior`` of each, PSIS by :mod:`arviz_stats`) and resamples the pool
by the smoothed weights. The smoothing and ``k`` are arviz-stats'
``array_stats.psislw``; the threshold is :func:`bayesgmm.comparison.pareto_k_threshold`,
ArviZ's rule.

References
----------
Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?:
Evaluating variational inference. ICML, PMLR 80, 5581-5590.
https://proceedings.mlr.press/v80/yao18a.html
Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed
importance sampling. JMLR 25(72), 1-58.
Kitagawa, G. (1996). Monte Carlo filter and smoother for non-Gaussian nonlinear
state space models. JCGS 5(1), 1-25. doi:10.1080/10618600.1996.10474692
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from bayesgmm._cavi import ParameterDraws
from bayesgmm._chunks import map_reduce
from bayesgmm._gaussian import DegenerateCovarianceError, feature_map, natural_parameters
from bayesgmm._missing import missingness_patterns, observed_log_density

__all__ = [
    "POOL_SIZE",
    "ApproximationWarning",
    "ImportanceCheck",
    "check_approximation",
    "log_likelihood_sums",
    "resample",
]

#: Draws of the approximation whose importance ratios are checked and resampled.
POOL_SIZE = 1000
# Draws whose log-likelihoods are computed with one matrix product (memory n x batch x T).
_BATCH = 32
# Relative spread of the log ratios below which q is taken to be exact (rounding only).
_EXACT_TOLERANCE = 1e-10


class ApproximationWarning(UserWarning):
    """The variational posterior is too far from the exact one for its intervals to be trusted.

    Issued by :meth:`bayesgmm.DPGaussianMixture.fit` when the Pareto k of the
    importance ratios ``p / q`` exceeds ArviZ's threshold; the message says what
    to do (:meth:`~bayesgmm.DPGaussianMixture.refine`).
    """


@dataclass(frozen=True)
class ImportanceCheck:
    """PSIS of the importance ratios ``p / q`` over a pool of draws of ``q``.

    Attributes
    ----------
    pareto_k : float
        Shape of the generalised Pareto tail of the ratios: inf when a ratio is
        not finite (or the fit fails), -inf when the ratios are constant to
        rounding (q is the posterior itself).
    good_k : float
        ArviZ's threshold for ``POOL_SIZE`` draws.
    log_weights : ndarray of shape (POOL_SIZE,)
        Pareto-smoothed log importance weights, normalised (``logsumexp = 0``).
    seed : int
        Seed of the pool: ``posterior.draws(POOL_SIZE, np.random.default_rng(seed))``
        gives the same draws again.
    """

    pareto_k: float
    good_k: float
    log_weights: np.ndarray
    seed: int

    @property
    def reliable(self) -> bool:
        """Whether ``pareto_k`` is at most ``good_k`` (PSIS can correct ``q``)."""
        return bool(self.pareto_k <= self.good_k)

    @property
    def interval_method(self) -> str:
        """``"VI+PSIS"`` when the reweighted draws are used, else ``"VI"``."""
        return "VI+PSIS" if self.reliable else "VI"

    @property
    def ess(self) -> float:
        """Effective sample size of the smoothed weights, ``1 / sum_s w_s^2``."""
        return float(1.0 / np.sum(np.exp(2.0 * self.log_weights)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state, read back by :meth:`from_dict`."""
        return {
            "pareto_k": self.pareto_k,
            "good_k": self.good_k,
            "log_weights": self.log_weights.tolist(),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ImportanceCheck:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            float(state["pareto_k"]),
            float(state["good_k"]),
            np.asarray(state["log_weights"], dtype=float),
            int(state["seed"]),
        )


def log_likelihood_sums(
    draws: ParameterDraws, data: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """``sum_i log sum_k pi_k N(x_i | mu_k, Sigma_k)`` for every draw, shape (S,).

    ``data`` is centred as the draws are; with ``sample_weight`` (frequency
    weights) row i's term counts ``w_i`` times. The natural parameters of all
    S x T components are computed in one call (the draws' components side by
    side, a tied covariance repeated for every component of its draw, whose
    feature map is the full one); then ``_BATCH`` draws at a time, one matrix
    product gives every row's log joint density under all their components.
    """
    if np.isnan(data).any():
        return _observed_log_likelihood_sums(draws, data)
    # Rows last, so that the sums over components add contiguous rows of length n.
    features = np.ascontiguousarray(feature_map(data, draws.covariance_type).T)
    n_draws, t = draws.log_weights.shape
    eta, const = _natural_parameters_of_draws(draws)
    offset = const + draws.log_weights.ravel()
    out = np.empty(n_draws)
    for start in range(0, n_draws, _BATCH):
        stop = min(start + _BATCH, n_draws)
        columns = slice(start * t, stop * t)
        joint = eta[:, columns].T @ features
        joint += offset[columns, None]
        joint = joint.reshape(stop - start, t, -1)
        top = joint.max(axis=1)
        joint -= top[:, None, :]  # in place: the (batch, T, n) array is the whole cost
        np.exp(joint, out=joint)
        per_row = top + np.log(joint.sum(axis=1))
        if sample_weight is None:
            out[start:stop] = per_row.sum(axis=1)
        else:
            out[start:stop] = per_row @ sample_weight
    return out


def _natural_parameters_of_draws(draws: ParameterDraws) -> tuple[np.ndarray, np.ndarray]:
    """``eta`` (columns, S * T) and ``c`` (S * T,) of every component of every draw, draw-major."""
    kind = draws.covariance_type
    n_draws, t, d = draws.means.shape
    chol = draws.prec_chol
    if kind == "tied":
        chol = np.broadcast_to(chol[:, None], (n_draws, t, d, d))
        kind = "full"
    flat_chol = chol.reshape((n_draws * t,) + chol.shape[2:])
    eta, const = natural_parameters(draws.means.reshape(n_draws * t, d), flat_chol, kind)
    return eta, const


def _observed_log_likelihood_sums(draws: ParameterDraws, data: np.ndarray) -> np.ndarray:
    """``sum_i log sum_k pi_k N(x_io | mu_ko, Sigma_koo)`` for every draw, on rows with ``NaN``.

    The observed-data likelihood (each row on its observed coordinates), which
    is what the posterior of the parameters conditions on when entries are
    missing at random. ``_BATCH`` draws are evaluated together, their
    components side by side, with one batched factorisation per pattern.
    """
    patterns = missingness_patterns(data)
    covariances = draws.full_covariances()
    n_draws, t, d = draws.means.shape
    out = np.empty(n_draws)
    for start in range(0, n_draws, _BATCH):
        stop = min(start + _BATCH, n_draws)
        size = stop - start
        try:
            log_density = observed_log_density(
                data,
                draws.means[start:stop].reshape(size * t, d),
                covariances[start:stop].reshape(size * t, d, d),
                patterns=patterns,
            )
        except DegenerateCovarianceError:
            out[start:stop] = -np.inf  # a singular draw: the check then says k = inf
            continue
        joint = log_density.reshape(-1, size, t) + draws.log_weights[start:stop]
        top = joint.max(axis=2)
        out[start:stop] = (top + np.log(np.exp(joint - top[..., None]).sum(axis=2))).sum(axis=0)
    return out


def check_approximation(
    posterior: Any, X: Any, center: np.ndarray, seed: int, sample_weight: Any = None
) -> ImportanceCheck:
    """Draw the pool from ``posterior``, then PSIS-smooth its importance ratios.

    Parameters
    ----------
    posterior : the DP's posterior object
        Anything with ``draws(n_draws, rng)`` returning :class:`ParameterDraws`.
    X : ndarray or dask.array.Array of shape (n_samples, n_features)
        The training data, uncentred; a Dask array is summed block by block.
    center : ndarray of shape (n_features,)
        The centre of the frame the posterior lives in.
    seed : int
        Seed of the pool.
    sample_weight : ndarray or dask.array.Array of shape (n_samples,), optional
        Frequency weights of the rows: the likelihood in the ratios is
        ``prod_i p(x_i | theta)^{w_i}``.

    Returns
    -------
    ImportanceCheck
    """
    from arviz_stats.base import array_stats

    from bayesgmm.comparison import pareto_k_threshold

    # On degenerate data (all rows equal) q's precisions overflow: the ratios are then
    # not finite, which is the answer (k = inf), not a floating-point warning.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        draws = posterior.draws(POOL_SIZE, np.random.default_rng(seed))
        log_lik = np.asarray(
            map_reduce(
                partial(log_likelihood_sums, draws), X, shift=center, sample_weight=sample_weight
            )
        )
        log_ratio = log_lik + draws.log_prior - draws.log_q
    good_k = pareto_k_threshold(POOL_SIZE)
    uniform = np.full(POOL_SIZE, -np.log(POOL_SIZE))
    if not np.all(np.isfinite(log_ratio)):
        return ImportanceCheck(float("inf"), good_k, uniform, seed)
    if np.ptp(log_ratio) <= _EXACT_TOLERANCE * max(1.0, float(np.abs(log_ratio).max())):
        # q equals the posterior (a conjugate case): the ratios are constant but for
        # rounding, whose tail no Pareto fit should be asked to describe.
        return ImportanceCheck(float("-inf"), good_k, uniform, seed)
    # psislw smooths the ratios exp(-a) of its argument a (ArviZ's convention for
    # leave-one-out, whose ratios are 1 / p(x_i | theta)), hence the minus sign.
    log_weights, k_hat = array_stats.psislw(-(log_ratio - log_ratio.max()), r_eff=1.0)
    k_hat = float(k_hat) if np.isfinite(k_hat) else float("inf")
    return ImportanceCheck(k_hat, good_k, np.asarray(log_weights, dtype=float), seed)


def resample(log_weights: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n_draws`` draws from the pool in proportion to its weights; return their indices.

    Systematic resampling (Kitagawa 1996): one uniform ``u``, then the draws at
    the points ``(u + j) / n_draws`` of the weights' cumulative sum, so each draw
    is taken ``n_draws * w_s`` times rounded up or down, with less noise than
    independent (multinomial) picks. The indices are returned in random order.
    """
    weights = np.exp(log_weights - np.max(log_weights))
    cumulative = np.cumsum(weights / weights.sum())
    points = (rng.uniform() + np.arange(n_draws)) / n_draws
    picks = np.minimum(np.searchsorted(cumulative, points), log_weights.size - 1)
    return rng.permutation(picks)
