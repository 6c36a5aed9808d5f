"""Closed-form coordinate-ascent updates for the truncated stick-breaking Gaussian mixture.

Pure functions, one small family per covariance type, used by
:class:`bayesgmm.DPGaussianMixture`. The model (Blei and Jordan 2006) is

    alpha ~ Gamma(s1, s2)            (or fixed)
    v_k | alpha ~ Beta(1, alpha),    k = 1..T-1,  v_T = 1
    pi_k = v_k prod_{j<k} (1 - v_j)
    (mu_k, Lambda_k) ~ Normal-Wishart / Normal-Gamma
    z_i | v ~ Categorical(pi),  x_i | z_i = k ~ N(mu_k, Lambda_k^{-1})

with the mean-field family q(alpha) q(v) q(mu, Lambda) q(z), every factor in
the conjugate family. "dof" and "scale" mean the Wishart degrees of freedom
``nu`` and the *inverse* scale matrix ``W^{-1}`` for ``full`` and ``tied``, and
the Gamma shape ``a`` and rate ``b`` of the precisions for ``diag`` and
``spherical``. The module also holds the data-dependent default prior
(:func:`data_prior`) and draws of every parameter with their log densities
(:class:`ParameterDraws`), which both inference methods of the estimator share.

References
----------
Blei, D. M. and Jordan, M. I. (2006). Variational inference for Dirichlet process
mixtures. Bayesian Analysis 1(1), 121-143. doi:10.1214/06-BA104
Bishop, C. M. (2006). Pattern Recognition and Machine Learning, section 10.2
(Normal-Wishart updates, eqs. 10.60-10.63; predictive Student-t, eq. 10.81).
Fraley, C. and Raftery, A. E. (2007). Bayesian regularization for normal mixture
estimation and model-based clustering. Journal of Classification 24, 155-181.
doi:10.1007/s00357-007-0004-5
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln, multigammaln, xlogy

from bayesgmm._gaussian import LAYOUTS, SufficientStatistics, natural_parameters
from bayesgmm._missing import (
    MissingnessPatterns,
    missing_statistics,
    missingness_patterns,
    observed_log_density,
)
from bayesgmm._validation import check_float, message

__all__ = [
    "ComponentPosterior",
    "ComponentPrior",
    "Concentration",
    "GlobalState",
    "ParameterDraws",
    "data_prior",
    "data_term",
    "draw_components",
    "draw_parameters",
    "draw_sticks",
    "elbo_fixed_responsibilities",
    "elbo_from_normalizer",
    "expected_log_gaussian",
    "expected_observed_log_gaussian",
    "expected_log_weights",
    "expected_weights",
    "fit_globals",
    "kl_components",
    "merge_entropy_change",
    "merge_statistics",
    "missing_data_statistics",
    "posterior_covariances",
    "predictive_log_density",
    "predictive_log_density_observed",
    "predictive_sample",
    "update_components",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
_WISHART_TYPES = ("full", "tied")


# ---------------------------------------------------------------------------- state
@dataclass(frozen=True)
class ComponentPrior:
    """Conjugate prior of one component, in the centred frame of the data.

    ``mean`` (d,), ``mean_precision`` beta0, ``dof`` (nu0 or Gamma shape a0) and
    ``scale`` (W0^{-1} (d, d) for full/tied, Gamma rate (d,) for diag, () for spherical).
    """

    covariance_type: str
    mean: np.ndarray
    mean_precision: float
    dof: float
    scale: np.ndarray


@dataclass(frozen=True)
class ComponentPosterior:
    """Variational factor ``q(mu_k, Lambda_k)`` of every component.

    Shapes: ``beta`` (K,), ``mean`` (K, d), ``dof`` (K,) or () for tied,
    ``scale`` (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    """

    covariance_type: str
    beta: np.ndarray
    mean: np.ndarray
    dof: np.ndarray
    scale: np.ndarray

    def permuted(self, order: np.ndarray) -> ComponentPosterior:
        """Return the same factors with components reordered."""
        tied = self.covariance_type == "tied"
        return replace(
            self,
            beta=self.beta[order],
            mean=self.mean[order],
            dof=self.dof if tied else self.dof[order],
            scale=self.scale if tied else self.scale[order],
        )


@dataclass(frozen=True)
class Concentration:
    """Prior and variational factor of the DP concentration alpha.

    ``fixed`` is the value when alpha is not random; otherwise the prior is
    Gamma(prior_shape, prior_rate) and q(alpha) = Gamma(shape, rate).
    """

    fixed: float | None
    prior_shape: float
    prior_rate: float
    shape: float
    rate: float

    @property
    def mean(self) -> float:
        """``E_q[alpha]``."""
        return self.fixed if self.fixed is not None else self.shape / self.rate

    @property
    def mean_log(self) -> float:
        """``E_q[log alpha]``."""
        if self.fixed is not None:
            return float(np.log(self.fixed))
        return float(digamma(self.shape) - np.log(self.rate))

    def kl(self) -> float:
        """``KL(q(alpha) || p(alpha))`` (0 when alpha is fixed)."""
        if self.fixed is not None:
            return 0.0
        return float(_kl_gamma(self.shape, self.rate, self.prior_shape, self.prior_rate))


@dataclass(frozen=True)
class GlobalState:
    """Every global variational factor: components, sticks ``Beta(a, b)`` and alpha."""

    components: ComponentPosterior
    stick_a: np.ndarray
    stick_b: np.ndarray
    concentration: Concentration

    @property
    def n_components(self) -> int:
        """Truncation level T."""
        return int(self.components.beta.shape[0])


# ------------------------------------------------------------------------ prior
def data_prior(
    data_cov: np.ndarray,
    center: np.ndarray,
    kind: str,
    priors: dict[str, Any] | None,
    truncation: int,
) -> ComponentPrior:
    """Build the component prior from the data and the user's ``priors``, in the centred frame.

    ``data_cov`` is the biased (d, d) covariance of the data and ``center`` its
    mean; ``priors`` holds keys among ``"mean"``, ``"mean_precision"``,
    ``"degrees_of_freedom"`` and ``"covariance"`` in the data's units (see
    :class:`bayesgmm.DPGaussianMixture`). The defaults are the data-dependent
    priors of Fraley and Raftery (2007), doi:10.1007/s00357-007-0004-5. A bad key
    or value raises a ValueError or TypeError that names it.
    """
    priors = dict(priors or {})
    unknown = set(priors) - {"mean", "mean_precision", "degrees_of_freedom", "covariance"}
    if unknown:
        raise ValueError(
            message(
                "priors",
                "keys among 'mean', 'mean_precision', 'degrees_of_freedom', 'covariance'",
                sorted(unknown),
            )
        )
    d = center.shape[0]
    mean = np.zeros(d)  # the data mean, in the frame centred on it
    if "mean" in priors:
        mean = np.asarray(priors["mean"], dtype=float).reshape(-1)
        if mean.shape != (d,) or not np.isfinite(mean).all():
            raise ValueError(
                message("priors['mean']", f"{d} finite numbers", np.asarray(priors["mean"]))
            )
        mean = mean - center
    beta0 = check_float(
        priors.get("mean_precision", 0.01),
        "priors['mean_precision']",
        minimum=0.0,
        include_minimum=False,
    )
    wishart = kind in ("full", "tied")
    nu_default = d + 2.0 if wishart else 4.0
    nu0 = check_float(
        priors.get("degrees_of_freedom", nu_default),
        "priors['degrees_of_freedom']",
        minimum=(d + 1.0) if wishart else 2.0,
        include_minimum=False,
    )
    # Fraley and Raftery (2007): the data covariance shared out among the
    # components, cov(X) / T^(2/d), as the prior guess of a component covariance
    cov = data_cov / truncation ** (2.0 / d)
    scale_floor = 1e-6 * max(float(np.trace(cov)) / d, 1e-300)
    if "covariance" in priors:
        given = np.asarray(priors["covariance"], dtype=float)
        expected_shape = LAYOUTS[kind].component_shape(d)
        if given.shape != expected_shape or not np.isfinite(given).all():
            raise ValueError(
                message(
                    "priors['covariance']",
                    f"an array of shape {expected_shape} for covariance_type={kind!r}",
                    given,
                )
            )
        if wishart:
            if not np.allclose(given, given.T) or np.any(np.linalg.eigvalsh(given) <= 0):
                raise ValueError(
                    message("priors['covariance']", "a symmetric positive definite matrix", given)
                )
        elif np.any(given <= 0):
            raise ValueError(message("priors['covariance']", "positive values", given))
        prior_cov = given
    elif wishart:
        prior_cov = cov + scale_floor * np.eye(d)
    elif kind == "diag":
        prior_cov = np.diag(cov) + scale_floor
    else:
        prior_cov = np.asarray(np.trace(cov) / d + scale_floor)
    if wishart:
        scale = (nu0 - d - 1.0) * prior_cov
        dof = nu0
    else:
        dof = nu0 / 2.0
        scale = (dof - 1.0) * prior_cov
    return ComponentPrior(kind, mean, beta0, dof, np.asarray(scale, dtype=float))


# --------------------------------------------------------------- small densities
def _kl_gamma(
    a: np.ndarray | float, b: np.ndarray | float, a0: np.ndarray | float, b0: np.ndarray | float
) -> np.ndarray:
    """KL(Gamma(a, rate b) || Gamma(a0, rate b0)), elementwise."""
    return (
        (a - a0) * digamma(a)
        - gammaln(a)
        + gammaln(a0)
        + a0 * (np.log(b) - np.log(b0))
        + a * (b0 - b) / b
    )


def _multidigamma(x: np.ndarray, d: int) -> np.ndarray:
    """``sum_{i=1}^d digamma(x + (1 - i) / 2)``."""
    x = np.asarray(x, dtype=float)
    return sum(digamma(x + (1.0 - i) / 2.0) for i in range(1, d + 1))


def _logdet_chol(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of SPD matrices and their log-determinants."""
    chol = np.linalg.cholesky(matrices)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    return chol, logdet


@lru_cache(maxsize=64)
def _upper_indices(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.triu_indices(d)
    return rows, cols, rows != cols


def _pack_upper(matrices: np.ndarray, off_factor: float) -> np.ndarray:
    rows, cols, off = _upper_indices(matrices.shape[-1])
    packed = matrices[..., rows, cols]
    if off_factor != 1.0:
        packed[..., off] *= off_factor
    return packed


# ------------------------------------------------------------- component updates
def update_components(stats: SufficientStatistics, prior: ComponentPrior) -> ComponentPosterior:
    """Optimal ``q(mu, Lambda)`` given the responsibility-weighted statistics.

    ``beta_k = beta0 + N_k``, ``m_k = (beta0 m0 + sum_i r_ik x_i) / beta_k`` and the
    scale statistic ``sum_i r_ik x_i x_i' + beta0 m0 m0' - beta_k m_k m_k'`` added to
    the prior's (Bishop 2006, eqs. 10.60-10.63, written with raw sums so that an
    empty component returns exactly the prior).
    """
    kind = stats.covariance_type
    nk = stats.nk
    m0, beta0 = prior.mean, prior.mean_precision
    beta = beta0 + nk
    mean = (beta0 * m0 + stats.sum_x) / beta[:, None]
    if kind in _WISHART_TYPES:
        outer0 = beta0 * np.outer(m0, m0)
        scatter = stats.sum_xx + outer0 - beta[:, None, None] * mean[:, :, None] * mean[:, None, :]
        if kind == "full":
            scale = prior.scale + scatter
            scale = 0.5 * (scale + np.swapaxes(scale, 1, 2))
            dof = prior.dof + nk
        else:
            scale = prior.scale + scatter.sum(axis=0)
            scale = 0.5 * (scale + scale.T)
            dof = np.asarray(prior.dof + nk.sum())
    elif kind == "diag":
        scatter = stats.sum_xx + beta0 * m0**2 - beta[:, None] * mean**2
        scale = prior.scale + np.maximum(scatter, 0.0) / 2.0
        dof = prior.dof + nk / 2.0
    else:
        d = mean.shape[1]
        scatter = stats.sum_xx + beta0 * (m0 @ m0) - beta * np.einsum("kj,kj->k", mean, mean)
        scale = prior.scale + np.maximum(scatter, 0.0) / 2.0
        dof = prior.dof + nk * d / 2.0
    return ComponentPosterior(kind, beta, mean, np.asarray(dof, dtype=float), scale)


def _expected_precision(post: ComponentPosterior) -> tuple[np.ndarray, np.ndarray]:
    """``E[Lambda]`` (layout of the covariance type) and ``E[log |Lambda|]`` per component."""
    kind = post.covariance_type
    d = post.mean.shape[1]
    if kind in _WISHART_TYPES:
        chol, logdet_scale = _logdet_chol(post.scale)
        inv = np.linalg.inv(post.scale)
        inv = 0.5 * (inv + np.swapaxes(inv, -1, -2))
        e_prec = post.dof[..., None, None] * inv
        e_logdet = _multidigamma(post.dof / 2.0, d) + d * np.log(2.0) - logdet_scale
        if kind == "tied":
            k = post.beta.shape[0]
            e_prec = np.broadcast_to(e_prec, (k, d, d))
            e_logdet = np.full(k, float(e_logdet))
        return e_prec, e_logdet
    if kind == "diag":
        e_prec = post.dof[:, None] / post.scale
        e_logdet = (digamma(post.dof)[:, None] - np.log(post.scale)).sum(axis=1)
        return e_prec, e_logdet
    e_prec = post.dof / post.scale
    return e_prec, d * (digamma(post.dof) - np.log(post.scale))


def expected_log_gaussian(post: ComponentPosterior) -> tuple[np.ndarray, np.ndarray]:
    """``(eta, c)`` with ``E_q[log N(x | mu_k, Lambda_k^{-1})] = c_k + phi(x) . eta[:, k]``.

    ``E[(x - mu)' Lambda (x - mu)] = d / beta + (x - m)' E[Lambda] (x - m)`` and
    ``E[log |Lambda|]`` from the Wishart (Bishop 2006, eqs. 10.64-10.65) or Gamma
    factors, so the expected log density has the same affine form in the
    feature map as a plain Gaussian, and the shared E-step kernel applies.
    """
    kind = post.covariance_type
    d = post.mean.shape[1]
    m = post.mean
    e_prec, e_logdet = _expected_precision(post)
    if kind in _WISHART_TYPES:
        linear = np.einsum("kij,kj->ki", e_prec, m)
        quadratic = -0.5 * _pack_upper(e_prec, 2.0)
        maha = np.einsum("ki,ki->k", linear, m)
    elif kind == "diag":
        linear = e_prec * m
        quadratic = -0.5 * e_prec
        maha = (linear * m).sum(axis=1)
    else:
        linear = e_prec[:, None] * m
        quadratic = -0.5 * e_prec[:, None]
        maha = e_prec * np.einsum("kj,kj->k", m, m)
    eta = np.ascontiguousarray(np.concatenate([linear, quadratic], axis=1).T)
    const = -0.5 * d * _LOG_2PI + 0.5 * e_logdet - 0.5 * (d / post.beta + maha)
    return eta, const


def _expected_gaussian_terms(post: ComponentPosterior) -> tuple[np.ndarray, np.ndarray]:
    """``S_k = E_q[Lambda_k]^{-1}`` as full matrices and the per-component offset ``c_k``.

    ``c_k = (E[log |Lambda_k|] - log |E[Lambda_k]|) / 2 - d / (2 beta_k)``, so that
    for a complete row ``E_q[log N(x | mu_k, Lambda_k^{-1})] = log N(x | m_k, S_k) + c_k``.
    """
    kind = post.covariance_type
    d = post.mean.shape[1]
    e_prec, e_logdet = _expected_precision(post)
    if kind in _WISHART_TYPES:
        chol, logdet_prec = _logdet_chol(e_prec)
        eye = np.broadcast_to(np.eye(d), e_prec.shape)
        inv_chol = np.linalg.solve(chol, eye)
        covariances = np.swapaxes(inv_chol, 1, 2) @ inv_chol
    else:
        diag = e_prec if kind == "diag" else np.repeat(e_prec[:, None], d, axis=1)
        logdet_prec = np.log(diag).sum(axis=1)
        covariances = (1.0 / diag)[:, :, None] * np.eye(d)
    offset = 0.5 * (e_logdet - logdet_prec) - 0.5 * d / post.beta
    return covariances, offset


def expected_observed_log_gaussian(
    X: np.ndarray, post: ComponentPosterior, *, patterns: MissingnessPatterns | None = None
) -> np.ndarray:
    """Return the collapsed per-component score of rows with missing entries, shape (n, K).

    The missing coordinates of row i are latent, with the structured factor
    ``q(x_im | z_i = k)``. Given ``q(mu_k, Lambda_k)``, its optimum is Gaussian
    with precision ``E[Lambda_k]_mm`` and mean the conditional mean of ``x_m``
    given ``x_o`` under ``N(m_k, S_k)``, ``S_k = E[Lambda_k]^{-1}`` (the terms of
    ``E_q[log N(x | mu_k, Lambda_k^{-1})]`` in ``x_m`` are a quadratic with that
    Hessian, Bishop 2006, eq. 10.64). At that optimum

        E_q[log N(x_i | mu_k, Lambda_k^{-1})] + H[q(x_im | k)]
          = log N(x_io | m_ko, S_k,oo)
            + (E[log |Lambda_k|] - log |E[Lambda_k]|) / 2 - d / (2 beta_k),

    which follows from ``|E[Lambda]| = |E[Lambda]_mm| / |S_oo|`` (the Schur
    complement) and reduces to Bishop's eq. 10.64-10.65 on complete rows. A
    row with nothing missing gets the complete-data expected log density.
    """
    covariances, offset = _expected_gaussian_terms(post)
    return observed_log_density(X, post.mean, covariances, patterns=patterns) + offset


def missing_data_statistics(
    X: np.ndarray,
    state: GlobalState,
    *,
    patterns: MissingnessPatterns | None = None,
    resp_out: np.ndarray | None = None,
) -> SufficientStatistics:
    """CAVI's E-step on rows with missing entries: ``q(z)``, ``q(x_m | z)`` and their statistics.

    ``q(z_i = k)`` is proportional to ``exp(E[log pi_k] + s_ik)`` with ``s_ik``
    the score of :func:`expected_observed_log_gaussian`; the statistics that
    the update of ``q(mu, Lambda)`` reads are ``sum_i r_ik E[x_i | k]`` and
    ``sum_i r_ik (E[x_i | k] E[x_i | k]' + Cov[x_i | k])`` under
    ``q(x_im | z_i = k)``: exactly EM's expected statistics
    (:func:`bayesgmm._missing.missing_statistics`) with the covariances ``S_k``,
    since the Schur complement of ``S_k,oo`` in ``S_k`` is ``E[Lambda_k]_mm^{-1}``.
    ``log_normalizer`` is ``sum_i log sum_k exp(E[log pi_k] + s_ik)``, so the
    ELBO is :func:`elbo_from_normalizer` as for complete data; it includes the
    entropy of ``q(x_m | z)``.
    """
    X = np.asarray(X, dtype=float)
    patterns = missingness_patterns(X) if patterns is None else patterns
    covariances, offset = _expected_gaussian_terms(state.components)
    e_log_pi = expected_log_weights(state.stick_a, state.stick_b)
    return missing_statistics(
        X,
        e_log_pi + offset,
        state.components.mean,
        covariances,
        state.components.covariance_type,
        patterns=patterns,
        resp_out=resp_out,
    )


def kl_components(post: ComponentPosterior, prior: ComponentPrior) -> float:
    """``sum_k KL(q(mu_k, Lambda_k) || p(mu_k, Lambda_k))``, constants included.

    The Wishart part is the closed-form Wishart KL; the Gaussian part is
    ``E_q(Lambda) KL(N(m, (beta Lambda)^-1) || N(m0, (beta0 Lambda)^-1))
    = 1/2 [d beta0/beta - d + d log(beta/beta0) + beta0 (m - m0)' E[Lambda] (m - m0)]``.
    """
    kind = post.covariance_type
    d = post.mean.shape[1]
    beta0 = prior.mean_precision
    diff = post.mean - prior.mean
    e_prec, _ = _expected_precision(post)
    if kind in _WISHART_TYPES:
        nu, nu0 = post.dof, prior.dof
        _, logdet = _logdet_chol(post.scale)
        _, logdet0 = _logdet_chol(prior.scale)
        inv = np.linalg.inv(post.scale)
        trace = np.einsum("ij,...ji->...", prior.scale, inv)
        kl_w = (
            0.5 * (nu - nu0) * _multidigamma(nu / 2.0, d)
            + multigammaln(nu0 / 2.0, d)
            - _multigammaln(nu / 2.0, d)
            - 0.5 * nu0 * (logdet0 - logdet)
            + 0.5 * nu * (trace - d)
        )
        maha = np.einsum("ki,kij,kj->k", diff, e_prec, diff)
        ratio = post.beta / beta0
        kl_n = 0.5 * (d / ratio - d + d * np.log(ratio) + beta0 * maha)
        return float(np.sum(kl_w) + kl_n.sum())
    ratio = post.beta / beta0
    if kind == "diag":
        kl_g = _kl_gamma(post.dof[:, None], post.scale, prior.dof, prior.scale).sum()
        maha = (e_prec * diff**2).sum(axis=1)
    else:
        kl_g = _kl_gamma(post.dof, post.scale, prior.dof, prior.scale).sum()
        maha = e_prec * (diff**2).sum(axis=1)
    kl_n = 0.5 * (d / ratio - d + d * np.log(ratio) + beta0 * maha)
    return float(kl_g + kl_n.sum())


def _multigammaln(a: np.ndarray | float, d: int) -> np.ndarray:
    """Vectorised ``multigammaln`` (SciPy's accepts only scalars in some versions)."""
    a = np.asarray(a, dtype=float)
    return d * (d - 1) / 4.0 * np.log(np.pi) + sum(
        gammaln(a + (1.0 - i) / 2.0) for i in range(1, d + 1)
    )


def posterior_covariances(post: ComponentPosterior) -> np.ndarray:
    """``E_q[Sigma_k]`` in scikit-learn's layout of the covariance type.

    ``W^{-1} / (nu - d - 1)`` for the Wishart and ``b / (a - 1)`` for the Gamma
    factors (the priors guarantee ``nu > d + 1`` and ``a > 1``).
    """
    kind = post.covariance_type
    d = post.mean.shape[1]
    if kind == "full":
        return post.scale / (post.dof - d - 1.0)[:, None, None]
    if kind == "tied":
        return post.scale / (float(post.dof) - d - 1.0)
    if kind == "diag":
        return post.scale / (post.dof - 1.0)[:, None]
    return post.scale / (post.dof - 1.0)


# ----------------------------------------------------------------------- sticks
def expected_log_weights(stick_a: np.ndarray, stick_b: np.ndarray) -> np.ndarray:
    """``E_q[log pi_k] = E[log v_k] + sum_{j<k} E[log(1 - v_j)]`` with ``v_T = 1``."""
    total = digamma(stick_a + stick_b)
    log_v = np.append(digamma(stick_a) - total, 0.0)
    log_1mv = digamma(stick_b) - total
    return log_v + np.concatenate([[0.0], np.cumsum(log_1mv)])


def expected_weights(stick_a: np.ndarray, stick_b: np.ndarray) -> np.ndarray:
    """``E_q[pi_k] = E[v_k] prod_{j<k} E[1 - v_j]`` (the factors are independent)."""
    mean_v = np.append(stick_a / (stick_a + stick_b), 1.0)
    rest = np.concatenate([[1.0], np.cumprod(stick_b / (stick_a + stick_b))])
    return mean_v * rest


def _update_sticks(nk: np.ndarray, mean_alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``q(v_k) = Beta(1 + N_k, E[alpha] + sum_{j>k} N_j)`` (Blei and Jordan 2006, eq. 18)."""
    tail = np.cumsum(nk[::-1])[::-1]
    return 1.0 + nk[:-1], mean_alpha + tail[1:]


def _kl_sticks(stick_a: np.ndarray, stick_b: np.ndarray, conc: Concentration) -> float:
    """``sum_k E_q[log q(v_k) - log p(v_k | alpha)]`` for the T - 1 random sticks."""
    if stick_a.size == 0:
        return 0.0
    total = digamma(stick_a + stick_b)
    e_log_1mv = digamma(stick_b) - total
    e_log_q = (
        -betaln(stick_a, stick_b)
        + (stick_a - 1.0) * (digamma(stick_a) - total)
        + (stick_b - 1.0) * e_log_1mv
    )
    e_log_p = conc.mean_log + (conc.mean - 1.0) * e_log_1mv
    return float(np.sum(e_log_q - e_log_p))


def _update_concentration(
    conc: Concentration, stick_a: np.ndarray, stick_b: np.ndarray
) -> Concentration:
    """``q(alpha) = Gamma(s1 + T - 1, s2 - sum_k E[log(1 - v_k)])`` (Blei and Jordan 2006)."""
    if conc.fixed is not None:
        return conc
    e_log_1mv = digamma(stick_b) - digamma(stick_a + stick_b)
    return replace(
        conc, shape=conc.prior_shape + stick_a.size, rate=conc.prior_rate - float(e_log_1mv.sum())
    )


# ------------------------------------------------------------------------- ELBO
def _packed_statistics(stats: SufficientStatistics) -> np.ndarray:
    """``R' phi(X)`` rebuilt from the statistics, in the column order of ``feature_map``."""
    kind = stats.covariance_type
    if kind in _WISHART_TYPES:
        quad = _pack_upper(stats.sum_xx, 1.0)
    elif kind == "diag":
        quad = stats.sum_xx
    else:
        quad = stats.sum_xx[:, None]
    return np.concatenate([stats.sum_x, quad], axis=1)


def data_term(stats: SufficientStatistics, state: GlobalState) -> float:
    """``sum_ik r_ik (E[log pi_k] + E[log N(x_i | mu_k, Lambda_k)])`` from the statistics."""
    eta, const = expected_log_gaussian(state.components)
    e_log_pi = expected_log_weights(state.stick_a, state.stick_b)
    return float(stats.nk @ (e_log_pi + const) + np.sum(_packed_statistics(stats) * eta.T))


def _global_kl(state: GlobalState, prior: ComponentPrior) -> float:
    return (
        kl_components(state.components, prior)
        + _kl_sticks(state.stick_a, state.stick_b, state.concentration)
        + state.concentration.kl()
    )


def elbo_fixed_responsibilities(
    stats: SufficientStatistics, entropy: float, state: GlobalState, prior: ComponentPrior
) -> float:
    """Return the ELBO at the responsibilities summarised by ``stats`` and ``entropy``."""
    return data_term(stats, state) + entropy - _global_kl(state, prior)


def elbo_from_normalizer(log_normalizer: float, state: GlobalState, prior: ComponentPrior) -> float:
    """Return the ELBO right after an E-step: ``sum_i log sum_k exp(s_ik)`` minus the KLs."""
    return log_normalizer - _global_kl(state, prior)


def _permute_stats(stats: SufficientStatistics, order: np.ndarray) -> SufficientStatistics:
    return SufficientStatistics(
        stats.covariance_type,
        stats.nk[order],
        stats.sum_x[order],
        stats.sum_xx[order],
        stats.log_normalizer,
        stats.n_samples,
    )


def _globals_in_order(
    stats: SufficientStatistics, prior: ComponentPrior, conc: Concentration, n_rounds: int
) -> GlobalState:
    components = update_components(stats, prior)
    stick_a, stick_b = _update_sticks(stats.nk, conc.mean)
    for _ in range(n_rounds):
        conc = _update_concentration(conc, stick_a, stick_b)
        stick_a, stick_b = _update_sticks(stats.nk, conc.mean)
    return GlobalState(components, stick_a, stick_b, conc)


def fit_globals(
    stats: SufficientStatistics,
    entropy: float,
    prior: ComponentPrior,
    conc: Concentration,
    *,
    n_rounds: int = 3,
    keep_order: bool = True,
    need_elbo: bool = True,
) -> tuple[GlobalState, np.ndarray, float]:
    """Update every global factor given the responsibilities (the M-step), in the best order.

    ``q(mu, Lambda)`` is optimal given the statistics; ``q(v)`` and ``q(alpha)`` are
    updated in turn ``n_rounds`` times (each update is a coordinate ascent step).
    The stick-breaking prior is not exchangeable, so the labelling matters:
    the components are also tried sorted by decreasing ``N_k`` (Kurihara, Welling
    and Vlassis 2007) and that order is kept only if it raises the ELBO. With
    ``keep_order=False`` only the sorted order is evaluated; with
    ``need_elbo=False`` the ELBO is not computed when the order is already
    sorted (it is then returned as NaN).

    Returns
    -------
    state : GlobalState
    order : ndarray
        New component j is old component ``order[j]``.
    elbo : float
        The ELBO at the (relabelled) responsibilities and ``state``.
    """
    identity = np.arange(stats.nk.shape[0])
    order = np.argsort(-stats.nk, kind="stable")
    if keep_order or np.array_equal(order, identity):
        best = _globals_in_order(stats, prior, conc, n_rounds)
        if not need_elbo and np.array_equal(order, identity):
            return best, identity, float("nan")
        best_elbo = elbo_fixed_responsibilities(stats, entropy, best, prior)
        if np.array_equal(order, identity):
            return best, identity, best_elbo
    else:
        best, best_elbo = None, -np.inf
    sorted_stats = _permute_stats(stats, order)
    candidate = _globals_in_order(sorted_stats, prior, conc, n_rounds)
    candidate_elbo = elbo_fixed_responsibilities(sorted_stats, entropy, candidate, prior)
    if best is None or candidate_elbo > best_elbo:
        return candidate, order, candidate_elbo
    return best, identity, best_elbo


def merge_statistics(stats: SufficientStatistics, j: int, k: int) -> SufficientStatistics:
    """Statistics after merging component ``k`` into ``j`` (``r_j <- r_j + r_k``, ``r_k <- 0``)."""
    nk, sum_x, sum_xx = stats.nk.copy(), stats.sum_x.copy(), stats.sum_xx.copy()
    nk[j] += nk[k]
    sum_x[j] += sum_x[k]
    sum_xx[j] += sum_xx[k]
    nk[k] = 0.0
    sum_x[k] = 0.0
    sum_xx[k] = 0.0
    return SufficientStatistics(
        stats.covariance_type, nk, sum_x, sum_xx, stats.log_normalizer, stats.n_samples
    )


def merge_entropy_change(
    resp: np.ndarray, pairs: list[tuple[int, int]], rlogr: np.ndarray
) -> np.ndarray:
    """Change of ``-sum_i sum_k r_ik log r_ik`` when each pair's columns are summed.

    ``rlogr`` holds ``sum_i r_ik log r_ik`` per column (precomputed once).
    """
    out = np.empty(len(pairs))
    for p, (j, k) in enumerate(pairs):
        merged = resp[:, j] + resp[:, k]
        out[p] = rlogr[j] + rlogr[k] - float(xlogy(merged, merged).sum())
    return out


# ------------------------------------------------------------- predictive density
def _student_t_params(post: ComponentPosterior) -> tuple[np.ndarray, np.ndarray]:
    """Degrees of freedom (K,) and scale (covariance-type layout) of the predictive t.

    Full/tied: dof ``nu + 1 - d`` and scale matrix ``(1 + beta) / (beta dof) W^{-1}``
    (Bishop 2006, eq. 10.81); diag/spherical: dof ``2a`` and scale
    ``b (1 + beta) / (a beta)`` per feature.
    """
    kind = post.covariance_type
    d = post.mean.shape[1]
    if kind in _WISHART_TYPES:
        dof = np.broadcast_to(post.dof + 1.0 - d, post.beta.shape).astype(float)
        factor = (1.0 + post.beta) / (post.beta * dof)
        scale_matrices = post.scale if kind == "full" else post.scale[None]
        return dof, factor[:, None, None] * scale_matrices
    dof = 2.0 * post.dof
    factor = (1.0 + post.beta) / (post.beta * post.dof)
    if kind == "diag":
        return dof, factor[:, None] * post.scale
    return dof, factor * post.scale


def predictive_log_density(X: np.ndarray, post: ComponentPosterior) -> np.ndarray:
    """``log E_q[N(x_i | mu_k, Lambda_k^{-1})]``: multivariate Student-t log densities (n, K).

    Full and tied components give a d-variate t; diag components a product of
    univariate t's (one precision per feature); spherical a d-variate t with
    isotropic scale.
    """
    kind = post.covariance_type
    n, d = X.shape
    dof, scale = _student_t_params(post)
    k = post.beta.shape[0]
    out = np.empty((n, k))
    if kind in _WISHART_TYPES:
        chol, logdet = _logdet_chol(scale)
        for j in range(k):
            diff = X - post.mean[j]
            z = np.linalg.solve(chol[j], diff.T) if d > 1 else diff.T / chol[j]
            maha = np.einsum("ij,ij->j", z, z)
            out[:, j] = (
                gammaln((dof[j] + d) / 2.0)
                - gammaln(dof[j] / 2.0)
                - 0.5 * d * np.log(dof[j] * np.pi)
                - 0.5 * logdet[j]
                - 0.5 * (dof[j] + d) * np.log1p(maha / dof[j])
            )
        return out
    if kind == "diag":
        for j in range(k):
            sq = (X - post.mean[j]) ** 2 / scale[j]
            out[:, j] = np.sum(
                gammaln((dof[j] + 1.0) / 2.0)
                - gammaln(dof[j] / 2.0)
                - 0.5 * np.log(dof[j] * np.pi * scale[j])
                - 0.5 * (dof[j] + 1.0) * np.log1p(sq / dof[j]),
                axis=1,
            )
        return out
    sq = (
        np.einsum("ij,ij->i", X, X)[:, None]
        - 2.0 * X @ post.mean.T
        + np.einsum("kj,kj->k", post.mean, post.mean)
    )
    np.maximum(sq, 0.0, out=sq)
    sq /= scale
    out[:] = (
        gammaln((dof + d) / 2.0)
        - gammaln(dof / 2.0)
        - 0.5 * d * np.log(dof * np.pi * scale)
        - 0.5 * (dof + d) * np.log1p(sq / dof)
    )
    return out


def predictive_log_density_observed(X: np.ndarray, post: ComponentPosterior) -> np.ndarray:
    """``log E_q[N(x_io | mu_ko, Sigma_koo)]``: the predictive t on each row's observed coordinates.

    The marginal of a multivariate t over some coordinates is the t with the
    same degrees of freedom, the sub-vector of the location and the sub-block
    of the scale matrix; for diag components the predictive is a product of
    univariate t's, so the marginal keeps the observed factors. Rows are
    grouped by missingness pattern; shape (n, K).
    """
    kind = post.covariance_type
    n = X.shape[0]
    dof, scale = _student_t_params(post)
    k = post.beta.shape[0]
    out = np.empty((n, k))
    patterns = missingness_patterns(X)
    for observed, index in zip(patterns.observed, patterns.rows, strict=True):
        obs = np.flatnonzero(observed)
        d_o = obs.size
        diff = X[index][None, :, obs] - post.mean[:, None, obs]  # (K, n_p, d_o)
        if kind == "diag":
            sq = diff**2 / scale[:, None, obs]
            dof_k = dof[:, None, None]
            terms = (
                gammaln((dof_k + 1.0) / 2.0)
                - gammaln(dof_k / 2.0)
                - 0.5 * np.log(dof_k * np.pi * scale[:, None, obs])
                - 0.5 * (dof_k + 1.0) * np.log1p(sq / dof_k)
            )
            out[index] = terms.sum(axis=2).T
            continue
        if kind == "spherical":
            maha = (diff**2).sum(axis=2) / scale[:, None]
            logdet = d_o * np.log(scale)
        else:
            chol, logdet = _logdet_chol(scale[:, obs[:, None], obs])
            z = np.linalg.solve(chol, np.swapaxes(diff, 1, 2))
            maha = np.square(z).sum(axis=1)
        out[index] = (
            gammaln((dof + d_o) / 2.0)[:, None]
            - gammaln(dof / 2.0)[:, None]
            - 0.5 * d_o * np.log(dof * np.pi)[:, None]
            - 0.5 * logdet[:, None]
            - 0.5 * (dof + d_o)[:, None] * np.log1p(maha / dof[:, None])
        ).T
    return out


def predictive_sample(
    post: ComponentPosterior, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw from the predictive t of component ``labels[i]`` for every i."""
    kind = post.covariance_type
    d = post.mean.shape[1]
    n = labels.shape[0]
    dof, scale = _student_t_params(post)
    z = rng.standard_normal((n, d))
    if kind in _WISHART_TYPES:
        # one scale matrix per component for tied too: it depends on beta_k
        chol = np.linalg.cholesky(scale)[labels]
        z = np.einsum("nij,nj->ni", chol, z)
        g = rng.chisquare(dof[labels])[:, None]
    elif kind == "diag":
        z = z * np.sqrt(scale[labels])
        g = rng.chisquare(np.repeat(dof[labels][:, None], d, axis=1))
    else:
        z = z * np.sqrt(scale[labels])[:, None]
        g = rng.chisquare(dof[labels])[:, None]
    return post.mean[labels] + z * np.sqrt(dof[labels][:, None] / g)


# -------------------------------------------------------------------- draws from q
def draw_sticks(
    stick_a: np.ndarray,
    stick_b: np.ndarray,
    conc: Concentration,
    n_draws: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``(alpha, v)`` from q and return log weights, alpha, log q and log prior.

    ``1 - v`` is drawn directly (``1 - v ~ Beta(b, a)``) so that ``log(1 - v)`` stays
    finite when ``v`` rounds to one.

    Returns
    -------
    log_weights : (S, T)
    alpha : (S,)
    log_q : (S,)
        ``log q(v) + log q(alpha)``.
    log_prior : (S,)
        ``log p(v | alpha) + log p(alpha)``.
    """
    t_minus_1 = stick_a.size
    u = rng.beta(
        np.broadcast_to(stick_b, (n_draws, t_minus_1)),
        np.broadcast_to(stick_a, (n_draws, t_minus_1)),
    )
    u = np.maximum(u, np.finfo(float).tiny)
    log_1mv = np.log(u)
    log_v = np.log1p(-u)
    log_v = np.where(np.isfinite(log_v), log_v, np.log(np.finfo(float).tiny))
    log_weights = np.concatenate([log_v, np.zeros((n_draws, 1))], axis=1)
    log_weights[:, 1:] += np.cumsum(log_1mv, axis=1)
    log_q = np.sum(
        (stick_a - 1.0) * log_v + (stick_b - 1.0) * log_1mv - betaln(stick_a, stick_b), axis=1
    )
    if conc.fixed is None:
        alpha = rng.gamma(conc.shape, 1.0 / conc.rate, size=n_draws)
        log_q = log_q + _log_gamma_pdf(alpha, conc.shape, conc.rate)
        log_prior = _log_gamma_pdf(alpha, conc.prior_shape, conc.prior_rate)
    else:
        alpha = np.full(n_draws, conc.fixed)
        log_prior = np.zeros(n_draws)
    log_prior = log_prior + np.sum(
        np.log(alpha)[:, None] + (alpha[:, None] - 1.0) * log_1mv, axis=1
    )
    return log_weights, alpha, log_q, log_prior


def _log_gamma_pdf(
    x: np.ndarray, shape: np.ndarray | float, rate: np.ndarray | float
) -> np.ndarray:
    return shape * np.log(rate) - gammaln(shape) + (shape - 1.0) * np.log(x) - rate * x


def _log_wishart_pdf(
    logdet_lam: np.ndarray,
    trace: np.ndarray,
    dof: np.ndarray | float,
    logdet_scale_inv: np.ndarray,
    d: int,
) -> np.ndarray:
    """Return log Wishart(Lambda | W, nu) from log|Lambda|, tr(W^-1 Lambda) and log|W^-1|."""
    return (
        0.5 * (dof - d - 1.0) * logdet_lam
        - 0.5 * trace
        - 0.5 * dof * d * np.log(2.0)
        + 0.5 * dof * logdet_scale_inv
        - _multigammaln(dof / 2.0, d)
    )


def _draw_wishart(
    scale_inv: np.ndarray, dof: np.ndarray, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Cholesky factors ``P`` (lower) of Wishart draws ``Lambda = P P'`` by Bartlett's method.

    ``scale_inv`` (K, d, d), ``dof`` (K,); returns (S, K, d, d).
    """
    k, d, _ = scale_inv.shape
    chol_w = np.linalg.cholesky(np.linalg.inv(scale_inv))
    a = np.zeros((n_draws, k, d, d))
    rows, cols = np.tril_indices(d, -1)
    a[:, :, rows, cols] = rng.standard_normal((n_draws, k, rows.size))
    df = dof[None, :, None] - np.arange(d)[None, None, :]
    diag = np.sqrt(rng.chisquare(np.broadcast_to(df, (n_draws, k, d))))
    a[:, :, np.arange(d), np.arange(d)] = diag
    return np.einsum("kij,skjl->skil", chol_w, a)


def draw_components(
    post: ComponentPosterior, prior: ComponentPrior, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``(mu_k, Lambda_k)`` for every component from q.

    Returns
    -------
    means : (S, K, d)
    precisions_cholesky : ndarray
        In the covariance type's layout with a leading draw axis
        ((S, K, d, d) full, (S, d, d) tied, (S, K, d) diag, (S, K) spherical);
        ``Lambda = P P'``.
    log_q : (S,)
    log_prior : (S,)
    """
    kind = post.covariance_type
    k, d = post.mean.shape
    z = rng.standard_normal((n_draws, k, d))
    if kind in _WISHART_TYPES:
        scale = post.scale if kind == "full" else post.scale[None]
        dof = post.dof if kind == "full" else np.atleast_1d(post.dof)
        chol = _draw_wishart(scale, dof, n_draws, rng)  # (S, K or 1, d, d)
        logdet_lam = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
        chol_k = np.broadcast_to(chol, (n_draws, k, d, d))
        # mu = m + P^{-T} z / sqrt(beta): covariance (beta P P')^{-1}
        offset = np.linalg.solve(np.swapaxes(chol_k, -1, -2), z[..., None])[..., 0]
        means = post.mean + offset / np.sqrt(post.beta)[None, :, None]
        _, logdet_scale = _logdet_chol(scale)
        _, logdet_scale0 = _logdet_chol(prior.scale)
        trace_q = np.einsum("kij,skjl,skil->sk", scale, chol, chol)
        trace_p = np.einsum("ij,skjl,skil->sk", prior.scale, chol, chol)
        log_q = _log_wishart_pdf(logdet_lam, trace_q, dof, logdet_scale, d).sum(axis=1)
        log_p = _log_wishart_pdf(logdet_lam, trace_p, prior.dof, logdet_scale0, d).sum(axis=1)
        logdet_k = np.broadcast_to(logdet_lam, (n_draws, k))
        diff0 = np.einsum("skji,skj->ski", chol_k, means - prior.mean)
        log_q = log_q + np.sum(
            -0.5 * d * _LOG_2PI
            + 0.5 * d * np.log(post.beta)
            + 0.5 * logdet_k
            - 0.5 * np.sum(z**2, axis=2),
            axis=1,
        )
        log_p = log_p + np.sum(
            -0.5 * d * _LOG_2PI
            + 0.5 * d * np.log(prior.mean_precision)
            + 0.5 * logdet_k
            - 0.5 * prior.mean_precision * np.sum(diff0**2, axis=2),
            axis=1,
        )
        prec_chol = chol if kind == "full" else chol[:, 0]
        return means, prec_chol, log_q, log_p
    if kind == "diag":
        shape = np.broadcast_to(post.dof[:, None], (n_draws, k, d))
        lam = rng.gamma(shape, 1.0 / post.scale)
        lam = np.maximum(lam, np.finfo(float).tiny)
        log_q = _log_gamma_pdf(lam, post.dof[:, None], post.scale).sum(axis=(1, 2))
        log_p = _log_gamma_pdf(lam, prior.dof, prior.scale).sum(axis=(1, 2))
        prec = post.beta[None, :, None] * lam
        means = post.mean + z / np.sqrt(prec)
        log_q = log_q + np.sum(-0.5 * _LOG_2PI + 0.5 * np.log(prec) - 0.5 * z**2, axis=(1, 2))
        prec0 = prior.mean_precision * lam
        log_p = log_p + np.sum(
            -0.5 * _LOG_2PI + 0.5 * np.log(prec0) - 0.5 * prec0 * (means - prior.mean) ** 2,
            axis=(1, 2),
        )
        return means, np.sqrt(lam), log_q, log_p
    lam = rng.gamma(np.broadcast_to(post.dof, (n_draws, k)), 1.0 / post.scale)
    lam = np.maximum(lam, np.finfo(float).tiny)
    log_q = _log_gamma_pdf(lam, post.dof, post.scale).sum(axis=1)
    log_p = _log_gamma_pdf(lam, prior.dof, prior.scale).sum(axis=1)
    prec = post.beta[None, :] * lam
    means = post.mean + z / np.sqrt(prec)[..., None]
    log_q = log_q + np.sum(
        -0.5 * d * _LOG_2PI + 0.5 * d * np.log(prec) - 0.5 * np.sum(z**2, axis=2), axis=1
    )
    prec0 = prior.mean_precision * lam
    log_p = log_p + np.sum(
        -0.5 * d * _LOG_2PI
        + 0.5 * d * np.log(prec0)
        - 0.5 * prec0 * np.sum((means - prior.mean) ** 2, axis=2),
        axis=1,
    )
    return means, np.sqrt(lam), log_q, log_p


@dataclass(frozen=True)
class ParameterDraws:
    """Draws of every parameter of the model, in the centred frame, with their log densities.

    ``log_weights`` (S, T); ``alpha`` (S,); ``means`` (S, T, d); ``prec_chol`` the
    Cholesky factors ``P`` of the precisions (``Lambda = P P'``) in the covariance
    type's layout with a leading draw axis; ``log_q`` the log density of each draw
    under the approximation and ``log_prior`` its log prior density, both in the
    same parametrisation, so that ``log_prior + log-likelihood - log_q`` are the
    importance ratios of the approximation.
    """

    covariance_type: str
    log_weights: np.ndarray
    alpha: np.ndarray
    means: np.ndarray
    prec_chol: np.ndarray
    log_q: np.ndarray
    log_prior: np.ndarray

    @staticmethod
    def array_names() -> tuple[str, ...]:
        """Name the fields that hold one row per draw."""
        return ("log_weights", "alpha", "means", "prec_chol", "log_q", "log_prior")

    @property
    def size(self) -> int:
        """Number of draws S."""
        return int(self.alpha.shape[0])

    def take(self, which: np.ndarray) -> ParameterDraws:
        """Return the draws ``which`` (indices, repeats allowed)."""
        return replace(self, **{name: getattr(self, name)[which] for name in self.array_names()})

    def log_joint(self, features: np.ndarray, s: int) -> np.ndarray:
        """``log pi_k + log N(x_i | mu_k, Sigma_k)`` of draw ``s``, shape (n, T).

        ``features`` is :func:`bayesgmm._gaussian.feature_map` of the centred rows.
        """
        eta, const = natural_parameters(self.means[s], self.prec_chol[s], self.covariance_type)
        result: np.ndarray = features @ eta + (const + self.log_weights[s])
        return result

    def covariances(self) -> np.ndarray:
        """``(P P')^{-1}`` of every draw, in the covariance type's layout."""
        if self.covariance_type in _WISHART_TYPES:
            inv = np.linalg.inv(self.prec_chol)  # P^{-1}; Sigma = P^{-T} P^{-1}
            result: np.ndarray = np.swapaxes(inv, -1, -2) @ inv
            return result
        return 1.0 / self.prec_chol**2

    def full_covariances(self) -> np.ndarray:
        """``(P P')^{-1}`` of every draw and component as full matrices, (S, T, d, d)."""
        kind = self.covariance_type
        n_draws, t, d = self.means.shape
        cov = self.covariances()
        if kind in _WISHART_TYPES:
            if kind == "tied":
                cov = np.broadcast_to(cov[:, None], (n_draws, t, d, d))
            return np.ascontiguousarray(cov)
        if kind == "spherical":
            cov = np.broadcast_to(cov[..., None], (n_draws, t, d))
        return cov[..., None] * np.eye(d)


def draw_parameters(
    state: GlobalState, prior: ComponentPrior, n_draws: int, rng: np.random.Generator
) -> ParameterDraws:
    """Draw every parameter from q (:func:`draw_sticks`, then :func:`draw_components`)."""
    log_w, alpha, log_q_v, log_p_v = draw_sticks(
        state.stick_a, state.stick_b, state.concentration, n_draws, rng
    )
    means, chol, log_q_c, log_p_c = draw_components(state.components, prior, n_draws, rng)
    return ParameterDraws(
        state.components.covariance_type,
        log_w,
        alpha,
        means,
        chol,
        log_q_v + log_q_c,
        log_p_v + log_p_c,
    )
