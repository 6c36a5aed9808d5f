"""Run per-chunk statistics over in-memory or Dask data with one code path.

EM and coordinate-ascent VI only need sums over the data (sufficient
statistics), so a pass over a :class:`dask.array.Array` maps the same pure
function over its row blocks and adds the results; only arrays of size
K x d x d leave the workers. Dask is optional: nothing here imports it unless
the input is a Dask array.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np

from bayesgmm._validation import message

__all__ = [
    "is_dask_array",
    "check_dask_array",
    "column_means",
    "map_reduce",
    "map_rows",
    "sample_rows",
]


def is_dask_array(X: Any) -> bool:
    """Tell whether X is a :class:`dask.array.Array`, without importing Dask otherwise."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "to_delayed")


def check_dask_array(X: Any, name: str = "X", *, min_samples: int = 1) -> Any:
    """Check a Dask array's shape and dtype; rechunk so that blocks split rows only.

    Values (NaN, infinities) cannot be checked without reading the data; they
    are checked block by block in the first pass (see :func:`map_reduce`).
    """
    if X.ndim != 2:
        raise ValueError(
            message(
                name,
                "a 2-D array of shape (n_samples, n_features)",
                f"a Dask array with {X.ndim} dimensions",
                raw=True,
            )
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or np.issubdtype(
        X.dtype, np.complexfloating
    ):
        raise TypeError(message(name, "an array of real numbers", f"dtype {X.dtype}", raw=True))
    if any(np.isnan(c) for c in X.chunks[0]) or np.isnan(X.shape[0]):
        raise ValueError(
            message(
                name,
                "a Dask array with known chunk sizes",
                "unknown chunk sizes (call X.compute_chunk_sizes())",
                raw=True,
            )
        )
    if X.shape[0] < min_samples:
        raise ValueError(
            message(name, f"at least {min_samples} samples", f"{X.shape[0]} sample(s)", raw=True)
        )
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X.astype(np.float64)


def _checked_block(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    if not np.isfinite(block).all():
        raise ValueError(
            message(
                "X",
                "finite values (missing values, NaN, are supported for in-memory arrays "
                "only: call X.compute(), or drop or impute them first)",
                "NaN or infinite values in a chunk",
                raw=True,
            )
        )
    return block


def _apply(func: Callable[..., Any], block: np.ndarray, shift: np.ndarray | None) -> Any:
    block = _checked_block(block)
    if shift is not None:
        block = block - shift
    return func(block)


def map_reduce(
    func: Callable[[np.ndarray], Any], X: Any, *, shift: np.ndarray | None = None
) -> Any:
    """Return ``func(X - shift)`` for NumPy input, or the sum of ``func`` over Dask row blocks.

    ``func`` must return something that supports ``+`` (an array, a float or a
    :class:`~bayesgmm._gaussian.SufficientStatistics`) and be a sum over rows,
    so that applying it block by block and adding equals applying it once.
    The blocks' results are added in a tree on the workers.
    """
    if not is_dask_array(X):
        return func(X if shift is None else X - shift)
    import dask

    parts = [dask.delayed(_apply)(func, block, shift) for block in X.to_delayed().ravel()]
    while len(parts) > 1:
        parts = [
            dask.delayed(reduce)(add, parts[i : i + 8]) if len(parts[i : i + 8]) > 1 else parts[i]
            for i in range(0, len(parts), 8)
        ]
    (result,) = dask.compute(parts[0])
    return result


def map_rows(func: Callable[[np.ndarray], np.ndarray], X: Any, n_columns: int | None) -> Any:
    """Apply a row-wise ``func`` lazily to a Dask array (or eagerly to a NumPy array).

    ``func`` maps a block of shape (m, d) to (m,) when ``n_columns`` is None, or
    to (m, n_columns).
    """
    if not is_dask_array(X):
        return func(X)
    if n_columns is None:
        return X.map_blocks(lambda b: func(_checked_block(b)), drop_axis=1, dtype=np.float64)
    return X.map_blocks(
        lambda b: func(_checked_block(b)), chunks=(X.chunks[0], (n_columns,)), dtype=np.float64
    )


def column_means(X: Any) -> np.ndarray:
    """Column means, computed in one pass (lazily reduced for Dask input)."""
    if not is_dask_array(X):
        return X.mean(axis=0)
    total = map_reduce(lambda block: block.sum(axis=0), X)
    return np.asarray(total) / X.shape[0]


def sample_rows(X: Any, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Return a uniform random subset of ``n_rows`` rows, in their original order, as NumPy.

    Used to initialise a fit on data too large to hold: k-means and the
    starting values see the sample, the EM or CAVI iterations see all rows.
    """
    n = X.shape[0]
    if n <= n_rows:
        return _checked_block(np.asarray(X))
    index = np.sort(rng.choice(n, size=n_rows, replace=False))
    return _checked_block(np.asarray(X[index]))
