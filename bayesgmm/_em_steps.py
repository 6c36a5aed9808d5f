"""The EM iteration: E-step over in-memory or Dask rows, M-step, the loop, regularisation.

The E-step is :func:`bayesgmm._gaussian.e_step_statistics` (the package's one
kernel), run on threads over chunks of in-memory data or mapped over the row
blocks of a Dask array; the M-step is a pure function of the sufficient
statistics it returns. :class:`~bayesgmm.EMGaussianMixture` orchestrates these,
and :mod:`bayesgmm._init` runs short EMs with them.

References
----------
Dempster, A. P., Laird, N. M. and Rubin, D. B. (1977). Maximum likelihood from
incomplete data via the EM algorithm. JRSS B 39(1), 1-38.
doi:10.1111/j.2517-6161.1977.tb01600.x
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from bayesgmm._chunks import map_reduce
from bayesgmm._gaussian import (
    LAYOUTS,
    MCLUST_ALIASES,
    DegenerateCovarianceError,
    SufficientStatistics,
    compute_precision_cholesky,
    covariances_from_statistics,
    default_chunk_size,
    e_step_statistics,
    log_gaussian_prob,
    natural_parameters,
    statistics_from_responsibilities,
)
from bayesgmm._mclust_models import ResolvedPrior, map_m_step
from bayesgmm._missing import MissingnessPatterns, missing_statistics, missingness_patterns

__all__ = [
    "STOPPING_RULES",
    "DaskRows",
    "EMState",
    "LabelledRows",
    "MissingRows",
    "Pool",
    "compute_pool",
    "describe_regularisation",
    "m_step",
    "regularisation",
    "run_em",
    "state_from_responsibilities",
    "total_weight",
]

# A feature whose standard deviation is below this many rounding units of its mean
# (eps * |mean|) is constant to working precision: its variance is rounding noise.
_CONSTANT_RESOLUTION = 100.0
# Variances below this (about 1e-292) are near underflow, where the squares of the
# data have lost their precision: they are no scale to regularise by.
_SMALLEST_VARIANCE = float(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)
# Most threads the E-step uses.
_MAX_THREADS = 8
# "aitken": EM stops once the change of the log-likelihood and the gain still to
# come (Aitken's estimate) are both below ``tol * (1 + |log L|)``; "change":
# scikit-learn's rule, the change of the mean log-likelihood below ``tol``;
# "relative": mclust's rule, the change alone below ``tol * (1 + |log L|)``.
STOPPING_RULES = ("aitken", "change", "relative")
# A restart is given up once, after at least this many iterations, the most it can
# still reach (Aitken's limit, see run_em) falls short of the best so far...
_ABANDON_AFTER = 20
# ... by more than this many log-likelihood units in all, ...
_ABANDON_MARGIN = 1.0
# ... provided EM is converging at least this fast (ratio of successive changes).
_ABANDON_RATE = 0.9
_EPS = float(np.finfo(np.float64).eps)


def m_step(
    stats: SufficientStatistics,
    reg_covar: float | np.ndarray,
    previous: np.ndarray | None = None,
    prior: ResolvedPrior | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """M-step: weights, means, covariances and precision Cholesky factors from statistics.

    Parameters
    ----------
    stats : SufficientStatistics
    reg_covar : float or ndarray of shape (n_features,)
        Added to the diagonal of every covariance: the same amount for every
        feature, or one amount per feature (see
        :func:`bayesgmm._gaussian.covariances_from_statistics`).
    previous : ndarray, optional
        The covariances before this M-step, where the iterative M-steps of
        mclust's models start (so that EM stays monotone); see
        :mod:`bayesgmm._mclust_models`.
    prior : ResolvedPrior, optional
        mclust's conjugate prior: the means and covariances are then its
        posterior mode (:func:`bayesgmm._mclust_models.map_m_step`); the
        weights stay ``N_k / n``, as in mclust.

    Returns
    -------
    weights, means, covariances, precisions_cholesky

    Raises
    ------
    DegenerateCovarianceError
        If a covariance is not positive definite.
    """
    if prior is None:
        weights, means, covariances = covariances_from_statistics(stats, reg_covar, previous)
    else:
        nk = stats.nk + 10 * _EPS
        weights = nk / nk.sum()
        model = MCLUST_ALIASES.get(stats.covariance_type, stats.covariance_type)
        d = stats.sum_x.shape[1]
        reg = np.broadcast_to(np.asarray(reg_covar, dtype=float), (d,))
        means, covariances = map_m_step(model, nk, stats.sum_x, stats.sum_xx, reg, prior, previous)
    chol = compute_precision_cholesky(covariances, stats.covariance_type)
    return weights, means, covariances, chol


@dataclass
class DaskRows:
    """Dask data for the EM loop, standing where the centred in-memory array would.

    The E-step maps :func:`bayesgmm._gaussian.e_step_statistics` over the row
    blocks, centred by ``shift``, and adds their statistics (see
    :func:`bayesgmm._chunks.map_reduce`), so only K x d x d arrays travel.
    ``sample_weight`` (frequency weights, a Dask array of shape (n_samples,)
    or None) is mapped over the same row blocks.
    """

    data: Any
    shift: np.ndarray
    sample_weight: Any = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    @property
    def total_weight(self) -> float:
        """The number of rows, or the sum of their weights."""
        if self.sample_weight is None:
            return float(self.data.shape[0])
        return float(self.sample_weight.sum().compute())

    def variance(self) -> np.ndarray:
        """Per-feature variance of the data (weighted with ``sample_weight``), in one pass.

        ``shift`` must be the (weighted) column means.
        """
        if self.sample_weight is None:
            squares = map_reduce(
                lambda block: np.square(block).sum(axis=0), self.data, shift=self.shift
            )
            return np.asarray(squares) / self.data.shape[0]
        sums = map_reduce(
            _weighted_squares, self.data, shift=self.shift, sample_weight=self.sample_weight
        )
        return np.asarray(sums[1:]) / sums[0]


def _weighted_squares(block: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """``[sum_i w_i, sum_i w_i x_i**2]`` of a block, one array so that blocks add."""
    return np.concatenate([[sample_weight.sum()], sample_weight @ np.square(block)])


@dataclass
class LabelledRows:
    """Centred data in which the components of some rows are known (semi-supervised EM).

    Stands where the centred array would in :func:`run_em`. The responsibilities
    of a labelled row stay one-hot at its component in every E-step (Dean, Murphy
    and Downey 2006, doi:10.1111/j.1467-9876.2006.00549.x), so their statistics
    are computed once; only the unlabelled rows go through the E-step kernel.
    EM then increases the log-likelihood of the unlabelled rows under the mixture
    plus the complete-data log-likelihood of the labelled ones,
    ``sum_unlabelled log sum_k w_k N(x_i | k) + sum_labelled log w_{y_i} N(x_i | y_i)``,
    whose per-row mean is the lower bound of each iteration. With frequency
    weights every row's terms count ``w_i`` times and the mean is per unit of weight.
    """

    unlabelled: np.ndarray
    labelled: np.ndarray
    labels: np.ndarray
    fixed: SufficientStatistics
    unlabelled_weight: np.ndarray | None = None
    labelled_weight: np.ndarray | None = None

    @classmethod
    def split(
        cls,
        Xc: np.ndarray,
        labels: np.ndarray,
        n_components: int,
        covariance_type: str,
        sample_weight: np.ndarray | None = None,
    ) -> LabelledRows:
        """Split centred rows and their weights by ``labels`` (-1: unlabelled, else a component)."""
        known = labels >= 0
        one_hot = np.zeros((int(known.sum()), n_components))
        one_hot[np.arange(one_hot.shape[0]), labels[known]] = 1.0
        labelled = Xc[known]
        if sample_weight is None:
            labelled_weight = unlabelled_weight = None
        else:
            labelled_weight, unlabelled_weight = sample_weight[known], sample_weight[~known]
        fixed = statistics_from_responsibilities(
            labelled, one_hot, covariance_type, sample_weight=labelled_weight
        )
        return cls(Xc[~known], labelled, labels[known], fixed, unlabelled_weight, labelled_weight)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.unlabelled.shape[0] + self.labelled.shape[0], self.labelled.shape[1])

    @property
    def total_weight(self) -> float:
        """The number of rows, or the sum of their weights."""
        if self.unlabelled_weight is None or self.labelled_weight is None:
            return float(self.shape[0])
        return float(self.unlabelled_weight.sum() + self.labelled_weight.sum())

    def statistics(self, state: EMState, covariance_type: str) -> SufficientStatistics:
        """Return the labelled rows' fixed statistics, with their log-likelihood under ``state``."""
        log_density = log_gaussian_prob(
            self.labelled, state.means, state.precisions_cholesky, covariance_type
        )
        with np.errstate(divide="ignore"):
            log_weights = np.log(state.weights)
        rows = np.arange(self.labels.shape[0])
        per_row = log_density[rows, self.labels] + log_weights[self.labels]
        if self.labelled_weight is None:
            log_likelihood = float(per_row.sum())
        else:
            log_likelihood = float(self.labelled_weight @ per_row)
        return replace(self.fixed, log_normalizer=log_likelihood)


@dataclass
class MissingRows:
    """Centred data with missing entries (NaN), standing where the centred array would.

    Stands where the centred array would in :func:`run_em`. The complete rows
    go through the E-step kernel as ever; the rows with missing entries,
    grouped by missingness pattern, through
    :func:`bayesgmm._missing.missing_statistics`, whose responsibilities come
    from each row's observed coordinates and whose statistics fill in the
    missing ones with their conditional moments (Ghahramani and Jordan 1994).
    The sum of both is the expected complete-data statistics, and its
    ``log_normalizer`` the observed-data log-likelihood, which EM increases.
    """

    complete: np.ndarray
    incomplete: np.ndarray
    patterns: MissingnessPatterns

    @classmethod
    def split(cls, Xc: np.ndarray) -> MissingRows:
        """Split centred rows into complete ones and ones with a NaN, grouped by pattern."""
        has_missing = np.isnan(Xc).any(axis=1)
        incomplete = Xc[has_missing]
        return cls(
            np.ascontiguousarray(Xc[~has_missing]), incomplete, missingness_patterns(incomplete)
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.complete.shape[0] + self.incomplete.shape[0], self.complete.shape[1])

    def statistics(self, state: EMState, covariance_type: str) -> SufficientStatistics:
        """Return the expected statistics of the rows with missing entries under ``state``."""
        layout = LAYOUTS[covariance_type]
        k, d = state.means.shape
        covariances = state.covariances
        if covariances is None:
            covariances = layout.covariances_from_cholesky(state.precisions_cholesky)
        with np.errstate(divide="ignore"):
            log_weights = np.log(state.weights)
        return missing_statistics(
            self.incomplete,
            log_weights,
            state.means,
            layout.to_full(covariances, k, d),
            covariance_type,
            patterns=self.patterns,
        )


@dataclass
class Pool:
    """Where E-steps run: an optional thread pool and how many groups of chunks to hand it."""

    executor: Executor | None = None
    n_workers: int = 1


@dataclass
class EMState:
    """Parameters in the centred frame, plus the EM run's bookkeeping.

    With a uniform noise component, ``noise_weight`` is its weight ``w_0`` and
    ``weights`` sum to ``1 - w_0``; None without one.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray
    lower_bound: float = -np.inf
    trace: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    abandoned: bool = False
    noise_weight: float | None = None


def total_weight(
    Xc: np.ndarray | DaskRows | LabelledRows | MissingRows,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Return the number of rows of ``Xc``, or the sum of their frequency weights.

    ``sample_weight`` is for in-memory rows; Dask and labelled rows carry their own.
    """
    if isinstance(Xc, DaskRows | LabelledRows):
        return Xc.total_weight
    if sample_weight is None:
        return float(Xc.shape[0])
    return float(sample_weight.sum())


def e_step(
    Xc: np.ndarray | DaskRows | LabelledRows | MissingRows,
    state: EMState,
    covariance_type: str,
    pool: Pool,
    sample_weight: np.ndarray | None = None,
    log_volume: float | None = None,
) -> SufficientStatistics:
    """Sufficient statistics of the centred data under the state's parameters.

    ``sample_weight`` holds the frequency weights of in-memory rows; Dask and
    labelled rows carry their own (see :class:`DaskRows`, :class:`LabelledRows`).
    With ``log_volume`` (``log V``) and the state's ``noise_weight``, each row's
    log-sum-exp also runs over the uniform noise column ``log w_0 - log V``.
    """
    if isinstance(Xc, LabelledRows):
        unlabelled = e_step(
            Xc.unlabelled, state, covariance_type, pool, sample_weight=Xc.unlabelled_weight
        )
        return unlabelled + Xc.statistics(state, covariance_type)
    if isinstance(Xc, MissingRows):
        complete = e_step(Xc.complete, state, covariance_type, pool)
        return complete + Xc.statistics(state, covariance_type)
    eta, const = natural_parameters(state.means, state.precisions_cholesky, covariance_type)
    with np.errstate(divide="ignore"):
        log_weights = np.log(state.weights)
    noise_log_density = None
    if log_volume is not None and state.noise_weight is not None:
        with np.errstate(divide="ignore"):
            noise_log_density = float(np.log(state.noise_weight) - log_volume)
    kernel = partial(
        e_step_statistics,
        log_weights=log_weights,
        eta=eta,
        const=const,
        covariance_type=covariance_type,
        noise_log_density=noise_log_density,
    )
    if isinstance(Xc, DaskRows):
        return map_reduce(kernel, Xc.data, shift=Xc.shift, sample_weight=Xc.sample_weight)
    return kernel(Xc, executor=pool.executor, n_workers=pool.n_workers, sample_weight=sample_weight)


@contextmanager
def compute_pool(n_samples: int, n_features: int, covariance_type: str) -> Iterator[Pool]:
    """Threads for the E-step, with BLAS held to one thread inside each.

    BLAS's own threads on the small per-chunk products cost more in
    synchronisation than they gain, and on a busy machine far more, so BLAS
    runs single-threaded during the fit (threadpoolctl) and the chunks are
    spread over one Python thread per core instead.
    """
    from threadpoolctl import threadpool_limits

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_chunks = -(-n_samples // default_chunk_size(n_features, covariance_type))
    n_workers = max(1, min(cores or 1, n_chunks, _MAX_THREADS))
    with threadpool_limits(limits=1, user_api="blas"):
        if n_workers == 1:
            yield Pool()
            return
        with ThreadPoolExecutor(max_workers=n_workers) as executor:
            yield Pool(executor, n_workers)


def _should_stop(
    stopping: str, tol: float, n: float, lower_bound: float, change: float, previous_change: float
) -> bool:
    """Decide whether EM stops, from the mean log-likelihood and its last two changes.

    ``"change"`` (scikit-learn): ``|change| < tol``. ``"aitken"``: in total
    log-likelihood units ``L = n * lower_bound``, the last change is at most
    ``tol * (1 + |L|)`` (mclust's relative rule, ``emControl(tol=1e-5)``) and so
    is the gain still to come as Aitken's acceleration estimates it: EM's
    changes shrink geometrically near a maximum, ``c_t = r c_{t-1}``, so what
    remains is ``c_t r / (1 - r)`` (Böhning, Dietz, Schaub, Schlattmann and
    Lindsay 1994, doi:10.1007/BF00773476; McNicholas, Murphy, McDaid and Frost
    2010, doi:10.1016/j.csda.2009.02.011). When EM slows down (``r`` near 1)
    the relative rule alone stops far below the maximum; this one does not.
    ``"relative"``: mclust's rule alone, ``|L_t - L_{t-1}| <= tol * (1 + |L_t|)``
    (``emControl()$tol[1]``, 1e-5 in mclust), to reproduce mclust's fits.
    """
    if stopping == "change":
        return abs(change) < tol
    threshold = tol * (1.0 + n * abs(lower_bound))
    total_change = n * change
    if stopping == "relative":
        return abs(total_change) <= threshold
    if total_change <= 0.0:
        # No gain: EM never lowers the likelihood, only rounding can. tol=0 asks for
        # every one of max_iter iterations, as with scikit-learn's rule.
        return tol > 0.0
    if total_change > threshold or not 0.0 < previous_change < np.inf:
        return False  # too large, or no rate yet (the first change is from -inf)
    ratio = change / previous_change
    if ratio >= 1.0:
        return False
    return total_change * ratio / (1.0 - ratio) <= threshold


def _hopeless(
    n: float, lower_bound: float, change: float, previous_change: float, target: float
) -> bool:
    """Whether an EM run can no longer reach ``target`` (a mean log-likelihood).

    Its limit is estimated as Aitken's ``lower_bound + change / (1 - r)`` with
    ``r`` the ratio of the last two changes; the run is hopeless when that
    falls short of ``target`` by more than ``_ABANDON_MARGIN`` log-likelihood
    units while EM converges at rate ``r < _ABANDON_RATE``.
    """
    if not (change > 0.0 and previous_change > 0.0):
        return False
    ratio = change / previous_change
    if ratio >= _ABANDON_RATE:
        return False
    limit = lower_bound + change / (1.0 - ratio)
    return n * (target - limit) > _ABANDON_MARGIN


def run_em(
    Xc: np.ndarray | DaskRows | LabelledRows | MissingRows,
    state: EMState,
    *,
    covariance_type: str,
    reg_covar: np.ndarray,
    max_iter: int,
    tol: float,
    pool: Pool,
    stopping: str = "change",
    abandon_below: float | None = None,
    verbose: int = 0,
    verbose_interval: int = 10,
    prior: ResolvedPrior | None = None,
    log_volume: float | None = None,
    sample_weight: np.ndarray | None = None,
) -> EMState:
    """EM iterations with scikit-learn's semantics.

    Each iteration runs an E-step under the current parameters (its mean
    log-likelihood is the iteration's lower bound) and then an M-step, stopping
    by the rule ``stopping`` (see :func:`_should_stop`). The returned parameters
    are those after the last M-step, and ``lower_bound`` is the mean
    log-likelihood of the parameters *before* it, as in scikit-learn.
    ``reg_covar`` is the per-feature amount the M-step adds to the diagonals
    (see :func:`regularisation`). With ``abandon_below`` (the best mean
    log-likelihood another start reached), the run stops early, marked
    ``abandoned``, once it cannot reach it (see :func:`_hopeless`). With
    ``prior`` each M-step is the posterior mode under mclust's conjugate prior
    (see :func:`m_step`). With ``log_volume`` (``log V``) and a state with a
    ``noise_weight``, the mixture has mclust's uniform noise component: the
    E-step adds its column, the Gaussian M-step reads the Gaussian
    responsibilities only, and the noise weight becomes the mean noise
    responsibility ``w_0 = sum_i r_i0 / n``, the Gaussian weights ``N_k / n``
    (Banfield and Raftery 1993, doi:10.2307/2532201). With frequency weights
    (``sample_weight`` for in-memory rows, or those ``Xc`` carries) the lower
    bound is the weighted log-likelihood per unit of weight,
    ``sum_i w_i log p(x_i) / sum_i w_i``, and ``n`` above is ``sum_i w_i``.
    """
    n = total_weight(Xc, sample_weight)
    lower_bound = state.lower_bound
    trace: list[float] = []
    converged = abandoned = False
    n_iter = 0
    change = np.inf
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        stats = e_step(
            Xc, state, covariance_type, pool, sample_weight=sample_weight, log_volume=log_volume
        )
        lower_bound = stats.log_normalizer / n
        trace.append(lower_bound)
        if stopping == "relative" and _should_stop(
            stopping, tol, n, lower_bound, lower_bound - previous, change
        ):
            # mclust's me() keeps the parameters its last E-step scored: no M-step after.
            converged = True
            break
        try:
            weights, means, covariances, chol = m_step(stats, reg_covar, state.covariances, prior)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(
                f"EMGaussianMixture.fit, EM iteration {n_iter}: {exc} "
                f"({describe_regularisation(reg_covar)})"
            ) from exc
        noise_weight = None
        if state.noise_weight is not None:
            noise_weight = stats.noise_nk / n
            weights = weights * (1.0 - noise_weight)
        state = EMState(weights, means, covariances, chol, noise_weight=noise_weight)
        previous_change, change = change, lower_bound - previous
        if verbose >= 2 and n_iter % verbose_interval == 0:
            print(f"  Iteration {n_iter}\t lower bound {lower_bound:.6f}\t change {change:.3e}")
        if _should_stop(stopping, tol, n, lower_bound, change, previous_change):
            converged = True
            break
        if (
            abandon_below is not None
            and n_iter >= _ABANDON_AFTER
            and _hopeless(n, lower_bound, change, previous_change, abandon_below)
        ):
            abandoned = True
            break
    state.lower_bound = lower_bound
    state.trace = trace
    state.n_iter = n_iter
    state.converged = converged
    state.abandoned = abandoned
    return state


def state_from_responsibilities(
    Xc: np.ndarray,
    resp: np.ndarray,
    covariance_type: str,
    reg_covar: np.ndarray,
    prior: ResolvedPrior | None = None,
    sample_weight: np.ndarray | None = None,
) -> EMState:
    """Run the M-step on given responsibilities: a start for EM.

    With ``prior`` it is the posterior-mode M-step, as mclust's ``me`` starts
    from a classification; ``sample_weight`` are the rows' frequency weights.
    """
    stats = statistics_from_responsibilities(Xc, resp, covariance_type, sample_weight=sample_weight)
    try:
        weights, means, covariances, chol = m_step(stats, reg_covar, None, prior)
    except DegenerateCovarianceError as exc:
        raise DegenerateCovarianceError(
            f"EMGaussianMixture.fit, initialisation: {exc} ({describe_regularisation(reg_covar)})"
        ) from exc
    return EMState(weights, means, covariances, chol)


def regularisation(
    reg_covar: float,
    reg_covar_scale: str,
    data_variance: np.ndarray,
    data_mean: np.ndarray,
    covariance_type: str,
) -> np.ndarray:
    """Per-feature amount added to the covariance diagonals, in the data's squared units.

    ``"absolute"``: ``reg_covar`` for every feature (scikit-learn). ``"variance"``:
    ``reg_covar * var_j`` for feature j, or ``reg_covar`` times the mean variance
    for the spherical models (one variance for all features). A feature that is constant
    to working precision (standard deviation at most ``_CONSTANT_RESOLUTION``
    rounding units of its mean, or variance below ``_SMALLEST_VARIANCE``, near
    underflow) has no scale of its own and gets ``reg_covar`` times the mean
    variance of the varying features; when no feature varies, the data's mean
    square magnitude ``mean_j mean(x_j)**2`` stands in for the variance, and 1 when
    that is zero, near underflow or overflows (then the amount is ``reg_covar``, as
    with ``"absolute"``). Every amount is positive when ``reg_covar`` is, so the
    covariances stay positive definite.
    """
    d = data_variance.shape[0]
    if reg_covar_scale == "absolute":
        return np.full(d, reg_covar)
    with np.errstate(over="ignore"):
        rounding = (_CONSTANT_RESOLUTION * np.finfo(np.float64).eps * np.abs(data_mean)) ** 2
        magnitude = float(np.mean(np.square(data_mean)))
    varying = data_variance > np.maximum(rounding, _SMALLEST_VARIANCE)
    if varying.any():
        fallback = float(data_variance[varying].mean())
    else:
        fallback = magnitude if _SMALLEST_VARIANCE < magnitude < np.inf else 1.0
    if LAYOUTS[covariance_type].storage == "spherical":
        unit = np.full(d, float(data_variance.mean()) if varying.any() else fallback)
    else:
        unit = np.where(varying, data_variance, fallback)
    return reg_covar * unit


def describe_regularisation(reg: np.ndarray) -> str:
    """``reg_covar`` as it was added, for error messages."""
    if reg.size and np.all(reg == reg[0]):
        return f"reg_covar added to the diagonal: {reg[0]:g}"
    return f"reg_covar added to the diagonal: {reg.min():.3g} to {reg.max():.3g} by feature"
