"""Pure Gaussian maths shared by EM, variational inference and the Bayesian models.

The central idea: for every covariance type the log density of a Gaussian is an
affine function of a fixed *feature map* of the data,

    log N(x | mu, Sigma) = c + phi(x) . eta,

where, with precision Lambda = Sigma^{-1},

* ``full``/``tied``: phi(x) = (x, x_i x_j for i <= j), eta = (Lambda mu, -Lambda_ij / 2
  on the diagonal and -Lambda_ij off it), c = -d/2 log(2 pi) + 1/2 log|Lambda|
  - 1/2 mu' Lambda mu;
* ``diag``: phi(x) = (x, x**2), eta = (Lambda mu, -Lambda / 2);
* ``spherical``: phi(x) = (x, |x|**2), eta = (lambda mu, -lambda / 2).

So the log density of every component at every point is one matrix product
``phi(X) @ eta`` (the E-step), and the sufficient statistics that the M-step
needs (N_k, sum_i r_ik x_i, sum_i r_ik x_i x_i') are ``R' phi(X)``, accumulated
chunk by chunk. Coordinate-ascent VI uses the same kernel with *expected*
natural parameters E_q[eta], which is why both live here.

Expanding the quadratic form loses a little precision when the data sit far
from the origin relative to their spread, so callers centre the data first
(every function here that takes raw data does so itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

__all__ = [
    "COVARIANCE_TYPES",
    "DegenerateCovarianceError",
    "SufficientStatistics",
    "compute_precision_cholesky",
    "covariances_from_statistics",
    "default_chunk_size",
    "e_step_statistics",
    "feature_map",
    "full_covariances",
    "log_gaussian_prob",
    "log_mixture_density",
    "n_free_parameters",
    "natural_parameters",
    "sample_mixture",
    "statistics_from_responsibilities",
    "unpack_feature_sums",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_LOG_2PI = float(np.log(2.0 * np.pi))
_EPS = float(np.finfo(np.float64).eps)
# Rows of the feature matrix held at once: about 4 MiB, so a chunk stays in cache.
_CHUNK_BYTES = 1 << 22


class DegenerateCovarianceError(ValueError):
    """A covariance matrix is not positive definite (a collapsed or singleton component)."""


def default_chunk_size(n_features: int, covariance_type: str) -> int:
    """Rows per chunk so that one chunk of the feature map takes about 4 MiB."""
    width = n_feature_columns(n_features, covariance_type)
    return max(256, _CHUNK_BYTES // (8 * width))


def n_feature_columns(n_features: int, covariance_type: str) -> int:
    """Width of the feature map ``phi(x)`` for ``n_features`` features."""
    d = n_features
    if covariance_type in ("full", "tied"):
        return d + d * (d + 1) // 2
    if covariance_type == "diag":
        return 2 * d
    return d + 1


def feature_map(X: np.ndarray, covariance_type: str, out: np.ndarray | None = None) -> np.ndarray:
    """Return ``phi(X)``: the columns in which every Gaussian log density is linear.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, ideally centred.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Which quadratic terms the covariance type needs.
    out : ndarray, optional
        Preallocated output of the right shape.

    Returns
    -------
    ndarray of shape (n_samples, n_feature_columns)
        ``X`` followed by the products ``x_i x_j`` (i <= j, row-major upper
        triangle) for full/tied, ``x**2`` for diag, ``|x|**2`` for spherical.
    """
    n, d = X.shape
    width = n_feature_columns(d, covariance_type)
    if out is None:
        out = np.empty((n, width))
    out[:, :d] = X
    if covariance_type in ("full", "tied"):
        start = d
        for i in range(d):
            np.multiply(X[:, i : i + 1], X[:, i:], out=out[:, start : start + d - i])
            start += d - i
    elif covariance_type == "diag":
        np.multiply(X, X, out=out[:, d:])
    else:
        np.einsum("ij,ij->i", X, X, out=out[:, d])
    return out


def _pack_symmetric(matrices: np.ndarray, off_diagonal_factor: float) -> np.ndarray:
    """Pack the upper triangles of ``(K, d, d)`` matrices, scaling off-diagonal entries."""
    d = matrices.shape[-1]
    rows, cols = np.triu_indices(d)
    packed = matrices[:, rows, cols].copy()
    packed[:, rows != cols] *= off_diagonal_factor
    return packed


def _unpack_symmetric(packed: np.ndarray, d: int) -> np.ndarray:
    """Inverse of :func:`_pack_symmetric` with factor 1: rebuild symmetric ``(K, d, d)``."""
    rows, cols = np.triu_indices(d)
    out = np.zeros(packed.shape[:-1] + (d, d))
    out[..., rows, cols] = packed
    out[..., cols, rows] = packed
    return out


def natural_parameters(
    means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eta, c)`` such that ``log N(x | mu_k, Sigma_k) = c_k + phi(x) . eta[:, k]``.

    Parameters
    ----------
    means : ndarray of shape (n_components, n_features)
    precisions_cholesky : ndarray
        Cholesky factors ``P`` of the precisions, ``Lambda = P P'``, in
        scikit-learn's layout: (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    eta : ndarray of shape (n_feature_columns, n_components)
    c : ndarray of shape (n_components,)
    """
    n_components, d = means.shape
    if covariance_type in ("full", "tied"):
        chol = precisions_cholesky
        if covariance_type == "tied":
            chol = np.broadcast_to(chol, (n_components, d, d))
        precisions = chol @ np.swapaxes(chol, -1, -2)
        linear = np.einsum("kij,kj->ki", precisions, means)
        quadratic = _pack_symmetric(precisions, 2.0) * -0.5
        log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=1)
        maha = np.square(np.einsum("ki,kij->kj", means, chol)).sum(axis=1)
        eta = np.concatenate([linear, quadratic], axis=1).T
    elif covariance_type == "diag":
        precisions = precisions_cholesky**2
        eta = np.concatenate([precisions * means, -0.5 * precisions], axis=1).T
        log_det = np.log(precisions_cholesky).sum(axis=1)
        maha = (precisions * means**2).sum(axis=1)
    elif covariance_type == "spherical":
        precisions = precisions_cholesky**2
        eta = np.concatenate([precisions[:, None] * means, -0.5 * precisions[:, None]], axis=1).T
        log_det = d * np.log(precisions_cholesky)
        maha = precisions * (means**2).sum(axis=1)
    else:  # pragma: no cover - validated at the boundary
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    const = -0.5 * d * _LOG_2PI + log_det - 0.5 * maha
    return np.ascontiguousarray(eta), const


def log_gaussian_prob(
    X: np.ndarray,
    means: np.ndarray,
    precisions_cholesky: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Log density of every component at every point, ``log N(x_i | mu_k, Sigma_k)``.

    The data and the means are first centred on the mean of the means (the
    densities do not change), then evaluated chunk by chunk as ``phi(X) @ eta``.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    center = means.mean(axis=0)
    eta, const = natural_parameters(means - center, precisions_cholesky, covariance_type)
    n, d = X.shape
    out = np.empty((n, means.shape[0]))
    step = chunk_size or default_chunk_size(d, covariance_type)
    for start in range(0, n, step):
        stop = min(start + step, n)
        features = feature_map(X[start:stop] - center, covariance_type)
        np.matmul(features, eta, out=out[start:stop])
        out[start:stop] += const
    return out


def log_mixture_density(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    precisions_cholesky: np.ndarray,
    covariance_type: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``log p(x_i)`` and the log responsibilities ``log p(z_i = k | x_i)``.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        ``log sum_k w_k N(x_i | mu_k, Sigma_k)``.
    log_resp : ndarray of shape (n_samples, n_components)
    """
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    weighted = log_gaussian_prob(X, means, precisions_cholesky, covariance_type) + log_weights
    log_density = logsumexp(weighted, axis=1)
    return log_density, weighted - log_density[:, None]


@dataclass
class SufficientStatistics:
    """Responsibility-weighted sums over the data; additive across chunks.

    Attributes
    ----------
    covariance_type : str
    nk : ndarray of shape (n_components,)
        ``N_k = sum_i r_ik``.
    sum_x : ndarray of shape (n_components, n_features)
        ``sum_i r_ik x_i``.
    sum_xx : ndarray
        ``sum_i r_ik x_i x_i'`` with shape (K, d, d) for full and tied, its
        diagonal (K, d) for diag, and its trace (K,) for spherical.
    log_normalizer : float
        ``sum_i log sum_k exp(s_ik)`` of the unnormalised log responsibilities
        ``s``: the log-likelihood in EM, and the data part of the ELBO in CAVI.
    n_samples : int
    """

    covariance_type: str
    nk: np.ndarray
    sum_x: np.ndarray
    sum_xx: np.ndarray
    log_normalizer: float
    n_samples: int

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        if other.covariance_type != self.covariance_type:
            raise ValueError("cannot add statistics of different covariance types")
        return SufficientStatistics(
            self.covariance_type,
            self.nk + other.nk,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.log_normalizer + other.log_normalizer,
            self.n_samples + other.n_samples,
        )

    @classmethod
    def zeros(
        cls, n_components: int, n_features: int, covariance_type: str
    ) -> SufficientStatistics:
        """Statistics of no data: the identity of ``+``."""
        shape = {
            "full": (n_components, n_features, n_features),
            "tied": (n_components, n_features, n_features),
            "diag": (n_components, n_features),
            "spherical": (n_components,),
        }[covariance_type]
        return cls(
            covariance_type,
            np.zeros(n_components),
            np.zeros((n_components, n_features)),
            np.zeros(shape),
            0.0,
            0,
        )


def unpack_feature_sums(
    packed: np.ndarray, n_features: int, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``R' phi(X)`` (K, width) into ``sum_x`` and ``sum_xx``."""
    d = n_features
    sum_x = packed[:, :d]
    rest = packed[:, d:]
    if covariance_type in ("full", "tied"):
        sum_xx = _unpack_symmetric(rest, d)
    elif covariance_type == "diag":
        sum_xx = rest.copy()
    else:
        sum_xx = rest[:, 0].copy()
    return sum_x.copy(), sum_xx


def e_step_statistics(
    X: np.ndarray,
    log_weights: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
    resp_out: np.ndarray | None = None,
) -> SufficientStatistics:
    """One pass over ``X``: responsibilities and the sufficient statistics they weight.

    With unnormalised log responsibilities ``s_ik = log_weights_k + c_k + phi(x_i) . eta_k``,
    the responsibilities are ``r_ik = exp(s_ik - logsumexp_k s_ik)`` and the
    statistics are ``N_k = sum_i r_ik`` and ``R' phi(X)``. In EM ``(eta, c)``
    are the natural parameters of the current estimate and ``log_weights`` the
    log mixing weights; in CAVI they are their expectations under q.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data in the frame ``eta`` was computed in (usually centred).
    log_weights, eta, const
        See above; ``eta`` has shape (width, K).
    covariance_type : str
    chunk_size : int, optional
        Rows per chunk (default: about 4 MiB of features).
    resp_out : ndarray of shape (n_samples, n_components), optional
        If given, the responsibilities are written into it.

    Returns
    -------
    SufficientStatistics
    """
    n, d = X.shape
    n_components = eta.shape[1]
    step = chunk_size or default_chunk_size(d, covariance_type)
    width = eta.shape[0]
    offset = const + log_weights
    packed = np.zeros((n_components, width))
    nk = np.zeros(n_components)
    log_normalizer = 0.0
    features_buffer = np.empty((min(step, n), width))
    scores_buffer = np.empty((min(step, n), n_components))
    for start in range(0, n, step):
        stop = min(start + step, n)
        rows = stop - start
        features = feature_map(X[start:stop], covariance_type, out=features_buffer[:rows])
        scores = np.matmul(features, eta, out=scores_buffer[:rows])
        scores += offset
        top = scores.max(axis=1, keepdims=True)
        scores -= top
        np.exp(scores, out=scores)
        total = scores.sum(axis=1, keepdims=True)
        log_normalizer += float(np.log(total).sum() + top.sum())
        scores /= total
        nk += scores.sum(axis=0)
        # (phi' R)' rather than R' phi: OpenBLAS is ~80x slower on the latter's tall thin layout.
        packed += (features.T @ scores).T
        if resp_out is not None:
            resp_out[start:stop] = scores
    sum_x, sum_xx = unpack_feature_sums(packed, d, covariance_type)
    return SufficientStatistics(covariance_type, nk, sum_x, sum_xx, log_normalizer, n)


def statistics_from_responsibilities(
    X: np.ndarray, resp: np.ndarray, covariance_type: str, *, chunk_size: int | None = None
) -> SufficientStatistics:
    """Sufficient statistics for given responsibilities (used by initialisation).

    ``log_normalizer`` is set to 0 because no log density was evaluated.
    """
    n, d = X.shape
    step = chunk_size or default_chunk_size(d, covariance_type)
    packed = np.zeros((resp.shape[1], n_feature_columns(d, covariance_type)))
    for start in range(0, n, step):
        stop = min(start + step, n)
        packed += (feature_map(X[start:stop], covariance_type).T @ resp[start:stop]).T
    sum_x, sum_xx = unpack_feature_sums(packed, d, covariance_type)
    return SufficientStatistics(covariance_type, resp.sum(axis=0), sum_x, sum_xx, 0.0, n)


def covariances_from_statistics(
    stats: SufficientStatistics, reg_covar: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the M-step: maximum-likelihood weights, means and covariances from statistics.

    Follows scikit-learn's ``_estimate_gaussian_parameters``: ``N_k`` gets
    ``10 * eps`` added so an empty component does not divide by zero, the
    weights are ``N_k / sum N_k``, the means ``sum_x / N_k`` and the covariance
    ``sum_xx / N_k - mu mu'`` plus ``reg_covar`` on the diagonal (pooled over
    components for ``tied``, averaged over features for ``spherical``).
    Variances that cancellation would make negative are clipped at zero before
    ``reg_covar`` is added.

    Parameters
    ----------
    stats : SufficientStatistics
    reg_covar : float or ndarray of shape (n_features,)
        Added to the covariance diagonals: one amount for every feature (a
        float, scikit-learn's case), or one per feature. ``spherical`` adds the
        mean over features, which is what averaging the regularised diagonal
        gives.

    Returns
    -------
    weights, means, covariances
    """
    nk = stats.nk + 10 * _EPS
    weights = nk / nk.sum()
    means = stats.sum_x / nk[:, None]
    d = means.shape[1]
    kind = stats.covariance_type
    reg = np.asarray(reg_covar, dtype=float)
    if reg.ndim > 1 or (reg.ndim == 1 and reg.shape[0] != d):
        raise ValueError(f"reg_covar: expected a float or shape ({d},), got shape {reg.shape}")
    if kind == "full":
        cov = stats.sum_xx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(d), np.arange(d)] += reg
    elif kind == "tied":
        cov = stats.sum_xx.sum(axis=0) - np.einsum("k,ki,kj->ij", nk, means, means)
        cov = 0.5 * (cov + cov.T) / nk.sum()
        cov[np.arange(d), np.arange(d)] += reg
    elif kind == "diag":
        cov = np.maximum(stats.sum_xx / nk[:, None] - means**2, 0.0) + reg
    else:
        cov = np.maximum(stats.sum_xx / nk - (means**2).sum(axis=1), 0.0) / d + reg.mean()
    return weights, means, cov


_DEGENERATE_MESSAGE = (
    "covariances: component(s) {components} have a covariance that is not positive "
    "definite (a component collapsed onto too few or duplicated points). Increase "
    "reg_covar, reduce n_components, or scale the features to comparable ranges."
)


def compute_precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factors ``P`` of the precisions (``Lambda = P P'``), scikit-learn's layout.

    Raises
    ------
    DegenerateCovarianceError
        If a covariance is not positive definite; the message names the
        component and says what to do.
    """
    if covariance_type in ("full", "tied"):
        stack = covariances[None] if covariance_type == "tied" else covariances
        d = stack.shape[-1]
        out = np.empty_like(stack)
        identity = np.eye(d)
        bad = []
        for k, cov in enumerate(stack):
            try:
                chol = linalg.cholesky(cov, lower=True, check_finite=False)
            except linalg.LinAlgError:
                bad.append(k)
                continue
            if not np.all(np.diag(chol) > 0):
                bad.append(k)
                continue
            out[k] = linalg.solve_triangular(chol, identity, lower=True, check_finite=False).T
        if bad or not np.isfinite(out).all():
            raise DegenerateCovarianceError(_DEGENERATE_MESSAGE.format(components=bad or "?"))
        return out[0] if covariance_type == "tied" else out
    if not np.all(covariances > 0) or not np.isfinite(covariances).all():
        bad_mask = ~(covariances > 0)
        bad = np.unique(np.nonzero(bad_mask)[0]).tolist()
        raise DegenerateCovarianceError(_DEGENERATE_MESSAGE.format(components=bad))
    return 1.0 / np.sqrt(covariances)


def full_covariances(
    covariances: np.ndarray, covariance_type: str, n_components: int
) -> np.ndarray:
    """Expand any covariance layout to ``(n_components, d, d)`` matrices."""
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components,) + covariances.shape).copy()
    if covariance_type == "diag":
        return np.einsum("ki,ij->kij", covariances, np.eye(covariances.shape[1]))
    raise ValueError("spherical covariances need n_features: use GaussianMixtureParams")


def n_free_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Count free parameters: ``K - 1`` weights, ``K d`` means and the covariances."""
    d, k = n_features, n_components
    cov = {
        "full": k * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return int(cov + k * d + k - 1)


def sample_mixture(
    n_samples: int,
    weights: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_samples`` points and their component labels from a Gaussian mixture."""
    counts = rng.multinomial(n_samples, weights / weights.sum())
    d = means.shape[1]
    X = np.empty((n_samples, d))
    labels = np.repeat(np.arange(len(weights)), counts)
    start = 0
    for k, count in enumerate(counts):
        if count:
            chol = np.linalg.cholesky(covariances_full[k])
            X[start : start + count] = means[k] + rng.standard_normal((count, d)) @ chol.T
        start += count
    return X, labels


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log sum_k exp(a_ik)`` per row (re-exported for the models)."""
    return logsumexp(a, axis=1)
