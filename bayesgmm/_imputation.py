"""Imputation of missing entries from posterior draws of a Gaussian mixture.

Given draws ``theta_s = (w_s, mu_s, Sigma_s)`` of a mixture's parameters and a row
with observed coordinates ``o`` and missing ones ``m``, two summaries:

- the posterior mean of the conditional expectation,
  ``(1/S) sum_s sum_k p(k | x_o, theta_s) E[x_m | x_o, k, theta_s]``,
  with ``p(k | x_o, theta_s)`` proportional to ``w_sk N(x_o | mu_sko, Sigma_skoo)``;
- posterior predictive imputations (multiple imputation, Rubin 1987): for each
  draw s, a component ``k ~ p(k | x_o, theta_s)`` and then
  ``x_m ~ N(E[x_m | x_o, k, theta_s], Cov[x_m | x_o, k, theta_s])``. Their spread
  holds both the uncertainty about the parameters (between draws) and the
  variability of the missing values given the observed ones (within a draw), so
  their credible intervals are intervals for the missing values themselves, not
  for their conditional mean.

The conditional moments and the observed-coordinate log densities are those of
:mod:`bayesgmm._missing`, evaluated once per draw and missingness pattern.

References
----------
Rubin, D. B. (1987). Multiple Imputation for Nonresponse in Surveys. Wiley.
doi:10.1002/9780470316696
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logsumexp

from bayesgmm._intervals import credible_interval
from bayesgmm._missing import (
    MissingnessPatterns,
    conditional_moments,
    missingness_patterns,
    observed_log_density,
)

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["ImputationDraws", "impute", "imputation_dataset", "impute_from_draws"]


@dataclasses.dataclass(frozen=True)
class ImputationDraws:
    """What :func:`impute_from_draws` computes from the parameter draws.

    Attributes
    ----------
    conditional_mean : ndarray of shape (n_samples, n_features)
        ``X`` with every missing entry replaced by the posterior mean of its
        conditional expectation; observed entries are ``X``'s own floats.
    draws : ndarray of shape (n_draws, n_samples, n_features) or None
        One posterior predictive imputation of ``X`` per parameter draw (observed
        entries repeated), when asked for.
    """

    conditional_mean: np.ndarray
    draws: np.ndarray | None


def impute_from_draws(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
) -> ImputationDraws:
    """Conditional-mean and posterior predictive imputations of ``X`` over parameter draws.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with NaN marking the missing entries; every row has an observed value.
    weights : ndarray of shape (n_draws, n_components)
    means : ndarray of shape (n_draws, n_components, n_features)
    covariances : ndarray of shape (n_draws, n_components, n_features, n_features)
        Full covariance matrices of every draw.
    rng : numpy.random.Generator, optional
        With it, one posterior predictive imputation per draw is made (see the
        module docstring); without it, only the conditional mean.

    Returns
    -------
    ImputationDraws
    """
    X = np.asarray(X, dtype=np.float64)
    n_draws = weights.shape[0]
    total = np.zeros_like(X)
    draws = None if rng is None else np.broadcast_to(X, (n_draws,) + X.shape).copy()
    patterns = missingness_patterns(X)
    incomplete = [
        (observed, rows) for observed, rows in zip(*patterns, strict=True) if not observed.all()
    ]
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    with _one_blas_thread():
        for s in range(n_draws):
            _impute_one_draw(
                X, incomplete, log_weights[s], means[s], covariances[s], total, draws, s, rng
            )
    conditional_mean = X.copy()
    for observed, rows in incomplete:
        missing = np.flatnonzero(~observed)
        conditional_mean[np.ix_(rows, missing)] = total[np.ix_(rows, missing)] / n_draws
    return ImputationDraws(conditional_mean, draws)


def _impute_one_draw(
    X: np.ndarray,
    incomplete: list[tuple[np.ndarray, np.ndarray]],
    log_weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    total: np.ndarray,
    draws: np.ndarray | None,
    s: int,
    rng: np.random.Generator | None,
) -> None:
    """Add draw ``s``'s conditional means to ``total`` and write its imputation into ``draws``."""
    for observed, rows in incomplete:
        missing = np.flatnonzero(~observed)
        subset = X[rows]
        scores = observed_log_density(
            subset, means, covariances, patterns=_one_pattern(observed, rows.size)
        )
        scores += log_weights
        resp = np.exp(scores - logsumexp(scores, axis=1, keepdims=True))
        cond_means, cond_covs = conditional_moments(subset, observed, means, covariances)
        total[np.ix_(rows, missing)] += np.einsum("nk,knm->nm", resp, cond_means)
        if draws is not None and rng is not None:
            draws[np.ix_([s], rows, missing)] = _draw_missing(resp, cond_means, cond_covs, rng)[
                None
            ]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread: the many small solves of a draw loop gain nothing from more."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _one_pattern(observed: np.ndarray, n_rows: int) -> MissingnessPatterns:
    """Return the missingness patterns of ``n_rows`` rows that all share ``observed``."""
    return MissingnessPatterns(observed[None, :], (np.arange(n_rows),))


def _draw_missing(
    resp: np.ndarray,
    cond_means: np.ndarray,
    cond_covs: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One draw of the missing coordinates of each row: a component, then its conditional.

    ``resp`` (n, K) are ``p(k | x_o)``, ``cond_means`` (K, n, m) and ``cond_covs``
    (K, m, m) the conditional moments of the missing coordinates.
    """
    n, k = resp.shape
    m = cond_covs.shape[-1]
    cumulative = np.cumsum(resp, axis=1)
    u = rng.random(n) * cumulative[:, -1]
    components = np.minimum((u[:, None] > cumulative).sum(axis=1), k - 1)
    # A Schur complement is positive semi-definite; the jitter keeps its Cholesky
    # factor real when rounding leaves it barely indefinite.
    jitter = 1e-12 * np.maximum(np.trace(cond_covs, axis1=1, axis2=2), 1e-300)
    chol = np.linalg.cholesky(cond_covs + jitter[:, None, None] * np.eye(m))
    noise = rng.standard_normal((n, m))
    return cond_means[components, np.arange(n)] + np.einsum("nab,nb->na", chol[components], noise)


def imputation_dataset(
    X: np.ndarray,
    draws: np.ndarray,
    conditional_mean: np.ndarray,
    ci_prob: float,
    ci_kind: str,
    features: list[object],
    attrs: dict[str, object],
) -> xr.Dataset:
    """Build the Dataset ``impute(X, ci_prob=...)`` returns from posterior predictive imputations.

    Variables, each with dims ``obs_id`` and ``feature``: ``imputed`` (``X`` with
    every missing entry replaced by the median of its imputations, the point
    estimate that both kinds of interval contain), ``lower`` and ``upper`` (the
    credible interval of each missing entry; an observed entry's value, its
    interval of zero width), ``mean`` (the posterior mean of the conditional
    expectation, :attr:`ImputationDraws.conditional_mean`) and ``missing`` (True
    where ``X`` is NaN). Attributes ``ci_prob``, ``ci_kind``, ``n_draws`` and
    ``attrs``.
    """
    import xarray as xr

    median, lower, upper = credible_interval(draws, ci_prob, ci_kind, axis=0)
    missing = np.isnan(X)
    dims = ("obs_id", "feature")
    return xr.Dataset(
        {
            "imputed": (dims, np.where(missing, median, X)),
            "lower": (dims, np.where(missing, lower, X)),
            "upper": (dims, np.where(missing, upper, X)),
            "mean": (dims, conditional_mean),
            "missing": (dims, missing),
        },
        coords={"obs_id": np.arange(X.shape[0]), "feature": list(features)},
        attrs={"ci_prob": ci_prob, "ci_kind": ci_kind, "n_draws": int(draws.shape[0]), **attrs},
    )


def impute(
    X: np.ndarray,
    parameter_draws: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    ci_prob: float | None,
    ci_kind: str,
    return_draws: bool,
    rng: np.random.Generator,
    features: list[object],
    interval_method: str,
) -> Any:
    """Return what a Bayesian estimator's ``impute`` gives, from its parameter draws.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Checked data, NaN for the missing entries.
    parameter_draws : (weights, means, covariances)
        (S, K), (S, K, d) and full (S, K, d, d) draws in the data's units.
    ci_prob : float or None
        None: the conditional mean only; a probability: the Dataset of
        :func:`imputation_dataset`.
    ci_kind : {"eti", "hdi"}
    return_draws : bool
        Also return the posterior predictive imputations, (S, n, d).
    rng : numpy.random.Generator
        Seeds the posterior predictive imputations.
    features : list
        The ``feature`` coordinate of the Dataset.
    interval_method : str
        How the parameter draws were made (an attribute of the Dataset).

    Returns
    -------
    ndarray or xarray.Dataset, or a tuple of it and the (S, n, d) imputations
    """
    predictive = ci_prob is not None or return_draws
    result = impute_from_draws(X, *parameter_draws, rng=rng if predictive else None)
    out: Any = result.conditional_mean
    if ci_prob is not None:
        assert result.draws is not None
        out = imputation_dataset(
            X,
            result.draws,
            result.conditional_mean,
            ci_prob,
            ci_kind,
            features,
            {"interval_method": interval_method},
        )
    if return_draws:
        return out, result.draws
    return out
