"""Model-based hierarchical agglomeration: one tree, a starting partition for every K.

Starting from single rows, each merge joins the two groups whose union raises
the classification criterion of the unconstrained (VVV) Gaussian model the
least (Banfield and Raftery 1993; Fraley 1998). For a group of ``l`` rows with
scatter matrix ``W`` (the sum of outer products of the deviations from its
mean) in ``p`` dimensions, the criterion's term is Fraley's regularised

    l * log(beta * (tr W + alpha) / l)                   if l <= p,
    l * log(det(W / l) + beta * (tr W + alpha) / l)      if l > p,

and the criterion of a partition is the sum of its groups' terms: up to
constants, minus twice the classification log-likelihood of a VVV mixture,
``sum l log det(W / l)``, made finite for groups too small to have a
non-singular scatter (a group of ``p`` rows or fewer is judged by its spread
alone, as a spherical group would be). As in mclust's ``hcVVV``, ``beta = 1``
and ``alpha`` is the mean variance of the data, ``tr W_data / (n p)``.

As in mclust >= 5.4 (Scrucca and Raftery 2015), the agglomeration runs on the
scaled SVD of the standardised data, ``Z = X_s V D^{-1/2}``, which spreads the
scale of the principal directions, and on a random subset of rows when the data
are large (the caller's choice; ``HC_MAX_SAMPLES``).

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
from typing import Any

import numpy as np

__all__ = ["HC_MAX_SAMPLES", "hc_partitions", "scaled_svd"]

# Rows the agglomeration looks at; larger data are subsampled (mclust's default subset).
HC_MAX_SAMPLES = 2000
# Fraley's beta (mclust's hcVVV default).
_BETA = 1.0


def scaled_svd(X: np.ndarray) -> np.ndarray:
    """Return the scaled SVD transformation of the data, ``Z = X_s V D^{-1/2}``.

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


class _Groups:
    """The current groups of the agglomeration: sizes, means, scatters, traces, terms."""

    def __init__(self, Z: np.ndarray, alpha: float) -> None:
        m, p = Z.shape
        self.p, self.alpha = p, alpha
        self.n = np.ones(m)
        self.means = Z.copy()
        self.scatter = np.zeros((m, p, p))
        self.trace = np.zeros(m)
        self.terms = np.full(m, np.log(_BETA * alpha))

    def terms_of(self, n: np.ndarray, trace: np.ndarray, scatter: Any) -> np.ndarray:
        """Fraley's term for groups of sizes ``n``; ``scatter`` is needed where ``n > p``."""
        spread = np.log(_BETA * (trace + self.alpha) / n)  # alpha > 0: finite
        big = n > self.p
        if not big.any():
            return n * spread
        out = spread.copy()
        if self.p == 1:
            with np.errstate(divide="ignore"):  # a group of equal rows: log 0 = -inf
                logdet = np.log(trace[big] / n[big])
        else:
            sign, logdet = np.linalg.slogdet(scatter(big) / n[big][:, None, None])
            logdet = np.where(sign > 0, logdet, -np.inf)
        out[big] = np.logaddexp(logdet, spread[big])
        return n * out

    def merge_costs(self, i: int, others: np.ndarray) -> np.ndarray:
        """Rise in the criterion from merging group ``i`` with each group in ``others``."""
        n_i, n_o = self.n[i], self.n[others]
        total = n_i + n_o
        delta = self.means[others] - self.means[i]
        weight = n_i * n_o / total
        trace = self.trace[i] + self.trace[others] + weight * np.einsum("kj,kj->k", delta, delta)

        def scatter(big: np.ndarray) -> np.ndarray:
            d = delta[big]
            return (
                self.scatter[i]
                + self.scatter[others[big]]
                + weight[big][:, None, None] * d[:, :, None] * d[:, None, :]
            )

        merged = self.terms_of(total, trace, scatter)
        return merged - self.terms[i] - self.terms[others]

    def merge(self, i: int, j: int) -> None:
        """Merge group ``j`` into group ``i`` (pooled mean, scatter and trace)."""
        n_i, n_j = self.n[i], self.n[j]
        total = n_i + n_j
        delta = self.means[j] - self.means[i]
        weight = n_i * n_j / total
        self.scatter[i] += self.scatter[j] + weight * np.outer(delta, delta)
        self.trace[i] += self.trace[j] + weight * float(delta @ delta)
        self.means[i] += (n_j / total) * delta
        self.n[i] = total
        self.terms[i] = self.terms_of(
            np.array([total]), self.trace[i : i + 1], lambda big: self.scatter[i][None]
        )[0]


def hc_partitions(X: np.ndarray, n_components: Iterable[int]) -> dict[int, np.ndarray]:
    """Partitions of the rows of ``X`` into K groups, for every K asked, from one tree.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows to cluster (the caller subsamples large data: the work grows
        as the square of the number of rows).
    n_components : iterable of int
        The K wanted; a K above the number of rows is left out.

    Returns
    -------
    dict
        K -> labels in 0..K-1 for every row.
    """
    wanted = {int(k) for k in n_components}
    Z = scaled_svd(X)
    m = Z.shape[0]
    alpha = max(float(np.mean(Z.var(axis=0))), np.finfo(np.float64).eps)
    groups = _Groups(Z, alpha)

    costs = np.full((m, m), np.inf)
    for i in range(m - 1):
        others = np.arange(i + 1, m)
        costs[i, others] = costs[others, i] = groups.merge_costs(i, others)
    # Each row's cheapest merge, so a step scans m numbers instead of m * m.
    best_of_row = np.argmin(costs, axis=1)
    best_cost = costs[np.arange(m), best_of_row]

    owner = np.arange(m)  # the group each row belongs to, named by one of its rows
    active = np.ones(m, dtype=bool)
    partitions: dict[int, np.ndarray] = {}
    if m in wanted:
        partitions[m] = np.arange(m)
    for count in range(m - 1, max(min(wanted, default=1), 1) - 1, -1):
        i = int(np.argmin(best_cost))
        j = int(best_of_row[i])
        i, j = min(i, j), max(i, j)
        groups.merge(i, j)
        active[j] = False
        owner[owner == j] = i
        costs[j, :] = costs[:, j] = np.inf
        best_cost[j] = np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        if others.size:
            costs[i, others] = costs[others, i] = groups.merge_costs(i, others)
        # Rows whose cheapest merge involved i or j are searched again; the others
        # only compare their old best with their new cost of merging with i.
        stale = others[(best_of_row[others] == i) | (best_of_row[others] == j)]
        if stale.size:
            best_of_row[stale] = np.argmin(costs[stale], axis=1)
            best_cost[stale] = costs[stale, best_of_row[stale]]
        cheaper = others[costs[others, i] < best_cost[others]]
        best_of_row[cheaper] = i
        best_cost[cheaper] = costs[cheaper, i]
        best_of_row[i] = int(np.argmin(costs[i]))
        best_cost[i] = costs[i, best_of_row[i]]
        if count in wanted:
            partitions[count] = np.unique(owner, return_inverse=True)[1]
    return partitions
