"""Classical maximum-likelihood Gaussian mixture fitted by EM: :class:`EMGaussianMixture`.

A drop-in replacement for :class:`sklearn.mixture.GaussianMixture` with the same
parameters, fitted attributes and iteration semantics, built on the shared maths
in :mod:`bayesgmm._gaussian`:

* the E-step is one pass over the data that accumulates the sufficient
  statistics ``N_k``, ``sum_i r_ik x_i`` and ``sum_i r_ik x_i x_i'``
  (:func:`accumulate_statistics`), evaluating all components at once as a
  matrix product on the feature map ``phi(x)`` chunk by chunk;
* the M-step is a pure function of those statistics (:func:`m_step`).

Because the E-step only *adds* per-chunk statistics, chunked or distributed data
can map :func:`accumulate_statistics` over their chunks and sum the results.

References
----------
Dempster, A. P., Laird, N. M. and Rubin, D. B. (1977). Maximum likelihood from
incomplete data via the EM algorithm. JRSS B 39(1), 1-38.
doi:10.1111/j.2517-6161.1977.tb01600.x
Biernacki, C., Celeux, G. and Govaert, G. (2000). Assessing a mixture model for
clustering with the integrated completed likelihood. IEEE TPAMI 22(7), 719-725.
doi:10.1109/34.865189
Biernacki, C., Celeux, G. and Govaert, G. (2003). Choosing starting values for
the EM algorithm for getting the highest likelihood in multivariate Gaussian
mixture models. Computational Statistics & Data Analysis 41(3-4), 561-575.
doi:10.1016/S0167-9473(02)00163-9
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from scipy import linalg

from bayesgmm import _gaussian
from bayesgmm._base import ParamsMixin
from bayesgmm._chunks import (
    check_dask_array,
    column_means,
    is_dask_array,
    map_reduce,
    map_rows,
    sample_rows,
)
from bayesgmm._gaussian import (
    COVARIANCE_TYPES,
    DegenerateCovarianceError,
    SufficientStatistics,
    compute_precision_cholesky,
    covariances_from_statistics,
    n_feature_columns,
    natural_parameters,
)
from bayesgmm._kmeans import kmeans
from bayesgmm._validation import (
    check_array,
    check_fitted,
    check_float,
    check_int,
    check_n_features,
    check_option,
    check_random_state,
    message,
)
from bayesgmm.params import GaussianMixtureParams

__all__ = [
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "EMGaussianMixture",
    "accumulate_statistics",
    "m_step",
]

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
REG_COVAR_SCALES = ("variance", "absolute")

# Bytes of the (transposed) feature map held at once. Small enough to stay in
# cache and to keep OpenBLAS on its fast small-matrix paths.
_CHUNK_BYTES = 1 << 21
# Short-EM (Biernacki et al. 2003): at most this many iterations per candidate,
# stopped early once the mean log-likelihood changes less than _SHORT_EM_TOL.
_SHORT_EM_ITER = 10
_SHORT_EM_TOL = 1e-2
# k-means++ seedings per scale, and the most samples k-means and short EM look at.
_KMEANS_SEEDINGS = 3
_SHORT_EM_MAX_SAMPLES = 20_000
# A component's own scatter below this fraction of the data's variance (in the
# direction where it is smallest, features standardised) marks it degenerate.
_DEGENERATE_RELATIVE_VARIANCE = 1e-6
# reg_covar above this share of a feature's variance dominates the covariances: warn.
_REG_COVAR_SHARE = 1e-3
# A feature whose standard deviation is below this many rounding units of its mean
# (eps * |mean|) is constant to working precision: its variance is rounding noise.
_CONSTANT_RESOLUTION = 100.0
# Variances below this (about 1e-292) are near underflow, where the squares of the
# data have lost their precision: they are no scale to regularise by.
_SMALLEST_VARIANCE = float(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)
# Most threads the E-step uses.
_MAX_THREADS = 8


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed less than ``tol``."""


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed onto too few points or onto a lower-dimensional set."""


# --------------------------------------------------------------------------- maths


def _chunk_size(n_features: int, covariance_type: str) -> int:
    width = n_feature_columns(n_features, covariance_type)
    return max(256, _CHUNK_BYTES // (8 * width))


def _feature_map_t(Xt: np.ndarray, covariance_type: str, out: np.ndarray) -> np.ndarray:
    """Transposed feature map ``phi(X)'``, shape (width, n), same row order as ``feature_map``."""
    d = Xt.shape[0]
    out[:d] = Xt
    if covariance_type in ("full", "tied"):
        start = d
        for i in range(d):
            np.multiply(Xt[i : i + 1], Xt[i:], out=out[start : start + d - i])
            start += d - i
    elif covariance_type == "diag":
        np.multiply(Xt, Xt, out=out[d:])
    else:
        np.einsum("ij,ij->j", Xt, Xt, out=out[d])
    return out


def _chunk_bounds(n: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _chunk_statistics(
    Xt: np.ndarray,
    bounds: list[tuple[int, int]],
    eta_t: np.ndarray,
    offset: np.ndarray,
    covariance_type: str,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per-chunk ``(phi' R, N, log-normaliser)`` for consecutive chunks, sharing buffers."""
    width, n_components = eta_t.shape[1], eta_t.shape[0]
    most = max(stop - start for start, stop in bounds)
    features_buffer = np.empty((width, most))
    scores_buffer = np.empty((n_components, most))
    out = []
    for start, stop in bounds:
        rows = stop - start
        if rows == most:
            features, scores = features_buffer, scores_buffer
        else:  # contiguous buffers for the short last chunk
            features = np.empty((width, rows))
            scores = np.empty((n_components, rows))
        _feature_map_t(Xt[:, start:stop], covariance_type, features)
        np.matmul(eta_t, features, out=scores)
        scores += offset
        top = scores.max(axis=0)
        scores -= top
        np.exp(scores, out=scores)
        total = scores.sum(axis=0)
        log_normalizer = float(np.log(total).sum() + top.sum())
        scores /= total
        out.append((features @ scores.T, scores.sum(axis=1), log_normalizer))
    return out


def accumulate_statistics(
    Xt: np.ndarray,
    log_weights: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
    executor: Executor | None = None,
    n_workers: int = 1,
) -> SufficientStatistics:
    """E-step over one block of data: responsibilities and the statistics they weight.

    Computes the same quantities as :func:`bayesgmm._gaussian.e_step_statistics`
    (equal to rounding) but on the *transposed* data ``X'`` of shape
    (n_features, n_samples): the unnormalised log responsibilities are
    ``S = eta' phi(X)' + (c + log w)`` with one component per row, their
    normalisation runs along contiguous rows, and the statistics are
    ``phi(X)' R``. This layout avoids a slow OpenBLAS path for ``R' phi(X)`` with
    a tall, thin ``R`` (about 40 times slower at n=8000, K=8 on the reference
    machine) and keeps every reduction over a contiguous axis.

    The data are cut into chunks of ``chunk_size`` samples; the chunks may be
    evaluated on ``n_workers`` threads of ``executor`` (NumPy and BLAS release
    the GIL), and the per-chunk statistics are always summed in chunk order, so
    the result is bitwise the same whatever the number of threads.

    Parameters
    ----------
    Xt : ndarray of shape (n_features, n_samples)
        The data, transposed and centred in the frame ``eta`` was computed in.
    log_weights : ndarray of shape (n_components,)
    eta, const : ndarray
        Natural parameters from :func:`bayesgmm._gaussian.natural_parameters`;
        ``eta`` has shape (width, n_components).
    covariance_type : {"full", "tied", "diag", "spherical"}
    chunk_size : int, optional
        Samples per chunk (default: about 2 MiB of features).
    executor : concurrent.futures.Executor, optional
        Thread pool for the chunks; serial if None.
    n_workers : int
        Number of groups of consecutive chunks handed to ``executor``.

    Returns
    -------
    SufficientStatistics
        Additive over blocks: the statistics of a concatenation are the sum of
        the blocks' statistics.
    """
    d, n = Xt.shape
    width, n_components = eta.shape
    step = chunk_size or _chunk_size(d, covariance_type)
    eta_t = np.ascontiguousarray(eta.T)
    offset = (const + log_weights)[:, None]
    bounds = _chunk_bounds(n, step)
    if executor is None or n_workers <= 1 or len(bounds) < 2:
        parts = _chunk_statistics(Xt, bounds, eta_t, offset, covariance_type)
    else:
        groups = [g.tolist() for g in np.array_split(np.arange(len(bounds)), n_workers) if g.size]
        futures = [
            executor.submit(
                _chunk_statistics, Xt, [bounds[i] for i in g], eta_t, offset, covariance_type
            )
            for g in groups
        ]
        parts = [part for future in futures for part in future.result()]
    packed_t = np.zeros((width, n_components))
    nk = np.zeros(n_components)
    log_normalizer = 0.0
    for chunk_packed, chunk_nk, chunk_log_normalizer in parts:
        packed_t += chunk_packed
        nk += chunk_nk
        log_normalizer += chunk_log_normalizer
    sum_x, sum_xx = _gaussian.unpack_feature_sums(packed_t.T, d, covariance_type)
    return SufficientStatistics(covariance_type, nk, sum_x, sum_xx, log_normalizer, n)


def _statistics_from_responsibilities(
    Xt: np.ndarray, resp: np.ndarray, covariance_type: str
) -> SufficientStatistics:
    """Sufficient statistics for given responsibilities, on transposed data."""
    d, n = Xt.shape
    step = _chunk_size(d, covariance_type)
    width = n_feature_columns(d, covariance_type)
    packed_t = np.zeros((width, resp.shape[1]))
    for start in range(0, n, step):
        stop = min(start + step, n)
        features = _feature_map_t(
            Xt[:, start:stop], covariance_type, np.empty((width, stop - start))
        )
        packed_t += features @ resp[start:stop]
    sum_x, sum_xx = _gaussian.unpack_feature_sums(packed_t.T, d, covariance_type)
    return SufficientStatistics(covariance_type, resp.sum(axis=0), sum_x, sum_xx, 0.0, n)


def m_step(
    stats: SufficientStatistics, reg_covar: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """M-step: weights, means, covariances and precision Cholesky factors from statistics.

    Parameters
    ----------
    stats : SufficientStatistics
    reg_covar : float or ndarray of shape (n_features,)
        Added to the diagonal of every covariance: the same amount for every
        feature, or one amount per feature (see
        :func:`bayesgmm._gaussian.covariances_from_statistics`).

    Returns
    -------
    weights, means, covariances, precisions_cholesky

    Raises
    ------
    DegenerateCovarianceError
        If a covariance is not positive definite.
    """
    weights, means, covariances = covariances_from_statistics(stats, reg_covar)
    chol = compute_precision_cholesky(covariances, stats.covariance_type)
    return weights, means, covariances, chol


@dataclass
class _DaskRows:
    """Dask data for the EM loop, standing where the transposed centred array ``Xt`` would.

    ``shape`` is that of ``Xt`` (n_features, n_samples); the E-step maps
    :func:`accumulate_statistics` over the row blocks and adds their statistics
    (see :func:`bayesgmm._chunks.map_reduce`), so only K x d x d arrays travel.
    """

    data: Any
    shift: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.data.shape[1]), int(self.data.shape[0]))

    def variance(self) -> np.ndarray:
        """Per-feature variance of the data, in one pass."""
        squares = map_reduce(
            lambda block: np.square(block).sum(axis=0), self.data, shift=self.shift
        )
        return np.asarray(squares) / self.data.shape[0]


def _block_statistics(
    block: np.ndarray,
    log_weights: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    covariance_type: str,
) -> SufficientStatistics:
    """E-step statistics of one centred row block (the unit of work on a Dask worker)."""
    return accumulate_statistics(
        np.ascontiguousarray(block.T), log_weights, eta, const, covariance_type
    )


@dataclass
class _Pool:
    """Where E-steps run: an optional thread pool and how many groups of chunks to hand it."""

    executor: Executor | None = None
    n_workers: int = 1


def _e_step(
    Xt: np.ndarray | _DaskRows, state: _State, covariance_type: str, pool: _Pool
) -> SufficientStatistics:
    eta, const = natural_parameters(state.means, state.precisions_cholesky, covariance_type)
    with np.errstate(divide="ignore"):
        log_weights = np.log(state.weights)
    if isinstance(Xt, _DaskRows):
        block_statistics = partial(
            _block_statistics,
            log_weights=log_weights,
            eta=eta,
            const=const,
            covariance_type=covariance_type,
        )
        return map_reduce(block_statistics, Xt.data, shift=Xt.shift)
    return accumulate_statistics(
        Xt,
        log_weights,
        eta,
        const,
        covariance_type,
        executor=pool.executor,
        n_workers=pool.n_workers,
    )


@contextmanager
def _compute_pool(n_samples: int, n_features: int, covariance_type: str) -> Iterator[_Pool]:
    """Threads for the E-step, with BLAS held to one thread inside each.

    BLAS's own threads on the small per-chunk products cost more in
    synchronisation than they gain, and on a busy machine far more (measured
    30 times slower per iteration on two shared cores), so when ``threadpoolctl``
    is installed BLAS runs single-threaded during the fit and the chunks are
    spread over one Python thread per core instead. Without ``threadpoolctl``
    the E-step stays serial and BLAS keeps its threads.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        yield _Pool()
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n_chunks = -(-n_samples // _chunk_size(n_features, covariance_type))
    n_workers = max(1, min(cores or 1, n_chunks, _MAX_THREADS))
    with threadpool_limits(limits=1, user_api="blas"):
        if n_workers == 1:
            yield _Pool()
            return
        with ThreadPoolExecutor(max_workers=n_workers) as executor:
            yield _Pool(executor, n_workers)


@dataclass
class _State:
    """Parameters in the centred frame, plus the EM run's bookkeeping."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray | None
    precisions_cholesky: np.ndarray
    lower_bound: float = -np.inf
    trace: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def _run_em(
    Xt: np.ndarray | _DaskRows,
    state: _State,
    *,
    covariance_type: str,
    reg_covar: np.ndarray,
    max_iter: int,
    tol: float,
    pool: _Pool,
    verbose: int = 0,
    verbose_interval: int = 10,
) -> _State:
    """EM iterations with scikit-learn's semantics.

    Each iteration runs an E-step under the current parameters (its mean
    log-likelihood is the iteration's lower bound) and then an M-step, stopping
    when the lower bound changes by less than ``tol``. The returned parameters
    are those after the last M-step, and ``lower_bound`` is the mean
    log-likelihood of the parameters *before* it, as in scikit-learn.
    ``reg_covar`` is the per-feature amount the M-step adds to the diagonals
    (see :func:`_regularisation`).
    """
    n = Xt.shape[1]
    lower_bound = state.lower_bound
    trace: list[float] = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        stats = _e_step(Xt, state, covariance_type, pool)
        lower_bound = stats.log_normalizer / n
        trace.append(lower_bound)
        try:
            weights, means, covariances, chol = m_step(stats, reg_covar)
        except DegenerateCovarianceError as exc:
            raise DegenerateCovarianceError(
                f"EMGaussianMixture.fit, EM iteration {n_iter}: {exc} "
                f"({_describe_regularisation(reg_covar)})"
            ) from exc
        state = _State(weights, means, covariances, chol)
        change = lower_bound - previous
        if verbose >= 2 and n_iter % verbose_interval == 0:
            print(f"  Iteration {n_iter}\t lower bound {lower_bound:.6f}\t change {change:.3e}")
        if abs(change) < tol:
            converged = True
            break
    state.lower_bound = lower_bound
    state.trace = trace
    state.n_iter = n_iter
    state.converged = converged
    return state


def _state_from_responsibilities(
    Xt: np.ndarray, resp: np.ndarray, covariance_type: str, reg_covar: np.ndarray
) -> _State:
    stats = _statistics_from_responsibilities(Xt, resp, covariance_type)
    try:
        weights, means, covariances, chol = m_step(stats, reg_covar)
    except DegenerateCovarianceError as exc:
        raise DegenerateCovarianceError(
            f"EMGaussianMixture.fit, initialisation: {exc} ({_describe_regularisation(reg_covar)})"
        ) from exc
    return _State(weights, means, covariances, chol)


def _regularisation(
    reg_covar: float,
    reg_covar_scale: str,
    data_variance: np.ndarray,
    data_mean: np.ndarray,
    covariance_type: str,
) -> np.ndarray:
    """Per-feature amount added to the covariance diagonals, in the data's squared units.

    ``"absolute"``: ``reg_covar`` for every feature (scikit-learn). ``"variance"``:
    ``reg_covar * var_j`` for feature j, or ``reg_covar`` times the mean variance
    for ``spherical`` (one variance for all features). A feature that is constant
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
    if covariance_type == "spherical":
        unit = np.full(d, float(data_variance.mean()) if varying.any() else fallback)
    else:
        unit = np.where(varying, data_variance, fallback)
    return reg_covar * unit


def _describe_regularisation(reg: np.ndarray) -> str:
    """``reg_covar`` as it was added, for error messages."""
    if reg.size and np.all(reg == reg[0]):
        return f"reg_covar added to the diagonal: {reg[0]:g}"
    return f"reg_covar added to the diagonal: {reg.min():.3g} to {reg.max():.3g} by feature"


def _one_hot(labels: np.ndarray, n_components: int) -> np.ndarray:
    resp = np.zeros((labels.shape[0], n_components))
    resp[np.arange(labels.shape[0]), labels] = 1.0
    return resp


def _canonical(labels: np.ndarray) -> bytes:
    """Labels renumbered by first appearance, so equal partitions compare equal."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].tobytes()


def _kmeans_candidates(
    Xc: np.ndarray, n_components: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Distinct k-means partitions of the data on three scales.

    1. features standardised to unit variance (units do not drive the clustering);
    2. the raw scale (scikit-learn's choice, so its kind of start is among the candidates);
    3. whitened data (standardised and decorrelated).

    On each scale, k-means runs from three k-means++ seedings. The partitions
    come back without duplicates, the lowest-inertia standardised one first.
    """
    scale = Xc.std(axis=0)
    scale[~(scale > 0)] = 1.0
    standardised = Xc / scale
    spaces = [standardised, Xc]
    if Xc.shape[1] > 1:
        corr = np.atleast_2d(np.cov(standardised, rowvar=False))
        values, vectors = np.linalg.eigh(corr)
        keep = values > 1e-10 * max(values.max(), 0.0)
        if keep.any():
            spaces.append(standardised @ (vectors[:, keep] / np.sqrt(values[keep])))
    candidates: list[np.ndarray] = []
    seen: set[bytes] = set()
    for space in spaces:
        runs = [kmeans(space, n_components, rng, n_init=1) for _ in range(_KMEANS_SEEDINGS)]
        for run in sorted(runs, key=lambda r: r.inertia):
            key = _canonical(run.labels)
            if key not in seen:
                seen.add(key)
                candidates.append(run.labels)
    return candidates


# ----------------------------------------------------------------------- estimator


class EMGaussianMixture(ParamsMixin):
    """Gaussian mixture fitted by maximum likelihood with EM; a drop-in for scikit-learn's.

    The density is ``p(x) = sum_k w_k N(x | mu_k, Sigma_k)``. Parameters,
    fitted attributes and iteration semantics are those of
    :class:`sklearn.mixture.GaussianMixture`, with one departure: by default
    ``reg_covar`` is relative to each feature's variance (``reg_covar_scale``), so
    the answer does not depend on the data's units. With
    ``reg_covar_scale="absolute"``, the same initial weights, means and
    precisions and the same number of iterations, the fitted log-likelihood,
    BIC, AIC and responsibilities agree with scikit-learn's to about 1e-8
    relative. The E-step evaluates every component at once as one
    matrix product per chunk on the feature map of the data (see
    :mod:`bayesgmm._gaussian`), which is several times faster.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        ``full``: one general covariance per component; ``tied``: one shared by all;
        ``diag``: one diagonal per component; ``spherical``: one variance per component.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood per sample changes by less than this.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of every covariance,
        keeping them positive definite; what it is relative to is set by
        ``reg_covar_scale``. The amount actually added is ``reg_covar_``.
    reg_covar_scale : {"variance", "absolute"}, default="variance"
        The unit of ``reg_covar``.

        * ``"variance"``: the M-step adds ``reg_covar`` times each feature's
          variance to that feature's diagonal entry, ``reg_covar * var_j`` with
          ``var_j`` the variance of feature j in the training data (for
          ``spherical``, ``reg_covar`` times the mean of the features' variances).
          The regularisation then changes with the units like the covariances
          themselves, so EM's updates commute with a change of units
          ``x -> a * x + b`` (``a`` a non-zero number, or one per feature for
          ``full``, ``tied`` and ``diag``): from corresponding starts, the fit on
          ``a * X + b`` is the fit on ``X`` in the new units, with the same
          labels, means ``a * mu + b``, covariances ``a_i a_j Sigma_ij`` and a
          log-likelihood per sample lower by ``sum_j log|a_j|``. The default
          ``"kmeans"`` start looks at standardised data too, so the same
          ``random_state`` gives corresponding fits (it also tries k-means on
          the raw scale, whose partitions change with one ``a`` per feature; the
          most likely candidate is kept). A feature that is constant (to working
          precision) has no variance of its own and gets ``reg_covar`` times the
          mean variance of the varying features; if no feature varies, the mean
          square of the data's feature means stands in for the variance
          (``reg_covar`` itself is used when that is zero or out of
          floating-point range).
        * ``"absolute"``: ``reg_covar`` itself, in the data's squared units, as in
          scikit-learn; use it for exact parity with
          :class:`sklearn.mixture.GaussianMixture`. On data with feature variances
          below 1000 times ``reg_covar`` (data in small units) it dominates the
          clusters' spread and can merge them, and ``fit`` warns.
    max_iter : int, default=100
        EM iterations per initialisation (0 keeps the initial parameters).
    n_init : int, default=1
        Number of initialisations; the one with the best final lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How initial responsibilities are chosen when not all of ``weights_init``,
        ``means_init`` and ``precisions_init`` are given.

        * ``"kmeans"`` (departs from scikit-learn's single k-means run): k-means
          (greedy k-means++ seeding, then Lloyd) is run from three seedings on each
          of three scales of the data: features standardised to unit variance (so
          units do not drive the clustering), the raw scale (scikit-learn's), and
          whitened. Every distinct partition starts a *short EM* of at most 10
          iterations (stopped once the mean log-likelihood changes by less than
          0.01), and the long EM continues from the candidate with the highest
          log-likelihood ("short-EM" of Biernacki, Celeux and Govaert 2003). On data
          with more than 20,000 samples, k-means and the short EM use a random
          subsample of 20,000. If any of the ``*_init`` arrays is given, no short EM
          runs: the lowest-inertia standardised k-means partition supplies the
          parameters that are not given.
        * ``"k-means++"``: responsibilities one-hot at k-means++ seeds (raw scale).
        * ``"random"``: uniform random responsibilities, normalised per sample.
        * ``"random_from_data"``: one-hot at ``n_components`` distinct random samples.
    weights_init : array-like of shape (n_components,), optional
        Initial weights (non-negative, summing to one).
    means_init : array-like of shape (n_components, n_features), optional
        Initial means.
    precisions_init : array-like, optional
        Initial precisions (inverse covariances) in the layout of ``covariance_type``:
        (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    random_state : None, int or numpy.random.Generator, optional
        Seed for the initialisation.
    warm_start : bool, default=False
        If true and the model is fitted (with the same ``n_components`` and
        ``covariance_type``), ``fit`` continues from the last solution (one
        initialisation, ``n_init`` ignored).
    verbose : int, default=0
        1 prints each initialisation's result, 2 also every ``verbose_interval``-th
        iteration.
    verbose_interval : int, default=10
        Iterations between messages when ``verbose=2``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        In the layout of ``covariance_type``.
    precisions_ : ndarray
        Inverse covariances, same layout.
    precisions_cholesky_ : ndarray
        Cholesky factors ``P`` of the precisions (``Lambda = P P'``).
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation (the short EM of ``"kmeans"``
        initialisation is not counted).
    lower_bound_ : float
        Mean log-likelihood of the parameters before the last M-step (scikit-learn's
        meaning).
    log_likelihood_trace_ : ndarray
        Mean log-likelihood at every iteration of the best initialisation; never
        decreases (EM's monotonicity).
    n_features_in_ : int
    reg_covar_ : ndarray of shape (n_features,)
        What the M-step added to each feature's diagonal entry, in the data's
        squared units: ``reg_covar * var_j`` with ``reg_covar_scale="variance"``
        (the same mean-variance amount for every feature with ``spherical``),
        ``reg_covar`` for every feature with ``"absolute"``.
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    params_ : GaussianMixtureParams
        The fitted mixture.
    degenerate_components_ : ndarray of int
        Components judged degenerate (see Notes); empty if none.

    Notes
    -----
    *Degenerate components.* After fitting, component k is flagged when it has
    fewer effective points ``N_k = n w_k`` than needed to estimate its own
    covariance (d + 1 for ``full``, 2 for ``diag`` and ``spherical``, 1 for
    ``tied``), or when its own scatter, the covariance minus ``reg_covar_``, has a
    variance below 1e-6 times the data's variance in some direction (measured
    with features standardised to unit variance; for ``full``/``tied`` the
    smallest eigenvalue). Such a component sits on a few (near-)duplicate
    points or a lower-dimensional set, and its likelihood is inflated without
    bound; a :class:`DegenerateComponentWarning` says what to do, and
    :meth:`bic`, :meth:`aic` and :meth:`icl` return ``+inf`` so that model
    selection never picks the fit. A covariance that stops being positive
    definite during EM raises :class:`~bayesgmm.DegenerateCovarianceError`.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    >>> gm = EMGaussianMixture(2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 1)
    array([-3.1,  2.9])
    >>> gm.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist() in ([0, 1], [1, 0])
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        reg_covar_scale: str = "variance",
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.reg_covar_scale = reg_covar_scale
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # -------------------------------------------------------------- validation
    def _validated(self) -> dict[str, Any]:
        """Check every constructor parameter; return the validated copies."""
        v: dict[str, Any] = {}
        v["n_components"] = check_int(self.n_components, "n_components", minimum=1)
        v["covariance_type"] = check_option(
            self.covariance_type, "covariance_type", COVARIANCE_TYPES
        )
        v["tol"] = check_float(self.tol, "tol", minimum=0.0)
        v["reg_covar"] = check_float(self.reg_covar, "reg_covar", minimum=0.0)
        v["reg_covar_scale"] = check_option(
            self.reg_covar_scale, "reg_covar_scale", REG_COVAR_SCALES
        )
        v["max_iter"] = check_int(self.max_iter, "max_iter", minimum=0)
        v["n_init"] = check_int(self.n_init, "n_init", minimum=1)
        v["init_params"] = check_option(self.init_params, "init_params", INIT_PARAMS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(message("warm_start", "a bool", self.warm_start))
        v["verbose"] = check_int(self.verbose, "verbose", minimum=0)
        v["verbose_interval"] = check_int(self.verbose_interval, "verbose_interval", minimum=1)
        v["rng"] = check_random_state(self.random_state)
        return v

    def _validated_inits(
        self, n_components: int, n_features: int, covariance_type: str
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        k, d = n_components, n_features
        weights = means = precisions = None
        if self.weights_init is not None:
            weights = _float_array(self.weights_init, "weights_init")
            if weights.shape != (k,):
                raise ValueError(
                    message(
                        "weights_init",
                        f"shape ({k},) for n_components={k}",
                        f"shape {weights.shape}",
                        raw=True,
                    )
                )
            if not (np.isfinite(weights).all() and (weights >= 0).all()):
                raise ValueError(message("weights_init", "finite non-negative values", weights))
            if abs(weights.sum() - 1.0) > 1e-6:
                raise ValueError(
                    message(
                        "weights_init", "values summing to 1", f"sum {weights.sum()!r}", raw=True
                    )
                )
            weights = weights / weights.sum()
        if self.means_init is not None:
            means = _float_array(self.means_init, "means_init")
            if means.shape != (k, d):
                raise ValueError(
                    message(
                        "means_init",
                        f"shape ({k}, {d}) for n_components={k} and {d} feature(s)",
                        f"shape {means.shape}",
                        raw=True,
                    )
                )
            if not np.isfinite(means).all():
                raise ValueError(message("means_init", "finite values", means))
        if self.precisions_init is not None:
            precisions = _float_array(self.precisions_init, "precisions_init")
            shape = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[
                covariance_type
            ]
            if precisions.shape != shape:
                raise ValueError(
                    message(
                        "precisions_init",
                        f"shape {shape} for covariance_type={covariance_type!r}",
                        f"shape {precisions.shape}",
                        raw=True,
                    )
                )
            if not np.isfinite(precisions).all():
                raise ValueError(message("precisions_init", "finite values", precisions))
            _cholesky_of_precisions(precisions, covariance_type)  # checks definiteness
        return weights, means, precisions

    # -------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> EMGaussianMixture:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; a pandas DataFrame keeps its column names in ``feature_names_in_``.
        y : ignored
            Accepted for scikit-learn compatibility.

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of every sample.

        A final E-step runs after the last M-step, so the labels equal
        ``fit(X).predict(X)``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        self._fit(X)
        return self.predict(X)

    def _fit(self, X: Any) -> None:
        """Validate, then run every initialisation and keep the best (see ``_fit_loop``).

        A Dask array is not read into memory: every EM iteration maps the E-step
        statistics over its row blocks and adds them (only K x d x d arrays leave
        the workers), while k-means and the short EM of the default start see a
        uniform sample of at most 20,000 rows. With the same initial parameters
        the fit equals the in-memory fit up to the order of floating-point sums.
        """
        v = self._validated()
        dask_input = is_dask_array(X)
        if dask_input:
            data, feature_names = check_dask_array(X), None
        else:
            data, feature_names = check_array(X)
        n, d = data.shape
        k, kind = v["n_components"], v["covariance_type"]
        if n < k:
            raise ValueError(
                message("X", f"at least n_components={k} samples", f"{n} sample(s)", raw=True)
            )
        inits = self._validated_inits(k, d, kind)
        continuing = (
            bool(self.warm_start)
            and hasattr(self, "params_")
            and self.params_.covariance_type == kind
            and self.params_.n_components == k
        )
        if continuing:
            check_n_features(data, self.n_features_in_)
        rng = v["rng"]

        # Work in a centred frame: the expanded quadratic form loses precision
        # when the data sit far from the origin (see bayesgmm._gaussian).
        Xt: np.ndarray | _DaskRows
        if dask_input:
            shift = column_means(data)
            Xt = _DaskRows(data, shift)
            sample = sample_rows(data, _SHORT_EM_MAX_SAMPLES, rng)
            init_data = (np.ascontiguousarray((sample - shift).T), sample)
            data_variance = Xt.variance()  # one chunked pass over the centred blocks
        else:
            shift = data.mean(axis=0)
            Xt = np.empty((d, n))
            np.subtract(data.T, shift[:, None], out=Xt)
            init_data = (Xt, data)
            data_variance = Xt.var(axis=1)
        # What the M-step adds to the covariance diagonals, per feature, in data units.
        v["data_variance"] = data_variance
        v["reg"] = _regularisation(v["reg_covar"], v["reg_covar_scale"], data_variance, shift, kind)

        n_init = 1 if continuing else v["n_init"]
        with _compute_pool(init_data[1].shape[0], d, kind) as pool:
            best = self._fit_loop(Xt, init_data, shift, inits, v, rng, pool, n_init, continuing)
        self._finish_fit(best, shift, n, d, kind, v, feature_names)

    def _finish_fit(
        self,
        best: _State,
        shift: np.ndarray,
        n: int,
        d: int,
        kind: str,
        v: dict[str, Any],
        feature_names: list[str] | None,
    ) -> None:
        if not best.converged and v["max_iter"] > 0:
            warnings.warn(
                f"EM did not converge within max_iter={v['max_iter']} iterations (tol="
                f"{v['tol']:g}). Increase max_iter or tol, try n_init > 1, or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_fitted(best, shift, n, d, kind, v, feature_names)

    def _fit_loop(
        self,
        Xt: np.ndarray | _DaskRows,
        init_data: tuple[np.ndarray, np.ndarray],
        shift: np.ndarray,
        inits: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
        v: dict[str, Any],
        rng: np.random.Generator,
        pool: _Pool,
        n_init: int,
        continuing: bool,
    ) -> _State:
        """Run every initialisation; return the one with the best lower bound.

        ``init_data`` is ``(Xt, X)`` the initialisation sees: all rows in memory,
        a sample of rows for Dask input.
        """
        best: _State | None = None
        for init in range(n_init):
            if continuing:
                state = self._warm_state(shift)
                state.lower_bound = float(self.lower_bound_)
            else:
                state = self._initial_state(*init_data, shift, inits, v, rng, pool)
            if v["max_iter"] == 0:
                result = state
                result.lower_bound = -np.inf
            else:
                result = _run_em(
                    Xt,
                    state,
                    covariance_type=v["covariance_type"],
                    reg_covar=v["reg"],
                    max_iter=v["max_iter"],
                    tol=v["tol"],
                    verbose=v["verbose"],
                    verbose_interval=v["verbose_interval"],
                    pool=pool,
                )
            if v["verbose"]:
                status = "converged" if result.converged else "did not converge"
                print(
                    f"Initialization {init}: {status} after {result.n_iter} iterations, "
                    f"lower bound {result.lower_bound:.6f}"
                )
            if best is None or result.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
                best = result
        assert best is not None
        return best

    def _warm_state(self, shift: np.ndarray) -> _State:
        p = self.params_
        return _State(
            p.weights.copy(), p.means - shift, p.covariances.copy(), p.precisions_cholesky.copy()
        )

    def _initial_state(
        self,
        Xt: np.ndarray,
        X: np.ndarray,
        shift: np.ndarray,
        inits: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
        v: dict[str, Any],
        rng: np.random.Generator,
        pool: _Pool,
    ) -> _State:
        k, kind, reg = v["n_components"], v["covariance_type"], v["reg"]
        weights, means, precisions = inits
        n = X.shape[0]
        given = [a is not None for a in inits]
        if all(given):
            assert weights is not None and means is not None and precisions is not None
            return _State(weights, means - shift, None, _cholesky_of_precisions(precisions, kind))
        method = v["init_params"]
        if method == "kmeans" and k == 1:
            state = _state_from_responsibilities(Xt, np.ones((n, 1)), kind, reg)
        elif method == "kmeans":
            # k-means and the short EM see at most _SHORT_EM_MAX_SAMPLES samples.
            sub = Xt
            if n > _SHORT_EM_MAX_SAMPLES:
                sub = Xt[:, np.sort(rng.choice(n, size=_SHORT_EM_MAX_SAMPLES, replace=False))]
            states = [
                _state_from_responsibilities(sub, _one_hot(labels, k), kind, reg)
                for labels in _kmeans_candidates(sub.T, k, rng)
            ]
            if any(given) or len(states) == 1:
                state = states[0]
            else:
                state = self._short_em(sub, states, kind, reg, pool)
        elif method == "k-means++":
            from bayesgmm._kmeans import kmeans_plusplus

            _, indices = kmeans_plusplus(Xt.T, k, rng)
            resp = np.zeros((n, k))
            resp[indices, np.arange(k)] = 1.0
            state = _state_from_responsibilities(Xt, resp, kind, reg)
        elif method == "random":
            resp = rng.uniform(size=(n, k))
            resp /= resp.sum(axis=1, keepdims=True)
            state = _state_from_responsibilities(Xt, resp, kind, reg)
        else:
            indices = rng.choice(n, size=k, replace=False)
            resp = np.zeros((n, k))
            resp[indices, np.arange(k)] = 1.0
            state = _state_from_responsibilities(Xt, resp, kind, reg)
        if weights is not None:
            state.weights = weights
        if means is not None:
            state.means = means - shift
        if precisions is not None:
            state.precisions_cholesky = _cholesky_of_precisions(precisions, kind)
            state.covariances = None
        return state

    @staticmethod
    def _short_em(
        Xt: np.ndarray, states: list[_State], kind: str, reg: np.ndarray, pool: _Pool
    ) -> _State:
        """Short EM from every candidate; keep the one with the best log-likelihood."""
        best: _State | None = None
        error: DegenerateCovarianceError | None = None
        for state in states:
            try:
                result = _run_em(
                    Xt,
                    state,
                    covariance_type=kind,
                    reg_covar=reg,
                    max_iter=_SHORT_EM_ITER,
                    tol=_SHORT_EM_TOL,
                    pool=pool,
                )
            except DegenerateCovarianceError as exc:
                error = exc
                continue
            # EM never lowers the likelihood, so the last lower bound rates the run.
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        if best is None:
            assert error is not None
            raise error
        return _State(best.weights, best.means, best.covariances, best.precisions_cholesky)

    def _set_fitted(
        self,
        state: _State,
        shift: np.ndarray,
        n: int,
        d: int,
        kind: str,
        v: dict[str, Any],
        feature_names: list[str] | None,
    ) -> None:
        covariances = state.covariances
        if covariances is None:  # max_iter=0 with precisions_init: invert the precisions
            covariances = _covariances_from_cholesky(state.precisions_cholesky, kind)
        params = GaussianMixtureParams(state.weights, state.means + shift, covariances, kind)
        data_variance, reg = v["data_variance"], v["reg"]
        degenerate = _degenerate_components(params, n, data_variance, reg)
        if v["reg_covar_scale"] == "absolute":
            _warn_if_reg_covar_dominates(data_variance, v["reg_covar"])
        # Everything is computed; now change the estimator's state.
        self.params_ = params
        self.weights_ = params.weights.copy()
        self.means_ = params.means.copy()
        self.covariances_ = params.covariances.copy()
        self.precisions_cholesky_ = state.precisions_cholesky.copy()
        self.precisions_ = _precisions_from_cholesky(self.precisions_cholesky_, kind)
        self.converged_ = bool(state.converged)
        self.n_iter_ = int(state.n_iter)
        self.lower_bound_ = float(state.lower_bound)
        self.log_likelihood_trace_ = np.asarray(state.trace, dtype=float)
        self.n_features_in_ = d
        self.reg_covar_ = reg.copy()
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.degenerate_components_ = degenerate
        if degenerate.size:
            warnings.warn(
                f"Component(s) {degenerate.tolist()} are degenerate: they sit on fewer "
                "points than their covariance needs, or on (near-)duplicate points or a "
                "lower-dimensional set, and their likelihood is inflated. Reduce "
                "n_components, use a constrained covariance_type ('diag', 'tied'), "
                "increase reg_covar, or remove duplicated points; bic/aic/icl return inf "
                "for this fit.",
                DegenerateComponentWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------- prediction
    def _check_X(self, X: Any) -> np.ndarray:
        check_fitted(self)
        array, _ = check_array(X)
        check_n_features(array, self.n_features_in_)
        return array

    def _lazy(self, X: Any, method: str, n_columns: int | None) -> Any:
        """Apply a ``GaussianMixtureParams`` method lazily to the row blocks of a Dask array."""
        check_fitted(self)
        data = check_dask_array(X)
        check_n_features(data, self.n_features_in_)
        return map_rows(getattr(self.params_, method), data, n_columns)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log density of the mixture at every sample, ``log sum_k w_k N(x_i | mu_k, Sigma_k)``.

        Returns
        -------
        ndarray of shape (n_samples,)
            A lazy Dask array when ``X`` is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy(X, "score_samples", None)
        array = self._check_X(X)
        return self.params_.score_samples(array)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per sample.

        Returns
        -------
        float
        """
        return float(self.score_samples(X).mean())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities ``p(z_i = k | x_i)``.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            A lazy Dask array when ``X`` is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy(X, "predict_proba", self.params_.n_components)
        array = self._check_X(X)
        return self.params_.predict_proba(array)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of every sample.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.predict_proba(X).argmax(axis=1)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : None, int or numpy.random.Generator, optional

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Grouped by component, as scikit-learn returns them.
        labels : ndarray of shape (n_samples,)
        """
        check_fitted(self)
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_state)
        return self.params_.sample(n_samples, rng)

    # ------------------------------------------------------- model selection
    def _n_parameters(self) -> int:
        return self.params_.n_parameters()

    def bic(self, X: Any) -> float:
        """Bayesian information criterion, ``-2 log L + p log n`` (lower is better).

        Returns ``+inf`` when the fit has degenerate components, so that model
        selection never picks it for its inflated likelihood.

        Returns
        -------
        float
        """
        array = self._check_X(X)
        if self.degenerate_components_.size:
            return float("inf")
        n = array.shape[0]
        return float(-2.0 * self.score(array) * n + self._n_parameters() * np.log(n))

    def aic(self, X: Any) -> float:
        """Akaike information criterion, ``-2 log L + 2 p`` (lower is better).

        ``+inf`` when the fit has degenerate components, as for :meth:`bic`.

        Returns
        -------
        float
        """
        array = self._check_X(X)
        if self.degenerate_components_.size:
            return float("inf")
        n = array.shape[0]
        return float(-2.0 * self.score(array) * n + 2.0 * self._n_parameters())

    def icl(self, X: Any) -> float:
        """Integrated completed likelihood criterion, BIC plus twice the classification entropy.

        ``ICL = BIC + 2 EN`` with ``EN = -sum_i sum_k r_ik log r_ik`` (Biernacki,
        Celeux and Govaert 2000), in the sign convention of :meth:`bic` (lower is
        better, as mclust's ICL with the sign flipped). ``+inf`` if degenerate.

        Returns
        -------
        float
        """
        array = self._check_X(X)
        if self.degenerate_components_.size:
            return float("inf")
        resp = self.predict_proba(array)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -float(np.where(resp > 0, resp * np.log(resp), 0.0).sum())
        return self.bic(array) + 2.0 * entropy

    # -------------------------------------------------------------------- io
    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Save the fitted model (see :func:`bayesgmm.io.save`)."""
        from bayesgmm.io import save

        save(self, path, overwrite=overwrite)

    def _export_state(self) -> dict[str, Any]:
        """JSON-able state from which :meth:`_import_state` rebuilds this model."""
        check_fitted(self)
        params = {}
        for name, value in self.get_params().items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(
                value, (np.random.Generator, np.random.RandomState, np.random.SeedSequence)
            ):
                value = None  # a generator's state is not kept
            elif isinstance(value, np.generic):
                value = value.item()
            params[name] = value
        state: dict[str, Any] = {
            "class": type(self).__name__,
            "params": params,
            "mixture": self.params_.to_dict(),
            "precisions_cholesky": self.precisions_cholesky_.tolist(),
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "lower_bound": None if not np.isfinite(self.lower_bound_) else self.lower_bound_,
            "log_likelihood_trace": self.log_likelihood_trace_.tolist(),
            "n_features_in": self.n_features_in_,
            "reg_covar": self.reg_covar_.tolist(),
            "degenerate_components": self.degenerate_components_.tolist(),
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = [str(s) for s in self.feature_names_in_]
        return state

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> EMGaussianMixture:
        """Rebuild a fitted model from :meth:`_export_state`'s dict.

        Files written before ``reg_covar_scale`` existed were fitted with
        scikit-learn's absolute ``reg_covar``: they load with
        ``reg_covar_scale="absolute"`` and ``reg_covar_`` equal to ``reg_covar``
        for every feature.
        """
        arguments = dict(state["params"])
        older = "reg_covar_scale" not in arguments
        if older:
            arguments["reg_covar_scale"] = "absolute"
        model = cls(**arguments)
        params = GaussianMixtureParams.from_dict(state["mixture"])
        kind = params.covariance_type
        model.params_ = params
        model.weights_ = params.weights.copy()
        model.means_ = params.means.copy()
        model.covariances_ = params.covariances.copy()
        model.precisions_cholesky_ = np.asarray(state["precisions_cholesky"], dtype=float)
        model.precisions_ = _precisions_from_cholesky(model.precisions_cholesky_, kind)
        model.converged_ = bool(state["converged"])
        model.n_iter_ = int(state["n_iter"])
        bound = state["lower_bound"]
        model.lower_bound_ = -np.inf if bound is None else float(bound)
        model.log_likelihood_trace_ = np.asarray(state["log_likelihood_trace"], dtype=float)
        model.n_features_in_ = int(state["n_features_in"])
        if older:
            reg = np.full(model.n_features_in_, float(arguments["reg_covar"]))
        else:
            reg = np.asarray(state["reg_covar"], dtype=float)
        if reg.shape != (model.n_features_in_,):
            raise ValueError(
                message("reg_covar", f"shape ({model.n_features_in_},)", f"{reg.shape}", raw=True)
            )
        model.reg_covar_ = reg
        if state.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        model.degenerate_components_ = np.asarray(state["degenerate_components"], dtype=np.intp)
        return model


# ------------------------------------------------------------------ helpers


def _float_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise TypeError(message(name, "an array of real numbers", value)) from None
    if np.iscomplexobj(array):
        raise TypeError(message(name, "real numbers", "complex values", raw=True))
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(message(name, "an array of real numbers", f"dtype {array.dtype}", raw=True))
    return array.astype(np.float64)


def _cholesky_of_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Lower Cholesky factors of the precisions (``Lambda = P P'``), as scikit-learn."""
    if covariance_type in ("full", "tied"):
        stack = precisions[None] if covariance_type == "tied" else precisions
        if not np.allclose(stack, np.swapaxes(stack, -1, -2), rtol=1e-8, atol=0):
            raise ValueError(
                message("precisions_init", "symmetric matrices", "non-symmetric matrices", raw=True)
            )
        out = np.empty_like(stack)
        for k, matrix in enumerate(stack):
            try:
                out[k] = linalg.cholesky(matrix, lower=True, check_finite=False)
            except linalg.LinAlgError:
                raise ValueError(
                    message(
                        "precisions_init",
                        "positive definite matrices",
                        f"a matrix that is not positive definite at index {k}",
                        raw=True,
                    )
                ) from None
        return out[0] if covariance_type == "tied" else out
    if not (precisions > 0).all():
        raise ValueError(message("precisions_init", "positive values", precisions))
    return np.sqrt(precisions)


def _precisions_from_cholesky(chol: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("full", "tied"):
        return chol @ np.swapaxes(chol, -1, -2)
    return chol**2


def _covariances_from_cholesky(chol: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("full", "tied"):
        precisions = _precisions_from_cholesky(chol, covariance_type)
        covariances = np.linalg.inv(precisions)
        return 0.5 * (covariances + np.swapaxes(covariances, -1, -2))
    return 1.0 / chol**2


def _warn_if_reg_covar_dominates(data_variance: np.ndarray, reg_covar: float) -> None:
    """Warn when an absolute ``reg_covar`` is not small next to a feature's variance.

    With ``reg_covar_scale="absolute"`` (scikit-learn's semantics) ``reg_covar``
    is added to the covariances in the data's squared units, so on data measured
    in small units (variances near 1e-7, say) the default 1e-6 swamps the
    clusters' own spread and EM merges them. A feature whose variance is below
    ``1000 * reg_covar`` triggers the warning; constant features are left to the
    degenerate-component check. With ``"variance"`` the amount scales with each
    feature's variance and this is not called.
    """
    varying = data_variance > 0
    small = np.flatnonzero(varying & (reg_covar > _REG_COVAR_SHARE * data_variance))
    if small.size == 0:
        return
    smallest = float(data_variance[small].min())
    warnings.warn(
        f"reg_covar={reg_covar:g} is not small next to the variance of feature(s) "
        f"{small.tolist()} (smallest {smallest:.3g}): it is added to every covariance in "
        "the data's squared units (reg_covar_scale='absolute'), so it dominates the "
        "clusters' own spread and can merge them. Use reg_covar_scale='variance' (the "
        "default: reg_covar times each feature's variance). Or Standardise X (or rescale it "
        "to larger units), or set reg_covar in the data's units, for example "
        f"reg_covar={1e-6 * smallest:.3g}.",
        UserWarning,
        stacklevel=6,
    )


def _degenerate_components(
    params: GaussianMixtureParams, n_samples: int, data_variance: np.ndarray, reg: np.ndarray
) -> np.ndarray:
    """Return the indices of degenerate components (rule in :class:`EMGaussianMixture`'s Notes).

    ``reg`` is the per-feature amount the M-step added to the diagonals
    (``reg_covar_``); it is taken off before the scatter is judged.
    """
    k, d, kind = params.n_components, params.n_features, params.covariance_type
    needed = {"full": d + 1, "tied": 1, "diag": 2, "spherical": 2}[kind]
    too_few = params.weights * n_samples < needed
    scale = np.where(data_variance > 0, data_variance, 1.0)
    cov = params.covariances
    if kind in ("full", "tied"):
        stack = cov[None] if kind == "tied" else cov
        inv_sd = 1.0 / np.sqrt(scale)
        standardised = (stack - np.diag(reg)) * inv_sd[:, None] * inv_sd[None, :]
        smallest = np.linalg.eigvalsh(standardised)[:, 0]
        if kind == "tied":
            smallest = np.full(k, smallest[0])
    elif kind == "diag":
        smallest = ((cov - reg) / scale).min(axis=1)
    else:
        smallest = (cov - reg.mean()) / scale.max()
    flat = smallest < _DEGENERATE_RELATIVE_VARIANCE
    return np.flatnonzero(too_few | flat)
