"""PyMC's documented mixture pattern against bayesgmm.MarginalGaussianMixture, fresh processes.

Every fit runs in a new Python process, the way a notebook whose kernel was just
restarted runs it, and the two models always run in the same cache state:

* ``cold``: numba's cache (``NUMBA_CACHE_DIR``) and PyTensor's compile directory
  (``PYTENSOR_FLAGS=base_compiledir=...``) are new empty folders for every process,
  as on a new machine: every compilation is paid;
* ``warm``: both caches are folders that one earlier (uncounted) run of the same
  model and case filled, as on a machine that fitted before (with
  ``--warm-in-place``, the default cache folders, after that uncounted run).

The peer is the pattern users copy today: Dirichlet weights, one ``LKJCholeskyCov``
per component, ``pm.Mixture`` over a Python list of ``MvNormal``, started from
k-means centres (without them its chains land in different labellings), sampled by
``pm.sample(nuts_sampler="nutpie")`` with nutpie's defaults. bayesgmm runs ``fit``
with its defaults (nutpie, low-rank mass matrix, target acceptance 0.9).

Reported per case, cache state and model (medians over ``--reps`` processes):
``compile`` (bayesgmm: loading or compiling its numba density and nutpie; peer: the
part of ``pm.sample`` that is not sampling, i.e. PyTensor and numba compiling the
model), ``sample`` (nutpie's tuning and draws), ``post`` (bayesgmm: EM start,
relabelling, pointwise log-likelihood, DataTree; peer: building the model and
k-means), ``total`` (the fit's wall time, imports excluded; ``import`` gives those),
minimum bulk ESS over the (relabelled) weights and means, ESS per second of
``total``, ESS per 1000 gradient evaluations, divergences and max R-hat. For
bayesgmm, ``again`` is a second fit of the same shape in the same process (new
data): its time outside sampling. Then the ESS/s ratio bayesgmm / peer per case and
cache state, and bayesgmm's "outside sampling <= sampling" check.

Run: ``.venv/bin/python benchmarks/bench_marginal.py [--reps 3] [--draws 1000
--tune 1000 --chains 4] [--case 0 --case 1] [--mode cold --mode warm]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

CASES = [(5000, 2, 3), (2000, 5, 4)]
MODELS = ("peer", "bayesgmm")


def make_data(n, d, k, seed):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=5.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        A = rng.normal(size=(d, d)) * 0.5 + np.eye(d)
        idx = labels == j
        X[idx] = means[j] + rng.standard_normal((idx.sum(), d)) @ A.T
    return X


def diagnostics(weights, means, divergences, n_steps):
    """Min bulk ESS and max R-hat over weights and means (chain, draw, ...)."""
    import arviz_stats
    import xarray as xr

    ds = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), weights),
            "means": (("chain", "draw", "component", "feature"), means),
        }
    )
    ess = float(arviz_stats.ess(ds, method="bulk").to_array().min())
    rhat = float(arviz_stats.rhat(ds).to_array().max())
    return {
        "ess": ess,
        "rhat": rhat,
        "divergences": int(divergences),
        "ess_per_1000_grads": 1000.0 * ess / float(n_steps),
    }


# ------------------------------------------------------------------ workers
def run_peer(X, k, draws, tune, chains, seed):
    t0 = time.perf_counter()
    import pymc as pm
    from sklearn.cluster import KMeans

    from bayesgmm.relabel import apply_permutations, relabel_draws

    imports = time.perf_counter() - t0
    n, d = X.shape
    t0 = time.perf_counter()
    centres = KMeans(k, n_init=3, random_state=seed).fit(X).cluster_centers_
    with pm.Model():
        w = pm.Dirichlet("w", a=np.ones(k))
        comps = []
        for j in range(k):
            chol, _, _ = pm.LKJCholeskyCov(
                f"chol{j}", n=d, eta=2.0, sd_dist=pm.Exponential.dist(1.0, shape=d)
            )
            mu = pm.Normal(f"mu{j}", 0.0, 10.0, shape=d, initval=centres[j])
            comps.append(pm.MvNormal.dist(mu=mu, chol=chol))
        pm.Mixture("obs", w=w, comp_dists=comps, observed=X)
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                nuts_sampler="nutpie",
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
            )
    call = time.perf_counter() - t1
    total = time.perf_counter() - t0
    sampling = float(trace["posterior"].attrs["sampling_time"])
    post = trace["posterior"]
    weights = post["w"].values
    means = np.stack([post[f"mu{j}"].values for j in range(k)], axis=2)
    covs = []
    for j in range(k):
        sd = post[f"chol{j}_stds"].values
        corr = post[f"chol{j}_corr"].values
        covs.append(sd[..., :, None] * corr * sd[..., None, :])
    covs = np.stack(covs, axis=2)
    flat = (chains * draws, k)
    perm = relabel_draws(
        weights.reshape(flat), means.reshape(flat + (d,)), covs.reshape(flat + (d, d))
    )
    w_rl = apply_permutations(perm, weights.reshape(flat)).reshape(weights.shape)
    m_rl = apply_permutations(perm, means.reshape(flat + (d,))).reshape(means.shape)
    stats = trace["sample_stats"]
    out = {
        "import": imports,
        "compile": call - sampling,
        "sample": sampling,
        "post": build,
        "total": total,
    }
    out.update(diagnostics(w_rl, m_rl, stats["diverging"].values.sum(), stats["n_steps"].sum()))
    return out


def run_bayesgmm(X, k, draws, tune, chains, seed, again=None):
    t0 = time.perf_counter()
    from bayesgmm.marginal import MarginalGaussianMixture

    imports = time.perf_counter() - t0

    def fit(data, random_state):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MarginalGaussianMixture(k, covariance_type="full").fit(
                data,
                draws=draws,
                tune=tune,
                chains=chains,
                random_state=random_state,
                progressbar=False,
            )
        return model, time.perf_counter() - t0

    model, total = fit(X, seed)
    timings = model.timings_
    out = {
        "import": imports,
        "compile": timings["compile"],
        "sample": timings["sample"],
        "post": total - timings["compile"] - timings["sample"],
        "total": total,
    }
    post = model.idata_["posterior"]
    stats = model.idata_["sample_stats"]
    out.update(
        diagnostics(
            post["weights"].values,
            post["means"].values,
            stats["diverging"].values.sum(),
            stats["n_steps"].values.sum(),
        )
    )
    if again is not None:
        model, total = fit(again, seed + 1)
        out["again_outside"] = total - model.timings_["sample"]
        out["again_sample"] = model.timings_["sample"]
    return out


def worker(args):
    n, d, k = CASES[args.case]
    X = make_data(n, d, k, args.seed)
    if args.model == "peer":
        out = run_peer(X, k, args.draws, args.tune, args.chains, args.seed)
    else:
        again = make_data(n, d, k, args.seed + 100) if args.again else None
        out = run_bayesgmm(X, k, args.draws, args.tune, args.chains, args.seed, again)
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------- driver
def spawn(model, case, seed, cache, args, again=False, draws=None, tune=None):
    """One fit in a new process with numba's and PyTensor's caches under ``cache``.

    ``cache=None`` leaves both where the environment puts them (numba's next to the
    modules, PyTensor's in its default compile directory).
    """
    env = dict(os.environ)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = os.path.join(cache, "numba")
        flags = env.get("PYTENSOR_FLAGS", "")
        compiledir = os.path.join(cache, "pytensor")
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={compiledir}"]))
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        model,
        "--case",
        str(case),
        "--seed",
        str(seed),
        "--draws",
        str(draws or args.draws),
        "--tune",
        str(tune or args.tune),
        "--chains",
        str(args.chains),
    ] + (["--again"] if again else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{model} case {case} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def median(rows, key):
    values = [row[key] for row in rows if key in row]
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3, help="processes per case, mode and model")
    parser.add_argument("--case", type=int, choices=range(len(CASES)), action="append")
    parser.add_argument("--mode", choices=("cold", "warm"), action="append")
    parser.add_argument(
        "--warm-in-place",
        action="store_true",
        help="warm runs use the default numba/PyTensor caches (warmed first) instead of new ones",
    )
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.model = args.worker
        args.case = args.case[0]
        worker(args)
        return
    cases = args.case or list(range(len(CASES)))
    modes = args.mode or ["cold", "warm"]
    print(
        f"draws={args.draws} tune={args.tune} chains={args.chains}, nutpie for both, "
        f"{args.reps} fresh process(es) per row (medians); load average at start "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    header = (
        f"{'case':>14} {'cache':>5} {'model':>8} {'import':>6} {'compile':>7} {'sample':>7} "
        f"{'post':>6} {'total':>7} {'minESS':>7} {'ESS/s':>6} {'ESS/kgrad':>9} {'div':>4} "
        f"{'maxRhat':>7} {'again out':>9}"
    )
    summary = []
    for case in cases:
        n, d, k = CASES[case]
        label = f"n={n},d={d},k={k}"
        for mode in modes:
            warm_dir = (
                None if args.warm_in_place else tempfile.mkdtemp(prefix="bench-marginal-warm-")
            )
            if mode == "warm":
                for model in MODELS:  # fill the caches; not counted
                    spawn(model, case, 99, warm_dir, args, draws=50, tune=50)
            rows = {model: [] for model in MODELS}
            for rep in range(args.reps):
                for model in MODELS:
                    cache = warm_dir if mode == "warm" else tempfile.mkdtemp(prefix="bench-cold-")
                    again = model == "bayesgmm" and rep == 0
                    rows[model].append(spawn(model, case, 1 + rep, cache, args, again=again))
            print(header)
            for model in MODELS:
                r = rows[model]
                ess_s = statistics.median(row["ess"] / row["total"] for row in r)
                print(
                    f"{label:>14} {mode:>5} {model:>8} {median(r, 'import'):6.1f} "
                    f"{median(r, 'compile'):7.1f} {median(r, 'sample'):7.1f} "
                    f"{median(r, 'post'):6.1f} {median(r, 'total'):7.1f} {median(r, 'ess'):7.0f} "
                    f"{ess_s:6.1f} {median(r, 'ess_per_1000_grads'):9.1f} "
                    f"{max(row['divergences'] for row in r):4d} "
                    f"{max(row['rhat'] for row in r):7.3f} {median(r, 'again_outside'):9.2f}",
                    flush=True,
                )
            ratio = statistics.median(
                (b["ess"] / b["total"]) / (p["ess"] / p["total"])
                for b, p in zip(rows["bayesgmm"], rows["peer"], strict=True)
            )
            ours = rows["bayesgmm"]
            outside = median(ours, "total") - median(ours, "sample")
            summary.append(
                f"{label:>14} {mode:>5}: ESS/s bayesgmm/peer {ratio:.1f}x (median of per-rep "
                f"ratios); bayesgmm outside sampling {outside:.1f} s vs sampling "
                f"{median(ours, 'sample'):.1f} s; second fit outside sampling "
                f"{median(ours, 'again_outside'):.2f} s"
            )
            print(summary[-1], flush=True)
    print("\nsummary")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
