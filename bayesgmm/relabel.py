"""Label switching: one permutation per posterior draw, and label-invariant summaries.

The likelihood of a mixture does not change when its components are permuted, so
with an exchangeable prior the posterior has ``K!`` symmetric modes and a sampler
may visit several of them (between chains, or within one). Component ``k`` of one
draw then need not mean component ``k`` of another, and per-component averages,
R-hat and ESS are meaningless until every draw is *relabelled*.

What is label-invariant (needs no relabelling)
    The mixture density ``p(x | theta)`` and everything built from it: the
    pointwise log-likelihood (so LOO and WAIC), the posterior predictive density,
    the co-clustering probabilities ``P(z_i = z_j)``, the sorted weights, the
    weight entropy, and the overall mean and covariance of the mixture.

What is not (relabel first)
    Per-component weights, means, covariances, standard deviations and
    correlations, and the membership probabilities ``p(z_i = k | x_i)``.

The algorithm here matches each draw to a reference mixture by solving an
assignment problem whose cost is the Kullback-Leibler divergence between the
draw's components and the reference's, then replaces the reference by the mean
of the relabelled draws and repeats until no permutation changes: the fixed-point
scheme of Stephens (2000) with a KL loss on the component parameters, and the
pivotal reordering of Marin, Mengersen and Robert (2005) when started from a
pivot such as an EM solution.

References
----------
Stephens, M. (2000). Dealing with label switching in mixture models. Journal of
the Royal Statistical Society B, 62(4), 795-809. doi:10.1111/1467-9868.00265

Marin, J.-M., Mengersen, K. and Robert, C. P. (2005). Bayesian modelling and
inference on mixtures of distributions. Handbook of Statistics 25, 459-507.
doi:10.1016/S0169-7161(05)25016-2
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from bayesgmm._validation import check_float, check_int, message

__all__ = [
    "apply_permutations",
    "chain_disagreement",
    "kl_cost",
    "label_invariant_summary",
    "relabel_draws",
]


def _check_draws(
    weights: Any, means: Any, covariances: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    if means.ndim != 3:
        raise ValueError(
            message(
                "means",
                "an array of shape (n_draws, n_components, n_features)",
                f"shape {means.shape}",
                raw=True,
            )
        )
    s, k, d = means.shape
    if weights.shape != (s, k):
        raise ValueError(
            message("weights", f"shape {(s, k)} to match means", weights.shape, raw=True)
        )
    if covariances.shape != (s, k, d, d):
        raise ValueError(
            message(
                "covariances", f"full matrices of shape {(s, k, d, d)}", covariances.shape, raw=True
            )
        )
    return weights, means, covariances


def _reference_arrays(reference: Any, k: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays: tuple[np.ndarray, ...]
    if hasattr(reference, "full_covariances"):  # GaussianMixtureParams
        arrays = (reference.weights, reference.means, reference.full_covariances())
    else:
        try:
            arrays = tuple(np.asarray(a, dtype=np.float64) for a in reference)
        except TypeError:
            raise TypeError(
                message(
                    "reference",
                    "None, a GaussianMixtureParams or a tuple (weights, means, full covariances)",
                    reference,
                )
            ) from None
    if len(arrays) != 3 or arrays[1].shape != (k, d) or arrays[2].shape != (k, d, d):
        raise ValueError(
            message(
                "reference",
                f"weights ({k},), means ({k}, {d}) and covariances ({k}, {d}, {d})",
                [np.shape(a) for a in arrays],
                raw=True,
            )
        )
    return arrays[0], arrays[1], arrays[2]


def kl_cost(
    means: np.ndarray, covariances: np.ndarray, ref_means: np.ndarray, ref_covariances: np.ndarray
) -> np.ndarray:
    """Kullback-Leibler divergence of every draw component from every reference component.

    ``KL(N_j || N_k) = 1/2 [tr(S_k^-1 S_j) + (m_k - m_j)' S_k^-1 (m_k - m_j) - d
    + log det S_k - log det S_j]``, evaluated for all draws at once.

    Parameters
    ----------
    means : ndarray of shape (n_draws, K, d)
    covariances : ndarray of shape (n_draws, K, d, d)
    ref_means : ndarray of shape (K, d)
    ref_covariances : ndarray of shape (K, d, d)

    Returns
    -------
    ndarray of shape (n_draws, K, K)
        Entry ``[s, j, k]`` is the divergence of component ``j`` of draw ``s``
        from reference component ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.relabel import kl_cost
    >>> eye = np.eye(1)
    >>> cost = kl_cost(np.array([[[0.0], [2.0]]]), np.stack([[eye, eye]]),
    ...                np.array([[0.0], [2.0]]), np.stack([eye, eye]))
    >>> cost[0].round(3).tolist()  # KL of N(0,1) from N(2,1) is 2**2 / 2
    [[0.0, 2.0], [2.0, 0.0]]
    """
    d = means.shape[-1]
    ref_chol = np.linalg.cholesky(ref_covariances)
    ref_prec = np.linalg.inv(ref_covariances)
    ref_logdet = 2.0 * np.log(np.diagonal(ref_chol, axis1=-2, axis2=-1)).sum(-1)
    _, logdet = np.linalg.slogdet(covariances)
    trace = np.einsum("kab,sjba->sjk", ref_prec, covariances)
    diff = means[:, :, None, :] - ref_means[None, None]
    maha = np.einsum("sjka,kab,sjkb->sjk", diff, ref_prec, diff)
    return 0.5 * (trace + maha - d + ref_logdet[None, None] - logdet[:, :, None])


def relabel_draws(
    weights: Any,
    means: Any,
    covariances: Any,
    reference: Any = None,
    *,
    max_iter: int = 50,
) -> np.ndarray:
    """Find the permutation of components that aligns every draw with a reference.

    Parameters
    ----------
    weights : array-like of shape (n_draws, K)
    means : array-like of shape (n_draws, K, d)
    covariances : array-like of shape (n_draws, K, d, d)
        Full covariance matrices of every draw (expand other layouts first).
    reference : GaussianMixtureParams or tuple (weights, means, covariances), optional
        The pivot to match the first pass to, e.g. the EM solution the chains
        started from. Without it the first draw is the pivot.
    max_iter : int
        Most passes of "relabel to the reference, then set the reference to the
        mean of the relabelled draws".

    Returns
    -------
    ndarray of int, shape (n_draws, K)
        ``perm[s, k]`` is the raw component of draw ``s`` that becomes component
        ``k``; pass it to :func:`apply_permutations`.

    Notes
    -----
    Each pass solves, for every draw, the assignment problem
    ``min_perm sum_k KL(N(mu_perm(k), Sigma_perm(k)) || N(mu_ref_k, Sigma_ref_k))``
    with :func:`scipy.optimize.linear_sum_assignment`; the weights enter only
    through the reference update. The loop stops at a fixed point (no
    permutation changed), as in Stephens (2000, Algorithm 2).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.relabel import relabel_draws, apply_permutations
    >>> means = np.array([[[0.0], [5.0]], [[5.0], [0.0]]])
    >>> covs = np.ones((2, 2, 1, 1))
    >>> weights = np.array([[0.3, 0.7], [0.7, 0.3]])
    >>> perm = relabel_draws(weights, means, covs)
    >>> apply_permutations(perm, means)[:, :, 0]
    array([[0., 5.],
           [0., 5.]])
    """
    weights, means, covariances = _check_draws(weights, means, covariances)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    s, k, d = means.shape
    if reference is None:
        ref = (weights[0], means[0], covariances[0])
    else:
        ref = _reference_arrays(reference, k, d)
    perm = np.tile(np.arange(k), (s, 1))
    for _ in range(max_iter):
        cost = kl_cost(means, covariances, ref[1], ref[2])
        new = np.empty_like(perm)
        identity = np.arange(k)
        # Most draws need no reordering: check the identity first, solve the rest.
        best = cost.argmin(axis=1)
        easy = (best == identity).all(axis=1) & (np.unique(best, axis=1).shape[1] == k)
        new[easy] = identity
        for i in np.flatnonzero(~easy):
            rows, cols = linear_sum_assignment(cost[i])
            new[i, cols] = rows
        changed = not np.array_equal(new, perm)
        perm = new
        w, m, c = apply_permutations(perm, weights, means, covariances)
        ref = (w.mean(axis=0), m.mean(axis=0), c.mean(axis=0))
        if not changed:
            break
    return perm


def apply_permutations(perm: np.ndarray, *arrays: np.ndarray) -> Any:
    """Reorder the component axis (axis 1) of per-draw arrays by ``perm``.

    Parameters
    ----------
    perm : ndarray of int, shape (n_draws, K)
        From :func:`relabel_draws`.
    *arrays : ndarray of shape (n_draws, K, ...)
        Any per-draw, per-component arrays (weights, means, covariances,
        membership probabilities with the component axis moved to 1, ...).

    Returns
    -------
    ndarray or tuple of ndarray
        One reordered copy per input; a single array when one was given.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.relabel import apply_permutations
    >>> weights = np.array([[0.2, 0.8], [0.8, 0.2]])
    >>> apply_permutations(np.array([[0, 1], [1, 0]]), weights).tolist()
    [[0.2, 0.8], [0.2, 0.8]]
    """
    perm = np.asarray(perm)
    rows = np.arange(perm.shape[0])[:, None]
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.shape[:2] != perm.shape:
            raise ValueError(
                message(
                    "arrays", f"leading shape {perm.shape} (draws, components)", a.shape, raw=True
                )
            )
        out.append(a[rows, perm])
    return out[0] if len(out) == 1 else tuple(out)


def chain_disagreement(means: Any, *, threshold: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Find chains that sit in a different mode after relabelling.

    Relabelling removes permutations, but chains can still disagree genuinely
    (one chain splits a cluster that another merges). For each chain, this
    compares its mean of the relabelled component means with the median over
    chains, in units of the pooled within-chain posterior standard deviation.
    Monte Carlo error of a chain mean is about ``sd / sqrt(ESS)``, so a distance
    of several standard deviations cannot come from sampling noise.

    Parameters
    ----------
    means : array-like of shape (n_chains, n_draws, K, d)
        Relabelled component means.
    threshold : float
        Distance (in posterior standard deviations) above which a chain is
        flagged.

    Returns
    -------
    distance : ndarray of shape (n_chains,)
        Largest standardised distance of the chain's means from the consensus.
    flagged : ndarray of bool, shape (n_chains,)

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.relabel import chain_disagreement
    >>> rng = np.random.default_rng(0)
    >>> means = rng.normal(size=(3, 200, 2, 1)) * 0.1
    >>> means[2] += 5.0  # the third chain sits in another mode
    >>> distance, flagged = chain_disagreement(means)
    >>> flagged.tolist()
    [False, False, True]
    """
    means = np.asarray(means, dtype=np.float64)
    threshold = check_float(threshold, "threshold", minimum=0.0, include_minimum=False)
    if means.ndim != 4:
        raise ValueError(message("means", "shape (n_chains, n_draws, K, d)", means.shape, raw=True))
    chain_means = means.mean(axis=1)
    within_sd = np.sqrt(means.var(axis=1).mean(axis=0))
    scale = np.maximum(within_sd, 1e-12 * max(1.0, float(np.abs(means).max())))
    consensus = np.median(chain_means, axis=0)
    distance = (np.abs(chain_means - consensus) / scale).reshape(means.shape[0], -1).max(axis=1)
    return distance, distance > threshold


def label_invariant_summary(weights: Any, means: Any, covariances: Any) -> dict[str, np.ndarray]:
    """Per-draw quantities that do not depend on how the components are labelled.

    Parameters
    ----------
    weights : array-like of shape (n_draws, K)
    means : array-like of shape (n_draws, K, d)
    covariances : array-like of shape (n_draws, K, d, d)

    Returns
    -------
    dict
        ``sorted_weights`` (n_draws, K), decreasing; ``weight_entropy``
        (n_draws,), ``-sum_k w_k log w_k``; ``mixture_mean`` (n_draws, d),
        ``sum_k w_k mu_k``; ``mixture_covariance`` (n_draws, d, d), the
        covariance of the mixture, ``sum_k w_k (Sigma_k + mu_k mu_k') - m m'``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.relabel import label_invariant_summary
    >>> w = np.array([[0.25, 0.75]])
    >>> mu = np.array([[[0.0], [4.0]]])
    >>> cov = np.ones((1, 2, 1, 1))
    >>> out = label_invariant_summary(w, mu, cov)
    >>> out["mixture_mean"].tolist(), out["mixture_covariance"].ravel().tolist()
    ([[3.0]], [4.0])
    """
    weights, means, covariances = _check_draws(weights, means, covariances)
    mean = np.einsum("sk,ska->sa", weights, means)
    second = np.einsum(
        "sk,skab->sab", weights, covariances + means[..., :, None] * means[..., None, :]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(weights > 0, weights * np.log(weights), 0.0).sum(axis=1)
    return {
        "sorted_weights": -np.sort(-weights, axis=1),
        "weight_entropy": entropy,
        "mixture_mean": mean,
        "mixture_covariance": second - mean[:, :, None] * mean[:, None, :],
    }
