"""mclust's fourteen covariance models: bayesgmm's EM beside mclust, and its speed per iteration.

Two parts.

1. **Optimum.** For each data set (iris, banknote, wreath), each of the fourteen
   models and K = 1..9, the log-likelihood that ``EMGaussianMixture`` reaches
   (``n_init`` starts, ``tol=1e-8``) beside the one of ``mclust::Mclust`` (its
   hierarchical start, default control), both at their own optimum; the table
   counts, per model, the fits where the two agree (within 0.01), where bayesgmm
   is higher and where it is lower, with the largest gap each way. Fits of
   bayesgmm with a degenerate component (``degenerate_components_``: an inflated
   likelihood that BIC sets to infinity) are counted apart and not compared;
   "mclust NA" counts the fits mclust could not compute. The data sets are
   exported by R at run time into a temporary directory (mclust's data are GPL
   and are never stored in this repository); without ``Rscript`` and mclust this
   part is skipped.

2. **Speed.** EM's seconds per iteration of each model on simulated data at the
   same n, d, K and from the same start (``tol=0``, a fixed number of
   iterations), and the ratio to VVV's. The M-steps of VEI, VEE, EVE, VVE and VEV
   iterate, so their ratio is the one to watch.

Usage::

    python benchmarks/bench_mclust_models.py                 # both parts
    python benchmarks/bench_mclust_models.py --speed-only
    python benchmarks/bench_mclust_models.py --max-k 5 --datasets iris
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

from bayesgmm import EMGaussianMixture
from bayesgmm._gaussian import LAYOUTS, MCLUST_MODELS, DegenerateCovarianceError

R_EXPORT = r"""
suppressMessages(library(mclust))
args <- commandArgs(TRUE)
out <- args[1]; max_k <- as.integer(args[2]); sets <- strsplit(args[3], ",")[[1]]
data(banknote, package = "mclust"); data(wreath, package = "mclust")
all_sets <- list(iris = as.matrix(iris[, 1:4]), banknote = as.matrix(banknote[, -1]),
                 wreath = as.matrix(wreath))
rows <- list()
for (name in sets) {
  X <- all_sets[[name]]
  write.table(X, file.path(out, paste0(name, ".csv")), sep = ",", row.names = FALSE,
              col.names = FALSE)
  for (m in mclust.options("emModelNames")) for (G in 1:max_k) {
    t0 <- proc.time()[["elapsed"]]
    fit <- tryCatch(Mclust(X, G = G, modelNames = m, verbose = FALSE), error = function(e) NULL)
    t1 <- proc.time()[["elapsed"]]
    ll <- if (is.null(fit)) NA else fit$loglik
    rows[[length(rows) + 1]] <- data.frame(data = name, model = m, k = G, loglik = ll,
                                           seconds = t1 - t0)
  }
}
write.csv(do.call(rbind, rows), file.path(out, "mclust.csv"), row.names = FALSE)
"""


def mclust_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "library(mclust)"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def run_mclust(folder: Path, max_k: int, datasets: list[str]) -> dict:
    script = folder / "export.R"
    script.write_text(R_EXPORT)
    subprocess.run(
        ["Rscript", str(script), str(folder), str(max_k), ",".join(datasets)],
        check=True,
        capture_output=True,
    )
    table = {}
    lines = (folder / "mclust.csv").read_text().splitlines()[1:]
    for line in lines:
        name, model, k, loglik, seconds = (part.strip('"') for part in line.split(","))
        value = float(loglik) if loglik != "NA" else np.nan
        table[(name, model, int(k))] = (value, float(seconds))
    return table


def fit_bayesgmm(X: np.ndarray, model: str, k: int, n_init: int) -> tuple[float, bool, float]:
    """Log-likelihood, whether a component is degenerate, and seconds."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = EMGaussianMixture(
                k, covariance_type=model, n_init=n_init, tol=1e-8, max_iter=1000, random_state=0
            ).fit(X)
    except DegenerateCovarianceError:
        return np.nan, False, time.perf_counter() - start
    degenerate = bool(gm.degenerate_components_.size)
    return float(gm.score(X) * X.shape[0]), degenerate, time.perf_counter() - start


def optimum_part(max_k: int, datasets: list[str], n_init: int) -> None:
    if not mclust_available():
        print("Rscript with mclust not found: the comparison with mclust is skipped.")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference = run_mclust(folder, max_k, datasets)
        data = {name: np.loadtxt(folder / f"{name}.csv", delimiter=",") for name in datasets}
    print(f"\nLog-likelihood at the optimum, K = 1..{max_k}, bayesgmm n_init={n_init}")
    for name in datasets:
        X = data[name]
        print(f"\n{name} (n={X.shape[0]}, d={X.shape[1]})")
        print(
            f"{'model':6s} {'same':>4s} {'higher':>6s} {'lower':>5s} {'max gain':>9s} "
            f"{'max loss':>9s} {'degen':>5s} {'mclust NA':>9s} {'ours fail':>9s} "
            f"{'s ours':>7s} {'s mclust':>8s}  lower at K"
        )
        for model in MCLUST_MODELS:
            same, gains, losses, lower_at = 0, [], [], []
            degenerate_count, ours_fail, theirs_fail, ours_s, theirs_s = 0, 0, 0, 0.0, 0.0
            for k in range(1, max_k + 1):
                theirs, seconds = reference[(name, model, k)]
                ours, degenerate, ours_seconds = fit_bayesgmm(X, model, k, n_init)
                ours_s += ours_seconds
                theirs_s += seconds
                theirs_fail += int(np.isnan(theirs))
                ours_fail += int(np.isnan(ours))
                if degenerate:  # an inflated likelihood: no comparison
                    degenerate_count += 1
                    continue
                if np.isnan(theirs) or np.isnan(ours):
                    continue
                if abs(ours - theirs) <= 0.01:
                    same += 1
                elif ours > theirs:
                    gains.append(ours - theirs)
                else:
                    losses.append(ours - theirs)
                    lower_at.append(k)
            gain = max(gains) if gains else 0.0
            loss = min(losses) if losses else 0.0
            print(
                f"{model:6s} {same:4d} {len(gains):6d} {len(losses):5d} {gain:9.3f} {loss:9.3f} "
                f"{degenerate_count:5d} {theirs_fail:9d} {ours_fail:9d} {ours_s:7.1f} "
                f"{theirs_s:8.1f}  {lower_at}",
                flush=True,
            )


def simulated(n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        idx = labels == j
        A = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
        X[idx] = rng.normal(scale=3.0, size=d) + rng.standard_normal((idx.sum(), d)) @ A.T
    return X


def speed_part(cases: list[tuple[int, int, int]], n_iter: int, repeat: int) -> None:
    print(f"\nEM seconds per iteration ({n_iter} iterations from one start, best of {repeat})")
    for n, d, k in cases:
        X = simulated(n, d, k, seed=0)
        rng = np.random.default_rng(1)
        means = X[rng.choice(n, size=k, replace=False)]
        times = {}
        for model in MCLUST_MODELS:
            precisions = LAYOUTS[model].unit_covariances(k, d) / X.var(axis=0).mean()
            estimator = EMGaussianMixture(
                k,
                covariance_type=model,
                tol=0.0,
                max_iter=n_iter,
                weights_init=np.full(k, 1.0 / k),
                means_init=means,
                precisions_init=precisions,
            )
            best = np.inf
            for _ in range(repeat):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    estimator.fit(X)
                best = min(best, time.perf_counter() - start)
            times[model] = best / n_iter
        print(f"\nn={n}, d={d}, K={k}")
        print(f"{'model':6s} {'s/iter':>10s} {'/ VVV':>7s}")
        for model in MCLUST_MODELS:
            print(f"{model:6s} {times[model]:10.5f} {times[model] / times['VVV']:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-k", type=int, default=9)
    parser.add_argument("--datasets", default="iris,banknote,wreath")
    parser.add_argument("--n-init", type=int, default=5)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--optimum-only", action="store_true")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.speed_only:
        optimum_part(args.max_k, args.datasets.split(","), args.n_init)
    if not args.optimum_only:
        speed_part([(100_000, 10, 8), (10_000, 5, 4)], args.iterations, args.repeat)


if __name__ == "__main__":
    main()
