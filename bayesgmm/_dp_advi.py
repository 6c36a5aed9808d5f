"""The truncated stick-breaking Gaussian mixture as a PyMC model, fitted by mean-field ADVI.

:func:`build_model` writes the model of :mod:`bayesgmm._cavi` in PyMC, on the
centred data, and returns it unfitted so that its coords, dims and log density
can be inspected; :func:`fit` fits a mean-field Gaussian to it in PyMC's
unconstrained space with ``pm.fit`` and stores draws of that approximation.

The model::

    alpha ~ Gamma(s1, s2)  (or fixed)
    v_k ~ Beta(1, alpha),  k < T,   pi_k = v_k prod_{j<k} (1 - v_j),   pi_T = prod_{j<T} (1 - v_j)
    full / tied:  Lambda_k = P_k P_k',  P_k = chol(W0) A_k   (Bartlett's decomposition:
                  A_ii^2 ~ chi^2(nu0 - i), A_ij ~ N(0, 1) below the diagonal)
                  mu_k | Lambda_k ~ N(m0, (beta0 Lambda_k)^{-1})
    diag / spherical:  lambda_kj ~ Gamma(a0, b0),  mu_kj | lambda ~ N(m0_j, 1 / (beta0 lambda_kj))
    log p(x_i | theta) = log sum_k pi_k N(x_i | mu_k, Lambda_k^{-1})

Bartlett's decomposition gives every variable a standard PyMC transform; the
Normal prior of the means of full/tied components, whose precision is the
matrix ``beta0 P P'``, is a ``Potential`` on ``Flat`` means. The likelihood is
marginal over the labels, so its pointwise terms (the ``log_likelihood``
deterministic) are what leave-one-out needs. Identifiability: the
stick-breaking prior is not exchangeable, and the mean-field approximation
settles on one labelling; :func:`fit` then orders the components by
decreasing mean weight.

References
----------
Kucukelbir, A., Tran, D., Ranganath, R., Gelman, A. and Blei, D. M. (2017).
Automatic differentiation variational inference. JMLR 18(14), 1-45. arXiv:1603.00788
Bartlett, M. S. (1933). On the theory of statistical regression. Proceedings of
the Royal Society of Edinburgh 53, 260-283. doi:10.1017/S0370164600015455
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.special import logsumexp

from bayesgmm import _cavi
from bayesgmm._gaussian import LAYOUTS, feature_map
from bayesgmm._missing import missingness_patterns, observed_log_density

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["ADVIFit", "ADVIPosterior", "build_model", "fit"]

# Draws of the fitted approximation stored at fit time.
POOL_SIZE = 1000


@dataclass(frozen=True)
class ADVIPosterior:
    """The mean-field Gaussian fitted by ADVI, held as the draws stored at fit time.

    Summaries and the predictive density are Monte Carlo averages over the
    stored draws; ``draws`` resamples them (with replacement when asked for more).
    """

    prior: _cavi.ComponentPrior
    pool: _cavi.ParameterDraws
    method: ClassVar[str] = "advi"

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Monte Carlo posterior means of the weights, means, covariances (layout) and alpha."""
        pool = self.pool
        return (
            np.exp(pool.log_weights).mean(axis=0),
            pool.means.mean(axis=0),
            pool.covariances().mean(axis=0),
            float(pool.alpha.mean()),
        )

    def weighted_log_predictive(self, X: np.ndarray) -> np.ndarray:
        """``log mean_s pi_k^(s) N(x_i | mu_k^(s), Sigma_k^(s))``, shape (n, T)."""
        pool = self.pool
        features = feature_map(X, pool.covariance_type)
        total = np.full((X.shape[0], pool.log_weights.shape[1]), -np.inf)
        for s in range(pool.size):
            total = np.logaddexp(total, pool.log_joint(features, s))
        return total - np.log(pool.size)

    def weighted_log_predictive_observed(self, X: np.ndarray) -> np.ndarray:
        """Return the same Monte Carlo mean on each row's observed coordinates, shape (n, T)."""
        pool = self.pool
        patterns = missingness_patterns(X)
        covariances = pool.full_covariances()
        total = np.full((X.shape[0], pool.log_weights.shape[1]), -np.inf)
        for s in range(pool.size):
            joint = observed_log_density(X, pool.means[s], covariances[s], patterns=patterns)
            total = np.logaddexp(total, joint + pool.log_weights[s])
        return total - np.log(pool.size)

    def draws(self, n_draws: int, rng: np.random.Generator) -> _cavi.ParameterDraws:
        """``n_draws`` of the stored draws, drawn at random (with replacement if needed)."""
        size = self.pool.size
        return self.pool.take(rng.choice(size, size=n_draws, replace=n_draws > size))

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Pick a stored draw of the parameters, a label from its weights, then a Gaussian point."""
        pool = self.pool
        which = rng.integers(pool.size, size=n_samples)
        weights = np.exp(pool.log_weights[which])
        u = rng.uniform(size=(n_samples, 1)) * weights.sum(axis=1, keepdims=True)
        labels = np.minimum((np.cumsum(weights, axis=1) < u).sum(axis=1), weights.shape[1] - 1)
        chol = np.linalg.cholesky(pool.full_covariances()[which, labels])
        z = rng.standard_normal((n_samples, pool.means.shape[2]))
        X = pool.means[which, labels] + np.einsum("nij,nj->ni", chol, z)
        order = np.argsort(labels, kind="stable")
        return X[order], labels[order]

    def to_dict(self) -> dict[str, Any]:
        """Return the stored draws as lists."""
        pool = self.pool
        return {"draw_pool": {name: getattr(pool, name).tolist() for name in pool.array_names()}}

    @classmethod
    def from_dict(cls, state: dict[str, Any], prior: _cavi.ComponentPrior) -> ADVIPosterior:
        """Rebuild from :meth:`to_dict`'s entries of a saved model."""
        arrays = state["draw_pool"]
        names = _cavi.ParameterDraws.array_names()
        pool = _cavi.ParameterDraws(
            prior.covariance_type, *(np.asarray(arrays[name], float) for name in names)
        )
        return cls(prior, pool)


@dataclass(frozen=True)
class ADVIFit:
    """What :func:`fit` returns.

    The posterior's draws are ``POOL_SIZE`` draws of the approximation
    (centred frame), components ordered by decreasing mean weight, ``log_q``
    the mean-field Gaussian's log density at the unconstrained draw and
    ``log_prior`` the model's log prior density in the same space (Jacobians of
    PyMC's transforms included). ``trace`` is ``-loss`` of every optimisation
    step, a noisy Monte Carlo estimate of the ELBO; ``elbo`` its mean over the
    last tenth, and ``converged`` whether that mean moved by less than 0.1%
    from the tenth before. ``expected_counts`` sums the Monte Carlo predictive
    membership of the training rows.
    """

    posterior: ADVIPosterior
    elbo: float
    trace: np.ndarray
    converged: bool
    expected_counts: np.ndarray

    @property
    def n_iter(self) -> int:
        """Optimisation steps taken."""
        return int(self.trace.size)

    @property
    def n_merges(self) -> int:
        """Merge moves accepted: ADVI makes none."""
        return 0


def build_model(
    X: np.ndarray,
    prior: _cavi.ComponentPrior,
    concentration: _cavi.Concentration,
    truncation: int,
    *,
    feature_names: Sequence[Any] | None = None,
) -> pm.Model:
    """Build the stick-breaking mixture on the centred rows ``X`` (see the module docstring).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Rows centred on the frame of ``prior``.
    prior : ComponentPrior
        The conjugate component prior (Wishart or Gamma precisions).
    concentration : Concentration
        A fixed alpha, or the shape and rate of its Gamma prior.
    truncation : int
        Number of components T.
    feature_names : sequence, optional
        Labels of the ``feature`` coordinate (default ``0 .. d - 1``).

    Returns
    -------
    pymc.Model
        Coords ``component`` (T), ``stick`` (T - 1), ``feature`` and
        ``feature_bis`` (d), ``obs_id`` (n), and ``feature_pair`` (the
        ``np.tril_indices(d, -1)`` pairs) for full/tied. Random variables:
        ``concentration`` (when not fixed), ``v`` (``stick``), ``means``
        (``component``, ``feature``) and ``bartlett_diagonal`` /
        ``bartlett_lower`` (full: leading ``component``; tied: one matrix) or
        ``precision`` (diag: ``component``, ``feature``; spherical:
        ``component``). Deterministics: ``log_weights`` (``component``),
        ``precision_cholesky`` (the precisions' Cholesky factors in the
        covariance type's layout) and ``log_likelihood`` (``obs_id``); potentials
        ``means_prior`` (full/tied) and ``loglik`` (the summed log-likelihood).
    """
    import pymc as pm
    import pytensor.tensor as pt

    n, d = X.shape
    t = truncation
    kind = prior.covariance_type
    features = list(range(d)) if feature_names is None else list(feature_names)
    wishart = kind in ("full", "tied")
    rows, cols = np.tril_indices(d, -1)
    coords: dict[str, Any] = {
        "component": np.arange(t),
        "stick": np.arange(max(t - 1, 0)),
        "feature": features,
        "feature_bis": features,
        "obs_id": np.arange(n),
    }
    if wishart and rows.size:
        coords["feature_pair"] = np.arange(rows.size)
    beta0 = prior.mean_precision
    with pm.Model(coords=coords) as model:
        if concentration.fixed is None:
            alpha: Any = pm.Gamma(
                "concentration", alpha=concentration.prior_shape, beta=concentration.prior_rate
            )
        else:
            alpha = pt.as_tensor(concentration.fixed)
        if t > 1:
            v = pm.Beta("v", 1.0, alpha, dims="stick")
            log_v = pt.concatenate([pt.log(v), pt.zeros(1)])
            log_rest = pt.concatenate([pt.zeros(1), pt.cumsum(pt.log1p(-v))])
            log_w = log_v + log_rest
        else:
            log_w = pt.zeros(1)
        if wishart:
            # one Bartlett factor per component (full) or one for all (tied); static
            # shapes next to the dims keep the graph pm.fit compiles free of symbolic sizes
            mats: tuple[str, ...] = ("component",) if kind == "full" else ()
            n_mats = t if kind == "full" else 1
            mat_shape = (t,) if kind == "full" else ()
            chol_w0 = np.linalg.cholesky(np.linalg.inv(prior.scale))
            sq = pm.ChiSquared(
                "bartlett_diagonal",
                nu=prior.dof - np.arange(d),
                shape=mat_shape + (d,),
                dims=(*mats, "feature"),
            )
            a = pt.zeros((n_mats, d, d))
            sq_mats = sq if kind == "full" else sq.reshape((1, d))
            a = pt.set_subtensor(a[:, np.arange(d), np.arange(d)], pt.sqrt(sq_mats))
            if rows.size:
                off = pm.Normal(
                    "bartlett_lower",
                    0.0,
                    1.0,
                    shape=mat_shape + (rows.size,),
                    dims=(*mats, "feature_pair"),
                )
                off_mats = off if kind == "full" else off.reshape((1, rows.size))
                a = pt.set_subtensor(a[:, rows, cols], off_mats)
            chol = (chol_w0[None, :, :, None] * a[:, None, :, :]).sum(axis=2)  # P = L0 A
            chol_k = pt.broadcast_to(chol, (t, d, d))
            means = pm.Flat("means", dims=("component", "feature"))
            logdet_half = pt.log(pt.diagonal(chol_k, axis1=1, axis2=2)).sum(axis=1)
            proj0 = (chol_k * (means - prior.mean)[:, :, None]).sum(axis=1)
            pm.Potential(
                "means_prior",
                pt.sum(
                    -0.5 * d * np.log(2 * np.pi)
                    + 0.5 * d * np.log(beta0)
                    + logdet_half
                    - 0.5 * beta0 * pt.sum(proj0**2, axis=1)
                ),
            )
            diff = X[:, None, :] - means[None, :, :]
            proj = (chol_k[None] * diff[:, :, :, None]).sum(axis=2)
            log_dens = (
                -0.5 * d * np.log(2 * np.pi) + logdet_half[None] - 0.5 * pt.sum(proj**2, axis=2)
            )
            prec_out = chol[0] if kind == "tied" else chol_k
        else:
            per_feature = kind == "diag"
            rate = prior.scale if per_feature else float(prior.scale)
            lam = pm.Gamma(
                "precision",
                alpha=prior.dof,
                beta=rate,
                shape=(t, d) if per_feature else (t,),
                dims=("component", "feature") if per_feature else "component",
            )
            lam_f = lam if per_feature else lam[:, None] * pt.ones((1, d))
            means = pm.Normal(
                "means", prior.mean, 1.0 / pt.sqrt(beta0 * lam_f), dims=("component", "feature")
            )
            diff = X[:, None, :] - means[None, :, :]
            log_dens = pt.sum(
                -0.5 * np.log(2 * np.pi) + 0.5 * pt.log(lam_f)[None] - 0.5 * lam_f[None] * diff**2,
                axis=2,
            )
            prec_out = pt.sqrt(lam)
        loglik = pt.logsumexp(log_w[None, :] + log_dens, axis=1)
        pm.Potential("loglik", pt.sum(loglik))
        pm.Deterministic("log_weights", log_w, dims="component")
        pm.Deterministic("precision_cholesky", prec_out, dims=LAYOUTS[kind].parameter_dims)
        pm.Deterministic("log_likelihood", loglik, dims="obs_id")
    return model


def fit(
    X: np.ndarray,
    prior: _cavi.ComponentPrior,
    concentration: _cavi.Concentration,
    truncation: int,
    *,
    n_iterations: int,
    rng: np.random.Generator,
    progressbar: bool,
) -> ADVIFit:
    """Fit :func:`build_model` with mean-field ADVI and draw from the approximation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Centred rows.
    prior, concentration, truncation
        As for :func:`build_model`.
    n_iterations : int
        Optimisation steps of ``pm.fit``.
    rng : numpy.random.Generator
        Seeds the k-means start of the means, ``pm.fit`` and the stored draws.
    progressbar : bool
        ``pm.fit``'s progress bar.

    Returns
    -------
    ADVIFit
    """
    import pymc as pm

    from bayesgmm._kmeans import kmeans

    n, d = X.shape
    t = truncation
    kind = prior.covariance_type
    model = build_model(X, prior, concentration, t)
    # This draw is not used; it advances rng as the starting points' draws always have,
    # so that a seeded fit gives the same result.
    rng.choice(n, size=t, replace=n < t)
    centers = kmeans(X, min(t, n), rng, n_init=1, max_iter=20).centers
    if centers.shape[0] < t:
        centers = np.vstack([centers, np.repeat(centers[:1], t - centers.shape[0], axis=0)])
    seed = int(rng.integers(2**31 - 1))
    with model:
        approx = pm.fit(
            n=n_iterations,
            method="advi",
            random_seed=seed,
            progressbar=progressbar,
            start={"means": centers},
        )
    group = approx.groups[0]
    mu = np.asarray(group.mean.eval(), dtype=float)
    std = np.asarray(group.std.eval(), dtype=float)
    outputs = [model["log_weights"], model["means"], model["precision_cholesky"]]
    outs = model.replace_rvs_by_values([*outputs, model["loglik"]])
    fn = model.compile_fn(
        [*outs, model.logp(jacobian=True)], inputs=model.value_vars, point_fn=False
    )
    value_names = [v.name for v in model.value_vars]
    eps = rng.standard_normal((POOL_SIZE, mu.size))
    flat = mu + std * eps
    log_q = np.sum(-0.5 * np.log(2 * np.pi) - np.log(std) - 0.5 * eps**2, axis=1)
    collected: dict[str, list[np.ndarray]] = {k: [] for k in ("lw", "mu", "pc", "lp", "al")}
    for row in flat:
        point = {}
        for name, sl, shp, _ in group.ordering.values():
            point[name] = row[sl].reshape(shp)
        lw, mn, pc, ll, logp = fn(**{name: point[name] for name in value_names})
        collected["lw"].append(np.asarray(lw, float))
        collected["mu"].append(np.asarray(mn, float))
        collected["pc"].append(np.asarray(pc, float))
        collected["lp"].append(np.asarray(float(logp) - float(ll)))
        al = (
            float(np.exp(point["concentration_log__"]))
            if concentration.fixed is None
            else concentration.fixed
        )
        collected["al"].append(np.asarray(al))
    log_weights = np.stack(collected["lw"])
    prec_chol = np.stack(collected["pc"])
    order = np.argsort(-np.exp(log_weights).mean(axis=0), kind="stable")
    draws = _cavi.ParameterDraws(
        covariance_type=kind,
        log_weights=log_weights[:, order],
        alpha=np.stack(collected["al"]),
        means=np.stack(collected["mu"])[:, order],
        prec_chol=prec_chol if kind == "tied" else prec_chol[:, order],
        log_q=log_q,
        log_prior=np.stack(collected["lp"]),
    )
    posterior = ADVIPosterior(prior, draws)
    weighted = posterior.weighted_log_predictive(X)
    trace = -np.asarray(approx.hist, dtype=float)
    window = max(len(trace) // 10, 1)
    last, previous = trace[-window:].mean(), trace[-2 * window : -window].mean()
    return ADVIFit(
        posterior=posterior,
        elbo=float(last),
        trace=trace,
        converged=bool(abs(last - previous) <= 1e-3 * abs(last)),
        expected_counts=np.exp(weighted - logsumexp(weighted, axis=1, keepdims=True)).sum(axis=0),
    )
