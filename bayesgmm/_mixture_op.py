"""The marginal mixture log density as one PyTensor ``Op`` with a numba kernel.

Written with PyTensor's tensor operations, the log density of a Gaussian mixture and
its gradient unroll into some 70 graph nodes (triangular solves, batched products,
indexing, a log-sum-exp); numba compiles each one separately, which took about a
minute on a fresh compile cache, more than NUTS then spends sampling. Here the
whole computation is two loops over the rows in two compiled kernels (the log
density, and its vector-Jacobian product for the gradient), so the model compiles in
seconds. The forward node also returns the responsibilities and the rows' quadratic
features, so the gradient node reuses them instead of evaluating the density again.

For rows ``x_i``, weights ``w_k``, means ``mu_k`` and lower-triangular Cholesky
factors ``L_k`` (covariance ``L_k L_k'``), with ``z_ik = L_k^-1 (x_i - mu_k)``:

    a_ik = log w_k - sum_j log L_k[j, j] - d log(2 pi) / 2 - |z_ik|^2 / 2,
    log p(x_i) = log sum_k exp(a_ik).

Given upstream gradients ``g_i`` on ``log p(x_i)`` and responsibilities
``r_ik = exp(a_ik - log p(x_i))``, with ``c_k = sum_i g_i r_ik``:

    d/dw_k  = c_k / w_k,
    d/dmu_k = L_k^-T sum_i g_i r_ik z_ik,
    d/dL_k  = lower triangle of [L_k^-T sum_i g_i r_ik z_ik z_ik'] - c_k diag(1 / L_k[j, j]).

Only the lower triangle of ``L_k`` is read, so the gradient on its upper triangle is
zero.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

__all__ = [
    "MixtureLogDensity",
    "MixtureLogDensityGrad",
    "log_density_draws",
    "mixture_log_density",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# PyTensor caches the compiled graph on disk under a key made of the Op's props and
# this number: a hash of this file, so a changed kernel is never served stale.
_KERNEL_VERSION = int(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12], 16)


@numba.njit(cache=True)
def _quadratic_features(X: np.ndarray) -> np.ndarray:
    """Rows ``[x, x_a x_b (a <= b)]``: the Gaussian log density is affine in them."""
    n, d = X.shape
    p = d + d * (d + 1) // 2
    phi = np.empty((n, p))
    for i in range(n):
        col = d
        for a in range(d):
            phi[i, a] = X[i, a]
            for b in range(a, d):
                phi[i, col] = X[i, a] * X[i, b]
                col += 1
    return phi


@numba.njit(cache=True)
def _natural_parameters(
    weights: np.ndarray, means: np.ndarray, chol: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse factors ``M_k = L_k^-1``, precisions ``P_k = M_k' M_k``, ``eta_k`` and ``c_k``.

    ``log w_k N(x | mu_k, L_k L_k') = phi(x) . eta_k + c_k`` with
    ``eta_k = [P_k mu_k, -P_aa / 2 (a = b), -P_ab (a < b)]`` and
    ``c_k = log w_k - mu_k' P_k mu_k / 2 - sum_j log L_k[j, j] - d log(2 pi) / 2``.
    """
    k, d = means.shape
    p = d + d * (d + 1) // 2
    inverse = np.zeros((k, d, d))
    precision = np.empty((k, d, d))
    eta = np.empty((k, p))
    const = np.empty(k)
    for c in range(k):
        for col in range(d):  # forward substitution on the identity
            for j in range(col, d):
                acc = 1.0 if j == col else 0.0
                for m in range(col, j):
                    acc -= chol[c, j, m] * inverse[c, m, col]
                inverse[c, j, col] = acc / chol[c, j, j]
        for a in range(d):
            for b in range(a, d):
                acc = 0.0
                for m in range(b, d):
                    acc += inverse[c, m, a] * inverse[c, m, b]
                precision[c, a, b] = acc
                precision[c, b, a] = acc
        quad = 0.0
        col = d
        for a in range(d):
            lin = 0.0
            for b in range(d):
                lin += precision[c, a, b] * means[c, b]
            eta[c, a] = lin
            quad += lin * means[c, a]
            for b in range(a, d):
                eta[c, col] = -0.5 * precision[c, a, a] if a == b else -precision[c, a, b]
                col += 1
        total = np.log(weights[c]) - 0.5 * quad - d * _HALF_LOG_2PI  # -inf at w = 0
        for j in range(d):
            total -= math.log(chol[c, j, j])
        const[c] = total
    return inverse, precision, eta, const


@numba.njit(cache=True)
def _log_density_kernel(
    X: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log p(x_i) = log sum_k w_k N(x_i | mu_k, L_k L_k')`` for every row ``x_i``.

    Also returns the responsibilities ``r_ik = w_k N(x_i | ...) / p(x_i)`` and the
    quadratic features ``phi_i``, which the gradient needs.
    """
    _, _, eta, const = _natural_parameters(weights, means, chol)
    phi = _quadratic_features(X)
    resp = np.dot(phi, eta.T)  # a_ik without c_k, then overwritten by r_ik
    n, k = resp.shape
    log_p = np.empty(n)
    for i in range(n):
        top = -np.inf
        for c in range(k):
            resp[i, c] += const[c]
            if resp[i, c] > top:
                top = resp[i, c]
        if top == -np.inf:
            log_p[i] = -np.inf
            resp[i, :] = 0.0
            continue
        total = 0.0
        for c in range(k):
            resp[i, c] = math.exp(resp[i, c] - top)
            total += resp[i, c]
        log_p[i] = top + math.log(total)
        for c in range(k):
            resp[i, c] /= total
    return log_p, resp, phi


@numba.njit(cache=True)
def _log_density_grad_kernel(
    weights: np.ndarray,
    means: np.ndarray,
    chol: np.ndarray,
    resp: np.ndarray,
    phi: np.ndarray,
    upstream: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``sum_i g_i log p(x_i)`` on weights, means and Cholesky factors.

    With ``t_ik = g_i r_ik``: the gradients on ``eta_k`` and ``c_k`` are
    ``sum_i t_ik phi_i`` (one matrix product) and ``m_k = sum_i t_ik``; the chain
    rule then runs through ``eta_k`` and ``c_k`` to ``w_k`` (``m_k / w_k``), ``mu_k``
    and ``P_k``, from ``P = M' M`` to ``M`` (``M (G + G')`` for a gradient ``G`` on
    ``P``) and from ``M = L^-1`` to ``L`` (``-M' G_M M'``, lower triangle).
    """
    n, k = resp.shape
    d = means.shape[1]
    inverse, precision, _, _ = _natural_parameters(weights, means, chol)
    t = np.empty((n, k))
    mass = np.zeros(k)
    for i in range(n):
        g = upstream[i]
        for c in range(k):
            t[i, c] = g * resp[i, c]
            mass[c] += t[i, c]
    grad_eta = np.dot(t.T, phi)  # (k, p)
    grad_weights = np.empty(k)
    grad_means = np.empty((k, d))
    grad_chol = np.zeros((k, d, d))
    G = np.empty((d, d))
    GM = np.empty((d, d))
    tmp = np.empty((d, d))
    for c in range(k):
        grad_weights[c] = mass[c] / weights[c]
        mu = means[c]
        P = precision[c]
        M = inverse[c]
        # Gradient G on P (entries as used): eta's linear part P mu, its quadratic
        # part, and -mu' P mu / 2 in c_k.
        col = d
        for a_ in range(d):
            for b in range(d):
                G[a_, b] = grad_eta[c, a_] * mu[b] - 0.5 * mass[c] * mu[a_] * mu[b]
        for a_ in range(d):
            for b in range(a_, d):
                G[a_, b] += -0.5 * grad_eta[c, col] if a_ == b else -grad_eta[c, col]
                col += 1
        for a_ in range(d):
            acc = 0.0
            for b in range(d):
                acc += P[a_, b] * (grad_eta[c, b] - mass[c] * mu[b])
            grad_means[c, a_] = acc
        # G_M = M (G + G')
        for a_ in range(d):
            for b in range(d):
                acc = 0.0
                for m in range(d):
                    acc += M[a_, m] * (G[m, b] + G[b, m])
                GM[a_, b] = acc
        # grad_L = -M' G_M M', lower triangle; minus m_k / L_jj on the diagonal.
        for a_ in range(d):
            for b in range(d):
                acc = 0.0
                for m in range(d):
                    acc += GM[a_, m] * M[b, m]
                tmp[a_, b] = acc  # G_M M'
        for a_ in range(d):
            for b in range(a_ + 1):
                acc = 0.0
                for m in range(d):
                    acc += M[m, a_] * tmp[m, b]
                grad_chol[c, a_, b] = -acc
            grad_chol[c, a_, a_] -= mass[c] / chol[c, a_, a_]
    return grad_weights, grad_means, grad_chol


@numba.njit(cache=True)
def _log_density_draws_kernel(
    X: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray
) -> np.ndarray:
    """``log sum_k w_sk N(x_i | mu_sk, L_sk L_sk')`` for draws ``s`` and rows ``i``: (S, n)."""
    n_draws = weights.shape[0]
    phi = _quadratic_features(X)
    out = np.empty((n_draws, X.shape[0]))
    for s in range(n_draws):
        _, _, eta, const = _natural_parameters(weights[s], means[s], chol[s])
        a = np.dot(phi, eta.T)
        for i in range(a.shape[0]):
            top = -np.inf
            for c in range(a.shape[1]):
                a[i, c] += const[c]
                if a[i, c] > top:
                    top = a[i, c]
            if top == -np.inf:
                out[s, i] = -np.inf
                continue
            total = 0.0
            for c in range(a.shape[1]):
                total += math.exp(a[i, c] - top)
            out[s, i] = top + math.log(total)
    return out


def log_density_draws(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Mixture log density of every row under every draw, in the units of ``X``: (S, n).

    ``weights`` (S, K), ``means`` (S, K, d), ``covariances`` (S, K, d, d). The work is
    done in standardised units ``z = (x - loc) / scale``, where expanding the
    quadratic form loses nothing to cancellation, and the Jacobian ``-sum log scale``
    is added back.
    """
    Z = np.ascontiguousarray((X - loc) / scale)
    means_z = np.ascontiguousarray((means - loc) / scale)
    covariances_z = covariances / (scale[:, None] * scale[None, :])
    chol = np.ascontiguousarray(np.linalg.cholesky(covariances_z))
    out = _log_density_draws_kernel(Z, np.ascontiguousarray(weights), means_z, chol)
    return out - np.log(scale).sum()


# ----------------------------------------------------------------------------- Ops
def _as_float_tensor(value: Any, ndim: int, name: str) -> Any:
    tensor = pt.as_tensor_variable(value)
    if tensor.ndim != ndim:
        raise TypeError(f"{name} must have {ndim} dimensions, got {tensor.ndim}")
    return pt.cast(tensor, "float64")


class MixtureLogDensity(Op):
    """Per-row log density of a Gaussian mixture: ``(X, w, mu, L) -> log p(x_i)``.

    Inputs: ``X`` (n, d) rows, ``weights`` (K,) on the simplex, ``means`` (K, d) and
    ``chol`` (K, d, d) lower-triangular Cholesky factors of the covariances with a
    positive diagonal. Outputs: (n,) log densities, (n, K) responsibilities and the
    (n, p) quadratic features, the last two for the gradient
    (:class:`MixtureLogDensityGrad`), which flows through the first output only and
    not into ``X``. See the module docstring for the formulas.
    """

    __props__ = ()

    def make_node(self, *inputs: Any) -> Apply:
        X, weights, means, chol = inputs
        X = _as_float_tensor(X, 2, "X")
        weights = _as_float_tensor(weights, 1, "weights")
        means = _as_float_tensor(means, 2, "means")
        chol = _as_float_tensor(chol, 3, "chol")
        n, d = X.type.shape
        k = weights.type.shape[0]
        p = None if d is None else d + d * (d + 1) // 2
        outs = [
            pt.tensor(dtype="float64", shape=(n,)),
            pt.tensor(dtype="float64", shape=(n, k)),
            pt.tensor(dtype="float64", shape=(n, p)),
        ]
        return Apply(self, [X, weights, means, chol], outs)

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: Any) -> None:
        for slot, value in zip(outputs, _log_density_kernel(*inputs), strict=True):
            slot[0] = value

    def infer_shape(self, node: Apply, shapes: list[Any]) -> list[Any]:
        n, d = shapes[0]
        k = shapes[1][0]
        return [(n,), (n, k), (n, d + d * (d + 1) // 2)]

    def pullback(self, inputs: Any, outputs: Any, cotangents: Any) -> list[Any]:
        X, weights, means, chol = inputs
        _, resp, phi = outputs
        for extra in cotangents[1:]:
            if not isinstance(extra.type, DisconnectedType):
                raise NotImplementedError(
                    "MixtureLogDensity is differentiable through its first output only"
                )
        grads = MixtureLogDensityGrad()(weights, means, chol, resp, phi, cotangents[0])
        assert isinstance(grads, list)
        return [grad_not_implemented(self, 0, X), *grads]


class MixtureLogDensityGrad(Op):
    """Gradients of ``sum_i g_i log p(x_i)`` on weights, means and Cholesky factors."""

    __props__ = ()

    def make_node(self, *inputs: Any) -> Apply:
        weights, means, chol, resp, phi, upstream = inputs
        weights = _as_float_tensor(weights, 1, "weights")
        means = _as_float_tensor(means, 2, "means")
        chol = _as_float_tensor(chol, 3, "chol")
        resp = _as_float_tensor(resp, 2, "resp")
        phi = _as_float_tensor(phi, 2, "phi")
        upstream = _as_float_tensor(upstream, 1, "upstream")
        outs = [var.type() for var in (weights, means, chol)]
        return Apply(self, [weights, means, chol, resp, phi, upstream], outs)

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: Any) -> None:
        for slot, value in zip(outputs, _log_density_grad_kernel(*inputs), strict=True):
            slot[0] = value

    def infer_shape(self, node: Apply, shapes: list[Any]) -> list[Any]:
        return [shapes[0], shapes[1], shapes[2]]


@register_funcify_default_op_cache_key(MixtureLogDensity)
def _numba_mixture_log_density(op: MixtureLogDensity, **kwargs: Any) -> Any:
    @numba_basic.numba_njit
    def mixture_log_density(X, weights, means, chol):
        return _log_density_kernel(X, weights, means, chol)

    return mixture_log_density, _KERNEL_VERSION


@register_funcify_default_op_cache_key(MixtureLogDensityGrad)
def _numba_mixture_log_density_grad(op: MixtureLogDensityGrad, **kwargs: Any) -> Any:
    @numba_basic.numba_njit
    def mixture_log_density_grad(weights, means, chol, resp, phi, upstream):
        return _log_density_grad_kernel(weights, means, chol, resp, phi, upstream)

    return mixture_log_density_grad, _KERNEL_VERSION


_mixture_log_density = MixtureLogDensity()


def mixture_log_density(X: Any, weights: Any, means: Any, chol: Any) -> Any:
    """Symbolic ``log sum_k w_k N(x_i | mu_k, L_k L_k')`` per row of ``X`` (module docstring)."""
    outputs = _mixture_log_density(X, weights, means, chol)
    assert isinstance(outputs, list)
    return outputs[0]
