"""Variational DP mixture: scikit-learn's BayesianGaussianMixture against bayesgmm.

Both get the same data, the same truncation (20) and the same covariance type
(full). EM told the true K is the reference. For each case the script prints
wall time, iterations, the converged flag, the effective K (weights > 0.01),
the held-out mean log-likelihood (a fresh sample from the true mixture; the
posterior predictive density for bayesgmm, scikit-learn's plug-in density for
BayesianGaussianMixture) and the adjusted Rand index against the true labels.

Run from the repository root::

    .venv/bin/python benchmarks/bench_dp.py            # both cases
    .venv/bin/python benchmarks/bench_dp.py --small    # only n=10,000, d=2

scikit-learn gets ``max_iter=1000`` when that fits in about three minutes;
otherwise its ``max_iter`` is capped from the measured cost per iteration
(the time of a 6-iteration fit minus that of a 1-iteration fit, over 5) and
the script says so.

Both libraries run with one BLAS thread (``OPENBLAS_NUM_THREADS=1`` unless set
otherwise): the benchmark machines are shared, and multithreaded BLAS on a
loaded machine makes timings of either library erratic.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture  # noqa: E402

from bayesgmm.datasets import make_mixture  # noqa: E402
from bayesgmm.dirichlet_process import DPGaussianMixture  # noqa: E402
from bayesgmm.em import EMGaussianMixture  # noqa: E402

TRUNCATION = 20
SKLEARN_BUDGET_S = 180.0


def _row(name, seconds, n_iter, converged, weights, heldout, ari, note=""):
    eff = int(np.sum(np.asarray(weights) > 0.01))
    print(
        f"  {name:<34} {seconds:8.2f} s  iter {n_iter:5d}  converged {converged!s:5}  "
        f"K_eff {eff:2d}  held-out {heldout:9.4f}  ARI {ari:.3f} {note}",
        flush=True,
    )


def run_case(n, d, k, separation, seed):
    X, labels, truth = make_mixture(n, k, d, separation=separation, random_state=seed)
    rng = np.random.default_rng(seed + 1000)
    X_test, _ = truth.sample(n, rng)
    order = np.random.default_rng(seed).permutation(n)
    X, labels = X[order], labels[order]
    print(
        f"\nn={n}, d={d}, k={k} (separation {separation}), truncation {TRUNCATION}; "
        f"true mixture held-out mean log-likelihood {truth.score_samples(X_test).mean():.4f}",
        flush=True,
    )

    start = time.perf_counter()
    em = EMGaussianMixture(k, covariance_type="full", max_iter=1000, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    _row(
        "EM, true K (bayesgmm)",
        seconds,
        em.n_iter_,
        em.converged_,
        em.weights_,
        em.score(X_test),
        adjusted_rand_score(labels, em.predict(X)),
    )

    start = time.perf_counter()
    dp = DPGaussianMixture(TRUNCATION, covariance_type="full", random_state=0).fit(X)
    dp_seconds = time.perf_counter() - start
    _row(
        "bayesgmm DPGaussianMixture (CAVI)",
        dp_seconds,
        dp.n_iter_,
        dp.converged_,
        dp.weights_,
        dp.score(X_test),
        adjusted_rand_score(labels, dp.predict(X)),
        f"(effective_n_components_ {dp.effective_n_components_}, merges {dp.n_merges_})",
    )

    max_iter = 1000
    note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = []
        for probe_iter in (1, 6):
            start = time.perf_counter()
            BayesianGaussianMixture(
                n_components=TRUNCATION,
                weight_concentration_prior_type="dirichlet_process",
                max_iter=probe_iter,
                random_state=0,
            ).fit(X)
            probe.append(time.perf_counter() - start)
        per_iter = max(probe[1] - probe[0], 1e-9) / 5
        if per_iter * max_iter > SKLEARN_BUDGET_S:
            max_iter = max(10, int(SKLEARN_BUDGET_S / per_iter))
            note = f"(max_iter CAPPED at {max_iter} to fit ~{SKLEARN_BUDGET_S:.0f} s)"
        start = time.perf_counter()
        sk = BayesianGaussianMixture(
            n_components=TRUNCATION,
            weight_concentration_prior_type="dirichlet_process",
            max_iter=max_iter,
            random_state=0,
        ).fit(X)
        sk_seconds = time.perf_counter() - start
    _row(
        f"sklearn BayesianGMM (max_iter {max_iter})",
        sk_seconds,
        sk.n_iter_,
        sk.converged_,
        sk.weights_,
        sk.score(X_test),
        adjusted_rand_score(labels, sk.predict(X)),
        note,
    )
    print(f"  time ratio sklearn / bayesgmm DP: {sk_seconds / dp_seconds:.1f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="only the n=10,000, d=2 case")
    args = parser.parse_args()
    run_case(10_000, 2, 4, separation=1.0, seed=0)
    if not args.small:
        run_case(100_000, 10, 8, separation=1.0, seed=1)


if __name__ == "__main__":
    main()
