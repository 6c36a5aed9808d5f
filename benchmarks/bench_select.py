"""Choose K by BIC with bayesgmm and with R's mclust on the same grid and the same data.

The grid is K = 1..9 and the four covariance structures the two share
(bayesgmm's ``full``, ``tied``, ``diag``, ``spherical`` are mclust's ``VVV``,
``EEE``, ``VVI``, ``VII``). The data are mclust's own data sets, exported by R
into a temporary directory at run time (they are GPL and never stored in this
repository), Old Faithful as shipped with bayesgmm, and a simulated 50,000 x 5
mixture. For every data set the table gives the wall time of
``mclust::Mclust`` (timed inside R, so R's start-up is not counted) and of
:func:`bayesgmm.select_n_components` at its defaults, their ratio (above 1:
bayesgmm is faster), both best BICs in mclust's sign convention
(``2 log L - n_par log n``, higher is better) and their difference.

``--panel`` also compares every (structure, K) fit that mclust completes: the
log-likelihood bayesgmm's EM reaches against mclust's (the log-likelihood is
recovered from mclust's BIC and its parameter count, which is the same as
bayesgmm's). A fit counts as a miss when bayesgmm's is lower by more than 0.01;
a fit bayesgmm rejects as degenerate (a spike on a few points) is counted apart.

Without ``Rscript`` or the mclust package the mclust columns are left out and
only mclust-free data sets run.

Usage::

    nice -n 10 python benchmarks/bench_select.py            # the benchmark table
    nice -n 10 python benchmarks/bench_select.py --panel    # and the per-fit panel
    python benchmarks/bench_select.py --only faithful,wdbc
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

STRUCTURES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
KS = range(1, 10)
SIMULATED = "simulated_50000x5"

# name -> R expression of a numeric matrix (mclust's data sets, as mclust's examples use them).
R_DATA = {
    "wdbc": "data(wdbc, package='mclust'); wdbc[, 3:12]",
    "GvHD.pos": "data(GvHD, package='mclust'); GvHD.pos",
    "GvHD.control": "data(GvHD, package='mclust'); GvHD.control",
    "wreath": "data(wreath, package='mclust'); wreath",
    "thyroid": "data(thyroid, package='mclust'); thyroid[, -1]",
    "banknote": "data(banknote, package='mclust'); banknote[, -1]",
    "diabetes": "data(diabetes, package='mclust'); diabetes[, -1]",
    "chevron": "data(chevron, package='mclust'); chevron[, -1]",
    "EuroUnemployment": "data(EuroUnemployment, package='mclust'); EuroUnemployment",
    "iris": "iris[, 1:4]",
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
models <- c("VVV", "EEE", "VVI", "VII")
for (name in strsplit(args[2], ",")[[1]]) {
  X <- as.matrix(read.csv(file.path(dir, paste0(name, ".csv"))))
  timing <- system.time(fit <- Mclust(X, G = 1:9, modelNames = models, verbose = FALSE))
  elapsed <- timing[["elapsed"]]
  bic <- fit$BIC
  rows <- list()
  for (m in models) for (g in 1:9) {
    value <- bic[as.character(g), m]
    npar <- nMclustParams(m, ncol(X), g)
    rows[[length(rows) + 1]] <- data.frame(model = m, G = g, bic = value,
      loglik = (value + npar * log(nrow(X))) / 2)
  }
  out <- do.call(rbind, rows)
  write.csv(out, file.path(dir, paste0(name, ".mclust.csv")), row.names = FALSE)
  cat(name, elapsed, "\n", file = file.path(dir, "times.txt"), append = TRUE)
}
"""


def mclust_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(
        ["Rscript", "-e", "library(mclust)"], capture_output=True, text=True, check=False
    )
    return done.returncode == 0


def export_r_data(directory: Path, names: list[str]) -> None:
    """Write mclust's data sets as CSV files into ``directory`` (with R, at run time)."""
    lines = [
        f"X <- local({{ {R_DATA[name]} }}); write.csv(as.matrix(X), "
        f"file.path('{directory}', '{name}.csv'), row.names = FALSE)"
        for name in names
    ]
    subprocess.run(["Rscript", "-e", "; ".join(lines)], check=True, capture_output=True)


def simulated(seed: int = 0) -> np.ndarray:
    """50,000 x 5: six overlapping Gaussian components of unequal sizes and shapes."""
    rng = np.random.default_rng(seed)
    k, d, n = 6, 5, 50_000
    weights = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    for j in range(k):
        rows = labels == j
        A = rng.normal(scale=0.6, size=(d, d)) + np.eye(d)
        X[rows] = rng.normal(scale=3.0, size=d) + rng.standard_normal((rows.sum(), d)) @ A.T
    return X


def run_mclust(directory: Path, names: list[str]) -> dict[str, tuple[float, object]]:
    """mclust's time and per-(model, G) table for every data set."""
    import pandas as pd

    script = directory / "bench_select.R"
    script.write_text(R_SCRIPT)
    subprocess.run(
        ["Rscript", str(script), str(directory), ",".join(names)], check=True, capture_output=True
    )
    times = {}
    for line in (directory / "times.txt").read_text().splitlines():
        name, seconds = line.split()
        times[name] = float(seconds)
    return {name: (times[name], pd.read_csv(directory / f"{name}.mclust.csv")) for name in names}


def run_bayesgmm(X: np.ndarray) -> tuple[float, object]:
    from bayesgmm import select_n_components

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        result = select_n_components(X, KS, random_state=0)
        elapsed = time.perf_counter() - start
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panel", action="store_true", help="compare every (structure, K) fit")
    parser.add_argument("--only", default="", help="comma-separated data set names")
    args = parser.parse_args()

    from bayesgmm.datasets import load_faithful

    with_r = mclust_available()
    names = ["faithful", *(R_DATA if with_r else []), SIMULATED]
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    if not with_r:
        print("Rscript with mclust not found: the mclust columns are left out.")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if with_r:
            export_r_data(directory, [name for name in names if name in R_DATA])
        data = {}
        for name in names:
            if name == "faithful":
                data[name] = np.asarray(load_faithful(), dtype=float)
            elif name == SIMULATED:
                data[name] = simulated()
            else:
                data[name] = np.loadtxt(directory / f"{name}.csv", delimiter=",", skiprows=1)
            if with_r and name not in R_DATA:
                np.savetxt(
                    directory / f"{name}.csv",
                    data[name],
                    delimiter=",",
                    header="a" + ",a" * (data[name].shape[1] - 1),
                    comments="",
                )
        peer = run_mclust(directory, names) if with_r else {}

    header = f"{'data':<18}{'n x d':>12}{'mclust s':>10}{'bayesgmm s':>12}{'ratio':>7}"
    header += f"{'BIC mclust':>13}{'BIC bayesgmm':>14}{'diff':>8}  best (mclust / bayesgmm)"
    print(header)
    panel_rows = []
    for name in names:
        X = data[name]
        seconds, result = run_bayesgmm(X)
        table = result.table
        ours = float(table["bic_mclust"].where(table["note"].str.len() == 0).max())
        best = f"{STRUCTURES[result.best_covariance_type]}-{result.best_n_components}"
        line = f"{name:<18}{f'{X.shape[0]} x {X.shape[1]}':>12}"
        if name in peer:
            r_seconds, r_table = peer[name]
            r_best = r_table.loc[r_table["bic"].idxmax()]
            line += f"{r_seconds:>10.2f}{seconds:>12.2f}{r_seconds / seconds:>7.2f}"
            line += f"{r_best['bic']:>13.2f}{ours:>14.2f}{ours - r_best['bic']:>8.2f}"
            line += f"  {r_best['model']}-{int(r_best['G'])} / {best}"
            for kind, model in STRUCTURES.items():
                for k in KS:
                    theirs = r_table[(r_table["model"] == model) & (r_table["G"] == k)].iloc[0]
                    if not np.isfinite(theirs["loglik"]):
                        continue
                    row = table[(table["covariance_type"] == kind) & (table["n_components"] == k)]
                    row = row.iloc[0]
                    panel_rows.append(
                        (
                            name,
                            model,
                            k,
                            float(theirs["loglik"]),
                            float(row["log_likelihood"]),
                            "degenerate" in str(row["note"]),
                        )
                    )
        else:
            line += f"{'':>10}{seconds:>12.2f}{'':>7}{'':>13}{ours:>14.2f}{'':>8}  {best}"
        print(line, flush=True)

    if args.panel and panel_rows:
        gaps = [(r, r[3] - r[4]) for r in panel_rows]
        misses = [(r, gap) for r, gap in gaps if gap > 0.01 and not r[5]]
        spikes = [(r, gap) for r, gap in gaps if gap > 0.01 and r[5]]
        print(
            f"\npanel: {len(panel_rows)} (structure, K) fits that mclust completes; "
            f"{len(panel_rows) - len(misses) - len(spikes)} reach mclust's log-likelihood "
            f"within 0.01, {len(misses)} miss, {len(spikes)} rejected as degenerate; "
            f"bayesgmm higher by > 0.01 in {sum(gap < -0.01 for _, gap in gaps)}"
        )
        for (name, model, k, theirs, ours_ll, _), gap in misses:
            print(
                f"  miss  {name:<18}{model}-{k}: mclust {theirs:.3f}, bayesgmm {ours_ll:.3f} "
                f"(gap {gap:.3f})"
            )
        for (name, model, k, theirs, ours_ll, _), _gap in spikes:
            print(f"  spike {name:<18}{model}-{k}: mclust {theirs:.3f}, bayesgmm {ours_ll:.3f}")


if __name__ == "__main__":
    main()
