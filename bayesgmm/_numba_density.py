"""The marginal mixture's log density and gradient as numba functions cached on disk.

nutpie samples a PyMC model through a C callback that numba compiles around
PyTensor's log density: in every new process, whatever numba's disk cache holds.
This module writes the same unnormalised log posterior in the unconstrained space
(priors, transforms with their Jacobians, the marginal likelihood) and its gradient
by hand, as ``numba.cfunc`` callbacks compiled with ``cache=True``: a process that
finds them in numba's cache compiles nothing. Shapes are read at run time from the
buffer the callbacks are handed, so one compiled function serves every number of
rows, features and components, and every covariance type.

The PyMC model (:func:`bayesgmm._marginal_model.build_pymc_model`) stays the
reference: tests check this density and gradient against its ``logp`` and
``dlogp`` at random points.

The unconstrained vector
------------------------
In this order (PyMC's transforms, the same values as the PyMC model's
``weights_simplex__``, ``means``, ``stds_log__`` and ``corr_chol_corr_cholesky__``):

* ``y_w`` (K - 1): weights ``w = softmax([y_w, -sum(y_w)])``, with log Jacobian
  ``log K - K logsumexp([y_w, -sum(y_w)])``;
* ``means`` (K, d);
* ``u``: ``stds = exp(u)`` (shape (K, d), (d,) or (K,) by covariance type), log
  Jacobian ``sum(u)``;
* ``y_c`` (K or 1 matrices of d (d - 1) / 2 entries, full and tied with d > 1):
  row ``i`` of the Cholesky factor ``C`` of a correlation matrix is
  ``[y_i0, ..., y_i(i-1), 1] / sqrt(1 + sum_j y_ij^2)``
  (:class:`bayesgmm._corr_cholesky.CorrCholeskyTransform`).

The density
-----------
With ``L_k = diag(sigma_k) C_k``, ``P_k = (L_k L_k')^-1`` and the quadratic
features ``phi(z) = [z, z_a z_b (a <= b)]`` of a row,
``log w_k N(z | mu_k, L_k L_k') = phi(z) . eta_k + c_k`` (see
:mod:`bayesgmm._mixture_op`). One pass over the rows accumulates the log-likelihood
``sum_i logsumexp_k(phi_i . eta_k + c_k)`` and, per component, the
responsibilities' sums ``R_k = sum_i r_ik`` and ``S_k = sum_i r_ik phi_i``: the
first and second moments ``s_k``, ``Q_k`` of the rows weighted by ``r_ik`` (with
frequency weights ``w_i``, the buffer's last n entries, every row's terms count
``w_i`` times: the log-likelihood ``sum_i w_i log p(z_i)``, ``R_k = sum_i w_i r_ik``,
``S_k = sum_i w_i r_ik phi_i``, and the gradient below follows unchanged). Then,
with ``W_k = Q_k - mu_k s_k' - s_k mu_k' + R_k mu_k mu_k'`` and ``M_k = L_k^-1``,

    d/d log w_k = R_k,   d/dmu_k = P_k (s_k - R_k mu_k),
    d/dL_k = lower triangle of M_k' (M_k W_k M_k' - R_k I),

and the chain rule runs through ``L_k = diag(sigma_k) C_k``, ``sigma = exp(u)``,
the unit-row map and the softmax. The LKJ prior on ``C`` (Lewandowski et al. 2009)
and the Jacobian of the unit-row map combine, row ``i`` (0-based) of each matrix,
into ``-(2 eta - 1 + d) / 2 log(1 + sum_j y_ij^2)``.

References
----------
Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation
matrices based on vines and extended onion method. Journal of Multivariate
Analysis 100(9), 1989-2001. doi:10.1016/j.jmva.2009.04.008
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numba
import numpy as np

from bayesgmm._gaussian import LAYOUTS
from bayesgmm._marginal_model import STDS_SHAPE

__all__ = [
    "KIND_CODES",
    "DensityLayout",
    "bind_buffer",
    "compiled_model",
    "expand",
    "load",
    "log_density_draws",
    "logp_and_grad",
    "to_unconstrained",
]

KIND_CODES = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}
_FULL, _TIED, _DIAG, _SPHERICAL = 0, 1, 2, 3

# The buffer handed to the callbacks: a header of these slots (integers stored as
# floats), then the (n, p) quadratic features of the rows, then their (n,) weights.
_N, _D, _K, _KIND, _ALPHA, _MEANS_LOC, _MEANS_SCALE, _STDS_SCALE, _ETA, _CONST, _SIZE = range(11)
_HEADER = 11

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ---------------------------------------------------------------- the layout
@dataclasses.dataclass(frozen=True)
class DensityLayout:
    """Where each variable sits in the unconstrained and the expanded vectors.

    Attributes
    ----------
    n_components, n_features : int
    covariance_type : str
    """

    n_components: int
    n_features: int
    covariance_type: str

    @property
    def correlated(self) -> bool:
        return self.covariance_type in ("full", "tied") and self.n_features > 1

    @property
    def stds_shape(self) -> tuple[int, ...]:
        k, d = self.n_components, self.n_features
        return {"full": (k, d), "diag": (k, d), "tied": (d,), "spherical": (k,)}[
            self.covariance_type
        ]

    @property
    def corr_shape(self) -> tuple[int, ...]:
        """Shape of ``corr_chol`` (empty when there is none)."""
        if not self.correlated:
            return ()
        d = self.n_features
        return (self.n_components, d, d) if self.covariance_type == "full" else (d, d)

    def unconstrained(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names (PyMC's value variables) and shapes of the unconstrained blocks, in order."""
        k, d = self.n_components, self.n_features
        blocks = [
            ("weights_simplex__", (k - 1,)),
            ("means", (k, d)),
            ("stds_log__", self.stds_shape),
        ]
        if self.correlated:
            m = d * (d - 1) // 2
            shape = (k, m) if self.covariance_type == "full" else (m,)
            blocks.append(("corr_chol_corr_cholesky__", shape))
        return blocks

    def expanded(self) -> list[tuple[str, tuple[int, ...]]]:
        """Names and shapes of the constrained variables the sampler records, in order."""
        blocks = [
            ("weights", (self.n_components,)),
            ("means", (self.n_components, self.n_features)),
            ("stds", self.stds_shape),
        ]
        if self.correlated:
            blocks.append(("corr_chol", self.corr_shape))
        return blocks

    @staticmethod
    def _slices(blocks: list[tuple[str, tuple[int, ...]]]) -> list[slice]:
        out, start = [], 0
        for _, shape in blocks:
            size = math.prod(shape)
            out.append(slice(start, start + size))
            start += size
        return out

    @property
    def n_unconstrained(self) -> int:
        return sum(math.prod(shape) for _, shape in self.unconstrained())

    @property
    def n_expanded(self) -> int:
        return sum(math.prod(shape) for _, shape in self.expanded())


def _lkj_log_normaliser(eta: float, d: int) -> float:
    """Log normalising constant of the LKJ density of a d x d correlation matrix."""
    total = (d - 1) * math.lgamma(eta + 0.5 * (d - 1))
    for k in range(1, d):
        total -= 0.5 * k * math.log(math.pi) + math.lgamma(eta + 0.5 * (d - 1 - k))
    return total


def bind_buffer(
    Z: np.ndarray,
    layout: DensityLayout,
    priors: dict[str, float],
    sample_weight: np.ndarray | None = None,
) -> np.ndarray:
    """Make the buffer the callbacks read: shapes, priors, constants, the rows' features.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data.
    layout : DensityLayout
    priors : dict
        All five priors (:func:`bayesgmm._marginal_model.check_priors`).
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights: row i's log-likelihood (and its share of the
        gradient) counts ``w_i`` times. All ones if None.

    Returns
    -------
    ndarray of float64
        Header (see the module's slot constants), then the (n, p) quadratic
        features, then the (n,) row weights.
    """
    n, d = Z.shape
    k = layout.n_components
    alpha, eta = priors["weights_concentration"], priors["lkj_eta"]
    n_stds = math.prod(layout.stds_shape)
    n_corr = 0 if not layout.correlated else (k if layout.covariance_type == "full" else 1)
    const = (
        math.lgamma(k * alpha)
        - k * math.lgamma(alpha)
        + math.log(k)  # the simplex transform's Jacobian
        - k * d * (_HALF_LOG_2PI + math.log(priors["means_scale"]))
        # InverseGamma(a, b) on every sd: a log b - log Gamma(a).
        + n_stds * (STDS_SHAPE * math.log(priors["stds_scale"]) - math.lgamma(STDS_SHAPE))
        + n_corr * _lkj_log_normaliser(eta, d)
    )
    phi = _quadratic_features(np.ascontiguousarray(Z, dtype=np.float64))
    buffer = np.empty(_HEADER + phi.size + n)
    buffer[:_HEADER] = [
        n,
        d,
        k,
        KIND_CODES[layout.covariance_type],
        alpha,
        priors["means_loc"],
        priors["means_scale"],
        priors["stds_scale"],
        eta,
        const,
        buffer.size,
    ]
    buffer[_HEADER : _HEADER + phi.size] = phi.ravel()
    buffer[_HEADER + phi.size :] = 1.0 if sample_weight is None else sample_weight
    buffer.flags.writeable = False
    return buffer


# ------------------------------------------------------------------ kernels
@numba.njit(cache=True)
def _quadratic_features(Z: np.ndarray) -> np.ndarray:
    """Rows ``[z, z_a z_b (a <= b)]``: the Gaussian log density is affine in them."""
    n, d = Z.shape
    phi = np.empty((n, d + d * (d + 1) // 2))
    for i in range(n):
        col = d
        for a in range(d):
            phi[i, a] = Z[i, a]
            for b in range(a, d):
                phi[i, col] = Z[i, a] * Z[i, b]
                col += 1
    return phi


@numba.njit(cache=True)
def _constrain(
    theta: np.ndarray, d: int, k: int, kind: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights, their logs, means, stds (K, d), unit-row Cholesky factors (K, d, d), and ``u``.

    The stds and factors are broadcast to every component (tied, spherical) so that
    the rest of the computation sees one layout.
    """
    m = d * (d - 1) // 2
    z = np.empty(k)
    total = 0.0
    for j in range(k - 1):
        z[j] = theta[j]
        total += theta[j]
    z[k - 1] = -total
    top = np.max(z)
    acc = 0.0
    for j in range(k):
        acc += math.exp(z[j] - top)
    lse = top + math.log(acc)
    log_w = z - lse
    w = np.exp(log_w)
    pos = k - 1
    means = theta[pos : pos + k * d].copy().reshape((k, d))
    pos += k * d
    stds = np.empty((k, d))
    if kind == _FULL or kind == _DIAG:
        n_u = k * d
        for c in range(k):
            for a in range(d):
                stds[c, a] = math.exp(theta[pos + c * d + a])
    elif kind == _TIED:
        n_u = d
        for c in range(k):
            for a in range(d):
                stds[c, a] = math.exp(theta[pos + a])
    else:
        n_u = k
        for c in range(k):
            for a in range(d):
                stds[c, a] = math.exp(theta[pos + c])
    u = theta[pos : pos + n_u].copy()
    pos += n_u
    corr = np.zeros((k, d, d))
    for c in range(k):
        for a in range(d):
            corr[c, a, a] = 1.0
    if (kind == _FULL or kind == _TIED) and d > 1:
        for c in range(k):
            base = pos + (c * m if kind == _FULL else 0)
            row = 0
            for i in range(1, d):
                ss = 1.0
                for j in range(i):
                    ss += theta[base + row + j] ** 2
                inv = 1.0 / math.sqrt(ss)
                for j in range(i):
                    corr[c, i, j] = theta[base + row + j] * inv
                corr[c, i, i] = inv
                row += i
    return w, log_w, means, stds, corr, u


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _rows_pass(
    phi: np.ndarray,
    row_weight: np.ndarray,
    nat: np.ndarray,
    const: np.ndarray,
    mass: np.ndarray,
    moments: np.ndarray,
) -> float:
    """Return ``sum_i w_i logsumexp_k(phi_i . eta_k + c_k)``; sum the weighted moments.

    The weighted sums of the responsibilities go into ``mass`` (K,), those of
    ``w_i r_ik phi_i`` into ``moments`` (K, p); ``row_weight`` holds the ``w_i``.
    """
    n, p = phi.shape
    k = const.shape[0]
    a_row = np.empty(k)
    loglik = 0.0
    for i in range(n):
        top = -np.inf
        for c in range(k):
            acc = const[c]
            for q in range(p):
                acc += phi[i, q] * nat[c, q]
            a_row[c] = acc
            top = max(top, acc)
        total = 0.0
        for c in range(k):
            a_row[c] = math.exp(a_row[c] - top)
            total += a_row[c]
        loglik += row_weight[i] * (top + math.log(total))
        inv_total = row_weight[i] / total
        for c in range(k):
            r = a_row[c] * inv_total
            mass[c] += r
            for q in range(p):
                moments[c, q] += r * phi[i, q]
    return loglik


@numba.njit(cache=True)
def logp_and_grad(theta: np.ndarray, buffer: np.ndarray, grad: np.ndarray) -> float:
    """Log posterior density at the unconstrained ``theta``; its gradient into ``grad``.

    Parameters
    ----------
    theta : ndarray of shape (n_unconstrained,)
    buffer : ndarray
        From :func:`bind_buffer`.
    grad : ndarray of shape (n_unconstrained,)
        Overwritten with the gradient.

    Returns
    -------
    float
        The log density, with every constant PyMC's ``model.logp()`` has.
    """
    n = int(buffer[_N])
    d = int(buffer[_D])
    k = int(buffer[_K])
    kind = int(buffer[_KIND])
    alpha = buffer[_ALPHA]
    means_loc = buffer[_MEANS_LOC]
    means_scale = buffer[_MEANS_SCALE]
    stds_scale = buffer[_STDS_SCALE]
    eta = buffer[_ETA]
    p = d + d * (d + 1) // 2
    m = d * (d - 1) // 2
    phi = buffer[_HEADER : _HEADER + n * p].reshape((n, p))
    row_weight = buffer[_HEADER + n * p : _HEADER + n * p + n]
    w, log_w, means, stds, corr, u = _constrain(theta, d, k, kind)
    logp = buffer[_CONST]

    # Natural parameters of each component: M = L^-1, P = M'M, eta_k and c_k.
    inverse = np.zeros((k, d, d))
    precision = np.empty((k, d, d))
    nat = np.empty((k, p))
    const = np.empty(k)
    for c in range(k):
        for col in range(d):  # forward substitution on the identity, L = diag(s) C
            for j in range(col, d):
                acc = 1.0 if j == col else 0.0
                for r in range(col, j):
                    acc -= stds[c, j] * corr[c, j, r] * inverse[c, r, col]
                inverse[c, j, col] = acc / (stds[c, j] * corr[c, j, j])
        for a in range(d):
            for b in range(a, d):
                acc = 0.0
                for r in range(b, d):
                    acc += inverse[c, r, a] * inverse[c, r, b]
                precision[c, a, b] = acc
                precision[c, b, a] = acc
        quad = 0.0
        col = d
        for a in range(d):
            lin = 0.0
            for b in range(d):
                lin += precision[c, a, b] * means[c, b]
            nat[c, a] = lin
            quad += lin * means[c, a]
            for b in range(a, d):
                nat[c, col] = -0.5 * precision[c, a, a] if a == b else -precision[c, a, b]
                col += 1
        total = log_w[c] - 0.5 * quad - d * _HALF_LOG_2PI
        for j in range(d):
            total -= math.log(stds[c, j] * corr[c, j, j])
        const[c] = total

    # One pass over the rows: log-likelihood, R_k and S_k.
    mass = np.zeros(k)
    moments = np.zeros((k, p))
    loglik = _rows_pass(phi, row_weight, nat, const, mass, moments)
    logp += loglik

    # Priors and Jacobians.
    logp += (alpha - 1.0) * np.sum(log_w)
    grad[:] = 0.0
    # means: Normal(means_loc, means_scale)
    pos = k - 1
    for c in range(k):
        for a in range(d):
            dev = (means[c, a] - means_loc) / means_scale
            logp -= 0.5 * dev * dev
            grad[pos + c * d + a] = -dev / means_scale
    pos_u = pos + k * d
    n_u = u.shape[0]
    # stds: InverseGamma(STDS_SHAPE, stds_scale) with the Jacobian of s = exp(u),
    # log p(u) = -a u - b exp(-u) + const.
    for j in range(n_u):
        inverse_s = stds_scale * math.exp(-u[j])
        logp += -STDS_SHAPE * u[j] - inverse_s
        grad[pos_u + j] = inverse_s - STDS_SHAPE
    pos_c = pos_u + n_u

    # Likelihood gradients through w, mu and L_k = diag(s_k) C_k.
    g_log_w = mass + (alpha - 1.0)
    W = np.empty((d, d))
    MW = np.empty((d, d))
    inner = np.empty((d, d))
    grad_stds = np.zeros((k, d))
    grad_corr = np.zeros((k, d, d))
    for c in range(k):
        mu = means[c]
        R = mass[c]
        col = d
        for a in range(d):
            for b in range(a, d):
                W[a, b] = moments[c, col]
                W[b, a] = moments[c, col]
                col += 1
        for a in range(d):
            for b in range(d):
                W[a, b] += -mu[a] * moments[c, b] - moments[c, a] * mu[b] + R * mu[a] * mu[b]
        for a in range(d):
            acc = 0.0
            for b in range(d):
                acc += precision[c, a, b] * (moments[c, b] - R * mu[b])
            grad[pos + c * d + a] += acc
        # inner = M W M' - R I
        for a in range(d):
            for b in range(d):
                acc = 0.0
                for r in range(a + 1):
                    acc += inverse[c, a, r] * W[r, b]
                MW[a, b] = acc
        for a in range(d):
            for b in range(d):
                acc = 0.0
                for r in range(b + 1):
                    acc += MW[a, r] * inverse[c, b, r]
                inner[a, b] = acc
            inner[a, a] -= R
        # G_L = lower(M' inner); G_s_a = sum_b G_L_ab C_ab; G_C_ab = s_a G_L_ab.
        for a in range(d):
            for b in range(a + 1):
                acc = 0.0
                for r in range(a, d):
                    acc += inverse[c, r, a] * inner[r, b]
                grad_stds[c, a] += acc * corr[c, a, b]
                grad_corr[c, a, b] = stds[c, a] * acc

    # Weights: softmax of z = [y, -sum y]; the Jacobian log K - K logsumexp(z).
    total_g = np.sum(g_log_w)
    last = g_log_w[k - 1] - w[k - 1] * total_g - k * w[k - 1]
    lse = -log_w[k - 1] + (-np.sum(theta[: k - 1]))  # logsumexp(z) = z_K - log w_K
    logp += -k * lse
    for j in range(k - 1):
        grad[j] = g_log_w[j] - w[j] * total_g - k * w[j] - last

    # stds = exp(u): chain rule, with the sums over components for tied and spherical.
    for c in range(k):
        for a in range(d):
            g = grad_stds[c, a] * stds[c, a]
            if kind == _FULL or kind == _DIAG:
                grad[pos_u + c * d + a] += g
            elif kind == _TIED:
                grad[pos_u + a] += g
            else:
                grad[pos_u + c] += g

    # Correlations: LKJ prior with the Jacobian, and the unit-row map's gradient.
    if (kind == _FULL or kind == _TIED) and d > 1:
        n_mats = k if kind == _FULL else 1
        coef = -0.5 * (2.0 * eta - 1.0 + d)
        for c_mat in range(n_mats):
            base = pos_c + c_mat * m
            row = 0
            for i in range(1, d):
                ss = 1.0
                for j in range(i):
                    ss += theta[base + row + j] ** 2
                logp += coef * math.log(ss)
                inv = 1.0 / math.sqrt(ss)
                for c in range(k):
                    if kind == _FULL and c != c_mat:
                        continue
                    dot = grad_corr[c, i, i]
                    for j in range(i):
                        dot += grad_corr[c, i, j] * theta[base + row + j]
                    cube = dot * inv * inv * inv
                    for j in range(i):
                        grad[base + row + j] += (
                            grad_corr[c, i, j] * inv - cube * theta[base + row + j]
                        )
                for j in range(i):
                    grad[base + row + j] += 2.0 * coef * theta[base + row + j] / ss
                row += i
    return logp


@numba.njit(cache=True)
def _expand_into(theta: np.ndarray, buffer: np.ndarray, out: np.ndarray) -> None:
    """Write the constrained ``weights``, ``means``, ``stds`` (and ``corr_chol``) into ``out``."""
    d = int(buffer[_D])
    k = int(buffer[_K])
    kind = int(buffer[_KIND])
    w, _, means, stds, corr, _ = _constrain(theta, d, k, kind)
    pos = 0
    for c in range(k):
        out[pos + c] = w[c]
    pos += k
    for c in range(k):
        for a in range(d):
            out[pos + c * d + a] = means[c, a]
    pos += k * d
    if kind == _FULL or kind == _DIAG:
        for c in range(k):
            for a in range(d):
                out[pos + c * d + a] = stds[c, a]
        pos += k * d
    elif kind == _TIED:
        for a in range(d):
            out[pos + a] = stds[0, a]
        pos += d
    else:
        for c in range(k):
            out[pos + c] = stds[c, 0]
        pos += k
    if (kind == _FULL or kind == _TIED) and d > 1:
        n_mats = k if kind == _FULL else 1
        for c in range(n_mats):
            for a in range(d):
                for b in range(d):
                    out[pos + (c * d + a) * d + b] = corr[c, a, b]


@numba.njit(cache=True, parallel=True)
def _log_density_draws_kernel(
    phi: np.ndarray, weights: np.ndarray, means: np.ndarray, chol: np.ndarray
) -> np.ndarray:
    """``log sum_k w_sk N(z_i | mu_sk, L_sk L_sk')`` for draws ``s`` and rows ``i``: (S, n)."""
    n_draws, k, d = means.shape
    n, p = phi.shape
    out = np.empty((n_draws, n))
    for s in numba.prange(n_draws):
        inverse = np.zeros((d, d))
        nat = np.empty((k, p))
        const = np.empty(k)
        a_row = np.empty(k)
        for c in range(k):
            inverse[:] = 0.0
            for col in range(d):
                for j in range(col, d):
                    acc = 1.0 if j == col else 0.0
                    for r in range(col, j):
                        acc -= chol[s, c, j, r] * inverse[r, col]
                    inverse[j, col] = acc / chol[s, c, j, j]
            quad = 0.0
            q = d
            for a in range(d):
                lin = 0.0
                for b in range(d):
                    prec = 0.0
                    for r in range(max(a, b), d):
                        prec += inverse[r, a] * inverse[r, b]
                    lin += prec * means[s, c, b]
                    if b >= a:
                        nat[c, q] = -0.5 * prec if a == b else -prec
                        q += 1
                nat[c, a] = lin
                quad += lin * means[s, c, a]
            total = math.log(weights[s, c]) - 0.5 * quad - d * _HALF_LOG_2PI
            for j in range(d):
                total -= math.log(chol[s, c, j, j])
            const[c] = total
        for i in range(n):
            top = -np.inf
            for c in range(k):
                acc = const[c]
                for q in range(p):
                    acc += phi[i, q] * nat[c, q]
                a_row[c] = acc
                top = max(top, acc)
            if top == -np.inf:
                out[s, i] = -np.inf
                continue
            total = 0.0
            for c in range(k):
                total += math.exp(a_row[c] - top)
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
    quadratic form loses nothing to cancellation, with the draws spread over the
    cores, and the Jacobian ``-sum log scale`` is added back.
    """
    phi = _quadratic_features(np.ascontiguousarray((X - loc) / scale))
    means_z = np.ascontiguousarray((means - loc) / scale)
    chol = np.ascontiguousarray(np.linalg.cholesky(covariances / (scale[:, None] * scale[None, :])))
    with np.errstate(divide="ignore"):
        out = _log_density_draws_kernel(phi, np.ascontiguousarray(weights), means_z, chol)
    return out - np.log(scale).sum()


# ---------------------------------------------------------------- callbacks
_LOGP_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)
_EXPAND_SIGNATURE = numba.types.int64(
    numba.types.uint64,
    numba.types.uint64,
    numba.types.CPointer(numba.types.double),
    numba.types.CPointer(numba.types.double),
    numba.types.voidptr,
)


@numba.njit(cache=True)
def _buffer_at(address: Any) -> np.ndarray:
    header = numba.carray(address, (_HEADER,), np.float64)
    return numba.carray(address, (int(header[_SIZE]),), np.float64)


@numba.cfunc(_LOGP_SIGNATURE, cache=True)
def _logp_callback(dim, theta_, grad_, logp_, buffer_):
    """Evaluate the log density for nutpie: 0 if fine, 3 (4) for a non-finite gradient (value)."""
    theta = numba.carray(theta_, (dim,))
    grad = numba.carray(grad_, (dim,))
    out = numba.carray(logp_, (1,))
    value = logp_and_grad(theta, _buffer_at(buffer_), grad)
    out[0] = value
    for j in range(dim):
        if not math.isfinite(grad[j]):
            return 3
    if not math.isfinite(value):
        return 4
    return 0


@numba.cfunc(_EXPAND_SIGNATURE, cache=True)
def _expand_callback(dim, n_expanded, theta_, out_, buffer_):
    """Map a draw to the variables nutpie records."""
    theta = numba.carray(theta_, (dim,))
    out = numba.carray(out_, (n_expanded,))
    _expand_into(theta, _buffer_at(buffer_), out)
    return 0


# --------------------------------------------------------------- Python side
def expand(theta: np.ndarray, layout: DensityLayout) -> dict[str, np.ndarray]:
    """Return the constrained variables at ``theta`` by name (:meth:`DensityLayout.expanded`)."""
    header = np.zeros(_HEADER)
    header[[_D, _K, _KIND]] = [
        layout.n_features,
        layout.n_components,
        KIND_CODES[layout.covariance_type],
    ]
    out = np.empty(layout.n_expanded)
    _expand_into(np.ascontiguousarray(theta, dtype=np.float64), header, out)
    blocks = layout.expanded()
    return {
        name: out[where].reshape(shape)
        for (name, shape), where in zip(blocks, DensityLayout._slices(blocks), strict=True)
    }


def to_unconstrained(values: dict[str, np.ndarray], layout: DensityLayout) -> np.ndarray:
    """Return the unconstrained vector of constrained ``values`` (the inverse of :func:`expand`).

    Parameters
    ----------
    values : dict of str to ndarray
        ``weights``, ``means``, ``stds`` (and ``corr_chol``), as
        :func:`bayesgmm._marginal_model.free_values` returns them.
    layout : DensityLayout
    """
    log_w = np.log(values["weights"])
    parts = [
        log_w[:-1] - log_w.mean(),
        np.ravel(values["means"]),
        np.log(np.ravel(values["stds"])),
    ]
    if layout.correlated:
        chol = values["corr_chol"]
        rows, cols = np.tril_indices(layout.n_features, -1)
        parts.append(np.ravel(chol[..., rows, cols] / chol[..., rows, rows]))
    return np.concatenate(parts)


def load(layout: DensityLayout) -> None:
    """Load everything a fit needs (nutpie, the callbacks, the feature map) into the process.

    Importing this module loads the callbacks from numba's disk cache (or compiles
    and caches them, the first time on a machine); this also imports nutpie and
    loads the kernel that binds the data, so that the time of all of it is counted
    once, as the compile time of the first fit.
    """
    import nutpie.compile_pymc  # noqa: F401

    bind_buffer(np.zeros((1, layout.n_features)), layout, _LOAD_PRIORS)


_LOAD_PRIORS = {
    "weights_concentration": 1.0,
    "means_loc": 0.0,
    "means_scale": 1.0,
    "stds_scale": 1.0,
    "lkj_eta": 1.0,
}


def compiled_model(
    Z: np.ndarray,
    layout: DensityLayout,
    priors: dict[str, float],
    sample_weight: np.ndarray | None = None,
) -> Any:
    """Make a model nutpie samples directly, its callbacks these cached numba functions.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data.
    layout : DensityLayout
    priors : dict
        All five priors.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights of the rows (see :func:`bind_buffer`).

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        Recording ``weights``, ``means``, ``stds`` (and ``corr_chol``) with the
        model's dims. Its ``initial_point_func`` draws around zero; the caller
        replaces it with the chains' start.
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    buffer = bind_buffer(Z, layout, priors, sample_weight)
    names, shapes = zip(*layout.unconstrained(), strict=True)
    expanded_names, expanded_shapes = zip(*layout.expanded(), strict=True)
    n_dim = layout.n_unconstrained
    shapes_ = list(expanded_shapes)
    k, d = layout.n_components, layout.n_features
    coords = {"component": np.arange(k), "feature": np.arange(d), "feature_bis": np.arange(d)}
    dims = {
        "weights": ("component",),
        "means": ("component", "feature"),
        "stds": LAYOUTS[layout.covariance_type].scale_dims,
    }
    if layout.correlated:
        dims["corr_chol"] = (*dims["stds"], "feature_bis")

    def initial_point(seed: Any) -> np.ndarray:
        return np.random.default_rng(seed).uniform(-1.0, 1.0, size=n_dim)

    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes=dict(zip(expanded_names, expanded_shapes, strict=True)),
        compiled_logp_func=_logp_callback,
        compiled_expand_func=_expand_callback,
        initial_point_func=initial_point,
        shared_data={"buffer": buffer},
        shared_var_keys={},
        user_data=buffer,
        n_expanded=layout.n_expanded,
        shape_info=(list(expanded_names), DensityLayout._slices(layout.expanded()), shapes_),
        logp_func=None,
        expand_func=None,
    )
