"""EM's bootstrap and the bootstrap likelihood-ratio test beside mclust's.

Part 1, standard errors: the same model (mclust name in brackets) is fitted to
the same data by bayesgmm's EM and by mclust's ``Mclust``, and both are
bootstrapped with the same number of replicates and the same resampling type
(``MclustBootstrap`` types ``bs``, ``wlbs``, ``pb``, ``jk``). The table gives
both sets of standard errors (``summary(boot, what = "se")`` for mclust,
:meth:`EMGaussianMixture.bootstrap_summary` for bayesgmm) for every weight,
mean and variance, their ratio, and both wall-clock times. Components are
matched by the order of their first mean. Two bootstraps of the same fit differ
by Monte Carlo error: with B replicates a standard error is known to about
``1 / sqrt(2 (B - 1))`` relative (2.2% at B = 999), so ratios within a few
percent of 1 are agreement.

Part 2, the number of components: bayesgmm's :func:`bayesgmm.bootstrap_lrt`
beside mclust's ``mclustBootstrapLRT`` (sequential, stopping at the first K not
rejected at 5%): the observed statistics, the p-values and the K each keeps.

mclust stops each replicate's EM when the log-likelihood changes by less than
1e-5 relative; bayesgmm's default is 1e-8 (``--tol``). Where components overlap
(Old Faithful with three tied components) a replicate stopped early stays
closer to the fit it started from, and mclust's standard errors come out
smaller; ``--tol 1e-5`` reproduces that.

Data: Old Faithful (bayesgmm.datasets.load_faithful; R's built-in ``faithful``)
and Fisher's iris measurements (R's built-in ``iris``, exported by R into a
temporary directory at run time). Without ``Rscript`` and mclust the mclust
columns are left empty and iris is skipped.

Usage::

    python benchmarks/bench_bootstrap.py                 # both parts, B = 999 / 199
    python benchmarks/bench_bootstrap.py --part se --n-boot 999
    python benchmarks/bench_bootstrap.py --part lrt --n-boot-lrt 199
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayesgmm import EMGaussianMixture, bootstrap_lrt
from bayesgmm.bootstrap import BootstrapWarning
from bayesgmm.datasets import load_faithful

MCLUST_NAMES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
TYPES = {"nonparametric": "bs", "weighted": "wlbs", "parametric": "pb", "jackknife": "jk"}
# (data set, covariance type, K) for the standard errors; (data set, type) for the LRT.
SE_CASES = [("faithful", "tied", 3), ("faithful", "full", 2), ("iris", "full", 2)]
LRT_CASES = [("faithful", "tied"), ("faithful", "full"), ("iris", "full")]

R_BOOT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- read.csv(args[1])
m <- Mclust(X, G = as.integer(args[2]), modelNames = args[3], verbose = FALSE)
elapsed <- system.time(b <- MclustBootstrap(m, nboot = as.integer(args[4]), type = args[5],
                                             verbose = FALSE))[["elapsed"]]
s <- summary(b, what = "se")
G <- m$G; d <- ncol(X)
cat("elapsed,", elapsed, "\n", sep = "")
cat("nonfit,", b$nonfit, "\n", sep = "")
cat("loglik,", m$loglik, "\n", sep = "")
for (k in 1:G) {
  cat("weights,", k - 1, ",,,", m$parameters$pro[k], ",", s$pro[k], "\n", sep = "")
  for (i in 1:d) {
    cat("means,", k - 1, ",", i - 1, ",,", m$parameters$mean[i, k], ",", s$mean[i, k], "\n",
        sep = "")
    for (j in i:d) {
      cat("covariances,", k - 1, ",", i - 1, ",", j - 1, ",",
          m$parameters$variance$sigma[i, j, k], ",", s$variance[i, j, k], "\n", sep = "")
    }
  }
}
"""

R_LRT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- read.csv(args[1])
elapsed <- system.time(t <- mclustBootstrapLRT(X, modelName = args[2],
                                               nboot = as.integer(args[3]),
                                               verbose = FALSE))[["elapsed"]]
cat("elapsed,", elapsed, "\n", sep = "")
for (g in seq_along(t$G)) cat(t$G[g], ",", t$obs[g], ",", t$p.value[g], "\n", sep = "")
"""


def have_mclust() -> bool:
    """Whether ``Rscript`` runs and loads mclust."""
    if shutil.which("Rscript") is None:
        return False
    result = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(mclust))"], capture_output=True
    )
    return result.returncode == 0


def load_data(name: str, workdir: Path, mclust: bool) -> pd.DataFrame | None:
    """The data set as a DataFrame, written to ``workdir/<name>.csv`` for R."""
    path = workdir / f"{name}.csv"
    if name == "faithful":
        frame = load_faithful(as_frame=True)
        frame.to_csv(path, index=False)
        return frame
    if not mclust:
        return None
    subprocess.run(
        ["Rscript", "-e", f"write.csv(iris[, 1:4], '{path}', row.names = FALSE)"],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(path)


def run_r(script: str, workdir: Path, *args: str) -> str:
    """Run an R script with arguments; return its standard output."""
    file = workdir / "script.R"
    file.write_text(script)
    result = subprocess.run(
        ["Rscript", str(file), *args], capture_output=True, text=True, check=True
    )
    return result.stdout


def mclust_se(
    workdir: Path, name: str, k: int, covariance_type: str, n_boot: int, method: str
) -> tuple[pd.DataFrame, float, int]:
    """mclust's estimates and bootstrap standard errors, its time and its failed count."""
    out = run_r(
        R_BOOT,
        workdir,
        str(workdir / f"{name}.csv"),
        str(k),
        MCLUST_NAMES[covariance_type],
        str(n_boot),
        TYPES[method],
    )
    lines = out.strip().splitlines()
    meta = {line.split(",")[0]: float(line.split(",")[1]) for line in lines[:3]}
    table = pd.read_csv(
        io.StringIO("\n".join(lines[3:])),
        names=["parameter", "component", "i", "j", "estimate", "se"],
    )
    return table, meta["elapsed"], int(meta["nonfit"])


def bayesgmm_se(
    X: pd.DataFrame, k: int, covariance_type: str, n_boot: int, method: str, tol: float
) -> tuple[pd.DataFrame, float, dict[str, int]]:
    """bayesgmm's estimates and standard errors in the layout of :func:`mclust_se`."""
    model = EMGaussianMixture(
        k, covariance_type=covariance_type, n_init=10, tol=1e-8, max_iter=5000, random_state=0
    ).fit(X)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BootstrapWarning)
        tree = model.bootstrap(X, n_boot, method=method, random_state=1, tol=tol)
    elapsed = time.perf_counter() - start
    summary = model.bootstrap_summary()
    features = list(tree["bootstrap"]["feature"].values)
    rows = []
    for (parameter, component, f1, f2), row in summary.iterrows():
        i = features.index(f1) if f1 else np.nan
        j = features.index(f2) if f2 else np.nan
        rows.append((parameter, component, i, j, row["estimate"], row["se"]))
    table = pd.DataFrame(rows, columns=["parameter", "component", "i", "j", "estimate", "se"])
    counts = {key: int(tree.attrs[key]) for key in ("n_failed", "n_degenerate", "n_not_converged")}
    return table, elapsed, counts


def match_components(table: pd.DataFrame) -> pd.DataFrame:
    """Renumber components by the order of their first mean, so two fits line up."""
    first = table[(table["parameter"] == "means") & (table["i"] == 0)]
    order = first.sort_values("estimate")["component"].tolist()
    table = table.copy()
    table["component"] = table["component"].map({c: r for r, c in enumerate(order)})
    return table


def part_se(workdir: Path, mclust: bool, n_boot: int, methods: list[str], tol: float) -> None:
    print(f"\n== Bootstrap standard errors, B = {n_boot} (jackknife: B = n), tol = {tol:g} ==")
    for name, covariance_type, k in SE_CASES:
        X = load_data(name, workdir, mclust)
        if X is None:
            print(f"\n{name}: skipped (needs R)")
            continue
        for method in methods:
            ours, ours_time, counts = bayesgmm_se(X, k, covariance_type, n_boot, method, tol)
            ours = match_components(ours)
            header = (
                f"\n{name}, {covariance_type} ({MCLUST_NAMES[covariance_type]}), K={k}, "
                f"{method} ({TYPES[method]}): bayesgmm {ours_time:.2f} s, {counts}"
            )
            if not mclust:
                print(header)
                print(ours.to_string(index=False))
                continue
            theirs, their_time, nonfit = mclust_se(
                workdir, name, k, covariance_type, n_boot, method
            )
            theirs = match_components(theirs)
            print(f"{header}; mclust {their_time:.2f} s, nonfit {nonfit}")
            merged = ours.merge(
                theirs, on=["parameter", "component", "i", "j"], suffixes=("", "_mclust")
            )
            merged["se_ratio"] = merged["se"] / merged["se_mclust"]
            print(
                merged[
                    ["parameter", "component", "i", "j", "estimate", "estimate_mclust"]
                    + ["se", "se_mclust", "se_ratio"]
                ].to_string(index=False, float_format=lambda v: f"{v:.4g}")
            )
            ratio = merged["se_ratio"]
            print(
                f"se ratio: median {ratio.median():.3f}, range {ratio.min():.3f}-"
                f"{ratio.max():.3f}; time ratio mclust/bayesgmm {their_time / ours_time:.1f}x"
            )


def part_lrt(workdir: Path, mclust: bool, n_boot: int) -> None:
    print(f"\n== Bootstrap likelihood-ratio test, B = {n_boot} ==")
    for name, covariance_type in LRT_CASES:
        X = load_data(name, workdir, mclust)
        if X is None:
            print(f"\n{name}: skipped (needs R)")
            continue
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BootstrapWarning)
            ours = bootstrap_lrt(X, covariance_type, n_boot=n_boot, random_state=0)
        ours_time = time.perf_counter() - start
        print(
            f"\n{name}, {covariance_type} ({MCLUST_NAMES[covariance_type]}): bayesgmm keeps "
            f"K={ours.attrs['n_components']} ({ours_time:.1f} s)"
        )
        print(ours[["n_components", "statistic", "p_value", "n_failed"]].to_string(index=False))
        if mclust:
            out = run_r(
                R_LRT,
                workdir,
                str(workdir / f"{name}.csv"),
                MCLUST_NAMES[covariance_type],
                str(n_boot),
            )
            lines = out.strip().splitlines()
            their_time = float(lines[0].split(",")[1])
            theirs = pd.read_csv(
                io.StringIO("\n".join(lines[1:])), names=["n_components", "statistic", "p_value"]
            )
            rejected = theirs["p_value"] <= 0.05
            kept = (
                int(theirs.loc[~rejected, "n_components"].iloc[0])
                if (~rejected).any()
                else int(theirs["n_components"].iloc[-1]) + 1
            )
            print(f"mclust keeps K={kept} ({their_time:.1f} s)")
            print(theirs.to_string(index=False))
            print(
                f"same K: {kept == ours.attrs['n_components']}; time ratio mclust/bayesgmm "
                f"{their_time / ours_time:.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["se", "lrt", "all"], default="all")
    parser.add_argument("--n-boot", type=int, default=999)
    parser.add_argument("--n-boot-lrt", type=int, default=199)
    parser.add_argument(
        "--tol",
        type=float,
        default=1e-8,
        help="bayesgmm's relative tolerance per replicate (mclust's default is 1e-5)",
    )
    parser.add_argument("--methods", nargs="+", default=list(TYPES), choices=list(TYPES))
    args = parser.parse_args()
    mclust = have_mclust()
    print(f"mclust available: {mclust}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.part in ("se", "all"):
            part_se(workdir, mclust, args.n_boot, args.methods, args.tol)
        if args.part in ("lrt", "all"):
            part_lrt(workdir, mclust, args.n_boot_lrt)


if __name__ == "__main__":
    main()
