"""Credible intervals over posterior draws, in ArviZ 1.x's vocabulary.

Every engine reports an interval with the point it belongs to. The point is the
posterior *median*: an equal-tailed interval always contains it, and so does any
single interval holding more than half of the draws (an interval that misses the
median lies wholly on one side of it, where at most half the draws are), which is
why ``ci_kind="hdi"`` asks for ``ci_prob > 0.5``. The posterior mean, reported as
well, need not lie inside either interval when the draws are skewed (membership
probabilities piled up near 0 or 1 are).

Intervals are computed by :mod:`arviz_stats` (``eti`` and ``hdi`` of
``arviz_stats.base.array_stats``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._validation import _UNSET, check_float, check_option, message, renamed_argument

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = [
    "CI_KINDS",
    "DEFAULT_CI_PROB",
    "check_ci",
    "credible_interval",
    "membership_intervals",
]

CI_KINDS = ("eti", "hdi")
DEFAULT_CI_PROB = 0.94


def check_ci(
    ci_prob: Any,
    ci_kind: Any,
    hdi_prob: Any = _UNSET,
    *,
    default: float | None = DEFAULT_CI_PROB,
) -> tuple[float | None, str]:
    """Validate ``ci_prob`` and ``ci_kind`` (and the deprecated ``hdi_prob`` alias).

    Parameters
    ----------
    ci_prob : float in (0, 1) or None
        Mass of the interval; ``None`` means "no interval" where the caller allows it.
    ci_kind : {"eti", "hdi"}
        Equal-tailed or highest-density interval.
    hdi_prob : float, optional
        Deprecated alias of ``ci_prob`` (it always meant an equal-tailed interval).
    default : float or None
        ``ci_prob``'s default in the caller's signature.

    Returns
    -------
    (ci_prob, ci_kind)
    """
    ci_prob = renamed_argument(
        ci_prob, hdi_prob, new_name="ci_prob", old_name="hdi_prob", default=default, stacklevel=4
    )
    ci_kind = check_option(ci_kind, "ci_kind", CI_KINDS)
    if ci_prob is None:
        return None, ci_kind
    ci_prob = check_float(
        ci_prob, "ci_prob", minimum=0.0, maximum=1.0, include_minimum=False, include_maximum=False
    )
    if ci_kind == "hdi" and ci_prob <= 0.5:
        raise ValueError(
            message(
                "ci_prob",
                "a probability above 0.5 with ci_kind='hdi' (a highest-density interval of "
                "less mass need not contain the median it is reported with)",
                ci_prob,
            )
        )
    return ci_prob, ci_kind


def credible_interval(
    draws: np.ndarray, ci_prob: float, ci_kind: str, *, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and credible interval of ``draws`` along ``axis``.

    Parameters
    ----------
    draws : ndarray
        Posterior draws; ``axis`` indexes the draws.
    ci_prob : float
        Mass of the interval, checked by :func:`check_ci`.
    ci_kind : {"eti", "hdi"}
        Equal-tailed (quantiles ``(1 - ci_prob) / 2`` and ``(1 + ci_prob) / 2``,
        linear interpolation) or highest-density (the shortest interval holding
        ``ci_prob`` of the draws).

    Returns
    -------
    median, lower, upper : ndarray
        Each of ``draws``' shape without ``axis``; ``lower <= median <= upper``.
    """
    from arviz_stats.base import array_stats

    draws = np.moveaxis(np.asarray(draws, dtype=float), axis, -1)
    median = np.median(draws, axis=-1)
    if ci_kind == "eti":
        bounds = array_stats.eti(draws, ci_prob, axis=-1)
    else:
        bounds = array_stats.hdi(draws, ci_prob, axis=-1)
    lower, upper = bounds[..., 0], bounds[..., 1]
    # Guards only the last bit of rounding: the median lies inside both kinds of interval.
    return median, np.minimum(lower, median), np.maximum(upper, median)


def membership_intervals(
    mean: np.ndarray,
    median: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    ci_prob: float,
    ci_kind: str,
) -> xr.Dataset:
    """Build the Dataset ``predict_proba(X, ci_prob=...)`` returns, from (n, K) summaries.

    Variables ``mean``, ``median``, ``lower`` and ``upper`` with dims ``obs_id`` and
    ``component``; attributes ``ci_prob`` and ``ci_kind``.
    """
    import xarray as xr

    n, k = mean.shape
    dims = ("obs_id", "component")
    return xr.Dataset(
        {
            "mean": (dims, mean),
            "median": (dims, median),
            "lower": (dims, lower),
            "upper": (dims, upper),
        },
        coords={"obs_id": np.arange(n), "component": np.arange(k)},
        attrs={"ci_prob": ci_prob, "ci_kind": ci_kind},
    )
