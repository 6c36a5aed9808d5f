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

import warnings
from typing import Any

import numpy as np

from bayesgmm import _em_steps
from bayesgmm._base import MixtureBase
from bayesgmm._chunks import check_dask_array, column_means, is_dask_array, sample_rows
from bayesgmm._em_steps import (
    STOPPING_RULES,
    DaskRows,
    EMState,
    Pool,
    compute_pool,
    m_step,
    regularisation,
)
from bayesgmm._gaussian import (
    COVARIANCE_TYPES,
    LAYOUTS,
    DegenerateCovarianceError,
    min_points,
)
from bayesgmm._init import (
    INIT_PARAMS,
    SHORT_EM_MAX_SAMPLES,
    GivenParameters,
    Partition,
    initial_states,
)
from bayesgmm._validation import (
    check_array,
    check_fitted,
    check_float,
    check_int,
    check_n_features,
    check_option,
    check_random_state,
    check_shape,
    message,
    sklearn_compatible,
)
from bayesgmm.params import GaussianMixtureParams

__all__ = [
    "ConvergenceWarning",
    "DegenerateComponentWarning",
    "EMGaussianMixture",
    "m_step",
]

REG_COVAR_SCALES = ("variance", "absolute")

# A component's own scatter below this fraction of the data's variance (in the
# direction where it is smallest, features standardised) marks it degenerate.
_DEGENERATE_RELATIVE_VARIANCE = 1e-6
# reg_covar above this share of a feature's variance dominates the covariances: warn.
_REG_COVAR_SHARE = 1e-3


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
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        ``full``: one general covariance per component; ``tied``: one shared by all;
        ``diag``: one diagonal per component; ``spherical``: one variance per component.
    tol : float, default=1e-6
        Convergence threshold of the stopping rule ``stopping``.
    stopping : {"aitken", "change"}, default="aitken"
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
        The fitted mixture.
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

    # -------------------------------------------------------------- validation
    def _validated(self) -> dict[str, Any]:
        """Check every constructor parameter; return the validated copies."""
        v: dict[str, Any] = {}
        v["n_components"] = check_int(self.n_components, "n_components", minimum=1)
        v["covariance_type"] = check_option(
            self.covariance_type, "covariance_type", COVARIANCE_TYPES
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
    def fit(self, X: Any, y: Any = None) -> EMGaussianMixture:
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; a pandas DataFrame keeps its column names in ``feature_names_in_``.
        y : ignored
            Accepted for scikit-learn compatibility.

        Returns
        -------
        self
        """
        self._fit(X)
        return self

    def _fit(self, X: Any, partitions: list[Partition] | None = None) -> None:
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
            data, feature_names = check_array(X)
        n, d = data.shape
        k, kind = v["n_components"], v["covariance_type"]
        if n < k:
            raise ValueError(
                message("X", f"at least n_components={k} samples", f"{n} sample(s)", raw=True)
            )
        inits = self._validated_inits(k, d, kind)
        continuing = (
            bool(self.warm_start)
            and hasattr(self, "params_")
            and self.params_.covariance_type == kind
            and self.params_.n_components == k
        )
        if continuing:
            check_n_features(data, self.n_features_in_)
        rng = v["rng"]

        # Work in a centred frame: the expanded quadratic form loses precision
        # when the data sit far from the origin (see bayesgmm._gaussian).
        Xc: np.ndarray | DaskRows
        if dask_input:
            shift = column_means(data)
            Xc = DaskRows(data, shift)
            init_rows = sample_rows(data, SHORT_EM_MAX_SAMPLES, rng) - shift
            data_variance = Xc.variance()  # one chunked pass over the centred blocks
        else:
            shift = data.mean(axis=0)
            init_rows = data - shift
            Xc = init_rows
            data_variance = init_rows.var(axis=0)
        # What the M-step adds to the covariance diagonals, per feature, in data units.
        v["data_variance"] = data_variance
        v["reg"] = regularisation(v["reg_covar"], v["reg_covar_scale"], data_variance, shift, kind)

        n_init = 1 if continuing else v["n_init"]
        with compute_pool(init_rows.shape[0], d, kind) as pool:
            best = self._fit_loop(
                Xc, init_rows, shift, inits, v, rng, pool, n_init, continuing, partitions
            )
        self._finish_fit(best, shift, n, d, kind, v, feature_names)

    def _finish_fit(
        self,
        best: EMState,
        shift: np.ndarray,
        n: int,
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
        Xc: np.ndarray | DaskRows,
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
        n = Xc.shape[0]
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
                )
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

    def _has_degenerate(self, state: EMState, shift: np.ndarray, n: int, v: dict[str, Any]) -> bool:
        """Whether an EM end has degenerate components (see the class Notes)."""
        if state.covariances is None:
            return False
        params = GaussianMixtureParams(
            state.weights, state.means + shift, state.covariances, v["covariance_type"]
        )
        return bool(_degenerate_components(params, n, v["data_variance"], v["reg"]).size)

    def _warm_state(self, shift: np.ndarray) -> EMState:
        p = self.params_
        return EMState(
            p.weights.copy(), p.means - shift, p.covariances.copy(), p.precisions_cholesky.copy()
        )

    def _set_fitted(
        self,
        state: EMState,
        shift: np.ndarray,
        n: int,
        d: int,
        kind: str,
        v: dict[str, Any],
        feature_names: list[str] | None,
    ) -> None:
        covariances = state.covariances
        if covariances is None:  # max_iter=0 with precisions_init: invert the precisions
            covariances = LAYOUTS[kind].covariances_from_cholesky(state.precisions_cholesky)
        params = GaussianMixtureParams(state.weights, state.means + shift, covariances, kind)
        data_variance, reg = v["data_variance"], v["reg"]
        degenerate = _degenerate_components(params, n, data_variance, reg)
        if v["reg_covar_scale"] == "absolute":
            _warn_if_reg_covar_dominates(data_variance, v["reg_covar"])
        # Everything is computed; now change the estimator's state.
        self.params_ = params
        self.weights_ = params.weights.copy()
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
    def _score_samples_array(self, X: np.ndarray) -> np.ndarray:
        """``log sum_k w_k N(x_i | mu_k, Sigma_k)`` for every row."""
        return self.params_.score_samples(X)

    def _predict_proba_array(self, X: np.ndarray) -> np.ndarray:
        """Responsibilities ``p(z_i = k | x_i)`` under the fitted parameters."""
        return self.params_.predict_proba(X)

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
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_state)
        return self.params_.sample(n_samples, rng)

    # ------------------------------------------------------- model selection
    def _n_parameters(self) -> int:
        return self.params_.n_parameters()

    def bic(self, X: Any) -> float:
        """Bayesian information criterion, ``-2 log L + p log n`` (lower is better).

        Returns ``+inf`` when the fit has degenerate components, so that model
        selection never picks it for its inflated likelihood.

        Returns
        -------
        float
        """
        return self._penalised(self._check_X(X), "bic")

    def aic(self, X: Any) -> float:
        """Akaike information criterion, ``-2 log L + 2 p`` (lower is better).

        ``+inf`` when the fit has degenerate components, as for :meth:`bic`.

        Returns
        -------
        float
        """
        return self._penalised(self._check_X(X), "aic")

    def icl(self, X: Any) -> float:
        """Integrated completed likelihood criterion, BIC plus twice the classification entropy.

        ``ICL = BIC + 2 EN`` with ``EN = -sum_i sum_k r_ik log r_ik`` (Biernacki,
        Celeux and Govaert 2000), in the sign convention of :meth:`bic` (lower is
        better, as mclust's ICL with the sign flipped). ``+inf`` if degenerate.

        Returns
        -------
        float
        """
        return self._penalised(self._check_X(X), "icl")

    def _penalised(self, X: np.ndarray, criterion: str) -> float:
        """``-2 log L`` plus the criterion's penalty, on checked data; ``+inf`` if degenerate."""
        if self.degenerate_components_.size:
            return float("inf")
        n = X.shape[0]
        value = -2.0 * float(self._score_samples_array(X).mean()) * n
        if criterion == "aic":
            return value + 2.0 * self._n_parameters()
        value += self._n_parameters() * np.log(n)
        if criterion == "icl":
            resp = self._predict_proba_array(X)
            with np.errstate(divide="ignore", invalid="ignore"):
                value += -2.0 * float(np.where(resp > 0, resp * np.log(resp), 0.0).sum())
        return float(value)

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
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in"] = [str(s) for s in self.feature_names_in_]
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
        older = "reg_covar_scale" not in arguments
        if older:
            arguments["reg_covar_scale"] = "absolute"
        model = cls(**arguments)
        params = GaussianMixtureParams.from_dict(state["mixture"])
        kind = params.covariance_type
        model.params_ = params
        model.weights_ = params.weights.copy()
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
        return model


# ------------------------------------------------------------------ helpers


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


def _degenerate_components(
    params: GaussianMixtureParams, n_samples: int, data_variance: np.ndarray, reg: np.ndarray
) -> np.ndarray:
    """Return the indices of degenerate components (rule in :class:`EMGaussianMixture`'s Notes).

    ``reg`` is the per-feature amount the M-step added to the diagonals
    (``reg_covar_``); it is taken off before the scatter is judged.
    """
    k, d, kind = params.n_components, params.n_features, params.covariance_type
    too_few = params.weights * n_samples < min_points(d, kind)
    scale = np.where(data_variance > 0, data_variance, 1.0)
    cov = params.covariances
    if kind in ("full", "tied"):
        stack = cov[None] if kind == "tied" else cov
        inv_sd = 1.0 / np.sqrt(scale)
        standardised = (stack - np.diag(reg)) * inv_sd[:, None] * inv_sd[None, :]
        smallest = np.linalg.eigvalsh(standardised)[:, 0]
        if kind == "tied":
            smallest = np.full(k, smallest[0])
    elif kind == "diag":
        smallest = ((cov - reg) / scale).min(axis=1)
    else:
        smallest = (cov - reg.mean()) / scale.max()
    flat = smallest < _DEGENERATE_RELATIVE_VARIANCE
    return np.flatnonzero(too_few | flat)
