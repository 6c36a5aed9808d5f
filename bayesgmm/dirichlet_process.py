"""Variational Dirichlet-process Gaussian mixture: :class:`DPGaussianMixture`.

The model is the truncated stick-breaking mixture of Blei and Jordan (2006),

    alpha ~ Gamma(1, 1)  (or a fixed number),
    v_k | alpha ~ Beta(1, alpha),  k < T,   v_T = 1,   pi_k = v_k prod_{j<k} (1 - v_j),
    Lambda_k ~ Wishart(W0, nu0),   mu_k | Lambda_k ~ N(m0, (beta0 Lambda_k)^{-1}),
    z_i ~ Categorical(pi),   x_i | z_i = k ~ N(mu_k, Lambda_k^{-1}),

(Normal-Gamma per feature for ``diag``, one Gamma precision per component for
``spherical``, one shared Wishart for ``tied``), fitted by closed-form
coordinate-ascent variational inference (CAVI) with the mean-field family
q(alpha) q(v) q(mu, Lambda) q(z). The E-step is the shared Gaussian kernel of
:mod:`bayesgmm._gaussian` with *expected* natural parameters; the updates of
the global factors are in :mod:`bayesgmm._cavi`.

Dirichlet-process posteriors over the number of clusters are not consistent:
even when the data come from a finite mixture, the posterior of the number of
clusters does not concentrate at the true number as n grows (Miller and
Harrison 2013). Read ``effective_n_components_`` and
:meth:`DPGaussianMixture.n_occupied_distribution` as a description of this fit,
and when the number itself is the question compare finite mixtures by
leave-one-out predictive accuracy (:func:`bayesgmm.compare`,
:func:`bayesgmm.select_n_components` with ``method="loo"``).

References
----------
Blei, D. M. and Jordan, M. I. (2006). Variational inference for Dirichlet process
mixtures. Bayesian Analysis 1(1), 121-143. doi:10.1214/06-BA104
Hughes, M. C. and Sudderth, E. B. (2013). Memoized online variational inference
for Dirichlet process mixture models. NeurIPS 26, 1133-1141.
https://papers.nips.cc/paper/2013/hash/39461a19e9eddfb385ea76b26521ea48-Abstract.html
Kurihara, K., Welling, M. and Vlassis, N. (2007). Accelerated variational Dirichlet
process mixtures. NeurIPS 19, 761-768.
Salakhutdinov, R. and Roweis, S. (2003). Adaptive overrelaxed bound optimization
methods. ICML 2003, 664-671.
Miller, J. W. and Harrison, M. T. (2013). A simple example of Dirichlet process
mixture inconsistency for the number of components. NeurIPS 26. arXiv:1301.2708
Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?:
Evaluating variational inference. ICML, PMLR 80, 5581-5590. arXiv:1802.02538
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from scipy.special import logsumexp, xlogy

from bayesgmm import _cavi
from bayesgmm._base import ParamsMixin
from bayesgmm._chunks import (
    check_dask_array,
    column_means,
    is_dask_array,
    map_reduce,
    map_rows,
    sample_rows,
)
from bayesgmm._gaussian import (
    COVARIANCE_TYPES,
    SufficientStatistics,
    e_step_statistics,
    feature_map,
    natural_parameters,
    statistics_from_responsibilities,
)
from bayesgmm._validation import (
    check_array,
    check_fitted,
    check_float,
    check_int,
    check_n_features,
    check_option,
    check_random_state,
    message,
)
from bayesgmm.params import GaussianMixtureParams

__all__ = ["DPGaussianMixture"]

_INIT_OPTIONS = ("kmeans", "random")
_METHODS = ("cavi", "advi")
# Points used by the k-means initialisation (it is only a starting point).
_INIT_SUBSAMPLE = 5000
# Draws used when membership_draws is called with max_draws=None.
_DEFAULT_MEMBERSHIP_DRAWS = 200
# Extrapolated (overrelaxed) updates of the statistics, accepted only when they raise the ELBO.
_OVERRELAX = True
# Largest per-observation result (n_draws x n_samples doubles plus the data) that the
# pointwise methods compute for a model fitted on a Dask array.
_POINTWISE_MAX_BYTES = 2**30


class DPGaussianMixture(ParamsMixin):
    """Dirichlet-process Gaussian mixture fitted by variational inference.

    Parameters
    ----------
    truncation : int, default 20
        Number of components T of the truncated stick-breaking approximation;
        an upper bound on the number of clusters the fit can use.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    concentration : None, float or (float, float), default None
        The DP concentration alpha. ``None`` puts a Gamma(1, 1) prior on it
        (shape, rate) and learns it; a number fixes it; a pair gives the shape
        and rate of its Gamma prior.
    priors : dict, optional
        Component priors, in the data's units; the defaults are the
        data-dependent priors of Fraley and Raftery (2007),
        doi:10.1007/s00357-007-0004-5. Keys (all optional): ``"mean"`` (m0,
        default the data mean), ``"mean_precision"`` (beta0, default 0.01: the
        prior of a component mean is 10 component spreads wide),
        ``"degrees_of_freedom"`` (nu0, default d + 2 for full/tied and 4 for
        diag/spherical, whose Gamma shape is nu0 / 2) and ``"covariance"`` (the
        prior mean of a component covariance; default the data covariance
        divided by ``truncation ** (2 / d)``, i.e. the data volume shared out
        among T components: the full matrix for full/tied, the feature
        variances for diag, their mean for spherical). The Wishart scale is
        then ``W0^{-1} = (nu0 - d - 1) covariance`` and the Gamma rate
        ``(nu0 / 2 - 1) covariance``, so ``E[Sigma_k] = covariance`` a priori.
    tol : float, default 1e-6
        Stop when the ELBO per data point rises by less than ``tol`` in an
        iteration that accepted no merge.
    max_iter : int, default 500
        Most CAVI iterations per restart.
    n_init : int, default 1
        Restarts from different initialisations; the fit with the highest ELBO is kept.
    init_params : {"kmeans", "random"}, default "kmeans"
        ``"kmeans"``: k-means++ seeded Lloyd iterations with T centres on a
        subsample of at most 5000 points, every point assigned to its nearest
        centre; ``"random"``: responsibilities drawn from a flat Dirichlet.
    merge : bool, default True
        Whether to try merge moves (see Notes).
    method : {"cavi", "advi"}, default "cavi"
        ``"advi"`` fits the same stick-breaking model written in PyMC with
        ``pm.fit`` (mean-field ADVI) and summarises draws from the fitted
        approximation in the same attributes.
    advi_iterations : int, default 20000
        Optimisation steps of ``pm.fit`` for ``method="advi"``.
    progressbar : bool, default True
        Progress bar of ``pm.fit`` (``method="advi"`` only).
    random_state : None, int or numpy.random.Generator
        Seed of the initialisation and of ADVI.

    Attributes
    ----------
    weights_ : ndarray of shape (T,)
        Posterior mean weights ``E_q[pi_k]``, components sorted by decreasing weight.
    means_ : ndarray of shape (T, n_features)
        Posterior means of the component means.
    covariances_ : ndarray
        Posterior means ``E_q[Sigma_k]`` in scikit-learn's layout.
    params_ : GaussianMixtureParams
        ``weights_``, ``means_`` and ``covariances_`` as a mixture (a point estimate).
    effective_n_components_ : int
        Components whose expected number of training points ``N_k = sum_i q(z_i = k)``
        is at least 1.
    expected_counts_ : ndarray of shape (T,)
        ``N_k`` at the end of the fit.
    elbo_ : float
        Evidence lower bound of the retained fit, constants included, so it can
        be compared across truncations, priors and covariance types.
    elbo_trace_ : ndarray
        ELBO after every E-step of the retained fit (never decreases). With
        ``method="advi"`` it is ``-loss`` of every optimisation step, a noisy
        Monte Carlo estimate, and ``elbo_`` is its mean over the last tenth.
    converged_ : bool
        With ``method="advi"``: whether the mean ELBO of the last tenth of the
        steps moved by less than 0.1% from the tenth before.
    n_iter_ : int
    n_merges_ : int
        Merge moves accepted in the retained fit.
    concentration_ : float
        Posterior mean of alpha.
    n_features_in_ : int
    n_samples_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Notes
    -----
    **Fitting.** Each iteration is an E-step (responsibilities and sufficient
    statistics in one pass over the data, ``E_q[log N(x | mu_k, Lambda_k)]``
    being affine in the feature map of :mod:`bayesgmm._gaussian`) followed by
    the closed-form updates of q(mu, Lambda), q(v) and q(alpha). The ELBO is
    evaluated exactly after every E-step, so ``elbo_trace_`` is monotone.

    **Avoiding duplicated components.** Started from T k-means centres, plain
    CAVI empties redundant components only very slowly (scikit-learn's
    ``BayesianGaussianMixture`` keeps six of them on four clusters after 1000
    iterations). Two moves of memoized VI (Hughes and Sudderth 2013) fix this
    without extra passes over the data: (1) after the updates, the components
    are relabelled by decreasing expected count when that raises the ELBO (the
    stick-breaking prior is not exchangeable; Kurihara et al. 2007); (2) pairs of
    components whose responsibility vectors overlap most (cosine similarity)
    are proposed for merging. The ELBO of a merge at the merged
    responsibilities is exact from the summed sufficient statistics plus the
    entropy change ``sum_i [f(r_ij + r_ik) - f(r_ij) - f(r_ik)]``,
    ``f(x) = x log x``; merges are accepted greedily while they raise it. The
    next E-step can only raise it further, so the trace stays monotone. An
    emptied component falls back to its prior and moves to the end.

    **Speed.** Where clusters overlap, CAVI converges linearly and slowly. Each
    iteration therefore also proposes the globals computed from statistics
    extrapolated along their last change, ``S + eta (S - S_prev)``
    (adaptive overrelaxation, Salakhutdinov and Roweis 2003); the proposal is
    kept only when the next E-step shows a higher ELBO (eta then doubles, up to
    64), otherwise the plain update is used and eta returns to 1. On the
    benchmark's overlapping 2-D data this halves the number of iterations.

    **Dask input.** ``fit`` accepts a :class:`dask.array.Array` chunked along
    rows. Every pass maps a function over the row blocks and adds the
    results on the workers (:func:`bayesgmm._chunks.map_reduce`): the E-step
    returns the sufficient statistics (and, when a merge is due, the T x T
    overlap ``R' R`` of the responsibilities); a merge attempt adds one pass
    that sums the entropy changes of the candidate pairs. The (n, T)
    responsibilities are never formed. The data covariance of the default
    prior takes one pass; the k-means start runs on a uniform sample of at
    most 5000 rows (:func:`bayesgmm._chunks.sample_rows`) and then gives every
    row to its nearest centre, as in memory. Up to 5000 rows both start from
    all rows and, with the same seed, the fit equals the in-memory one up to
    the order of floating-point sums (ELBO within about 1e-15 relative);
    above that the samples are ordered differently, so the starts differ.
    ``predict``, ``predict_proba`` and ``score_samples`` return lazy Dask arrays
    for Dask input. The model keeps a reference to the Dask array (no copy);
    ``to_datatree`` and ``n_occupied_distribution``, whose results have one
    entry per training row and draw, compute it when ``n_draws x n_samples``
    doubles fit in 1 GiB and raise a ValueError otherwise. ``save`` does not
    write the data of a Dask fit: a loaded model predicts as the saved one
    but has no ``to_datatree``, ``n_occupied_distribution`` (nor
    :func:`bayesgmm.compare`, which needs ``to_datatree``). ``method="advi"``
    needs in-memory data.

    **Posterior predictive.** ``score_samples`` is ``log sum_k E[pi_k] t_k(x)``
    with ``t_k`` the Student-t marginal of ``N(x | mu_k, Lambda_k)`` under q
    (Bishop 2006, eq. 10.81), i.e. the exact predictive density under the
    variational posterior; ``predict_proba`` is the membership probability
    under that predictive, ``E[pi_k] t_k(x) / sum_j E[pi_j] t_j(x)``.

    **ADVI.** ``method="advi"`` writes the same model in PyMC (the Wishart
    through Bartlett's decomposition, the likelihood marginal over labels) and
    fits a mean-field Gaussian in PyMC's unconstrained space with ``pm.fit``.
    1000 draws of that approximation, with their log p and log q in the
    unconstrained space, are stored at fit time; summaries, the predictive
    density (a Monte Carlo mean of Gaussian mixtures), ``membership_draws`` and
    ``to_datatree`` use them (``to_datatree`` resamples them when asked for more).

    **Number of clusters.** DP posteriors over the number of clusters are
    inconsistent (Miller and Harrison 2013): they keep putting mass on extra
    small clusters however much data there is. Use the LOO-based comparison
    of finite mixtures when that number is itself the question.

    References
    ----------
    Blei and Jordan (2006), doi:10.1214/06-BA104; Hughes and Sudderth (2013),
    NeurIPS 26; Miller and Harrison (2013), arXiv:1301.2708; Yao et al. (2018),
    arXiv:1802.02538 (Pareto k of the variational approximation).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import DPGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (200, 2)), rng.normal(4, 1, (200, 2))])
    >>> model = DPGaussianMixture(10, random_state=0).fit(X)
    >>> model.effective_n_components_
    2
    >>> bool(np.all(np.diff(model.elbo_trace_) >= -1e-9 * abs(model.elbo_)))
    True
    """

    def __init__(
        self,
        truncation: int = 20,
        *,
        covariance_type: str = "full",
        concentration: float | tuple[float, float] | None = None,
        priors: dict[str, Any] | None = None,
        tol: float = 1e-6,
        max_iter: int = 500,
        n_init: int = 1,
        init_params: str = "kmeans",
        merge: bool = True,
        method: str = "cavi",
        advi_iterations: int = 20000,
        progressbar: bool = True,
        random_state: Any = None,
    ) -> None:
        self.truncation = truncation
        self.covariance_type = covariance_type
        self.concentration = concentration
        self.priors = priors
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.merge = merge
        self.method = method
        self.advi_iterations = advi_iterations
        self.progressbar = progressbar
        self.random_state = random_state

    # ------------------------------------------------------------- validation
    def _validated(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "truncation": check_int(self.truncation, "truncation", minimum=1),
            "covariance_type": check_option(
                self.covariance_type, "covariance_type", COVARIANCE_TYPES
            ),
            "tol": check_float(self.tol, "tol", minimum=0.0),
            "max_iter": check_int(self.max_iter, "max_iter", minimum=1),
            "n_init": check_int(self.n_init, "n_init", minimum=1),
            "init_params": check_option(self.init_params, "init_params", _INIT_OPTIONS),
            "method": check_option(self.method, "method", _METHODS),
            "advi_iterations": check_int(self.advi_iterations, "advi_iterations", minimum=1),
        }
        if not isinstance(self.merge, (bool, np.bool_)):
            raise TypeError(message("merge", "True or False", self.merge))
        if not isinstance(self.progressbar, (bool, np.bool_)):
            raise TypeError(message("progressbar", "True or False", self.progressbar))
        out["merge"] = bool(self.merge)
        out["concentration"] = _check_concentration(self.concentration)
        if self.priors is not None and not isinstance(self.priors, dict):
            raise TypeError(message("priors", "None or a dict", self.priors))
        out["rng"] = check_random_state(self.random_state)
        return out

    # -------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> DPGaussianMixture:
        """Fit the variational posterior to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or dask.array.Array
            A Dask array is fitted block by block (see the class notes, "Dask
            input"); its chunk sizes must be known.
        y : ignored

        Returns
        -------
        self
        """
        options = self._validated()
        if is_dask_array(X):
            self._fit_dask(X, options)
            return self
        data, names = check_array(X, min_samples=2)
        center = data.mean(axis=0)
        centred = data - center
        d = data.shape[1]
        prior = _build_prior(
            np.cov(centred, rowvar=False, bias=True).reshape(d, d),
            center,
            options["covariance_type"],
            self.priors,
            options["truncation"],
        )
        conc = options["concentration"]
        if options["method"] == "advi":
            result = _fit_advi(
                centred,
                prior,
                conc,
                options["truncation"],
                options["advi_iterations"],
                options["rng"],
                self.progressbar,
            )
        else:
            rows = _InMemoryRows(centred, options["covariance_type"], options["truncation"])
            result = _best_cavi_run(rows, prior, conc, options)
        self._set_fitted(result, prior, center, data, names)
        return self

    def _fit_dask(self, X: Any, options: dict[str, Any]) -> None:
        """Fit on a Dask array chunked along rows (see the class notes, "Dask input")."""
        if options["method"] != "cavi":
            raise ValueError(
                message("method", "'cavi' for Dask input (ADVI needs the data in memory)", "advi")
            )
        data = check_dask_array(X, min_samples=2)
        n, d = data.shape
        center = column_means(data)
        # one pass: sums and cross products of the centred rows, for the covariance
        moments = map_reduce(_block_moments, data, shift=center)
        residual = moments[0] / n
        cov = moments[1:] / n - np.outer(residual, residual)
        prior = _build_prior(
            cov, center, options["covariance_type"], self.priors, options["truncation"]
        )
        rows = _ChunkedRows(data, center, options["covariance_type"], options["truncation"])
        result = _best_cavi_run(rows, prior, options["concentration"], options)
        self._set_fitted(result, prior, center, data, None)

    def _set_fitted(
        self,
        result: dict[str, Any],
        prior: _cavi.ComponentPrior,
        center: np.ndarray,
        data: Any,
        names: list[str] | None,
        n_samples: int | None = None,
    ) -> None:
        # ``data``: the training data (a NumPy array, a reference to the Dask
        # array, or None for a model loaded from a fit on Dask data)
        self._state = result["state"]
        self._kind = prior.covariance_type
        self._prior = prior
        self._center = center
        self._X_train = data
        self.n_features_in_ = int(center.shape[0])
        self.n_samples_ = int(data.shape[0]) if n_samples is None else int(n_samples)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.elbo_ = float(result["elbo"])
        self.elbo_trace_ = np.asarray(result["trace"], dtype=float)
        self.converged_ = bool(result["converged"])
        self.n_iter_ = int(result["n_iter"])
        self.n_merges_ = int(result["n_merges"])
        self.expected_counts_ = np.asarray(result["nk"], dtype=float)
        self._set_summaries()

    def _set_summaries(self) -> None:
        state = self._state
        if isinstance(state, _DrawPool):
            self.weights_ = np.exp(state.log_weights).mean(axis=0)
            self.means_ = state.means.mean(axis=0) + self._center
            self.covariances_ = state.mean_covariances(self._kind)
            self.concentration_ = float(state.alpha.mean())
            self.effective_n_components_ = int(np.sum(self.expected_counts_ >= 1.0))
            self.params_ = GaussianMixtureParams(
                self.weights_, self.means_, self.covariances_, self._kind
            )
            return
        self.weights_ = _cavi.expected_weights(state.stick_a, state.stick_b)
        self.means_ = state.components.mean + self._center
        self.covariances_ = _cavi.posterior_covariances(state.components)
        self.concentration_ = float(state.concentration.mean)
        self.effective_n_components_ = int(np.sum(self.expected_counts_ >= 1.0))
        self.params_ = GaussianMixtureParams(
            self.weights_, self.means_, self.covariances_, state.components.covariance_type
        )

    # ------------------------------------------------------------- prediction
    def _check_X(self, X: Any) -> np.ndarray:
        check_fitted(self)
        data, _ = check_array(X)
        check_n_features(data, self.n_features_in_)
        return data

    def _lazy(self, X: Any, method: str, n_columns: int | None) -> Any:
        """Apply a row-wise method lazily to the row blocks of a Dask array.

        The tasks carry a shallow copy of the model without its training data,
        so that a distributed scheduler does not ship the data with every task.
        """
        check_fitted(self)
        data = check_dask_array(X)
        check_n_features(data, self.n_features_in_)
        light = copy.copy(self)
        light._X_train = None
        return map_rows(getattr(light, method), data, n_columns)

    def _log_predictive(self, X: np.ndarray) -> np.ndarray:
        return logsumexp(self._weighted_predictive(X), axis=1)

    def _membership(self, X: np.ndarray) -> np.ndarray:
        weighted = self._weighted_predictive(X)
        return np.exp(weighted - logsumexp(weighted, axis=1, keepdims=True))

    def _weighted_predictive(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k N(x | mu_k, Sigma_k)]`` per row and component, shape (n, T)."""
        if isinstance(self._state, _DrawPool):
            pool = self._state
            draws = pool.as_draws()
            centred = X - self._center
            total = np.full((X.shape[0], self.weights_.size), -np.inf)
            for s in range(pool.size):
                total = np.logaddexp(total, self._log_joint_components(centred, draws, s))
            return total - np.log(pool.size)
        log_t = _cavi.predictive_log_density(X - self._center, self._state.components)
        with np.errstate(divide="ignore"):
            return log_t + np.log(self.weights_)

    def score_samples(self, X: Any) -> np.ndarray:
        """Log posterior predictive density of every row.

        ``log p(x | training data) = log sum_k E_q[pi_k] St(x | k)``, a mixture of
        multivariate Student-t densities (the Gaussian integrated over q(mu, Lambda)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            A lazy Dask array when ``X`` is a Dask array.
        """
        if is_dask_array(X):
            return self._lazy(X, "_log_predictive", None)
        return self._log_predictive(self._check_X(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log posterior predictive density of the rows of ``X``."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X: Any, *, hdi_prob: float | None = None) -> Any:
        """Membership probabilities of every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        hdi_prob : float, optional
            ``None`` returns the (n, T) membership probabilities under the
            posterior predictive, ``E[pi_k] St_k(x) / sum_j E[pi_j] St_j(x)``. A
            probability in (0, 1) returns an ``xarray.Dataset`` with variables
            ``mean``, ``lower`` and ``upper`` (dims ``obs_id``, ``component``):
            the mean and the *equal-tailed* interval of ``p(z = k | x, theta)``
            over :meth:`membership_draws` (200 draws from q, fixed seed 0).

        Returns
        -------
        ndarray of shape (n_samples, T) or xarray.Dataset
            A lazy Dask array when ``X`` is a Dask array and ``hdi_prob`` is None.
        """
        if is_dask_array(X) and hdi_prob is None:
            return self._lazy(X, "_membership", self.weights_.size)
        data = self._check_X(X)
        if hdi_prob is not None:
            prob = check_float(
                hdi_prob,
                "hdi_prob",
                minimum=0.0,
                maximum=1.0,
                include_minimum=False,
                include_maximum=False,
            )
            import xarray as xr

            draws = self.membership_draws(data, random_seed=0)
            tail = (1.0 - prob) / 2.0
            lower, upper = np.quantile(draws, [tail, 1.0 - tail], axis=0)
            dims = ("obs_id", "component")
            coords = {"obs_id": np.arange(data.shape[0]), "component": np.arange(draws.shape[2])}
            return xr.Dataset(
                {
                    "mean": (dims, draws.mean(axis=0)),
                    "lower": (dims, lower),
                    "upper": (dims, upper),
                },
                coords=coords,
                attrs={"interval": "equal-tailed", "prob": prob},
            )
        return self._membership(data)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of every row under the posterior predictive.

        A lazy Dask array when ``X`` is a Dask array.
        """
        if is_dask_array(X):
            return self.predict_proba(X).argmax(axis=1)
        return np.asarray(self.predict_proba(X)).argmax(axis=1)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return the labels of the training data."""
        return self.fit(X).predict(X)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw from the posterior predictive distribution.

        A component is drawn with probability ``E_q[pi_k]``, then a point from
        its Student-t predictive.

        Parameters
        ----------
        n_samples : int
        random_state : None, int or numpy.random.Generator

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
        """
        check_fitted(self)
        n = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_state)
        if isinstance(self._state, _DrawPool):
            return self._sample_from_pool(n, rng)
        weights = self.weights_ / self.weights_.sum()
        labels = np.sort(rng.choice(weights.size, size=n, p=weights))
        X = _cavi.predictive_sample(self._state.components, labels, rng) + self._center
        return X, labels

    def _sample_from_pool(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive draws for ADVI: a stored draw of theta, a label, a Gaussian."""
        pool = self._state
        assert isinstance(pool, _DrawPool)
        which = rng.integers(pool.size, size=n)
        weights = np.exp(pool.log_weights[which])
        u = rng.uniform(size=(n, 1)) * weights.sum(axis=1, keepdims=True)
        labels = np.minimum((np.cumsum(weights, axis=1) < u).sum(axis=1), weights.shape[1] - 1)
        cov = _full_covariances_from_cholesky(
            pool.prec_chol, self._kind, weights.shape[1], self.n_features_in_
        )
        chol = np.linalg.cholesky(cov[which, labels])
        z = rng.standard_normal((n, self.n_features_in_))
        X = pool.means[which, labels] + np.einsum("nij,nj->ni", chol, z) + self._center
        order = np.argsort(labels, kind="stable")
        return X[order], labels[order]

    # ------------------------------------------------------ draws from q
    def _draws(self, n_draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        state = self._state
        if isinstance(state, _DrawPool):
            replace = n_draws > state.size
            return state.as_draws(rng.choice(state.size, size=n_draws, replace=replace))
        log_w, alpha, log_q_v, log_p_v = _cavi.draw_sticks(
            state.stick_a, state.stick_b, state.concentration, n_draws, rng
        )
        means, chol, log_q_c, log_p_c = _cavi.draw_components(
            state.components, self._prior, n_draws, rng
        )
        return {
            "log_weights": log_w,
            "alpha": alpha,
            "means": means,
            "prec_chol": chol,
            "log_q": log_q_v + log_q_c,
            "log_prior": log_p_v + log_p_c,
        }

    def _log_joint_components(
        self, X: np.ndarray, draws: dict[str, np.ndarray], s: int
    ) -> np.ndarray:
        """``log pi_k + log N(x_i | mu_k, Sigma_k)`` for draw ``s``, shape (n, T)."""
        kind = self._kind
        eta, const = natural_parameters(draws["means"][s], draws["prec_chol"][s], kind)
        return feature_map(X, kind) @ eta + (const + draws["log_weights"][s])

    def membership_draws(
        self, X: Any, max_draws: int | None = None, random_seed: Any = None
    ) -> np.ndarray:
        """``p(z_i = k | x_i, theta_s)`` for draws ``theta_s`` from the variational posterior.

        Components are the variational factors, so their labels mean the same
        thing in every draw (no relabelling is needed).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        max_draws : int, optional
            Number of draws (default 200).
        random_seed : None, int or numpy.random.Generator

        Returns
        -------
        ndarray of shape (n_draws, n_samples, T)
            In memory: a Dask ``X`` is computed first.
        """
        data = self._check_X(X) - self._center
        n_draws = (
            _DEFAULT_MEMBERSHIP_DRAWS
            if max_draws is None
            else check_int(max_draws, "max_draws", minimum=1)
        )
        rng = check_random_state(random_seed, "random_seed")
        draws = self._draws(n_draws, rng)
        out = np.empty((n_draws, data.shape[0], self.weights_.size))
        for s in range(n_draws):
            joint = self._log_joint_components(data, draws, s)
            out[s] = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        return out

    def to_datatree(self, n_draws: int = 1000, random_seed: Any = None) -> Any:
        """Draws from the variational posterior as an ArviZ DataTree.

        Groups: ``posterior`` (``weights``, ``means``, ``covariances`` as full
        matrices, and ``concentration``; one chain), ``log_likelihood`` (``obs``:
        ``log sum_k pi_k N(x_i | mu_k, Sigma_k)`` per training point),
        ``observed_data`` (``obs``) and ``sample_stats`` with ``log_p`` (log joint
        density: log-likelihood plus log prior of the sticks, alpha and the
        component parameters), ``log_q`` (log variational density of the same
        draw, same parametrisation) and ``n_occupied`` (the number of components
        holding at least one training point when the allocations are drawn
        from ``p(z_i | x_i, theta_s)``). So::

            from arviz_stats import loo_approximate_posterior
            tree = model.to_datatree()
            loo_approximate_posterior(tree, tree["sample_stats"]["log_p"],
                                      tree["sample_stats"]["log_q"])

        gives PSIS-LOO corrected for the approximation, and its Pareto k
        diagnoses the approximation itself (Yao et al. 2018).

        Parameters
        ----------
        n_draws : int, default 1000
        random_seed : None, int or numpy.random.Generator

        Returns
        -------
        xarray.DataTree
        """
        check_fitted(self)
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        rng = check_random_state(random_seed, "random_seed")
        import xarray as xr

        training = self._training_data(n_draws, "to_datatree")
        out = self._tree_arrays(training, n_draws, rng)
        d = self.n_features_in_
        features = (
            list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else list(range(d))
        )
        t = self.weights_.size
        n = self.n_samples_
        coords = {
            "chain": [0],
            "draw": np.arange(n_draws),
            "component": np.arange(t),
            "feature": features,
            "feature_bis": features,
            "obs_id": np.arange(n),
        }
        posterior = xr.Dataset(
            {
                "weights": (("chain", "draw", "component"), out["weights"][None]),
                "means": (("chain", "draw", "component", "feature"), out["means"][None]),
                "covariances": (
                    ("chain", "draw", "component", "feature", "feature_bis"),
                    out["covariances"][None],
                ),
                "concentration": (("chain", "draw"), out["alpha"][None]),
            },
            coords={k: coords[k] for k in ("chain", "draw", "component", "feature", "feature_bis")},
            attrs={"inference": "variational (CAVI)" if self.method == "cavi" else "ADVI"},
        )
        sample_coords = {k: coords[k] for k in ("chain", "draw")}
        log_likelihood = xr.Dataset(
            {"obs": (("chain", "draw", "obs_id"), out["loglik"][None])},
            coords={**sample_coords, "obs_id": coords["obs_id"]},
        )
        sample_stats = xr.Dataset(
            {
                "log_p": (("chain", "draw"), out["log_p"][None]),
                "log_q": (("chain", "draw"), out["log_q"][None]),
                "n_occupied": (("chain", "draw"), out["n_occupied"][None]),
            },
            coords=sample_coords,
        )
        observed = xr.Dataset(
            {"obs": (("obs_id", "feature"), training)},
            coords={"obs_id": coords["obs_id"], "feature": features},
        )
        return xr.DataTree.from_dict(
            {
                "posterior": posterior,
                "log_likelihood": log_likelihood,
                "sample_stats": sample_stats,
                "observed_data": observed,
            }
        )

    def _training_data(self, n_draws: int, caller: str) -> np.ndarray:
        """Return the training data in memory, for the methods with per-observation results.

        A model fitted on a Dask array holds a reference to it and computes it
        here when the (n_draws, n_samples) result fits in ``_POINTWISE_MAX_BYTES``;
        a model loaded from such a fit has no training data.
        """
        data = self._X_train
        if data is None:
            raise ValueError(
                f"{caller}: expected a model that holds its training data, got one loaded "
                "from a fit on a Dask array (its data are not saved); refit, or fit a model "
                "on a subsample of rows for per-observation results"
            )
        if is_dask_array(data):
            size = 8 * self.n_samples_ * (n_draws + self.n_features_in_)
            if size > _POINTWISE_MAX_BYTES:
                raise ValueError(
                    f"{caller}: expected per-observation results that fit in memory "
                    f"({_POINTWISE_MAX_BYTES / 2**30:.0f} GiB), got n_draws={n_draws} x "
                    f"{self.n_samples_} training rows ({size / 2**30:.1f} GiB) from a fit on a "
                    "Dask array; pass fewer n_draws, or fit a model on a subsample of rows "
                    "for per-observation results"
                )
            return np.asarray(data.compute(), dtype=np.float64)
        return np.asarray(data)

    def _tree_arrays(
        self, training: np.ndarray, n_draws: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        draws = self._draws(n_draws, rng)
        data = training - self._center
        n, d = data.shape
        t = self.weights_.size
        kind = self._kind
        loglik = np.empty((n_draws, n))
        n_occupied = np.empty(n_draws, dtype=np.int64)
        features = feature_map(data, kind)
        for s in range(n_draws):
            eta, const = natural_parameters(draws["means"][s], draws["prec_chol"][s], kind)
            joint = features @ eta + (const + draws["log_weights"][s])
            total = logsumexp(joint, axis=1)
            loglik[s] = total
            cumulative = np.cumsum(np.exp(joint - total[:, None]), axis=1)
            u = rng.uniform(size=(n, 1)) * cumulative[:, -1:]
            labels = np.minimum((cumulative < u).sum(axis=1), t - 1)
            n_occupied[s] = np.unique(labels).size
        covariances = _full_covariances_from_cholesky(draws["prec_chol"], kind, t, d)
        return {
            "weights": np.exp(draws["log_weights"]),
            "means": draws["means"] + self._center,
            "covariances": covariances,
            "alpha": draws["alpha"],
            "loglik": loglik,
            "log_p": loglik.sum(axis=1) + draws["log_prior"],
            "log_q": draws["log_q"],
            "n_occupied": n_occupied,
        }

    def n_occupied_distribution(self, n_draws: int = 1000, random_seed: Any = 0) -> Any:
        """Posterior distribution of the number of occupied components.

        For each of ``n_draws`` draws of the parameters from q, the allocations
        of the training points are drawn from ``p(z_i | x_i, theta)`` and the
        components holding at least one point are counted. DP posteriors of
        this number are inconsistent (Miller and Harrison 2013); see the class notes.

        Parameters
        ----------
        n_draws : int, default 1000
        random_seed : None, int or numpy.random.Generator, default 0

        Returns
        -------
        pandas.Series
            Probability of every observed count, indexed by the count.
        """
        check_fitted(self)
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        rng = check_random_state(random_seed, "random_seed")
        import pandas as pd

        training = self._training_data(n_draws, "n_occupied_distribution")
        counts = self._tree_arrays(training, n_draws, rng)["n_occupied"]
        values, freq = np.unique(counts, return_counts=True)
        return pd.Series(
            freq / n_draws, index=pd.Index(values, name="n_occupied"), name="probability"
        )

    # ---------------------------------------------------------------- saving
    def _export_state(self) -> dict[str, Any]:
        """JSON-able state from which :meth:`_import_state` rebuilds this model."""
        check_fitted(self)
        params = {}
        for name, value in self.get_params().items():
            if isinstance(
                value, (np.random.Generator, np.random.RandomState, np.random.SeedSequence)
            ):
                value = None
            elif isinstance(value, dict):
                value = {
                    k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
                    for k, v in value.items()
                }
            params[name] = value
        prior = self._prior
        out: dict[str, Any] = {
            "class": type(self).__name__,
            "params": params,
            "covariance_type": self._kind,
            "prior": {
                "mean": prior.mean.tolist(),
                "mean_precision": prior.mean_precision,
                "dof": prior.dof,
                "scale": np.asarray(prior.scale).tolist(),
            },
            "center": self._center.tolist(),
            # the data of a fit on a Dask array are not saved (they may not fit in memory)
            "X_train": None
            if self._X_train is None or is_dask_array(self._X_train)
            else np.asarray(self._X_train).tolist(),
            "n_samples": self.n_samples_,
            "elbo": self.elbo_,
            "elbo_trace": self.elbo_trace_.tolist(),
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "n_merges": self.n_merges_,
            "expected_counts": self.expected_counts_.tolist(),
        }
        state = self._state
        if isinstance(state, _DrawPool):
            out["draw_pool"] = {
                name: getattr(state, name).tolist() for name in _DrawPool.array_names()
            }
        else:
            comps = state.components
            out["components"] = {
                "beta": comps.beta.tolist(),
                "mean": comps.mean.tolist(),
                "dof": comps.dof.tolist(),
                "scale": comps.scale.tolist(),
            }
            out["sticks"] = {"a": state.stick_a.tolist(), "b": state.stick_b.tolist()}
            out["concentration"] = {
                "fixed": state.concentration.fixed,
                "prior_shape": state.concentration.prior_shape,
                "prior_rate": state.concentration.prior_rate,
                "shape": state.concentration.shape,
                "rate": state.concentration.rate,
            }
        if hasattr(self, "feature_names_in_"):
            out["feature_names_in"] = [str(n) for n in self.feature_names_in_]
        return out

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> DPGaussianMixture:
        """Rebuild a fitted model from :meth:`_export_state`'s dict."""
        model = cls(**state["params"])
        kind = state["covariance_type"]
        p = state["prior"]
        prior = _cavi.ComponentPrior(
            kind,
            np.asarray(p["mean"], float),
            float(p["mean_precision"]),
            float(p["dof"]),
            np.asarray(p["scale"], float),
        )
        glob: _cavi.GlobalState | _DrawPool
        if "draw_pool" in state:
            pool = state["draw_pool"]
            glob = _DrawPool(**{k: np.asarray(pool[k], float) for k in _DrawPool.array_names()})
        else:
            c = state["components"]
            comps = _cavi.ComponentPosterior(
                kind,
                np.asarray(c["beta"], float),
                np.asarray(c["mean"], float),
                np.asarray(c["dof"], float),
                np.asarray(c["scale"], float),
            )
            q = state["concentration"]
            conc = _cavi.Concentration(
                q["fixed"],
                float(q["prior_shape"]),
                float(q["prior_rate"]),
                float(q["shape"]),
                float(q["rate"]),
            )
            glob = _cavi.GlobalState(
                comps,
                np.asarray(state["sticks"]["a"], float),
                np.asarray(state["sticks"]["b"], float),
                conc,
            )
        result = {
            "state": glob,
            "elbo": state["elbo"],
            "trace": state["elbo_trace"],
            "converged": state["converged"],
            "n_iter": state["n_iter"],
            "n_merges": state["n_merges"],
            "nk": state["expected_counts"],
        }
        model._set_fitted(
            result,
            prior,
            np.asarray(state["center"], float),
            None if state["X_train"] is None else np.asarray(state["X_train"], float),
            state.get("feature_names_in"),
            state.get("n_samples", None if state["X_train"] is None else len(state["X_train"])),
        )
        return model

    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Save the fitted model as JSON (see :mod:`bayesgmm.io`)."""
        from bayesgmm.io import save

        save(self, path, overwrite=overwrite)


# ------------------------------------------------------------------ helpers
def _check_concentration(value: Any) -> _cavi.Concentration:
    if value is None:
        return _cavi.Concentration(None, 1.0, 1.0, 1.0, 1.0)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        alpha = check_float(value, "concentration", minimum=0.0, include_minimum=False)
        return _cavi.Concentration(alpha, 1.0, 1.0, 1.0, 1.0)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        shape = check_float(value[0], "concentration[0]", minimum=0.0, include_minimum=False)
        rate = check_float(value[1], "concentration[1]", minimum=0.0, include_minimum=False)
        return _cavi.Concentration(None, shape, rate, shape, rate)
    raise TypeError(
        message("concentration", "None, a positive number or a (shape, rate) pair", value)
    )


def _build_prior(
    data_cov: np.ndarray,
    center: np.ndarray,
    kind: str,
    priors: dict[str, Any] | None,
    truncation: int,
) -> _cavi.ComponentPrior:
    """Build the documented data-scaled prior, in the centred frame.

    ``data_cov`` is the (biased) covariance matrix of the data, (d, d).
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
        expected_shape = {"full": (d, d), "tied": (d, d), "diag": (d,), "spherical": ()}[kind]
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
    return _cavi.ComponentPrior(kind, mean, beta0, dof, np.asarray(scale, dtype=float))


def _full_covariances_from_cholesky(chol: np.ndarray, kind: str, t: int, d: int) -> np.ndarray:
    """Return full ``(S, T, d, d)`` covariances ``(P P')^{-1}`` from precision Cholesky draws."""
    n_draws = chol.shape[0]
    if kind in ("full", "tied"):
        inv = np.linalg.inv(chol)  # P^{-1}; Sigma = P^{-T} P^{-1}
        cov = np.swapaxes(inv, -1, -2) @ inv
        if kind == "tied":
            cov = np.broadcast_to(cov[:, None], (n_draws, t, d, d))
        return np.ascontiguousarray(cov)
    variances = 1.0 / chol**2
    if kind == "spherical":
        variances = np.broadcast_to(variances[..., None], (n_draws, t, d))
    return variances[..., None] * np.eye(d)


def _initial_responsibilities(
    X: np.ndarray, t: int, init: str, rng: np.random.Generator
) -> np.ndarray:
    n = X.shape[0]
    if init == "random":
        return rng.dirichlet(np.ones(t), size=n)
    from bayesgmm._kmeans import assign_labels, kmeans

    k = min(t, n)
    sub = X if n <= _INIT_SUBSAMPLE else X[rng.choice(n, _INIT_SUBSAMPLE, replace=False)]
    k = min(k, sub.shape[0])
    centers = kmeans(sub, k, rng, n_init=1, max_iter=20).centers
    labels, _ = assign_labels(X, centers)
    resp = np.zeros((n, t))
    resp[np.arange(n), labels] = 1.0
    return resp


class _InMemoryRows:
    """The centred training data in memory, with the responsibilities of the last E-step.

    The merge moves read the (n, T) responsibility matrix directly.
    """

    def __init__(self, X: np.ndarray, kind: str, t: int) -> None:
        self.X = X
        self.kind = kind
        self.t = t
        self.resp = np.empty((0, t))

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        self.resp = _initial_responsibilities(self.X, self.t, init, rng)
        return statistics_from_responsibilities(self.X, self.resp, self.kind)

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        return _e_step(self.X, state, self.kind, self.resp)

    def overlap(self, active: np.ndarray) -> np.ndarray:
        """``R_A' R_A`` for the columns ``active`` of the last responsibilities."""
        sub = self.resp[:, active]
        # a copy on one side: NumPy sends ``A.T @ A`` to BLAS syrk, which is much
        # slower than gemm with threads on a loaded machine
        return sub.T @ sub.copy()

    def entropy_changes(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """Entropy change of merging each pair, at the last responsibilities."""
        rlogr = xlogy(self.resp, self.resp).sum(axis=0)
        return _cavi.merge_entropy_change(self.resp, pairs, rlogr)


@dataclass
class _BlockSummary:
    """What one row block's E-step sends back: its statistics and, when asked, ``R' R``."""

    stats: SufficientStatistics
    overlap: np.ndarray | None

    def __add__(self, other: _BlockSummary) -> _BlockSummary:
        overlap = (
            None if self.overlap is None or other.overlap is None else self.overlap + other.overlap
        )
        return _BlockSummary(self.stats + other.stats, overlap)


def _expected_terms(state: _cavi.GlobalState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eta, const = _cavi.expected_log_gaussian(state.components)
    return _cavi.expected_log_weights(state.stick_a, state.stick_b), eta, const


def _block_e_step(
    block: np.ndarray,
    e_log_pi: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    kind: str,
    overlap: bool,
) -> _BlockSummary:
    """E-step of one centred row block (the unit of work on a Dask worker)."""
    resp = np.empty((block.shape[0], eta.shape[1])) if overlap else None
    stats = e_step_statistics(block, e_log_pi, eta, const, kind, resp_out=resp)
    return _BlockSummary(stats, None if resp is None else resp.T @ resp.copy())


def _block_entropy_changes(
    block: np.ndarray,
    e_log_pi: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    kind: str,
    pairs: list[tuple[int, int]],
) -> np.ndarray:
    """One block's share of the entropy change of each merge (a sum over rows)."""
    resp = np.empty((block.shape[0], eta.shape[1]))
    e_step_statistics(block, e_log_pi, eta, const, kind, resp_out=resp)
    return _cavi.merge_entropy_change(resp, pairs, xlogy(resp, resp).sum(axis=0))


def _block_initial_statistics(
    block: np.ndarray, centers: np.ndarray, t: int, kind: str
) -> SufficientStatistics:
    """Statistics of one block with every row given to its nearest k-means centre."""
    from bayesgmm._kmeans import assign_labels

    labels, _ = assign_labels(block, centers)
    resp = np.zeros((block.shape[0], t))
    resp[np.arange(block.shape[0]), labels] = 1.0
    return statistics_from_responsibilities(block, resp, kind)


def _block_moments(block: np.ndarray) -> np.ndarray:
    """Column sums (first row) and cross products ``B' B`` (the rest) of one block."""
    return np.vstack([block.sum(axis=0), block.T @ block])


class _ChunkedRows:
    """Training data held as a Dask array: every pass maps a block function and adds.

    Only (T, d, d)-sized statistics, the (T, T) overlap ``R' R`` and one number
    per merge candidate leave the workers; the (n, T) responsibilities are
    never formed. The state of the last E-step is kept so that the merge
    moves can recompute its responsibilities block by block.
    """

    def __init__(self, data: Any, center: np.ndarray, kind: str, t: int) -> None:
        self.data = data
        self.center = center
        self.kind = kind
        self.t = t
        self._state: _cavi.GlobalState | None = None
        self._overlap: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    def initial_statistics(self, init: str, rng: np.random.Generator) -> SufficientStatistics:
        """Start from a row sample: k-means centres on it, then all rows to their nearest centre.

        With ``init="random"`` the Dirichlet responsibilities of the sampled rows
        give statistics scaled up to ``n`` rows (only a starting point).
        """
        sample = sample_rows(self.data, _INIT_SUBSAMPLE, rng) - self.center
        n, m = self.n_samples, sample.shape[0]
        if init == "random":
            resp = rng.dirichlet(np.ones(self.t), size=m)
            stats = statistics_from_responsibilities(sample, resp, self.kind)
            factor = n / m
            return SufficientStatistics(
                self.kind, stats.nk * factor, stats.sum_x * factor, stats.sum_xx * factor, 0.0, n
            )
        from bayesgmm._kmeans import kmeans

        centers = kmeans(sample, min(self.t, m), rng, n_init=1, max_iter=20).centers
        func = partial(_block_initial_statistics, centers=centers, t=self.t, kind=self.kind)
        result: SufficientStatistics = map_reduce(func, self.data, shift=self.center)
        return result

    def e_step(self, state: _cavi.GlobalState, overlap: bool = False) -> SufficientStatistics:
        e_log_pi, eta, const = _expected_terms(state)
        func = partial(
            _block_e_step, e_log_pi=e_log_pi, eta=eta, const=const, kind=self.kind, overlap=overlap
        )
        summary: _BlockSummary = map_reduce(func, self.data, shift=self.center)
        self._state, self._overlap = state, summary.overlap
        return summary.stats

    def overlap(self, active: np.ndarray) -> np.ndarray:
        """``R_A' R_A`` at the last E-step's state (one more pass if it was not summed then)."""
        if self._overlap is None:
            assert self._state is not None
            self.e_step(self._state, overlap=True)
        assert self._overlap is not None
        return self._overlap[np.ix_(active, active)]

    def entropy_changes(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """Entropy change of merging each pair at the last E-step's state (one pass)."""
        assert self._state is not None
        e_log_pi, eta, const = _expected_terms(self._state)
        func = partial(
            _block_entropy_changes,
            e_log_pi=e_log_pi,
            eta=eta,
            const=const,
            kind=self.kind,
            pairs=pairs,
        )
        return np.asarray(map_reduce(func, self.data, shift=self.center), dtype=float)


def _best_cavi_run(
    rows: _InMemoryRows | _ChunkedRows,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Run CAVI from ``n_init`` initialisations and keep the highest ELBO.

    BLAS is held to one thread meanwhile (when ``threadpoolctl`` is installed):
    its threads cost more in synchronisation than they gain on the E-step's
    thin products, and on a busy machine far more (measured about 30 times
    slower per iteration at n = 200,000 on two shared cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1, user_api="blas")
    result = None
    with limits:
        for _ in range(options["n_init"]):
            run = _fit_cavi(rows, prior, conc, options)
            if result is None or run["elbo"] > result["elbo"]:
                result = run
    assert result is not None
    return result


def _fit_cavi(
    rows: _InMemoryRows | _ChunkedRows,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    options: dict[str, Any],
) -> dict[str, Any]:
    """One CAVI run from one initialisation (the rows are centred)."""
    t = options["truncation"]
    n = rows.n_samples
    stats = rows.initial_statistics(options["init_params"], options["rng"])
    state, _, _ = _cavi.fit_globals(stats, 0.0, prior, conc)
    trace: list[float] = []
    converged = False
    n_merges = 0
    gap, next_merge = 1, 1
    n_iter = 0
    # Overrelaxation (Salakhutdinov and Roweis 2003): the statistics are
    # extrapolated along their last change, S + eta (S - S_prev), and the
    # globals they give are kept only if the next E-step shows a higher ELBO;
    # otherwise the plain update is used and eta is reset to 1.
    eta = 1.0
    previous: SufficientStatistics | None = None
    fallback: _cavi.GlobalState | None = None
    for n_iter in range(1, options["max_iter"] + 1):  # noqa: B007
        # a chunked pass also sums the responsibility overlaps when a merge is due
        due = options["merge"] and t > 1 and n_iter >= next_merge
        stats = rows.e_step(state, overlap=due)
        elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        if fallback is not None:
            if elbo < trace[-1]:
                state, eta, previous = fallback, 1.0, None
                stats = rows.e_step(state, overlap=due)
                elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
            else:
                eta = min(2.0 * eta, 64.0)
            fallback = None
        stalled = bool(trace) and (elbo - trace[-1]) < options["tol"] * n
        trace.append(elbo)
        # Merges are tried every iteration while they succeed, then at doubling
        # intervals (at most 32), and always before convergence is declared.
        try_merge = options["merge"] and t > 1 and (n_iter >= next_merge or stalled)
        # The entropy of q(z) is a constant offset in every comparison at fixed
        # responsibilities; it is computed only for the merge moves' record.
        entropy = stats.log_normalizer - _cavi.data_term(stats, state) if try_merge else 0.0
        new_state, order, base = _cavi.fit_globals(
            stats, entropy, prior, state.concentration, need_elbo=try_merge
        )
        relabelled = not np.array_equal(order, np.arange(t))
        accepted = 0
        if try_merge:
            merged, accepted = _try_merges(stats, entropy, rows, prior, state.concentration, base)
            if merged is not None:
                new_state = merged
                n_merges += accepted
                gap = 1
                relabelled = True
            else:
                gap = min(2 * gap, 32)
            next_merge = n_iter + gap
        if stalled and not accepted:
            converged = True
            break
        if _OVERRELAX and previous is not None and not relabelled:
            proposal = _overrelaxed(stats, previous, eta, prior, new_state.concentration)
            if proposal is not None:
                fallback, new_state = new_state, proposal
        previous = None if relabelled else stats
        state = new_state
    else:
        # max_iter reached: evaluate the state left by the last update
        stats = rows.e_step(state)
        elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        if fallback is not None and elbo < trace[-1]:
            state = fallback
            stats = rows.e_step(state)
            elbo = _cavi.elbo_from_normalizer(stats.log_normalizer, state, prior)
        trace.append(elbo)
    return {
        "state": state,
        "elbo": trace[-1],
        "trace": trace,
        "converged": converged,
        "n_iter": n_iter,
        "n_merges": n_merges,
        "nk": stats.nk,
    }


def _overrelaxed(
    stats: SufficientStatistics,
    previous: SufficientStatistics,
    eta: float,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
) -> _cavi.GlobalState | None:
    """Globals from the extrapolated statistics, or None if they are not valid."""
    nk = stats.nk + eta * (stats.nk - previous.nk)
    if np.any(nk < 0):
        return None
    extrapolated = SufficientStatistics(
        stats.covariance_type,
        nk,
        stats.sum_x + eta * (stats.sum_x - previous.sum_x),
        stats.sum_xx + eta * (stats.sum_xx - previous.sum_xx),
        stats.log_normalizer,
        stats.n_samples,
    )
    try:
        state, order, _ = _cavi.fit_globals(extrapolated, 0.0, prior, conc, need_elbo=False)
        _cavi.expected_log_gaussian(state.components)  # raises if a scale is not PD
    except np.linalg.LinAlgError:
        return None
    if not np.array_equal(order, np.arange(nk.size)):
        return None
    return state


def _e_step(
    X: np.ndarray, state: _cavi.GlobalState, kind: str, resp: np.ndarray | None = None
) -> SufficientStatistics:
    """Responsibilities under ``state`` and their statistics (one pass over ``X``)."""
    eta, const = _cavi.expected_log_gaussian(state.components)
    e_log_pi = _cavi.expected_log_weights(state.stick_a, state.stick_b)
    return e_step_statistics(X, e_log_pi, eta, const, kind, resp_out=resp)


def _try_merges(
    stats: SufficientStatistics,
    entropy: float,
    data: _InMemoryRows | _ChunkedRows,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    base_elbo: float,
) -> tuple[_cavi.GlobalState | None, int]:
    """Greedy merge moves scored by the exact ELBO at merged responsibilities.

    Candidates are the pairs of occupied components with the largest cosine
    similarity of their responsibility columns (Hughes and Sudderth 2013 use
    the correlation); each accepted merge must raise the ELBO. ``data``
    supplies the overlaps ``R' R`` and the entropy changes, read from the
    responsibilities in memory or summed over Dask row blocks.
    """
    nk = stats.nk
    active = np.flatnonzero(nk > 1e-8 * max(stats.n_samples, 1))
    if active.size < 2:
        return None, 0
    gram = data.overlap(active)
    norms = np.sqrt(np.diag(gram))
    cosine = gram / np.maximum(np.outer(norms, norms), 1e-300)
    rows, cols = np.triu_indices(active.size, 1)
    scores = cosine[rows, cols]
    keep = scores > 1e-3
    n_candidates = min(int(keep.sum()), 2 * active.size)
    top = np.argsort(-np.where(keep, scores, -np.inf), kind="stable")[:n_candidates]
    if top.size == 0:
        return None, 0
    pairs = [(int(active[rows[p]]), int(active[cols[p]])) for p in top]
    delta_h = data.entropy_changes(pairs)
    best_elbo = base_elbo
    best_state = None
    current = stats
    current_entropy = entropy
    used: set[int] = set()
    accepted = 0
    for (j, k), dh in zip(pairs, delta_h, strict=True):
        if j in used or k in used:
            continue
        proposal = _cavi.merge_statistics(current, j, k)
        state, _, elbo = _cavi.fit_globals(
            proposal, current_entropy + dh, prior, conc, keep_order=False
        )
        if elbo > best_elbo:
            best_elbo, best_state = elbo, state
            current, current_entropy = proposal, current_entropy + dh
            used.update((j, k))
            accepted += 1
    return best_state, accepted


# ------------------------------------------------------------------ ADVI
@dataclass(frozen=True)
class _DrawPool:
    """Draws from an ADVI approximation, stored once at fit time (centred frame).

    ``log_q`` is the log density of the mean-field Gaussian at the unconstrained
    draw and ``log_prior`` the model's log prior density in the same
    unconstrained space (Jacobians of PyMC's transforms included), so that
    ``log_prior + log-likelihood - log_q`` are the importance ratios that
    ``loo_approximate_posterior`` needs.
    """

    log_weights: np.ndarray
    alpha: np.ndarray
    means: np.ndarray
    prec_chol: np.ndarray
    log_q: np.ndarray
    log_prior: np.ndarray

    @staticmethod
    def array_names() -> tuple[str, ...]:
        return ("log_weights", "alpha", "means", "prec_chol", "log_q", "log_prior")

    @property
    def size(self) -> int:
        return int(self.alpha.shape[0])

    def as_draws(self, which: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Return the draws (or the rows ``which`` of them) as ``_draws`` does."""
        pick = slice(None) if which is None else which
        return {name: getattr(self, name)[pick] for name in self.array_names()}

    def mean_covariances(self, kind: str) -> np.ndarray:
        """Monte Carlo posterior mean of the covariances, in scikit-learn's layout."""
        if kind in ("full", "tied"):
            inv = np.linalg.inv(self.prec_chol)
            return (np.swapaxes(inv, -1, -2) @ inv).mean(axis=0)
        return (1.0 / self.prec_chol**2).mean(axis=0)


_ADVI_POOL_SIZE = 1000


def _fit_advi(
    X: np.ndarray,
    prior: _cavi.ComponentPrior,
    conc: _cavi.Concentration,
    t: int,
    n_iterations: int,
    rng: np.random.Generator,
    progressbar: bool,
) -> dict[str, Any]:
    """Fit the same stick-breaking model, written in PyMC, with mean-field ADVI.

    The Wishart prior is written with Bartlett's decomposition (``Lambda = P P'``,
    ``P = chol(W0) A``, ``A_ii^2 ~ chi^2(nu0 - i)``, ``A_ij ~ N(0, 1)`` below the
    diagonal) so that every variable has a standard PyMC transform; the
    component means start at k-means centres. The likelihood is marginal over
    the labels (``logsumexp``).
    """
    import pymc as pm
    import pytensor.tensor as pt

    n, d = X.shape
    kind = prior.covariance_type
    coords = {
        "component": np.arange(t),
        "stick": np.arange(max(t - 1, 0)),
        "feature": np.arange(d),
        "obs_id": np.arange(n),
    }
    wishart = kind in ("full", "tied")
    beta0 = prior.mean_precision
    with pm.Model(coords=coords) as model:
        if conc.fixed is None:
            alpha: Any = pm.Gamma("concentration", alpha=conc.prior_shape, beta=conc.prior_rate)
        else:
            alpha = pt.as_tensor(conc.fixed)
        if t > 1:
            v = pm.Beta("v", 1.0, alpha, dims="stick")
            log_v = pt.concatenate([pt.log(v), pt.zeros(1)])
            log_rest = pt.concatenate([pt.zeros(1), pt.cumsum(pt.log1p(-v))])
            log_w = log_v + log_rest
        else:
            log_w = pt.zeros(1)
        if wishart:
            n_mats = t if kind == "full" else 1
            rows, cols = np.tril_indices(d, -1)
            chol_w0 = np.linalg.cholesky(np.linalg.inv(prior.scale))
            sq = pm.ChiSquared("bartlett_diagonal", nu=prior.dof - np.arange(d), shape=(n_mats, d))
            a = pt.zeros((n_mats, d, d))
            a = pt.set_subtensor(a[:, np.arange(d), np.arange(d)], pt.sqrt(sq))
            if rows.size:
                off = pm.Normal("bartlett_lower", 0.0, 1.0, shape=(n_mats, rows.size))
                a = pt.set_subtensor(a[:, rows, cols], off)
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
            prec_out = chol if kind == "tied" else chol_k
            prec_out = prec_out[0] if kind == "tied" else prec_out
        else:
            shape = (t, d) if kind == "diag" else (t,)
            rate = prior.scale if kind == "diag" else float(prior.scale)
            lam = pm.Gamma("precision", alpha=prior.dof, beta=rate, shape=shape)
            lam_f = lam if kind == "diag" else lam[:, None] * pt.ones((1, d))
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

    centers = X[rng.choice(n, size=t, replace=n < t)]
    try:
        from bayesgmm._kmeans import kmeans

        centers = kmeans(X, min(t, n), rng, n_init=1, max_iter=20).centers
        if centers.shape[0] < t:
            centers = np.vstack([centers, np.repeat(centers[:1], t - centers.shape[0], axis=0)])
    except ImportError:  # pragma: no cover - the k-means module ships with the package
        pass
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
    outs = model.replace_rvs_by_values([log_w, means, prec_out, pt.sum(loglik)])
    fn = model.compile_fn(
        [*outs, model.logp(jacobian=True)], inputs=model.value_vars, point_fn=False
    )
    value_names = [v.name for v in model.value_vars]
    eps = rng.standard_normal((_ADVI_POOL_SIZE, mu.size))
    flat = mu + std * eps
    log_q = np.sum(-0.5 * np.log(2 * np.pi) - np.log(std) - 0.5 * eps**2, axis=1)
    collected: dict[str, list[np.ndarray]] = {k: [] for k in ("lw", "mu", "pc", "lp", "al")}
    for row in flat:
        point = {}
        for name, sl, shp, _ in group.ordering.values():
            point[name] = row[sl].reshape(shp)
        values = fn(**{name: point[name] for name in value_names})
        lw, mn, pc, ll, logp = values
        collected["lw"].append(np.asarray(lw, float))
        collected["mu"].append(np.asarray(mn, float))
        collected["pc"].append(np.asarray(pc, float))
        collected["lp"].append(np.asarray(float(logp) - float(ll)))
        al = float(np.exp(point["concentration_log__"])) if conc.fixed is None else conc.fixed
        collected["al"].append(np.asarray(al))
    pool = _DrawPool(
        log_weights=np.stack(collected["lw"]),
        alpha=np.stack(collected["al"]),
        means=np.stack(collected["mu"]),
        prec_chol=np.stack(collected["pc"]),
        log_q=log_q,
        log_prior=np.stack(collected["lp"]),
    )
    order = np.argsort(-np.exp(pool.log_weights).mean(axis=0), kind="stable")
    pool = _DrawPool(
        log_weights=pool.log_weights[:, order],
        alpha=pool.alpha,
        means=pool.means[:, order],
        prec_chol=pool.prec_chol if kind == "tied" else pool.prec_chol[:, order],
        log_q=pool.log_q,
        log_prior=pool.log_prior,
    )
    hist = -np.asarray(approx.hist, dtype=float)
    window = max(len(hist) // 10, 1)
    last, previous = hist[-window:].mean(), hist[-2 * window : -window].mean()
    converged = bool(abs(last - previous) <= 1e-3 * abs(last))
    # expected counts from the Monte Carlo predictive membership of the training data
    joint = np.full((n, t), -np.inf)
    draws = pool.as_draws()
    features = feature_map(X, kind)
    for s in range(pool.size):
        eta, const = natural_parameters(draws["means"][s], draws["prec_chol"][s], kind)
        joint = np.logaddexp(joint, features @ eta + const + draws["log_weights"][s])
    nk = np.exp(joint - logsumexp(joint, axis=1, keepdims=True)).sum(axis=0)
    return {
        "state": pool,
        "elbo": float(last),
        "trace": hist,
        "converged": converged,
        "n_iter": len(hist),
        "n_merges": 0,
        "nk": nk,
    }
