"""The replicate engine behind EM's bootstrap and the bootstrap likelihood-ratio test.

A bootstrap runs EM many times on data that differ from the original only by
their row weights (the nonparametric bootstrap's multinomial counts, the
weighted likelihood bootstrap's Dirichlet weights, the jackknife's left-out
row) or by being simulated from the fit (the parametric bootstrap). Every
replicate starts from the same fitted parameters, so the replicates are run
*together*, a batch of B at a time: the log densities of every component of
every replicate at every point are one matrix product ``phi(X) @ eta`` with
``eta`` holding the natural parameters of the B x K components side by side
(see :mod:`bayesgmm._gaussian`), and the weighted sufficient statistics of all
replicates are one product ``phi(X)' (w * R)``. The M-step is the package's own
(:func:`bayesgmm._gaussian.covariances_from_statistics` and the covariance
layout's Cholesky factor), run on all B x K components at once when the
covariance layout is per component and replicate by replicate otherwise.

With row weights ``w_i`` the E-step's responsibilities ``r_ik`` are multiplied by
``w_i`` before they are summed: the M-step then maximises the weighted
log-likelihood ``sum_i w_i log p(x_i | theta)``, which is the nonparametric
bootstrap's likelihood when ``w`` are the multinomial counts of a resample
(Efron 1979) and the weighted likelihood bootstrap's when ``w`` are Dirichlet(1,
..., 1) weights (Newton & Raftery 1994).

References
----------
Efron, B. (1979). Bootstrap methods: another look at the jackknife. Annals of
Statistics 7(1), 1-26. doi:10.1214/aos/1176344552
Newton, M. A. and Raftery, A. E. (1994). Approximate Bayesian inference with the
weighted likelihood bootstrap. JRSS B 56(1), 3-48.
doi:10.1111/j.2517-6161.1994.tb01956.x
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from bayesgmm._gaussian import (
    LAYOUTS,
    DegenerateCovarianceError,
    SufficientStatistics,
    compute_precision_cholesky,
    covariances_from_statistics,
    feature_map,
    log_mixture_density,
    n_feature_columns,
    natural_parameters,
    unpack_feature_sums,
)
from bayesgmm.params import GaussianMixtureParams
from bayesgmm.relabel import apply_permutations, relabel_draws

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = [
    "BOOTSTRAP_METHODS",
    "BootstrapWarning",
    "Replicates",
    "RowWeights",
    "SimulatedData",
    "bootstrap_tree",
    "membership_draws",
    "parameter_draws",
    "replicate_data",
    "replicate_warning",
    "run_replicates",
    "split_component",
]

# Covariance layouts whose M-step and natural parameters treat every component
# on its own, so that B replicates of K components can be stacked as B * K.
_PER_COMPONENT = frozenset({"full", "diag", "spherical"})
# Numbers (replicates x rows x max(K, feature-map width)) held by one batch.
_BATCH_NUMBERS = 4_000_000


class BootstrapWarning(UserWarning):
    """Some bootstrap replicates failed, degenerated or did not converge (they are counted)."""


@dataclass(frozen=True)
class Replicates:
    """The EM fits of a batch of replicates, in the centred frame they were run in.

    Attributes
    ----------
    weights : ndarray of shape (B, K)
    means : ndarray of shape (B, K, d)
    covariances : ndarray of shape (B, *layout shape)
    log_likelihood : ndarray of shape (B,)
        Weighted log-likelihood ``sum_i w_i log p(x_i | theta)`` at the last E-step
        (the parameters before the last M-step, as :func:`bayesgmm._em_steps.run_em`
        reports its lower bound); NaN for a failed replicate.
    n_iter : ndarray of int, shape (B,)
    converged : ndarray of bool, shape (B,)
    failed : ndarray of bool, shape (B,)
        The M-step met a covariance that is not positive definite, or the
        log-likelihood was not finite; such a replicate's parameters are NaN.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    failed: np.ndarray


@dataclass(frozen=True)
class SimulatedData:
    """Data sets simulated from a mixture on demand, one seed per replicate.

    Replicate ``b`` is always drawn from ``numpy.random.default_rng(seeds[b])``,
    so a batch can be drawn when it is needed (B data sets of n points need not
    fit in memory at once) and drawn again, identically, for another model.
    """

    params: GaussianMixtureParams
    shift: np.ndarray
    n_samples: int
    seeds: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.seeds), self.n_samples, self.params.n_features)

    def batch(self, lo: int, hi: int) -> np.ndarray:
        """Draw the centred data sets of replicates ``lo`` to ``hi - 1``: (hi - lo, n, d)."""
        return np.stack(
            [
                self.params.sample(self.n_samples, np.random.default_rng(seed))[0] - self.shift
                for seed in self.seeds[lo:hi]
            ]
        )

    def subset(self, replicates: np.ndarray) -> SimulatedData:
        """Return the same data sets, for the given replicates only."""
        return SimulatedData(self.params, self.shift, self.n_samples, self.seeds[replicates])


@dataclass(frozen=True)
class RowWeights:
    """Row weights of B replicates drawn on demand, batch by batch (see :func:`replicate_data`)."""

    method: str
    n_samples: int
    n_replicates: int
    seeds: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_replicates, self.n_samples)

    def batch(self, lo: int, hi: int) -> np.ndarray:
        """Draw the weights of replicates ``lo`` to ``hi - 1``: (hi - lo, n)."""
        n = self.n_samples
        if self.method == "jackknife":
            weights = np.ones((hi - lo, n))
            weights[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            return weights
        out = np.empty((hi - lo, n))
        for row, seed in enumerate(self.seeds[lo:hi]):
            rng = np.random.default_rng(seed)
            if self.method == "nonparametric":
                out[row] = rng.multinomial(n, np.full(n, 1.0 / n))
            else:
                gamma = rng.standard_exponential(n)
                out[row] = n * gamma / gamma.sum()
        return out


def _batch(source: np.ndarray | SimulatedData | RowWeights, lo: int, hi: int) -> np.ndarray:
    return source[lo:hi] if isinstance(source, np.ndarray) else source.batch(lo, hi)


def run_replicates(
    data: np.ndarray | SimulatedData,
    row_weights: np.ndarray | RowWeights | None,
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    covariance_type: str,
    reg_covar: np.ndarray,
    max_iter: int,
    tol: float,
    n_replicates: int | None = None,
) -> Replicates:
    """Run EM on every replicate from the same start until each converges.

    Parameters
    ----------
    data : ndarray of shape (n, d) or (B, n, d), or SimulatedData
        Centred data: shared by every replicate (which then differ by
        ``row_weights``), or one data set per replicate (drawn batch by batch
        for :class:`SimulatedData`).
    row_weights : ndarray of shape (B, n) or RowWeights, optional
        Non-negative weight of every row in every replicate; all ones if None.
    start : (weights, means, covariances)
        The starting parameters (in the centred frame): the same for all
        replicates, or one set per replicate (arrays with a leading axis of B).
    covariance_type : str
    reg_covar : ndarray of shape (d,)
        Added to the covariance diagonals by every M-step, as in the fit.
    max_iter : int
        Most EM iterations per replicate.
    tol : float
        A replicate stops when its log-likelihood changes by at most
        ``tol * |log-likelihood|`` between iterations (mclust's relative rule).
    n_replicates : int, optional
        B, needed when ``data`` is shared and ``row_weights`` is None.

    Returns
    -------
    Replicates
    """
    shared = len(data.shape) == 2
    n, d = data.shape[-2:]
    if shared:
        b = row_weights.shape[0] if row_weights is not None else int(n_replicates or 1)
    else:
        b = data.shape[0]
    k = start[0].shape[-1]
    width = n_feature_columns(d, covariance_type)
    features = feature_map(np.asarray(data), covariance_type) if shared else None
    per_batch = max(1, _BATCH_NUMBERS // (n * max(k, width)))
    parts = []
    # BLAS threads on these small products cost more than they gain (see
    # bayesgmm._em_steps.compute_pool).
    with threadpool_limits(limits=1, user_api="blas"):
        for lo in range(0, b, per_batch):
            hi = min(lo + per_batch, b)
            if features is not None:
                batch_features = features
            else:
                batch_features = np.stack(
                    [feature_map(x, covariance_type).T for x in _batch(data, lo, hi)]
                )
            batch_start = start
            if start[0].ndim == 2:
                batch_start = (start[0][lo:hi], start[1][lo:hi], start[2][lo:hi])
            parts.append(
                _run_batch(
                    batch_features,
                    None if row_weights is None else _batch(row_weights, lo, hi),
                    hi - lo,
                    batch_start,
                    covariance_type,
                    reg_covar,
                    max_iter,
                    tol,
                )
            )
    return Replicates(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("weights", "means", "covariances", "log_likelihood", "n_iter", "converged", "failed")


def _run_batch(
    features: np.ndarray,
    row_weights: np.ndarray | None,
    b: int,
    start: tuple[np.ndarray, np.ndarray, np.ndarray],
    covariance_type: str,
    reg_covar: np.ndarray,
    max_iter: int,
    tol: float,
) -> Replicates:
    """EM on ``b`` replicates at once; converged replicates leave the batch."""
    shared = features.ndim == 2
    n = features.shape[-2]
    weights0, means0, covariances0 = start
    if weights0.ndim == 2:  # one start per replicate
        weights, means, covariances = (np.array(a, dtype=float) for a in start)
        chol = np.stack([compute_precision_cholesky(c, covariance_type) for c in covariances])
    else:
        chol0 = compute_precision_cholesky(covariances0, covariance_type)
        weights = np.repeat(weights0[None], b, axis=0)
        means = np.repeat(means0[None], b, axis=0)
        covariances = np.repeat(covariances0[None], b, axis=0)
        chol = np.repeat(chol0[None], b, axis=0)
    k, d = means.shape[1:]
    log_lik = np.full(b, np.nan)
    previous = np.full(b, -np.inf)
    n_iter = np.zeros(b, dtype=np.intp)
    converged = np.zeros(b, dtype=bool)
    failed = np.zeros(b, dtype=bool)
    active = np.arange(b)
    for iteration in range(1, max_iter + 1):
        if active.size == 0:
            break
        eta, const = _natural_parameters(means[active], chol[active], covariance_type)
        with np.errstate(divide="ignore"):
            offset = const + np.log(weights[active])  # (g, K)
        w = None if row_weights is None else row_weights[active]
        g = active.size
        # Scores are laid out with the component axis in the middle, (n, K, g) or
        # (g, K, n), so that the sums over K run over long contiguous rows.
        if shared:
            columns = eta.transpose(1, 2, 0).reshape(-1, k * g)
            scores = (features @ columns).reshape(n, k, g) + offset.T[None]
            normaliser, resp = _normalise(scores)  # (n, g), (n, K, g)
            if w is not None:
                resp *= w.T[:, None, :]
                ll = np.einsum("ng,gn->g", normaliser, w)
            else:
                ll = normaliser.sum(axis=0)
            nk = resp.sum(axis=0).T  # (g, K)
            packed = (features.T @ resp.reshape(n, k * g)).reshape(-1, k, g).transpose(2, 1, 0)
        else:
            f = features[active]  # (g, width, n)
            scores = np.swapaxes(eta, 1, 2) @ f + offset[:, :, None]  # (g, K, n)
            normaliser, resp = _normalise(scores)  # (g, n), (g, K, n)
            if w is not None:
                resp *= w[:, None, :]
                ll = (normaliser * w).sum(axis=1)
            else:
                ll = normaliser.sum(axis=1)
            nk = resp.sum(axis=2)
            packed = resp @ np.swapaxes(f, 1, 2)  # (g, K, width)
        n_iter[active] = iteration
        log_lik[active] = ll
        bad = ~np.isfinite(ll)
        new = _m_step(nk, packed, covariance_type, reg_covar, n, d)
        bad |= new[4]
        good = ~bad
        idx = active[good]
        weights[idx], means[idx], covariances[idx], chol[idx] = (a[good] for a in new[:4])
        failed[active[bad]] = True
        done = good & (np.abs(ll - previous[active]) <= tol * np.abs(ll))
        converged[active[done]] = True
        previous[active] = ll
        active = active[good & ~done]
    for array in (weights, means, covariances):
        array[failed] = np.nan
    log_lik[failed] = np.nan
    return Replicates(weights, means, covariances, log_lik, n_iter, converged, failed)


def _normalise(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``logsumexp`` over axis 1 and the normalised probabilities ``exp(s - logsumexp)``."""
    top = scores.max(axis=1)
    probs = np.exp(scores - top[:, None])
    total = probs.sum(axis=1)
    probs /= total[:, None]
    with np.errstate(divide="ignore"):
        return top + np.log(total), probs


def _natural_parameters(
    means: np.ndarray, chol: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Natural parameters of ``g`` replicates: ``eta`` (g, width, K) and ``c`` (g, K)."""
    g, k, d = means.shape
    if covariance_type in _PER_COMPONENT:
        eta, const = natural_parameters(
            means.reshape(g * k, d), chol.reshape((g * k,) + chol.shape[2:]), covariance_type
        )
        return eta.reshape(-1, g, k).transpose(1, 0, 2), const.reshape(g, k)
    if covariance_type == "tied":  # the full layout's maths with the shared factor repeated
        repeated = np.broadcast_to(chol[:, None], (g, k, d, d)).reshape(g * k, d, d)
        eta, const = natural_parameters(means.reshape(g * k, d), repeated, "full")
        return eta.reshape(-1, g, k).transpose(1, 0, 2), const.reshape(g, k)
    parts = [natural_parameters(means[i], chol[i], covariance_type) for i in range(g)]
    return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])


def _stacked_precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Precision Cholesky factors of many components at once.

    For ``full`` this is the layout's ``P = (L^{-1})'`` with ``Sigma = L L'``
    (scikit-learn's ``_compute_precision_cholesky``), computed by NumPy's batched
    Cholesky and triangular solve instead of one SciPy call per component; the
    other per-component layouts are already vectorised.
    """
    if covariance_type != "full":
        return compute_precision_cholesky(covariances, covariance_type)
    try:
        lower = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise DegenerateCovarianceError("a covariance is not positive definite") from None
    identity = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
    chol = np.swapaxes(np.linalg.solve(lower, identity), -1, -2)
    if not np.isfinite(chol).all():
        raise DegenerateCovarianceError("a covariance is not positive definite")
    return chol


def _tied_m_step(
    nk: np.ndarray, sum_x: np.ndarray, sum_xx: np.ndarray, reg_covar: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Run the tied layout's M-step on ``g`` replicates at once; None if a covariance is not PD.

    Per replicate, the pooled covariance ``(sum_k sum_xx_k - sum_k N_k mu_k mu_k') /
    sum_k N_k`` plus ``reg_covar`` on the diagonal, as the tied layout's
    ``m_step_covariances`` computes it for one.
    """
    g, k, d = sum_x.shape
    nk_reg = nk + 10 * np.finfo(np.float64).eps
    weights = nk_reg / nk_reg.sum(axis=1, keepdims=True)
    means = sum_x / nk_reg[..., None]
    scatter = sum_xx.sum(axis=1) - np.einsum("gk,gki,gkj->gij", nk_reg, means, means)
    covariances = 0.5 * (scatter + np.swapaxes(scatter, 1, 2)) / nk_reg.sum(axis=1)[:, None, None]
    covariances[:, np.arange(d), np.arange(d)] += reg_covar
    try:
        chol = _stacked_precision_cholesky(covariances, "full")
    except DegenerateCovarianceError:
        return None
    return weights, means, covariances, chol, np.zeros(g, dtype=bool)


def _m_step(
    nk: np.ndarray,
    packed: np.ndarray,
    covariance_type: str,
    reg_covar: np.ndarray,
    n: int,
    d: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the M-step of ``g`` replicates on their statistics ``nk`` (g, K) and ``R' phi``.

    Returns weights, means, covariances, precision Cholesky factors and a
    boolean per replicate that is True where a covariance was not positive
    definite (its parameters are then left as NaN).
    """
    g, k, width = packed.shape
    sum_x, sum_xx = unpack_feature_sums(packed.reshape(g * k, width), d, covariance_type)
    if covariance_type in _PER_COMPONENT:
        stats = SufficientStatistics(
            covariance_type,
            nk.reshape(g * k),
            sum_x,
            sum_xx,
            0.0,
            n,
        )
        _, means, covariances = covariances_from_statistics(stats, reg_covar)
        nk_reg = nk + 10 * np.finfo(np.float64).eps
        weights = nk_reg / nk_reg.sum(axis=1, keepdims=True)
        means = means.reshape(g, k, d)
        covariances = covariances.reshape((g, k) + covariances.shape[1:])
        try:
            chol = _stacked_precision_cholesky(
                covariances.reshape((g * k,) + covariances.shape[2:]), covariance_type
            ).reshape(covariances.shape)
            return weights, means, covariances, chol, np.zeros(g, dtype=bool)
        except DegenerateCovarianceError:
            pass  # find the replicates at fault, one by one, below
    sum_x = sum_x.reshape(g, k, d)
    sum_xx = sum_xx.reshape((g, k) + sum_xx.shape[1:])
    if covariance_type == "tied":
        tied = _tied_m_step(nk, sum_x, sum_xx, reg_covar)
        if tied is not None:
            return tied
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None] = []
    bad = np.zeros(g, dtype=bool)
    for i in range(g):
        stats = SufficientStatistics(covariance_type, nk[i], sum_x[i], sum_xx[i], 0.0, n)
        try:
            w, m, c = covariances_from_statistics(stats, reg_covar)
            p = compute_precision_cholesky(c, covariance_type)
        except DegenerateCovarianceError:
            bad[i] = True
            results.append(None)
            continue
        results.append((w, m, c, p))
    parameter_shape = LAYOUTS[covariance_type].parameter_shape(k, d)
    shapes = ((k,), (k, d), parameter_shape, parameter_shape)
    out = []
    for j, shape in enumerate(shapes):
        stacked = np.full((g,) + shape, np.nan)
        for i, r in enumerate(results):
            if r is not None:
                stacked[i] = r[j]
        out.append(stacked)
    return out[0], out[1], out[2], out[3], bad


# ------------------------------------------------------------- EM's bootstrap
BOOTSTRAP_METHODS = ("nonparametric", "weighted", "parametric", "jackknife")
_MCLUST_TYPES = {"nonparametric": "bs", "weighted": "wlbs", "parametric": "pb", "jackknife": "jk"}


def replicate_data(
    params: GaussianMixtureParams,
    X: np.ndarray,
    shift: np.ndarray,
    method: str,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray | SimulatedData, RowWeights | None, int]:
    """Describe the replicates' data (centred by ``shift``) and row weights, and their number.

    ``nonparametric``: multinomial counts of n draws with replacement (Efron 1979);
    ``weighted``: ``n`` times Dirichlet(1, ..., 1) weights (Newton & Raftery 1994;
    mclust draws ``Exp(1)`` weights, the same up to a scale that the weighted
    M-step ignores); ``jackknife``: n replicates, each leaving one row out;
    ``parametric``: n points simulated from the fitted mixture per replicate.
    Weights and simulated data are drawn batch by batch, each replicate from its
    own seed, so memory does not grow with B x n.
    """
    n = X.shape[0]
    Xc = X - shift
    seeds = rng.integers(0, 2**63 - 1, size=n_boot)
    if method == "parametric":
        return SimulatedData(params, shift, n, seeds), None, n_boot
    n_rep = n if method == "jackknife" else n_boot
    return Xc, RowWeights(method, n, n_rep, seeds), n_rep


def bootstrap_tree(
    params: GaussianMixtureParams,
    X: np.ndarray,
    *,
    reg_covar: np.ndarray,
    is_degenerate: Callable[[GaussianMixtureParams], bool],
    n_boot: int,
    method: str,
    rng: np.random.Generator,
    max_iter: int,
    tol: float,
    feature_names: list[str],
) -> xr.DataTree:
    """Run the bootstrap of a fitted mixture and assemble its DataTree.

    Every replicate's EM starts from ``params``; replicates whose M-step failed,
    whose log-likelihood was not finite or whose fit has a degenerate component
    (``is_degenerate``) are left out of the ``bootstrap`` group and counted;
    the others are relabelled to ``params`` (:func:`bayesgmm.relabel.relabel_draws`).
    """
    import xarray as xr

    kind = params.covariance_type
    k, d = params.n_components, params.n_features
    shift = X.mean(axis=0)
    data, row_weights, n_rep = replicate_data(params, X, shift, method, n_boot, rng)
    reps = run_replicates(
        data,
        row_weights,
        (params.weights, params.means - shift, params.covariances),
        covariance_type=kind,
        reg_covar=reg_covar,
        max_iter=max_iter,
        tol=tol,
        n_replicates=n_rep,
    )
    status = np.full(n_rep, "ok", dtype=object)
    status[~reps.converged] = "not_converged"
    full = np.full((n_rep, k, d, d), np.nan)
    # One small SciPy factorisation per replicate follows: BLAS threads only slow it.
    with threadpool_limits(limits=1, user_api="blas"):
        for i in np.flatnonzero(~reps.failed):
            try:
                fitted = GaussianMixtureParams(
                    reps.weights[i], reps.means[i] + shift, reps.covariances[i], kind
                )
            except ValueError:
                status[i] = "failed"
                continue
            if is_degenerate(fitted):
                status[i] = "degenerate"
                continue
            full[i] = fitted.full_covariances()
    status[reps.failed] = "failed"
    used = np.flatnonzero((status == "ok") | (status == "not_converged"))
    counts = {name: int((status == name).sum()) for name in ("failed", "degenerate")}
    counts["not_converged"] = int((status == "not_converged").sum())
    if used.size < 2:
        raise ValueError(
            f"X: expected data on which at least 2 of the {n_rep} bootstrap replicates fit, got "
            f"{used.size} ({counts['failed']} failed, {counts['degenerate']} degenerate); "
            "reduce n_components, use a constrained covariance_type or increase reg_covar"
        )
    weights, means, covariances = reps.weights[used], reps.means[used] + shift, full[used]
    perm = relabel_draws(weights, means, covariances, reference=params)
    weights, means, covariances = apply_permutations(perm, weights, means, covariances)
    coords = {
        "chain": [0],
        "draw": np.arange(used.size),
        "component": np.arange(k),
        "feature": list(feature_names),
        "feature_bis": list(feature_names),
    }
    sample = ("chain", "draw")
    estimate_covariances = params.full_covariances()
    bootstrap = xr.Dataset(
        {
            "weights": (sample + ("component",), weights[None]),
            "means": (sample + ("component", "feature"), means[None]),
            "covariances": (
                sample + ("component", "feature", "feature_bis"),
                covariances[None],
            ),
        },
        coords=coords,
        attrs={"sample_dims": list(sample), "note": "replicates relabelled to the fit"},
    )
    estimate = xr.Dataset(
        {
            "weights": (("component",), params.weights.copy()),
            "means": (("component", "feature"), params.means.copy()),
            "covariances": (("component", "feature", "feature_bis"), estimate_covariances),
        },
        coords={c: coords[c] for c in ("component", "feature", "feature_bis")},
    )
    replicates = xr.Dataset(
        {
            "status": (("replicate",), status.astype(str)),
            "n_iter": (("replicate",), reps.n_iter.copy()),
            "converged": (("replicate",), reps.converged.copy()),
            "log_likelihood": (("replicate",), reps.log_likelihood.copy()),
        },
        coords={"replicate": np.arange(n_rep)},
        attrs={"status": "ok, not_converged (both used), failed, degenerate (left out)"},
    )
    attrs = {
        "interval_method": "bootstrap",
        "bootstrap_method": method,
        "mclust_type": _MCLUST_TYPES[method],
        "covariance_type": kind,
        "n_samples": int(X.shape[0]),
        "n_replicates": int(n_rep),
        "n_used": int(used.size),
        "n_failed": counts["failed"],
        "n_degenerate": counts["degenerate"],
        "n_not_converged": counts["not_converged"],
        "max_iter": int(max_iter),
        "tol": float(tol),
        "creation_library": "bayesgmm",
    }
    return xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=attrs),
            "bootstrap": bootstrap,
            "estimate": estimate,
            "replicates": replicates,
        }
    )


def replicate_warning(tree: xr.DataTree) -> str | None:
    """Return the warning's text when replicates failed, degenerated or did not converge."""
    a = tree.attrs
    if not (a["n_failed"] or a["n_degenerate"] or a["n_not_converged"]):
        return None
    return (
        f"Of {a['n_replicates']} bootstrap replicates, {a['n_failed']} failed and "
        f"{a['n_degenerate']} have a degenerate component (both left out: intervals use "
        f"{a['n_used']}), and {a['n_not_converged']} did not converge within "
        f"max_iter={a['max_iter']} (kept). Many left out means the model has more "
        "components than the data support: reduce n_components or use a constrained "
        "covariance_type; see the 'replicates' group for each replicate's status."
    )


def parameter_draws(tree: xr.DataTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the used replicates' weights (S, K), means (S, K, d), covariances (S, K, d, d)."""
    group = tree["bootstrap"]
    weights, means, covariances = (
        np.asarray(group[name].values)[0] for name in ("weights", "means", "covariances")
    )
    return weights, means, covariances


def membership_draws(
    tree: xr.DataTree, X: np.ndarray, *, max_draws: int | None = None
) -> np.ndarray:
    """``p(z_i = k | x_i, theta_s)`` under every used replicate ``theta_s``: (S, n, K).

    ``max_draws`` thins the replicates evenly.
    """
    weights, means, covariances = parameter_draws(tree)
    s, k, d = means.shape
    keep = np.arange(s)
    if max_draws is not None and max_draws < s:
        keep = np.unique(np.linspace(0, s - 1, max_draws).round().astype(int))
    chol = _stacked_precision_cholesky(covariances[keep].reshape(-1, d, d), "full")
    chol = chol.reshape(keep.size, k, d, d)
    out = np.empty((keep.size, X.shape[0], k))
    for j, i in enumerate(keep):
        _, log_resp = log_mixture_density(X, weights[i], means[i], chol[j], "full")
        out[j] = np.exp(log_resp)
    return out


def split_component(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start K + 1 components from each replicate's K, its heaviest component split in two.

    The component with the largest weight is replaced by two with half its
    weight each, its covariance, and means one standard deviation apart along
    its principal axis (``mu -+ sqrt(lambda_1) v_1 / 2``), the usual split move
    of EM for mixtures (Ueda et al. 2000, doi:10.1162/089976600300015088). From
    this start EM's log-likelihood on the replicate is at least that of its K
    components, so the likelihood-ratio statistic of a replicate is not made
    negative by a poor start for K + 1.

    Parameters
    ----------
    weights : ndarray of shape (B, K)
    means : ndarray of shape (B, K, d)
    covariances : ndarray of shape (B, *layout shape for K)

    Returns
    -------
    weights, means, covariances for K + 1 components, with a leading axis of B.
    """
    b, k, d = means.shape
    layout = LAYOUTS[covariance_type]
    shared = layout.parameter_shape(k, d) == layout.parameter_shape(k + 1, d)
    rows = np.arange(b)
    heaviest = weights.argmax(axis=1)
    full = np.stack(
        [layout.to_full(c, k, d)[j] for c, j in zip(covariances, heaviest, strict=True)]
    )
    eigenvalues, eigenvectors = np.linalg.eigh(full)
    step = 0.5 * np.sqrt(eigenvalues[:, -1])[:, None] * eigenvectors[:, :, -1]
    new_weights = np.concatenate([weights, weights[rows, heaviest][:, None] / 2], axis=1)
    new_weights[rows, heaviest] /= 2
    new_means = np.concatenate([means, (means[rows, heaviest] + step)[:, None]], axis=1)
    new_means[rows, heaviest] -= step
    if shared:
        new_covariances = covariances.copy()
    else:
        new_covariances = np.concatenate(
            [covariances, covariances[rows, heaviest][:, None]], axis=1
        )
    return new_weights, new_means, new_covariances
