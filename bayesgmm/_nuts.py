"""Sampling the marginal mixture by NUTS, with nutpie or PyMC, from the EM start.

nutpie samples the numba log density of :mod:`bayesgmm._numba_density` (the same
posterior as the PyMC model, checked against it in the tests), which numba keeps
compiled on disk, so that a new process only loads it; PyMC's NUTS samples the PyMC
model itself. What an engine needs is kept, per process, in one bounded cache
(:data:`COMPILED`) keyed by :class:`CompileSpec`: the model's
:class:`~bayesgmm._marginal_model.ModelSpec` and the engine. A later fit with the
same spec binds its own data and compiles nothing.

Every chain starts from one EM solution, jittered, which keeps the chains in one
labelling of the components in practice (the posterior is invariant under their
K! permutations; :mod:`bayesgmm.relabel` then aligns every draw).

References
----------
Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn Sampler. JMLR 15, 1593-1623.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import importlib.util
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from bayesgmm._marginal_model import ModelDraws, ModelSpec, free_values
from bayesgmm._validation import check_int, check_option, message
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = [
    "COMPILED",
    "CompileCache",
    "CompileSpec",
    "NutsSettings",
    "check_sampler",
    "check_sampler_kwargs",
    "convergence_problems",
    "em_noise_start",
    "em_start",
    "one_blas_thread",
    "sample",
]

SAMPLERS = ("auto", "nutpie", "pymc")

# Both samplers default to 0.8. At 0.9 the leapfrog steps are smaller, which keeps NUTS
# out of divergences where the posterior curves sharply (a small component, a
# correlation near +-1): over the benchmark's two cases with fit's defaults, one of
# 16,000 draws diverged at 0.8 and none at 0.9, for 12-52% more sampling time.
DEFAULT_TARGET_ACCEPT = 0.9

# nutpie's low-rank mass matrix: the adapted diagonal plus a correction along the
# directions where draws and gradients disagree most. A mixture's means, scales and
# correlations are correlated a posteriori; on the benchmark's five-feature case this
# cut the leapfrog steps per draw about tenfold against a diagonal mass matrix.
DEFAULT_NUTPIE_ADAPTATION = "low_rank"

# Arguments of fit that the sampler keyword arguments may not set again.
RESERVED_SAMPLER_KWARGS = frozenset(
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

# Standard deviation of the per-chain jitter of the start, on the unconstrained scale:
# keeps chains distinct but inside the EM solution's mode.
_JITTER = 0.05

T = TypeVar("T")


# ------------------------------------------------------------------ the cache
@dataclasses.dataclass(frozen=True)
class CompileSpec:
    """What a compiled model depends on: the model's spec and the engine.

    Attributes
    ----------
    model : ModelSpec
    engine : {"nutpie", "pymc", "laplace"}
    """

    model: ModelSpec
    engine: str


class CompileCache:
    """Compiled models by :class:`CompileSpec`, the least recently used dropped first.

    Parameters
    ----------
    maxsize : int
        Most models kept.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: collections.OrderedDict[CompileSpec, Any] = collections.OrderedDict()

    def get(self, spec: CompileSpec, compile_model: Callable[[], T]) -> tuple[T, float]:
        """Return the model compiled for ``spec``, compiling it with ``compile_model`` if absent.

        Returns
        -------
        model : object
            What ``compile_model`` returned, now or for an earlier fit.
        seconds : float
            Time spent compiling: 0.0 when the cache held the model.
        """
        if spec in self._entries:
            self._entries.move_to_end(spec)
            return self._entries[spec], 0.0
        t0 = time.perf_counter()
        compiled = compile_model()
        seconds = time.perf_counter() - t0
        self._entries[spec] = compiled
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return compiled, seconds

    def clear(self) -> None:
        """Drop every compiled model."""
        self._entries.clear()

    def __contains__(self, spec: object) -> bool:
        return spec in self._entries

    def __len__(self) -> int:
        return len(self._entries)


COMPILED = CompileCache(maxsize=8)
"""The process's compiled models, for NUTS (nutpie and PyMC) and Laplace's method."""


# -------------------------------------------------------------------- settings
def check_sampler(nuts_sampler: Any) -> str:
    """``nuts_sampler`` checked, ``"auto"`` resolved to nutpie when installed, else PyMC."""
    sampler = check_option(nuts_sampler, "nuts_sampler", SAMPLERS)
    if sampler == "auto":
        sampler = "nutpie" if importlib.util.find_spec("nutpie") is not None else "pymc"
    return sampler


def check_sampler_kwargs(kwargs: Any, sampler: str) -> dict[str, Any]:
    """Keyword arguments for the sampler, over bayesgmm's defaults.

    Parameters
    ----------
    kwargs : dict or None
        The user's ``nuts_sampler_kwargs``.
    sampler : {"nutpie", "pymc"}

    Returns
    -------
    dict
        ``{"target_accept": 0.9}`` (and ``{"adaptation": "low_rank"}`` for nutpie)
        updated with ``kwargs``.
    """
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise TypeError(message("nuts_sampler_kwargs", "None or a dict with str keys", kwargs))
    reserved = sorted(RESERVED_SAMPLER_KWARGS.intersection(kwargs))
    if reserved:
        raise ValueError(
            message(
                "nuts_sampler_kwargs",
                "no keys that fit sets itself (pass them to fit directly)",
                f"{reserved}",
                raw=True,
            )
        )
    out: dict[str, Any] = {"target_accept": DEFAULT_TARGET_ACCEPT}
    if sampler == "nutpie":
        out["adaptation"] = DEFAULT_NUTPIE_ADAPTATION
    out.update(kwargs)
    return out


@dataclasses.dataclass(frozen=True)
class NutsSettings:
    """How to sample, checked.

    Attributes
    ----------
    sampler : {"nutpie", "pymc"}
    draws, tune, chains : int
        Kept draws and tuning steps per chain, number of chains.
    progressbar : bool
    sampler_kwargs : mapping
        Further arguments of ``nutpie.sample`` or ``pymc.sample``, with bayesgmm's
        defaults (:func:`check_sampler_kwargs`).
    """

    sampler: str
    draws: int
    tune: int
    chains: int
    progressbar: bool
    sampler_kwargs: Mapping[str, Any]

    @classmethod
    def check(
        cls,
        draws: Any,
        tune: Any,
        chains: Any,
        nuts_sampler: Any,
        progressbar: Any,
        nuts_sampler_kwargs: Any,
    ) -> NutsSettings:
        """Check ``fit``'s sampling arguments; ``nuts_sampler="auto"`` is resolved."""
        draws = check_int(draws, "draws", minimum=1)
        tune = check_int(tune, "tune", minimum=0)
        chains = check_int(chains, "chains", minimum=1)
        sampler = check_sampler(nuts_sampler)
        if not isinstance(progressbar, bool):
            raise TypeError(message("progressbar", "a bool", progressbar))
        kwargs = check_sampler_kwargs(nuts_sampler_kwargs, sampler)
        return cls(sampler, draws, tune, chains, progressbar, kwargs)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold BLAS to one thread (when ``threadpoolctl`` is installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# ------------------------------------------------------------------- sampling
def em_start(
    Z: np.ndarray,
    k: int,
    kind: str,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
) -> GaussianMixtureParams:
    """Fit EM for the start of every chain (the draws are relabelled to it, too).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data.
    k : int
    kind : {"full", "tied", "diag", "spherical"}
    rng : numpy.random.Generator
        Seeds EM (one integer is drawn).
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights of the rows, passed to EM.

    Returns
    -------
    GaussianMixtureParams
        In standardised units: the best of three EM runs from k-means starts,
        ``reg_covar=1e-4``.

    Notes
    -----
    The start needs a good mode, not the best of every initialisation
    :class:`~bayesgmm.em.EMGaussianMixture` knows: its default adds a hierarchical
    agglomeration of up to 2000 rows (seconds, quadratic in the rows), which at
    n = 5000 was most of a fit's time outside sampling, and on the benchmark's cases
    ended in the same log-likelihood as the k-means starts.
    """
    import warnings

    from bayesgmm.em import EMGaussianMixture

    em = EMGaussianMixture(
        k,
        covariance_type=kind,
        n_init=3,
        init_params="kmeans",
        reg_covar=1e-4,
        random_state=int(rng.integers(0, 2**31 - 1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em.fit(Z, sample_weight=sample_weight)
    return em.params_


def em_noise_start(
    Z: np.ndarray, k: int, kind: str, rng: np.random.Generator, log_hypervolume: float
) -> tuple[GaussianMixtureParams, float]:
    """EM with mclust's noise component for the start of every chain of a noise model.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data.
    k : int
    kind : {"full", "tied", "diag", "spherical"}
    rng : numpy.random.Generator
        Seeds EM (one integer is drawn).
    log_hypervolume : float
        ``log V_z``, the noise region's log volume in the units of ``Z``.

    Returns
    -------
    params : GaussianMixtureParams
        The Gaussian part, its weights given that a point is not noise.
    noise_weight : float
        ``w_0``.
    """
    import warnings

    from bayesgmm.em import EMGaussianMixture

    em = EMGaussianMixture(
        k,
        covariance_type=kind,
        n_init=3,
        reg_covar=1e-4,
        noise=True,
        hypervolume=float(np.exp(log_hypervolume)),
        random_state=int(rng.integers(0, 2**31 - 1)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em.fit(Z)
    return em.params_, float(em.noise_weight_)


@dataclasses.dataclass(frozen=True)
class _CompiledNuts:
    model: Any  # pymc.Model for PyMC's NUTS and the noise model, None for nutpie's own
    layout: Any  # bayesgmm._numba_density.DensityLayout for nutpie, None otherwise
    nutpie_pymc: Any = None  # nutpie's compilation of ``model`` (the noise model)


def _compile(
    spec: ModelSpec,
    sampler: str,
    Z: np.ndarray,
    sample_weight: np.ndarray | None = None,
    log_hypervolume: float | None = None,
) -> _CompiledNuts:
    """PyMC's model for its NUTS; for nutpie, the numba density (loaded from numba's cache).

    The numba density has no noise component: nutpie samples a noise model by
    compiling the PyMC model itself (``nutpie.compile_pymc_model``, numba backend),
    which costs tens of seconds per process and model shape.
    """
    if sampler != "nutpie":
        return _CompiledNuts(spec.build(Z, sample_weight, log_hypervolume), None)
    if spec.noise:
        import nutpie

        model = spec.build(Z, log_hypervolume=log_hypervolume)
        return _CompiledNuts(model, None, nutpie.compile_pymc_model(model))
    from bayesgmm import _numba_density

    layout = _numba_density.DensityLayout(spec.n_components, spec.n_features, spec.covariance_type)
    _numba_density.load(layout)
    return _CompiledNuts(None, layout)


def sample(
    Z: np.ndarray,
    spec: ModelSpec,
    start: GaussianMixtureParams,
    settings: NutsSettings,
    seed: int,
    sample_weight: np.ndarray | None = None,
    *,
    noise_weight: float | None = None,
    log_hypervolume: float | None = None,
) -> ModelDraws:
    """Sample the posterior of the model ``spec`` on standardised data ``Z`` by NUTS.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data; with missing entries (NaN) the PyMC model is built and
        compiled for this fit (:func:`_sample_missing`), not taken from the cache.
    spec : ModelSpec
    start : GaussianMixtureParams
        The EM solution, in standardised units, every chain starts from (jittered).
    settings : NutsSettings
    seed : int
        Seeds the jitter and the sampler.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights of the rows (``spec.weighted`` must be True).
    noise_weight, log_hypervolume : float, optional
        With ``spec.noise``: the start's noise weight ``w_0`` (``start``'s
        weights are then the Gaussians' given no noise) and ``log V_z``.

    Returns
    -------
    ModelDraws
        The draws, the ``sample_stats`` group, and the seconds spent compiling
        (``compile``, 0.0 when the cache held the model) and sampling (``sample``).

    Raises
    ------
    KeyboardInterrupt
        The sampler returned fewer draws than asked for (it was interrupted).
    """
    values = free_values(start, Z.shape[1])
    data: dict[str, Any] = {"X": Z}
    if sample_weight is not None:
        data["sample_weight"] = sample_weight
    if spec.noise:
        if noise_weight is None or log_hypervolume is None:
            raise ValueError("a noise model needs the start's noise_weight and log_hypervolume")
        values["weights"] = np.append(values["weights"] * (1.0 - noise_weight), noise_weight)
        data["log_hypervolume"] = np.float64(log_hypervolume)
    if np.isnan(Z).any():
        cached, compile_seconds = None, 0.0
    else:
        cached, compile_seconds = COMPILED.get(
            CompileSpec(spec, settings.sampler),
            lambda: _compile(spec, settings.sampler, Z, sample_weight, log_hypervolume),
        )
    t0 = time.perf_counter()
    if cached is None:
        trace, compile_seconds = _sample_missing(Z, spec, values, settings, seed)
        t0 += compile_seconds
    elif cached.nutpie_pymc is not None:
        trace = _sample_nutpie_pymc(cached, data, values, settings, seed)
    elif settings.sampler == "nutpie":
        trace = _sample_nutpie(cached, Z, spec, values, settings, seed, sample_weight)
    else:
        trace = _sample_pymc(cached, data, values, settings, seed)
    sample_seconds = time.perf_counter() - t0
    posterior = trace["posterior"]
    got = int(posterior.sizes["draw"])
    if got < settings.draws:
        # nutpie (and PyMC) catch Ctrl-C and return the draws made so far; a
        # truncated posterior must not pass for a finished fit.
        raise KeyboardInterrupt(
            f"sampling was interrupted after {got} of {settings.draws} draws per chain; "
            "the model was left as it was before fit"
        )
    raw = {
        name: np.asarray(posterior[name].values)
        for name in posterior.data_vars
        if name in ("weights", "means", "stds", "corr_chol")
    }
    groups = {}
    if "sample_stats" in trace:
        groups["sample_stats"] = _sample_stats(trace["sample_stats"].to_dataset())
    return ModelDraws(raw, groups, {"compile": compile_seconds, "sample": sample_seconds})


def _sample_missing(
    Z: np.ndarray,
    spec: ModelSpec,
    values: dict[str, np.ndarray],
    settings: NutsSettings,
    seed: int,
) -> tuple[Any, float]:
    """Sample the PyMC model of data with missing entries; return the trace and compile seconds.

    The model has one likelihood term per missingness pattern
    (:func:`bayesgmm._marginal_model.build_pymc_model`), so its graph depends on
    the data's patterns: it is compiled for this fit and not cached. nutpie
    compiles the PyMC model itself (numba backend) instead of the hand-written
    density of complete data; PyMC's NUTS samples it as for complete data.
    """
    t0 = time.perf_counter()
    model = spec.build(Z)
    if settings.sampler != "nutpie":
        seconds = time.perf_counter() - t0
        return _sample_pymc(_CompiledNuts(model, None), {"X": Z}, values, settings, seed), seconds
    import nutpie

    compiled = nutpie.compile_pymc_model(
        model, initial_points=dict(values), jitter_rvs=set(), backend="numba"
    )
    flat = compiled.initial_point_func(0)
    seconds = time.perf_counter() - t0

    def initial_point(chain_seed: Any) -> np.ndarray:
        noise = np.random.default_rng(chain_seed).normal(scale=_JITTER, size=flat.size)
        return flat + noise

    compiled = dataclasses.replace(compiled, initial_point_func=initial_point)
    trace = nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=seed,
        progress_bar=settings.progressbar,
        save_warmup=False,
        **settings.sampler_kwargs,
    )
    return trace, seconds


def _sample_stats(stats: xr.Dataset) -> xr.Dataset:
    """Drop the object-typed sampler statistics and number the chains and draws."""
    stats = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
    return stats.assign_coords(
        chain=np.arange(stats.sizes["chain"]), draw=np.arange(stats.sizes["draw"])
    )


def _sample_nutpie(
    cached: _CompiledNuts,
    Z: np.ndarray,
    spec: ModelSpec,
    values: dict[str, np.ndarray],
    settings: NutsSettings,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> Any:
    """``nutpie.sample`` of the numba density on ``Z``, chains started at ``values``, jittered."""
    from bayesgmm import _numba_density

    compiled = _numba_density.compiled_model(Z, cached.layout, dict(spec.priors), sample_weight)
    flat = _numba_density.to_unconstrained(values, cached.layout)
    return _nutpie_from(compiled, flat, settings, seed)


def _nutpie_from(compiled: Any, flat: np.ndarray, settings: NutsSettings, seed: int) -> Any:
    """``nutpie.sample`` of a compiled model, each chain from ``flat`` plus its own jitter."""
    import nutpie

    def initial_point(chain_seed: Any) -> np.ndarray:
        noise = np.random.default_rng(chain_seed).normal(scale=_JITTER, size=flat.size)
        return flat + noise

    compiled = dataclasses.replace(compiled, initial_point_func=initial_point)
    return nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=seed,
        progress_bar=settings.progressbar,
        save_warmup=False,
        **settings.sampler_kwargs,
    )


def _sample_nutpie_pymc(
    cached: _CompiledNuts,
    data: dict[str, Any],
    values: dict[str, np.ndarray],
    settings: NutsSettings,
    seed: int,
) -> Any:
    """``nutpie.sample`` of nutpie's compiled PyMC model on ``data``, started at ``values``.

    The start is mapped to the model's unconstrained coordinates by PyMC's own
    transforms and flattened in nutpie's order of the free variables; every chain
    adds its own jitter.
    """
    from pymc.initial_point import make_initial_point_fn

    compiled = cached.nutpie_pymc.with_data(**data)
    point = make_initial_point_fn(
        model=cached.model, overrides=values, jitter_rvs=set(), return_transformed=True
    )(seed)
    # nutpie joins the unconstrained values in the order of the model's free variables.
    names = [cached.model.rvs_to_values[rv].name for rv in cached.model.free_RVs]
    flat = np.concatenate([np.asarray(point[name], dtype=np.float64).ravel() for name in names])
    if flat.size != compiled.n_dim:  # pragma: no cover - a change in nutpie's layout
        raise RuntimeError(f"start of {flat.size} numbers for a model of {compiled.n_dim}")
    return _nutpie_from(compiled, flat, settings, seed)


def _sample_pymc(
    cached: _CompiledNuts,
    data: dict[str, Any],
    values: dict[str, np.ndarray],
    settings: NutsSettings,
    seed: int,
) -> Any:
    """``pymc.sample`` on ``data``, chains started at ``values`` with jittered means."""
    import pymc as pm

    jitter_rng = np.random.default_rng(seed)
    initvals = []
    for _ in range(settings.chains):
        init = {name: np.asarray(v) for name, v in values.items()}
        init["means"] = init["means"] + jitter_rng.normal(scale=_JITTER, size=init["means"].shape)
        initvals.append(init)
    with cached.model:
        if "X" in cached.model.named_vars:
            pm.set_data(data, coords={"obs_id": np.arange(data["X"].shape[0])})
        return pm.sample(
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            initvals=initvals,
            random_seed=seed,
            progressbar=settings.progressbar,
            nuts_sampler="pymc",
            compute_convergence_checks=False,
            cores=1,
            **settings.sampler_kwargs,
        )


# ---------------------------------------------------------------- diagnostics
def convergence_problems(
    posterior: xr.Dataset,
    sample_stats: xr.Dataset | None,
    flagged: np.ndarray,
    distance: np.ndarray,
) -> list[str]:
    """List what is wrong with a NUTS run, each problem with what to do about it.

    Parameters
    ----------
    posterior : xarray.Dataset
        Relabelled ``weights`` and ``means``, dims (chain, draw, ...).
    sample_stats : xarray.Dataset or None
        The sampler's statistics (``diverging`` is read).
    flagged, distance : ndarray of shape (n_chains,)
        From :func:`bayesgmm.relabel.chain_disagreement`.

    Returns
    -------
    list of str
        Divergences, chains in different modes, max R-hat above 1.01, min bulk ESS
        below 100 per chain; empty when none.
    """
    import arviz_stats

    n_chains = posterior.sizes["chain"]
    problems = []
    if sample_stats is not None and "diverging" in sample_stats:
        divergent = int(np.asarray(sample_stats["diverging"].values).sum())
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
            "random_state, or reduce n_components"
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
    return problems
