"""Conditional distributions of a Gaussian mixture: Gaussian-mixture regression.

Split the features of a mixture ``sum_k w_k N(x | mu_k, Sigma_k)`` into observed
ones ``a`` and remaining ones ``b``. Given ``x_a``, the remaining features follow
again a Gaussian mixture (Bishop 2006, section 2.3.1; Ghahramani and Jordan 1994;
Sung 2004):

* weights ``w_k(x_a) = w_k N(x_a | mu_ka, Sigma_kaa) / sum_j w_j N(x_a | mu_ja, Sigma_jaa)``,
  each component reweighted by the marginal density of the observed features;
* means ``mu_kb + Sigma_kba Sigma_kaa^{-1} (x_a - mu_ka)``;
* covariances the Schur complement ``Sigma_kbb - Sigma_kba Sigma_kaa^{-1} Sigma_kab``,
  which does not depend on ``x_a``.

Its mean ``sum_k w_k(x_a) mu_kb(x_a)`` is the regression function of ``b`` on
``a`` (what the ``gmr`` package calls Gaussian-mixture regression). The maths is
written once on full covariance matrices, which every covariance layout expands
to (:data:`bayesgmm._gaussian.LAYOUTS`); the estimators' ``condition`` and
``predict_conditional`` (:class:`bayesgmm._base.MixtureBase`) call it with their
point parameters and, for intervals, with each posterior draw.

References
----------
Bishop, C. M. (2006). *Pattern Recognition and Machine Learning*, section 2.3.1.
Springer. ISBN 978-0-387-31073-2.

Ghahramani, Z. and Jordan, M. I. (1994). Supervised learning from incomplete data
via an EM approach. *Advances in Neural Information Processing Systems* 6, 120-127.

Sung, H. G. (2004). *Gaussian mixture regression and classification*. PhD thesis,
Rice University. https://hdl.handle.net/1911/18710
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
from scipy.special import logsumexp

from bayesgmm._gaussian import LAYOUTS
from bayesgmm._validation import check_array, message

__all__ = ["ConditionalMixture", "check_conditioning", "conditional_mixture", "full_covariances"]

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclasses.dataclass(frozen=True)
class ConditionalMixture:
    """The mixture of the remaining features given observed values of the others, per row.

    Row ``i`` is its own mixture ``sum_k weights[i, k] N(means[i, k], covariances[k])``.

    Attributes
    ----------
    weights : ndarray of shape (n_samples, n_components)
        ``p(z = k | x_a)``; each row sums to one.
    means : ndarray of shape (n_samples, n_components, n_remaining)
        Conditional mean of every component at every row.
    covariances : ndarray of shape (n_components, n_remaining, n_remaining)
        Conditional covariance of every component (the Schur complement), the
        same for every row.
    observed : ndarray of int
        Positions of the conditioning features, in the order of ``X_a``'s columns.
    remaining : ndarray of int
        Positions of the remaining features, in increasing order.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    observed: np.ndarray
    remaining: np.ndarray

    def mean(self) -> np.ndarray:
        """Mean of each row's mixture, ``sum_k w_k(x_a) mu_kb(x_a)``, (n_samples, n_remaining)."""
        result: np.ndarray = np.einsum("nk,nkb->nb", self.weights, self.means)
        return result

    def covariance(self) -> np.ndarray:
        """Covariance of each row's mixture, shape (n_samples, n_remaining, n_remaining).

        ``sum_k w_k (Sigma_k + m_k m_k') - m m'`` with ``m`` the mixture mean (the
        law of total covariance).
        """
        mean = self.mean()
        second = np.einsum("nk,kab->nab", self.weights, self.covariances) + np.einsum(
            "nk,nka,nkb->nab", self.weights, self.means, self.means
        )
        result: np.ndarray = second - np.einsum("na,nb->nab", mean, mean)
        return result


def full_covariances(params: Any) -> np.ndarray:
    """Covariances of a :class:`~bayesgmm.params.GaussianMixtureParams` as (K, d, d) matrices."""
    layout = LAYOUTS[params.covariance_type]
    full = layout.to_full(params.covariances, params.n_components, params.n_features)
    return np.asarray(full, dtype=float)


def check_conditioning(X_a: Any, indices: Any, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate the observed values and the positions of the features they are.

    Parameters
    ----------
    X_a : array-like of shape (n_samples, len(indices))
        Observed values; a 1-D array is read as one column when one index is given.
    indices : int or sequence of int
        Positions (0-based) of the observed features among the model's
        ``n_features``: in range, unique, and not all of them.
    n_features : int
        Number of features of the fitted model.

    Returns
    -------
    X_a : ndarray of shape (n_samples, n_observed)
    indices : ndarray of int of shape (n_observed,)
    """
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        indices = [indices]
    try:
        values = list(indices)
    except TypeError:
        raise TypeError(message("indices", "an int or a sequence of ints", indices)) from None
    if not values or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(message("indices", "a non-empty sequence of ints", indices))
    positions = np.asarray(values, dtype=int)
    if positions.min() < 0 or positions.max() >= n_features:
        raise ValueError(
            message("indices", f"feature positions in [0, {n_features - 1}]", values, raw=True)
        )
    if np.unique(positions).size != positions.size:
        raise ValueError(message("indices", "unique feature positions", values, raw=True))
    if positions.size == n_features:
        raise ValueError(
            message(
                "indices",
                f"fewer than all {n_features} features (nothing would be left to predict)",
                values,
                raw=True,
            )
        )
    array, _ = check_array(X_a, "X_a", allow_1d=positions.size == 1)
    if not np.isfinite(array).all():
        raise ValueError(message("X_a", "finite values", "NaN or infinite values", raw=True))
    if array.shape[1] != positions.size:
        raise ValueError(
            message(
                "X_a",
                f"{positions.size} column(s), one per index in indices",
                f"{array.shape[1]} column(s)",
                raw=True,
            )
        )
    return array, positions


def conditional_mixture(
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    X_a: np.ndarray,
    indices: np.ndarray,
) -> ConditionalMixture:
    """Condition a Gaussian mixture on observed values of some of its features.

    Parameters
    ----------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
        Full covariance matrices (expand other layouts with :func:`full_covariances`).
    X_a : ndarray of shape (n, d_a)
        Observed values of the features ``indices``, checked by :func:`check_conditioning`.
    indices : ndarray of int of shape (d_a,)
        Positions of the observed features.

    Returns
    -------
    ConditionalMixture
        Weights (n, K), means (n, K, d_b) and covariances (K, d_b, d_b) of the
        mixture of the ``d_b = d - d_a`` remaining features given ``x_a``.

    Notes
    -----
    With ``Sigma_kaa = L L'`` (Cholesky), ``log N(x_a | mu_ka, Sigma_kaa)`` is
    ``-|L^-1 (x_a - mu_ka)|^2 / 2 - sum log diag L - d_a log(2 pi) / 2`` and the
    gain ``Sigma_kba Sigma_kaa^{-1}`` is obtained by two triangular solves; no
    matrix is inverted explicitly. Weights are normalised in log space, so a
    component far from ``x_a`` underflows to weight 0 instead of producing NaN.
    """
    d = means.shape[1]
    observed = np.asarray(indices, dtype=int)
    remaining = np.setdiff1d(np.arange(d), observed)
    cov_aa = covariances[:, observed[:, None], observed[None, :]]  # (K, da, da)
    cov_ab = covariances[:, observed[:, None], remaining[None, :]]  # (K, da, db)
    cov_bb = covariances[:, remaining[:, None], remaining[None, :]]  # (K, db, db)
    chol = np.linalg.cholesky(cov_aa)
    # gain' = Sigma_aa^{-1} Sigma_ab, shape (K, da, db)
    gain_t = np.linalg.solve(cov_aa, cov_ab)
    residual = X_a[None, :, :] - means[:, None, observed]  # (K, n, da)
    whitened = np.linalg.solve(chol[:, None], residual[..., None])[..., 0]  # (K, n, da)
    log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)  # (K,)
    log_density = (
        -0.5 * np.square(whitened).sum(axis=-1) - log_det[:, None] - 0.5 * observed.size * _LOG_2PI
    )  # (K, n)
    with np.errstate(divide="ignore"):
        log_joint = (np.log(weights)[:, None] + log_density).T  # (n, K)
    conditional_weights = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    conditional_means = means[None, :, remaining] + np.einsum("kna,kab->nkb", residual, gain_t)
    schur = cov_bb - np.swapaxes(cov_ab, -1, -2) @ gain_t
    schur = 0.5 * (schur + np.swapaxes(schur, -1, -2))
    return ConditionalMixture(conditional_weights, conditional_means, schur, observed, remaining)
