"""Laplace's method for the marginal mixture, and its Pareto-k check.

The posterior is approximated by the normal distribution at its mode in the
sampler's unconstrained coordinates of the standardised model (log standard
deviations, log-ratio weights, unconstrained correlations, means): mean the mode,
found by Newton's method from the EM solution; covariance the inverse of minus the
Hessian there, by central differences of the exact gradient. As the number of
rows grows the posterior approaches exactly this normal distribution (the
Bernstein-von Mises theorem). The check is Pareto-smoothed importance sampling of
the ratios posterior / approximation over a few hundred draws (Yao et al. 2018):
a Pareto k above ArviZ's threshold for that many draws says the approximation is
not to be trusted.

References
----------
Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?:
Evaluating variational inference. ICML, PMLR 80, 5581-5590.

Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed
importance sampling. JMLR 25(72), 1-58.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from bayesgmm._marginal_model import ModelDraws, ModelSpec, free_values
from bayesgmm._nuts import COMPILED, CompileSpec, one_blas_thread
from bayesgmm.params import GaussianMixtureParams

__all__ = [
    "LaplaceModel",
    "approximate",
    "finite_difference_precision",
    "good_k",
    "laplace_mode",
    "pareto_k",
    "problems",
]

_LOG_2PI = float(np.log(2.0 * np.pi))

# Finite-difference step of the Hessian (unconstrained units of the standardised
# model, where the log density varies on a scale of order one), the move after which
# the Hessian is evaluated again (same units), tolerance on the Newton decrement
# (posterior sd), Newton iterations, and draws for the check.
STEP = 1e-4
REFRESH = 0.005
TOL = 0.01
MAX_ITER = 50
CHECK_DRAWS = 200
# Above twice this many rows, Newton's method starts from minus the Hessian on this many
# rows (scaled to all of them) rather than on all rows.
PRECONDITION_ROWS = 20_000
# What the ``laplace`` group's attributes report.
INFO = (
    "pareto_k",
    "good_k",
    "newton_decrement",
    "newton_iterations",
    "gradient_evaluations",
    "hessian_evaluations",
    "preconditioner_rows",
    "used_lbfgs",
    "fd_step",
)

GradientFn = Callable[[np.ndarray], np.ndarray]
ValueAndGradFn = Callable[[np.ndarray], tuple[Any, Any]]


@dataclasses.dataclass
class LaplaceModel:
    """The compiled pieces Laplace's method needs, for one model (kept in the compile cache)."""

    model: Any
    value_and_grad: Any  # flat unconstrained vector -> (log density, gradient)
    log_density_fn: Any  # flat unconstrained vector -> [log density]
    constrain_fn: Any  # value variables of one draw -> free variables
    layout: list[tuple[str, tuple[int, ...]]]  # value variables in the flat vector's order
    free_names: list[str]

    @classmethod
    def compile(cls, model: Any) -> LaplaceModel:
        """Compile the log density (tempered, with gradient, and plain) and the transforms."""
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

    def set_data(
        self, Z: np.ndarray, weight: float = 1.0, sample_weight: np.ndarray | None = None
    ) -> None:
        """Evaluate on rows ``Z``, their log-likelihood multiplied by ``weight``.

        ``sample_weight``: the rows' frequency weights, for a model built with them.
        """
        coords = {"obs_id": np.arange(Z.shape[0])}
        if sample_weight is None:
            self.model.set_data("X", Z, coords=coords)
        else:
            import pymc as pm

            pm.set_data({"X": Z, "sample_weight": sample_weight}, model=self.model, coords=coords)
        self.value_and_grad.set_weights(np.array([weight], dtype=np.float64))

    def subsample_precision(
        self,
        Z: np.ndarray,
        x: np.ndarray,
        rows: int,
        rng: np.random.Generator,
        sample_weight: np.ndarray | None = None,
    ) -> np.ndarray:
        """Minus the Hessian at ``x`` with the likelihood of ``rows`` rows scaled to all of Z."""
        n = Z.shape[0]
        chosen = np.sort(rng.choice(n, size=rows, replace=False))
        sub_weight = None if sample_weight is None else sample_weight[chosen]
        try:
            self.set_data(Z[chosen], weight=n / rows, sample_weight=sub_weight)
            return finite_difference_precision(
                lambda y: np.asarray(self.value_and_grad(y)[1], dtype=np.float64), x
            )
        finally:
            self.set_data(Z, sample_weight=sample_weight)

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
        """Flat vector -> the value variables, in the layout's order and shapes."""
        out, at = [], 0
        for _, shape in self.layout:
            size = int(np.prod(shape, dtype=int))
            out.append(flat[at : at + size].reshape(shape))
            at += size
        return out

    def log_density(self, flat: np.ndarray) -> float:
        """Unnormalised log posterior density at a flat unconstrained vector."""
        return float(np.asarray(self.log_density_fn(flat)[0]))

    def constrain(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Draws (S, D) of the flat vector -> free variables, each (1, S, ...)."""
        per_draw = [self.constrain_fn(*self.split(row)) for row in flat]
        return {
            name: np.stack([np.asarray(values[i]) for values in per_draw])[None]
            for i, name in enumerate(self.free_names)
        }


# ------------------------------------------------------------------ the mode
def finite_difference_precision(grad: GradientFn, x: np.ndarray, step: float = STEP) -> np.ndarray:
    """Minus the Hessian of the log density at ``x``, by central differences of ``grad``.

    Column j is ``-(grad(x + h e_j) - grad(x - h e_j)) / 2h``; the result is
    symmetrised. The truncation error is O(h^2) relative to the curvature on the
    O(1) scale of the unconstrained coordinates of the standardised model.

    Parameters
    ----------
    grad : callable
        Gradient of the log density, flat vector to flat vector.
    x : ndarray of shape (D,)
    step : float
        The step h.

    Returns
    -------
    ndarray of shape (D, D)
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


def laplace_mode(
    value_and_grad: ValueAndGradFn,
    x0: np.ndarray,
    *,
    preconditioner: np.ndarray | None = None,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
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
    full-data Hessian evaluated within ``REFRESH`` of the current point in every
    coordinate; otherwise that Hessian is evaluated and iteration goes on. In
    the unconstrained coordinates of the standardised model the curvature
    changes by a relative amount of the order of the move (for a log standard
    deviation, twice the move), so the returned Hessian is within about 1% of the
    one at the mode. Where ``P`` is not positive definite (far from a mode),
    L-BFGS takes over once and Newton's method resumes from its solution.

    Parameters
    ----------
    value_and_grad : callable
        Flat vector -> (log density, gradient).
    x0 : ndarray of shape (D,)
        Starting point.
    preconditioner : ndarray of shape (D, D), optional
        First ``P``.
    tol : float
        Tolerance on the Newton decrement.
    max_iter : int
        Most Newton iterations.

    Returns
    -------
    mode : ndarray of shape (D,)
    precision : ndarray of shape (D, D)
        Minus the Hessian near the mode.
    info : dict
        ``newton_decrement``, ``newton_iterations``, ``converged``, ``used_lbfgs``,
        ``fd_step``, ``gradient_evaluations``, ``hessian_evaluations``.

    Raises
    ------
    RuntimeError
        The log density is not finite at ``x0``, no step raises it, or minus the
        Hessian is not positive definite at the point found.
    """
    counts = {"gradient_evaluations": 0, "hessian_evaluations": 0}

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        counts["gradient_evaluations"] += 1
        value, gradient = value_and_grad(x)
        return float(value), np.asarray(gradient, dtype=np.float64)

    def precision_at(x: np.ndarray) -> np.ndarray:
        counts["hessian_evaluations"] += 1
        return finite_difference_precision(lambda y: fg(y)[1], x)

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
            if anchor is not None and np.abs(x - anchor).max() <= REFRESH:
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
        "fd_step": STEP,
        **counts,
    }
    return x, precision, info


def _lbfgs(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
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


# ----------------------------------------------------------------- the check
def pareto_k(log_ratios: np.ndarray) -> float:
    """Pareto k of importance ratios by PSIS (``arviz_stats``); inf if any is not finite."""
    from arviz_stats.base import array_stats

    finite = log_ratios[np.isfinite(log_ratios)]
    if finite.size < log_ratios.size or finite.size < 10:
        return float("inf")
    _, khat = array_stats.psislw(finite - finite.max(), r_eff=1.0)
    return float(khat)


def good_k(n_draws: int) -> float:
    """Largest Pareto k at which importance sampling with ``n_draws`` draws is reliable.

    ``min(1 - 1 / log10(S), 0.7)`` for S draws (0.7 for one draw), ArviZ's rule
    (Vehtari et al. 2024). arviz-stats applies it inside ``loo``
    (``arviz_stats.loo.loo_helper._warn_pareto_k``, which reports it as ``good_k``)
    but exposes no public function for it, hence the formula here.
    """
    return min(1.0 - 1.0 / float(np.log10(n_draws)), 0.7) if n_draws > 1 else 0.7


def problems(info: dict[str, Any]) -> list[str]:
    """List what is wrong with a Laplace approximation, each with what to do about it.

    Parameters
    ----------
    info : dict
        :func:`laplace_mode`'s ``info`` with ``pareto_k``, ``good_k`` and
        ``check_draws`` added.

    Returns
    -------
    list of str
        Newton's method not converged; Pareto k above ``good_k``. Empty when none.
    """
    out = []
    if not info.get("converged", True):
        out.append(
            f"Newton's method stopped after {info['newton_iterations']} iterations with the "
            f"mode uncertain by {info['newton_decrement']:.2g} posterior sd (tolerance "
            f"{TOL}); the approximation is centred off the mode: use method='nuts'"
        )
    k_hat, threshold = info["pareto_k"], info["good_k"]
    if not k_hat <= threshold:
        out.append(
            f"Pareto k {k_hat:.2f} > {threshold:.2f} (ArviZ's threshold for "
            f"{info['check_draws']} draws) for the importance ratios "
            "posterior / normal approximation: the posterior is not close to normal (few "
            "rows per component, or a component near empty); use method='nuts', on a "
            "subsample if the data are large"
        )
    return out


# --------------------------------------------------------------- the method
def approximate(
    Z: np.ndarray,
    spec: ModelSpec,
    start: GaussianMixtureParams,
    draws: int,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> ModelDraws:
    """Approximate the posterior of ``spec`` on standardised ``Z`` by a normal at its mode.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    spec : ModelSpec
    start : GaussianMixtureParams
        The EM solution, in standardised units, Newton's method starts from.
    draws : int
        Independent draws from the approximation.
    seed : int
        Seeds the preconditioner's rows and the draws.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights of the rows (``spec.weighted`` must be True).

    Returns
    -------
    ModelDraws
        One chain of ``draws`` draws; the ``laplace`` group (mode, precision, the
        log densities of the check draws, attributes :data:`INFO`); seconds
        spent compiling (``compile``, 0.0 when cached), finding the mode
        (``optimize``) and drawing (``draw``); the problems found.
    """
    import xarray as xr

    cached, compile_seconds = COMPILED.get(
        CompileSpec(spec, "laplace"), lambda: LaplaceModel.compile(spec.build(Z, sample_weight))
    )
    cached.set_data(Z, sample_weight=sample_weight)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with one_blas_thread():
        x0 = cached.flatten(free_values(start, Z.shape[1]))
        rows = PRECONDITION_ROWS
        preconditioner = (
            cached.subsample_precision(Z, x0, rows, rng, sample_weight)
            if Z.shape[0] > 2 * rows
            else None
        )
        mode, precision, info = laplace_mode(
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
        check = min(draws, CHECK_DRAWS)
        log_p = np.array([cached.log_density(flat[s]) for s in range(check)])
    info["pareto_k"] = pareto_k(log_p - log_q[:check])
    info["good_k"] = good_k(check)
    info["check_draws"] = check
    values = cached.constrain(flat)
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
                "(unnormalised) and log_q of the first draws give pareto_k, to be "
                "compared with good_k"
            ),
            **{name: info[name] for name in INFO},
        },
    )
    timings = {"compile": compile_seconds, "optimize": optimize_seconds, "draw": draw_seconds}
    return ModelDraws(values, {"laplace": group}, timings, tuple(problems(info)))
