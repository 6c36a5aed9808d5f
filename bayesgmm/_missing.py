"""Gaussian mixtures on data with missing entries: the maths every engine shares.

A row ``x`` with observed coordinates ``o`` and missing coordinates ``m``
(``NaN`` in the data) is evaluated on what was observed: under component k,
``x_o ~ N(mu_ko, Sigma_koo)``, the marginal of the component's Gaussian, so its
log density is that of a Gaussian in ``|o|`` dimensions. The missing
coordinates given the observed ones are Gaussian too (the conditional of a
Gaussian), with mean and covariance

    E[x_m | x_o, k]   = mu_km + Sigma_kmo Sigma_koo^{-1} (x_o - mu_ko),
    Cov[x_m | x_o, k] = Sigma_kmm - Sigma_kmo Sigma_koo^{-1} Sigma_kom

(the Schur complement of ``Sigma_koo``). The covariance does not depend on
``x_o``, only on which coordinates were seen, so rows are grouped by their
*missingness pattern* and every quantity is computed with one Cholesky factor
of ``Sigma_koo`` per pattern and component.

EM for incomplete data (Ghahramani and Jordan 1994; Little and Rubin 2019,
section 11.2) uses both: the E-step's responsibilities come from the observed
log densities, and the expected complete-data sufficient statistics fill in
the missing coordinates with their conditional moments,

    sum_i r_ik x_i      -> sum_i r_ik xhat_ik,
    sum_i r_ik x_i x_i' -> sum_i r_ik (xhat_ik xhat_ik' + C_ik),

with ``xhat_ik`` the row completed by ``E[x_m | x_o, k]`` and ``C_ik`` zero
except for ``Cov[x_m | x_o, k]`` in the missing block. These are exactly the
conditional expectations of the complete-data statistics, so the M-step of
every covariance model (which reads only the statistics) maximises the
expected complete-data log-likelihood and EM increases the observed-data
log-likelihood ``sum_i log sum_k w_k N(x_io | mu_ko, Sigma_koo)``.

All of this assumes the entries are missing at random (MAR): whether an entry
is missing may depend on the observed entries of its row but not on its own
value, so the missingness mechanism drops out of the likelihood (Rubin 1976).

References
----------
Ghahramani, Z. and Jordan, M. I. (1994). Supervised learning from incomplete
data via an EM approach. Advances in Neural Information Processing Systems 6,
120-127.
Little, R. J. A. and Rubin, D. B. (2019). Statistical Analysis with Missing
Data, 3rd ed. Wiley. doi:10.1002/9781119482260
Rubin, D. B. (1976). Inference and missing data. Biometrika 63(3), 581-592.
doi:10.1093/biomet/63.3.581
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from bayesgmm._gaussian import LAYOUTS, DegenerateCovarianceError, SufficientStatistics

__all__ = [
    "MissingnessPatterns",
    "conditional_moments",
    "impute_conditional_mean",
    "missing_statistics",
    "missingness_patterns",
    "observed_log_density",
    "observed_log_mixture_density",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


class MissingnessPatterns(NamedTuple):
    """Rows of a data set grouped by which coordinates are observed.

    Attributes
    ----------
    observed : ndarray of bool, shape (n_patterns, n_features)
        ``observed[p, j]`` is True when feature j is observed in the rows of
        pattern p. Patterns are distinct and sorted (NumPy's ``unique``), so
        the complete pattern, all True, comes last when present.
    rows : tuple of ndarray of int
        ``rows[p]``: indices of the rows with pattern p, increasing.
    """

    observed: np.ndarray
    rows: tuple[np.ndarray, ...]


def missingness_patterns(X: np.ndarray) -> MissingnessPatterns:
    """Group the rows of ``X`` by their pattern of missing (``NaN``) entries.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data in which ``NaN`` marks a missing entry.

    Returns
    -------
    MissingnessPatterns
        Unpacks as ``observed, rows``: the observed-coordinate mask of each
        distinct pattern, shape (n_patterns, n_features), and the indices of
        the rows that have it.
    """
    observed_mask = ~np.isnan(np.asarray(X, dtype=float))
    if observed_mask.shape[0] == 0:
        return MissingnessPatterns(np.zeros((0, observed_mask.shape[1]), dtype=bool), ())
    patterns, inverse = np.unique(observed_mask, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=patterns.shape[0]))[:-1]
    rows = tuple(np.split(order, bounds))
    return MissingnessPatterns(patterns.astype(bool), rows)


@dataclass(frozen=True)
class _PatternTerms:
    """What one pattern needs from each component's Gaussian."""

    observed: np.ndarray  # (d,) bool
    log_density: np.ndarray  # (n_rows, K)
    conditional_means: np.ndarray  # (K, n_rows, n_missing)
    conditional_covariances: np.ndarray  # (K, n_missing, n_missing)


def _pattern_terms(
    rows: np.ndarray,
    observed: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    *,
    moments: bool = True,
) -> _PatternTerms:
    """Observed log densities and conditional moments of rows sharing one pattern.

    ``rows`` are the full-width rows (their missing entries are ignored). One
    Cholesky factor ``L_k`` of ``Sigma_koo`` per component gives the log density
    ``-|o|/2 log 2 pi - log|L_k| - |L_k^{-1} (x_o - mu_ko)|^2 / 2``, the regression
    coefficients ``Sigma_kmo Sigma_koo^{-1}`` and the Schur complement.
    """
    n_components = means.shape[0]
    obs = np.flatnonzero(observed)
    mis = np.flatnonzero(~observed)
    n_rows = rows.shape[0]
    log_density = np.zeros((n_rows, n_components))
    cond_means = np.empty((n_components, n_rows, mis.size))
    cond_covs = np.empty((n_components, mis.size, mis.size))
    x_obs = rows[:, obs]
    for k in range(n_components):
        sigma = covariances_full[k]
        sigma_oo = sigma[np.ix_(obs, obs)]
        diff = x_obs - means[k, obs]
        if obs.size:
            try:
                chol = linalg.cholesky(sigma_oo, lower=True, check_finite=False)
            except linalg.LinAlgError:
                raise DegenerateCovarianceError(
                    f"covariances: component {k} is not positive definite on the observed "
                    f"features {obs.tolist()}. Increase reg_covar, reduce n_components, or "
                    "scale the features to comparable ranges."
                ) from None
            whitened = linalg.solve_triangular(chol, diff.T, lower=True, check_finite=False)
            log_det = float(np.log(np.diagonal(chol)).sum())
            log_density[:, k] = (
                -0.5 * obs.size * _LOG_2PI - log_det - 0.5 * np.square(whitened).sum(axis=0)
            )
        if not moments:
            continue
        sigma_mo = sigma[np.ix_(mis, obs)]
        sigma_mm = sigma[np.ix_(mis, mis)]
        if obs.size:
            # coefficients' = Sigma_oo^{-1} Sigma_om, by the Cholesky factor.
            coefficients = linalg.cho_solve((chol, True), sigma_mo.T, check_finite=False).T
            cond_means[k] = means[k, mis] + diff @ coefficients.T
            schur = sigma_mm - coefficients @ sigma_mo.T
            cond_covs[k] = 0.5 * (schur + schur.T)
        else:
            cond_means[k] = means[k, mis]
            cond_covs[k] = sigma_mm
    return _PatternTerms(observed, log_density, cond_means, cond_covs)


def observed_log_density(
    X: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    *,
    patterns: MissingnessPatterns | None = None,
) -> np.ndarray:
    """Log density of every component at the observed coordinates of every row.

    ``log N(x_io | mu_ko, Sigma_koo)`` with ``o`` the coordinates of row i that
    are not ``NaN``: the marginal density of what was observed. A complete row
    gets the ordinary Gaussian log density, a row with nothing observed 0
    (the density of no data is 1).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data with ``NaN`` for missing entries.
    means : ndarray of shape (n_components, n_features)
    covariances_full : ndarray of shape (n_components, n_features, n_features)
        Full covariance matrices (see :func:`bayesgmm._gaussian.full_covariances`).
    patterns : MissingnessPatterns, optional
        ``missingness_patterns(X)``, when the caller already has it.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    X = np.asarray(X, dtype=float)
    patterns = missingness_patterns(X) if patterns is None else patterns
    out = np.empty((X.shape[0], means.shape[0]))
    for observed, rows in zip(patterns.observed, patterns.rows, strict=True):
        terms = _pattern_terms(X[rows], observed, means, covariances_full, moments=False)
        out[rows] = terms.log_density
    return out


def conditional_moments(
    rows: np.ndarray, observed: np.ndarray, means: np.ndarray, covariances_full: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Moments of the missing coordinates given the observed ones, per component.

    ``E[x_m | x_o, k] = mu_km + Sigma_kmo Sigma_koo^{-1} (x_o - mu_ko)`` and
    ``Cov[x_m | x_o, k] = Sigma_kmm - Sigma_kmo Sigma_koo^{-1} Sigma_kom``, with
    ``o`` the True and ``m`` the False entries of ``observed``.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features) or (n_rows, n_observed)
        Rows that share the pattern ``observed``: either full-width rows (their
        missing entries, NaN or not, are ignored) or only their observed
        coordinates, in feature order.
    observed : ndarray of bool, shape (n_features,)
        Which coordinates are observed.
    means : ndarray of shape (n_components, n_features)
    covariances_full : ndarray of shape (n_components, n_features, n_features)

    Returns
    -------
    conditional_means : ndarray of shape (n_components, n_rows, n_missing)
    conditional_covariances : ndarray of shape (n_components, n_missing, n_missing)
    """
    observed = np.asarray(observed, dtype=bool)
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    d = observed.shape[0]
    if rows.shape[1] != d:
        if rows.shape[1] != int(observed.sum()):
            raise ValueError(
                f"rows: expected {d} columns (full rows) or {int(observed.sum())} "
                f"(the observed coordinates), got {rows.shape[1]}"
            )
        full = np.full((rows.shape[0], d), np.nan)
        full[:, observed] = rows
        rows = full
    terms = _pattern_terms(rows, observed, means, covariances_full)
    return terms.conditional_means, terms.conditional_covariances


def observed_log_mixture_density(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    *,
    patterns: MissingnessPatterns | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed-data log density and log responsibilities of every row.

    ``log p(x_io) = log sum_k w_k N(x_io | mu_ko, Sigma_koo)`` and
    ``log p(z_i = k | x_io)``, on the observed coordinates of each row.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
    log_resp : ndarray of shape (n_samples, n_components)
        ``log p(z_i = k | x_io)``.
    """
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    weighted = observed_log_density(X, means, covariances_full, patterns=patterns) + log_weights
    log_density = logsumexp(weighted, axis=1)
    return log_density, weighted - log_density[:, None]


def _completed_rows(rows: np.ndarray, terms: _PatternTerms) -> np.ndarray:
    """Rows completed by each component's conditional mean: shape (K, n_rows, d)."""
    n_components = terms.conditional_means.shape[0]
    completed = np.broadcast_to(rows, (n_components,) + rows.shape).copy()
    completed[:, :, ~terms.observed] = terms.conditional_means
    return completed


def missing_statistics(
    X: np.ndarray,
    log_weights: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    covariance_type: str,
    *,
    patterns: MissingnessPatterns | None = None,
    resp_out: np.ndarray | None = None,
) -> SufficientStatistics:
    """EM's E-step on rows with missing entries: expected complete-data statistics.

    Responsibilities ``r_ik`` are proportional to
    ``w_k N(x_io | mu_ko, Sigma_koo)``; the statistics are
    ``N_k = sum_i r_ik``, ``sum_i r_ik xhat_ik`` and
    ``sum_i r_ik (xhat_ik xhat_ik' + C_ik)`` (see the module docstring), in the
    shape the layout's M-step reads (``LAYOUTS[covariance_type].statistics_shape``:
    the full matrix, its diagonal, or its trace). ``log_normalizer`` is the
    observed-data log-likelihood of the rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data (usually centred) with ``NaN`` for missing entries; ``means`` are
        in the same frame.
    log_weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances_full : ndarray of shape (n_components, n_features, n_features)
    covariance_type : str
        A key of :data:`bayesgmm._gaussian.LAYOUTS`.
    patterns : MissingnessPatterns, optional
        ``missingness_patterns(X)``, when the caller already has it.
    resp_out : ndarray of shape (n_samples, n_components), optional
        If given, the responsibilities are written into it.

    Returns
    -------
    SufficientStatistics
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    n_components = means.shape[0]
    patterns = missingness_patterns(X) if patterns is None else patterns
    stats = SufficientStatistics.zeros(n_components, d, covariance_type)
    storage = LAYOUTS[covariance_type].storage
    for observed, index in zip(patterns.observed, patterns.rows, strict=True):
        rows = X[index]
        terms = _pattern_terms(rows, observed, means, covariances_full)
        scores = terms.log_density + log_weights
        normalizer = logsumexp(scores, axis=1)
        resp = np.exp(scores - normalizer[:, None])
        if resp_out is not None:
            resp_out[index] = resp
        nk = resp.sum(axis=0)
        completed = _completed_rows(rows, terms)
        weighted = resp.T[:, :, None] * completed
        sum_x = weighted.sum(axis=1)
        mis = np.flatnonzero(~observed)
        if storage in ("full", "tied"):
            sum_xx = np.swapaxes(weighted, 1, 2) @ completed
            sum_xx[np.ix_(np.arange(n_components), mis, mis)] += (
                nk[:, None, None] * terms.conditional_covariances
            )
        else:
            conditional_variances = np.diagonal(terms.conditional_covariances, axis1=1, axis2=2)
            sum_xx = (weighted * completed).sum(axis=1)
            sum_xx[:, mis] += nk[:, None] * conditional_variances
            if storage == "spherical":
                sum_xx = sum_xx.sum(axis=1)
        stats = stats + SufficientStatistics(
            covariance_type, nk, sum_x, sum_xx, float(normalizer.sum()), rows.shape[0]
        )
    return stats


def impute_conditional_mean(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    *,
    patterns: MissingnessPatterns | None = None,
) -> np.ndarray:
    """Fill the missing entries of ``X`` with their conditional mean under the mixture.

    ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]``, the responsibilities
    computed from the observed coordinates. Observed entries are returned
    unchanged (the same floats).

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        A new array; ``X`` is not modified.
    """
    X = np.asarray(X, dtype=float)
    out = X.copy()
    patterns = missingness_patterns(X) if patterns is None else patterns
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    for observed, index in zip(patterns.observed, patterns.rows, strict=True):
        if observed.all():
            continue
        terms = _pattern_terms(X[index], observed, means, covariances_full)
        scores = terms.log_density + log_weights
        resp = np.exp(scores - logsumexp(scores, axis=1)[:, None])
        filled = np.einsum("nk,knm->nm", resp, terms.conditional_means)
        out[np.ix_(index, np.flatnonzero(~observed))] = filled
    return out
