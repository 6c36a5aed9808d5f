"""EM on data stored on disk: seconds per iteration against n, and peak memory.

For each n (d=10, K=8 by default) the data are written once, block by block, to
an uncompressed Zarr array on disk, opened with ``dask.array.from_zarr`` (chunked
along rows) and fitted by ``EMGaussianMixture`` with the same initial parameters
and a fixed number of iterations (tol=0). Zarr rather than a memory map: pages of
a memory map count in the resident set, Zarr reads each block into a fresh buffer.
The fit's time includes its two set-up passes (column means, and the data
variance for the degeneracy check). Each size runs in its own process so that its
peak resident memory (RSS) can be read; the table shows that time per iteration
grows linearly in n while peak memory stays far below the data's size.

    python benchmarks/bench_scale.py                # n = 1e5, 1e6, 1e7 (needs the dask extra)
    python benchmarks/bench_scale.py --sizes 100000 1000000 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_data(path: Path, n: int, d: int, k: int, seed: int, chunk_rows: int) -> None:
    """Write n rows from a K-component mixture to a Zarr array, block by block."""
    import zarr

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    out = zarr.create_array(
        str(path), shape=(n, d), chunks=(chunk_rows, d), dtype="f8", compressors=None
    )
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        labels = rng.integers(0, k, size=stop - start)
        out[start:stop] = centres[labels] + rng.standard_normal((stop - start, d))


def child(path: str, k: int, iterations: int) -> None:
    """Fit in this process and print a JSON line with timings and peak RSS."""
    import dask
    import dask.array as da

    from bayesgmm import EMGaussianMixture

    dask.config.set(scheduler="threads", num_workers=os.cpu_count() or 2)
    lazy = da.from_zarr(path)
    n, d = lazy.shape
    start_model = EMGaussianMixture(k, covariance_type="full", random_state=0).fit(
        lazy[:20_000].compute()
    )
    model = EMGaussianMixture(
        k,
        covariance_type="full",
        max_iter=iterations,
        tol=0.0,
        weights_init=start_model.weights_,
        means_init=start_model.means_,
        precisions_init=start_model.precisions_,
    )
    import warnings

    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(lazy)
    elapsed = time.perf_counter() - tic
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "seconds": elapsed,
                "iterations": model.n_iter_,
                "peak_rss_mib": peak_kib / 1024,
                "data_mib": lazy.nbytes / 2**20,
                "log_likelihood": model.lower_bound_,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dir", default=None, help="folder for the data files (default: a temp dir)"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.components, args.iterations)
        return
    folder = Path(args.dir or tempfile.mkdtemp(prefix="bayesgmm-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    print(
        f"d={args.features}, K={args.components}, {args.iterations} EM iterations, Dask threads "
        f"over an uncompressed Zarr array on disk, chunks of {args.chunk_rows} rows"
    )
    for n in args.sizes:
        path = folder / f"X_{n}_{args.features}.zarr"
        if not path.exists():
            write_data(path, n, args.features, args.components, args.seed, args.chunk_rows)
        command = [sys.executable, __file__, "--child", str(path)]
        command += ["--components", str(args.components), "--iterations", str(args.iterations)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        shutil.rmtree(path)
    widths = {"n": 12, "data MiB": 9, "peak RSS MiB": 13, "fit s": 7, "s/iter": 7}
    print(" ".join(f"{h:>{w}}" for h, w in widths.items()), f"{'ms/iter per 1e5 rows':>21}")
    for r in rows:
        per_iter = r["seconds"] / r["iterations"]
        print(
            f"{r['n']:>12,} {r['data_mib']:>9.0f} {r['peak_rss_mib']:>13.0f} {r['seconds']:>7.2f} "
            f"{per_iter:>7.3f} {1e3 * per_iter / (r['n'] / 1e5):>21.1f}"
        )


if __name__ == "__main__":
    main()
