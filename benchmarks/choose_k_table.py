"""The table of docs/how-to/choose-k.md: the number of components each criterion picks.

Runs every method of :func:`bayesgmm.select_n_components` on Old Faithful, the
galaxies velocities (MASS's version) and a simulated mixture with four components,
and prints one Markdown table: the chosen K per method and data set, with the
posterior probability of that K for the two posteriors over K. The LRT column
runs :func:`bayesgmm.bootstrap_lrt` with ``--n-boot`` replicates per test (999,
mclust's default, unless given) and prints every test's statistic and p-value; where
``Rscript`` with mclust is on the PATH, mclust's ``mclustBootstrapLRT`` is run on the
same data, model and number of replicates and printed beside it.

Run (minutes; NUTS for loo and sparse, the bootstrap for lrt)::

    PYTHONPATH=$PWD python benchmarks/choose_k_table.py [--quick] [--methods lrt] [--n-boot 999]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np

import bayesgmm
from bayesgmm.datasets import load_faithful, load_galaxies, make_mixture


def _data() -> dict[str, tuple[np.ndarray, str, int]]:
    """name -> (X, covariance type, largest K)."""
    simulated, _, _ = make_mixture(400, 4, 2, separation=2.0, random_state=7)
    return {
        "Old Faithful (n=272, d=2)": (load_faithful(), "full", 5),
        "galaxies (n=82, d=1)": (load_galaxies() / 1000.0, "full", 6),
        "simulated, K=4 (n=400, d=2)": (simulated, "full", 6),
    }


#: mclust's name for the covariance type "full" by the number of features.
_MCLUST_FULL = {1: "V", 2: "VVV"}


def _lrt_cell(X: np.ndarray, covariance_type: str, k_max: int, n_boot: int) -> str:
    """Run bayesgmm's bootstrap LRT (and mclust's, with Rscript): print the tests, say K."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = bayesgmm.bootstrap_lrt(
            X, covariance_type, max_components=k_max, n_boot=n_boot, random_state=0
        )
    seconds = time.perf_counter() - t0
    columns = ["n_components", "alternative", "statistic", "p_value", "n_failed"]
    print(tests[columns].round(4).to_string(index=False), flush=True)
    kept = int(tests.attrs["n_components"])
    print(f"bayesgmm bootstrap_lrt (n_boot={n_boot}): K = {kept} in {seconds:.0f} s", flush=True)
    cell = str(kept)
    mclust = _mclust_lrt(X, k_max, n_boot)
    if mclust is not None:
        cell += f" (mclust {mclust})"
    return cell


def _mclust_lrt(X: np.ndarray, k_max: int, n_boot: int) -> int | None:
    """mclust's ``mclustBootstrapLRT`` on X (full covariances); its K, or None without R."""
    if shutil.which("Rscript") is None:
        print("mclust: Rscript not on the PATH, not run", flush=True)
        return None
    model = _MCLUST_FULL.get(X.shape[1], "VVV")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "X.csv")
        np.savetxt(path, X, delimiter=",")
        script = (
            "suppressMessages(library(mclust)); set.seed(0);"
            f"X <- as.matrix(read.csv('{path}', header=FALSE));"
            f"b <- mclustBootstrapLRT(X, modelName='{model}', maxG={k_max - 1}, nboot={n_boot});"
            "print(b); cat('KEPT', sum(cumprod(b$p.value <= 0.05)) + 1)"
        )
        done = subprocess.run(
            ["Rscript", "-e", script], capture_output=True, text=True, check=False
        )
    print(done.stdout, done.stderr, flush=True)
    kept = [line for line in done.stdout.splitlines() if line.startswith("KEPT")]
    return int(kept[-1].split()[1]) if kept else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 NUTS draws, not 1000")
    parser.add_argument(
        "--methods", default="bic,icl,lrt,loo,dp,sparse", help="comma-separated methods"
    )
    parser.add_argument(
        "--n-boot", type=int, default=999, help="bootstrap replicates per LRT (mclust's 999)"
    )
    args = parser.parse_args()
    nuts = {"draws": 500, "tune": 500} if args.quick else {"draws": 1000, "tune": 1000}
    methods = args.methods.split(",")
    rows = []
    for name, (X, covariance_type, k_max) in _data().items():
        cells = []
        for method in methods:
            if method == "lrt":
                print(f"{name} lrt:", flush=True)
                cells.append(_lrt_cell(X, covariance_type, k_max, args.n_boot))
                continue
            t0 = time.perf_counter()
            fit_kwargs = nuts if method in ("loo", "sparse") else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = bayesgmm.select_n_components(
                    X,
                    range(1, k_max + 1),
                    method=method,
                    covariance_types=(covariance_type,),
                    random_state=0,
                    fit_kwargs=fit_kwargs,
                )
            seconds = time.perf_counter() - t0
            table = result.table
            k = result.best_n_components
            cell = str(k)
            if method in ("dp", "sparse"):
                p = float(table.loc[table["n_components"] == k, "probability"].iloc[0])
                cell += f" (P={p:.2f})"
            if method == "sparse":
                p_dp = table.set_index("n_components")["dp_probability"]
                cell += f"; DP mode {int(p_dp.idxmax())}"
            if method == "loo":
                same = table.loc[table["indistinguishable"], "n_components"].tolist()
                cell += f" (set {same})"
            cells.append(cell)
            print(f"{name} {method}: {cell} in {seconds:.0f} s", flush=True)
            if method in ("loo", "sparse"):
                print(table.round(3).to_string(), flush=True)
        rows.append((name, cells))
    print()
    print(
        "| data | " + " | ".join(m.upper() if m != "sparse" else "sparse" for m in methods) + " |"
    )
    print("|---" * (len(methods) + 1) + "|")
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
