"""Bayesian Gaussian mixture with the labels marginalised out, sampled by NUTS.

The model, in *standardised* units ``z = (x - m) / s`` (``m`` and ``s`` the
per-feature mean and standard deviation of the training data, so that the default
priors mean the same thing whatever the units of the data):

    w ~ Dirichlet(alpha, ..., alpha)
    mu_k ~ Normal(means_loc, means_scale^2 I)                      (each feature)
    sigma_k ~ HalfNormal(stds_scale)                               (each feature)
    L_k ~ LKJCholesky(lkj_eta)                                     (full and tied)
    Sigma_k = diag(sigma_k) L_k L_k' diag(sigma_k)
    p(z_i | theta) = sum_k w_k N(z_i | mu_k, Sigma_k)              (labels summed out)

``tied`` shares one ``sigma`` and ``L`` between components, ``diag`` has no ``L``
and ``spherical`` one ``sigma`` per component. The likelihood is one vectorised
expression over all components, not a Python list of K distributions, so the
compiled graph stays small whatever K is: one PyTensor ``Op``
(:mod:`bayesgmm._mixture_op`) evaluates ``log sum_k w_k N(z_i | mu_k, L_k L_k')``
for every row in a single compiled loop, and its gradient in another, instead of
some 70 generic graph nodes that numba would compile one by one (every covariance
type goes through it, diagonal ones with a diagonal ``L_k``).

Large data. NUTS evaluates every row at every leapfrog step. ``fit(X,
method="laplace")`` instead approximates the posterior by the normal distribution
at its mode in the same unconstrained coordinates (mean: the mode, found by
Newton's method from the EM solution; covariance: the inverse of minus the Hessian
there, by finite differences of the exact gradient), the limit the posterior
approaches as the number of rows grows; a Pareto-k importance-sampling check says
when it is not to be trusted. ``fit(X, subsample=m)`` fits m random rows (an exact
posterior for those rows, wider than for all of them by about sqrt(n / m)).

Identifiability. The posterior is invariant under the K! permutations of the
components. All chains start from one EM solution (jittered), which keeps them
in the same labelling in practice; every draw is then relabelled to that EM
solution by an assignment on the Kullback-Leibler divergence between components
(:mod:`bayesgmm.relabel`), so per-component summaries, R-hat and ESS mean
something. The raw draws stay in the ``posterior_raw`` group. Chains that end in
genuinely different modes (not just permuted) are detected and reported with a
warning; they are never silently averaged.

References
----------
Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation
matrices based on vines and extended onion method. Journal of Multivariate
Analysis 100(9), 1989-2001. doi:10.1016/j.jmva.2009.04.008

Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn Sampler. JMLR 15, 1593-1623.

Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?:
Evaluating variational inference. ICML, PMLR 80, 5581-5590.

Stephens, M. (2000). Dealing with label switching in mixture models. JRSS B
62(4), 795-809. doi:10.1111/1467-9868.00265
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.special import logsumexp

from bayesgmm import _gaussian, relabel
from bayesgmm._base import ParamsMixin
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

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    import pymc as pm
    import xarray as xr

__all__ = [
    "DEFAULT_PRIORS",
    "LOG_LIKELIHOOD_MAX_ELEMENTS",
    "MarginalGaussianMixture",
    "SamplingWarning",
]

DEFAULT_PRIORS: dict[str, float] = {
    "weights_concentration": 1.0,
    "means_loc": 0.0,
    "means_scale": 2.0,
    "stds_scale": 1.0,
    "lkj_eta": 2.0,
}
"""Default priors, in standardised units (data centred and divided by their sd).

``weights_concentration``: Dirichlet concentration alpha of every component;
``means_loc``, ``means_scale``: location and scale of the Normal prior on each
coordinate of each mean; ``stds_scale``: scale of the HalfNormal prior on each
component standard deviation; ``lkj_eta``: LKJ shape of the correlations (1 is
uniform, larger shrinks towards no correlation).
"""

_LOG_2PI = float(np.log(2.0 * np.pi))
_SAMPLERS = ("auto", "nutpie", "pymc")
_METHODS = ("nuts", "laplace")
# NUTS target acceptance unless the user passes one (both samplers default to 0.8).
_DEFAULT_TARGET_ACCEPT = 0.9

LOG_LIKELIHOOD_MAX_ELEMENTS = 1 << 26
"""Largest draws x rows for which ``fit(..., log_likelihood="auto")`` stores the pointwise
log-likelihood (2^26 float64 numbers, 512 MiB)."""

# Laplace's method: finite-difference step of the Hessian (unconstrained units of the
# standardised model, where the log density varies on a scale of order one), the move
# after which the Hessian is evaluated again (same units), tolerance on the Newton
# decrement (posterior sd), Newton iterations, and draws for the check.
_LAPLACE_STEP = 1e-4
_LAPLACE_REFRESH = 0.005
_LAPLACE_TOL = 0.01
_LAPLACE_MAX_ITER = 50
_LAPLACE_CHECK_DRAWS = 200
# Above twice this many rows, Newton's method starts from minus the Hessian on this many
# rows (scaled to all of them) rather than on all rows.
_LAPLACE_PRECONDITION_ROWS = 20_000
_LAPLACE_INFO = (
    "pareto_k",
    "newton_decrement",
    "newton_iterations",
    "gradient_evaluations",
    "hessian_evaluations",
    "preconditioner_rows",
    "used_lbfgs",
    "fd_step",
)
# Pareto k above which importance sampling (and so the approximation it checks) fails.
_PARETO_K_LIMIT = 0.7
# Compiled models, keyed by everything the compiled graph depends on (not the data):
# (n_features, n_components, covariance_type, priors, sampler, feature names) for NUTS,
# ("laplace", n_features, n_components, covariance_type, priors, feature names) for the
# log density, its gradient and the transforms that Laplace's method uses.
_MODEL_CACHE: dict[tuple[Any, ...], _CachedModel | _LaplaceModel] = {}
# Elements of the (draws, points, components) arrays evaluated at once (about 64 MiB).
_BLOCK_ELEMENTS = 1 << 23


class SamplingWarning(UserWarning):
    """Divergences, poor convergence, low ESS or chains in different modes."""


@dataclasses.dataclass
class _CachedModel:
    model: Any
    compiled: Any  # nutpie's compiled model, or None for PyMC's NUTS
    compile_seconds: float


# ----------------------------------------------------------------- the PyMC graph
def _core(param: Any, ndim: int) -> Any:
    """``param`` without leading axes of static length 1 beyond its core ``ndim``."""
    while param.ndim > ndim:
        if param.type.shape[0] != 1:  # pragma: no cover - the model never batches
            raise ValueError("batched mixture parameters are not supported")
        param = param[0]
    return param


def _mixture_logp_cholesky(value: Any, weights: Any, means: Any, chol: Any) -> Any:
    """``log sum_k w_k N(x | mu_k, L_k L_k')`` per row, for lower-triangular ``L_k``.

    One :class:`bayesgmm._mixture_op.MixtureLogDensity` node: a compiled loop over the
    rows (forward substitution per component, then log-sum-exp), with a hand-written
    gradient in a second node. The data enter in standardised units.
    """
    from bayesgmm._mixture_op import mixture_log_density

    # PyMC hands the parameters over with a leading batch axis of length 1 (broadcast
    # against the rows); the model has no batches of mixtures, so drop it.
    weights, means, chol = (_core(p, ndim) for p, ndim in ((weights, 1), (means, 2), (chol, 3)))
    return mixture_log_density(value, weights, means, chol)


def _mixture_logp_diagonal(value: Any, weights: Any, means: Any, stds: Any) -> Any:
    """``log sum_k w_k N(x | mu_k, diag(sigma_k^2))``: the Cholesky version, diagonal ``L_k``."""
    import pytensor.tensor as pt

    stds = _core(stds, 2)
    d = stds.type.shape[-1]
    if d is None:  # pragma: no cover - the model always builds stds with a static d
        raise ValueError("the standard deviations need a static number of features")
    return _mixture_logp_cholesky(value, weights, means, stds[..., :, None] * pt.eye(d))


def _build_pymc_model(
    Z: np.ndarray,
    n_components: int,
    covariance_type: str,
    priors: dict[str, float],
    feature_names: list[Any],
    batch_size: int | None = None,
) -> pm.Model:
    """Build the marginal mixture on standardised data ``Z`` (see the module docstring).

    With ``batch_size``, the observed variable is a :func:`pymc.Minibatch` of that
    many rows of ``X`` drawn afresh at every evaluation, and its log-likelihood is
    multiplied by ``n / batch_size`` (``total_size``, here the symbolic number of
    rows of ``X``, so the compiled graph serves data of any length): an unbiased
    estimate of the full-data log-likelihood, for stochastic variational inference.
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bayesgmm._corr_cholesky import CorrCholeskyTransform

    n, d = Z.shape
    k = n_components
    coords = {
        "component": np.arange(k),
        "feature": list(feature_names),
        "feature_bis": list(feature_names),
        "obs_id": np.arange(n),
    }
    correlated = covariance_type in ("full", "tied") and d > 1
    with pm.Model(coords=coords) as model:
        data = pm.Data("X", Z, dims=("obs_id", "feature"))
        observed: dict[str, Any] = {"observed": data, "dims": ("obs_id", "feature")}
        if batch_size is not None:
            # The rows of the minibatch are not the obs_id coordinate: no dims.
            observed = {
                "observed": pm.Minibatch(data, batch_size=batch_size),
                "total_size": [data.shape[0], None],
            }
        weights = pm.Dirichlet(
            "weights", a=np.full(k, priors["weights_concentration"]), dims="component"
        )
        means = pm.Normal(
            "means",
            mu=priors["means_loc"],
            sigma=priors["means_scale"],
            dims=("component", "feature"),
        )
        std_dims = {
            "full": ("component", "feature"),
            "tied": ("feature",),
            "diag": ("component", "feature"),
            "spherical": ("component",),
        }[covariance_type]
        stds = pm.HalfNormal("stds", sigma=priors["stds_scale"], dims=std_dims)
        if correlated:
            # LKJCorr needs a static shape: its sampler is a scan that cannot see dims.
            shape = (k, d, d) if covariance_type == "full" else (d, d)
            corr_dims = std_dims + ("feature_bis",)
            # The same bijection as PyMC's default transform for LKJCorr, as one
            # compiled Op: numba compiles it in about a second instead of half a minute.
            corr_chol = pm.LKJCorr(
                "corr_chol",
                n=d,
                eta=priors["lkj_eta"],
                shape=shape,
                dims=corr_dims,
                default_transform=CorrCholeskyTransform(d),
            )
            chol = stds[..., :, None] * corr_chol
            chol = pt.broadcast_to(chol, (k, d, d))
            pm.CustomDist(
                "obs",
                weights,
                means,
                chol,
                logp=_mixture_logp_cholesky,
                signature="(k),(k,d),(k,d,d)->(d)",
                **observed,
            )
        else:
            if covariance_type == "spherical":
                scales = pt.broadcast_to(stds[:, None], (k, d))
            else:
                scales = pt.broadcast_to(stds, (k, d))
            pm.CustomDist(
                "obs",
                weights,
                means,
                scales,
                logp=_mixture_logp_diagonal,
                signature="(k),(k,d),(k,d)->(d)",
                **observed,
            )
    return model


# ------------------------------------------------------------- numpy helpers
def _free_values(params: GaussianMixtureParams, d: int) -> dict[str, np.ndarray]:
    """Model variables (constrained space) that reproduce a mixture in standardised units."""
    kind = params.covariance_type
    weights = np.maximum(params.weights, 1e-3)
    values: dict[str, np.ndarray] = {
        "weights": weights / weights.sum(),
        "means": np.array(params.means),
    }
    if kind == "spherical":
        values["stds"] = np.sqrt(params.covariances)
    elif kind == "diag":
        values["stds"] = np.sqrt(params.covariances)
    else:
        cov = params.covariances
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        values["stds"] = sd
        if d > 1:
            corr = cov / (sd[..., :, None] * sd[..., None, :])
            values["corr_chol"] = np.linalg.cholesky(corr)
    return values


def _placeholder_params(k: int, d: int, kind: str) -> GaussianMixtureParams:
    """Equal weights, zero means, unit covariances: a valid point of any model."""
    covariances = {
        "full": np.broadcast_to(np.eye(d), (k, d, d)).copy(),
        "tied": np.eye(d),
        "diag": np.ones((k, d)),
        "spherical": np.ones(k),
    }[kind]
    return GaussianMixtureParams(np.full(k, 1.0 / k), np.zeros((k, d)), covariances, kind)


def _covariances_from_draws(draws: dict[str, np.ndarray], kind: str, k: int, d: int) -> np.ndarray:
    """Full covariance matrices (..., K, d, d) from stds (and correlation Cholesky factors)."""
    stds = draws["stds"]
    lead = stds.shape[: stds.ndim - {"full": 2, "tied": 1, "diag": 2, "spherical": 1}[kind]]
    if kind == "spherical":
        stds = np.broadcast_to(stds[..., :, None], lead + (k, d))
    elif kind == "tied":
        stds = np.broadcast_to(stds[..., None, :], lead + (k, d))
    if kind in ("full", "tied") and d > 1:
        corr_chol = draws["corr_chol"]
        if kind == "tied":
            corr_chol = np.broadcast_to(corr_chol[..., None, :, :], lead + (k, d, d))
        chol = stds[..., :, None] * corr_chol
        return chol @ np.swapaxes(chol, -1, -2)
    return stds[..., :, None] ** 2 * np.eye(d)


def _flat_draws(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chain, draw, ...) arrays of weights, means and covariances as (draws, ...)."""
    k, d = means.shape[-2:]
    return (
        weights.reshape(-1, k),
        means.reshape(-1, k, d),
        covariances.reshape(-1, k, d, d),
    )


def _layout(full: np.ndarray, kind: str) -> np.ndarray:
    """Full (K, d, d) covariances to the layout of ``kind`` (for GaussianMixtureParams)."""
    if kind == "full":
        return full
    if kind == "tied":
        return full[0]
    diagonal = np.diagonal(full, axis1=-2, axis2=-1)
    return diagonal if kind == "diag" else diagonal.mean(axis=-1)


def _log_joint_blocks(
    X: np.ndarray, w: np.ndarray, m: np.ndarray, c: np.ndarray, center: np.ndarray
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield ``(rows, draws, log w_sk + log N(x_i | mu_sk, Sigma_sk))`` block by block.

    ``w``, ``m``, ``c``: (S, K), (S, K, d), (S, K, d, d) draws. ``rows`` and
    ``draws`` are slices; the array has shape (draws, rows, K). Each block of rows
    is visited with all its draw blocks, in order, before the next, so a caller can
    reduce over draws one row block at a time: memory stays within a few blocks
    of about 8M numbers (``_BLOCK_ELEMENTS``) whatever the numbers of rows and
    draws. Each density is computed by whitening, ``|L^-1 (x - mu)|^2`` with
    ``Sigma = L L'``, in coordinates centred on ``center`` (the training mean).
    """
    s, k = w.shape
    n, d = X.shape
    chol = np.linalg.cholesky(c)
    inverse = np.linalg.inv(chol)  # (S, K, d, d), lower triangular
    shift = np.einsum("skab,skb->ska", inverse, m - center)
    constant = -np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1) - 0.5 * d * _LOG_2PI
    with np.errstate(divide="ignore"):
        constant = constant + np.log(w)  # (S, K)
    per_row_draw = k * (d + 1)
    rows = min(n, max(256, _BLOCK_ELEMENTS // max(1, s * per_row_draw)))
    step = max(1, min(s, _BLOCK_ELEMENTS // max(1, rows * per_row_draw)))
    for lo in range(0, n, rows):
        row_slice = slice(lo, min(lo + rows, n))
        block_t = (X[row_slice] - center).T  # (d, rows)
        for first in range(0, s, step):
            draw_slice = slice(first, min(first + step, s))
            projected = inverse[draw_slice] @ block_t  # (draws, K, d, rows)
            projected -= shift[draw_slice, :, :, None]
            maha = np.einsum("skdr,skdr->srk", projected, projected)
            yield row_slice, draw_slice, constant[draw_slice, None, :] - 0.5 * maha


def _validate_priors(priors: Any) -> dict[str, float]:
    if priors is None:
        return dict(DEFAULT_PRIORS)
    if not isinstance(priors, dict):
        raise TypeError(
            message("priors", f"None or a dict with keys among {sorted(DEFAULT_PRIORS)}", priors)
        )
    unknown = sorted(set(priors) - set(DEFAULT_PRIORS))
    if unknown:
        raise ValueError(
            message(
                "priors",
                f"keys among {sorted(DEFAULT_PRIORS)}",
                f"unknown key(s) {unknown}",
                raw=True,
            )
        )
    out = dict(DEFAULT_PRIORS)
    for key, value in priors.items():
        if key == "means_loc":
            out[key] = check_float(value, f"priors['{key}']")
        else:
            out[key] = check_float(value, f"priors['{key}']", minimum=0.0, include_minimum=False)
    return out


# Arguments of fit that the sampler keyword arguments may not set again.
_RESERVED_SAMPLER_KWARGS = frozenset(
    {
        "draws",
        "tune",
        "chains",
        "seed",
        "random_seed",
        "progress_bar",
        "progressbar",
        "initvals",
        "nuts_sampler",
        "save_warmup",
        "compute_convergence_checks",
    }
)


def _validate_sampler_kwargs(kwargs: Any, sampler: str) -> dict[str, Any]:
    """Keyword arguments for the sampler, with bayesgmm's default for nutpie."""
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise TypeError(message("nuts_sampler_kwargs", "None or a dict with str keys", kwargs))
    reserved = sorted(_RESERVED_SAMPLER_KWARGS.intersection(kwargs))
    if reserved:
        raise ValueError(
            message(
                "nuts_sampler_kwargs",
                "no keys that fit sets itself (pass them to fit directly)",
                f"{reserved}",
                raw=True,
            )
        )
    out: dict[str, Any] = {"target_accept": _DEFAULT_TARGET_ACCEPT}
    if sampler == "nutpie":
        out["adaptation"] = "low_rank"
    out.update(kwargs)
    return out


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread (when ``threadpoolctl`` is installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _nutpie_available() -> bool:
    return importlib.util.find_spec("nutpie") is not None


# ------------------------------------------------------------ Laplace's method
@dataclasses.dataclass
class _LaplaceModel:
    """The compiled pieces Laplace's method needs, for one model (cached like NUTS's)."""

    model: Any
    value_and_grad: Any  # flat unconstrained vector -> (log density, gradient)
    log_density_fn: Any  # flat unconstrained vector -> [log density]
    constrain_fn: Any  # value variables of one draw -> free variables
    layout: list[tuple[str, tuple[int, ...]]]  # value variables in the flat vector's order
    free_names: list[str]

    @classmethod
    def compile(cls, model: Any) -> _LaplaceModel:
        import pytensor

        point = model.initial_point(0)
        value_vars = list(model.continuous_value_vars)
        layout = [(v.name, tuple(np.shape(point[v.name]))) for v in value_vars]
        # Tempered: log prior + log Jacobian + weight * log-likelihood, so that the
        # likelihood of a subsample can stand for all rows (weight n / m).
        value_and_grad = model.logp_dlogp_function(
            ravel_inputs=True, initial_point=point, tempered=True
        )
        log_density = model.logp_dlogp_function(
            ravel_inputs=True, initial_point=point, compute_grads=False
        )
        free = list(model.free_RVs)
        constrain = pytensor.function(value_vars, model.replace_rvs_by_values(free))
        return cls(model, value_and_grad, log_density, constrain, layout, [rv.name for rv in free])

    def set_data(self, Z: np.ndarray, weight: float = 1.0) -> None:
        """Evaluate on rows ``Z``, their log-likelihood multiplied by ``weight``."""
        self.model.set_data("X", Z, coords={"obs_id": np.arange(Z.shape[0])})
        self.value_and_grad.set_weights(np.array([weight], dtype=np.float64))

    def subsample_precision(
        self, Z: np.ndarray, x: np.ndarray, rows: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Minus the Hessian at ``x`` with the likelihood of ``rows`` rows scaled to all of Z."""
        n = Z.shape[0]
        chosen = np.sort(rng.choice(n, size=rows, replace=False))
        try:
            self.set_data(Z[chosen], weight=n / rows)
            return _finite_difference_precision(
                lambda y: np.asarray(self.value_and_grad(y)[1], dtype=np.float64), x
            )
        finally:
            self.set_data(Z)

    @property
    def labels(self) -> list[str]:
        """One name per coordinate of the flat vector, e.g. ``means[1, 0]``."""
        out = []
        for name, shape in self.layout:
            out += [f"{name}[{', '.join(map(str, i))}]" if i else name for i in np.ndindex(shape)]
        return out

    def flatten(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Constrained values of the free variables -> flat unconstrained vector."""
        from pymc.initial_point import make_initial_point_fn

        point = make_initial_point_fn(
            model=self.model, overrides=values, jitter_rvs=set(), return_transformed=True
        )(0)
        return np.concatenate([np.ravel(point[name]) for name, _ in self.layout])

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        out, at = [], 0
        for _, shape in self.layout:
            size = int(np.prod(shape, dtype=int))
            out.append(flat[at : at + size].reshape(shape))
            at += size
        return out

    def log_density(self, flat: np.ndarray) -> float:
        return float(np.asarray(self.log_density_fn(flat)[0]))

    def constrain(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Draws (S, D) of the flat vector -> free variables, each (1, S, ...)."""
        per_draw = [self.constrain_fn(*self.split(row)) for row in flat]
        return {
            name: np.stack([np.asarray(values[i]) for values in per_draw])[None]
            for i, name in enumerate(self.free_names)
        }


def _finite_difference_precision(
    grad: Any, x: np.ndarray, step: float = _LAPLACE_STEP
) -> np.ndarray:
    """Minus the Hessian of the log density at ``x``, by central differences of ``grad``.

    Column j is ``-(grad(x + h e_j) - grad(x - h e_j)) / 2h``; the result is
    symmetrised. The truncation error is O(h^2) relative to the curvature on the
    O(1) scale of the unconstrained coordinates of the standardised model.
    """
    size = x.size
    out = np.empty((size, size))
    for j in range(size):
        offset = np.zeros(size)
        offset[j] = step
        out[:, j] = (grad(x - offset) - grad(x + offset)) / (2.0 * step)
    return 0.5 * (out + out.T)


def _cholesky_or_none(matrix: np.ndarray) -> np.ndarray | None:
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None


def _laplace_mode(
    value_and_grad: Any,
    x0: np.ndarray,
    *,
    preconditioner: np.ndarray | None = None,
    tol: float = _LAPLACE_TOL,
    max_iter: int = _LAPLACE_MAX_ITER,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Mode of a log density and minus its Hessian there, by Newton's method from ``x0``.

    Each Newton step ``P^-1 g`` (``g`` the gradient, ``P`` minus a Hessian) is
    halved until the log density rises enough (Armijo's condition). ``P`` starts
    as ``preconditioner`` when given (minus the Hessian on a subsample of rows,
    scaled to all of them: cheap, and close enough that each step cuts the
    distance to the mode many times) and otherwise as minus the Hessian at
    ``x0``, by central differences of the exact gradient. Iteration stops when
    the Newton decrement ``sqrt(g' P^-1 g)``, the length of the remaining step
    in posterior standard deviations, is below ``tol`` *and* ``P`` is the
    full-data Hessian evaluated within ``_LAPLACE_REFRESH`` of the current point
    in every coordinate; otherwise that Hessian is evaluated and iteration goes
    on. In the unconstrained coordinates of the standardised model the curvature
    changes by a relative amount of the order of the move (for a log standard
    deviation, twice the move), so the returned Hessian is within about 1% of the
    one at the mode. Where ``P`` is not positive definite (far from a mode),
    L-BFGS takes over once and Newton's method resumes from its solution.
    """
    counts = {"gradient_evaluations": 0, "hessian_evaluations": 0}

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        counts["gradient_evaluations"] += 1
        value, gradient = value_and_grad(x)
        return float(value), np.asarray(gradient, dtype=np.float64)

    def precision_at(x: np.ndarray) -> np.ndarray:
        counts["hessian_evaluations"] += 1
        return _finite_difference_precision(lambda y: fg(y)[1], x)

    x = np.array(x0, dtype=np.float64)
    f, g = fg(x)
    if not np.isfinite(f):
        raise RuntimeError(
            "method='laplace': the log posterior density is not finite at the EM start"
        )
    anchor: np.ndarray | None = None  # where the full-data Hessian was evaluated
    if preconditioner is None or _cholesky_or_none(preconditioner) is None:
        precision, anchor = precision_at(x), x.copy()
    else:
        precision = preconditioner
    used_lbfgs = False
    decrement = np.inf
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        chol = _cholesky_or_none(precision)
        if chol is None:
            if used_lbfgs:
                break
            x, f, g = _lbfgs(fg, x)
            used_lbfgs = True
            precision, anchor = precision_at(x), x.copy()
            continue
        direction = cho_solve((chol, True), g)
        decrement = float(np.sqrt(max(float(g @ direction), 0.0)))
        if decrement < tol:
            if anchor is not None and np.abs(x - anchor).max() <= _LAPLACE_REFRESH:
                break
            precision, anchor = precision_at(x), x.copy()
            continue
        alpha = 1.0
        while True:
            f_new, g_new = fg(x + alpha * direction)
            if np.isfinite(f_new) and f_new >= f + 1e-4 * alpha * float(g @ direction):
                break
            alpha *= 0.5
            if alpha < 1e-10:
                raise RuntimeError(
                    "method='laplace': Newton's method found no step that raises the log "
                    "posterior density; use method='nuts'"
                )
        x, f, g = x + alpha * direction, f_new, g_new
    if anchor is None:  # stopped before the full-data Hessian was ever evaluated
        precision = precision_at(x)
        chol = _cholesky_or_none(precision)
        if chol is not None:
            decrement = float(np.sqrt(max(float(g @ cho_solve((chol, True), g)), 0.0)))
    if _cholesky_or_none(precision) is None:
        raise RuntimeError(
            "method='laplace': minus the Hessian of the log posterior density is not "
            "positive definite at the mode found from the EM solution, so no normal "
            "approximation exists there (often an empty or duplicated component); use "
            "method='nuts' or fewer components"
        )
    info = {
        "newton_decrement": decrement,
        "newton_iterations": iterations,
        "converged": bool(decrement < tol),
        "used_lbfgs": int(used_lbfgs),
        "fd_step": _LAPLACE_STEP,
        **counts,
    }
    return x, precision, info


def _lbfgs(fg: Any, x0: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Maximise the log density by L-BFGS from ``x0``; return the point, value, gradient."""
    from scipy.optimize import minimize

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = fg(x)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(x)
        return -value, -gradient

    result = minimize(negative, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    f, g = fg(result.x)
    return np.asarray(result.x, dtype=np.float64), f, g


def _pareto_k(log_ratios: np.ndarray) -> float:
    """Pareto k of importance ratios (PSIS, Vehtari et al. 2024); inf if any is not finite."""
    from arviz_stats.base import array_stats

    finite = log_ratios[np.isfinite(log_ratios)]
    if finite.size < log_ratios.size or finite.size < 10:
        return float("inf")
    _, khat = array_stats.psislw(finite - finite.max(), r_eff=1.0)
    return float(khat)


def _warn_laplace(info: dict[str, Any]) -> None:
    problems = []
    if not info.get("converged", True):
        problems.append(
            f"Newton's method stopped after {info['newton_iterations']} iterations with the "
            f"mode uncertain by {info['newton_decrement']:.2g} posterior sd (tolerance "
            f"{_LAPLACE_TOL}); the approximation is centred off the mode: use method='nuts'"
        )
    k_hat = info.get("pareto_k", 0.0)
    if not k_hat <= _PARETO_K_LIMIT:
        problems.append(
            f"Pareto k {k_hat:.2f} > {_PARETO_K_LIMIT} for the importance ratios posterior / "
            "normal approximation: the posterior is not close to normal (few rows per "
            "component, or a component near empty); use method='nuts', on a subsample if "
            "the data are large"
        )
    for text in problems:
        warnings.warn(text, SamplingWarning, stacklevel=3)


def _check_subsample(subsample: Any, n: int, k: int) -> int | None:
    if subsample is None:
        return None
    low = max(2, k + 1)
    if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)):
        raise TypeError(message("subsample", "None or an integer", subsample))
    if not low <= subsample <= n:
        raise ValueError(
            message(
                "subsample",
                f"None or an integer between {low} and the number of rows ({n})",
                subsample,
            )
        )
    return int(subsample)


def _check_log_likelihood(value: Any) -> bool | str:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(message("log_likelihood", "True, False or 'auto'", value))
        return value
    raise TypeError(message("log_likelihood", "True, False or 'auto'", value))


# --------------------------------------------------------------------- estimator
class MarginalGaussianMixture(ParamsMixin):
    """Gaussian mixture with labels marginalised out, sampled by NUTS or approximated by Laplace.

    ``fit(X)`` samples the posterior by NUTS (nutpie or PyMC); ``fit(X,
    method="laplace")`` approximates it by a normal distribution at its mode, for
    data too large for NUTS (see :meth:`fit` and :doc:`/how-to/large-data`).

    Parameters
    ----------
    n_components : int
        Number of components K.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Covariance layout, as in scikit-learn.
    priors : dict, optional
        Overrides of :data:`DEFAULT_PRIORS` (keys ``weights_concentration``,
        ``means_loc``, ``means_scale``, ``stds_scale``, ``lkj_eta``), all in
        standardised units: the data are centred and divided by their per-feature
        standard deviation before fitting and the posterior is transformed back,
        so the same priors behave the same for data in metres or in km/s.

    Attributes
    ----------
    params_ : GaussianMixtureParams
        Posterior mean of the relabelled weights, means and covariances.
    idata_ : xarray.DataTree
        Groups ``posterior`` (relabelled ``weights``, ``means``, ``covariances``
        (always full), ``stds``, ``correlations``; attribute ``inference_method``),
        ``posterior_raw`` (the same, as sampled), ``observed_data``,
        ``log_likelihood`` (``obs``, per ``obs_id``; left out on large data, see
        ``fit``'s ``log_likelihood``), and ``sample_stats`` (NUTS) or ``laplace``
        (Laplace: the mode and precision matrix in unconstrained coordinates, the
        log densities of the check draws, and attributes ``pareto_k``,
        ``newton_decrement`` and the numbers of gradient evaluations).
    inference_method_ : {"nuts", "laplace"}
        How the posterior draws were made.
    subsample_indices_ : ndarray of int or None
        Rows of ``X`` that were fitted when ``fit`` was given ``subsample``.
    reference_ : GaussianMixtureParams
        The EM solution the chains started from and were relabelled to.
    permutations_ : ndarray of shape (n_chains, n_draws, K)
        ``permutations_[c, s, k]`` is the raw component relabelled as ``k``.
    chain_distance_ : ndarray of shape (n_chains,)
        Distance of each chain's relabelled means from the consensus, in
        posterior standard deviations (above 4: a different mode).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    sampler_ : str or None
        ``"nutpie"`` or ``"pymc"`` for NUTS, None for Laplace.
    timings_ : dict
        Seconds spent on the EM start (``start``), compiling (``compile``, 0 when
        the cache was used), sampling (``sample``; for Laplace ``optimize`` and
        ``draw``) and the pointwise log-likelihood (``log_likelihood``).

    Notes
    -----
    Compiling the model dominates the first NUTS fit (about a minute with numba
    on two cores; a few seconds for Laplace's method). Compiled models are
    cached per process by (number of features, K, covariance type, priors,
    sampler or method, feature names); a later fit on data with the same number
    of features reuses the compiled model with the new data.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import MarginalGaussianMixture
    >>> model = MarginalGaussianMixture(2, covariance_type="diag")
    >>> model.get_params()["n_components"]
    2
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> pymc_model = model.build_model(X)  # no sampling: inspect the graph
    >>> sorted(rv.name for rv in pymc_model.free_RVs)
    ['means', 'stds', 'weights']
    >>> len(pymc_model.coords["obs_id"])
    100
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        priors: dict[str, float] | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.priors = priors

    def _validated(self) -> tuple[int, str, dict[str, float]]:
        k = check_int(self.n_components, "n_components", minimum=1)
        kind = check_option(self.covariance_type, "covariance_type", _gaussian.COVARIANCE_TYPES)
        return k, kind, _validate_priors(self.priors)

    # ---------------------------------------------------------- the model
    @staticmethod
    def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loc = X.mean(axis=0)
        scale = X.std(axis=0)
        bad = np.flatnonzero(~(scale > 1e-12 * np.maximum(1.0, np.abs(loc))))
        if bad.size:
            raise ValueError(
                message("X", "features that vary", f"constant feature(s) {bad.tolist()}", raw=True)
            )
        return loc, scale

    def build_model(self, X: Any) -> pm.Model:
        """Build (without sampling) the PyMC model for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        pymc.Model
            Variables ``weights`` (component), ``means`` (component, feature),
            ``stds``, ``corr_chol`` (full and tied, d > 1), data ``X`` and the
            observed ``obs`` (obs_id, feature), all in standardised units
            ``(X - X.mean(0)) / X.std(0)``; its log-likelihood per row is
            ``log sum_k w_k N(z_i | mu_k, Sigma_k)``.
        """
        k, kind, priors = self._validated()
        X, names = check_array(X, min_samples=2)
        loc, scale = self._standardize(X)
        features = names if names is not None else list(range(X.shape[1]))
        return _build_pymc_model((X - loc) / scale, k, kind, priors, features)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        method: str = "nuts",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        nuts_sampler: str = "auto",
        random_seed: Any = None,
        progressbar: bool = True,
        nuts_sampler_kwargs: dict[str, Any] | None = None,
        subsample: int | None = None,
        log_likelihood: bool | str = "auto",
    ) -> MarginalGaussianMixture:
        """Sample the posterior by NUTS, or approximate it by Laplace's method, from EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        method : {"nuts", "laplace"}, default "nuts"
            ``"nuts"`` samples the posterior by NUTS, every chain starting from an
            EM solution. Each leapfrog step evaluates the likelihood of every row,
            so the cost grows linearly with the number of rows.

            ``"laplace"`` approximates the posterior by a normal distribution in
            the unconstrained coordinates NUTS samples in (log standard
            deviations, log-ratio weights, unconstrained correlations, means):
            centred on the mode of the posterior density in those coordinates,
            with covariance the inverse of minus the Hessian of the log density
            there. As the number of rows grows the posterior approaches exactly
            this normal distribution (the Bernstein-von Mises theorem), so the
            approximation improves with n, where NUTS gets slower. The mode is
            found by Newton's method from the EM solution (with a line search,
            stopping when the Newton step is below 0.01 posterior standard
            deviations), the Hessian by central differences of the exact
            gradient (above 40,000 rows, Newton's first steps use the Hessian on
            20,000 of them, scaled to all, and the full-data Hessian is evaluated
            once, at the mode); ``draws`` independent draws are mapped back to
            weights, means and covariances. It costs a few hundred evaluations of
            the full-data gradient (about twice the number of free parameters),
            whatever the number of draws, plus 200 of the log density for a
            check: the Pareto k of the importance ratios
            posterior / approximation over 200 draws (Yao et al. 2018), stored in
            ``idata_["laplace"]`` and warned about above 0.7, where the
            approximation is not to be trusted (use NUTS, on a ``subsample`` if n
            is large). See :doc:`/how-to/large-data` for measured accuracy and
            cost against NUTS.
        draws : int, default 1000
            Kept draws per chain (NUTS) or independent draws from the normal
            approximation (Laplace).
        tune : int, default 1000
            Tuning steps per chain (NUTS only).
        chains : int, default 4
            Number of chains (NUTS only; Laplace's draws form one chain).
        nuts_sampler : {"auto", "nutpie", "pymc"}
            ``"auto"`` uses nutpie when installed, else PyMC's NUTS (NUTS only).
        random_seed : int, numpy.random.Generator or None
            Seeds the subsample, the EM start, the jitter and the sampler (or the
            draws from the normal approximation).
        progressbar : bool
            Show the sampler's progress bar (NUTS only).
        nuts_sampler_kwargs : dict, optional
            Further keyword arguments for ``nutpie.sample`` or ``pymc.sample``
            (NUTS only; refused with ``method="laplace"``).
            The default is ``{"target_accept": 0.9}`` for both samplers, plus
            ``{"adaptation": "low_rank"}`` with nutpie. The low-rank adaptation
            makes the mass matrix the adapted diagonal plus a low-rank correction
            along the directions where the posterior draws and gradients disagree
            most. The means, scales and correlations of a mixture are strongly
            correlated a posteriori, and on the benchmark's five-feature case this
            cut the leapfrog steps per draw about tenfold against a diagonal mass
            matrix. The target acceptance of 0.9 (both samplers default to 0.8)
            takes smaller leapfrog steps, which keeps the sampler out of
            divergences where the posterior curves sharply; on the benchmark's
            two cases (two data sets each, fit's defaults) it removed the one
            divergence seen at 0.8 in 16,000 draws, for 12-52% more sampling
            time. Pass
            ``{"adaptation": "diag"}`` for nutpie's plain diagonal adaptation or
            ``{"target_accept": 0.8}`` for the samplers' own default.
        subsample : int, optional
            Fit to this many rows of ``X`` chosen uniformly at random without
            replacement (sorted, in ``subsample_indices_``). The result is the
            posterior given those rows only: centred correctly but wider than
            the posterior given all n rows, its standard deviations by about
            ``sqrt(n / subsample)``. ``observed_data`` and ``log_likelihood``
            hold those rows, with their row numbers in ``X`` as ``obs_id``.
        log_likelihood : bool or "auto", default "auto"
            Store the pointwise log-likelihood ``log p(x_i | theta_s)`` of every
            draw and row in ``idata_["log_likelihood"]``, which
            :func:`bayesgmm.compare`, :func:`bayesgmm.elpd` and
            :func:`arviz_stats.loo` need. It holds draws x rows numbers (4000
            draws of 10^6 rows: 32 GB), so ``"auto"`` stores it only when draws
            times rows is at most :data:`LOG_LIKELIHOOD_MAX_ELEMENTS` (2^26, 512
            MiB; with the default 4000 NUTS draws, up to 16,777 rows) and
            otherwise leaves the group out and says why in
            ``idata_.attrs["log_likelihood"]`` (:meth:`compute_log_likelihood`
            adds it later). True always stores it, False never.

        Returns
        -------
        self

        Raises
        ------
        RuntimeError
            With ``method="laplace"``, when the posterior density has no strict
            local maximum near the EM solution (minus its Hessian is not
            positive definite), so no normal approximation exists there.

        References
        ----------
        Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it
        work?: Evaluating variational inference. ICML, PMLR 80, 5581-5590.
        """
        k, kind, priors = self._validated()
        X, names = check_array(X, min_samples=max(2, k + 1))
        method = check_option(method, "method", _METHODS)
        draws = check_int(draws, "draws", minimum=1)
        tune = check_int(tune, "tune", minimum=0)
        chains = check_int(chains, "chains", minimum=1)
        sampler = check_option(nuts_sampler, "nuts_sampler", _SAMPLERS)
        if sampler == "auto":
            sampler = "nutpie" if _nutpie_available() else "pymc"
        rng = check_random_state(random_seed, "random_seed")
        if not isinstance(progressbar, bool):
            raise TypeError(message("progressbar", "a bool", progressbar))
        sampler_kwargs = _validate_sampler_kwargs(nuts_sampler_kwargs, sampler)
        if method == "laplace" and nuts_sampler_kwargs:
            raise ValueError(
                message(
                    "nuts_sampler_kwargs",
                    "None or {} with method='laplace', which runs no sampler",
                    nuts_sampler_kwargs,
                )
            )
        subsample = _check_subsample(subsample, X.shape[0], k)
        store_log_likelihood = _check_log_likelihood(log_likelihood)
        indices = None
        if subsample is not None:
            indices = np.sort(rng.choice(X.shape[0], size=subsample, replace=False))
            X = X[indices]
        n, d = X.shape
        loc, scale = self._standardize(X)
        Z = (X - loc) / scale
        features = names if names is not None else list(range(d))

        t0 = time.perf_counter()
        start = self._em_start(Z, k, kind, rng)
        start_seconds = time.perf_counter() - t0
        seeds = rng.integers(0, 2**31 - 1, size=2)
        groups: dict[str, Any] = {}
        sample_stats = None
        laplace_info: dict[str, Any] = {}
        if method == "nuts":
            raw, sample_stats, timings = self._sample(
                Z,
                k,
                kind,
                priors,
                features,
                start,
                sampler,
                draws,
                tune,
                chains,
                int(seeds[0]),
                progressbar,
                sampler_kwargs,
            )
        else:
            raw, groups["laplace"], laplace_info, timings = self._laplace(
                Z, k, kind, priors, features, start, draws, int(seeds[0])
            )
        timings = {"start": start_seconds, **timings}
        chains, draws = raw["weights"].shape[:2]
        # Back to the data's units: x = m + s z.
        weights = raw["weights"]
        means = loc + scale * raw["means"]
        covs = _covariances_from_draws(raw, kind, k, d) * np.outer(scale, scale)
        reference = GaussianMixtureParams(
            start.weights,
            loc + scale * start.means,
            _layout(start.full_covariances() * np.outer(scale, scale), kind),
            kind,
        )
        flat = (chains * draws, k)
        perm = relabel.relabel_draws(*_flat_draws(weights, means, covs), reference).reshape(
            chains, draws, k
        )
        rows = perm.reshape(flat)
        w_rl, m_rl, c_rl = (
            relabel.apply_permutations(rows, a.reshape(flat + a.shape[3:])).reshape(a.shape)
            for a in (weights, means, covs)
        )
        distance, flagged = relabel.chain_disagreement(m_rl)
        posterior = {"weights": w_rl, "means": m_rl, "covariances": c_rl}
        posterior_raw = {"weights": weights, "means": means, "covariances": covs}
        params = self._posterior_mean(w_rl, m_rl, c_rl, kind)
        elements = chains * draws * n
        if store_log_likelihood == "auto":
            store_log_likelihood = elements <= LOG_LIKELIHOOD_MAX_ELEMENTS
        log_lik = None
        attrs: dict[str, Any] = {"inference_method": method}
        if store_log_likelihood:
            t0 = time.perf_counter()
            log_lik = self._pointwise_log_likelihood(
                X, *_flat_draws(w_rl, m_rl, c_rl), loc, scale
            ).reshape(chains, draws, n)
            timings["log_likelihood"] = time.perf_counter() - t0
        else:
            attrs["log_likelihood"] = (
                f"not stored: {chains * draws} draws x {n} rows = {elements} numbers"
                + (
                    f" > LOG_LIKELIHOOD_MAX_ELEMENTS = {LOG_LIKELIHOOD_MAX_ELEMENTS}"
                    if log_likelihood == "auto"
                    else " (log_likelihood=False)"
                )
                + "; fit with log_likelihood=True to store it, or on a subsample"
            )
        idata = _make_datatree(
            posterior,
            posterior_raw,
            log_lik,
            X,
            features,
            sample_stats,
            obs_id=indices,
            groups=groups,
            attrs=attrs,
        )

        # Everything computed: now change the estimator's state.
        self.params_ = params
        self.idata_ = idata
        self.reference_ = reference
        self.permutations_ = perm
        self.chain_distance_ = distance
        self.n_features_in_ = d
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._loc, self._scale = loc, scale
        self.timings_ = timings
        self.sampler_ = sampler if method == "nuts" else None
        self.inference_method_ = method
        self.subsample_indices_ = indices
        if method == "nuts":
            self._warn_diagnostics(flagged, distance)
        else:
            _warn_laplace(laplace_info)
        return self

    @staticmethod
    def _em_start(
        Z: np.ndarray, k: int, kind: str, rng: np.random.Generator
    ) -> GaussianMixtureParams:
        from bayesgmm.em import EMGaussianMixture

        em = EMGaussianMixture(
            k,
            covariance_type=kind,
            n_init=3,
            reg_covar=1e-4,
            random_state=int(rng.integers(0, 2**31 - 1)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            em.fit(Z)
        return em.params_

    def _laplace(
        self,
        Z: np.ndarray,
        k: int,
        kind: str,
        priors: dict[str, float],
        features: list[Any],
        start: GaussianMixtureParams,
        draws: int,
        seed: int,
    ) -> tuple[dict[str, np.ndarray], xr.Dataset, dict[str, Any], dict[str, float]]:
        """Approximate the posterior by a normal at its mode: draws, group, checks, timings."""
        import xarray as xr

        key = ("laplace", Z.shape[1], k, kind, tuple(sorted(priors.items())), tuple(features))
        cached = _MODEL_CACHE.get(key)
        compile_seconds = 0.0
        if not isinstance(cached, _LaplaceModel):
            t0 = time.perf_counter()
            cached = _LaplaceModel.compile(_build_pymc_model(Z, k, kind, priors, features))
            compile_seconds = time.perf_counter() - t0
            _MODEL_CACHE[key] = cached
        cached.set_data(Z)
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        with _one_blas_thread():
            x0 = cached.flatten(_free_values(start, Z.shape[1]))
            rows = _LAPLACE_PRECONDITION_ROWS
            preconditioner = (
                cached.subsample_precision(Z, x0, rows, rng) if Z.shape[0] > 2 * rows else None
            )
            mode, precision, info = _laplace_mode(
                cached.value_and_grad, x0, preconditioner=preconditioner
            )
            info["preconditioner_rows"] = rows if preconditioner is not None else 0
            optimize_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            # Draws phi = mode + L'^-1 eps with precision = L L', eps ~ N(0, I).
            chol = np.linalg.cholesky(precision)
            eps = rng.standard_normal((draws, mode.size))
            flat = mode + solve_triangular(chol, eps.T, lower=True, trans="T").T
            log_q = (
                np.log(np.diagonal(chol)).sum()
                - 0.5 * mode.size * _LOG_2PI
                - 0.5 * (eps**2).sum(axis=1)
            )
            check = min(draws, _LAPLACE_CHECK_DRAWS)
            log_p = np.array([cached.log_density(flat[s]) for s in range(check)])
        info["pareto_k"] = _pareto_k(log_p - log_q[:check])
        raw = cached.constrain(flat)
        draw_seconds = time.perf_counter() - t0
        coords = {
            "unconstrained": cached.labels,
            "unconstrained_bis": cached.labels,
            "check_draw": np.arange(check),
        }
        group = xr.Dataset(
            {
                "mode": (("unconstrained",), mode),
                "precision": (("unconstrained", "unconstrained_bis"), precision),
                "log_p": (("check_draw",), log_p),
                "log_q": (("check_draw",), log_q[:check]),
            },
            coords=coords,
            attrs={
                "note": (
                    "normal approximation N(mode, precision^-1) of the posterior in the "
                    "sampler's unconstrained coordinates of the standardised model; log_p "
                    "(unnormalised) and log_q of the first draws give pareto_k"
                ),
                **{name: info[name] for name in _LAPLACE_INFO},
            },
        )
        timings = {
            "compile": compile_seconds,
            "optimize": optimize_seconds,
            "draw": draw_seconds,
        }
        return raw, group, info, timings

    def _sample(
        self,
        Z: np.ndarray,
        k: int,
        kind: str,
        priors: dict[str, float],
        features: list[Any],
        start: GaussianMixtureParams,
        sampler: str,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        progressbar: bool,
        sampler_kwargs: dict[str, Any],
    ) -> tuple[dict[str, np.ndarray], Any, dict[str, float]]:
        key = (Z.shape[1], k, kind, tuple(sorted(priors.items())), sampler, tuple(features))
        cached = _MODEL_CACHE.get(key)
        compile_seconds = 0.0
        if not isinstance(cached, _CachedModel):
            t0 = time.perf_counter()
            model = _build_pymc_model(Z, k, kind, priors, features)
            compiled = None
            if sampler == "nutpie":
                import nutpie

                names = [rv.name for rv in model.free_RVs]
                # fit supplies the chains' start (from EM); fixed placeholder values
                # here keep nutpie from compiling the priors' random draws for one.
                placeholder = _free_values(_placeholder_params(k, Z.shape[1], kind), Z.shape[1])
                compiled = nutpie.compile_pymc_model(
                    model, var_names=names, initial_points=placeholder, jitter_rvs=set()
                )
            compile_seconds = time.perf_counter() - t0
            cached = _CachedModel(model, compiled, compile_seconds)
            _MODEL_CACHE[key] = cached
        model = cached.model
        values = _free_values(start, Z.shape[1])
        # Start values in the sampler's unconstrained space (PyMC's transforms).
        from pymc.initial_point import make_initial_point_fn

        point = make_initial_point_fn(
            model=model, overrides=values, jitter_rvs=set(), return_transformed=True
        )(0)
        t0 = time.perf_counter()
        if sampler == "nutpie":
            import nutpie

            compiled = cached.compiled.with_data(X=Z)
            names, slices, _ = compiled.shape_info
            flat = np.zeros(compiled.n_dim)
            for name, where in zip(names, slices, strict=False):
                if name in point:
                    flat[where] = np.ravel(point[name])

            def initial_point(chain_seed: Any) -> np.ndarray:
                # Small jitter on the unconstrained scale keeps chains distinct
                # but inside the EM solution's mode.
                noise = np.random.default_rng(chain_seed).normal(scale=0.05, size=flat.size)
                return flat + noise

            compiled = dataclasses.replace(compiled, initial_point_func=initial_point)
            with _one_blas_thread():
                # One chain per thread; a multithreaded BLAS inside each would
                # oversubscribe the cores.
                trace = nutpie.sample(
                    compiled,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed,
                    progress_bar=progressbar,
                    save_warmup=False,
                    **sampler_kwargs,
                )
        else:
            import pymc as pm

            jitter_rng = np.random.default_rng(seed)
            initvals = []
            for _ in range(chains):
                init = {name: np.asarray(v) for name, v in values.items()}
                init["means"] = init["means"] + jitter_rng.normal(
                    scale=0.05, size=init["means"].shape
                )
                initvals.append(init)
            with model:
                pm.set_data({"X": Z}, coords={"obs_id": np.arange(Z.shape[0])})
                trace = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    initvals=initvals,
                    random_seed=seed,
                    progressbar=progressbar,
                    nuts_sampler="pymc",
                    compute_convergence_checks=False,
                    cores=1,
                    **sampler_kwargs,
                )
        sample_seconds = time.perf_counter() - t0
        posterior = trace["posterior"]
        got = int(posterior.sizes["draw"])
        if got < draws:
            # nutpie (and PyMC) catch Ctrl-C and return the draws made so far; a
            # truncated posterior must not pass for a finished fit.
            raise KeyboardInterrupt(
                f"sampling was interrupted after {got} of {draws} draws per chain; "
                "the model was left as it was before fit"
            )
        raw = {
            name: np.asarray(posterior[name].values)
            for name in posterior.data_vars
            if name in ("weights", "means", "stds", "corr_chol")
        }
        stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace else None
        return raw, stats, {"compile": compile_seconds, "sample": sample_seconds}

    @staticmethod
    def _posterior_mean(
        w: np.ndarray, m: np.ndarray, c: np.ndarray, kind: str
    ) -> GaussianMixtureParams:
        weights = w.mean(axis=(0, 1))
        full = c.mean(axis=(0, 1))
        return GaussianMixtureParams(
            weights / weights.sum(), m.mean(axis=(0, 1)), _layout(full, kind), kind
        )

    # ------------------------------------------------------------- draws
    @staticmethod
    def _pointwise_log_likelihood(
        X: np.ndarray,
        w: np.ndarray,
        m: np.ndarray,
        c: np.ndarray,
        loc: np.ndarray,
        scale: np.ndarray,
    ) -> np.ndarray:
        """``log sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` for every draw: shape (S, n).

        One compiled loop over draws (:func:`bayesgmm._mixture_op.log_density_draws`,
        the kernel NUTS differentiates), in standardised units.
        """
        from bayesgmm._mixture_op import log_density_draws

        return log_density_draws(X, w, m, c, loc, scale)

    def _n_draws(self) -> int:
        post = self.idata_["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    def _flat_posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        post = self.idata_["posterior"]
        w = np.asarray(post["weights"].values)
        m = np.asarray(post["means"].values)
        c = np.asarray(post["covariances"].values)
        s = w.shape[0] * w.shape[1]
        return w.reshape(s, -1), m.reshape((s,) + m.shape[2:]), c.reshape((s,) + c.shape[2:])

    def _check_X(self, X: Any) -> np.ndarray:
        check_fitted(self, ("params_", "idata_"))
        array, _ = check_array(X)
        check_n_features(array, self.n_features_in_)
        return array

    def _log_joint_blocks(self, X: np.ndarray, select: np.ndarray | None = None) -> Any:
        """:func:`_log_joint_blocks` over the fitted posterior (or the ``select``-ed draws)."""
        w, m, c = self._flat_posterior()
        if select is not None:
            w, m, c = w[select], m[select], c[select]
        return _log_joint_blocks(X, w, m, c, self._loc)

    def compute_log_likelihood(self) -> xr.DataTree:
        """Add the pointwise log-likelihood of the fitted rows to ``idata_``.

        ``log p(x_i | theta_s) = log sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` for every
        posterior draw s and every row i of ``idata_["observed_data"]``: the
        ``log_likelihood`` group that :func:`bayesgmm.compare` and
        :func:`arviz_stats.loo` need, and that ``fit`` leaves out with
        ``log_likelihood=False``, or with ``"auto"`` when draws x rows exceeds
        :data:`LOG_LIKELIHOOD_MAX_ELEMENTS`. It holds draws x rows float64
        numbers (computed in blocks, but kept whole).

        Returns
        -------
        xarray.DataTree
            ``idata_``, now with a ``log_likelihood`` group (replaced if present).

        Examples
        --------
        >>> model.fit(X, log_likelihood=False)  # doctest: +SKIP
        >>> "log_likelihood" in model.compute_log_likelihood()  # doctest: +SKIP
        True
        """
        import xarray as xr

        check_fitted(self, ("params_", "idata_"))
        observed = self.idata_["observed_data"]
        X = np.asarray(observed["obs"].values, dtype=np.float64)
        post = self.idata_["posterior"]
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        w, m, c = self._flat_posterior()
        log_lik = self._pointwise_log_likelihood(X, w, m, c, self._loc, self._scale)
        group = xr.Dataset(
            {"obs": (("chain", "draw", "obs_id"), log_lik.reshape(chains, draws, -1))},
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "obs_id": observed["obs_id"].values,
            },
        ).assign_attrs(post.attrs)
        self.idata_["log_likelihood"] = xr.DataTree(group)
        if "log_likelihood" in self.idata_.attrs:
            attrs = dict(self.idata_.attrs)
            del attrs["log_likelihood"]
            self.idata_.attrs = attrs
        return self.idata_

    def membership_draws(
        self, X: Any, max_draws: int | None = None, random_seed: Any = None
    ) -> np.ndarray:
        """Membership probabilities ``p(z_i = k | x_i, theta_s)`` per relabelled draw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        max_draws : int, optional
            Use at most this many draws, chosen at random without replacement. The
            result holds ``draws x n_samples x K`` numbers: limit the draws on large X.
        random_seed : int, numpy.random.Generator or None
            Chooses the draws when ``max_draws`` is smaller than the number of draws.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_components)
        """
        X = self._check_X(X)
        select = self._select_draws(max_draws, random_seed)
        s = self._n_draws() if select is None else select.size
        out = np.empty((s, X.shape[0], self.params_.n_components))
        for rows, draws, log_joint in self._log_joint_blocks(X, select):
            out[draws, rows] = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))
        return out

    def _select_draws(self, max_draws: int | None, random_seed: Any) -> np.ndarray | None:
        total = self._n_draws()
        if max_draws is None:
            return None
        max_draws = check_int(max_draws, "max_draws", minimum=1)
        rng = check_random_state(random_seed, "random_seed")
        if max_draws >= total:
            return None
        return np.sort(rng.choice(total, size=max_draws, replace=False))

    # -------------------------------------------------------- predictions
    def predict_proba(self, X: Any, *, hdi_prob: float | None = None) -> Any:
        """Posterior membership probabilities, optionally with credible intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        hdi_prob : float in (0, 1), optional
            Without it, the posterior mean of ``p(z_i = k | x_i, theta)`` over all
            draws, an (n, K) array. With it, an ``xarray.Dataset`` with ``mean``,
            ``lower`` and ``upper`` (dims ``obs_id``, ``component``): the mean and
            the *equal-tailed* interval holding ``hdi_prob`` of the posterior
            mass, from at most 1000 draws spread evenly over the chains.

        Returns
        -------
        ndarray of shape (n_samples, n_components) or xarray.Dataset

        Notes
        -----
        Rows are processed in blocks (draws x rows x K within about 8M numbers), so
        memory stays bounded on millions of rows; the time is proportional to
        draws x rows.
        """
        if hdi_prob is not None:
            hdi_prob = check_float(
                hdi_prob,
                "hdi_prob",
                minimum=0.0,
                maximum=1.0,
                include_minimum=False,
                include_maximum=False,
            )
        X = self._check_X(X)
        n, k = X.shape[0], self.params_.n_components
        if hdi_prob is None:
            total = np.zeros((n, k))
            for rows, _, log_joint in self._log_joint_blocks(X):
                probs = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))
                total[rows] += probs.sum(axis=0)
            return total / self._n_draws()
        import xarray as xr

        s = self._n_draws()
        select = np.unique(np.linspace(0, s - 1, min(1000, s)).astype(int))
        tail = (1.0 - hdi_prob) / 2.0
        mean, lower, upper = (np.empty((n, k)) for _ in range(3))
        block: list[np.ndarray] = []
        for rows, draws, log_joint in self._log_joint_blocks(X, select):
            block.append(np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True)))
            if draws.stop == select.size:  # the last draws of this row block
                probs = np.concatenate(block, axis=0)
                block = []
                mean[rows] = probs.mean(axis=0)
                lower[rows], upper[rows] = np.quantile(probs, [tail, 1.0 - tail], axis=0)
        dims = ("obs_id", "component")
        coords = {"obs_id": np.arange(n), "component": np.arange(k)}
        return xr.Dataset(
            {"mean": (dims, mean), "lower": (dims, lower), "upper": (dims, upper)},
            coords=coords,
            attrs={"hdi_prob": hdi_prob, "interval": "equal-tailed"},
        )

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each point under the posterior mean membership."""
        return np.asarray(self.predict_proba(X)).argmax(axis=1)

    def score_samples(self, X: Any) -> np.ndarray:
        """Posterior predictive log density ``log (1/S) sum_s p(x_i | theta_s)`` per point.

        Rows are processed in blocks, so memory stays bounded on large ``X``.
        """
        X = self._check_X(X)
        s = self._n_draws()
        out = np.empty(X.shape[0])
        block: list[np.ndarray] = []
        for rows, draws, log_joint in self._log_joint_blocks(X):
            block.append(logsumexp(log_joint, axis=-1))
            if draws.stop == s:
                out[rows] = logsumexp(np.concatenate(block, axis=0), axis=0) - np.log(s)
                block = []
        return out

    def score(self, X: Any, y: Any = None) -> float:
        """Mean posterior predictive log density of the points."""
        return float(self.score_samples(X).mean())

    def sample_posterior_predictive(
        self, n_samples: int, random_seed: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw points from the posterior predictive: a random draw, then a point from it.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            Relabelled component of each point.
        """
        check_fitted(self, ("params_", "idata_"))
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_seed, "random_seed")
        w, m, c = self._flat_posterior()
        which = rng.integers(0, w.shape[0], size=n_samples)
        u = rng.random(n_samples)
        labels = (u[:, None] > np.cumsum(w[which], axis=1)).sum(axis=1)
        labels = np.minimum(labels, w.shape[1] - 1)
        chol = np.linalg.cholesky(c[which, labels])
        noise = rng.standard_normal((n_samples, m.shape[-1]))
        X = m[which, labels] + np.einsum("nab,nb->na", chol, noise)
        return X, labels

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw points from the posterior-mean mixture ``params_``."""
        check_fitted(self)
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        return self.params_.sample(n_samples, check_random_state(random_state))

    def summary(self, **kwargs: Any) -> Any:
        """``arviz_stats.summary`` of the relabelled weights, means, stds and correlations.

        Keyword arguments go to :func:`arviz_stats.summary`.
        """
        check_fitted(self, ("params_", "idata_"))
        import arviz_stats

        kwargs.setdefault("var_names", ["weights", "means", "stds", "correlations"])
        return arviz_stats.summary(self.idata_, **kwargs)

    # --------------------------------------------------------- diagnostics
    def _warn_diagnostics(self, flagged: np.ndarray, distance: np.ndarray) -> None:
        import arviz_stats

        posterior = self.idata_["posterior"].to_dataset()[["weights", "means"]]
        n_chains = posterior.sizes["chain"]
        problems = []
        stats = self.idata_["sample_stats"] if "sample_stats" in self.idata_ else None
        if stats is not None and "diverging" in stats:
            divergent = int(np.asarray(stats["diverging"].values).sum())
            if divergent:
                problems.append(
                    f"{divergent} divergent transition(s): the posterior has regions NUTS cannot "
                    "follow; increase tune, use a simpler covariance_type, or reduce "
                    "n_components (a near-empty component is the usual cause)"
                )
        if flagged.any():
            problems.append(
                f"chain(s) {np.flatnonzero(flagged).tolist()} sit in a different mode from the "
                f"others (distance {np.round(distance, 1).tolist()} posterior sd): the summaries "
                "mix modes; inspect idata_.posterior by chain, fit again with another "
                "random_seed, or reduce n_components"
            )
        if n_chains > 1 and posterior.sizes["draw"] >= 4:
            rhat = float(arviz_stats.rhat(posterior).to_array().max())
            if not rhat <= 1.01:
                problems.append(f"max R-hat {rhat:.3f} > 1.01: run longer (more draws and tune)")
        if posterior.sizes["draw"] >= 4:
            ess = float(arviz_stats.ess(posterior, method="bulk").to_array().min())
            if ess < 100 * n_chains:
                problems.append(
                    f"min bulk ESS {ess:.0f} < {100 * n_chains} (100 per chain): increase draws"
                )
        for text in problems:
            warnings.warn(text, SamplingWarning, stacklevel=3)

    # ------------------------------------------------------------- saving
    def _export_state(self) -> dict[str, Any]:
        check_fitted(self, ("params_", "idata_"))
        return {
            "class": type(self).__name__,
            "params": self.get_params(),
            "params_": self.params_.to_dict(),
            "reference_": self.reference_.to_dict(),
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": (
                self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
            ),
            "standardization": {"loc": self._loc.tolist(), "scale": self._scale.tolist()},
            "permutations_": self.permutations_.tolist(),
            "chain_distance_": self.chain_distance_.tolist(),
            "sampler_": self.sampler_,
            "inference_method_": self.inference_method_,
            "subsample_indices_": (
                None if self.subsample_indices_ is None else self.subsample_indices_.tolist()
            ),
            "timings_": dict(self.timings_),
            "idata": self.idata_,
        }

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> MarginalGaussianMixture:
        model = cls(**state["params"])
        model.params_ = GaussianMixtureParams.from_dict(state["params_"])
        model.reference_ = GaussianMixtureParams.from_dict(state["reference_"])
        model.idata_ = state["idata"]
        model.n_features_in_ = int(state["n_features_in_"])
        if state.get("feature_names_in_") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        model._loc = np.asarray(state["standardization"]["loc"], dtype=np.float64)
        model._scale = np.asarray(state["standardization"]["scale"], dtype=np.float64)
        model.permutations_ = np.asarray(state["permutations_"], dtype=np.int64)
        model.chain_distance_ = np.asarray(state["chain_distance_"], dtype=np.float64)
        model.sampler_ = state.get("sampler_", "nutpie")
        model.inference_method_ = state.get("inference_method_", "nuts")
        indices = state.get("subsample_indices_")
        model.subsample_indices_ = None if indices is None else np.asarray(indices, dtype=np.int64)
        model.timings_ = dict(state.get("timings_", {}))
        return model

    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Save the fitted model (see :func:`bayesgmm.io.save`)."""
        from bayesgmm.io import save

        save(self, path, overwrite=overwrite)


def _std_corr(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(np.diagonal(covs, axis1=-2, axis2=-1))
    return sd, covs / (sd[..., :, None] * sd[..., None, :])


def _make_datatree(
    posterior: dict[str, np.ndarray],
    posterior_raw: dict[str, np.ndarray],
    log_lik: np.ndarray | None,
    X: np.ndarray,
    features: list[Any],
    sample_stats: Any,
    *,
    obs_id: np.ndarray | None = None,
    groups: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.DataTree:
    import xarray as xr

    n, d = X.shape
    k = posterior["weights"].shape[-1]
    chains, draws = posterior["weights"].shape[:2]
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "component": np.arange(k),
        "feature": list(features),
        "feature_bis": list(features),
        "obs_id": np.arange(n) if obs_id is None else np.asarray(obs_id),
    }
    sample = ("chain", "draw")

    def group(arrays: dict[str, np.ndarray]) -> xr.Dataset:
        sd, corr = _std_corr(arrays["covariances"])
        data = {
            "weights": (sample + ("component",), arrays["weights"]),
            "means": (sample + ("component", "feature"), arrays["means"]),
            "covariances": (
                sample + ("component", "feature", "feature_bis"),
                arrays["covariances"],
            ),
            "stds": (sample + ("component", "feature"), sd),
            "correlations": (sample + ("component", "feature", "feature_bis"), corr),
        }
        keep = {c: coords[c] for c in ("chain", "draw", "component", "feature", "feature_bis")}
        return xr.Dataset(data, coords=keep)

    method = (attrs or {}).get("inference_method", "nuts")
    sample_attrs = {
        "sample_dims": ["chain", "draw"],
        "creation_library": "bayesgmm",
        "inference_method": method,
    }
    tree = {
        "/": xr.Dataset(attrs=dict(attrs or {})),
        "posterior": group(posterior).assign_attrs(sample_attrs),
        "posterior_raw": group(posterior_raw).assign_attrs(
            sample_attrs, note="as sampled, before relabelling"
        ),
        "observed_data": xr.Dataset(
            {"obs": (("obs_id", "feature"), X)},
            coords={c: coords[c] for c in ("obs_id", "feature")},
        ),
    }
    if log_lik is not None:
        tree["log_likelihood"] = xr.Dataset(
            {"obs": (sample + ("obs_id",), log_lik)},
            coords={c: coords[c] for c in ("chain", "draw", "obs_id")},
        ).assign_attrs(sample_attrs)
    if sample_stats is not None:
        stats = sample_stats.drop_vars(
            [v for v in sample_stats.data_vars if sample_stats[v].dtype == object]
        )
        tree["sample_stats"] = stats.assign_coords(chain=coords["chain"], draw=coords["draw"])
    tree.update(groups or {})
    return xr.DataTree.from_dict(tree)
