"""A cheap-to-compile bijection onto Cholesky factors of correlation matrices.

PyMC's :class:`pymc.distributions.transforms.CholeskyCorrTransform` builds its
backward map from a spiral fill, padding, flips, reshapes, a set-subtensor and a
norm. Compiling the log density and gradient of that graph with numba (nutpie's
backend and PyTensor's default linker) takes tens of seconds. This module
implements the same bijection, up to the order of the unconstrained entries, with
one custom :class:`~pytensor.graph.op.Op` for the backward map and one for its
gradient, each with a small numba kernel, so the compile cost is a few seconds.

The map
-------
Let ``n`` be the matrix size, ``m = n (n - 1) / 2`` and ``rows, cols =
np.tril_indices(n, -1)`` the strictly-lower entries in row-major order. An
unconstrained vector ``y`` of length ``m`` fills the strictly-lower entries of a
matrix ``V`` with unit diagonal (``V[rows, cols] = y``); dividing each row of ``V``
by its Euclidean norm gives a lower-triangular ``L`` with positive diagonal and
unit-norm rows, so ``L @ L.T`` is a correlation matrix. The inverse reads
``y = L[rows, cols] / L[rows, rows]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform
from pytensor.configdefaults import config
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.tensor.type import TensorType
from pytensor.tensor.variable import TensorVariable

__all__ = [
    "CorrCholeskyTransform",
    "UnitRowCholesky",
    "UnitRowCholeskyGrad",
    "unit_row_cholesky",
]


# PyTensor caches the compiled graph on disk under a key made of the Op's props and
# this number: a hash of this file, so a changed kernel is never served stale.
_KERNEL_CACHE_VERSION = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12], 16)


def _n_offdiag(n: int) -> int:
    """Return the number ``n (n - 1) / 2`` of strictly-lower entries of an ``n x n`` matrix."""
    return n * (n - 1) // 2


def _check_n(n: int) -> int:
    """Validate the matrix size ``n`` (an integer of at least 2) and return it as ``int``."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    return int(n)


def _as_float_tensor(x: Any) -> TensorVariable:
    """Return ``x`` as a tensor variable of a floating dtype (``floatX`` for integers)."""
    x = pt.as_tensor_variable(x)
    if not x.dtype.startswith("float"):
        x = pt.cast(x, config.floatX)
    return x


def _unit_row_cholesky_numpy(y: np.ndarray, n: int) -> np.ndarray:
    """Evaluate the backward map in NumPy for ``y`` of shape ``(..., m)``."""
    rows, cols = np.tril_indices(n, -1)
    diag = np.arange(n)
    v = np.zeros((*y.shape[:-1], n, n), dtype=y.dtype)
    v[..., rows, cols] = y
    v[..., diag, diag] = 1
    return v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True))


def _unit_row_cholesky_grad_numpy(y: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
    """Evaluate the gradient of the backward map in NumPy (see :class:`UnitRowCholeskyGrad`)."""
    rows, cols = np.tril_indices(n, -1)
    diag = np.arange(n)
    v = np.zeros((*y.shape[:-1], n, n), dtype=y.dtype)
    v[..., rows, cols] = y
    v[..., diag, diag] = 1
    s = np.sqrt(np.sum(v * v, axis=-1, keepdims=True))
    # ``v`` is zero above the diagonal, so the sum only sees the lower part of ``g``.
    dot = np.sum(g * v, axis=-1, keepdims=True)
    dv = g / s - dot * v / s**3
    return np.asarray(dv[..., rows, cols], dtype=y.dtype)


class _CorrelationSizeOp(Op):
    """An Op parametrised by the size ``n`` of the correlation matrix (its only prop)."""

    __props__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = _check_n(n)


class UnitRowCholesky(_CorrelationSizeOp):
    """Map unconstrained vectors to Cholesky factors of correlation matrices.

    The input ``y`` has shape ``(..., m)`` with ``m = n (n - 1) / 2``; the output
    ``L`` has shape ``(..., n, n)``. For every batch index, ``y`` fills the
    strictly-lower entries of a unit-diagonal matrix ``V`` in row-major order
    (``np.tril_indices(n, -1)``), and ``L`` is ``V`` with each row divided by its
    Euclidean norm. Entries above the diagonal are zero.

    Parameters
    ----------
    n : int
        Size of the correlation matrix, at least 2.
    """

    def make_node(self, *inputs: Any) -> Apply:
        """Build the node for ``y`` (at least one dimension, the last of length ``m``)."""
        (y_like,) = inputs
        y = _as_float_tensor(y_like)
        m = _n_offdiag(self.n)
        if y.ndim < 1:
            raise TypeError("UnitRowCholesky needs an input with at least one dimension")
        if y.type.shape[-1] not in (None, m):
            raise ValueError(
                f"UnitRowCholesky(n={self.n}) needs a last dimension of length {m}, "
                f"got {y.type.shape[-1]}"
            )
        out_type = TensorType(dtype=y.dtype, shape=(*y.type.shape[:-1], self.n, self.n))
        return Apply(self, [y], [out_type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[list[Any]]) -> None:
        """Evaluate the map in NumPy."""
        (y,) = inputs
        m = _n_offdiag(self.n)
        if y.shape[-1] != m:
            raise ValueError(f"UnitRowCholesky(n={self.n}) got a last dimension {y.shape[-1]}")
        output_storage[0][0] = _unit_row_cholesky_numpy(np.asarray(y), self.n)

    def infer_shape(
        self, node: Apply, input_shapes: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Return the output shape ``(*batch, n, n)``."""
        (y_shape,) = input_shapes
        return [(*y_shape[:-1], self.n, self.n)]

    def pullback(
        self,
        inputs: Sequence[Variable],
        outputs: Sequence[Variable],
        cotangents: Sequence[Variable],
    ) -> list[Variable]:
        """Return the vector-Jacobian product, computed by :class:`UnitRowCholeskyGrad`."""
        (y,) = inputs
        (g,) = cotangents
        grad = UnitRowCholeskyGrad(self.n)(y, g)
        assert isinstance(grad, Variable)
        return [grad]


class UnitRowCholeskyGrad(_CorrelationSizeOp):
    """Gradient of :class:`UnitRowCholesky` with respect to its input.

    Given ``y`` of shape ``(..., m)`` and the upstream gradient ``G`` on ``L`` of
    shape ``(..., n, n)``, it returns ``dy`` of the shape of ``y``. For row ``i``
    with ``v`` the row of ``V`` (entries ``y_i0, ..., y_i(i-1), 1``) and ``s`` its
    norm, the entry of ``dy`` for column ``l < i`` is
    ``G_il / s - (sum_{j <= i} G_ij v_j) v_l / s**3``. Entries of ``G`` above the
    diagonal and in row 0 do not contribute, since those entries of ``L`` are
    constant.

    Parameters
    ----------
    n : int
        Size of the correlation matrix, at least 2.
    """

    def make_node(self, *inputs: Any) -> Apply:
        """Build the node for ``(y, g)``; ``g`` must have one more dimension than ``y``."""
        y_like, g_like = inputs
        y = _as_float_tensor(y_like)
        g = pt.cast(pt.as_tensor_variable(g_like), y.dtype)
        if y.ndim < 1 or g.ndim != y.ndim + 1:
            raise TypeError(
                "UnitRowCholeskyGrad needs y with ndim >= 1 and g with one more dimension, "
                f"got {y.ndim} and {g.ndim}"
            )
        return Apply(self, [y, g], [y.type()])

    def perform(self, node: Apply, inputs: Sequence[Any], output_storage: list[list[Any]]) -> None:
        """Evaluate the gradient in NumPy."""
        y, g = inputs
        output_storage[0][0] = _unit_row_cholesky_grad_numpy(np.asarray(y), np.asarray(g), self.n)

    def infer_shape(
        self, node: Apply, input_shapes: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Return the shape of ``y``."""
        return [tuple(input_shapes[0])]

    def pullback(
        self,
        inputs: Sequence[Variable],
        outputs: Sequence[Variable],
        cotangents: Sequence[Variable],
    ) -> list[Variable]:
        """Second derivatives are not implemented."""
        y, g = inputs
        return [grad_not_implemented(self, 0, y), grad_not_implemented(self, 1, g)]


def unit_row_cholesky(y: Any, n: int) -> TensorVariable:
    """Apply :class:`UnitRowCholesky` to ``y`` of shape ``(..., n (n - 1) / 2)``.

    Parameters
    ----------
    y : tensor_like
        Unconstrained values, strictly-lower entries in row-major order.
    n : int
        Size of the correlation matrix.

    Returns
    -------
    TensorVariable
        The Cholesky factors, shape ``(..., n, n)``.
    """
    out = UnitRowCholesky(n)(y)
    assert isinstance(out, TensorVariable)
    return out


@register_funcify_default_op_cache_key(UnitRowCholesky)
def _numba_funcify_unit_row_cholesky(
    op: UnitRowCholesky, **kwargs: Any
) -> tuple[Callable[..., Any], int]:
    """Return a numba kernel for :class:`UnitRowCholesky` (generic in the batch rank)."""
    n = op.n
    m = _n_offdiag(n)

    @numba_basic.numba_njit(boundscheck=False)
    def unit_row_cholesky_kernel(y):
        yc = np.ascontiguousarray(y)
        batch_shape = yc.shape[:-1]
        size = yc.size // m
        y2 = yc.reshape((size, m))
        out = np.zeros((size, n, n), dtype=yc.dtype)
        for b in range(size):
            out[b, 0, 0] = 1.0
            k = 0
            for i in range(1, n):
                ss = 1.0
                for j in range(i):
                    ss += y2[b, k + j] * y2[b, k + j]
                inv = 1.0 / np.sqrt(ss)
                for j in range(i):
                    out[b, i, j] = y2[b, k + j] * inv
                out[b, i, i] = inv
                k += i
        return out.reshape((*batch_shape, n, n))

    return unit_row_cholesky_kernel, _KERNEL_CACHE_VERSION


@register_funcify_default_op_cache_key(UnitRowCholeskyGrad)
def _numba_funcify_unit_row_cholesky_grad(
    op: UnitRowCholeskyGrad, **kwargs: Any
) -> tuple[Callable[..., Any], int]:
    """Return a numba kernel for :class:`UnitRowCholeskyGrad` (generic in the batch rank)."""
    n = op.n
    m = _n_offdiag(n)

    @numba_basic.numba_njit(boundscheck=False)
    def unit_row_cholesky_grad_kernel(y, g):
        yc = np.ascontiguousarray(y)
        gc = np.ascontiguousarray(g)
        size = yc.size // m
        y2 = yc.reshape((size, m))
        g3 = gc.reshape((size, n, n))
        out = np.empty((size, m), dtype=yc.dtype)
        for b in range(size):
            k = 0
            for i in range(1, n):
                ss = 1.0
                dot = g3[b, i, i]
                for j in range(i):
                    v = y2[b, k + j]
                    ss += v * v
                    dot += g3[b, i, j] * v
                inv = 1.0 / np.sqrt(ss)
                coef = dot * inv * inv * inv
                for j in range(i):
                    out[b, k + j] = g3[b, i, j] * inv - coef * y2[b, k + j]
                k += i
        return out.reshape(yc.shape)

    return unit_row_cholesky_grad_kernel, _KERNEL_CACHE_VERSION


class CorrCholeskyTransform(Transform):
    """Bijection from unconstrained vectors to Cholesky factors of correlation matrices.

    The same bijection as PyMC's ``CholeskyCorrTransform(n, upper=False)`` with the
    unconstrained entries in a different order: here ``y`` holds the strictly-lower
    entries of ``V`` in row-major order (``np.tril_indices(n, -1)``). Use it as
    ``pm.LKJCorr(..., default_transform=CorrCholeskyTransform(n))``.

    The backward map fills a unit-diagonal lower-triangular ``V`` with ``y`` and
    divides each row by its Euclidean norm (one :class:`UnitRowCholesky` node). The
    forward map divides the strictly-lower entries of ``L`` by the diagonal entry
    of their row. The log absolute Jacobian determinant of ``y -> L[rows, cols]``
    is ``sum_i -(i + 2) / 2 * log(1 + sum_{j < i} y_ij**2)`` over 0-based rows ``i``,
    since row ``i`` maps its ``i`` entries by ``u -> u / sqrt(1 + |u|**2)``.

    Parameters
    ----------
    n : int
        Size of the correlation matrix, at least 2.
    """

    name = "corr_cholesky"
    ndim_supp = 1

    def __init__(self, n: int) -> None:
        self.n = _check_n(n)
        self.m = _n_offdiag(self.n)
        rows, cols = np.tril_indices(self.n, -1)
        self._rows = rows
        self._cols = cols
        # 0/1 matrix sending each unconstrained entry to its row (rows 1..n-1).
        row_of_entry = np.zeros((self.m, self.n - 1))
        row_of_entry[np.arange(self.m), rows - 1] = 1.0
        self._row_of_entry = row_of_entry
        self._jac_coef = -(np.arange(1, self.n) + 2.0) / 2.0
        super().__init__()

    def forward(self, value: Any, *inputs: Variable) -> TensorVariable:
        """Map Cholesky factors ``L`` (``(..., n, n)``) to unconstrained ``y`` (``(..., m)``).

        Parameters
        ----------
        value : tensor_like
            Lower-triangular factors with positive diagonal and unit-norm rows.
        *inputs : Variable
            Parameters of the distribution; unused.

        Returns
        -------
        TensorVariable
            ``L[..., rows, cols] / L[..., rows, rows]``.
        """
        chol = _as_float_tensor(value)
        out = chol[..., self._rows, self._cols] / chol[..., self._rows, self._rows]
        assert isinstance(out, TensorVariable)
        return out

    def backward(self, value: Any, *inputs: Variable) -> TensorVariable:
        """Map unconstrained ``y`` (``(..., m)``) to Cholesky factors ``L`` (``(..., n, n)``).

        Parameters
        ----------
        value : tensor_like
            Unconstrained values.
        *inputs : Variable
            Parameters of the distribution; unused.

        Returns
        -------
        TensorVariable
            The Cholesky factors, computed by one :class:`UnitRowCholesky` node.
        """
        return unit_row_cholesky(value, self.n)

    def log_jac_det(self, value: Any, *inputs: Variable) -> TensorVariable:
        """Return the log absolute Jacobian determinant of the backward map, shape ``(...)``.

        Parameters
        ----------
        value : tensor_like
            Unconstrained values, shape ``(..., m)``.
        *inputs : Variable
            Parameters of the distribution; unused.

        Returns
        -------
        TensorVariable
            ``sum_i -(i + 2) / 2 * log1p(sum_{j < i} y_ij**2)``, summed over rows.
        """
        y = _as_float_tensor(value)
        # A broadcast product and a sum rather than a matrix product: numba compiles
        # elementwise ops and reductions in well under a second, a Dot in ~10 s.
        row_of_entry = self._row_of_entry.astype(y.dtype)
        row_sq = pt.sum(pt.sqr(y)[..., :, None] * row_of_entry, axis=-2)
        out = pt.sum(self._jac_coef.astype(y.dtype) * pt.log1p(row_sq), axis=-1)
        assert isinstance(out, TensorVariable)
        return out
