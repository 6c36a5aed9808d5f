"""The coordinate-ascent driver of :class:`bayesgmm.DPGaussianMixture`.

The closed-form updates are in :mod:`bayesgmm._cavi`; this module runs them:
restarts (:func:`run_cavi`), the iteration with its merge moves and adaptive
over-relaxation, and the two sources of rows an E-step reads. A fit leaves a
:class:`CAVIPosterior`, the object the estimator asks for summaries, the
predictive density, draws and its saved state.

Row sources
    :class:`InMemoryRows` holds the centred data and the (n, T) responsibilities
    of the last E-step; :class:`ChunkedRows` holds a Dask array and maps a block
    function over its row blocks, adding the results on the workers, so that
    only (T, d, d)-sized statistics, the (T, T) overlap ``R' R`` and one number
    per merge candidate leave them. Both answer the same four questions
    (:class:`RowSource`), so the driver does not know where the rows are.

Merge moves (Hughes and Sudderth 2013)
    Pairs of components whose responsibility columns overlap most (cosine
    similarity) are merged greedily while the exact ELBO at the merged
    responsibilities rises; it is computed from the summed statistics and the
    entropy change ``sum_i [f(r_ij + r_ik) - f(r_ij) - f(r_ik)]``, ``f(x) = x log x``.

Over-relaxation (Salakhutdinov and Roweis 2003)
    Every iteration also proposes the globals computed from statistics
    extrapolated along their last change, ``S + eta (S - S_prev)``; the proposal
    is kept when the next E-step shows a higher ELBO (eta then doubles, up to 64),
    otherwise the plain update is used and eta returns to 1. The ELBO trace stays
    monotone.

References
----------
Hughes, M. C. and Sudderth, E. B. (2013). Memoized online variational inference
for Dirichlet process mixture models. NeurIPS 26, 1133-1141.
Kurihara, K., Welling, M. and Vlassis, N. (2007). Accelerated variational Dirichlet
process mixtures. NeurIPS 19, 761-768.
Salakhutdinov, R. and Roweis, S. (2003). Adaptive overrelaxed bound optimization
methods. ICML 2003, 664-671.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.special import xlogy

from bayesgmm import _cavi
from bayesgmm._chunks import map_reduce, sample_rows_with_weights
from bayesgmm._gaussian import (
    SufficientStatistics,
    e_step_statistics,
    statistics_from_responsibilities,
)
from bayesgmm._missing import missingness_patterns

__all__ = [
    "CAVIPosterior",
    "CAVIRun",
    "CAVISettings",
    "ChunkedRows",
    "InMemoryRows",
    "MissingInMemoryRows",
    "RowSource",
    "chunked_covariance",
    "run_cavi",
]

# Points used by the k-means initialisation (it is only a starting point).
INIT_SUBSAMPLE = 5000
# Largest step of the over-relaxed extrapolation.
_MAX_OVERRELAXATION = 64.0
# Largest number of iterations between two merge attempts.
_MAX_MERGE_GAP = 32


@dataclass(frozen=True)
class CAVIPosterior:
    """The mean-field posterior fitted by CAVI: every global factor of :mod:`bayesgmm._cavi`.

    Its predictive density is exact under q: a mixture of Student-t densities
    (Bishop 2006, eq. 10.81) with weights ``E_q[pi_k]``.
    """

    state: _cavi.GlobalState
    prior: _cavi.ComponentPrior
    method: ClassVar[str] = "cavi"

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Posterior means of the weights, component means, covariances (layout) and alpha."""
        state = self.state
        return (
            _cavi.expected_weights(state.stick_a, state.stick_b),
            state.components.mean,
            _cavi.posterior_covariances(state.components),
            float(state.concentration.mean),
        )

    def weighted_log_predictive(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k] + log St_k(x_i)``, shape (n, T)."""
        log_t = _cavi.predictive_log_density(X, self.state.components)
        with np.errstate(divide="ignore"):
            return log_t + np.log(_cavi.expected_weights(self.state.stick_a, self.state.stick_b))

    def weighted_log_predictive_observed(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k] + log St_k(x_io)`` on each row's observed coordinates, shape (n, T)."""
        log_t = _cavi.predictive_log_density_observed(X, self.state.components)
        with np.errstate(divide="ignore"):
            return log_t + np.log(_cavi.expected_weights(self.state.stick_a, self.state.stick_b))

    def draws(self, n_draws: int, rng: np.random.Generator) -> _cavi.ParameterDraws:
        """Fresh draws from q."""
        return _cavi.draw_parameters(self.state, self.prior, n_draws, rng)

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw a component with probability ``E_q[pi_k]``, then a point from its Student-t."""
        weights = _cavi.expected_weights(self.state.stick_a, self.state.stick_b)
        weights = weights / weights.sum()
        labels = np.sort(rng.choice(weights.size, size=n_samples, p=weights))
        return _cavi.predictive_sample(self.state.components, labels, rng), labels

    def to_dict(self) -> dict[str, Any]:
        """Return the components, sticks and concentration as lists."""
        state = self.state
        comps = state.components
        conc = state.concentration
        return {
            "components": {
                "beta": comps.beta.tolist(),
                "mean": comps.mean.tolist(),
                "dof": comps.dof.tolist(),
                "scale": comps.scale.tolist(),
            },
            "sticks": {"a": state.stick_a.tolist(), "b": state.stick_b.tolist()},
            "concentration": {
                "fixed": conc.fixed,
                "prior_shape": conc.prior_shape,
                "prior_rate": conc.prior_rate,
                "shape": conc.shape,
                "rate": conc.rate,
            },
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], prior: _cavi.ComponentPrior) -> CAVIPosterior:
        """Rebuild from :meth:`to_dict`'s entries of a saved model."""
        c = state["components"]
        comps = _cavi.ComponentPosterior(
            prior.covariance_type,
            np.asarray(c["beta"], float),
            np.asarray(c["mean"], float),
            np.asarray(c["dof"], float),
            np.asarray(c["scale"], float),
        )
        q = state["concentration"]
        conc = _cavi.Concentration(
            q["fixed"],
            float(q["prior_shape"]),
            float(q["prior_rate"]),
            float(q["shape"]),
            float(q["rate"]),
        )
        sticks = state["sticks"]
        glob = _cavi.GlobalState(
            comps, np.asarray(sticks["a"], float), np.asarray(sticks["b"], float), conc
        )
        return cls(glob, prior)


@dataclass(frozen=True)
class CAVIRun:
    """The outcome of one CAVI run (or the best of several).

    ``trace`` holds the ELBO after every E-step; ``expected_counts`` the
    ``N_k = sum_i q(z_i = k)`` of the last one.
    """

    posterior: CAVIPosterior
    elbo: float
    trace: np.ndarray
    converged: bool
    n_iter: int
    n_merges: int
    expected_counts: np.ndarray


# ---------------------------------------------------------------- row sources
class RowSource(Protocol):
    """Where the E-steps read the centred rows from (in memory, or Dask row blocks)."""

    @property
    def n_samples(self) -> int: ...

    @property
    def total_weight(self) -> float:
        """The number of rows, or the sum of their frequency weights."""
        ...

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        """Statistics of the starting responsibilities ("kmeans" or "random")."""
        ...

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        """Responsibilities under ``state`` and their statistics; keeps what merges need."""
        ...

    def overlap(self, active: np.ndarray) -> np.ndarray:
        """``R_A' R_A`` for the columns ``active`` of the last E-step's responsibilities."""
        ...

    def entropy_changes(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """Entropy change of merging each pair, at the last E-step's responsibilities."""
        ...


def _expected_terms(state: _cavi.GlobalState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E[log pi]`` and the expected natural parameters ``(eta, c)`` of every component."""
    eta, const = _cavi.expected_log_gaussian(state.components)
    return _cavi.expected_log_weights(state.stick_a, state.stick_b), eta, const


def _one_hot(labels: np.ndarray, t: int) -> np.ndarray:
    resp = np.zeros((labels.shape[0], t))
    resp[np.arange(labels.shape[0]), labels] = 1.0
    return resp


def _initial_responsibilities(
    X: np.ndarray,
    t: int,
    init: str,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Flat-Dirichlet responsibilities, or every row to its nearest k-means centre.

    The centres come from k-means++ seeded Lloyd iterations on at most
    ``INIT_SUBSAMPLE`` rows, weighted by ``sample_weight`` when given.
    """
    n = X.shape[0]
    if init == "random":
        return rng.dirichlet(np.ones(t), size=n)
    from bayesgmm._kmeans import assign_labels

    if n <= INIT_SUBSAMPLE:
        sub, sub_weight = X, sample_weight
    else:
        chosen = rng.choice(n, INIT_SUBSAMPLE, replace=False)
        sub = X[chosen]
        sub_weight = None if sample_weight is None else sample_weight[chosen]
    centers = _kmeans_centres(sub, sub_weight, t, rng)
    labels, _ = assign_labels(X, centers)
    return _one_hot(labels, t)


def _kmeans_centres(
    sub: np.ndarray, sub_weight: np.ndarray | None, t: int, rng: np.random.Generator
) -> np.ndarray:
    """k-means centres (at most ``t``) of rows ``sub``, the same for weights as for repeated rows.

    k-means++ draws rows by inverting the cumulative mass of the rows in their
    order, so the rows are first put in lexicographic order (equal rows side by
    side): rows with integer weights and the same rows repeated that many times,
    in any order, then give the same seeds from the same random numbers, and the
    weighted Lloyd iterations the same centres. Rows of zero weight are never seeds.
    """
    from bayesgmm._kmeans import kmeans

    if sub_weight is None or not (sub_weight > 0).any():  # no weight in the sample: the rows
        weight = np.ones(sub.shape[0])
    else:
        weight = sub_weight
    order = np.lexsort(sub.T[::-1])
    k = min(t, int((weight > 0).sum()))
    result = kmeans(sub[order], k, rng, n_init=1, max_iter=20, sample_weight=weight[order])
    return result.centers


class InMemoryRows:
    """The centred training data in memory, with the responsibilities of the last E-step.

    The merge moves read the (n, T) responsibility matrix directly. With
    ``sample_weight`` (frequency weights) every sum over rows, the statistics,
    the ELBO's data term, the overlaps and the entropies, counts row i ``w_i`` times.
    """

    def __init__(
        self, X: np.ndarray, kind: str, t: int, sample_weight: np.ndarray | None = None
    ) -> None:
        self.X = X
        self.kind = kind
        self.t = t
        self.resp = np.empty((0, t))
        self.sample_weight = sample_weight

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def total_weight(self) -> float:
        """The number of rows, or the sum of their weights."""
        w = self.sample_weight
        return float(self.X.shape[0] if w is None else w.sum())

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        self.resp = _initial_responsibilities(self.X, self.t, init, rng, self.sample_weight)
        return statistics_from_responsibilities(
            self.X, self.resp, self.kind, sample_weight=self.sample_weight
        )

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        e_log_pi, eta, const = _expected_terms(state)
        return e_step_statistics(
            self.X,
            e_log_pi,
            eta,
            const,
            self.kind,
            resp_out=self.resp,
            sample_weight=self.sample_weight,
        )

    def overlap(self, active: np.ndarray) -> np.ndarray:
        sub = self.resp[:, active]
        # a copy on one side: NumPy sends ``A.T @ A`` to BLAS syrk, which is much
        # slower than gemm with threads on a loaded machine
        if self.sample_weight is None:
            return sub.T @ sub.copy()
        return sub.T @ (sub * self.sample_weight[:, None])

    def entropy_changes(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        return _weighted_entropy_changes(self.resp, pairs, self.sample_weight)


def _weighted_entropy_changes(
    resp: np.ndarray, pairs: list[tuple[int, int]], sample_weight: np.ndarray | None
) -> np.ndarray:
    """:func:`bayesgmm._cavi.merge_entropy_change` with row i counted ``w_i`` times.

    The entropy is linear in the rows, so the weighted change is the change of
    the rows' responsibilities weighted by ``w_i``, computed here as
    ``sum_i w_i [r log r terms]`` through a weighted column-sum.
    """
    if sample_weight is None:
        return _cavi.merge_entropy_change(resp, pairs, xlogy(resp, resp).sum(axis=0))
    rlogr = sample_weight @ xlogy(resp, resp)
    out = np.empty(len(pairs))
    for p, (j, k) in enumerate(pairs):
        merged = resp[:, j] + resp[:, k]
        out[p] = rlogr[j] + rlogr[k] - float(sample_weight @ xlogy(merged, merged))
    return out


class MissingInMemoryRows(InMemoryRows):
    """Centred training data with missing entries (``NaN``), in memory.

    The E-step is :func:`bayesgmm._cavi.missing_data_statistics`: the missing
    coordinates are latent variables with the structured factor
    ``q(x_im | z_i = k)``, updated with ``q(z)``, so every ELBO in the trace is
    the ELBO of the model with the missing coordinates integrated out
    variationally (it includes the entropy of ``q(x_m | z)``). The starting
    responsibilities come from the rows with each missing entry at its
    column's mean (0 in the centred frame), as k-means needs complete rows.

    The driver's moves stay valid. Over-relaxation keeps a proposal only when
    the next E-step's exact ELBO is higher. A merge sums the statistics of two
    components, which is the update under ``q(x_m | z = j)`` taken as the
    mixture of the two components' factors; its ELBO is scored with the
    entropies of the two factors weighted by the responsibilities, a lower
    bound on the entropy of that mixture (entropy is concave), so an accepted
    merge raises the true ELBO at least as much as scored.
    """

    def __init__(self, X: np.ndarray, kind: str, t: int) -> None:
        super().__init__(X, kind, t)
        self.patterns = missingness_patterns(X)
        self.filled = np.where(np.isnan(X), 0.0, X)

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        self.resp = _initial_responsibilities(self.filled, self.t, init, rng)
        return statistics_from_responsibilities(self.filled, self.resp, self.kind)

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        if self.resp.shape[0] != self.n_samples:
            self.resp = np.empty((self.n_samples, self.t))
        return _cavi.missing_data_statistics(
            self.X, state, patterns=self.patterns, resp_out=self.resp
        )


@dataclass
class _BlockSummary:
    """What one row block's E-step sends back: its statistics and, when asked, ``R' R``."""

    stats: SufficientStatistics
    overlap: np.ndarray | None

    def __add__(self, other: _BlockSummary) -> _BlockSummary:
        overlap = (
            None if self.overlap is None or other.overlap is None else self.overlap + other.overlap
        )
        return _BlockSummary(self.stats + other.stats, overlap)


def _block_e_step(
    block: np.ndarray,
    e_log_pi: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    kind: str,
    overlap: bool,
    sample_weight: np.ndarray | None = None,
) -> _BlockSummary:
    """E-step of one centred row block (the unit of work on a Dask worker)."""
    resp = np.empty((block.shape[0], eta.shape[1])) if overlap else None
    stats = e_step_statistics(
        block, e_log_pi, eta, const, kind, resp_out=resp, sample_weight=sample_weight
    )
    if resp is None:
        return _BlockSummary(stats, None)
    weighted = resp.copy() if sample_weight is None else resp * sample_weight[:, None]
    return _BlockSummary(stats, resp.T @ weighted)


def _block_entropy_changes(
    block: np.ndarray,
    e_log_pi: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    kind: str,
    pairs: list[tuple[int, int]],
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """One block's share of the entropy change of each merge (a sum over rows)."""
    resp = np.empty((block.shape[0], eta.shape[1]))
    e_step_statistics(block, e_log_pi, eta, const, kind, resp_out=resp)
    return _weighted_entropy_changes(resp, pairs, sample_weight)


def _block_initial_statistics(
    block: np.ndarray,
    centers: np.ndarray,
    t: int,
    kind: str,
    sample_weight: np.ndarray | None = None,
) -> SufficientStatistics:
    """Statistics of one block with every row given to its nearest k-means centre."""
    from bayesgmm._kmeans import assign_labels

    labels, _ = assign_labels(block, centers)
    return statistics_from_responsibilities(
        block, _one_hot(labels, t), kind, sample_weight=sample_weight
    )


def _block_moments(block: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Column sums (first row) and cross products ``B' B`` (the rest) of one block.

    With ``sample_weight`` the weighted sums ``w' B`` and ``B' W B``.
    """
    if sample_weight is None:
        return np.vstack([block.sum(axis=0), block.T @ block])
    weighted = block * sample_weight[:, None]
    return np.vstack([weighted.sum(axis=0), weighted.T @ block])


def chunked_covariance(data: Any, center: np.ndarray, sample_weight: Any = None) -> np.ndarray:
    """Biased covariance matrix (d, d) of a Dask array's rows, in one pass.

    Parameters
    ----------
    data : dask.array.Array of shape (n_samples, n_features)
        Chunked along rows only.
    center : ndarray of shape (n_features,)
        The column means; the sums are taken of the rows minus ``center``.
    sample_weight : dask.array.Array of shape (n_samples,), optional
        Frequency weights: the weighted covariance, ``n`` their sum.

    Returns
    -------
    ndarray of shape (n_features, n_features)
    """
    if sample_weight is None:
        n = float(data.shape[0])
    else:
        n = float(sample_weight.sum().compute())
    moments = map_reduce(_block_moments, data, shift=center, sample_weight=sample_weight)
    residual = moments[0] / n
    result: np.ndarray = moments[1:] / n - np.outer(residual, residual)
    return result


class ChunkedRows:
    """Training data held as a Dask array: every pass maps a block function and adds.

    The (n, T) responsibilities are never formed. The state of the last E-step
    is kept so that the merge moves can recompute its responsibilities block by block.
    """

    def __init__(
        self, data: Any, center: np.ndarray, kind: str, t: int, sample_weight: Any = None
    ) -> None:
        self.data = data
        self.center = center
        self.kind = kind
        self.t = t
        self.sample_weight = sample_weight
        self._state: _cavi.GlobalState | None = None
        self._overlap: np.ndarray | None = None
        self._total_weight: float | None = None

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def total_weight(self) -> float:
        """The number of rows, or the sum of their weights (computed once)."""
        if self.sample_weight is None:
            return float(self.data.shape[0])
        if self._total_weight is None:
            self._total_weight = float(self.sample_weight.sum().compute())
        return self._total_weight

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        """Start from a row sample: k-means centres on it, then all rows to their nearest centre.

        With ``init="random"`` the Dirichlet responsibilities of the sampled rows
        give statistics scaled up to ``n`` rows (only a starting point). With
        weights, k-means and the statistics are weighted.
        """
        sample, weight = sample_rows_with_weights(
            self.data, INIT_SUBSAMPLE, rng, self.sample_weight
        )
        sample = sample - self.center
        n, m = self.n_samples, sample.shape[0]
        if init == "random":
            resp = rng.dirichlet(np.ones(self.t), size=m)
            stats = statistics_from_responsibilities(sample, resp, self.kind, sample_weight=weight)
            factor = (n if weight is None else self.total_weight) / (
                m if weight is None else max(float(weight.sum()), 1e-300)
            )
            return SufficientStatistics(
                self.kind, stats.nk * factor, stats.sum_x * factor, stats.sum_xx * factor, 0.0, n
            )
        centers = _kmeans_centres(sample, weight, self.t, rng)
        func = partial(_block_initial_statistics, centers=centers, t=self.t, kind=self.kind)
        result: SufficientStatistics = map_reduce(
            func, self.data, shift=self.center, sample_weight=self.sample_weight
        )
        return result

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        e_log_pi, eta, const = _expected_terms(state)
        func = partial(
            _block_e_step, e_log_pi=e_log_pi, eta=eta, const=const, kind=self.kind, overlap=overlap
        )
        summary: _BlockSummary = map_reduce(
            func, self.data, shift=self.center, sample_weight=self.sample_weight
        )
        self._state, self._overlap = state, summary.overlap
        return summary.stats

    def overlap(self, active: np.ndarray) -> np.ndarray:
        """``R_A' R_A`` at the last E-step's state (one more pass if it was not summed then)."""
        if self._overlap is None:
            assert self._state is not None
            self.e_step(self._state, overlap=True)
        assert self._overlap is not None
        return self._overlap[np.ix_(active, active)]

    def entropy_changes(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """Entropy change of merging each pair at the last E-step's state (one pass)."""
        assert self._state is not None
        e_log_pi, eta, const = _expected_terms(self._state)
        func = partial(
            _block_entropy_changes,
            e_log_pi=e_log_pi,
            eta=eta,
            const=const,
            kind=self.kind,
            pairs=pairs,
        )
        changes = map_reduce(func, self.data, shift=self.center, sample_weight=self.sample_weight)
        return np.asarray(changes, dtype=float)


# ---------------------------------------------------------------- the driver
@dataclass(frozen=True)
class CAVISettings:
    """How :func:`run_cavi` runs.

    ``truncation`` is the number of components T; ``n_init`` the restarts;
    ``max_iter`` the most iterations per restart; a restart stops when the ELBO
    per row rises by less than ``tol`` in an iteration that accepted no merge;
    ``merge`` switches the merge moves on; ``init`` ("kmeans" or "random")
    picks the starting responsibilities.
    """

    truncation: int
    n_init: int
    max_iter: int
    tol: float
    merge: bool
    init: str


def run_cavi(
    rows: RowSource,
    prior: _cavi.ComponentPrior,
    concentration: _cavi.Concentration,
    settings: CAVISettings,
    rng: np.random.Generator,
) -> CAVIRun:
    """Run CAVI from ``settings.n_init`` initialisations and keep the highest ELBO.

    Parameters
    ----------
    rows : RowSource
        The centred training rows.
    prior : ComponentPrior
    concentration : Concentration
        Prior of alpha (and the starting q(alpha)).
    settings : CAVISettings
    rng : numpy.random.Generator
        Consumed by the initialisations, one after the other.

    Returns
    -------
    CAVIRun

    Notes
    -----
    BLAS is held to one thread meanwhile (when ``threadpoolctl`` is installed):
    its threads cost more in synchronisation than they gain on the E-step's
    thin products, and on a busy machine far more.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1, user_api="blas")
    best: CAVIRun | None = None
    with limits:
        for _ in range(settings.n_init):
            run = _run_once(rows, prior, concentration, settings, rng)
            if best is None or run.elbo > best.elbo:
                best = run
    assert best is not None
    return best


def _run_once(
    rows: RowSource,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    settings: CAVISettings,
    rng: np.random.Generator,
) -> CAVIRun:
    """One CAVI run from one initialisation."""
    t, tol, merge = settings.truncation, settings.tol, settings.merge
    n = rows.total_weight
    stats = rows.initial_statistics(settings.init, rng)
    state, _, _ = _cavi.fit_globals(stats, 0.0, prior, conc)
    trace: list[float] = []
    converged = False
    n_merges = 0
    gap, next_merge = 1, 1
    n_iter = 0
    # over-relaxation: the step, the previous statistics and the plain update to fall back on
    eta = 1.0
    previous: SufficientStatistics | None = None
    fallback: _cavi.GlobalState | None = None
    for n_iter in range(1, settings.max_iter + 1):  # noqa: B007
        # a chunked pass also sums the responsibility overlaps when a merge is due
        due = merge and t > 1 and n_iter >= next_merge
        stats = rows.e_step(state, overlap=due)
        elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        if fallback is not None:
            if elbo < trace[-1]:
                state, eta, previous = fallback, 1.0, None
                stats = rows.e_step(state, overlap=due)
                elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
            else:
                eta = min(2.0 * eta, _MAX_OVERRELAXATION)
            fallback = None
        stalled = bool(trace) and (elbo - trace[-1]) < tol * n
        trace.append(elbo)
        # Merges are tried every iteration while they succeed, then at doubling
        # intervals, and always before convergence is declared.
        try_merge = merge and t > 1 and (n_iter >= next_merge or stalled)
        # The entropy of q(z) is a constant offset in every comparison at fixed
        # responsibilities; it is computed only for the merge moves' record.
        entropy = stats.log_normalizer - _cavi.data_term(stats, state) if try_merge else 0.0
        new_state, order, base = _cavi.fit_globals(
            stats, entropy, prior, state.concentration, need_elbo=try_merge
        )
        relabelled = not np.array_equal(order, np.arange(t))
        accepted = 0
        if try_merge:
            merged, accepted = _try_merges(stats, entropy, rows, prior, state.concentration, base)
            if merged is not None:
                new_state = merged
                n_merges += accepted
                gap = 1
                relabelled = True
            else:
                gap = min(2 * gap, _MAX_MERGE_GAP)
            next_merge = n_iter + gap
        if stalled and not accepted:
            converged = True
            break
        if previous is not None and not relabelled:
            proposal = _overrelaxed(stats, previous, eta, prior, new_state.concentration)
            if proposal is not None:
                fallback, new_state = new_state, proposal
        previous = None if relabelled else stats
        state = new_state
    else:
        # max_iter reached: evaluate the state left by the last update
        stats = rows.e_step(state)
        elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        if fallback is not None and elbo < trace[-1]:
            state = fallback
            stats = rows.e_step(state)
            elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        trace.append(elbo)
    return CAVIRun(
        posterior=CAVIPosterior(state, prior),
        elbo=trace[-1],
        trace=np.asarray(trace, dtype=float),
        converged=converged,
        n_iter=n_iter,
        n_merges=n_merges,
        expected_counts=np.asarray(stats.nk, dtype=float),
    )


def _overrelaxed(
    stats: SufficientStatistics,
    previous: SufficientStatistics,
    eta: float,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
) -> _cavi.GlobalState | None:
    """Globals from the extrapolated statistics, or None if they are not valid."""
    nk = stats.nk + eta * (stats.nk - previous.nk)
    if np.any(nk < 0):
        return None
    extrapolated = SufficientStatistics(
        stats.covariance_type,
        nk,
        stats.sum_x + eta * (stats.sum_x - previous.sum_x),
        stats.sum_xx + eta * (stats.sum_xx - previous.sum_xx),
        stats.log_normalizer,
        stats.n_samples,
    )
    try:
        state, order, _ = _cavi.fit_globals(extrapolated, 0.0, prior, conc, need_elbo=False)
        _cavi.expected_log_gaussian(state.components)  # raises if a scale is not PD
    except np.linalg.LinAlgError:
        return None
    if not np.array_equal(order, np.arange(nk.size)):
        return None
    return state


def _try_merges(
    stats: SufficientStatistics,
    entropy: float,
    data: RowSource,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    base_elbo: float,
) -> tuple[_cavi.GlobalState | None, int]:
    """Greedy merge moves scored by the exact ELBO at merged responsibilities.

    Candidates are the pairs of occupied components with the largest cosine
    similarity of their responsibility columns (Hughes and Sudderth 2013 use
    the correlation); each accepted merge must raise the ELBO. ``data``
    supplies the overlaps ``R' R`` and the entropy changes.
    """
    nk = stats.nk
    active = np.flatnonzero(nk > 1e-8 * max(stats.n_samples, 1))
    if active.size < 2:
        return None, 0
    gram = data.overlap(active)
    norms = np.sqrt(np.diag(gram))
    cosine = gram / np.maximum(np.outer(norms, norms), 1e-300)
    rows, cols = np.triu_indices(active.size, 1)
    scores = cosine[rows, cols]
    keep = scores > 1e-3
    n_candidates = min(int(keep.sum()), 2 * active.size)
    top = np.argsort(-np.where(keep, scores, -np.inf), kind="stable")[:n_candidates]
    if top.size == 0:
        return None, 0
    pairs = [(int(active[rows[p]]), int(active[cols[p]])) for p in top]
    delta_h = data.entropy_changes(pairs)
    best_elbo = base_elbo
    best_state = None
    current = stats
    current_entropy = entropy
    used: set[int] = set()
    accepted = 0
    for (j, k), dh in zip(pairs, delta_h, strict=True):
        if j in used or k in used:
            continue
        proposal = _cavi.merge_statistics(current, j, k)
        state, _, elbo = _cavi.fit_globals(
            proposal, current_entropy + dh, prior, conc, keep_order=False
        )
        if elbo > best_elbo:
            best_elbo, best_state = elbo, state
            current, current_entropy = proposal, current_entropy + dh
            used.update((j, k))
            accepted += 1
    return best_state, accepted
