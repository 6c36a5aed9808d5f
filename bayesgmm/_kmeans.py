"""Vectorised k-means (greedy k-means++ seeding and Lloyd iterations) for initialising EM.

Only NumPy is used. Squared distances are computed chunk by chunk as
``|x|^2 - 2 x.c + |c|^2`` so that memory stays bounded for large ``n``.

References
----------
Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful
seeding. Proceedings of SODA 2007, 1027-1035. doi:10.1145/1283383.1283494
Lloyd, S. (1982). Least squares quantization in PCM. IEEE Transactions on
Information Theory 28(2), 129-137. doi:10.1109/TIT.1982.1056489
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KMeansResult", "assign_labels", "kmeans", "kmeans_plusplus"]

# Rows of the (n, K) distance matrix held at once.
_CHUNK_ROWS = 16384


@dataclass(frozen=True)
class KMeansResult:
    """Result of :func:`kmeans`.

    Attributes
    ----------
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,)
    inertia : float
        Sum of squared distances of the points to their centres.
    n_iter : int
        Lloyd iterations of the retained run.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def _squared_distances(X: np.ndarray, centers: np.ndarray, x_squared: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, K)``, clipped at zero against cancellation."""
    out = x_squared[:, None] - 2.0 * (X @ centers.T)
    out += np.einsum("kj,kj->k", centers, centers)
    np.maximum(out, 0.0, out=out)
    return out


def assign_labels(
    X: np.ndarray, centers: np.ndarray, x_squared: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every point and the squared distance to it, chunk by chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_clusters, n_features)
    x_squared : ndarray of shape (n_samples,), optional
        Precomputed ``|x_i|^2``.

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    min_distances : ndarray of shape (n_samples,)
    """
    if x_squared is None:
        x_squared = np.einsum("ij,ij->i", X, X)
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)
    best = np.empty(n)
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        dist = _squared_distances(X[start:stop], centers, x_squared[start:stop])
        labels[start:stop] = dist.argmin(axis=1)
        best[start:stop] = dist[np.arange(stop - start), labels[start:stop]]
    return labels, best


def kmeans_plusplus(
    X: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    n_local_trials: int | None = None,
    x_squared: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy k-means++ seeding, as scikit-learn's ``kmeans_plusplus``.

    The first centre is a uniformly drawn point. Each further centre is chosen
    among ``n_local_trials`` points drawn with probability proportional to their
    squared distance to the nearest centre so far (D^2 sampling; Arthur and
    Vassilvitskii 2007), keeping the candidate that lowers the total potential
    (the sum of those squared distances) most. With ``sample_weight``
    (frequency weights) the first centre is drawn with probability
    proportional to the weights and the potential is ``sum_i w_i D_i^2``, as
    if row i were repeated ``w_i`` times; rows of zero weight are never chosen.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : int
    rng : numpy.random.Generator
    n_local_trials : int, optional
        Candidates per step; default ``2 + int(log(n_clusters))``.
    x_squared : ndarray of shape (n_samples,), optional
        Precomputed ``|x_i|^2``.
    sample_weight : ndarray of shape (n_samples,), optional
        Non-negative frequency weights, not all zero.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Rows of ``X`` chosen as centres.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    >>> centers, idx = kmeans_plusplus(X, 2, np.random.default_rng(0))
    >>> sorted(int(i) // 2 for i in idx)
    [0, 1]
    """
    n = X.shape[0]
    if x_squared is None:
        x_squared = np.einsum("ij,ij->i", X, X)
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    indices = np.empty(n_clusters, dtype=np.intp)
    w = sample_weight
    if w is None:
        indices[0] = rng.integers(n)
    else:
        indices[0] = _weighted_draw(w, rng.uniform(size=1) * w.sum(), n)[0]
    closest = _squared_distances(X, X[indices[:1]], x_squared)[:, 0]
    potential = closest.sum() if w is None else w @ closest
    for c in range(1, n_clusters):
        if potential > 0:
            draws = rng.uniform(size=n_local_trials) * potential
            candidates = _weighted_draw(closest if w is None else w * closest, draws, n)
        elif w is None:  # every point coincides with a centre: any choice is as good
            candidates = rng.integers(n, size=n_local_trials)
        else:
            candidates = _weighted_draw(w, rng.uniform(size=n_local_trials) * w.sum(), n)
        dist = _squared_distances(X, X[candidates], x_squared)
        np.minimum(dist, closest[:, None], out=dist)
        potentials = dist.sum(axis=0) if w is None else w @ dist
        best = int(np.argmin(potentials))
        indices[c] = candidates[best]
        closest = dist[:, best].copy()
        potential = potentials[best]
    return X[indices].copy(), indices


def _weighted_draw(mass: np.ndarray, draws: np.ndarray, n: int) -> np.ndarray:
    """Return indices drawn by inverting the cumulative ``mass`` at ``draws``."""
    candidates = np.searchsorted(np.cumsum(mass), draws)
    np.clip(candidates, None, n - 1, out=candidates)
    return candidates


def _lloyd(
    X: np.ndarray,
    centers: np.ndarray,
    x_squared: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    sample_weight: np.ndarray | None = None,
) -> KMeansResult:
    """Lloyd iterations from ``centers`` until the centres move less than ``tol``.

    With ``sample_weight`` the centres are weighted means and the inertia is
    ``sum_i w_i |x_i - c_{l_i}|^2``.
    """
    n_clusters = centers.shape[0]
    labels, dist = assign_labels(X, centers, x_squared)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        counts = np.bincount(labels, weights=sample_weight, minlength=n_clusters)
        sums = _group_sums(X, labels, np.zeros_like(centers), sample_weight)
        new_centers = centers.copy()
        filled = counts > 0
        new_centers[filled] = sums[filled] / counts[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:
            # Relocate empty clusters to the points farthest from their centres,
            # as scikit-learn does (among rows of positive weight).
            farness = dist if sample_weight is None else np.where(sample_weight > 0, dist, -1.0)
            far = np.argsort(-farness, kind="stable")[: empty.size]
            new_centers[empty] = X[far]
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        new_labels, dist = assign_labels(X, centers, x_squared)
        unchanged = np.array_equal(new_labels, labels)
        labels = new_labels
        if unchanged or shift <= tol:
            break
    inertia = float(dist.sum() if sample_weight is None else sample_weight @ dist)
    return KMeansResult(centers, labels, inertia, n_iter)


def _group_sums(
    X: np.ndarray, labels: np.ndarray, out: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Per-cluster (weighted) sums of the rows of ``X`` (one ``bincount`` per feature)."""
    n_clusters = out.shape[0]
    for j in range(X.shape[1]):
        column = X[:, j] if sample_weight is None else X[:, j] * sample_weight
        out[:, j] = np.bincount(labels, weights=column, minlength=n_clusters)
    return out


def kmeans(
    X: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    n_init: int = 3,
    max_iter: int = 300,
    tol: float = 1e-4,
    sample_weight: np.ndarray | None = None,
) -> KMeansResult:
    """k-means: the best (lowest inertia) of ``n_init`` k-means++ seeded Lloyd runs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : int
    rng : numpy.random.Generator
    n_init : int
        Number of seedings; the run with the smallest inertia is kept.
    max_iter : int
        Most Lloyd iterations per run.
    tol : float
        Stop when the summed squared movement of the centres falls below
        ``tol`` times the mean per-feature variance of ``X`` (scikit-learn's rule),
        or when no label changes.
    sample_weight : ndarray of shape (n_samples,), optional
        Non-negative frequency weights, not all zero: the seeding, the centres,
        the inertia and the scale of ``tol`` are weighted.

    Returns
    -------
    KMeansResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    >>> result = kmeans(X, 2, np.random.default_rng(1))
    >>> sorted(np.bincount(result.labels).tolist())
    [20, 20]
    """
    x_squared = np.einsum("ij,ij->i", X, X)
    if sample_weight is None:
        variance = np.var(X, axis=0)
    else:
        mean = sample_weight @ X / sample_weight.sum()
        variance = sample_weight @ np.square(X - mean) / sample_weight.sum()
    scaled_tol = tol * float(np.mean(variance))
    best: KMeansResult | None = None
    for _ in range(n_init):
        centers, _ = kmeans_plusplus(
            X, n_clusters, rng, x_squared=x_squared, sample_weight=sample_weight
        )
        result = _lloyd(
            X, centers, x_squared, max_iter=max_iter, tol=scaled_tol, sample_weight=sample_weight
        )
        if best is None or result.inertia < best.inertia:
            best = result
    assert best is not None
    return best
