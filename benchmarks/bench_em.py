"""Time bayesgmm's EM against scikit-learn's GaussianMixture on the same start.

Both estimators get the same data, the same initial weights, means and
precisions, ``tol=0`` and the same ``max_iter`` (so they run exactly the same
number of iterations), ``n_init=1``, and bayesgmm runs with
``reg_covar_scale="absolute"`` (scikit-learn's ``reg_covar`` semantics), so the
two compute the same iterates. The table gives seconds per iteration
(fit time / max_iter, the best of ``--repeat`` runs), the speed-up and both
final mean log-likelihoods (``score(X)``).

Usage::

    python benchmarks/bench_em.py            # all cases
    python benchmarks/bench_em.py --quick    # the two n=100,000 cases
    python benchmarks/bench_em.py --blas-threads 1   # scikit-learn with one BLAS thread

bayesgmm holds BLAS to one thread during ``fit`` and spreads chunks over its own
threads (when threadpoolctl is installed); scikit-learn uses BLAS's threads.
On a busy machine BLAS threading on small products slows scikit-learn badly, so
``--blas-threads 1`` gives it its best case there.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

CASES = [
    (100_000, 10, 8, "full"),
    (100_000, 10, 8, "diag"),
    (1_000_000, 10, 8, "full"),
    (1_000_000, 10, 8, "diag"),
    (20_000, 50, 10, "full"),
]
QUICK = CASES[:2]


def make_data(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping anisotropic Gaussian blobs, and the true labels."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        idx = labels == j
        A = rng.normal(size=(d, d)) * 0.3 + np.eye(d)
        X[idx] = centers[j] + rng.standard_normal((idx.sum(), d)) @ A.T
    return X, labels


def initial_parameters(
    X: np.ndarray, k: int, covariance_type: str, seed: int
) -> dict[str, np.ndarray]:
    """Weights, means (random data points) and precisions (inverse data covariance)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    means = X[rng.choice(X.shape[0], size=k, replace=False)]
    weights = np.full(k, 1.0 / k)
    cov = np.cov(X, rowvar=False)
    if covariance_type == "full":
        precisions = np.broadcast_to(np.linalg.inv(cov), (k, d, d)).copy()
    elif covariance_type == "tied":
        precisions = np.linalg.inv(cov)
    elif covariance_type == "diag":
        precisions = np.broadcast_to(1.0 / np.diag(cov), (k, d)).copy()
    else:
        precisions = np.full(k, 1.0 / np.mean(np.diag(cov)))
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


def time_fit(estimator, X: np.ndarray, repeat: int) -> tuple[float, object]:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        estimator.fit(X)
        best = min(best, time.perf_counter() - start)
    return best, estimator


def main(argv: list[str] | None = None) -> None:
    from sklearn.mixture import GaussianMixture

    from bayesgmm import EMGaussianMixture

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the n=100,000 cases")
    parser.add_argument("--max-iter", type=int, default=10, help="EM iterations (tol=0)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per estimator; best kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads", type=int, default=None, help="cap BLAS threads (threadpoolctl)"
    )
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")

    warnings.simplefilter("ignore")  # tol=0 never converges: silence the warnings
    header = (
        f"{'case (n, d, k, covariance)':<30} {'sklearn s/iter':>14} {'bayesgmm s/iter':>15} "
        f"{'speed-up':>9} {'sklearn loglik':>16} {'bayesgmm loglik':>16} {'rel. diff':>10}"
    )
    print(header)
    print("-" * len(header))
    for n, d, k, kind in QUICK if args.quick else CASES:
        X, _ = make_data(n, d, k, args.seed)
        init = initial_parameters(X, k, kind, args.seed)
        common = dict(covariance_type=kind, tol=0.0, max_iter=args.max_iter, n_init=1, **init)
        t_sk, sk = time_fit(GaussianMixture(k, **common), X, args.repeat)
        # scikit-learn's reg_covar is absolute (in the data's squared units).
        t_bg, bg = time_fit(
            EMGaussianMixture(k, reg_covar_scale="absolute", **common), X, args.repeat
        )
        ll_sk, ll_bg = sk.score(X), bg.score(X)
        rel = abs(ll_bg - ll_sk) / abs(ll_sk)
        case = f"({n:_}, {d}, {k}, {kind})"
        print(
            f"{case:<30} {t_sk / args.max_iter:>14.4f} {t_bg / args.max_iter:>15.4f} "
            f"{t_sk / t_bg:>8.1f}x {ll_sk:>16.10f} {ll_bg:>16.10f} {rel:>10.1e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
