"""Classical maximum-likelihood Gaussian mixture fitted by EM: :class:`EMGaussianMixture`.

A drop-in replacement for :class:`sklearn.mixture.GaussianMixture` with the same
parameters, fitted attributes and iteration semantics, built on the shared maths
in :mod:`bayesgmm._gaussian`:

* the E-step is one pass over the data that accumulates the sufficient
  statistics ``N_k``, ``sum_i r_ik x_i`` and ``sum_i r_ik x_i x_i'``
  (:func:`bayesgmm._gaussian.e_step_statistics`), evaluating all components at
  once as a matrix product on the feature map ``phi(x)`` chunk by chunk;
* the M-step is a pure function of those statistics (:func:`m_step`);
* the loop and the starting values live in :mod:`bayesgmm._em_steps` and
  :mod:`bayesgmm._init`; this module only orchestrates them.

Because the E-step only *adds* per-chunk statistics, chunked or distributed data
map the same kernel over their chunks and sum the results.

References
----------
Dempster, A. P., Laird, N. M. and Rubin, D. B. (1977). Maximum likelihood from
incomplete data via the EM algorithm. JRSS B 39(1), 1-38.
doi:10.1111/j.2517-6161.1977.tb01600.x
Biernacki, C., Celeux, G. and Govaert, G. (2000). Assessing a mixture model for
clustering with the integrated completed likelihood. IEEE TPAMI 22(7), 719-725.
doi:10.1109/34.865189
Biernacki, C., Celeux, G. and Govaert, G. (2003). Choosing starting values for
the EM algorithm for getting the highest likelihood in multivariate Gaussian
mixture models. Computational Statistics & Data Analysis 41(3-4), 561-575.
doi:10.1016/S0167-9473(02)00163-9
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm import _em_steps
from bayesgmm._base import MixtureBase
from bayesgmm._bootstrap import (
    BOOTSTRAP_METHODS,
    BootstrapWarning,
    bootstrap_tree,
    replicate_warning,
)
from bayesgmm._bootstrap import membership_draws as bootstrap_membership_draws
from bayesgmm._chunks import (
    check_dask_array,
    column_means,
    is_dask_array,
    sample_rows_with_weights,
)
from bayesgmm._em_steps import (
    STOPPING_RULES,
    DaskRows,
    EMState,
    LabelledRows,
    MissingRows,
    Pool,
    compute_pool,
    m_step,
    regularisation,
    state_from_responsibilities,
)
from bayesgmm._gaussian import (
    EM_COVARIANCE_TYPES,
    LAYOUTS,
    MCLUST_ALIASES,
    DegenerateCovarianceError,
    log_gaussian_prob,
    log_mixture_density,
    min_points,
)
from bayesgmm._init import (
    INIT_PARAMS,
    SHORT_EM_MAX_SAMPLES,
    GivenParameters,
    Partition,
    initial_states,
)
from bayesgmm._intervals import check_ci, credible_interval, membership_intervals
from bayesgmm._mclust_models import PRIOR_MODELS, ConjugatePrior, ResolvedPrior, resolve_prior
from bayesgmm._noise import (
    NOISE_PARAMETERS,
    log_hypervolume,
    log_noise_mixture,
    nearest_neighbour_noise,
)
from bayesgmm._validation import (
    check_array,
    check_dask_sample_weight,
    check_fitted,
    check_float,
    check_int,
    check_missing,
    check_n_features,
    check_option,
    check_random_state,
    check_sample_weight,
    check_shape,
    message,
    sklearn_compatible,
)
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from bayesgmm._reports import MixtureSummary

__all__ = [
    "BootstrapWarning",
    "ConjugatePrior",
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "EMGaussianMixture",
    "m_step",
]

REG_COVAR_SCALES = ("variance", "absolute")
ICL_KINDS = ("map", "entropy")

# A component's own scatter below this fraction of the data's variance (in the
# direction where it is smallest, features standardised) marks it degenerate.
_DEGENERATE_RELATIVE_VARIANCE = 1e-6
# reg_covar above this share of a feature's variance dominates the covariances: warn.
_REG_COVAR_SHARE = 1e-3
# Logs of the smallest normal and the largest float: a hypervolume outside is refused.
_LOG_FLOAT_RANGE = (float(np.log(np.finfo(float).tiny)), float(np.log(np.finfo(float).max)))
# Most iterations of the constrained k-means that starts a semi-supervised fit.
_SEEDED_KMEANS_MAX_ITER = 100


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before its stopping rule (``stopping``, ``tol``) was met."""


class DegenerateComponentWarning(UserWarning):
    """A fitted component collapsed onto too few points or onto a lower-dimensional set."""


# ----------------------------------------------------------------------- estimator


class EMGaussianMixture(MixtureBase):
    """Gaussian mixture fitted by maximum likelihood with EM; a drop-in for scikit-learn's.

    The density is ``p(x) = sum_k w_k N(x | mu_k, Sigma_k)``. Parameters,
    fitted attributes and iteration semantics are those of
    :class:`sklearn.mixture.GaussianMixture`, with three departures in the
    defaults, each with scikit-learn's behaviour one setting away: ``reg_covar``
    is relative to each feature's variance (``reg_covar_scale``), so the answer
    does not depend on the data's units; EM runs until it has converged to a
    relative precision (``stopping="aitken"``, ``tol=1e-6``, ``max_iter=1000``),
    as mclust's EM does; and the start is the better of a model-based
    hierarchical partition and multi-scale k-means (``init_params="auto"``).
    ``stopping="change", tol=1e-3, max_iter=100, init_params="kmeans",
    reg_covar_scale="absolute"`` is scikit-learn's behaviour. With
    ``reg_covar_scale="absolute"``, ``stopping="change"``, the same initial weights, means and
    precisions and the same number of iterations, the fitted log-likelihood,
    BIC, AIC and responsibilities agree with scikit-learn's to about 1e-8
    relative. The E-step evaluates every component at once as one
    matrix product per chunk on the feature map of the data (see
    :mod:`bayesgmm._gaussian`), which is several times faster.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : str, default="full"
        ``full``: one general covariance per component; ``tied``: one shared by all;
        ``diag``: one diagonal per component; ``spherical``: one variance per component.
        Or one of mclust's fourteen eigen-decomposed models ``Sigma_k = lambda_k
        D_k A_k D_k'`` (Celeux and Govaert 1995), named by whether the volume,
        shape and orientation are Equal, Varying or the Identity: ``"EII"``,
        ``"VII"``, ``"EEI"``, ``"VEI"``, ``"EVI"``, ``"VVI"``, ``"EEE"``,
        ``"VEE"``, ``"EVE"``, ``"VVE"``, ``"EEV"``, ``"VEV"``, ``"EVV"``,
        ``"VVV"``; ``full``, ``tied``, ``diag`` and ``spherical`` are VVV, EEE,
        VVI and VII. ``covariances_`` holds them in the layout that stores them:
        (K,) for EII and VII, (K, d) for the diagonal models, (d, d) for EEE and
        (K, d, d) otherwise (see :mod:`bayesgmm._mclust_models`).
    tol : float, default=1e-6
        Convergence threshold of the stopping rule ``stopping``.
    stopping : {"aitken", "change", "relative"}, default="aitken"
        When EM stops.

        * ``"aitken"``: when, in total log-likelihood units ``L``, both the last
          change and the gain still to come (Aitken's estimate from the ratio
          ``r`` of the last two changes, ``change * r / (1 - r)``) are at most
          ``tol * (1 + |L|)``. The first half is mclust's relative rule
          (``emControl(tol = 1e-5)``, here ten times tighter: on 6809 rows
          mclust's threshold lets EM stop 1.6 log-likelihood units early); the
          second keeps EM going where it slows down, so a fit is not stopped
          short of its maximum (Böhning et al.
          1994, doi:10.1007/BF00773476; McNicholas et al. 2010,
          doi:10.1016/j.csda.2009.02.011).
        * ``"change"``: scikit-learn's rule, when the mean log-likelihood per
          sample changes by less than ``tol`` (scikit-learn's ``tol=1e-3``).
        * ``"relative"``: mclust's rule alone, when the last change of ``L`` is
          at most ``tol * (1 + |L|)``; with ``tol=1e-5`` (mclust's
          ``emControl()$tol[1]``), ``init_params="hc"`` and a negligible
          ``reg_covar`` it reproduces mclust's fits, including where mclust
          stops short of the maximum.
    reg_covar : float, default=1e-6
        Non-negative regularisation added to the diagonal of every covariance,
        keeping them positive definite; what it is relative to is set by
        ``reg_covar_scale``. The amount actually added is ``reg_covar_``. It
        moves the maximum of the likelihood off the unregularised one (mclust's)
        a little: by 0.3 log-likelihood units on mclust's ``wdbc`` under
        ``full`` with 5 components; ``reg_covar=1e-8`` removes that.
    reg_covar_scale : {"variance", "absolute"}, default="variance"
        The unit of ``reg_covar``.

        * ``"variance"``: the M-step adds ``reg_covar`` times each feature's
          variance to that feature's diagonal entry, ``reg_covar * var_j`` with
          ``var_j`` the variance of feature j in the training data (for
          ``spherical``, ``reg_covar`` times the mean of the features' variances).
          The regularisation then changes with the units like the covariances
          themselves, so EM's updates commute with a change of units
          ``x -> a * x + b`` (``a`` a non-zero number, or one per feature for
          ``full``, ``tied`` and ``diag``): from corresponding starts, the fit on
          ``a * X + b`` is the fit on ``X`` in the new units, with the same
          labels, means ``a * mu + b``, covariances ``a_i a_j Sigma_ij`` and a
          log-likelihood per sample lower by ``sum_j log|a_j|``. The default
          ``"kmeans"`` start looks at standardised data too, so the same
          ``random_state`` gives corresponding fits (it also tries k-means on
          the raw scale, whose partitions change with one ``a`` per feature; the
          most likely candidate is kept). A feature that is constant (to working
          precision) has no variance of its own and gets ``reg_covar`` times the
          mean variance of the varying features; if no feature varies, the mean
          square of the data's feature means stands in for the variance
          (``reg_covar`` itself is used when that is zero or out of
          floating-point range).
        * ``"absolute"``: ``reg_covar`` itself, in the data's squared units, as in
          scikit-learn; use it for exact parity with
          :class:`sklearn.mixture.GaussianMixture`. On data with feature variances
          below 1000 times ``reg_covar`` (data in small units) it dominates the
          clusters' spread and can merge them, and ``fit`` warns.
    max_iter : int, default=1000
        EM iterations per initialisation (0 keeps the initial parameters).
    n_init : int, default=1
        Number of initialisations; the one with the best final lower bound is kept.
    init_params : {"auto", "hc", "kmeans", "k-means++", "random", "random_from_data"}, \
default="auto"
        How initial responsibilities are chosen when not all of ``weights_init``,
        ``means_init`` and ``precisions_init`` are given.

        * ``"auto"``: EM runs to convergence from the ``"hc"`` start and from
          the three most likely ``"kmeans"`` short-EM ends, and the end with the
          highest log-likelihood is kept (one without degenerate components
          before one with). With ``stopping="aitken"`` a run is given up when,
          after 20 iterations and converging (successive changes shrinking by a
          factor below 0.9), Aitken's estimate of its limit is more than one
          log-likelihood unit below the best end so far. Further initialisations
          (``n_init``) add k-means starts.
        * ``"hc"``: the partition into ``n_components`` groups of a model-based
          hierarchical agglomeration (Fraley 1998,
          doi:10.1137/S1064827596311451, as mclust: the unconstrained Gaussian
          model's classification likelihood, on the scaled SVD of the data, on a
          random subset of 2000 rows when there are more; see
          :mod:`bayesgmm._hc`); the M-step on it gives the start.

        * ``"kmeans"`` (departs from scikit-learn's single k-means run): k-means
          (greedy k-means++ seeding, then Lloyd) is run from three seedings on each
          of three scales of the data: features standardised to unit variance (so
          units do not drive the clustering), the raw scale (scikit-learn's), and
          whitened. Every distinct partition starts a *short EM* of at most 10
          iterations (stopped once the mean log-likelihood changes by less than
          0.01), and the long EM continues from the candidate with the highest
          log-likelihood ("short-EM" of Biernacki, Celeux and Govaert 2003). On data
          with more than 20,000 samples, k-means and the short EM use a random
          subsample of 20,000. If any of the ``*_init`` arrays is given, no short EM
          runs: the lowest-inertia standardised k-means partition supplies the
          parameters that are not given.
        * ``"k-means++"``: responsibilities one-hot at k-means++ seeds (raw scale).
        * ``"random"``: uniform random responsibilities, normalised per sample.
        * ``"random_from_data"``: one-hot at ``n_components`` distinct random samples.
    weights_init : array-like of shape (n_components,), optional
        Initial weights (non-negative, summing to one).
    means_init : array-like of shape (n_components, n_features), optional
        Initial means.
    precisions_init : array-like, optional
        Initial precisions (inverse covariances) in the layout of ``covariance_type``:
        (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    random_state : None, int or numpy.random.Generator, optional
        Seed for the initialisation.
    warm_start : bool, default=False
        If true and the model is fitted (with the same ``n_components`` and
        ``covariance_type``), ``fit`` continues from the last solution (one
        initialisation, ``n_init`` ignored).
    verbose : int, default=0
        1 prints each initialisation's result, 2 also every ``verbose_interval``-th
        iteration.
    verbose_interval : int, default=10
        Iterations between messages when ``verbose=2``.
    prior : None, "default" or ConjugatePrior, default=None
        None: maximum likelihood. Otherwise EM finds the posterior mode (MAP)
        under mclust's conjugate prior on the means and covariances (Fraley and
        Raftery 2007, doi:10.1007/s00357-007-0004-5): ``"default"`` is mclust's
        ``priorControl()`` (shrinkage 0.01 towards the data mean, ``d + 2``
        degrees of freedom, scale ``var(X) / K^(2/d)``), and a
        :class:`ConjugatePrior` sets any of these. mclust defines it for EII,
        VII, EEI, VEI, EVI, VVI, EEE, EEV, VEV and VVV (and their aliases); the
        other models refuse it. The weights get no prior. ``bic``, ``aic`` and
        ``icl`` are then computed at the MAP estimate, as mclust does;
        ``reg_covar`` is still added (``reg_covar=0`` gives mclust's estimates).
    noise : bool, default=False
        Add mclust's noise component for outliers (Banfield and Raftery 1993,
        doi:10.2307/2532201; Fraley and Raftery 1998,
        doi:10.1093/comjnl/41.8.578): a uniform density ``1 / V`` over a
        region of volume ``V`` that holds the data, with its own weight ``w_0``,
        so the density is ``sum_k w_k N(x | mu_k, Sigma_k) + w_0 / V`` with
        ``w_0 + sum_k w_k = 1``. EM's E-step gives every row a noise
        responsibility besides the Gaussian ones; the Gaussians' M-step reads
        their own responsibilities only, and ``w_0`` becomes the mean noise
        responsibility. ``n_components`` still counts the Gaussians.
        :meth:`predict` labels a point whose most probable component is the
        noise ``-1``, :meth:`predict_proba` has the noise probability as its
        last column (as mclust's ``z``), and :meth:`bic`, :meth:`aic` and
        :meth:`icl` count two more free parameters, ``w_0`` and ``V``, as
        mclust's ``nMclustParams(noise = TRUE)`` does (``V`` is estimated from
        the data), so the criteria equal mclust's.
        Not available with ``labels``, Dask arrays or :meth:`bootstrap`.
    noise_init : array-like of bool, shape (n_samples,), optional
        With ``noise=True``: the rows that start in the noise (True), like
        mclust's ``Mclust(initialization = list(noise = ...))``. By default they
        are found by nearest-neighbour cleaning (Byers and Raftery 1998,
        doi:10.1080/01621459.1998.10474103; prabclus' ``NNclean`` with k = 5,
        on the standardised features: the 5th-nearest-neighbour distances are
        split into a dense and a sparse Poisson intensity and a row is noise
        when the sparse one is the more probable). EM's start for the
        Gaussians (``init_params``) is computed on the other rows, and ``w_0``
        starts at the share of the noise rows (at least ``1 / n_samples``).
    hypervolume : float, optional
        With ``noise=True``: the volume ``V`` of the noise's region, in the
        data's units (product of the features' units). Default: mclust's
        ``hypvol``, the smaller of the volume of the box bounded by each
        feature's range and that of the box bounded by the ranges of the
        principal-component scores.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        In the layout of ``covariance_type``.
    precisions_ : ndarray
        Inverse covariances, same layout.
    precisions_cholesky_ : ndarray
        Cholesky factors ``P`` of the precisions (``Lambda = P P'``).
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation (the short EM of ``"kmeans"``
        initialisation is not counted).
    lower_bound_ : float
        Mean log-likelihood of the parameters before the last M-step (scikit-learn's
        meaning).
    log_likelihood_trace_ : ndarray
        Mean log-likelihood at every iteration of the best initialisation; never
        decreases (EM's monotonicity).
    lower_bounds_ : ndarray
        The same values under scikit-learn's name (``GaussianMixture.lower_bounds_``).
    n_features_in_ : int
    reg_covar_ : ndarray of shape (n_features,)
        What the M-step added to each feature's diagonal entry, in the data's
        squared units: ``reg_covar * var_j`` with ``reg_covar_scale="variance"``
        (the same mean-variance amount for every feature with ``spherical``),
        ``reg_covar`` for every feature with ``"absolute"``.
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    params_ : GaussianMixtureParams
        The fitted mixture; with ``noise=True`` its Gaussian part, the weights
        ``weights_ / (1 - noise_weight_)`` (given that a point is not noise).
    noise_weight_ : float
        Weight ``w_0`` of the noise component (mclust's last ``pro``); 0.0
        without ``noise``. ``weights_.sum() + noise_weight_ == 1``.
    hypervolume_ : float or None
        Volume ``V`` of the noise's region (mclust's ``hypvol``); None
        without ``noise``.
    degenerate_components_ : ndarray of int
        Components judged degenerate (see Notes); empty if none.

    Notes
    -----
    *Degenerate components.* After fitting, component k is flagged when it has
    fewer effective points ``N_k = n w_k`` than needed to estimate its own
    covariance (d + 1 for ``full``, 2 for ``diag`` and ``spherical``, 1 for
    ``tied``), or when its own scatter, the covariance minus ``reg_covar_``, has a
    variance below 1e-6 times the data's variance in some direction (measured
    with features standardised to unit variance; for ``full``/``tied`` the
    smallest eigenvalue). Such a component sits on a few (near-)duplicate
    points or a lower-dimensional set, and its likelihood is inflated without
    bound; a :class:`DegenerateComponentWarning` says what to do, and
    :meth:`bic`, :meth:`aic` and :meth:`icl` return ``+inf`` so that model
    selection never picks the fit. A covariance that stops being positive
    definite during EM raises :class:`~bayesgmm.DegenerateCovarianceError`.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    >>> gm = EMGaussianMixture(2, random_state=0).fit(X)
    >>> np.round(np.sort(gm.means_[:, 0]), 1)
    array([-3.1,  2.9])
    >>> gm.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist() in ([0, 1], [1, 0])
    True
    """

    _allow_nan = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-6,
        stopping: str = "aitken",
        reg_covar: float = 1e-6,
        reg_covar_scale: str = "variance",
        max_iter: int = 1000,
        n_init: int = 1,
        init_params: str = "auto",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        prior: Any = None,
        noise: bool = False,
        noise_init: Any = None,
        hypervolume: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.stopping = stopping
        self.reg_covar = reg_covar
        self.reg_covar_scale = reg_covar_scale
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.prior = prior
        self.noise = noise
        self.noise_init = noise_init
        self.hypervolume = hypervolume

    # -------------------------------------------------------------- validation
    def _validated(self) -> dict[str, Any]:
        """Check every constructor parameter; return the validated copies."""
        v: dict[str, Any] = {}
        v["n_components"] = check_int(self.n_components, "n_components", minimum=1)
        v["covariance_type"] = check_option(
            self.covariance_type, "covariance_type", EM_COVARIANCE_TYPES
        )
        v["tol"] = check_float(self.tol, "tol", minimum=0.0)
        v["stopping"] = check_option(self.stopping, "stopping", STOPPING_RULES)
        v["reg_covar"] = check_float(self.reg_covar, "reg_covar", minimum=0.0)
        v["reg_covar_scale"] = check_option(
            self.reg_covar_scale, "reg_covar_scale", REG_COVAR_SCALES
        )
        v["max_iter"] = check_int(self.max_iter, "max_iter", minimum=0)
        v["n_init"] = check_int(self.n_init, "n_init", minimum=1)
        v["init_params"] = check_option(self.init_params, "init_params", INIT_PARAMS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(message("warm_start", "a bool", self.warm_start))
        v["verbose"] = check_int(self.verbose, "verbose", minimum=0)
        v["verbose_interval"] = check_int(self.verbose_interval, "verbose_interval", minimum=1)
        v["rng"] = check_random_state(self.random_state)
        v["prior"] = _check_prior(self.prior, v["covariance_type"])
        if not isinstance(self.noise, (bool, np.bool_)):
            raise TypeError(message("noise", "a bool", self.noise))
        v["noise"] = bool(self.noise)
        v["hypervolume"] = None
        if self.hypervolume is not None:
            v["hypervolume"] = check_float(
                self.hypervolume, "hypervolume", minimum=0.0, include_minimum=False
            )
        for name in ("noise_init", "hypervolume"):
            if getattr(self, name) is not None and not v["noise"]:
                raise ValueError(
                    message(
                        name,
                        "None when noise=False (it sets up the noise component)",
                        getattr(self, name),
                    )
                )
        return v

    def _validated_inits(
        self, n_components: int, n_features: int, covariance_type: str
    ) -> GivenParameters:
        k, d = n_components, n_features
        layout = LAYOUTS[covariance_type]
        shapes = {
            "weights_init": ((k,), f"for n_components={k}"),
            "means_init": ((k, d), f"for n_components={k} and {d} feature(s)"),
            "precisions_init": (
                layout.parameter_shape(k, d),
                f"for covariance_type={covariance_type!r}",
            ),
        }
        arrays: dict[str, np.ndarray | None] = {}
        for name, (shape, why) in shapes.items():
            value = getattr(self, name)
            if value is None:
                arrays[name] = None
                continue
            array = _float_array(value, name)
            check_shape(array, shape, name, why)
            if not np.isfinite(array).all():
                raise ValueError(message(name, "finite values", array))
            arrays[name] = array
        weights = arrays["weights_init"]
        if weights is not None:
            if not (weights >= 0).all():
                raise ValueError(message("weights_init", "finite non-negative values", weights))
            if abs(weights.sum() - 1.0) > 1e-6:
                raise ValueError(
                    message(
                        "weights_init", "values summing to 1", f"sum {weights.sum()!r}", raw=True
                    )
                )
            weights = weights / weights.sum()
        precisions = arrays["precisions_init"]
        chol = None
        if precisions is not None:  # its Cholesky factor also checks that it is definite
            chol = layout.cholesky_of_precisions(precisions, "precisions_init")
        return GivenParameters(weights, arrays["means_init"], chol)

    # -------------------------------------------------------------------- fit
    def fit(
        self, X: Any, y: Any = None, sample_weight: Any = None, *, labels: Any = None
    ) -> EMGaussianMixture:
        """Estimate the parameters with EM; semi-supervised when some rows' components are known.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; a pandas DataFrame keeps its column names in ``feature_names_in_``.
            ``NaN`` marks a missing entry, taken as missing at random: EM then
            maximises the observed-data likelihood, each row evaluated on its
            observed features and the M-step given the conditional expectations
            of the missing ones (Ghahramani and Jordan 1994; Little and Rubin
            2019, doi:10.1002/9781119482260; see :mod:`bayesgmm._missing`).
            The starting values (k-means, hierarchical, and mclust's prior
            defaults when ``prior`` is given) are computed from the data with
            each missing entry replaced by its column's mean. Rows or columns
            that are entirely ``NaN`` are refused, and so are ``labels`` and
            Dask arrays together with ``NaN``.
        y : ignored
            Accepted for scikit-learn compatibility (a pipeline passes its target
            to every step; it is not read as labels).
        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights ``w_i >= 0``, not all zero: row i counts as ``w_i``
            copies of itself. EM maximises ``sum_i w_i log p(x_i)``; integer
            weights give the fit to the data with each row repeated ``w_i``
            times (from the same start), and a zero weight the fit without the
            row. The E-step weights each row's responsibilities, so every
            covariance model and the prior follow. ``lower_bound_`` and
            ``log_likelihood_trace_`` are per unit of weight,
            ``sum_i w_i log p(x_i) / sum_i w_i``. The k-means starts are
            weighted; the hierarchical start is not used (``"auto"`` and
            ``"hc"`` take the k-means start). With a Dask ``X``, a Dask (or
            NumPy) array of shape (n_samples,), read block by block with X's rows.
        labels : array-like of shape (n_samples,), optional
            Semi-supervised fitting (mclust's ``MclustSSC``): the component of
            each row whose component is known, ``0 .. n_components - 1``, and -1
            for the rows whose component is unknown. In every E-step the
            responsibilities of a labelled row stay one-hot at its component
            (Dean, Murphy and Downey 2006,
            doi:10.1111/j.1467-9876.2006.00549.x), so EM maximises the
            log-likelihood of the unlabelled rows plus the complete-data
            log-likelihood of the labelled ones; ``log_likelihood_trace_`` and
            ``lower_bound_`` hold that objective per row. EM starts from the
            labelled rows' means (see :func:`_labelled_start`), so
            ``init_params`` and ``n_init`` are not used; given ``*_init`` arrays
            replace the corresponding starting values. With every row labelled
            this is the M-step of discriminant analysis (mclust's EDDA); with
            none, the ordinary fit. Not available for Dask arrays.

        Returns
        -------
        self
        """
        self._fit(X, labels, sample_weight=sample_weight)
        return self

    def fit_predict(
        self, X: Any, y: Any = None, sample_weight: Any = None, *, labels: Any = None
    ) -> np.ndarray:
        """Fit, then return the component of every sample.

        Equal to ``fit(X).predict(X)``; with ``labels``, the labelled rows keep
        their component and the others get their most probable one (mclust's
        ``MclustSSC`` classification).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        self._fit(X, labels, sample_weight=sample_weight)
        prediction = np.asarray(self.predict(X))
        if labels is not None:
            given = np.asarray(labels).astype(np.intp)
            prediction = np.where(given >= 0, given, prediction)
        return prediction

    def _fit(
        self,
        X: Any,
        labels: Any = None,
        partitions: list[Partition] | None = None,
        sample_weight: Any = None,
    ) -> None:
        """Validate, then run every initialisation and keep the best (see ``_fit_loop``).

        A Dask array is not read into memory: every EM iteration maps the E-step
        statistics over its row blocks and adds them (only K x d x d arrays leave
        the workers), while k-means and the short EM of the default start see a
        uniform sample of at most 20,000 rows. With the same initial parameters
        the fit equals the in-memory fit up to the order of floating-point sums.
        ``partitions`` (model selection's shared starts) replace the hierarchical
        partition of ``init_params="auto"`` or ``"hc"``.
        """
        v = self._validated()
        dask_input = is_dask_array(X)
        if dask_input:
            data, feature_names = check_dask_array(X), None
        else:
            data, feature_names = check_array(X, allow_nan=True)
        n, d = data.shape
        k, kind = v["n_components"], v["covariance_type"]
        if n < k:
            raise ValueError(
                message("X", f"at least n_components={k} samples", f"{n} sample(s)", raw=True)
            )
        incomplete = not dask_input and bool(np.isnan(data).any())
        if incomplete:
            check_missing(data, "X", columns=True)
        known = _check_labels(labels, n, k, dask_input)
        if incomplete and known is not None:
            raise ValueError(
                message(
                    "labels",
                    "None when X has missing values (semi-supervised fitting needs complete "
                    "rows; fit without labels, or drop or impute the rows with NaN)",
                    "labels",
                    raw=True,
                )
            )
        if dask_input:
            weights = check_dask_sample_weight(sample_weight, n, min_positive=k)
        else:
            weights = check_sample_weight(sample_weight, n, min_positive=k)
        if weights is not None and (incomplete or v["noise"]):
            raise ValueError(
                message(
                    "sample_weight",
                    "None when X has missing values or noise=True (weighted fits take "
                    "complete rows and no noise component)",
                    "weights",
                    raw=True,
                )
            )
        noise_rows = None
        if v["noise"]:
            noise_rows = _check_noise_init(
                self.noise_init, data, known, k, dask_input, incomplete=incomplete
            )
        inits = self._validated_inits(k, d, kind)
        continuing = (
            bool(self.warm_start)
            and hasattr(self, "params_")
            and self.params_.covariance_type == kind
            and self.params_.n_components == k
            and (getattr(self, "hypervolume_", None) is not None) == v["noise"]
        )
        if continuing:
            check_n_features(data, self.n_features_in_)
        rng = v["rng"]

        # Work in a centred frame: the expanded quadratic form loses precision
        # when the data sit far from the origin (see bayesgmm._gaussian).
        Xc: np.ndarray | DaskRows
        if dask_input:
            shift = column_means(data, weights)
            Xc = DaskRows(data, shift, weights)
            init_rows, init_weight = sample_rows_with_weights(
                data, SHORT_EM_MAX_SAMPLES, rng, weights
            )
            init_rows = init_rows - shift
            data_variance = Xc.variance()  # one chunked pass over the centred blocks
        elif incomplete:
            # k-means and hierarchical starts need complete rows: they see the data with
            # each missing entry replaced by its column's mean (0 once centred); EM then
            # maximises the observed-data likelihood (see MissingRows).
            shift = np.nanmean(data, axis=0)
            centred = data - shift
            init_rows = np.where(np.isnan(centred), 0.0, centred)
            init_weight = None
            Xc = init_rows
            data_variance = np.nanvar(data, axis=0)
        else:
            init_weight = weights
            if weights is None:
                shift = data.mean(axis=0)
            else:
                shift = weights @ data / weights.sum()
            init_rows = data - shift
            Xc = init_rows
            if weights is None:
                data_variance = init_rows.var(axis=0)
            else:
                data_variance = weights @ np.square(init_rows) / weights.sum()
        # What the M-step adds to the covariance diagonals, per feature, in data units.
        v["data_variance"] = data_variance
        v["reg"] = regularisation(v["reg_covar"], v["reg_covar_scale"], data_variance, shift, kind)
        v["resolved_prior"] = None
        if v["prior"] is not None:
            n_prior = n if weights is None else _em_steps.total_weight(Xc, weights)
            v["resolved_prior"] = _resolve_prior(v["prior"], kind, k, Xc, shift, n_prior, weights)
        v["log_volume"] = v["noise_start"] = None
        if noise_rows is not None:
            assert isinstance(Xc, np.ndarray)
            if v["hypervolume"] is None:
                v["log_volume"] = log_hypervolume(Xc)
                if not _LOG_FLOAT_RANGE[0] < v["log_volume"] < _LOG_FLOAT_RANGE[1]:
                    raise ValueError(
                        message(
                            "X",
                            "data whose hypervolume (for the noise component) a float holds",
                            f"exp({v['log_volume']:.4g}); rescale the features or give hypervolume",
                            raw=True,
                        )
                    )
            else:
                v["log_volume"] = float(np.log(v["hypervolume"]))
            v["noise_start"] = max(float(noise_rows.mean()), 1.0 / n)
            init_rows = Xc[~noise_rows]

        n_init = 1 if continuing else v["n_init"]
        rows: np.ndarray | DaskRows | LabelledRows | MissingRows = Xc
        if incomplete:
            rows = MissingRows.split(data - shift)
        v["sample_weight"], v["init_weight"] = None, init_weight
        if known is not None:
            assert isinstance(Xc, np.ndarray)
            if not continuing:
                inits = _labelled_start(Xc, shift, known, inits, k, kind, v["reg"], rng, weights)
            rows, n_init = LabelledRows.split(Xc, known, k, kind, weights), 1
        elif isinstance(Xc, np.ndarray):
            v["sample_weight"] = weights
        n_effective = n if weights is None else float(_em_steps.total_weight(rows, weights))
        with compute_pool(init_rows.shape[0], d, kind) as pool:
            best = self._fit_loop(
                rows, init_rows, shift, inits, v, rng, pool, n_init, continuing, partitions
            )
        self._finish_fit(best, shift, n_effective, d, kind, v, feature_names)

    def _finish_fit(
        self,
        best: EMState,
        shift: np.ndarray,
        n: float,
        d: int,
        kind: str,
        v: dict[str, Any],
        feature_names: list[str] | None,
    ) -> None:
        if not best.converged and v["max_iter"] > 0:
            warnings.warn(
                f"EM did not converge within max_iter={v['max_iter']} iterations (tol="
                f"{v['tol']:g}, stopping={v['stopping']!r}). Increase max_iter or tol, try "
                "n_init > 1, or scale the data.",
                sklearn_compatible(ConvergenceWarning),
                stacklevel=4,
            )
        self._set_fitted(best, shift, n, d, kind, v, feature_names)

    def _fit_loop(
        self,
        Xc: np.ndarray | DaskRows | LabelledRows | MissingRows,
        init_rows: np.ndarray,
        shift: np.ndarray,
        given: GivenParameters,
        v: dict[str, Any],
        rng: np.random.Generator,
        pool: Pool,
        n_init: int,
        continuing: bool,
        partitions: list[Partition] | None = None,
    ) -> EMState:
        """Run EM from every start; return the best end.

        ``init_rows`` are the centred rows the initialisation sees: all rows in
        memory, a sample of rows for Dask input. Each initialisation gives one
        start, or several with ``init_params="auto"`` (see
        :func:`bayesgmm._init.initial_states`). The best end is the one with
        the highest lower bound among those without degenerate components, or
        among all if every end has one. With ``stopping="aitken"``, a run that
        cannot reach the best end so far is given up.
        """
        best: EMState | None = None
        best_key: tuple[bool, float] | None = None
        error: DegenerateCovarianceError | None = None
        abandon = v["stopping"] == "aitken" and not continuing
        n = _em_steps.total_weight(Xc, v["sample_weight"])
        if v["init_weight"] is not None:
            partitions = []
        for init in range(n_init):
            if continuing:
                state = self._warm_state(shift)
                state.lower_bound = float(self.lower_bound_)
                states = [state]
            else:
                states = initial_states(
                    init_rows,
                    shift,
                    given,
                    n_components=v["n_components"],
                    covariance_type=v["covariance_type"],
                    init_params=v["init_params"],
                    reg=v["reg"],
                    rng=rng,
                    pool=pool,
                    partitions=partitions if init == 0 else [],
                    with_hc=init == 0,
                    prior=v["resolved_prior"],
                    sample_weight=v["init_weight"],
                )
                if v["noise_start"] is not None:
                    for state in states:
                        state.weights = state.weights * (1.0 - v["noise_start"])
                        state.noise_weight = v["noise_start"]
            for state in states:
                if v["max_iter"] == 0:
                    result = state
                    result.lower_bound = -np.inf
                else:
                    target = best.lower_bound if abandon and best is not None else None
                    try:
                        result = _em_steps.run_em(
                            Xc,
                            state,
                            covariance_type=v["covariance_type"],
                            reg_covar=v["reg"],
                            max_iter=v["max_iter"],
                            tol=v["tol"],
                            stopping=v["stopping"],
                            abandon_below=target,
                            verbose=v["verbose"],
                            verbose_interval=v["verbose_interval"],
                            pool=pool,
                            prior=v["resolved_prior"],
                            log_volume=v["log_volume"],
                            sample_weight=v["sample_weight"],
                        )
                    except DegenerateCovarianceError as exc:
                        if len(states) == 1 and n_init == 1:
                            raise
                        error = exc
                        continue
                if v["verbose"]:
                    status = "converged" if result.converged else "did not converge"
                    if result.abandoned:
                        status = "given up"
                    print(
                        f"Initialization {init}: {status} after {result.n_iter} iterations, "
                        f"lower bound {result.lower_bound:.6f}"
                    )
                key = (not self._has_degenerate(result, shift, n, v), result.lower_bound)
                if best_key is None or key > best_key or best_key[1] == -np.inf:
                    best, best_key = result, key
        if best is None:
            assert error is not None
            raise error
        return best

    def _has_degenerate(
        self, state: EMState, shift: np.ndarray, n: float, v: dict[str, Any]
    ) -> bool:
        """Whether an EM end has degenerate components (see the class Notes)."""
        if state.covariances is None:
            return False
        signal = 1.0 - (state.noise_weight or 0.0)
        params = GaussianMixtureParams(
            state.weights / signal, state.means + shift, state.covariances, v["covariance_type"]
        )
        return bool(_degenerate_components(params, n * signal, v["data_variance"], v["reg"]).size)

    def _warm_state(self, shift: np.ndarray) -> EMState:
        p = self.params_
        noise_weight = self.noise_weight_ if self.hypervolume_ is not None else None
        return EMState(
            self.weights_.copy(),
            p.means - shift,
            p.covariances.copy(),
            p.precisions_cholesky.copy(),
            noise_weight=noise_weight,
        )

    def _set_fitted(
        self,
        state: EMState,
        shift: np.ndarray,
        n: float,
        d: int,
        kind: str,
        v: dict[str, Any],
        feature_names: list[str] | None,
    ) -> None:
        covariances = state.covariances
        if covariances is None:  # max_iter=0 with precisions_init: invert the precisions
            covariances = LAYOUTS[kind].covariances_from_cholesky(state.precisions_cholesky)
        noise_weight = float(state.noise_weight or 0.0)
        signal = 1.0 - noise_weight
        params = GaussianMixtureParams(
            state.weights / signal, state.means + shift, covariances, kind
        )
        data_variance, reg = v["data_variance"], v["reg"]
        degenerate = _degenerate_components(params, n * signal, data_variance, reg)
        if v["reg_covar_scale"] == "absolute":
            _warn_if_reg_covar_dominates(data_variance, v["reg_covar"])
        # Everything is computed; now change the estimator's state.
        self.params_ = params
        self.weights_ = params.weights * signal if v["noise"] else params.weights.copy()
        self.noise_weight_ = noise_weight
        self.hypervolume_ = None
        if v["noise"]:
            given = v["hypervolume"]
            self.hypervolume_ = float(np.exp(v["log_volume"])) if given is None else given
        self.means_ = params.means.copy()
        self.covariances_ = params.covariances.copy()
        self.precisions_cholesky_ = state.precisions_cholesky.copy()
        self.precisions_ = LAYOUTS[kind].precisions_from_cholesky(self.precisions_cholesky_)
        self.converged_ = bool(state.converged)
        self.n_iter_ = int(state.n_iter)
        self.lower_bound_ = float(state.lower_bound)
        self.log_likelihood_trace_ = np.asarray(state.trace, dtype=float)
        self.lower_bounds_ = self.log_likelihood_trace_.copy()
        self.n_features_in_ = d
        self.reg_covar_ = reg.copy()
        self._set_feature_names(feature_names)
        self.degenerate_components_ = degenerate
        self.bootstrap_: xr.DataTree | None = None
        if degenerate.size:
            warnings.warn(
                f"Component(s) {degenerate.tolist()} are degenerate: they sit on fewer "
                "points than their covariance needs, or on (near-)duplicate points or a "
                "lower-dimensional set, and their likelihood is inflated. Reduce "
                "n_components, use a constrained covariance_type ('diag', 'tied'), "
                "increase reg_covar, or remove duplicated points; bic/aic/icl return inf "
                "for this fit.",
                DegenerateComponentWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------- prediction
    def _has_noise(self) -> bool:
        return getattr(self, "hypervolume_", None) is not None

    def _noise_log_responsibilities(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log density and log responsibilities, the noise's last, of a fit with noise."""
        p, volume = self.params_, self.hypervolume_
        assert volume is not None
        with np.errstate(divide="ignore"):
            weighted = log_gaussian_prob(
                X, p.means, p.precisions_cholesky, p.covariance_type
            ) + np.log(self.weights_)
            noise = float(np.log(self.noise_weight_) - np.log(volume))
        return log_noise_mixture(weighted, noise)

    def _score_samples_array(self, X: np.ndarray) -> np.ndarray:
        """``log sum_k w_k N(x_i | mu_k, Sigma_k)`` (plus ``w_0 / V`` with noise) for every row."""
        if self._has_noise():
            return self._noise_log_responsibilities(X)[0]
        return self.params_.score_samples(X)

    def _predict_proba_array(self, X: np.ndarray) -> np.ndarray:
        """Responsibilities ``p(z_i = k | x_i)`` under the fitted parameters (noise last)."""
        if self._has_noise():
            return np.exp(self._noise_log_responsibilities(X)[1])
        return self.params_.predict_proba(X)

    def _observed_log_joint(self, X: np.ndarray) -> np.ndarray:
        if self._has_noise():
            raise ValueError(
                message(
                    "X",
                    "complete rows for a fit with a noise component (its uniform density "
                    "is over the full feature space, so it has no marginal on the observed "
                    "features alone)",
                    f"{X.shape[0]} row(s) with NaN",
                    raw=True,
                )
            )
        return super()._observed_log_joint(X)

    def impute(self, X: Any) -> Any:
        """Fill the missing entries of ``X`` with their conditional mean under the fit.

        As :meth:`bayesgmm._base.MixtureBase.impute`; a fit with a noise component
        refuses, since its uniform density has no conditional mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with ``NaN`` for missing entries; no row may be entirely ``NaN``.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or pandas.DataFrame
        """
        self._refuse_noise("impute", "the uniform noise has no conditional mean")
        return super().impute(X)

    def _n_membership_columns(self) -> int:
        """Columns of ``predict_proba``: the Gaussians, and the noise when there is one."""
        return int(self.params_.n_components) + int(self._has_noise())

    def _condition_at_point(self, data: np.ndarray, positions: np.ndarray) -> Any:
        self._refuse_noise("condition", "the uniform noise has no conditional Gaussian")
        return super()._condition_at_point(data, positions)

    def _parameter_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Return the bootstrap replicates kept by ``bootstrap`` (its ``bootstrap`` group), if any.

        Covariances stored in the covariance type's layout are expanded to full
        matrices; replicates are relabelled to the fit when they are made.
        """
        tree = getattr(self, "bootstrap_", None)
        if tree is None:
            return None
        group = tree["bootstrap"]
        k, d = self.params_.n_components, self.params_.n_features
        # One row per replicate, over the (chain, draw) sample dims.
        weights = np.asarray(group["weights"].values, dtype=float).reshape(-1, k)
        means = np.asarray(group["means"].values, dtype=float).reshape(-1, k, d)
        covariances = np.asarray(group["covariances"].values, dtype=float)
        if covariances.shape[-3:] != (k, d, d):
            layout = LAYOUTS[self.params_.covariance_type]
            shape = layout.parameter_shape(k, d)
            flat = covariances.reshape((-1,) + shape)
            return weights, means, np.stack([layout.to_full(c, k, d) for c in flat])
        return weights, means, covariances.reshape(-1, k, d, d)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : None, int or numpy.random.Generator, optional

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Grouped by component, as scikit-learn returns them.
        labels : ndarray of shape (n_samples,)
        """
        check_fitted(self)
        self._refuse_noise("sample", "the noise's region is not kept, only its volume")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_state)
        return self.params_.sample(n_samples, rng)

    # ------------------------------------------------------- model selection
    def _n_parameters(self) -> int:
        """Count free parameters; with noise, ``w_0`` and ``V`` are two more, as in mclust."""
        return self.params_.n_parameters() + NOISE_PARAMETERS * int(self._has_noise())

    def bic(self, X: Any, sample_weight: Any = None) -> float:
        """Bayesian information criterion, ``-2 log L + p log n`` (lower is better).

        Returns ``+inf`` when the fit has degenerate components, so that model
        selection never picks it for its inflated likelihood. With
        ``sample_weight`` (frequency weights), ``log L = sum_i w_i log p(x_i)``
        and ``n = sum_i w_i``: the BIC of the data with row i repeated ``w_i``
        times, as mclust counts weighted observations.

        Returns
        -------
        float
        """
        data = self._check_X(X, allow_nan=True)
        return self._penalised(data, "bic", check_sample_weight(sample_weight, data.shape[0]))

    def aic(self, X: Any, sample_weight: Any = None) -> float:
        """Akaike information criterion, ``-2 log L + 2 p`` (lower is better).

        ``+inf`` when the fit has degenerate components, as for :meth:`bic`;
        ``sample_weight`` weights ``log L`` as there.

        Returns
        -------
        float
        """
        data = self._check_X(X, allow_nan=True)
        return self._penalised(data, "aic", check_sample_weight(sample_weight, data.shape[0]))

    def icl(self, X: Any, kind: str = "map", sample_weight: Any = None) -> float:
        """Integrated completed likelihood criterion (lower is better).

        ``kind="map"`` (default) is mclust's ICL (``R/icl.R``; Biernacki, Celeux
        and Govaert 2000): BIC plus the classification term of the completed
        likelihood at the maximum a posteriori labels,

            ICL = BIC - 2 sum_i log r_{i, map(i)},   map(i) = argmax_k r_ik,

        in the sign of :meth:`bic` (``-2 log L + p log n``); mclust reports
        ``-ICL``. ``kind="entropy"`` uses the soft classification entropy
        instead, ``ICL = BIC + 2 EN`` with ``EN = -sum_i sum_k r_ik log r_ik``
        (the form of Biernacki et al.'s equation 13 with ``r`` in place of the
        hard labels), which is never smaller than the ``map`` form
        (``-sum_k r_k log r_k >= -log max_k r_k``). Both are ``+inf`` when the
        fit has degenerate components, as for :meth:`bic`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        kind : {"map", "entropy"}, default "map"

        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights: every row's terms count ``w_i`` times and
            ``n = sum_i w_i`` (see :meth:`bic`).

        Returns
        -------
        float

        References
        ----------
        Biernacki, C., Celeux, G. and Govaert, G. (2000). Assessing a mixture
        model for clustering with the integrated completed likelihood. IEEE
        TPAMI 22(7), 719-725. doi:10.1109/34.865189
        """
        kind = check_option(kind, "kind", ICL_KINDS)
        data = self._check_X(X)
        weights = check_sample_weight(sample_weight, data.shape[0])
        return self._penalised(data, f"icl_{kind}", weights)

    def _penalised(
        self, X: np.ndarray, criterion: str, sample_weight: np.ndarray | None = None
    ) -> float:
        """``-2 log L`` plus the criterion's penalty, on checked data; ``+inf`` if degenerate.

        With frequency weights every per-row term counts ``w_i`` times and ``n = sum_i w_i``.
        """
        if self.degenerate_components_.size:
            return float("inf")
        w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        n = float(w.sum())
        scores = self._on_observed(X, "_score_samples_array")
        if sample_weight is None:
            value = -2.0 * float(scores.mean()) * n
        else:
            value = -2.0 * float(w @ scores)
        if criterion == "aic":
            return value + 2.0 * self._n_parameters()
        value += self._n_parameters() * np.log(n)
        if criterion == "icl_entropy":
            resp = self._predict_proba_array(X)
            with np.errstate(divide="ignore", invalid="ignore"):
                entropy = np.where(resp > 0, resp * np.log(resp), 0.0).sum(axis=1)
            value += -2.0 * float(w @ entropy)
        elif criterion == "icl_map" and self._has_noise():
            log_resp = self._noise_log_responsibilities(X)[1]
            value += -2.0 * float(w @ log_resp.max(axis=1))
        elif criterion == "icl_map":
            _, log_resp = log_mixture_density(
                X,
                self.params_.weights,
                self.params_.means,
                self.params_.precisions_cholesky,
                self.params_.covariance_type,
            )
            value += -2.0 * float(w @ log_resp.max(axis=1))
        return float(value)

    # -------------------------------------------------------------- bootstrap
    def bootstrap(
        self,
        X: Any,
        n_boot: int = 999,
        *,
        method: str = "nonparametric",
        random_state: Any = None,
        max_iter: int = 1000,
        tol: float = 1e-8,
    ) -> xr.DataTree:
        """Bootstrap the fitted parameters: standard errors and intervals for EM.

        mclust's ``MclustBootstrap`` (Fraley & Raftery; O'Hagan et al. 2019): every
        replicate runs EM from the fitted parameters on a resampled, reweighted
        or simulated version of ``X``, and its parameters are relabelled to the
        fit. The replicates run together, vectorised (see
        :mod:`bayesgmm._bootstrap`): 999 replicates of Old Faithful with three
        components take seconds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data the model was fitted to.
        n_boot : int, default 999
            Number of replicates (ignored by the jackknife, which has n).
        method : {"nonparametric", "weighted", "parametric", "jackknife"}
            mclust's ``bs``, ``wlbs``, ``pb`` and ``jk``. ``"nonparametric"``
            resamples the rows with replacement (Efron 1979); ``"weighted"`` is
            the weighted likelihood bootstrap (Newton & Raftery 1994,
            doi:10.1111/j.2517-6161.1994.tb01956.x), which maximises
            ``sum_i w_i log p(x_i | theta)`` with Dirichlet(1, ..., 1) weights and
            never leaves a component without points; ``"parametric"`` simulates
            n points from the fit; ``"jackknife"`` leaves out one row at a time
            (standard errors ``(S - 1) / sqrt(S)`` times the replicates' standard
            deviation, normal intervals: see :meth:`bootstrap_summary`).
        random_state : None, int or numpy.random.Generator
        max_iter : int, default 1000
            Most EM iterations per replicate.
        tol : float, default 1e-8
            A replicate stops when its log-likelihood changes by at most
            ``tol * |log L|`` (mclust's relative rule; mclust's default is 1e-5,
            tightened here because a replicate that stops early stays near the
            fit it started from and shrinks the standard errors).

        Returns
        -------
        xarray.DataTree
            Also kept as ``bootstrap_``. Root attributes: ``interval_method``
            (``"bootstrap"``), ``bootstrap_method``, ``n_replicates``, ``n_used``
            and the counts ``n_failed``, ``n_degenerate`` (both left out of the
            intervals) and ``n_not_converged`` (kept). Groups: ``bootstrap``
            (``weights``, ``means``, ``covariances`` with dims ``chain`` (length
            1), ``draw``, ``component``, ``feature``, ``feature_bis``: what
            ``arviz_stats.summary(tree, group="bootstrap")`` summarises),
            ``estimate`` (the fit) and ``replicates`` (every replicate's
            ``status``, ``n_iter``, ``converged`` and weighted
            ``log_likelihood``).

        Warns
        -----
        BootstrapWarning
            When replicates failed, degenerated or did not converge.

        Notes
        -----
        With a bootstrap kept, ``predict_proba(X, ci_prob=...)``,
        :func:`~bayesgmm.cluster_uncertainty` and
        :func:`~bayesgmm.plotting.plot_clusters` give intervals over the
        replicates (the jackknife's leave-one-out replicates are not draws of the
        sampling distribution: they are refused there). Refitting the model
        discards the bootstrap.

        References
        ----------
        Efron, B. (1979). Bootstrap methods: another look at the jackknife.
        Annals of Statistics 7(1), 1-26. doi:10.1214/aos/1176344552
        O'Hagan, A., Murphy, T. B., Scrucca, L. and Gormley, I. C. (2019).
        Investigation of parameter uncertainty in clustering using a Gaussian
        mixture model via jackknife, bootstrap and weighted likelihood bootstrap.
        Computational Statistics 34, 1779-1813. doi:10.1007/s00180-019-00897-9
        """
        check_fitted(self)
        self._refuse_noise("bootstrap", "its replicates have no noise component")
        data = self._check_X(X)
        n_boot = check_int(n_boot, "n_boot", minimum=2)
        method = check_option(method, "method", BOOTSTRAP_METHODS)
        max_iter = check_int(max_iter, "max_iter", minimum=1)
        tol = check_float(tol, "tol", minimum=0.0)
        rng = check_random_state(random_state)
        params, reg, n = self.params_, self.reg_covar_, data.shape[0]
        data_variance = (data - data.mean(axis=0)).var(axis=0)
        if hasattr(self, "feature_names_in_"):
            names = [str(f) for f in self.feature_names_in_]
        else:
            names = [f"x{j}" for j in range(self.n_features_in_)]
        tree = bootstrap_tree(
            params,
            data,
            reg_covar=reg,
            is_degenerate=lambda p: bool(_degenerate_components(p, n, data_variance, reg).size),
            n_boot=n_boot,
            method=method,
            rng=rng,
            max_iter=max_iter,
            tol=tol,
            feature_names=names,
        )
        self.bootstrap_ = tree
        text = replicate_warning(tree)
        if text is not None:
            warnings.warn(text, BootstrapWarning, stacklevel=2)
        return tree

    def bootstrap_summary(self, ci_prob: float = 0.9) -> pd.DataFrame:
        """Tabulate the standard errors and intervals of the parameters from :meth:`bootstrap`.

        See :func:`bayesgmm.bootstrap.bootstrap_summary`.

        Returns
        -------
        pandas.DataFrame
        """
        from bayesgmm.bootstrap import bootstrap_summary

        return bootstrap_summary(self._kept_bootstrap(), ci_prob=ci_prob)

    def _kept_bootstrap(self, *, draws: bool = False) -> xr.DataTree:
        check_fitted(self)
        tree = getattr(self, "bootstrap_", None)
        if tree is None:
            raise ValueError(
                "EMGaussianMixture has no bootstrap replicates, which its intervals (ci_prob) "
                "and their summary come from: call bootstrap(X) after fit(X) first"
            )
        if draws and tree.attrs["bootstrap_method"] == "jackknife":
            raise ValueError(
                "method: expected a bootstrap whose replicates are draws (nonparametric, "
                "weighted or parametric) for intervals of memberships, got the jackknife; "
                "its leave-one-out replicates give standard errors (bootstrap_summary) only"
            )
        return tree

    def membership_draws(
        self, X: Any, *, max_draws: int | None = None, random_state: Any = None
    ) -> np.ndarray:
        """Membership probabilities under every bootstrap replicate: (S, n, K).

        Without a bootstrap (see :meth:`bootstrap`) there is one "draw", the
        fitted ``predict_proba(X)``. ``random_state`` is accepted for the
        interface of the Bayesian models and unused.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_components)
        """
        check_fitted(self)
        data = self._check_X(X)
        if getattr(self, "bootstrap_", None) is None:
            return self._predict_proba_array(data)[None]
        if max_draws is not None:
            max_draws = check_int(max_draws, "max_draws", minimum=1)
        return bootstrap_membership_draws(
            self._kept_bootstrap(draws=True), data, max_draws=max_draws
        )

    def predict_proba(self, X: Any, *, ci_prob: float | None = None, ci_kind: str = "eti") -> Any:
        """Membership probabilities, optionally with bootstrap intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Without ``ci_prob``, ``NaN`` marks a missing entry: such a row's
            membership is given its observed features alone. The intervals
            need complete rows.
        ci_prob : float in (0, 1), optional
            Without it, ``p(z_i = k | x_i)`` under the fitted parameters, an (n, K)
            array (a lazy Dask array for Dask input). With it (after
            :meth:`bootstrap`), an ``xarray.Dataset`` with ``mean``, ``median``,
            ``lower`` and ``upper`` (dims ``obs_id``, ``component``) of the
            membership over the bootstrap replicates, as the Bayesian models
            return: the interval holds ``ci_prob`` of the replicates and
            contains the median.
        ci_kind : {"eti", "hdi"}, default "eti"

        Returns
        -------
        ndarray of shape (n_samples, n_components) or xarray.Dataset
        """
        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, default=None)
        if ci_prob is None:
            return super().predict_proba(X)
        draws = self.membership_draws(X)
        if draws.shape[0] == 1:
            self._kept_bootstrap()  # says how to get intervals
        median, lower, upper = credible_interval(draws, ci_prob, ci_kind, axis=0)
        intervals = membership_intervals(draws.mean(axis=0), median, lower, upper, ci_prob, ci_kind)
        intervals.attrs["interval_method"] = "bootstrap"
        return intervals

    def summary(self, X: Any, *, parameters: bool = False) -> MixtureSummary:
        """Summarise the fit on ``X`` as mclust's ``summary(Mclust(...))`` does.

        Printing the result gives mclust's layout: the model's mclust name and
        description (``"full"`` is mclust's VVV, ``"tied"`` EEE, ``"diag"`` VVI,
        ``"spherical"`` VII), the log-likelihood, n, the number of free
        parameters (df), BIC and ICL, and the table of MAP cluster sizes. BIC and
        ICL are in **mclust's sign**, ``2 log L - df log n`` (higher is better),
        so ``summary(X).bic == -bic(X)``; the ICL is mclust's, with the MAP
        classification, ``BIC + 2 sum_i log max_k r_ik`` (Biernacki, Celeux and
        Govaert 2000, doi:10.1109/34.865189), which is :meth:`icl` with its sign
        flipped.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Usually the training data (mclust summarises those; bayesgmm does not
            keep them).
        parameters : bool, default=False
            Also show the weights, means and (full) covariances.

        Returns
        -------
        bayesgmm._reports.MixtureSummary

        Examples
        --------
        >>> import numpy as np
        >>> from bayesgmm import EMGaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
        >>> model = EMGaussianMixture(2, covariance_type="tied", random_state=0).fit(X)
        >>> report = model.summary(X)
        >>> report.model_name, report.n_parameters, sorted(report.cluster_sizes.tolist())
        ('EEE', 8, [100, 100])
        """
        from bayesgmm._reports import MCLUST_DESCRIPTIONS, MixtureSummary, mclust_name

        if not isinstance(parameters, (bool, np.bool_)):
            raise TypeError(message("parameters", "a bool", parameters))
        data = self._check_X(X)
        p = self.params_
        resp = self._predict_proba_array(data)
        columns = resp.shape[1]
        noise = self._has_noise()
        bic = -self.bic(data)
        name = mclust_name(p.covariance_type, p.n_features, p.n_components)
        feature_names = getattr(self, "feature_names_in_", None)
        return MixtureSummary(
            estimator=type(self).__name__,
            covariance_type=p.covariance_type,
            model_name=name,
            description=MCLUST_DESCRIPTIONS.get(name, p.covariance_type),
            n_components=p.n_components,
            n_samples=data.shape[0],
            n_parameters=self._n_parameters(),
            log_likelihood=float(self._score_samples_array(data).sum()),
            bic=bic,
            icl=-self.icl(data, kind="map"),
            cluster_sizes=np.bincount(resp.argmax(axis=1), minlength=columns)[: p.n_components],
            feature_names=[str(f) for f in feature_names]
            if feature_names is not None
            else [f"x{j}" for j in range(p.n_features)],
            weights=self.weights_.copy() if parameters else None,
            means=p.means.copy() if parameters else None,
            covariances=p.full_covariances() if parameters else None,
            noise_size=int((resp.argmax(axis=1) == p.n_components).sum()) if noise else None,
            noise_weight=self.noise_weight_ if noise and parameters else None,
        )

    # -------------------------------------------------------------------- io
    def _export_state(self) -> dict[str, Any]:
        """JSON-able state from which :meth:`_import_state` rebuilds this model."""
        check_fitted(self)
        params = {}
        for name, value in self.get_params().items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(
                value, (np.random.Generator, np.random.RandomState, np.random.SeedSequence)
            ):
                value = None  # a generator's state is not kept
            elif isinstance(value, np.generic):
                value = value.item()
            params[name] = value
        if isinstance(self.prior, ConjugatePrior):
            params["prior"] = {
                "conjugate_prior": {
                    field: np.asarray(value).tolist() if value is not None else None
                    for field, value in vars(self.prior).items()
                }
            }
        state: dict[str, Any] = {
            "class": type(self).__name__,
            "params": params,
            "mixture": self.params_.to_dict(),
            "precisions_cholesky": self.precisions_cholesky_.tolist(),
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "lower_bound": None if not np.isfinite(self.lower_bound_) else self.lower_bound_,
            "log_likelihood_trace": self.log_likelihood_trace_.tolist(),
            "n_features_in": self.n_features_in_,
            "reg_covar": self.reg_covar_.tolist(),
            "degenerate_components": self.degenerate_components_.tolist(),
        }
        if self._has_noise():
            state["noise_weight"] = self.noise_weight_
            state["hypervolume"] = self.hypervolume_
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = [str(s) for s in self.feature_names_in_]
        tree = getattr(self, "bootstrap_", None)
        if tree is not None:
            state["bootstrap"] = {
                "attrs": dict(tree.attrs),
                "groups": {
                    name: tree[name].to_dataset().to_dict(data="list")
                    for name in ("bootstrap", "estimate", "replicates")
                },
            }
        return state

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> EMGaussianMixture:
        """Rebuild a fitted model from :meth:`_export_state`'s dict.

        Files written before ``reg_covar_scale`` existed were fitted with
        scikit-learn's absolute ``reg_covar``: they load with
        ``reg_covar_scale="absolute"`` and ``reg_covar_`` equal to ``reg_covar``
        for every feature.
        """
        arguments = dict(state["params"])
        if isinstance(arguments.get("prior"), dict):
            arguments["prior"] = ConjugatePrior(**arguments["prior"]["conjugate_prior"])
        older = "reg_covar_scale" not in arguments
        if older:
            arguments["reg_covar_scale"] = "absolute"
        model = cls(**arguments)
        params = GaussianMixtureParams.from_dict(state["mixture"])
        kind = params.covariance_type
        model.params_ = params
        model.noise_weight_ = float(state.get("noise_weight", 0.0))
        hypervolume = state.get("hypervolume")
        model.hypervolume_ = None if hypervolume is None else float(hypervolume)
        model.weights_ = params.weights * (1.0 - model.noise_weight_)
        model.means_ = params.means.copy()
        model.covariances_ = params.covariances.copy()
        model.precisions_cholesky_ = np.asarray(state["precisions_cholesky"], dtype=float)
        model.precisions_ = LAYOUTS[kind].precisions_from_cholesky(model.precisions_cholesky_)
        model.converged_ = bool(state["converged"])
        model.n_iter_ = int(state["n_iter"])
        bound = state["lower_bound"]
        model.lower_bound_ = -np.inf if bound is None else float(bound)
        model.log_likelihood_trace_ = np.asarray(state["log_likelihood_trace"], dtype=float)
        model.lower_bounds_ = model.log_likelihood_trace_.copy()
        model.n_features_in_ = int(state["n_features_in"])
        if older:
            reg = np.full(model.n_features_in_, float(arguments["reg_covar"]))
        else:
            reg = np.asarray(state["reg_covar"], dtype=float)
        if reg.shape != (model.n_features_in_,):
            raise ValueError(
                message("reg_covar", f"shape ({model.n_features_in_},)", f"{reg.shape}", raw=True)
            )
        model.reg_covar_ = reg
        if state.get("feature_names_in") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        model.degenerate_components_ = np.asarray(state["degenerate_components"], dtype=np.intp)
        model.bootstrap_ = None
        if state.get("bootstrap") is not None:
            import xarray as xr

            saved = state["bootstrap"]
            groups = {name: xr.Dataset.from_dict(d) for name, d in saved["groups"].items()}
            model.bootstrap_ = xr.DataTree.from_dict(
                {"/": xr.Dataset(attrs=saved["attrs"]), **groups}
            )
        return model


# ------------------------------------------------------------------ helpers
def _check_prior(prior: Any, covariance_type: str) -> ConjugatePrior | None:
    """``prior`` as a :class:`ConjugatePrior` (None for maximum likelihood)."""
    if prior is None:
        return None
    if isinstance(prior, str) and prior == "default":
        prior = ConjugatePrior()
    if not isinstance(prior, ConjugatePrior):
        raise TypeError(message("prior", 'None, "default" or a ConjugatePrior', prior))
    model = MCLUST_ALIASES.get(covariance_type, covariance_type)
    if model not in PRIOR_MODELS:
        raise ValueError(
            message(
                "prior",
                "a covariance_type for which mclust defines its conjugate prior ("
                + ", ".join(PRIOR_MODELS)
                + ", or full, tied, diag, spherical)",
                f"covariance_type={covariance_type!r}",
                raw=True,
            )
        )
    return prior


def _resolve_prior(
    prior: ConjugatePrior,
    covariance_type: str,
    n_components: int,
    Xc: np.ndarray | DaskRows,
    shift: np.ndarray,
    n_samples: float,
    sample_weight: np.ndarray | None = None,
) -> ResolvedPrior:
    """Fill in mclust's data-dependent defaults: the prior in EM's centred frame.

    With frequency weights the data covariance is ``sum_i w_i x_i x_i' / (sum_i w_i - 1)``
    (``Xc`` is centred on the weighted mean) and ``n_samples`` is the sum of the weights.
    """
    if isinstance(Xc, DaskRows):
        from bayesgmm._chunks import map_reduce

        cross = np.asarray(
            map_reduce(_cross_products, Xc.data, shift=Xc.shift, sample_weight=Xc.sample_weight)
        )
        covariance = cross / max(n_samples - 1, 1)
    elif sample_weight is not None:
        covariance = _cross_products(Xc, sample_weight) / max(n_samples - 1, 1)
    elif n_samples > 1:
        covariance = np.atleast_2d(np.cov(Xc, rowvar=False))
    else:
        covariance = np.zeros((shift.shape[0], shift.shape[0]))
    model = MCLUST_ALIASES.get(covariance_type, covariance_type)
    # The prior compares n with d only: the smallest whole number of rows >= n compares alike.
    return resolve_prior(prior, model, n_components, shift, covariance, math.ceil(n_samples))


def _cross_products(block: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """``sum_i w_i x_i x_i'`` over the rows of a block (``w_i = 1`` without weights)."""
    if sample_weight is None:
        return block.T @ block
    return (block * sample_weight[:, None]).T @ block


def _float_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise TypeError(message(name, "an array of real numbers", value)) from None
    if np.iscomplexobj(array):
        raise TypeError(message(name, "real numbers", "complex values", raw=True))
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(message(name, "an array of real numbers", f"dtype {array.dtype}", raw=True))
    return array.astype(np.float64)


def _warn_if_reg_covar_dominates(data_variance: np.ndarray, reg_covar: float) -> None:
    """Warn when an absolute ``reg_covar`` is not small next to a feature's variance.

    With ``reg_covar_scale="absolute"`` (scikit-learn's semantics) ``reg_covar``
    is added to the covariances in the data's squared units, so on data measured
    in small units (variances near 1e-7, say) the default 1e-6 swamps the
    clusters' own spread and EM merges them. A feature whose variance is below
    ``1000 * reg_covar`` triggers the warning; constant features are left to the
    degenerate-component check. With ``"variance"`` the amount scales with each
    feature's variance and this is not called.
    """
    varying = data_variance > 0
    small = np.flatnonzero(varying & (reg_covar > _REG_COVAR_SHARE * data_variance))
    if small.size == 0:
        return
    smallest = float(data_variance[small].min())
    warnings.warn(
        f"reg_covar={reg_covar:g} is not small next to the variance of feature(s) "
        f"{small.tolist()} (smallest {smallest:.3g}): it is added to every covariance in "
        "the data's squared units (reg_covar_scale='absolute'), so it dominates the "
        "clusters' own spread and can merge them. Use reg_covar_scale='variance' (the "
        "default: reg_covar times each feature's variance). Or Standardise X (or rescale it "
        "to larger units), or set reg_covar in the data's units, for example "
        f"reg_covar={1e-6 * smallest:.3g}.",
        UserWarning,
        stacklevel=6,
    )


def _weighted_mean(Z: np.ndarray, rows: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
    """Mean of the selected rows, weighted when they have positive total weight."""
    if sample_weight is None or not sample_weight[rows].sum() > 0:
        return Z[rows].mean(axis=0)
    return np.average(Z[rows], axis=0, weights=sample_weight[rows])


def _degenerate_components(
    params: GaussianMixtureParams,
    n_samples: float,
    data_variance: np.ndarray,
    reg: np.ndarray,
) -> np.ndarray:
    """Return the indices of degenerate components (rule in :class:`EMGaussianMixture`'s Notes).

    ``reg`` is the per-feature amount the M-step added to the diagonals
    (``reg_covar_``); it is taken off before the scatter is judged.
    ``n_samples`` is the number of points the Gaussians share: with a noise
    component, ``n (1 - w_0)``, the weights then given that a point is not noise.
    """
    k, d, kind = params.n_components, params.n_features, params.covariance_type
    too_few = params.weights * n_samples < min_points(d, kind)
    storage = LAYOUTS[kind].storage
    scale = np.where(data_variance > 0, data_variance, 1.0)
    cov = params.covariances
    if storage in ("full", "tied"):
        stack = cov[None] if storage == "tied" else cov
        inv_sd = 1.0 / np.sqrt(scale)
        standardised = (stack - np.diag(reg)) * inv_sd[:, None] * inv_sd[None, :]
        smallest = np.linalg.eigvalsh(standardised)[:, 0]
        if storage == "tied":
            smallest = np.full(k, smallest[0])
    elif storage == "diag":
        smallest = ((cov - reg) / scale).min(axis=1)
    else:
        smallest = (cov - reg.mean()) / scale.max()
    flat = smallest < _DEGENERATE_RELATIVE_VARIANCE
    return np.flatnonzero(too_few | flat)


def _check_labels(labels: Any, n_samples: int, n_components: int, dask_input: bool) -> Any:
    """Validate ``fit``'s ``labels``: an int array, or None when no row is labelled."""
    if labels is None:
        return None
    if dask_input:
        raise TypeError(
            message(
                "labels",
                "None when X is a Dask array (semi-supervised fitting needs X in memory: "
                "call X.compute())",
                labels,
            )
        )
    expected = (
        f"-1 (unlabelled) or a component index 0..{n_components - 1} "
        f"(n_components={n_components}) for each of the {n_samples} rows of X"
    )
    array = np.asarray(labels)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise TypeError(
            message("labels", f"integers: {expected}", f"dtype {array.dtype}", raw=True)
        )
    if array.ndim != 1 or array.shape[0] != n_samples:
        raise ValueError(message("labels", f"shape ({n_samples},): {expected}", array))
    if np.iscomplexobj(array) or not np.isfinite(array).all():
        raise ValueError(message("labels", expected, "non-finite or complex values", raw=True))
    integers = array.astype(np.intp)
    bad = (integers != array) | (integers < -1) | (integers >= n_components)
    if bad.any():
        shown = np.unique(array[bad])[:5].tolist()
        raise ValueError(message("labels", expected, f"value(s) {shown}", raw=True))
    return integers if (integers >= 0).any() else None


def _check_noise_init(
    noise_init: Any,
    data: Any,
    labels: np.ndarray | None,
    n_components: int,
    dask_input: bool,
    *,
    incomplete: bool = False,
) -> np.ndarray:
    """Return the rows that start in the noise: ``noise_init`` checked, or NN cleaning."""
    if incomplete:
        raise ValueError(
            message(
                "noise",
                "False when X has missing values (the noise's start and hypervolume need "
                "complete rows: drop or impute the rows with NaN)",
                "True",
                raw=True,
            )
        )
    if dask_input:
        raise TypeError(
            message(
                "noise",
                "False when X is a Dask array (the noise's start and volume need X in "
                "memory: call X.compute())",
                "True",
                raw=True,
            )
        )
    if labels is not None:
        raise ValueError(
            message(
                "noise", "False with labels (semi-supervised fits have no noise)", "True", raw=True
            )
        )
    n = data.shape[0]
    if noise_init is None:
        rows = nearest_neighbour_noise(data)
    else:
        array = np.asarray(noise_init)
        if array.dtype != np.bool_:
            raise TypeError(
                message(
                    "noise_init",
                    f"a bool array of shape ({n},), True for noise rows",
                    f"dtype {array.dtype}",
                    raw=True,
                )
            )
        if array.shape != (n,):
            raise ValueError(
                message("noise_init", f"shape ({n},), one flag per row of X", array.shape, raw=True)
            )
        rows = array.copy()
    signal = n - int(rows.sum())
    if signal < n_components:
        raise ValueError(
            message(
                "noise_init",
                f"at least n_components={n_components} rows that are not noise to start the "
                "Gaussians from",
                f"{signal}",
                raw=True,
            )
        )
    return rows


def _labelled_start(
    Xc: np.ndarray,
    shift: np.ndarray,
    labels: np.ndarray,
    given: GivenParameters,
    n_components: int,
    covariance_type: str,
    reg: np.ndarray,
    rng: np.random.Generator,
    sample_weight: np.ndarray | None = None,
) -> GivenParameters:
    """Choose the starting parameters of a semi-supervised fit, as given parameters.

    Constrained k-means (Basu, Banerjee and Mooney 2002) on the features
    standardised to unit variance: each component with labelled rows starts at
    their mean, and one without at an unlabelled row chosen by greedy k-means++
    (D^2 sampling, Arthur and Vassilvitskii 2007: of a few rows drawn with
    probability proportional to their squared distance to the nearest start,
    the one that lowers the k-means potential most). Then, until no row moves,
    every unlabelled row goes to the nearest centre, labelled rows stay in
    their own component, and each centre becomes the mean of its rows. The
    M-step on this partition gives the weights, means and covariances.
    Parameters the user gave (``*_init``) are kept instead. With
    ``sample_weight`` the centres are weighted means and the M-step is weighted.
    """
    n, d = Xc.shape
    k = n_components
    scale = Xc.std(axis=0)
    scale[~(scale > 0)] = 1.0
    Z = Xc / scale
    unlabelled = labels < 0
    pool = Z[unlabelled] if unlabelled.any() else Z
    centres = np.zeros((k, d))
    placed = np.zeros(k, dtype=bool)
    for component in range(k):
        rows = labels == component
        if rows.any():
            centres[component] = _weighted_mean(Z, rows, sample_weight)
            placed[component] = True
    n_trials = 2 + int(np.log(k))
    for unseen in np.flatnonzero(~placed):
        nearest = ((pool[:, None, :] - centres[placed][None]) ** 2).sum(axis=2).min(axis=1)
        total = nearest.sum()
        p = nearest / total if total > 0 else None
        candidates = rng.choice(pool.shape[0], size=n_trials, p=p)
        potentials = [
            np.minimum(nearest, ((pool - pool[c]) ** 2).sum(axis=1)).sum() for c in candidates
        ]
        centres[unseen] = pool[candidates[int(np.argmin(potentials))]]
        placed[unseen] = True
    assignment = labels.copy()
    for _ in range(_SEEDED_KMEANS_MAX_ITER):
        if not unlabelled.any():
            break
        nearest_centre = ((Z[unlabelled][:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(1)
        moved = (nearest_centre != assignment[unlabelled]).any()
        assignment[unlabelled] = nearest_centre
        if not moved:
            break
        for component in range(k):
            rows = assignment == component
            if rows.any():
                centres[component] = _weighted_mean(Z, rows, sample_weight)
    resp = np.zeros((n, k))
    resp[np.arange(n), assignment] = 1.0
    state = state_from_responsibilities(Xc, resp, covariance_type, reg, sample_weight=sample_weight)
    return GivenParameters(
        state.weights if given.weights is None else given.weights,
        state.means + shift if given.means is None else given.means,
        state.precisions_cholesky
        if given.precisions_cholesky is None
        else given.precisions_cholesky,
    )
