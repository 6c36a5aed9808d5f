"""LOO selection over K = 1..6 against one K = 6 fit, on Old Faithful, in the same run.

Times ``select_n_components(X, range(1, 7), method="loo", covariance_types=("full",))``
and one ``MarginalGaussianMixture(6).fit(X)`` with the same sampler settings, each in a
fresh Python process (imports, loading the numba density from numba's disk cache, EM
start, sampling, pointwise log-likelihood, PSIS and checks all counted). Both processes
find numba's cache in the same state: a warm-up process loads (and, the first time on a
machine, compiles) the density before either is timed, so neither pays for compiling.
The selection run also reports, per fit it made, K, the seconds spent in ``fit`` and
that fit's own timings (``start``: EM, ``compile``: loading the density, ``sample``,
``log_likelihood``), and the seconds spent outside ``fit`` (PSIS-LOO, checks,
comparison). Prints the ratio selection / single fit and the chosen K.

Timings on a loaded machine are noisy; the ratio of two runs made one after the other
is what to read.

Usage::

    nice -n 10 python benchmarks/bench_select_loo.py [--draws 500 --tune 500 --chains 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, warnings
t_import = time.perf_counter()
import numpy as np
from bayesgmm import MarginalGaussianMixture, select_n_components
from bayesgmm.datasets import load_faithful
import bayesgmm.marginal as marginal

settings = json.loads(sys.argv[2])
X = load_faithful()
fits = []
original = marginal.MarginalGaussianMixture.fit

def timed_fit(self, *args, **kwargs):
    t0 = time.perf_counter()
    out = original(self, *args, **kwargs)
    fits.append({"k": self.n_components, "seconds": time.perf_counter() - t0,
                 **{key: round(value, 2) for key, value in self.timings_.items()}})
    return out

marginal.MarginalGaussianMixture.fit = timed_fit
imports = time.perf_counter() - t_import
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if sys.argv[1] == "select":
        result = select_n_components(X, range(1, 7), method="loo", covariance_types=("full",),
                                     random_state=settings.pop("seed"), fit_kwargs=settings)
        chosen = result.best_n_components
        notes = result.table[["n_components", "elpd", "eligible", "note"]].to_dict("records")
    elif sys.argv[1] == "single":
        MarginalGaussianMixture(6, covariance_type="full").fit(
            X, random_state=settings.pop("seed"), progressbar=False, **settings)
        chosen, notes = 6, []
    else:  # warm-up: load the density into numba's cache
        MarginalGaussianMixture(2, covariance_type="full").fit(
            X, random_state=0, progressbar=False, draws=10, tune=10, chains=1)
        chosen, notes = 0, []
seconds = time.perf_counter() - t0
print("RESULT " + json.dumps({"seconds": seconds, "imports": imports, "chosen": chosen,
                              "fits": fits, "notes": notes}, default=str))
"""


def _run(mode: str, settings: dict) -> dict:
    """Run one child process; its result, with the process's wall time."""
    env = dict(os.environ)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, json.dumps(settings)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{mode} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
    print(f"settings: {settings}; numba cache warm for both (warm-up process first)")
    _run("warmup", settings)
    single = _run("single", settings)
    print(
        f"one K=6 fit: {single['seconds']:.1f} s in fit ({single['wall']:.1f} s process, "
        f"{single['imports']:.1f} s imports); {single['fits']}",
        flush=True,
    )
    select = _run("select", settings)
    print(f"selection K=1..6: {select['seconds']:.1f} s ({select['wall']:.1f} s process)")
    in_fits = sum(f["seconds"] for f in select["fits"])
    for fit in select["fits"]:
        print(f"  fit {fit}")
    print(
        f"  in fit: {in_fits:.1f} s; outside fit (PSIS, checks, compare): "
        f"{select['seconds'] - in_fits:.1f} s; fits made: {len(select['fits'])}"
    )
    for row in select["notes"]:
        print(
            f"  K={row['n_components']} elpd={row['elpd']} eligible={row['eligible']} "
            f"note={row['note']!r}"
        )
    ratio = select["seconds"] / single["seconds"]
    print(f"chosen K: {select['chosen']}")
    print(
        f"ratio selection / one K=6 fit: {ratio:.2f} (process walls: "
        f"{select['wall'] / single['wall']:.2f})"
    )


if __name__ == "__main__":
    main()
