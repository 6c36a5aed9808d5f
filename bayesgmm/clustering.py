"""Clustering with visible uncertainty: membership intervals, entropy, co-clustering.

For a Bayesian mixture the probability that point ``i`` belongs to component ``k``
is itself uncertain: every posterior draw ``theta_s`` gives its own
``p_sik = p(z_i = k | x_i, theta_s)``. After relabelling (so that component ``k``
means the same thing in every draw) these draws give a posterior mean membership
and, per point, the posterior median of its top membership with a credible
interval (:mod:`bayesgmm._intervals`: ArviZ's ``eti`` or ``hdi``). The co-clustering matrix
``P(z_i = z_j) = mean_s sum_k p_sik p_sjk`` needs no relabelling at all: it does
not change when the labels of any draw are permuted.

For a point estimate (EM) there is one "draw", so every interval collapses to the
point itself, unless the EM model keeps a bootstrap
(:meth:`~bayesgmm.EMGaussianMixture.bootstrap`): its replicates, relabelled to
the fit, then stand where the posterior draws stand, and the intervals are
bootstrap percentile intervals of the memberships.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._intervals import DEFAULT_CI_PROB, check_ci, credible_interval
from bayesgmm._validation import (
    _UNSET,
    check_array,
    check_fitted,
    message,
    renamed_argument,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "ClusterUncertainty",
    "cluster_uncertainty",
    "coclustering_matrix",
    "interval_method",
    "membership_draws",
]


@dataclass(frozen=True)
class ClusterUncertainty:
    """Per-point cluster assignments with their uncertainty.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per point (index ``obs_id``) with columns ``label`` (most probable
        component under the mean membership), ``probability`` (the posterior
        median of that component's membership), ``lower`` and ``upper`` (its
        credible interval, which always contains ``probability``), ``entropy``
        (nats, of the mean membership vector), ``ambiguous`` (see
        :func:`cluster_uncertainty`), ``second_label``, ``second_upper`` (upper
        bound of the runner-up's membership) and ``mean`` (the posterior mean of
        the top membership, which skewed draws can put outside the interval).
    coclustering : ndarray of shape (n_samples, n_samples)
        ``P(z_i = z_j)``: the posterior probability that two points share a component.
    membership : ndarray of shape (n_samples, n_components)
        Posterior mean membership probabilities.
    ci_prob : float
        Mass of the credible intervals.
    ci_kind : {"eti", "hdi"}
        Equal-tailed or highest-density intervals.
    n_draws : int
        Posterior draws used (1 for a point estimate).
    interval_method : str or None
        How the draws were made: ``"NUTS"``, ``"Laplace"``, ``"VI"``,
        ``"VI+PSIS"`` or ``"bootstrap"`` (the model's ``interval_method_``);
        None for a point estimate, whose intervals collapse to the point.
    """

    table: pd.DataFrame
    coclustering: np.ndarray = field(repr=False)
    membership: np.ndarray = field(repr=False)
    ci_prob: float
    ci_kind: str
    n_draws: int
    interval_method: str | None = None

    @property
    def hdi_prob(self) -> float:
        """Deprecated name of :attr:`ci_prob`."""
        warnings.warn(
            "ClusterUncertainty.hdi_prob is deprecated and will be removed in the next "
            "release: use ci_prob",
            FutureWarning,
            stacklevel=2,
        )
        return self.ci_prob


def interval_method(model: Any) -> str | None:
    """How a fitted model's intervals are made, or None when it has none.

    The model's ``interval_method_`` (``"NUTS"``, ``"Laplace"``, ``"VI"``,
    ``"VI+PSIS"``), else the ``interval_method`` attribute of the DataTree it
    keeps its draws in (``"bootstrap"`` for EM's bootstrap), else None.
    """
    method = getattr(model, "interval_method_", None)
    if method is None:
        for name in ("bootstrap_", "idata_"):
            tree = getattr(model, name, None)
            method = getattr(tree, "attrs", {}).get("interval_method")
            if method is not None:
                break
    return None if method is None else str(method)


def membership_draws(
    model: Any, X: Any, *, max_draws: int | None = None, random_state: Any = None
) -> np.ndarray:
    """Membership probabilities per draw, shape (n_draws, n_samples, n_components).

    Bayesian models provide them through their ``membership_draws`` method
    (relabelled draws); a point estimate gives one draw, its ``predict_proba``.
    """
    check_fitted(model)
    if hasattr(model, "membership_draws"):
        draws = model.membership_draws(X, max_draws=max_draws, random_state=random_state)
    else:
        draws = np.asarray(model.predict_proba(X))[None]
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 3:
        raise ValueError(
            message(
                "model",
                "membership draws of shape (n_draws, n_samples, n_components)",
                f"shape {draws.shape}",
                raw=True,
            )
        )
    return draws


def coclustering_matrix(draws: Any) -> np.ndarray:
    """Posterior co-clustering probabilities ``P(z_i = z_j) = mean_s sum_k p_sik p_sjk``.

    Given each draw's parameters the labels of different points are independent,
    so the probability that points ``i`` and ``j`` share a component in draw
    ``s`` is ``sum_k p_sik p_sjk``; averaging over draws gives the posterior
    probability. Permuting the component labels of any draw leaves it unchanged,
    so it needs no relabelling. The diagonal is ``mean_s sum_k p_sik**2``, the
    probability that two independent label draws for the same point agree; it is
    one only for certain points.

    Parameters
    ----------
    draws : array-like of shape (n_draws, n_samples, n_components) or (n_samples, n_components)
        Membership probabilities per draw (a 2-D array is one draw).

    Returns
    -------
    ndarray of shape (n_samples, n_samples)
        Symmetric, entries in [0, 1]. Memory grows as ``n_samples**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.clustering import coclustering_matrix
    >>> p = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> coclustering_matrix(p)
    array([[1., 1., 0.],
           [1., 1., 0.],
           [0., 0., 1.]])
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim == 2:
        draws = draws[None]
    if draws.ndim != 3:
        raise ValueError(
            message(
                "draws",
                "an array of shape (n_draws, n_samples, n_components)",
                f"shape {draws.shape}",
                raw=True,
            )
        )
    n_draws, n_samples, _ = draws.shape
    out = np.zeros((n_samples, n_samples))
    for p in draws:  # one (n, K) @ (K, n) product per draw: O(n^2) memory, never O(S n^2)
        out += p @ p.T
    out /= n_draws
    np.clip(out, 0.0, 1.0, out=out)
    return out


def _entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of ``p`` (with 0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


def cluster_uncertainty(
    model: Any,
    X: Any,
    *,
    ci_prob: float = DEFAULT_CI_PROB,
    ci_kind: str = "eti",
    max_draws: int | None = None,
    random_state: Any = None,
    hdi_prob: Any = _UNSET,
    random_seed: Any = _UNSET,
) -> ClusterUncertainty:
    """Most probable component per point, with a credible interval and an ambiguity flag.

    For Bayesian models (:class:`~bayesgmm.MarginalGaussianMixture`,
    :class:`~bayesgmm.DPGaussianMixture`) everything is computed from the
    relabelled membership draws ``p_sik = p(z_i = k | x_i, theta_s)`` of
    ``model.membership_draws``: the label is the argmax of the posterior mean
    membership; ``probability`` is the posterior median of ``p_si,label`` and
    ``lower``, ``upper`` its credible interval over draws. The median lies inside
    the interval by construction, where the mean need not: membership draws
    piled up near 0 or 1 are skewed, and the mean of a skewed sample can fall
    outside its own equal-tailed interval (the mean is reported as ``mean``).
    The default equal-tailed interval is invariant to monotone transformations
    and well defined when the draws pile up at 0 or 1. For EM the draws are
    the memberships under the replicates of its bootstrap, when
    :meth:`~bayesgmm.EMGaussianMixture.bootstrap` was called; without one there
    are no draws and the interval collapses to the probability itself.

    A point is ``ambiguous`` when its top membership's interval reaches below 0.5
    (``lower < 0.5``: plausible parameters give it less than an even chance of
    belonging where it is put), or when the runner-up's upper bound exceeds the
    top's lower bound (the two intervals overlap). With equal-tailed intervals
    the second condition never adds a point that the first misses: in every
    draw the runner-up's probability is at most one minus the top's, so its
    upper quantile is at most ``1 - lower``, which exceeds ``lower`` only when
    ``lower < 0.5``; it is kept (and ``second_upper`` reported) because it is
    the reading users look for, and because highest-density intervals lack that
    symmetry. For EM the rule reduces to "top probability below 0.5".

    Parameters
    ----------
    model : fitted bayesgmm model
    X : array-like of shape (n_samples, n_features)
    ci_prob : float, default 0.94
        Mass of the credible interval, in (0, 1) (above 0.5 with ``ci_kind="hdi"``).
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density interval, as in ArviZ.
    max_draws : int, optional
        Use at most this many posterior draws (thinned evenly by the model).
    random_state : None, int or Generator
        Passed to ``membership_draws`` (variational models draw from q).
    hdi_prob : float, optional
        Deprecated alias of ``ci_prob`` (it always meant an equal-tailed interval).
    random_seed : None, int or Generator, optional
        Deprecated alias of ``random_state``.

    Returns
    -------
    ClusterUncertainty

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, cluster_uncertainty
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-2, 1, (50, 1)), rng.normal(2, 1, (50, 1))])
    >>> result = cluster_uncertainty(EMGaussianMixture(2, random_state=0).fit(X), X)
    >>> list(result.table.columns)[:5]
    ['label', 'probability', 'lower', 'upper', 'entropy']
    >>> bool((result.table["lower"] == result.table["probability"]).all())
    True
    """
    import pandas as pd

    check_fitted(model)
    prob, kind = check_ci(ci_prob, ci_kind, hdi_prob, default=DEFAULT_CI_PROB)
    if prob is None:
        raise TypeError(message("ci_prob", "a probability in (0, 1)", prob))
    random_state = renamed_argument(
        random_state, random_seed, new_name="random_state", old_name="random_seed"
    )
    X, _ = check_array(X)
    draws = membership_draws(model, X, max_draws=max_draws, random_state=random_state)
    n_draws, n_samples, n_components = draws.shape
    mean = draws.mean(axis=0)
    order = np.argsort(-mean, axis=1, kind="stable")
    top = order[:, 0]
    rows = np.arange(n_samples)
    median, lower, upper = credible_interval(draws[:, rows, top], prob, kind)
    if n_components > 1:
        second = order[:, 1]
        _, _, second_upper = credible_interval(draws[:, rows, second], prob, kind)
    else:
        second = np.full(n_samples, -1)
        second_upper = np.zeros(n_samples)
    ambiguous = (lower < 0.5) | (second_upper > lower)
    table = pd.DataFrame(
        {
            "label": top.astype(int),
            "probability": median,
            "lower": lower,
            "upper": upper,
            "entropy": _entropy(mean),
            "ambiguous": ambiguous,
            "second_label": second.astype(int),
            "second_upper": second_upper,
            "mean": mean[rows, top],
        },
        index=pd.RangeIndex(n_samples, name="obs_id"),
    )
    return ClusterUncertainty(
        table=table,
        coclustering=coclustering_matrix(draws),
        membership=mean,
        ci_prob=prob,
        ci_kind=kind,
        n_draws=n_draws,
        interval_method=interval_method(model),
    )
