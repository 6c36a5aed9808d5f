"""Simulation-based calibration (SBC) of every inference engine of bayesgmm.

For each replication r of a setting (engine, covariance type, K, n):

1. draw the truth theta_r from the model's prior: the prior of the PyMC graph that
   :class:`~bayesgmm.MarginalGaussianMixture` fits, with ``loc=0, scale=1`` so that
   the prior is in the data's units and does not depend on the data (by default the
   priors are in standardised units of the data, which SBC cannot use);
2. simulate n rows from the mixture theta_r;
3. fit, and keep the relabelled posterior draws;
4. relabel the truth by the rule that relabelled the draws (below) and record, for
   every scalar (the K weights, the K x d means and the K x d log standard
   deviations), the rank of the truth among L thinned posterior draws, and whether
   it lies in the central 50% and 90% intervals of all draws.

If the engine samples the exact posterior, each rank is uniform on {0, ..., L}
(Talts et al. 2018); the script turns it into a PIT value ``(rank + u) / (L + 1)``
with u uniform on (0, 1), exactly uniform on (0, 1) under that hypothesis, and tests
uniformity scalar by scalar with ArviZ's ``uniformity_test`` (``pot_c``: the
pointwise Beta order-statistic tests combined by a Cauchy combination, valid for
independent PIT values as here), which is the successor in arviz_stats of the
simultaneous-band ECDF test of Säilynoja, Bürkner and Vehtari (2022); the figures are
their ECDF-difference plots, drawn by ``arviz_plots.plot_ecdf_pit``. A setting's
p-value is the smallest over its scalars times their number (Bonferroni), so it
rejects at level a with probability at most a when the engine is calibrated.

Labels. The posterior is invariant under permutations of the components; the model
relabels every draw by the assignment that minimises the Kullback-Leibler divergence
of its components from a reference, the mean of the relabelled draws at the fixed
point (:func:`bayesgmm.relabel.relabel_draws`). The truth is relabelled by the same
rule against the same reference (the fitted ``params_``). The test quantities are then
functions f(theta, y) that are invariant under permutations of theta (the reference
depends on the data through the fit, which SBC allows: given y, the truth and the
draws are exchangeable), so they are calibrated whichever of the K! symmetric modes
the sampler visits.

Engines (``--engines``): ``nuts`` (NUTS by nutpie, 2 chains of 500 draws after 500
tuning steps, thinned to L = 100; one compiled model per shape, reused by every
replication through the package's compile cache), ``laplace`` (Laplace's method,
1000 independent draws, L = 100 of them), ``dp`` (the variational DP mixture; its
prior differs, see :func:`fit_dp`) and ``em-bootstrap`` (EM's bootstrap,
``EMGaussianMixture.bootstrap`` with 200 nonparametric replicates). Each replication's
result is appended to ``<out>/runs/<setting>.csv`` as it finishes: a later run skips
replications already there (``--fresh`` starts again), so an interrupted run resumes
and a new engine can be added to the table without redoing the others.

Run from the repository root (about 25 minutes on two shared cores with defaults)::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/calibration.py
    PYTHONPATH=. .venv/bin/python benchmarks/calibration.py --engines nuts --replications 20
    PYTHONPATH=. .venv/bin/python benchmarks/calibration.py --report-only   # table, figures

Writes the table as markdown (``<out>/table.md.txt``, which
``docs/explanation/calibration.md`` includes) and as ``<out>/calibration.csv``, and one
``<out>/ecdf_<setting>.png`` per setting (default ``<out>``:
``docs/_static/calibration``).

References
----------
Talts, S., Betancourt, M., Simpson, D., Vehtari, A. and Gelman, A. (2018).
Validating Bayesian inference algorithms with simulation-based calibration.
arXiv:1804.06788.

Säilynoja, T., Bürkner, P.-C. and Vehtari, A. (2022). Graphical test for discrete
uniformity and its applications in goodness-of-fit evaluation and multiple sample
comparison. Statistics and Computing 32, 32. doi:10.1007/s11222-022-10090-6

Modrák, M., Moon, A. H., Kim, S., Bürkner, P. and others (2023). Simulation-based
calibration checking for Bayesian computation: the choice of test quantities shapes
sensitivity. Bayesian Analysis. doi:10.1214/23-BA1404
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bayesgmm import relabel  # noqa: E402
from bayesgmm._marginal_model import covariances_from_draws  # noqa: E402
from bayesgmm.marginal import MarginalGaussianMixture  # noqa: E402

N_FEATURES = 2
# Draws that the ranks are computed among (thinned evenly from all draws).
RANK_DRAWS = 100
# Scales of the data the prior is stated in: the data's own units.
LOC, SCALE = 0.0, 1.0
DEFAULT_OUT = Path("docs/_static/calibration")
# The level the table flags a setting at (Bonferroni over its scalars).
FLAG_LEVEL = 0.01


# The DP's prior, fixed (its defaults are data-dependent): m0 = 0, the prior guess of
# a component covariance 0.25 I, and the package's defaults beta0 = 0.01 (a component
# mean is 10 component spreads wide) and nu0 = d + 2; alpha fixed at 1; truncation 20.
DP_TRUNCATION = 20
DP_CONCENTRATION = 1.0
DP_PRIORS: dict[str, Any] = {
    "mean": np.zeros(N_FEATURES),
    "mean_precision": 0.01,
    "degrees_of_freedom": N_FEATURES + 2.0,
    "covariance": 0.25 * np.eye(N_FEATURES),
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of the table: an engine on data of one shape."""

    engine: str
    covariance_type: str
    n_components: int
    n_samples: int
    replications: int

    @property
    def name(self) -> str:
        return f"{self.engine}_{self.covariance_type}_k{self.n_components}_n{self.n_samples}"

    @property
    def seed(self) -> int:
        """A seed of its own, from the name (stable across runs and Python versions)."""
        return zlib.crc32(self.name.encode())


# The default run, sized for about half an hour on two shared cores: a NUTS fit at
# n = 100 takes 1-2 s, at n = 1000 about 5 s, Laplace's at n = 10,000 a few seconds,
# the DP's at n = 1000 about 10 s (more when the cores are busy). The DP gets 100
# replications: only about a quarter of its fits do not warn, and their coverage is the
# number that matters.
DEFAULT_SETTINGS: tuple[Setting, ...] = (
    *(Setting("nuts", kind, k, 100, 100) for kind in ("diag", "full") for k in (2, 3)),
    *(Setting("nuts", kind, k, 1000, 30) for kind in ("diag", "full") for k in (2, 3)),
    *(Setting("laplace", "full", k, n, 30) for k in (2, 3) for n in (1000, 10_000)),
    Setting("dp", "full", DP_TRUNCATION, 1000, 100),
    Setting("em-bootstrap", "full", 2, 1000, 30),
)


# ---------------------------------------------------------------- the prior
@functools.lru_cache(maxsize=8)
def _prior_sampler(covariance_type: str, n_components: int) -> tuple[Callable[[], Any], list]:
    """The compiled forward sampler of the model's free variables, and its random generators."""
    from pymc.pytensorf import compile

    placeholder = np.random.default_rng(0).normal(size=(n_components + 1, N_FEATURES))
    model = MarginalGaussianMixture(
        n_components, covariance_type=covariance_type, loc=LOC, scale=SCALE
    ).build_model(placeholder)
    names = [rv.name for rv in model.free_RVs]
    fn, updates = compile(
        inputs=[],
        outputs=[model[name] for name in names],
        random_seed=0,
        return_updates=True,
        mode="FAST_COMPILE",
    )
    return (lambda: dict(zip(names, fn(), strict=True))), list(updates)


def draw_truth(setting: Setting, replication: int) -> dict[str, np.ndarray]:
    """Draw theta from the model's prior (its own PyMC graph), seeded by the replication.

    Returns
    -------
    dict
        ``weights`` (K,), ``means`` (K, d) and full ``covariances`` (K, d, d), in
        the data's units (``loc=0, scale=1``).
    """
    from pymc.pytensorf import reseed_rngs

    sampler, rngs = _prior_sampler(setting.covariance_type, setting.n_components)
    reseed_rngs(rngs, [setting.seed, replication, 0])
    values = {name: np.asarray(v)[None] for name, v in sampler().items()}
    k, d = setting.n_components, N_FEATURES
    covariances = covariances_from_draws(values, setting.covariance_type, k, d)[0]
    return {
        "weights": values["weights"][0],
        "means": values["means"][0],
        "covariances": covariances,
    }


def draw_dp_truth(setting: Setting, replication: int) -> dict[str, np.ndarray]:
    """Draw theta from the DP mixture's prior (:data:`DP_PRIORS`), full covariances.

    Stick-breaking ``v_k ~ Beta(1, alpha)`` for k < T, ``v_T = 1``,
    ``pi_k = v_k prod_{j<k} (1 - v_j)``; ``Lambda_k ~ Wishart(nu0, W0)`` with
    ``W0^{-1} = (nu0 - d - 1) C`` (so ``E[Sigma_k] = C``) and
    ``mu_k ~ N(m0, (beta0 Lambda_k)^{-1})``, as :class:`bayesgmm.DPGaussianMixture`
    states its model.
    """
    from scipy import stats

    rng = np.random.default_rng([setting.seed, replication, 0])
    t, d = DP_TRUNCATION, N_FEATURES
    sticks = rng.beta(1.0, DP_CONCENTRATION, size=t)
    sticks[-1] = 1.0
    weights = sticks * np.concatenate([[1.0], np.cumprod(1.0 - sticks[:-1])])
    nu0 = DP_PRIORS["degrees_of_freedom"]
    w0 = np.linalg.inv((nu0 - d - 1.0) * DP_PRIORS["covariance"])
    precisions = stats.wishart(df=nu0, scale=w0).rvs(size=t, random_state=rng)
    covariances = np.linalg.inv(precisions)
    chol = np.linalg.cholesky(covariances / DP_PRIORS["mean_precision"])
    means = DP_PRIORS["mean"] + np.einsum("kab,kb->ka", chol, rng.standard_normal((t, d)))
    return {"weights": weights, "means": means, "covariances": covariances}


def simulate(truth: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """n rows of the mixture ``truth``: a label from the weights, then a normal draw."""
    labels = rng.choice(truth["weights"].size, size=n, p=truth["weights"])
    chol = np.linalg.cholesky(truth["covariances"])
    noise = rng.standard_normal((n, truth["means"].shape[1]))
    return truth["means"][labels] + np.einsum("nab,nb->na", chol[labels], noise)


# ------------------------------------------------------------------ engines
@dataclasses.dataclass(frozen=True)
class Fit:
    """Relabelled draws (weights (S, K), means (S, K, d), covariances (S, K, d, d)).

    ``reference`` is the mixture the draws were relabelled against, None when the
    engine is judged on label-invariant quantities only (the DP); ``warned`` says
    whether the engine warned about its own result.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    reference: Any
    warned: bool


def _marginal_fit(X: np.ndarray, setting: Setting, seed: int, method: str) -> Fit:
    model = MarginalGaussianMixture(
        setting.n_components, covariance_type=setting.covariance_type, loc=LOC, scale=SCALE
    )
    kwargs: dict[str, Any] = {"draws": 1000}
    if method == "nuts":
        kwargs = {"draws": 500, "tune": 500, "chains": 2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            X,
            method=method,
            random_state=seed,
            progressbar=False,
            log_likelihood=False,
            **kwargs,
        )
    post = model.idata_["posterior"]
    k, d = setting.n_components, X.shape[1]
    return Fit(
        weights=np.asarray(post["weights"].values).reshape(-1, k),
        means=np.asarray(post["means"].values).reshape(-1, k, d),
        covariances=np.asarray(post["covariances"].values).reshape(-1, k, d, d),
        # The relabelling's fixed point: every draw was assigned against the mean
        # of the relabelled draws, which is params_.
        reference=model.params_,
        warned=any(issubclass(w.category, UserWarning) for w in caught),
    )


def fit_nuts(X: np.ndarray, setting: Setting, seed: int) -> Fit:
    """NUTS (nutpie): 2 chains, 500 tuning steps and 500 kept draws each."""
    return _marginal_fit(X, setting, seed, "nuts")


def fit_laplace(X: np.ndarray, setting: Setting, seed: int) -> Fit:
    """Laplace's method at the posterior mode: 1000 independent draws."""
    return _marginal_fit(X, setting, seed, "laplace")


def fit_dp(X: np.ndarray, setting: Setting, seed: int) -> Fit:
    """The variational DP mixture (CAVI), 1000 draws of ``to_datatree``.

    Its prior is not the finite mixture's: the truths come from the DP's own prior
    (:func:`draw_dp_truth`), and the number of occupied components varies, so the
    test quantities are label-invariant (:func:`invariant_scalars`). Whatever
    ``to_datatree`` returns (e.g. importance-reweighted draws) is what is judged.
    """
    from bayesgmm.dirichlet_process import DPGaussianMixture

    dp = DPGaussianMixture(
        DP_TRUNCATION,
        covariance_type="full",
        concentration=DP_CONCENTRATION,
        priors=DP_PRIORS,
        progressbar=False,
        random_state=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dp.fit(X)
        tree = dp.to_datatree(n_draws=1000, random_state=seed)
    post = tree["posterior"]
    t, d = DP_TRUNCATION, X.shape[1]
    return Fit(
        weights=np.asarray(post["weights"].values).reshape(-1, t),
        means=np.asarray(post["means"].values).reshape(-1, t, d),
        covariances=np.asarray(post["covariances"].values).reshape(-1, t, d, d),
        reference=None,
        warned=any(issubclass(w.category, UserWarning) for w in caught),
    )


def fit_em_bootstrap(X: np.ndarray, setting: Setting, seed: int) -> Fit:
    """EM's bootstrap replicates as draws (``EMGaussianMixture.bootstrap``)."""
    from bayesgmm.em import EMGaussianMixture

    em = EMGaussianMixture(
        setting.n_components, covariance_type=setting.covariance_type, random_state=seed
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        em.fit(X)
        tree = em.bootstrap(X, 200, random_state=seed)
    boot = tree["bootstrap"]
    k, d = setting.n_components, X.shape[1]
    weights = np.asarray(boot["weights"].values).reshape(-1, k)
    means = np.asarray(boot["means"].values).reshape(-1, k, d)
    covariances = np.asarray(boot["covariances"].values).reshape(-1, k, d, d)
    reference = (weights.mean(axis=0), means.mean(axis=0), covariances.mean(axis=0))
    return Fit(weights, means, covariances, reference, bool(caught))


ENGINES: dict[str, Callable[[np.ndarray, Setting, int], Fit]] = {
    "nuts": fit_nuts,
    "laplace": fit_laplace,
    "dp": fit_dp,
    "em-bootstrap": fit_em_bootstrap,
}


# ------------------------------------------------------------- the statistics
def scalar_names(k: int, d: int) -> list[str]:
    """Names of the test quantities, in the order of :func:`scalars`."""
    return (
        [f"weights[{j}]" for j in range(k)]
        + [f"means[{j},{f}]" for j in range(k) for f in range(d)]
        + [f"log_sd[{j},{f}]" for j in range(k) for f in range(d)]
    )


def scalars(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """(S, m) test quantities: weights, means and log standard deviations of (S, ...) draws."""
    s = weights.shape[0]
    log_sd = 0.5 * np.log(np.diagonal(covariances, axis1=-2, axis2=-1))
    return np.concatenate([weights, means.reshape(s, -1), log_sd.reshape(s, -1)], axis=1)


def invariant_names(d: int) -> list[str]:
    """Names of the label-invariant test quantities, in the order of :func:`invariant_scalars`."""
    return (
        [f"mixture_mean[{f}]" for f in range(d)]
        + [f"mixture_log_sd[{f}]" for f in range(d)]
        + ["log_max_weight", "log_density_x0"]
    )


def invariant_scalars(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, x0: np.ndarray
) -> np.ndarray:
    """(S, 2 d + 2) quantities that no permutation of the components changes.

    The mean and log standard deviations of the mixture distribution, the log of the
    largest weight, and the log mixture density at the first simulated row ``x0``.
    """
    from scipy.special import logsumexp

    mean = np.einsum("sk,skd->sd", weights, means)
    outer = means[..., :, None] * means[..., None, :]
    second = np.einsum("sk,skab->sab", weights, covariances + outer)
    variance = np.diagonal(second, axis1=-2, axis2=-1) - mean**2
    chol = np.linalg.cholesky(covariances)
    white = np.linalg.solve(chol, (x0 - means)[..., None])[..., 0]
    log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    d = means.shape[-1]
    log_components = -0.5 * (white**2).sum(axis=-1) - log_det - 0.5 * d * np.log(2 * np.pi)
    with np.errstate(divide="ignore"):
        log_density = logsumexp(np.log(weights) + log_components, axis=1)
    return np.column_stack([mean, 0.5 * np.log(variance), np.log(weights.max(axis=1)), log_density])


def relabel_truth(truth: dict[str, np.ndarray], reference: Any) -> dict[str, np.ndarray]:
    """The truth's components reordered by the rule that relabelled the draws.

    One pass of :func:`bayesgmm.relabel.relabel_draws` against ``reference``: the
    assignment minimising the summed Kullback-Leibler divergences of the truth's
    components from the reference's, the step every draw passed at the fixed point.
    """
    arrays = (truth["weights"][None], truth["means"][None], truth["covariances"][None])
    perm = relabel.relabel_draws(*arrays, reference, max_iter=1)
    w, m, c = relabel.apply_permutations(perm, *arrays)
    return {"weights": w[0], "means": m[0], "covariances": c[0]}


def replication(setting: Setting, r: int) -> list[dict[str, Any]]:
    """Run replication ``r`` of ``setting``: one row per scalar (rank, PIT, coverage)."""
    truth = (draw_dp_truth if setting.engine == "dp" else draw_truth)(setting, r)
    rng = np.random.default_rng([setting.seed, r, 1])
    X = simulate(truth, setting.n_samples, rng)
    t0 = time.perf_counter()
    fit = ENGINES[setting.engine](X, setting, int(rng.integers(2**31 - 1)))
    seconds = time.perf_counter() - t0
    truth_arrays = [truth[v][None] for v in ("weights", "means", "covariances")]
    if fit.reference is None:
        true_values = invariant_scalars(*truth_arrays, X[0])[0]
        draws = invariant_scalars(fit.weights, fit.means, fit.covariances, X[0])
        names = invariant_names(X.shape[1])
    else:
        truth = relabel_truth(truth, fit.reference)
        true_values = scalars(*(truth[v][None] for v in ("weights", "means", "covariances")))[0]
        draws = scalars(fit.weights, fit.means, fit.covariances)
        names = scalar_names(setting.n_components, X.shape[1])
    thinned = draws[np.linspace(0, draws.shape[0] - 1, RANK_DRAWS).round().astype(int)]
    ranks = (thinned < true_values).sum(axis=0)
    pit = (ranks + rng.random(ranks.size)) / (RANK_DRAWS + 1)
    q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=0)
    in50 = (q[1] < true_values) & (true_values < q[2])
    in90 = (q[0] < true_values) & (true_values < q[3])
    return [
        {
            "replication": r,
            "scalar": names[i],
            "truth": float(true_values[i]),
            "rank": int(ranks[i]),
            "pit": float(pit[i]),
            "in50": int(in50[i]),
            "in90": int(in90[i]),
            "warned": int(fit.warned),
            "seconds": round(seconds, 3),
        }
        for i in range(len(names))
    ]


_FIELDS = ("replication", "scalar", "truth", "rank", "pit", "in50", "in90", "warned", "seconds")


def run_setting(setting: Setting, runs: Path, *, verbose: bool = True) -> list[dict[str, Any]]:
    """Run the replications of ``setting`` not yet in ``runs/<name>.csv``, appending each.

    Returns every row in the file (earlier runs' included).
    """
    path = runs / f"{setting.name}.csv"
    rows = read_rows(path)
    done = {row["replication"] for row in rows}
    todo = [r for r in range(setting.replications) if r not in done]
    if todo and verbose:
        print(f"{setting.name}: {len(done)} done, {len(todo)} to run", flush=True)
    new_file = not path.exists()
    runs.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=_FIELDS)
        if new_file:
            writer.writeheader()
        for r in todo:
            result = replication(setting, r)
            writer.writerows(result)
            handle.flush()
            rows.extend(result)
            if verbose and (r + 1) % 10 == 0:
                print(f"  {setting.name}: {r + 1} replications, last {result[0]['seconds']} s")
    return [row for row in rows if row["replication"] < setting.replications]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a run file (numbers parsed), or [] when it does not exist."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        parsed: dict[str, Any] = {"scalar": row["scalar"]}
        for key in ("replication", "rank", "in50", "in90", "warned"):
            parsed[key] = int(row[key])
        for key in ("truth", "pit", "seconds"):
            parsed[key] = float(row[key])
        out.append(parsed)
    return out


def pit_dataset(rows: list[dict[str, Any]]) -> Any:
    """The PIT values as an xarray Dataset: one variable per scalar, dim ``replication``."""
    import xarray as xr

    names = list(dict.fromkeys(row["scalar"] for row in rows))
    by_name: dict[str, list[tuple[int, float]]] = {name: [] for name in names}
    for row in rows:
        by_name[row["scalar"]].append((row["replication"], row["pit"]))
    return xr.Dataset(
        {
            name: ("replication", np.array([p for _, p in sorted(values)]))
            for name, values in by_name.items()
        }
    )


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-scalar ``pot_c`` p-values, the Bonferroni p-value and the interval coverage."""
    import arviz_stats  # noqa: F401  (registers the azstats accessor)

    pits = pit_dataset(rows)
    p_values = {
        name: float(pits[name].azstats.uniformity_test(dim="replication", method="pot_c")[0])
        for name in pits.data_vars
    }
    m = len(p_values)
    worst = min(p_values, key=p_values.__getitem__)
    replications = len({row["replication"] for row in rows})
    quiet = [row["in90"] for row in rows if not row["warned"]]
    return {
        "replications": replications,
        "p_values": p_values,
        "p_bonferroni": min(1.0, m * p_values[worst]),
        "worst_scalar": worst,
        "coverage50": float(np.mean([row["in50"] for row in rows])),
        "coverage90": float(np.mean([row["in90"] for row in rows])),
        "warned": len({row["replication"] for row in rows if row["warned"]}),
        "coverage90_quiet": float(np.mean(quiet)) if quiet else float("nan"),
        "seconds": float(np.median([row["seconds"] for row in rows])),
    }


# ------------------------------------------------------------------- output
def plot(setting: Setting, rows: list[dict[str, Any]], path: Path) -> None:
    """ECDF-difference plot of every scalar's PIT values (``arviz_plots.plot_ecdf_pit``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from arviz_base import from_dict
    from arviz_plots import plot_ecdf_pit

    pits = pit_dataset(rows)
    tree = from_dict(
        {"prior_sbc": {name: pits[name].values[None, :] for name in pits.data_vars}},
        sample_dims=["chain", "draw"],
    )
    n_rows = -(-len(pits.data_vars) // 5)
    pc = plot_ecdf_pit(
        tree,
        backend="matplotlib",
        col_wrap=5,
        visuals={"xlabel": False},
        figure_kwargs={"figsize": (14, 2.4 * n_rows)},
    )
    figure = pc.viz["figure"].item() if hasattr(pc.viz["figure"], "item") else pc.viz["figure"]
    figure.supxlabel("PIT (normalised rank of the truth among the posterior draws)")
    figure.suptitle(
        f"{setting.engine}, {setting.covariance_type}, K = {setting.n_components}, "
        f"n = {setting.n_samples}: PIT ECDF - uniform CDF, {len(pits['replication'])} replications",
        y=1.02,
    )
    figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(figure)


def write_table(results: list[tuple[Setting, dict[str, Any] | str]], out: Path) -> str:
    """The markdown and CSV tables; returns the markdown."""
    header = (
        "| engine | covariance | K | n | replications | p-value (Bonferroni) | worst scalar "
        "| 50% coverage | 90% coverage | fits that warned | 90% coverage, fits that did not warn "
        "| s per fit |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    csv_rows = []
    for setting, summary in results:
        head = (
            f"| {setting.engine} | {setting.covariance_type} | {setting.n_components} "
            f"| {setting.n_samples} "
        )
        if isinstance(summary, str):
            lines.append(head + f"| - | not run: {summary} | | | | | | |")
            continue
        flag = " **rejected**" if summary["p_bonferroni"] < FLAG_LEVEL else ""
        lines.append(
            head + f"| {summary['replications']} | {summary['p_bonferroni']:.3g}{flag} "
            f"| {summary['worst_scalar']} | {summary['coverage50']:.2f} "
            f"| {summary['coverage90']:.2f} | {summary['warned']} "
            f"| {summary['coverage90_quiet']:.2f} | {summary['seconds']:.1f} |"
        )
        csv_rows.append(
            {
                "engine": setting.engine,
                "covariance_type": setting.covariance_type,
                "n_components": setting.n_components,
                "n_samples": setting.n_samples,
                "replications": summary["replications"],
                "p_bonferroni": summary["p_bonferroni"],
                "worst_scalar": summary["worst_scalar"],
                "coverage50": summary["coverage50"],
                "coverage90": summary["coverage90"],
                "fits_warned": summary["warned"],
                "coverage90_quiet": summary["coverage90_quiet"],
                "seconds_per_fit": summary["seconds"],
            }
        )
    markdown = header + "\n".join(lines) + "\n"
    # Not .md: Sphinx would read it as a page of its own; the docs page includes it.
    (out / "table.md.txt").write_text(markdown)
    if csv_rows:
        with (out / "calibration.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(csv_rows[0]))
            writer.writeheader()
            writer.writerows(csv_rows)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=sorted(ENGINES),
        default=sorted(ENGINES),
        help="engines to run (default: all)",
    )
    parser.add_argument(
        "--replications",
        type=int,
        default=None,
        help="replications per setting (default: 100 at n = 100, 30 above)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="run only the settings of these names, e.g. nuts_diag_k2_n100",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--fresh", action="store_true", help="discard earlier replications of these settings"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only redo the table and figures"
    )
    args = parser.parse_args(argv)
    runs = args.out / "runs"
    results: list[tuple[Setting, dict[str, Any] | str]] = []
    for setting in DEFAULT_SETTINGS:
        if args.replications is not None:
            setting = dataclasses.replace(setting, replications=args.replications)
        selected = setting.engine in args.engines and (
            args.only is None or setting.name in args.only
        )
        if args.fresh and selected:
            (runs / f"{setting.name}.csv").unlink(missing_ok=True)
        if selected and not args.report_only:
            rows = run_setting(setting, runs)
        else:
            rows = read_rows(runs / f"{setting.name}.csv")
            rows = [row for row in rows if row["replication"] < setting.replications]
        if not rows:
            results.append((setting, "no replications yet"))
            continue
        summary = summarize(rows)
        results.append((setting, summary))
        plot(setting, rows, args.out / f"ecdf_{setting.name}.png")
    print(write_table(results, args.out))


if __name__ == "__main__":
    main()
