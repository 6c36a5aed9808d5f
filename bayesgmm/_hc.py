"""Model-based hierarchical agglomeration: one tree, a starting partition for every K.

Each merge joins the two groups whose union raises the classification
criterion of the unconstrained (VVV) Gaussian model the least (Banfield and
Raftery 1993; Fraley 1998). The criterion of a partition into groups ``C`` is

    sum_C n_C log det((W_C + alpha I) / n_C),

where ``W_C`` is the group's scatter matrix (sum of outer products of the
deviations from its mean) and ``n_C`` its size: minus twice the classification
log-likelihood of a VVV mixture up to constants. The ridge ``alpha I`` keeps
the determinant of a small group (fewer than d + 1 points) positive; its share
in ``(W_C + alpha I) / n_C`` falls as the group grows, so large groups are
judged by their own covariance. ``alpha`` is the mean variance of the data, the
scale mclust uses for the same purpose (its ``hcVVV`` sets ``alpha`` from
``traceW(data / sqrt(n p))``).

As in mclust >= 5.4 (Scrucca and Raftery 2015), the agglomeration runs on the
scaled SVD of the standardised data, ``Z = X_s V D^{-1/2}``, which spreads the
scale of the principal directions, and on a random subset of rows when the data
are large. Merging n singletons pairwise costs O(n^2) determinants, so the
agglomeration starts from Ward's partition into at most ``_VVV_START_GROUPS``
groups (Ward's criterion is the classification likelihood of the spherical,
equal-volume model, the EII case of the same family); from there on every merge
is judged by the VVV criterion above, like mclust's ``hc(..., partition=)``.

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and
non-Gaussian clustering. Biometrics 49(3), 803-821. doi:10.2307/2532201
Fraley, C. (1998). Algorithms for model-based Gaussian hierarchical clustering.
SIAM Journal on Scientific Computing 20(1), 270-281.
doi:10.1137/S1064827596311451
Scrucca, L. and Raftery, A. E. (2015). Improved initialisation of model-based
clustering using Gaussian hierarchical partitions. Advances in Data Analysis and
Classification 9(4), 447-460. doi:10.1007/s11634-015-0220-z
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["HC_MAX_SAMPLES", "hc_partitions", "scaled_svd"]

# Rows the agglomeration looks at; larger data are subsampled (mclust's default subset).
HC_MAX_SAMPLES = 2000
# Ward's partition the VVV agglomeration starts from, at most this many groups.
_VVV_START_GROUPS = 200


def scaled_svd(X: np.ndarray) -> np.ndarray:
    """The scaled SVD transformation of the data, ``Z = X_s V D^{-1/2}``.

    ``X_s`` is ``X`` with every column centred and scaled to unit standard
    deviation (constant columns dropped), ``X_s = U D V'`` its thin SVD. The
    principal directions are kept but their scales are compressed to the square
    roots of the singular values (mclust's ``hcUse = "SVD"``).
    """
    centred = X - X.mean(axis=0)
    sd = centred.std(axis=0)
    keep = sd > 0
    if not keep.any():
        return np.zeros((X.shape[0], 1))
    standardised = centred[:, keep] / sd[keep]
    _, singular, vt = np.linalg.svd(standardised, full_matrices=False)
    positive = singular > singular[0] * 1e-10
    return standardised @ vt[positive].T / np.sqrt(singular[positive])


def _criterion_terms(n: np.ndarray, scatter: np.ndarray, alpha: float) -> np.ndarray:
    """``n log det((W + alpha I) / n)`` for a stack of groups."""
    d = scatter.shape[-1]
    ridge = scatter + alpha * np.eye(d)
    _, logdet = np.linalg.slogdet(ridge)
    return n * (logdet - d * np.log(n))


def _merge_costs(
    i: int,
    others: np.ndarray,
    n: np.ndarray,
    means: np.ndarray,
    scatter: np.ndarray,
    terms: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Rise in the criterion from merging group ``i`` with each group in ``others``."""
    n_i, n_o = n[i], n[others]
    total = n_i + n_o
    delta = means[others] - means[i]
    merged = (
        scatter[i]
        + scatter[others]
        + (n_i * n_o / total)[:, None, None] * delta[:, :, None] * delta[:, None, :]
    )
    return _criterion_terms(total, merged, alpha) - terms[i] - terms[others]


def _ward_groups(Z: np.ndarray, n_groups: int) -> np.ndarray:
    """Ward's partition of the rows into ``n_groups`` groups (labels 0..n_groups-1)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if Z.shape[0] <= n_groups:
        return np.arange(Z.shape[0])
    tree = linkage(Z, method="ward")
    labels = fcluster(tree, t=n_groups, criterion="maxclust")
    return np.unique(labels, return_inverse=True)[1]


def hc_partitions(
    X: np.ndarray, n_components: Iterable[int], *, start_groups: int = _VVV_START_GROUPS
) -> dict[int, np.ndarray]:
    """Partitions of the rows of ``X`` into K groups, for every K asked, from one tree.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows to cluster (the caller subsamples large data).
    n_components : iterable of int
        The K wanted; a K above the number of distinct starting groups is left out.
    start_groups : int
        Size of Ward's partition the VVV agglomeration starts from.

    Returns
    -------
    dict
        K -> labels in 0..K-1 for every row.
    """
    wanted = {int(k) for k in n_components}
    Z = scaled_svd(X)
    rows, d = Z.shape
    groups = _ward_groups(Z, start_groups)
    m = int(groups.max()) + 1
    alpha = max(float(np.mean(Z.var(axis=0))), np.finfo(np.float64).eps)

    n = np.bincount(groups, minlength=m).astype(float)
    sums = np.zeros((m, d))
    np.add.at(sums, groups, Z)
    means = sums / n[:, None]
    deviations = Z - means[groups]
    scatter = np.zeros((m, d, d))
    np.add.at(scatter, groups, deviations[:, :, None] * deviations[:, None, :])
    terms = _criterion_terms(n, scatter, alpha)

    costs = np.full((m, m), np.inf)
    for i in range(m - 1):
        others = np.arange(i + 1, m)
        costs[i, others] = costs[others, i] = _merge_costs(
            i, others, n, means, scatter, terms, alpha
        )

    owner = np.arange(m)  # which current group each starting group belongs to
    active = np.ones(m, dtype=bool)
    partitions: dict[int, np.ndarray] = {}

    def record(count: int) -> None:
        if count in wanted:
            partitions[count] = np.unique(owner[groups], return_inverse=True)[1]

    record(m)
    for count in range(m - 1, max(min(wanted, default=1), 1) - 1, -1):
        flat = int(np.argmin(costs))
        i, j = divmod(flat, m)
        i, j = min(i, j), max(i, j)
        # Merge j into i: pooled mean and scatter (Fraley 1998, eq. for W_{<i,j>}).
        total = n[i] + n[j]
        delta = means[j] - means[i]
        scatter[i] = scatter[i] + scatter[j] + (n[i] * n[j] / total) * np.outer(delta, delta)
        means[i] = means[i] + (n[j] / total) * delta
        n[i] = total
        terms[i] = _criterion_terms(np.array([total]), scatter[i][None], alpha)[0]
        active[j] = False
        owner[owner == j] = i
        costs[j, :] = costs[:, j] = np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        if others.size:
            costs[i, others] = costs[others, i] = _merge_costs(
                i, others, n, means, scatter, terms, alpha
            )
        record(count)
    return partitions
