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

The merge moves, the over-relaxation and the passes over Dask row blocks are in
:mod:`bayesgmm._cavi_fit`; ``method="advi"`` fits the same model written in PyMC
(:mod:`bayesgmm._dp_advi`). Each method leaves one posterior object
(:class:`bayesgmm._cavi_fit.CAVIPosterior`, :class:`bayesgmm._dp_advi.ADVIPosterior`)
that answers every question the estimator asks of it.

References
----------
Blei, D. M. and Jordan, M. I. (2006). Variational inference for Dirichlet process
mixtures. Bayesian Analysis 1(1), 121-143. doi:10.1214/06-BA104
Miller, J. W. and Harrison, M. T. (2013). A simple example of Dirichlet process
mixture inconsistency for the number of components. NeurIPS 26. arXiv:1301.2708
Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it work?:
Evaluating variational inference. ICML, PMLR 80, 5581-5590. arXiv:1802.02538
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import warnings
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.special import logsumexp

from bayesgmm import _cavi, _cavi_fit, _dp_advi, _vi_diagnostics
from bayesgmm._base import MixtureBase
from bayesgmm._chunks import check_dask_array, column_means, is_dask_array
from bayesgmm._gaussian import COVARIANCE_TYPES, feature_map
from bayesgmm._intervals import check_ci, credible_interval, membership_intervals
from bayesgmm._missing import conditional_moments, missingness_patterns
from bayesgmm._validation import (
    _UNSET,
    check_array,
    check_dask_sample_weight,
    check_fitted,
    check_float,
    check_int,
    check_missing,
    check_option,
    check_random_state,
    check_sample_weight,
    message,
    renamed_argument,
    seed_argument_name,
)
from bayesgmm._vi_diagnostics import ApproximationWarning, ImportanceCheck
from bayesgmm.params import GaussianMixtureParams

__all__ = ["ApproximationWarning", "DPGaussianMixture"]

_INIT_OPTIONS = ("kmeans", "random")
_METHODS = ("cavi", "advi")
# Draws used when membership_draws is called with max_draws=None.
_DEFAULT_MEMBERSHIP_DRAWS = 200
# Largest per-observation result (n_draws x n_samples doubles plus the data) that the
# pointwise methods compute for a model fitted on a Dask array.
_POINTWISE_MAX_BYTES = 2**30
# The ApproximationWarning points at the first frame outside the package (the user's call).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class DPGaussianMixture(MixtureBase):
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
    pareto_k_ : float
        Pareto k of the importance ratios ``p(theta, X) / q(theta)`` over 1000
        draws of the approximation (Yao et al. 2018); see the notes. Computed
        when first needed; above ArviZ's threshold (0.67 for 1000 draws) an
        :class:`~bayesgmm.ApproximationWarning` is issued then.
    interval_method_ : {"VI+PSIS", "VI"}
        How the draws behind every interval are made: reweighted by PSIS when
        ``pareto_k_`` is at most the threshold, plain draws from q otherwise.
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

    **Checking and repairing the approximation.** Mean-field q is a guess at
    the posterior that says nothing about its own quality, and for mixtures it
    is typically too narrow. The first time an interval, ``pareto_k_`` or
    ``interval_method_`` is asked for, 1000 draws ``theta_s ~ q`` (seeded at
    ``fit``, so the result does not depend on when) are made and their
    importance ratios ``r_s = p(theta_s, X) / q(theta_s)`` (log joint
    density, the likelihood marginal over labels plus every log prior, minus
    the log density under q, in the same parametrisation) are
    Pareto-smoothed by ArviZ's PSIS (Vehtari et al. 2024), whose tail shape is
    ``pareto_k_`` (Yao et al. 2018). At or below ArviZ's sample-size-aware
    threshold ``min(1 - 1 / log10(S), 0.7)`` the smoothed weights correct q:
    every interval (``to_datatree``, ``predict_proba(X, ci_prob=...)``,
    ``membership_draws`` and so :func:`~bayesgmm.cluster_uncertainty`,
    ``n_occupied_distribution``) is computed from draws of that pool taken in
    proportion to their weights (``interval_method_ == "VI+PSIS"``). Above it
    no reweighting can be trusted: an :class:`~bayesgmm.ApproximationWarning`
    is issued (once, with that first interval), the intervals come from q
    itself (``"VI"``), and :meth:`refine` samples the mixture of the occupied
    components by NUTS from this fit. The point estimates (``params_``,
    ``predict``, ``score_samples``) are unchanged by either, which is why
    ``fit`` does not make the check: it costs about as much as 1000 E-steps
    (the log-likelihood of every draw, 32 draws per matrix product), several
    times the fit itself on well-separated data. ``save`` keeps the pending
    seed (or the check, once made); a fit on a Dask array, whose data are not
    saved, is checked when saved.

    **Missing values.** ``fit`` takes ``NaN`` as entries missing at random
    (CAVI only; ``method="advi"`` refuses them, as do Dask arrays). The missing
    coordinates are latent variables with the structured factor
    ``q(x_im | z_i = k)``, Gaussian with precision ``E[Lambda_k]_mm`` and
    mean the regression of the missing on the observed coordinates under
    ``N(m_k, E[Lambda_k]^{-1})``; the E-step scores each row on its observed
    coordinates and the update of ``q(mu, Lambda)`` reads the expected
    complete-data statistics (:func:`bayesgmm._cavi.missing_data_statistics`;
    Ghahramani and Jordan 1994 for the EM analogue, Bishop 2006 section 10.2 for
    the complete-data updates). The ELBO includes the entropy of
    ``q(x_m | z)`` and never decreases; restarts, merges and over-relaxation
    work as on complete data. The start (k-means) and the default prior's data
    covariance see each missing entry at its column's observed mean, the
    covariance rescaled to the observed variances. ``predict``,
    ``predict_proba`` and ``score_samples`` take rows with ``NaN`` through the
    predictive on the observed coordinates (the marginal of each component's
    Student-t, exact under q); ``impute`` fills the conditional mean under
    that predictive. ``pareto_k_`` checks q against the observed-data
    posterior. The per-observation results (``to_datatree``,
    ``n_occupied_distribution``) and intervals need complete training data.

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

    _allow_nan = True

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
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> DPGaussianMixture:
        """Fit the variational posterior to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or dask.array.Array
            A Dask array is fitted block by block (see the class notes, "Dask
            input"); its chunk sizes must be known. ``NaN`` marks an entry
            missing at random, fitted by CAVI with the missing coordinates as
            latent variables (see the class notes, "Missing values"); rows or
            columns entirely ``NaN`` are refused, and so is ``NaN`` with
            ``method="advi"`` or in a Dask array.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights ``w_i >= 0``: the likelihood is
            ``prod_i p(x_i | theta)^{w_i}``, so integer weights give the
            posterior of the data with row i repeated ``w_i`` times and a zero
            weight drops the row. CAVI weights every sum over rows (the
            statistics, the ELBO's data term and entropy, the merge moves), the
            data-dependent prior uses the weighted mean and covariance, and the
            importance check weights the likelihood. With a Dask ``X``, a Dask
            array chunked with its rows (or a NumPy array). ``method="advi"``
            refuses weights. A weighted fit has no per-observation results
            (``to_datatree``, ``n_occupied_distribution``): its rows are not
            exchangeable observations for LOO.

        Returns
        -------
        self

        Notes
        -----
        The check of the approximation (``pareto_k_``, and the
        :class:`ApproximationWarning` when it exceeds ArviZ's threshold) is
        made when an interval is first asked for, not here; see the class
        notes, "Checking and repairing the approximation".
        """
        options = self._validated()
        kind, t = options["covariance_type"], options["truncation"]
        if sample_weight is not None and options["method"] != "cavi":
            raise ValueError(
                message(
                    "sample_weight",
                    "None with method='advi' (weights are fitted by method='cavi')",
                    "weights",
                    raw=True,
                )
            )
        rows: _cavi_fit.RowSource
        weights: Any = None
        if is_dask_array(X):
            if options["method"] != "cavi":
                raise ValueError(
                    message(
                        "method", "'cavi' for Dask input (ADVI needs the data in memory)", "advi"
                    )
                )
            data = check_dask_array(X, min_samples=2)
            names = None
            weights = check_dask_sample_weight(sample_weight, data.shape[0])
            center = column_means(data, weights)
            data_cov = _cavi_fit.chunked_covariance(data, center, weights)
            rows = _cavi_fit.ChunkedRows(data, center, kind, t, weights)
        else:
            data, names = check_array(X, min_samples=2, allow_nan=True)
            weights = check_sample_weight(sample_weight, data.shape[0])
            d = data.shape[1]
            if np.isnan(data).any():
                check_missing(data, "X", columns=True)
                if weights is not None:
                    raise ValueError(
                        message(
                            "sample_weight",
                            "None for X with missing values (NaN): weighted fits take "
                            "complete rows",
                            "weights",
                            raw=True,
                        )
                    )
                if options["method"] != "cavi":
                    raise ValueError(
                        message(
                            "method",
                            "'cavi' for X with missing values (ADVI needs complete rows; "
                            "drop or impute the rows with NaN for ADVI)",
                            "advi",
                        )
                    )
                center, data_cov = _observed_moments(data)
                centred = data - center
                rows = _cavi_fit.MissingInMemoryRows(centred, kind, t)
            else:
                if weights is None:
                    center = data.mean(axis=0)
                    centred = data - center
                    data_cov = np.cov(centred, rowvar=False, bias=True).reshape(d, d)
                else:
                    center = weights @ data / weights.sum()
                    centred = data - center
                    data_cov = (centred * weights[:, None]).T @ centred / weights.sum()
                rows = _cavi_fit.InMemoryRows(centred, kind, t, weights)
        prior = _cavi.data_prior(data_cov, center, kind, self.priors, t)
        conc = options["concentration"]
        run: _cavi_fit.CAVIRun | _dp_advi.ADVIFit
        if options["method"] == "advi":
            run = _dp_advi.fit(
                centred,
                prior,
                conc,
                t,
                n_iterations=options["advi_iterations"],
                rng=options["rng"],
                progressbar=self.progressbar,
            )
        else:
            settings = _cavi_fit.CAVISettings(
                truncation=t,
                n_init=options["n_init"],
                max_iter=options["max_iter"],
                tol=options["tol"],
                merge=options["merge"],
                init=options["init_params"],
            )
            run = _cavi_fit.run_cavi(rows, prior, conc, settings, options["rng"])
        pool_seed = int(options["rng"].integers(0, 2**31 - 1))
        check = None
        if weights is not None:
            # The check made on first need reads the training rows alone, so a
            # weighted fit is checked here, with its weights.
            check = _vi_diagnostics.check_approximation(
                run.posterior, data, center, pool_seed, weights
            )
        self._set_fitted(
            run.posterior,
            center,
            data,
            names,
            importance=check,
            pool_seed=pool_seed,
            elbo=run.elbo,
            trace=run.trace,
            converged=run.converged,
            n_iter=run.n_iter,
            n_merges=run.n_merges,
            expected_counts=run.expected_counts,
            weighted=weights is not None,
        )
        if check is not None and not check.reliable:
            warnings.warn(
                _approximation_advice(check, self),
                ApproximationWarning,
                skip_file_prefixes=(_PACKAGE_DIR,),
            )
        return self

    def _set_fitted(
        self,
        posterior: _Posterior,
        center: np.ndarray,
        data: Any,
        names: list[str] | None,
        n_samples: int | None = None,
        *,
        importance: ImportanceCheck | None,
        pool_seed: int | None = None,
        elbo: float,
        trace: Any,
        converged: bool,
        n_iter: int,
        n_merges: int,
        expected_counts: Any,
        weighted: bool = False,
    ) -> None:
        """Compute the summaries, then set every fitted attribute in one block.

        ``data`` is the training data: a NumPy array, a reference to the Dask
        array, or None for a model loaded from a fit on Dask data. ``importance``
        is the approximation check when it has been made; otherwise ``pool_seed``
        seeds the check that :meth:`_approximation_check` makes when first
        needed (both None only for a model saved before the check existed).
        """
        weights, means, covariances, concentration = posterior.summary()
        means = means + center
        params = GaussianMixtureParams(weights, means, covariances, posterior.prior.covariance_type)
        counts = np.asarray(expected_counts, dtype=float)
        self._posterior = posterior
        self._center = center
        self._X_train = data
        self._weighted = bool(weighted)
        self.n_features_in_ = int(center.shape[0])
        self.n_samples_ = int(data.shape[0]) if n_samples is None else int(n_samples)
        self._set_feature_names(names)
        self.elbo_ = float(elbo)
        self.elbo_trace_ = np.asarray(trace, dtype=float)
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.n_merges_ = int(n_merges)
        self.expected_counts_ = counts
        self.weights_ = weights
        self.means_ = means
        self.covariances_ = covariances
        self.concentration_ = concentration
        self.effective_n_components_ = int(np.sum(counts >= 1.0))
        self.params_ = params
        self._importance = importance
        self._pool_seed = None if importance is not None else pool_seed

    # ------------------------------------------------ checking the approximation
    @property
    def pareto_k_(self) -> float:
        """Pareto k of the importance ratios ``p / q`` (see the class notes); NaN if unknown.

        Computed on first access (or first interval), which may issue the
        :class:`ApproximationWarning`.
        """
        check = self._approximation_check()
        return float("nan") if check is None else check.pareto_k

    @property
    def interval_method_(self) -> str:
        """``"VI+PSIS"`` or ``"VI"``: how the draws behind every interval are made."""
        check = self._approximation_check()
        return "VI" if check is None else check.interval_method

    def _approximation_check(self) -> ImportanceCheck | None:
        """Return the check of the approximation, making it (and warning) the first time.

        None when it cannot be made: a model saved before the check existed, or
        loaded from a fit on a Dask array whose check was not made before saving.
        """
        check_fitted(self)
        if self._importance is None and self._pool_seed is not None:
            if self._X_train is None:
                return None
            check = _vi_diagnostics.check_approximation(
                self._posterior, self._X_train, self._center, self._pool_seed
            )
            self._importance, self._pool_seed = check, None
            if not check.reliable:
                warnings.warn(
                    _approximation_advice(check, self),
                    ApproximationWarning,
                    skip_file_prefixes=(_PACKAGE_DIR,),
                )
        return self._importance

    # ------------------------------------------------------------- prediction
    def _for_workers(self) -> DPGaussianMixture:
        """Return a shallow copy without the training data, so Dask tasks do not ship it."""
        light = copy.copy(self)
        light._X_train = None
        light._importance = None  # the pool's weights serve intervals, not predictions
        light._pool_seed = None
        return light

    def _n_membership_columns(self) -> int:
        return int(self.weights_.size)

    def _weighted_predictive(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k N(x | mu_k, Sigma_k)]`` per row and component, shape (n, T)."""
        return self._posterior.weighted_log_predictive(X - self._center)

    def _observed_log_joint(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k] + log p(x_io | k)`` of rows with NaN under the posterior predictive.

        The marginal over the observed coordinates of each component's
        predictive (the Student-t under CAVI, the Monte Carlo mixture of
        Gaussians under ADVI), so that a row's prediction does not depend on
        whether an entry is missing or was never part of the model.
        """
        return self._posterior.weighted_log_predictive_observed(X - self._center)

    def _predictive_conditional_mean(self, X: Any) -> Any:
        """Fill the missing entries of ``X`` with their conditional mean under the predictive.

        ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]`` with ``p(k | x_o)`` the
        membership under the posterior predictive on the observed coordinates
        (as :meth:`predict_proba`) and ``E[x_m | x_o, k] = mu_km + Sigma_kmo
        Sigma_koo^{-1} (x_o - mu_ko)`` with the posterior means ``means_`` and
        ``covariances_``. Under CAVI this is the exact conditional mean of the
        predictive: a component's Student-t has the conditional mean of the
        Gaussian with its scale matrix, which is proportional to ``E[Sigma_k]``.
        Observed entries are returned unchanged. A single best guess in squared
        error, not a draw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with ``NaN`` for missing entries; no row may be entirely ``NaN``.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or pandas.DataFrame
            A new array, or a DataFrame with ``X``'s index and columns when ``X``
            is one.
        """
        data = self._check_X(X, allow_nan=True)
        filled = data.copy()
        covariances = self.params_.full_covariances()
        patterns = missingness_patterns(data)
        for observed, index in zip(patterns.observed, patterns.rows, strict=True):
            if observed.all():
                continue
            rows = data[index]
            membership = self._predict_proba_incomplete(rows)
            means, _ = conditional_moments(rows, observed, self.means_, covariances)
            filled[np.ix_(index, np.flatnonzero(~observed))] = np.einsum(
                "nk,knm->nm", membership, means
            )
        if hasattr(X, "columns") and hasattr(X, "index") and hasattr(X, "to_numpy"):
            return type(X)(filled, index=X.index, columns=X.columns)
        return filled

    def _score_samples_array(self, X: np.ndarray) -> np.ndarray:
        """Log posterior predictive density of every row.

        ``log p(x | training data) = log sum_k E_q[pi_k] St(x | k)``, a mixture of
        multivariate Student-t densities (the Gaussian integrated over q(mu, Lambda)).
        """
        return logsumexp(self._weighted_predictive(X), axis=1)

    def _predict_proba_array(self, X: np.ndarray) -> np.ndarray:
        """Return the membership ``E[pi_k] St_k(x) / sum_j E[pi_j] St_j(x)`` of every row."""
        return _normalised(self._weighted_predictive(X))

    def predict_proba(
        self,
        X: Any,
        *,
        ci_prob: float | None = None,
        ci_kind: str = "eti",
        hdi_prob: Any = _UNSET,
    ) -> Any:
        """Membership probabilities of every row, optionally with credible intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        ci_prob : float in (0, 1), optional
            ``None`` returns the (n, T) membership probabilities under the
            posterior predictive, ``E[pi_k] St_k(x) / sum_j E[pi_j] St_j(x)``. A
            probability returns an ``xarray.Dataset`` with variables ``mean``,
            ``median``, ``lower`` and ``upper`` (dims ``obs_id``, ``component``)
            of ``p(z = k | x, theta)`` over :meth:`membership_draws` (200 draws,
            fixed seed 0, made as ``interval_method_`` says); the interval
            contains the median, the point to report with it.
        ci_kind : {"eti", "hdi"}, default "eti"
            Equal-tailed or highest-density interval (``"hdi"`` needs
            ``ci_prob > 0.5``).
        hdi_prob : float, optional
            Deprecated alias of ``ci_prob`` (it always gave an equal-tailed interval).

        Returns
        -------
        ndarray of shape (n_samples, T) or xarray.Dataset
            A lazy Dask array when ``X`` is a Dask array and ``ci_prob`` is None.
            The Dataset's attrs hold ``ci_prob``, ``ci_kind`` and ``interval_method``.
        """
        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, hdi_prob, default=None)
        if ci_prob is None:
            return super().predict_proba(X)
        data = self._check_X(X)
        draws = self.membership_draws(data, random_state=0)
        median, lower, upper = credible_interval(draws, ci_prob, ci_kind, axis=0)
        result = membership_intervals(draws.mean(axis=0), median, lower, upper, ci_prob, ci_kind)
        return result.assign_attrs(interval_method=self.interval_method_)

    def _parameter_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """200 draws from the variational posterior (seed 0), in the data's units."""
        draws = self._posterior.draws(_DEFAULT_MEMBERSHIP_DRAWS, check_random_state(0))
        return np.exp(draws.log_weights), draws.means + self._center, draws.full_covariances()

    def impute(
        self,
        X: Any,
        ci_prob: float | None = None,
        *,
        ci_kind: str = "eti",
        return_draws: bool = False,
        random_state: Any = 0,
    ) -> Any:
        """Fill the missing entries (NaN) of ``X``, optionally with credible intervals.

        Without ``ci_prob`` and ``return_draws``, the conditional mean under the
        posterior predictive: ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]``
        with ``p(k | x_o)`` the membership under the predictive on the observed
        coordinates (as :meth:`predict_proba`) and each component's Gaussian
        regression with the posterior means ``means_`` and ``covariances_`` (under
        CAVI the exact conditional mean of the Student-t predictive, whose scale
        matrix is proportional to ``E[Sigma_k]``). Otherwise, as
        :meth:`MarginalGaussianMixture.impute`, over 200 draws of the variational
        posterior made as ``interval_method_`` says: for each draw, a component
        from ``p(k | x_o, theta)`` and the missing coordinates from its
        conditional Gaussian; ``ci_prob`` gives an ``xarray.Dataset`` with
        ``imputed`` (their median), ``lower``, ``upper``, ``mean`` (the
        conditional mean averaged over the draws) and ``missing``, and
        ``return_draws`` also returns the imputations, (200, n_samples,
        n_features).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; every row needs an observed value.
        ci_prob : float in (0, 1), optional
        ci_kind : {"eti", "hdi"}, default "eti"
        return_draws : bool, default False
        random_state : None, int or numpy.random.Generator, default 0
            Seeds the parameter draws and the imputations.

        Returns
        -------
        ndarray of shape (n_samples, n_features) or xarray.Dataset
            With ``return_draws``, a tuple of it and the imputations.
        """
        from bayesgmm import _imputation

        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, default=None)
        if not isinstance(return_draws, (bool, np.bool_)):
            raise TypeError(message("return_draws", "a bool", return_draws))
        if ci_prob is None and not return_draws:
            return self._predictive_conditional_mean(X)
        rng = check_random_state(random_state)
        data = self._check_X(X, allow_nan=True)
        draws = self._interval_draws(_DEFAULT_MEMBERSHIP_DRAWS, rng)
        parameters = (
            np.exp(draws.log_weights),
            draws.means + self._center,
            draws.full_covariances(),
        )
        return _imputation.impute(
            data,
            parameters,
            ci_prob=ci_prob,
            ci_kind=ci_kind,
            return_draws=bool(return_draws),
            rng=rng,
            features=list(getattr(self, "feature_names_in_", range(data.shape[1]))),
            interval_method=self.interval_method_,
        )

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw from the posterior predictive distribution.

        With CAVI a component is drawn with probability ``E_q[pi_k]``, then a
        point from its Student-t predictive; with ADVI a stored draw of the
        parameters, a component from its weights, then a Gaussian point.

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
        X, labels = self._posterior.sample(n, rng)
        return X + self._center, labels

    # ------------------------------------------------------------ refinement
    def refine(
        self,
        X: Any,
        sample_weight: Any = None,
        *,
        n_components: int | str = "bic",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_state: Any = None,
        progressbar: bool = False,
        nuts_sampler_kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Sample a finite mixture by NUTS, started from this fit or from EM.

        The route to intervals that can be trusted when :attr:`pareto_k_` is
        above ArviZ's threshold (an :class:`ApproximationWarning` says so).
        The result is a :class:`~bayesgmm.MarginalGaussianMixture` with the
        same covariance type, fitted to ``X`` by NUTS with the compiled
        marginal likelihood: ``predict_proba(X, ci_prob=...)``,
        ``to_datatree()``, :func:`~bayesgmm.cluster_uncertainty` and the plots
        work on it as on this model, with ``interval_method_ == "NUTS"``.

        How many components it has is a choice the intervals are conditional
        on. The DP's occupied components (expected count of at least one
        training point, ``effective_n_components_`` of them) are one answer,
        but a variational DP can merge clusters that the data separate (its
        mean-field posterior cannot hold two clusters' worth of points in
        doubt) or keep a spare one, and no Pareto k of its own posterior can
        see that. So by default (``n_components="bic"``) the number K is chosen
        by BIC among the DP's count K_DP and its neighbours K_DP - 1 to
        K_DP + 2 (at least 1), each fitted by EM (:class:`~bayesgmm.EMGaussianMixture`;
        the fit with K_DP starts from the DP's occupied components, the others
        from EM's own starts). Every chain starts from the DP's occupied
        components (their posterior mean weights, renormalised, means and
        covariances) when BIC keeps K_DP, and from the EM fit otherwise, in
        which case a ``UserWarning`` says that the DP's count was not kept.

        It samples a different model: a finite mixture with the marginal
        model's priors (:data:`bayesgmm.marginal.DEFAULT_PRIORS`, in
        standardised units), not the Dirichlet process. With the data pinning
        the components down, their posteriors agree; the DP's mass on extra
        tiny components is left out.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training data (or other data of the same features).
        n_components : "bic", "dp" or int, default "bic"
            ``"bic"``: as above. ``"dp"``: the DP's occupied components, started
            from this fit (conditioning on the DP's K). An int: that many
            components, started from this fit when it equals the DP's count,
            else from an EM fit.
        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights of the rows, as in
            :meth:`bayesgmm.MarginalGaussianMixture.fit` (a weighted fit is
            refined on the same weights).
        draws, tune, chains : int
            As in :meth:`bayesgmm.MarginalGaussianMixture.fit`.
        random_state : None, int or numpy.random.Generator
            Seeds the EM fits and NUTS.
        progressbar : bool, default False
        nuts_sampler_kwargs : dict, optional
            As in :meth:`bayesgmm.MarginalGaussianMixture.fit`.

        Returns
        -------
        MarginalGaussianMixture
            A new fitted model; this one is not changed.

        Warns
        -----
        UserWarning
            When the number of components sampled differs from the DP's.
        bayesgmm.marginal.SamplingWarning
            When NUTS reports divergences, chains in different modes, R-hat
            above 1.01 or a low ESS.
        """
        check_fitted(self)
        from bayesgmm.marginal import MarginalGaussianMixture

        data = self._check_X(X)
        rng = check_random_state(random_state)
        start = self._refine_start(data, n_components, rng)
        k_dp = self._occupied_components().size
        if start.n_components != k_dp:
            warnings.warn(
                f"refine: sampling {start.n_components} components, not the DP's {k_dp} "
                f"occupied ones ({_refine_reason(n_components)}); started from EM's fit. "
                "Pass n_components='dp' to condition on the DP's number of components",
                UserWarning,
                stacklevel=2,
            )
        model = MarginalGaussianMixture(start.n_components, covariance_type=start.covariance_type)
        return model.fit(
            data,
            sample_weight=sample_weight,
            draws=draws,
            tune=tune,
            chains=chains,
            random_state=rng,
            progressbar=progressbar,
            nuts_sampler_kwargs=nuts_sampler_kwargs,
            start=start,
        )

    def _occupied_components(self) -> np.ndarray:
        """Return the components with an expected count of at least one (else the largest)."""
        occupied = np.flatnonzero(self.expected_counts_ >= 1.0)
        if occupied.size == 0:
            occupied = np.array([int(np.argmax(self.expected_counts_))])
        return occupied

    def _refine_start(
        self, data: np.ndarray, n_components: Any, rng: np.random.Generator
    ) -> GaussianMixtureParams:
        """Return the mixture :meth:`refine` starts NUTS from; its size is the K it samples."""
        from bayesgmm.em import EMGaussianMixture

        occupied = self._occupied_components()
        kind = self._posterior.prior.covariance_type
        weights = self.weights_[occupied]
        from_dp = GaussianMixtureParams(
            weights / weights.sum(),
            self.means_[occupied],
            self.covariances_ if kind == "tied" else self.covariances_[occupied],
            kind,
        )
        k_dp = occupied.size
        candidates: list[int]
        if isinstance(n_components, str):
            choice = check_option(n_components, "n_components", ("bic", "dp"))
            if choice == "dp":
                return from_dp
            candidates = list(range(max(1, k_dp - 1), k_dp + 3))
        else:
            candidates = [check_int(n_components, "n_components", minimum=1)]
            if candidates[0] == k_dp:
                return from_dp
        fits: dict[int, EMGaussianMixture] = {}
        for k in candidates:
            em = EMGaussianMixture(
                k, covariance_type=kind, random_state=int(rng.integers(2**31 - 1))
            )
            if k == k_dp:
                em.set_params(
                    weights_init=from_dp.weights,
                    means_init=from_dp.means,
                    precisions_init=from_dp.precisions,
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # a poor K only loses on BIC
                fits[k] = em.fit(data)
        best = min(fits, key=lambda k: fits[k].bic(data))
        return from_dp if best == k_dp else fits[best].params_

    # ------------------------------------------------------ draws from q
    def membership_draws(
        self,
        X: Any,
        max_draws: int | None = None,
        random_state: Any = None,
        *,
        random_seed: Any = _UNSET,
    ) -> np.ndarray:
        """``p(z_i = k | x_i, theta_s)`` for draws ``theta_s`` from the variational posterior.

        Components are the variational factors, so their labels mean the same
        thing in every draw (no relabelling is needed).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        max_draws : int, optional
            Number of draws (default 200).
        random_state : None, int or numpy.random.Generator
        random_seed : None, int or numpy.random.Generator
            Deprecated alias of ``random_state``.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, T)
            In memory: a Dask ``X`` is computed first.
        """
        seed = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed"
        )
        data = self._check_X(X) - self._center
        n_draws = (
            _DEFAULT_MEMBERSHIP_DRAWS
            if max_draws is None
            else check_int(max_draws, "max_draws", minimum=1)
        )
        rng = check_random_state(seed, seed_argument_name(random_seed))
        draws = self._interval_draws(n_draws, rng)
        features = feature_map(data, self._posterior.prior.covariance_type)
        out = np.empty((n_draws, data.shape[0], self.weights_.size))
        for s in range(n_draws):
            out[s] = _normalised(draws.log_joint(features, s))
        return out

    def to_datatree(
        self, n_draws: int = 1000, random_state: Any = None, *, random_seed: Any = _UNSET
    ) -> Any:
        """Draws from the variational posterior as an ArviZ DataTree.

        The draws are made as ``interval_method_`` says: with ``"VI+PSIS"``
        they are taken from the checked pool of draws of q in proportion to
        their Pareto-smoothed importance weights (a sample of the exact
        posterior, with repeats); with ``"VI"``, fresh draws from q.

        Groups: ``posterior`` (``weights``, ``means``, ``covariances`` as full
        matrices, and ``concentration``; one chain), ``log_likelihood`` (``obs``:
        ``log sum_k pi_k N(x_i | mu_k, Sigma_k)`` per training point),
        ``observed_data`` (``obs``) and ``sample_stats`` with ``log_p`` (log joint
        density: log-likelihood plus log prior of the sticks, alpha and the
        component parameters), ``log_q`` (log density, same parametrisation, of
        the distribution the draw was taken from: q, or with ``"VI+PSIS"`` q
        reweighted, ``log q + log w_s`` with the smoothed weights scaled to
        mean one, so that ``log_p - log_q`` is constant but for the smoothed
        tail) and ``n_occupied`` (the number of components holding at least one
        training point when the allocations are drawn from ``p(z_i | x_i,
        theta_s)``). The root and the ``posterior`` group carry the attributes
        ``inference_method`` (``"cavi"`` or ``"advi"``), ``interval_method``
        (``"VI"`` or ``"VI+PSIS"``), ``pareto_k`` and ``good_k``
        (:attr:`pareto_k_` and ArviZ's threshold). So::

            from arviz_stats import loo_approximate_posterior
            tree = model.to_datatree()
            loo_approximate_posterior(tree, tree["sample_stats"]["log_p"],
                                      tree["sample_stats"]["log_q"])

        gives PSIS-LOO corrected for the approximation (not corrected twice
        for reweighted draws).

        Parameters
        ----------
        n_draws : int, default 1000
        random_state : None, int or numpy.random.Generator
        random_seed : None, int or numpy.random.Generator
            Deprecated alias of ``random_state``.

        Returns
        -------
        xarray.DataTree
        """
        seed = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed"
        )
        check_fitted(self)
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        rng = check_random_state(seed, seed_argument_name(random_seed))
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
        attrs = {
            "inference_method": self._posterior.method,
            "interval_method": self.interval_method_,
            "pareto_k": self.pareto_k_,
            "good_k": float("nan") if self._importance is None else self._importance.good_k,
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
            attrs=attrs,
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
                "/": xr.Dataset(attrs=attrs),
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
        if self._weighted:
            raise ValueError(
                f"{caller}: expected a model fitted without sample_weight, got a weighted "
                "fit (its rows are not exchangeable observations, so per-observation "
                "results would count each row once whatever its weight); refit without "
                "weights, with rows repeated by their integer weights if need be"
            )
        if data is None:
            raise ValueError(
                f"{caller}: expected a model that holds its training data, got one loaded "
                "from a fit on a Dask array (its data are not saved); refit, or fit a model "
                "on a subsample of rows for per-observation results"
            )
        if not is_dask_array(data) and np.isnan(data).any():
            raise ValueError(
                f"{caller}: expected a model fitted on complete rows, got one fitted on data "
                "with missing values (NaN), whose per-observation results are not computed; "
                "fit a model on the complete rows (or on imputed data) for them"
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

    def _interval_draws(self, n_draws: int, rng: np.random.Generator) -> _cavi.ParameterDraws:
        """Draw what every interval is computed from (see ``interval_method_``).

        ``"VI+PSIS"``: ``n_draws`` taken from the checked pool in proportion to
        its Pareto-smoothed importance weights (:func:`_vi_diagnostics.resample`),
        each draw's ``log_q`` replaced by the log density of the reweighted
        approximation, ``log q + log w_s`` (weights of mean one); ``"VI"``: fresh
        draws from q.
        """
        check = self._approximation_check()
        if check is None or not check.reliable:
            return self._posterior.draws(n_draws, rng)
        pool = self._posterior.draws(_vi_diagnostics.POOL_SIZE, np.random.default_rng(check.seed))
        picks = _vi_diagnostics.resample(check.log_weights, n_draws, rng)
        mean_one = check.log_weights + np.log(check.log_weights.size)
        draws = pool.take(picks)
        return dataclasses.replace(draws, log_q=draws.log_q + mean_one[picks])

    def _tree_arrays(
        self, training: np.ndarray, n_draws: int, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        draws = self._interval_draws(n_draws, rng)
        data = training - self._center
        n = data.shape[0]
        t = self.weights_.size
        loglik = np.empty((n_draws, n))
        n_occupied = np.empty(n_draws, dtype=np.int64)
        features = feature_map(data, draws.covariance_type)
        for s in range(n_draws):
            joint = draws.log_joint(features, s)
            total = logsumexp(joint, axis=1)
            loglik[s] = total
            cumulative = np.cumsum(np.exp(joint - total[:, None]), axis=1)
            u = rng.uniform(size=(n, 1)) * cumulative[:, -1:]
            labels = np.minimum((cumulative < u).sum(axis=1), t - 1)
            n_occupied[s] = np.unique(labels).size
        return {
            "weights": np.exp(draws.log_weights),
            "means": draws.means + self._center,
            "covariances": draws.full_covariances(),
            "alpha": draws.alpha,
            "loglik": loglik,
            "log_p": loglik.sum(axis=1) + draws.log_prior,
            "log_q": draws.log_q,
            "n_occupied": n_occupied,
        }

    def n_occupied_distribution(
        self, n_draws: int = 1000, random_state: Any = 0, *, random_seed: Any = _UNSET
    ) -> Any:
        """Posterior distribution of the number of occupied components.

        For each of ``n_draws`` posterior draws of the parameters (made as
        ``interval_method_`` says), the allocations
        of the training points are drawn from ``p(z_i | x_i, theta)`` and the
        components holding at least one point are counted. DP posteriors of
        this number are inconsistent (Miller and Harrison 2013); see the class notes.

        Parameters
        ----------
        n_draws : int, default 1000
        random_state : None, int or numpy.random.Generator, default 0
        random_seed : None, int or numpy.random.Generator
            Deprecated alias of ``random_state``.

        Returns
        -------
        pandas.Series
            Probability of every observed count, indexed by the count.
        """
        seed = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed", default=0
        )
        check_fitted(self)
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        rng = check_random_state(seed, seed_argument_name(random_seed))
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
        if is_dask_array(self._X_train):
            # the data of a Dask fit are not saved, so the check is made now or never
            self._approximation_check()
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
        prior = self._posterior.prior
        out: dict[str, Any] = {
            "class": type(self).__name__,
            "params": params,
            "covariance_type": prior.covariance_type,
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
            else _json_rows(np.asarray(self._X_train)),
            "n_samples": self.n_samples_,
            "weighted": bool(getattr(self, "_weighted", False)),
            "elbo": self.elbo_,
            "elbo_trace": self.elbo_trace_.tolist(),
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "n_merges": self.n_merges_,
            "expected_counts": self.expected_counts_.tolist(),
            "importance": None if self._importance is None else self._importance.to_dict(),
            "pool_seed": self._pool_seed,
            **self._posterior.to_dict(),
        }
        if hasattr(self, "feature_names_in_"):
            out["feature_names_in"] = [str(n) for n in self.feature_names_in_]
        return out

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> DPGaussianMixture:
        """Rebuild a fitted model from :meth:`_export_state`'s dict."""
        model = cls(**state["params"])
        p = state["prior"]
        prior = _cavi.ComponentPrior(
            state["covariance_type"],
            np.asarray(p["mean"], float),
            float(p["mean_precision"]),
            float(p["dof"]),
            np.asarray(p["scale"], float),
        )
        posterior_type = _dp_advi.ADVIPosterior if "draw_pool" in state else _cavi_fit.CAVIPosterior
        model._set_fitted(
            posterior_type.from_dict(state, prior),
            np.asarray(state["center"], float),
            None if state["X_train"] is None else np.asarray(state["X_train"], float),
            state.get("feature_names_in"),
            state.get("n_samples", None if state["X_train"] is None else len(state["X_train"])),
            importance=None
            if state.get("importance") is None
            else ImportanceCheck.from_dict(state["importance"]),
            pool_seed=state.get("pool_seed"),
            elbo=state["elbo"],
            trace=state["elbo_trace"],
            converged=state["converged"],
            n_iter=state["n_iter"],
            n_merges=state["n_merges"],
            expected_counts=state["expected_counts"],
            weighted=bool(state.get("weighted", False)),
        )
        return model


def _observed_moments(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and a positive semi-definite covariance of data with ``NaN`` entries.

    The means and variances are those of each column's observed entries; the
    correlations those of the data with each missing entry at its column's
    mean, so the matrix ``D C D`` (``C`` that covariance rescaled to unit
    diagonal) stays positive semi-definite. Only the default prior reads it.
    """
    center = np.nanmean(data, axis=0)
    filled = np.where(np.isnan(data), center, data) - center
    d = data.shape[1]
    cov = np.cov(filled, rowvar=False, bias=True).reshape(d, d)
    filled_sd = np.sqrt(np.diag(cov))
    observed_sd = np.sqrt(np.nanvar(data, axis=0))
    factor = np.divide(observed_sd, filled_sd, out=np.ones(d), where=filled_sd > 0)
    return center, cov * np.outer(factor, factor)


def _json_rows(data: np.ndarray) -> list[list[float | None]]:
    """Rows as lists for JSON, a missing entry (``NaN``) as ``null`` (read back as NaN)."""
    rows: list[list[float | None]] = data.tolist()
    if np.isnan(data).any():
        rows = [[None if value != value else value for value in row] for row in rows]
    return rows


# ------------------------------------------------------------ posteriors
class _Posterior(Protocol):
    """What the estimator asks of a fitted posterior, whichever method fitted it.

    Everything is in the frame centred on the training mean.
    """

    method: ClassVar[str]

    @property
    def prior(self) -> _cavi.ComponentPrior:
        """The component prior the posterior was fitted under."""
        ...

    def summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Posterior means of the weights, component means, covariances (layout) and alpha."""
        ...

    def weighted_log_predictive(self, X: np.ndarray) -> np.ndarray:
        """``log E_q[pi_k N(x_i | mu_k, Sigma_k)]`` per row and component, shape (n, T)."""
        ...

    def weighted_log_predictive_observed(self, X: np.ndarray) -> np.ndarray:
        """Return the same on each row's observed (non-NaN) coordinates, shape (n, T)."""
        ...

    def draws(self, n_draws: int, rng: np.random.Generator) -> _cavi.ParameterDraws:
        """``n_draws`` draws of every parameter from the posterior."""
        ...

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Points from the posterior predictive and their component labels."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state, read back by ``from_dict``."""
        ...


def _normalised(log_weights: np.ndarray) -> np.ndarray:
    """Scale the rows of ``exp(log_weights)`` to sum to one."""
    result: np.ndarray = np.exp(log_weights - logsumexp(log_weights, axis=1, keepdims=True))
    return result


# ------------------------------------------------------------------ helpers
def _approximation_advice(check: ImportanceCheck, model: DPGaussianMixture) -> str:
    """Write the ApproximationWarning's text: what is wrong and what to do."""
    occupied = model.effective_n_components_
    training = model._X_train
    if training is not None and not is_dask_array(training) and np.isnan(training).any():
        complete_rows = " on the rows without NaN (refine needs complete rows)"
    else:
        complete_rows = ""
    return (
        f"DPGaussianMixture: Pareto k {check.pareto_k:.2f} of the importance ratios "
        f"p / q exceeds {check.good_k:.2f}, ArviZ's threshold for {_vi_diagnostics.POOL_SIZE} "
        "draws (Yao et al. 2018): the variational posterior is too far from the exact one for "
        "importance sampling to correct it, and its intervals (to_datatree, "
        "predict_proba(X, ci_prob=...), cluster_uncertainty) are typically too narrow. The "
        "point estimates (params_, predict) are not affected. For intervals to trust, "
        "call refine(X): NUTS on a finite mixture whose number of components BIC chooses "
        f"around the {occupied} occupied here, started from this fit when BIC keeps it"
        f"{complete_rows}"
    )


def _refine_reason(n_components: Any) -> str:
    """Say why :meth:`DPGaussianMixture.refine` did not keep the DP's number of components."""
    if isinstance(n_components, str):
        return "BIC of EM fits with the DP's count and its neighbours prefers it"
    return f"n_components={n_components}"


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
