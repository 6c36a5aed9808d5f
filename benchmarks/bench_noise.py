"""EM with a noise component beside mclust's ``Mclust(initialization = list(noise = ...))``.

Data: three Gaussian clusters of 200 points in 2-D and 100 points uniform over a
box three units beyond them (the simulation of ``tests/test_noise.py``), for
seeds 0 to 4. Both programs start from the same noise rows, bayesgmm's
nearest-neighbour cleaning (:func:`bayesgmm._noise.nearest_neighbour_noise`),
and fit the same model (three VVV components and the uniform noise over mclust's
``hypvol``). The table gives, for each: the hypervolume, the log-likelihood,
BIC in mclust's sign (``2 log L - df log n``, higher is better), the number of
free parameters, the noise proportion and the recall and precision of the
points labelled noise against the simulated truth, and the share of points on
which the two programs' labels agree (noise against not noise).

A second table starts each program from its own cleaning: bayesgmm's default
(``noise_init=None``) and mclust with prabclus' ``NNclean(X, k = 5)``, the
start mclust's documentation uses; it gives the share of rows each cleaning
puts in the noise, the recall and precision of the final noise labels, and the
agreement of the two cleanings and of the two final labellings.

Without ``Rscript`` and mclust only bayesgmm's columns are filled.

Usage::

    python benchmarks/bench_noise.py
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bayesgmm import EMGaussianMixture
from bayesgmm._noise import nearest_neighbour_noise

R_SCRIPT = r"""
suppressMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
folder <- args[1]
seeds <- as.integer(strsplit(args[2], ",")[[1]])
for (seed in seeds) {
  X <- as.matrix(read.csv(file.path(folder, sprintf("X%d.csv", seed)), header = FALSE))
  mask <- as.logical(read.csv(file.path(folder, sprintf("mask%d.csv", seed)), header = FALSE)[, 1])
  fit <- Mclust(X, G = 3, modelNames = "VVV", initialization = list(noise = mask),
                control = emControl(tol = c(1e-10, sqrt(.Machine$double.eps))), verbose = FALSE)
  pro <- fit$parameters$pro
  write.table(
    data.frame(seed = seed, hypvol = fit$hypvol, loglik = fit$loglik, bic = fit$bic,
               df = fit$df, noise = pro[length(pro)]),
    file.path(folder, sprintf("mclust%d.csv", seed)), sep = ",", row.names = FALSE
  )
  write.table(fit$classification, file.path(folder, sprintf("labels%d.csv", seed)),
              sep = ",", row.names = FALSE, col.names = FALSE)
  if (requireNamespace("prabclus", quietly = TRUE)) {
    own <- prabclus::NNclean(X, k = 5)$z == 0
    fit <- Mclust(X, G = 3, modelNames = "VVV", initialization = list(noise = own),
                  control = emControl(tol = c(1e-10, sqrt(.Machine$double.eps))), verbose = FALSE)
    write.table(cbind(own, fit$classification), file.path(folder, sprintf("own%d.csv", seed)),
                sep = ",", row.names = FALSE, col.names = FALSE)
  }
}
"""


def simulate(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three clusters of 200 points and 100 uniform background points (truth: noise)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    cov = np.array([[0.6, 0.2], [0.2, 0.5]])
    clusters = np.vstack([rng.multivariate_normal(c, cov, 200) for c in centres])
    low, high = clusters.min(axis=0) - 3.0, clusters.max(axis=0) + 3.0
    X = np.vstack([clusters, rng.uniform(low, high, (100, 2))])
    return X, np.r_[np.zeros(600, bool), np.ones(100, bool)]


def recall_precision(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Recall and precision of the rows labelled noise."""
    hits = float((found & truth).sum())
    return hits / truth.sum(), hits / max(int(found.sum()), 1)


def main() -> None:
    """Fit both programs on every seed and print the table."""
    seeds = [0, 1, 2, 3, 4]
    have_r = shutil.which("Rscript") is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = {}
        for seed in seeds:
            X, truth = simulate(seed)
            mask = nearest_neighbour_noise(X)
            np.savetxt(folder / f"X{seed}.csv", X, delimiter=",", fmt="%.17g")
            np.savetxt(folder / f"mask{seed}.csv", mask.astype(int), fmt="%d")
            data[seed] = (X, truth, mask)
        if have_r:
            script = folder / "noise.R"
            script.write_text(R_SCRIPT)
            subprocess.run(
                ["Rscript", str(script), str(folder), ",".join(map(str, seeds))], check=True
            )
        header = (
            f"{'seed':>4} {'program':>8} {'hypvol':>9} {'loglik':>11} {'bic_mclust':>11} "
            f"{'df':>3} {'noise':>7} {'recall':>6} {'precis':>6} {'agree':>6}"
        )
        print(header)
        for seed in seeds:
            X, truth, mask = data[seed]
            n = X.shape[0]
            model = EMGaussianMixture(
                3, noise=True, noise_init=mask, random_state=seed, reg_covar=0.0, tol=1e-10
            ).fit(X)
            ours = model.predict(X) == -1
            log_likelihood = float(model.score_samples(X).sum())
            df = model._n_parameters()
            r, p = recall_precision(ours, truth)
            print(
                f"{seed:>4} {'bayesgmm':>8} {model.hypervolume_:>9.4f} {log_likelihood:>11.4f} "
                f"{2 * log_likelihood - df * np.log(n):>11.4f} {df:>3} "
                f"{model.noise_weight_:>7.4f} {r:>6.3f} {p:>6.3f} {'':>6}"
            )
            if have_r:
                row = np.genfromtxt(folder / f"mclust{seed}.csv", delimiter=",", names=True)
                labels = np.loadtxt(folder / f"labels{seed}.csv")
                theirs = labels == 0
                r, p = recall_precision(theirs, truth)
                agree = float((theirs == ours).mean())
                print(
                    f"{seed:>4} {'mclust':>8} {float(row['hypvol']):>9.4f} "
                    f"{float(row['loglik']):>11.4f} {float(row['bic']):>11.4f} "
                    f"{int(row['df']):>3} {float(row['noise']):>7.4f} {r:>6.3f} {p:>6.3f} "
                    f"{agree:>6.3f}"
                )
        print()
        print(
            f"{'seed':>4} {'start':>8} {'bg_share':>8} {'clean_recall':>12} {'recall':>6} "
            f"{'precis':>6} {'agree_start':>11} {'agree_labels':>12}"
        )
        for seed in seeds:
            X, truth, mask = data[seed]
            model = EMGaussianMixture(3, noise=True, random_state=seed).fit(X)
            ours = model.predict(X) == -1
            r, p = recall_precision(ours, truth)
            start_recall = recall_precision(mask, truth)[0]
            print(
                f"{seed:>4} {'bayesgmm':>8} {mask.mean():>8.3f} {start_recall:>12.3f} "
                f"{r:>6.3f} {p:>6.3f}"
            )
            own_file = folder / f"own{seed}.csv"
            if have_r and own_file.exists():
                own = np.loadtxt(own_file, delimiter=",")
                their_start, theirs = own[:, 0] == 1, own[:, 1] == 0
                r, p = recall_precision(theirs, truth)
                start_recall = recall_precision(their_start, truth)[0]
                print(
                    f"{seed:>4} {'NNclean':>8} {their_start.mean():>8.3f} {start_recall:>12.3f} "
                    f"{r:>6.3f} {p:>6.3f} {(their_start == mask).mean():>11.3f} "
                    f"{(theirs == ours).mean():>12.3f}"
                )


if __name__ == "__main__":
    main()
