"""The table of docs/how-to/choose-k.md: the number of components each criterion picks.

Runs every method of :func:`bayesgmm.select_n_components` on Old Faithful, the
galaxies velocities (MASS's version) and a simulated mixture with four components,
and prints one Markdown table: the chosen K per method and data set, with the
posterior probability of that K for the two posteriors over K. The LRT column is
filled when :func:`bayesgmm.bootstrap_lrt` exists in the installed bayesgmm.

Run (minutes; NUTS for loo and sparse)::

    PYTHONPATH=$PWD python benchmarks/choose_k_table.py [--quick]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 NUTS draws, not 1000")
    parser.add_argument(
        "--methods", default="bic,icl,lrt,loo,dp,sparse", help="comma-separated methods"
    )
    args = parser.parse_args()
    nuts = {"draws": 500, "tune": 500} if args.quick else {"draws": 1000, "tune": 1000}
    methods = args.methods.split(",")
    rows = []
    for name, (X, covariance_type, k_max) in _data().items():
        cells = []
        for method in methods:
            if method == "lrt" and not hasattr(bayesgmm, "bootstrap_lrt"):
                cells.append("(not in this build)")
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
