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
    "sample_rows_with_weights",
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


def _apply(
    func: Callable[..., Any],
    block: np.ndarray,
    shift: np.ndarray | None,
    weight_block: np.ndarray | None = None,
) -> Any:
    block = _checked_block(block)
    if shift is not None:
        block = block - shift
    if weight_block is None:
        return func(block)
    return func(block, sample_weight=np.asarray(weight_block, dtype=np.float64))


def map_reduce(
    func: Callable[..., Any],
    X: Any,
    *,
    shift: np.ndarray | None = None,
    sample_weight: Any = None,
) -> Any:
    """Return ``func(X - shift)`` for NumPy input, or the sum of ``func`` over Dask row blocks.

    ``func`` must return something that supports ``+`` (an array, a float or a
    :class:`~bayesgmm._gaussian.SufficientStatistics`) and be a sum over rows,
    so that applying it block by block and adding equals applying it once.
    The blocks' results are added in a tree on the workers. With
    ``sample_weight`` (per-row weights: a NumPy array, or a Dask array that is
    rechunked like ``X``'s rows), ``func`` is called as
    ``func(block, sample_weight=weights_of_the_block)``.
    """
    if not is_dask_array(X):
        block = X if shift is None else X - shift
        if sample_weight is None:
            return func(block)
        return func(block, sample_weight=np.asarray(sample_weight, dtype=np.float64))
    import dask

    blocks = X.to_delayed().ravel()
    if sample_weight is None:
        parts = [dask.delayed(_apply)(func, block, shift) for block in blocks]
    else:
        weight_blocks = _row_chunked(sample_weight, X.chunks[0]).to_delayed().ravel()
        parts = [
            dask.delayed(_apply)(func, block, shift, weights)
            for block, weights in zip(blocks, weight_blocks, strict=True)
        ]
    while len(parts) > 1:
        parts = [
            dask.delayed(reduce)(add, parts[i : i + 8]) if len(parts[i : i + 8]) > 1 else parts[i]
            for i in range(0, len(parts), 8)
        ]
    (result,) = dask.compute(parts[0])
    return result


def _row_chunked(values: Any, row_chunks: tuple[int, ...]) -> Any:
    """Return a 1-D array (Dask or NumPy) as a Dask array whose chunks are ``row_chunks``."""
    import dask.array as da

    if is_dask_array(values):
        return values.rechunk((row_chunks,))
    return da.from_array(np.asarray(values, dtype=np.float64), chunks=(row_chunks,))


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


def column_means(X: Any, sample_weight: Any = None) -> np.ndarray:
    """Column means, computed in one pass (lazily reduced for Dask input).

    With ``sample_weight``, the weighted means ``sum_i w_i x_i / sum_i w_i``.
    """
    if sample_weight is None:
        if not is_dask_array(X):
            return X.mean(axis=0)
        total = map_reduce(lambda block: block.sum(axis=0), X)
        return np.asarray(total) / X.shape[0]
    sums = map_reduce(_weighted_column_sums, X, sample_weight=sample_weight)
    return np.asarray(sums[1:]) / sums[0]


def _weighted_column_sums(block: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """``[sum_i w_i, sum_i w_i x_i]`` of a block, one array so that blocks add."""
    return np.concatenate([[sample_weight.sum()], sample_weight @ block])


def sample_rows(X: Any, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Return a uniform random subset of ``n_rows`` rows, in their original order, as NumPy.

    Used to initialise a fit on data too large to hold: k-means and the
    starting values see the sample, the EM or CAVI iterations see all rows.
    """
    return sample_rows_with_weights(X, n_rows, rng, None)[0]


def sample_rows_with_weights(
    X: Any, n_rows: int, rng: np.random.Generator, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`sample_rows`, and the sampled rows' weights (NumPy) from a Dask or NumPy array.

    The rows drawn do not depend on the weights; ``sample_weight=None`` gives None.
    """
    n = X.shape[0]
    index = None if n <= n_rows else np.sort(rng.choice(n, size=n_rows, replace=False))
    rows = _checked_block(np.asarray(X if index is None else X[index]))
    if sample_weight is None:
        return rows, None
    weights = sample_weight if index is None else sample_weight[index]
    return rows, np.asarray(weights, dtype=np.float64)
