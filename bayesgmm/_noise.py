"""A uniform noise component for outliers: its region's volume, its start and its densities.

mclust's noise component (Banfield and Raftery 1993, doi:10.2307/2532201;
Fraley and Raftery 1998, doi:10.1093/comjnl/41.8.578) adds to the Gaussian
mixture a uniform density ``1 / V`` over a region of volume ``V`` that holds the
data, so the density is

    p(x) = sum_k w_k N(x | mu_k, Sigma_k) + w_0 / V,    w_0 + sum_k w_k = 1,

and points far from every Gaussian go to the noise. This module holds the parts
that are not Gaussian maths: the volume (mclust's ``hypvol``), the starting
noise / signal split (the nearest-neighbour cleaning of Byers and Raftery 1998,
doi:10.1080/01621459.1998.10474103, that mclust takes from prabclus'
``NNclean``), and the log-sum-exp of the Gaussian columns with the noise column.
The E-step kernel (:func:`bayesgmm._gaussian.e_step_statistics`) takes the
noise column's ``log w_0 - log V`` itself.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, logsumexp

from bayesgmm._validation import message

__all__ = [
    "NEAREST_NEIGHBOURS",
    "NOISE_PARAMETERS",
    "clutter_log_odds",
    "log_hypervolume",
    "log_noise_mixture",
    "nearest_neighbour_noise",
]

#: Free parameters the noise adds to BIC's count: its weight and the volume V, which
#: mclust counts as estimated from the data (``nMclustParams(noise = TRUE)`` adds 2).
NOISE_PARAMETERS = 2
#: k of the kth-nearest-neighbour distances that start the noise split (NNclean's k).
NEAREST_NEIGHBOURS = 5
# EM on the two-intensity mixture of the neighbour volumes stops when the log
# odds of the intensities change by less than this ...
_NN_TOL = 1e-10
# ... or after this many iterations.
_NN_MAX_ITER = 500


def log_hypervolume(X: np.ndarray) -> float:
    """Log of mclust's ``hypvol``: the smaller volume of two boxes that hold the data.

    One box is bounded by each feature's range, ``prod_j (max_j - min_j)``; the
    other by the ranges of the principal-component scores (the data rotated to
    the eigenvectors of its covariance, as R's ``princomp``). The smaller is
    taken: the principal-component box is much smaller when the features are
    correlated, the feature box when they are not.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    float
        ``log V``.

    Raises
    ------
    ValueError
        If the data span no volume (a constant feature or linearly dependent
        features, or fewer than ``n_features + 1`` distinct rows).
    """
    centred = X - X.mean(axis=0)
    box = _log_range_product(centred)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    rotated = _log_range_product(centred @ vt.T) if vt.shape[0] == X.shape[1] else -np.inf
    log_volume = min(box, rotated)
    if not np.isfinite(log_volume):
        raise ValueError(
            message(
                "X",
                "data that span a region of positive volume for the noise component "
                "(no constant feature, no linearly dependent features)",
                "a region of zero volume; drop the dependent features or give hypervolume",
                raw=True,
            )
        )
    return float(log_volume)


def _log_range_product(scores: np.ndarray) -> float:
    ranges = scores.max(axis=0) - scores.min(axis=0)
    with np.errstate(divide="ignore"):
        return float(np.log(ranges).sum())


def nearest_neighbour_noise(X: np.ndarray, k: int = NEAREST_NEIGHBOURS) -> np.ndarray:
    """Start for the noise: the points in sparse regions by their kth-nearest-neighbour distance.

    Byers and Raftery (1998): if points of intensity ``lambda`` (points per
    unit volume) lie about ``x``, the volume ``Y = alpha_d D_k^d`` of the ball
    out to the kth nearest neighbour (``alpha_d = pi^(d/2) / Gamma(d/2 + 1)``)
    is Gamma distributed with shape ``k`` and rate ``lambda``. Feature points
    and clutter have different intensities, so ``Y`` follows a mixture of two
    such Gammas, fitted by EM (the rates' update is ``lambda_j = k sum_i r_ij /
    sum_i r_ij y_i``); a point is noise when the low-intensity component is the
    more probable. This is prabclus' ``NNclean`` with its EM, on the features
    standardised to unit variance so that the distances do not depend on units.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    k : int
        Which neighbour's distance is used; at most ``n_samples - 1``.

    Returns
    -------
    ndarray of bool, shape (n_samples,)
        True for the points that start in the noise.
    """
    from scipy.spatial import cKDTree

    n, d = X.shape
    k = min(k, n - 1)
    if k < 1:
        return np.zeros(n, dtype=bool)
    scale = X.std(axis=0)
    scale[~(scale > 0)] = 1.0
    Z = (X - X.mean(axis=0)) / scale
    distances, _ = cKDTree(Z).query(Z, k=k + 1)
    log_alpha = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1.0)
    volumes = np.exp(log_alpha + d * np.log(np.maximum(distances[:, k], np.finfo(float).tiny)))
    positive = volumes[volumes > 0]
    if positive.size < 2 or np.ptp(positive) == 0:
        return np.zeros(n, dtype=bool)
    # Start: the sparsest quarter is clutter.
    clutter = volumes > np.quantile(volumes, 0.75)
    if not clutter.any() or clutter.all():
        return np.zeros(n, dtype=bool)
    share = clutter.mean()
    dense = k / volumes[~clutter].mean()
    sparse = k / volumes[clutter].mean()
    previous = np.inf
    resp = clutter.astype(float)
    for _ in range(_NN_MAX_ITER):
        log_odds = clutter_log_odds(volumes, k, share, dense, sparse)
        resp = 0.5 * (1.0 + np.tanh(0.5 * log_odds))
        total = resp.sum()
        if not 0.0 < total < n:
            break
        share = total / n
        sparse = k * total / float(resp @ volumes)
        dense = k * (n - total) / float((1.0 - resp) @ volumes)
        if not (np.isfinite(sparse) and np.isfinite(dense)):
            break
        change = abs(np.log(sparse) - np.log(dense) - previous)
        previous = np.log(sparse) - np.log(dense)
        if change < _NN_TOL:
            break
    if not sparse < dense:
        return np.zeros(n, dtype=bool)
    return resp > 0.5


def clutter_log_odds(
    volumes: np.ndarray, k: int, share: float, dense: float, sparse: float
) -> np.ndarray:
    """Log odds of clutter against feature for neighbour volumes ``y``.

    ``log(p Gamma(y; k, sparse)) - log((1 - p) Gamma(y; k, dense))`` with ``p``
    the clutter's share and Gamma's rate parametrisation; the ``(k - 1) log y``
    and ``log Gamma(k)`` terms cancel, so a volume of zero (duplicated points)
    is no special case.
    """
    return (
        np.log(share)
        - np.log1p(-share)
        + k * (np.log(sparse) - np.log(dense))
        - (sparse - dense) * volumes
    )


def log_noise_mixture(
    weighted_log_densities: np.ndarray, noise_log_density: float
) -> tuple[np.ndarray, np.ndarray]:
    """Log density and log responsibilities of a Gaussian mixture with a noise column.

    Parameters
    ----------
    weighted_log_densities : ndarray of shape (n_samples, n_components)
        ``log w_k + log N(x_i | mu_k, Sigma_k)``.
    noise_log_density : float
        ``log w_0 - log V``.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        ``log (sum_k w_k N(x_i | mu_k, Sigma_k) + w_0 / V)``.
    log_resp : ndarray of shape (n_samples, n_components + 1)
        The Gaussian components' log responsibilities, then the noise's (last,
        as mclust's ``z``).
    """
    n = weighted_log_densities.shape[0]
    columns = np.hstack([weighted_log_densities, np.full((n, 1), noise_log_density)])
    log_density = logsumexp(columns, axis=1)
    return log_density, columns - log_density[:, None]
