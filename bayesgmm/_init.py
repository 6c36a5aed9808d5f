"""Starting values for EM: model-based hierarchical partitions and k-means on several scales.

The default ``"auto"`` gives EM two kinds of start and keeps the most likely
end: the partition into K groups of a model-based hierarchical agglomeration
(``"hc"``, as mclust: :mod:`bayesgmm._hc`) and the ``"kmeans"`` start, which
follows the "short-EM" strategy of Biernacki, Celeux and Govaert (2003): many
cheap candidate partitions, a few EM iterations from each, and the long EM
continued from the most likely. The other starts are scikit-learn's
(``"k-means++"``, ``"random"``, ``"random_from_data"``).

References
----------
Fraley, C. (1998). Algorithms for model-based Gaussian hierarchical clustering.
SIAM Journal on Scientific Computing 20(1), 270-281.
doi:10.1137/S1064827596311451
Biernacki, C., Celeux, G. and Govaert, G. (2003). Choosing starting values for
the EM algorithm for getting the highest likelihood in multivariate Gaussian
mixture models. Computational Statistics & Data Analysis 41(3-4), 561-575.
doi:10.1016/S0167-9473(02)00163-9
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesgmm._em_steps import EMState, Pool, run_em, state_from_responsibilities
from bayesgmm._gaussian import DegenerateCovarianceError
from bayesgmm._hc import HC_MAX_SAMPLES, hc_partitions
from bayesgmm._kmeans import kmeans, kmeans_plusplus
from bayesgmm._mclust_models import ResolvedPrior

__all__ = ["INIT_PARAMS", "GivenParameters", "Partition", "initial_state", "initial_states"]

INIT_PARAMS = ("auto", "hc", "kmeans", "k-means++", "random", "random_from_data")

# A starting partition: labels 0..K-1 for the rows ``rows`` of the data (None: all rows).
Partition = tuple[np.ndarray | None, np.ndarray]

# Short EM: at most this many iterations per candidate, stopped early once the
# mean log-likelihood changes less than _SHORT_EM_TOL.
_SHORT_EM_ITER = 10
_SHORT_EM_TOL = 1e-2
# k-means++ seedings per scale, and the most samples k-means and short EM look at.
_KMEANS_SEEDINGS = 3
SHORT_EM_MAX_SAMPLES = 20_000
# "auto" continues the long EM from this many of the most likely k-means short EMs.
_AUTO_KMEANS_STARTS = 3


@dataclass(frozen=True)
class GivenParameters:
    """User-given initial weights, means and precisions (validated; any may be None).

    The precisions are kept as their Cholesky factors, computed once when they are checked.
    """

    weights: np.ndarray | None = None
    means: np.ndarray | None = None
    precisions_cholesky: np.ndarray | None = None

    @property
    def given(self) -> list[bool]:
        return [a is not None for a in (self.weights, self.means, self.precisions_cholesky)]


def _one_hot(labels: np.ndarray, n_components: int) -> np.ndarray:
    resp = np.zeros((labels.shape[0], n_components))
    resp[np.arange(labels.shape[0]), labels] = 1.0
    return resp


def _canonical(labels: np.ndarray) -> bytes:
    """Labels renumbered by first appearance, so equal partitions compare equal."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].tobytes()


def kmeans_candidates(
    Xc: np.ndarray,
    n_components: int,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Distinct k-means partitions of the data on three scales.

    1. features standardised to unit variance (units do not drive the clustering);
    2. the raw scale (scikit-learn's choice, so its kind of start is among the candidates);
    3. whitened data (standardised and decorrelated).

    On each scale, k-means runs from three k-means++ seedings. The partitions
    come back without duplicates, the lowest-inertia standardised one first.
    With ``sample_weight`` (frequency weights) the scales, the correlation and
    k-means itself are weighted.
    """
    if sample_weight is None:
        scale = Xc.std(axis=0)
    else:
        mean = sample_weight @ Xc / sample_weight.sum()
        scale = np.sqrt(sample_weight @ np.square(Xc - mean) / sample_weight.sum())
    scale[~(scale > 0)] = 1.0
    standardised = Xc / scale
    spaces = [standardised, Xc]
    if Xc.shape[1] > 1:
        corr = np.atleast_2d(np.cov(standardised, rowvar=False, aweights=sample_weight))
        values, vectors = np.linalg.eigh(corr)
        keep = values > 1e-10 * max(values.max(), 0.0)
        if keep.any():
            spaces.append(standardised @ (vectors[:, keep] / np.sqrt(values[keep])))
    candidates: list[np.ndarray] = []
    seen: set[bytes] = set()
    for space in spaces:
        runs = [
            kmeans(space, n_components, rng, n_init=1, sample_weight=sample_weight)
            for _ in range(_KMEANS_SEEDINGS)
        ]
        for run in sorted(runs, key=lambda r: r.inertia):
            key = _canonical(run.labels)
            if key not in seen:
                seen.add(key)
                candidates.append(run.labels)
    return candidates


def _short_em_ranked(
    Xc: np.ndarray,
    states: list[EMState],
    kind: str,
    reg: np.ndarray,
    pool: Pool,
    sample_weight: np.ndarray | None = None,
) -> list[EMState]:
    """Short EM from every candidate; the ends, most likely first."""
    ends: list[EMState] = []
    error: DegenerateCovarianceError | None = None
    for state in states:
        try:
            result = run_em(
                Xc,
                state,
                covariance_type=kind,
                reg_covar=reg,
                max_iter=_SHORT_EM_ITER,
                tol=_SHORT_EM_TOL,
                pool=pool,
                sample_weight=sample_weight,
            )
        except DegenerateCovarianceError as exc:
            error = exc
            continue
        ends.append(result)
    if not ends:
        assert error is not None
        raise error
    # EM never lowers the likelihood, so the last lower bound rates the run.
    ends.sort(key=lambda end: end.lower_bound, reverse=True)
    return [EMState(e.weights, e.means, e.covariances, e.precisions_cholesky) for e in ends]


def _short_em(
    Xc: np.ndarray,
    states: list[EMState],
    kind: str,
    reg: np.ndarray,
    pool: Pool,
    sample_weight: np.ndarray | None = None,
) -> EMState:
    """Short EM from every candidate; keep the one with the best log-likelihood."""
    return _short_em_ranked(Xc, states, kind, reg, pool, sample_weight)[0]


def _subsample(
    Xc: np.ndarray, sample_weight: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """At most ``SHORT_EM_MAX_SAMPLES`` uniformly drawn rows (in order) and their weights."""
    n = Xc.shape[0]
    if n <= SHORT_EM_MAX_SAMPLES:
        return Xc, sample_weight
    rows = np.sort(rng.choice(n, size=SHORT_EM_MAX_SAMPLES, replace=False))
    return Xc[rows], None if sample_weight is None else sample_weight[rows]


def kmeans_starts(
    Xc: np.ndarray,
    n_components: int,
    covariance_type: str,
    reg: np.ndarray,
    rng: np.random.Generator,
    pool: Pool,
    n_best: int,
    sample_weight: np.ndarray | None = None,
) -> list[EMState]:
    """Return the ``n_best`` most likely short-EM ends from the multi-scale k-means partitions."""
    sub, sub_weight = _subsample(Xc, sample_weight, rng)
    states = [
        state_from_responsibilities(
            sub, _one_hot(labels, n_components), covariance_type, reg, sample_weight=sub_weight
        )
        for labels in kmeans_candidates(sub, n_components, rng, sub_weight)
    ]
    return _short_em_ranked(sub, states, covariance_type, reg, pool, sub_weight)[:n_best]


def initial_state(
    Xc: np.ndarray,
    shift: np.ndarray,
    given: GivenParameters,
    *,
    n_components: int,
    covariance_type: str,
    init_params: str,
    reg: np.ndarray,
    rng: np.random.Generator,
    pool: Pool,
    sample_weight: np.ndarray | None = None,
) -> EMState:
    """Choose starting parameters in the centred frame of ``Xc = X - shift``.

    Parameters given by the user are used as they are; the others come from
    ``init_params``. With all three given, nothing else runs. With ``"kmeans"``
    and some given, no short EM runs: the lowest-inertia standardised k-means
    partition supplies the rest. k-means and the short EM see at most
    ``SHORT_EM_MAX_SAMPLES`` rows (a uniform subsample). With
    ``sample_weight`` (frequency weights) every start is weighted: k-means,
    k-means++ and the M-steps weight the rows, and ``"random_from_data"`` draws
    rows with probability proportional to their weights.
    """
    k, kind = n_components, covariance_type
    n = Xc.shape[0]
    w = sample_weight
    if all(given.given):
        assert given.means is not None and given.weights is not None
        assert given.precisions_cholesky is not None
        return EMState(given.weights, given.means - shift, None, given.precisions_cholesky)
    if init_params == "kmeans" and k == 1:
        state = state_from_responsibilities(Xc, np.ones((n, 1)), kind, reg, sample_weight=w)
    elif init_params == "kmeans":
        sub, sub_weight = _subsample(Xc, w, rng)
        states = [
            state_from_responsibilities(
                sub, _one_hot(labels, k), kind, reg, sample_weight=sub_weight
            )
            for labels in kmeans_candidates(sub, k, rng, sub_weight)
        ]
        if any(given.given) or len(states) == 1:
            state = states[0]
        else:
            state = _short_em(sub, states, kind, reg, pool, sub_weight)
    elif init_params == "k-means++":
        _, indices = kmeans_plusplus(Xc, k, rng, sample_weight=w)
        resp = np.zeros((n, k))
        resp[indices, np.arange(k)] = 1.0
        state = state_from_responsibilities(Xc, resp, kind, reg, sample_weight=w)
    elif init_params == "random":
        resp = rng.uniform(size=(n, k))
        resp /= resp.sum(axis=1, keepdims=True)
        state = state_from_responsibilities(Xc, resp, kind, reg, sample_weight=w)
    else:
        if w is None:
            indices = rng.choice(n, size=k, replace=False)
        else:
            positive = np.flatnonzero(w > 0)
            p = w[positive] / w[positive].sum()
            chosen = rng.choice(positive.size, size=min(k, positive.size), replace=False, p=p)
            indices = positive[chosen]
        resp = np.zeros((n, k))
        resp[indices, np.arange(indices.size)] = 1.0
        state = state_from_responsibilities(Xc, resp, kind, reg)
    if given.weights is not None:
        state.weights = given.weights
    if given.means is not None:
        state.means = given.means - shift
    if given.precisions_cholesky is not None:
        state.precisions_cholesky = given.precisions_cholesky
        state.covariances = None
    return state


def hc_partition(Xc: np.ndarray, n_components: int, rng: np.random.Generator) -> Partition | None:
    """Return the hierarchical agglomeration's partition into ``n_components`` groups.

    Data with more than ``HC_MAX_SAMPLES`` rows are agglomerated on a uniform
    random subset of that many rows. None when the tree has fewer groups.
    """
    n = Xc.shape[0]
    rows = None
    if n > HC_MAX_SAMPLES:
        rows = np.sort(rng.choice(n, size=HC_MAX_SAMPLES, replace=False))
    labels = hc_partitions(Xc if rows is None else Xc[rows], [n_components]).get(n_components)
    return None if labels is None else (rows, labels)


def state_from_partition(
    Xc: np.ndarray,
    partition: Partition,
    n_components: int,
    covariance_type: str,
    reg: np.ndarray,
    prior: ResolvedPrior | None = None,
) -> EMState:
    """Run the M-step (the posterior-mode one with ``prior``) on a hard partition of some rows."""
    rows, labels = partition
    sub = Xc if rows is None else Xc[rows]
    return state_from_responsibilities(
        sub, _one_hot(labels, n_components), covariance_type, reg, prior
    )


def initial_states(
    Xc: np.ndarray,
    shift: np.ndarray,
    given: GivenParameters,
    *,
    n_components: int,
    covariance_type: str,
    init_params: str,
    reg: np.ndarray,
    rng: np.random.Generator,
    pool: Pool,
    partitions: list[Partition] | None = None,
    with_hc: bool = True,
    prior: ResolvedPrior | None = None,
    sample_weight: np.ndarray | None = None,
) -> list[EMState]:
    """Return the starts the long EM runs from; the most likely end is kept.

    ``"auto"``: the hierarchical partition (when ``with_hc``) and the best
    ``"kmeans"`` start; ``"hc"``: the hierarchical partition alone (the
    ``"kmeans"`` start if the tree cannot give K groups). ``partitions`` (from
    model selection, which grows one tree for every K) replace the
    hierarchical partition when given. With any of the ``*_init`` arrays, or
    another ``init_params``, the one start of :func:`initial_state`.

    With ``sample_weight`` (frequency weights) no hierarchical partition is
    used: the agglomeration of :mod:`bayesgmm._hc` merges rows, not weighted
    rows, so ``"auto"`` and ``"hc"`` both take the weighted ``"kmeans"`` start.
    """
    k, kind = n_components, covariance_type
    if init_params not in ("auto", "hc") or any(given.given) or k == 1 or sample_weight is not None:
        method = "kmeans" if init_params in ("auto", "hc") else init_params
        return [
            initial_state(
                Xc,
                shift,
                given,
                n_components=k,
                covariance_type=kind,
                init_params=method,
                reg=reg,
                rng=rng,
                pool=pool,
                sample_weight=sample_weight,
            )
        ]
    if partitions is None:
        found = hc_partition(Xc, k, rng) if with_hc else None
        partitions = [] if found is None else [found]
    states = []
    for partition in partitions:
        try:
            states.append(state_from_partition(Xc, partition, k, kind, reg, prior))
        except DegenerateCovarianceError:
            continue
    if init_params == "auto" or not states:
        n_best = _AUTO_KMEANS_STARTS if init_params == "auto" else 1
        states.extend(kmeans_starts(Xc, k, kind, reg, rng, pool, n_best))
    return states
