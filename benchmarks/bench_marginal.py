"""PyMC's documented mixture pattern against bayesgmm.MarginalGaussianMixture.

Same data, same draws/tune/chains, nutpie for both, in one process. The peer is
the pattern users copy today: Dirichlet weights, one ``LKJCholeskyCov`` per
component, ``pm.Mixture`` over a Python list of ``MvNormal``, started from
k-means centres (without them its chains land in different labellings and the
run is unusable). Both posteriors are relabelled with
:func:`bayesgmm.relabel.relabel_draws` before ESS and R-hat are computed.

Reported per case and model: wall time (compile + tune + draws; for bayesgmm the
whole ``fit``: EM start, sampling, relabelling, pointwise log-likelihood),
minimum bulk ESS over weights and means, ESS per second, divergences, max R-hat
over weights and means. "cold" is the first fit in the process; "again" is a
second fit on fresh data of the same shape (bayesgmm reuses its compiled model;
the peer rebuilds and recompiles, with numba's on-disk cache warm). With
``--fresh-cache`` PyTensor's compile directory (and with it numba's on-disk cache)
is a new empty folder, so "cold" includes every compilation for both models, as
on a new machine; without it, "cold" may reuse functions compiled by earlier runs.

bayesgmm samples with its defaults (nutpie's low-rank mass-matrix adaptation, target
acceptance 0.9); the peer with nutpie's defaults (diagonal adaptation, target
acceptance 0.8), as users run it. ``--peer-low-rank``
adds a row for the peer with the same low-rank adaptation, to separate what the
adaptation buys from what the model's formulation buys.

Run: ``.venv/bin/python benchmarks/bench_marginal.py [--draws 1000 --tune 1000 --chains 4]
[--case 0 --case 1] [--run cold --run again] [--again-seeds 2 3 4] [--fresh-cache]
[--peer-low-rank]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

CASES = [(5000, 2, 3), (2000, 5, 4)]


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


def diagnostics(weights, means, divergences):
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
    return ess, rhat, int(divergences)


def run_peer(X, k, draws, tune, chains, seed, adaptation=None):
    import pymc as pm
    from sklearn.cluster import KMeans

    from bayesgmm.relabel import apply_permutations, relabel_draws

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
                nuts_sampler_kwargs=None if adaptation is None else {"adaptation": adaptation},
            )
    wall = time.perf_counter() - t0
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
    div = trace["sample_stats"]["diverging"].values.sum()
    return wall, *diagnostics(w_rl, m_rl, div)


def run_bayesgmm(X, k, draws, tune, chains, seed):
    from bayesgmm.marginal import MarginalGaussianMixture

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MarginalGaussianMixture(k, covariance_type="full").fit(
            X, draws=draws, tune=tune, chains=chains, random_state=seed, progressbar=False
        )
    wall = time.perf_counter() - t0
    post = model.idata_["posterior"]
    div = model.idata_["sample_stats"]["diverging"].values.sum()
    return wall, *diagnostics(post["weights"].values, post["means"].values, div), model.timings_


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--case",
        type=int,
        choices=range(len(CASES)),
        action="append",
        help="index into CASES (repeatable); default: all",
    )
    parser.add_argument(
        "--run",
        choices=("cold", "again"),
        action="append",
        help="which runs per case (repeatable); default: both",
    )
    parser.add_argument(
        "--fresh-cache",
        action="store_true",
        help="compile into a new empty PyTensor/numba cache (a truly cold start)",
    )
    parser.add_argument(
        "--again-seeds",
        type=int,
        nargs="+",
        default=[2],
        help="data seeds of the 'again' runs, one run each (default: 2); 'cold' uses seed 1",
    )
    parser.add_argument(
        "--peer-low-rank",
        action="store_true",
        help="also run the peer with nutpie's low-rank mass-matrix adaptation",
    )
    args = parser.parse_args()
    if args.fresh_cache:
        if "pytensor" in sys.modules:
            raise SystemExit("--fresh-cache must be set before PyTensor is imported")
        cache = tempfile.mkdtemp(prefix="bench-marginal-pytensor-")
        flags = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={cache}"]))
        print(f"fresh PyTensor/numba cache in {cache}")
    models = [("peer", run_peer), ("bayesgmm", run_bayesgmm)]
    if args.peer_low_rank:
        models.insert(1, ("peer-lr", lambda *a: run_peer(*a, adaptation="low_rank")))
    cases = [CASES[i] for i in args.case] if args.case else CASES
    wanted = args.run or ["cold", "again"]
    runs = [("cold", 1)] if "cold" in wanted else []
    runs += [("again", seed) for seed in args.again_seeds] if "again" in wanted else []
    header = (
        f"{'case':>14} {'model':>9} {'run':>5} {'seed':>4} {'wall s':>7} {'minESS':>7} "
        f"{'ESS/s':>7} {'div':>4} {'maxRhat':>7}"
    )
    print(f"draws={args.draws} tune={args.tune} chains={args.chains}, nutpie for both")
    print(header, flush=True)
    for n, d, k in cases:
        results = {}
        for run, seed in runs:
            X = make_data(n, d, k, seed)
            for name, fn in models:
                out = fn(X, k, args.draws, args.tune, args.chains, seed)
                wall, ess, rhat, div = out[:4]
                results[(name, run, seed)] = ess / wall
                extra = f"  timings {out[4]}" if len(out) > 4 else ""
                print(
                    f"{f'n={n},d={d},k={k}':>14} {name:>9} {run:>5} {seed:4d} {wall:7.1f} "
                    f"{ess:7.0f} {ess / wall:7.1f} {div:4d} {rhat:7.3f}{extra}",
                    flush=True,
                )
        for run, seed in runs:
            for peer in [name for name, _ in models if name != "bayesgmm"]:
                ratio = results[("bayesgmm", run, seed)] / results[(peer, run, seed)]
                print(
                    f"{f'n={n},d={d},k={k}':>14} ESS/s ratio bayesgmm/{peer} ({run}, seed {seed}): "
                    f"{ratio:.1f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
