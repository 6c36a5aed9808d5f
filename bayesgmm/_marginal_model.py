"""The PyMC model of the marginalised Gaussian mixture: a pure, inspectable builder.

The model, in *standardised* units ``z = (x - m) / s`` (by default ``m`` and ``s``
the per-feature mean and standard deviation of the training data, so that the
default priors mean the same thing whatever the units of the data; fixed ``m`` and
``s`` make the prior independent of the data, see :func:`standardize`):

    w ~ Dirichlet(alpha, ..., alpha)
    mu_k ~ Normal(means_loc, means_scale^2 I)                      (each feature)
    sigma_k ~ InverseGamma(STDS_SHAPE, stds_scale)                 (each feature)
    L_k ~ LKJCholesky(lkj_eta)                                     (full and tied)
    Sigma_k = diag(sigma_k) L_k L_k' diag(sigma_k)
    p(z_i | theta) = sum_k w_k N(z_i | mu_k, Sigma_k)              (labels summed out)

The prior on each standard deviation is zero-avoiding: the InverseGamma density
``b^a / Gamma(a) sigma^-(a+1) exp(-b / sigma)``, shape ``a = STDS_SHAPE = 3`` and scale
``b = stds_scale = 1`` (median 0.37, mean 0.5 in standardised units; prior probability
0.003 below 0.1 and 0.014 above 2), vanishes faster than any power of ``sigma`` at zero.
A prior with positive density at zero (a HalfNormal) lets a component collapse onto
``m >= 2`` tied values of a feature (rounded data): the likelihood of a component
centred there grows like ``sigma^-(m - 1)`` as ``sigma`` shrinks, so the posterior has
a non-integrable spike that a chain can fall into. A Gamma(2) prior, zero-avoiding for a
single variance (Chung et al. 2013), removes one power of ``sigma`` and so only helps for
two ties; ``exp(-b / sigma)`` outweighs every power. On Old Faithful, along the path on
which a component collapses onto its fifteen waiting times of 78 minutes, the posterior
mass below half the data's resolution (0.037 standardised units) is 6e-10
(``tests/test_stds_prior.py``). The same regularisation of variances away from
zero is what Fraley & Raftery (2007) add to mclust's EM for the same reason
(BDA3, Gelman et al. 2013, ch. 22, discusses such priors for mixtures).
With ``noise=True`` (mclust's noise component, Banfield and Raftery 1993,
doi:10.2307/2532201) the weights are a Dirichlet over K + 1 entries, the noise's
``w_0`` last, and the likelihood is ``log(sum_k w_k N(z_i | mu_k, Sigma_k) + w_0 /
V_z)``, with ``V_z`` the volume of the noise's region in standardised units
(``log V_z = log V - sum_j log s_j`` for a volume ``V`` in the data's units).

``tied`` shares one ``sigma`` and ``L`` between components, ``diag`` has no ``L``
and ``spherical`` one ``sigma`` per component. The likelihood is one vectorised
expression over all components, not a Python list of K distributions, so the
compiled graph stays small whatever K is: one PyTensor ``Op``
(:mod:`bayesgmm._mixture_op`) evaluates ``log sum_k w_k N(z_i | mu_k, L_k L_k')``
for every row in a single compiled loop, and its gradient in another, instead of
some 70 generic graph nodes that numba would compile one by one (every covariance
type goes through it, diagonal ones with a diagonal ``L_k``).

Every variable has dims (``component``, ``feature``, ``feature_bis``, ``obs_id``).
Building and sampling are separate: :func:`build_pymc_model` only builds, so its
coords, dims and log densities can be checked without sampling.

References
----------
Chung, Y., Rabe-Hesketh, S., Dorie, V., Gelman, A. and Liu, J. (2013). A nondegenerate
penalized likelihood estimator for variance parameters in multilevel models.
Psychometrika 78(4), 685-709. doi:10.1007/s11336-013-9328-2

Fraley, C. and Raftery, A. E. (2007). Bayesian regularization for normal mixture
estimation and model-based clustering. Journal of Classification 24(2), 155-181.
doi:10.1007/s00357-007-0004-5

Gelman, A., Carlin, J. B., Stern, H. S., Dunson, D. B., Vehtari, A. and Rubin, D. B.
(2013). Bayesian Data Analysis, 3rd edition, chapter 22 (finite mixture models).
Chapman & Hall/CRC.

Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation
matrices based on vines and extended onion method. Journal of Multivariate
Analysis 100(9), 1989-2001. doi:10.1016/j.jmva.2009.04.008
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._gaussian import LAYOUTS
from bayesgmm._missing import missingness_patterns
from bayesgmm._validation import check_float, check_missing, message
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm
    import xarray as xr

__all__ = [
    "DEFAULT_PRIORS",
    "STDS_SHAPE",
    "ModelDraws",
    "ModelSpec",
    "build_pymc_model",
    "check_priors",
    "covariances_from_draws",
    "covariances_in_layout",
    "draws_in_data_units",
    "free_values",
    "params_in_data_units",
    "standardize",
]

DEFAULT_PRIORS: dict[str, float] = {
    "weights_concentration": 1.0,
    "means_loc": 0.0,
    "means_scale": 2.0,
    "stds_scale": 1.0,
    "lkj_eta": 2.0,
}
"""Default priors, in standardised units (data centred and divided by their sd).

``weights_concentration``: Dirichlet concentration alpha of every component;
``means_loc``, ``means_scale``: location and scale of the Normal prior on each
coordinate of each mean; ``stds_scale``: scale ``b`` of the InverseGamma prior
(shape :data:`STDS_SHAPE`) on each component standard deviation, which keeps it
away from zero (see the module notes); ``lkj_eta``: LKJ shape of the correlations (1 is
uniform, larger shrinks towards no correlation).
"""


STDS_SHAPE = 3.0
"""Shape ``a`` of the InverseGamma prior on every component standard deviation."""


def check_priors(priors: Any) -> dict[str, float]:
    """Return :data:`DEFAULT_PRIORS` updated with ``priors``, every value checked.

    Parameters
    ----------
    priors : dict or None
        Overrides, keys among :data:`DEFAULT_PRIORS`; every value but ``means_loc``
        must be positive.

    Returns
    -------
    dict
        All five priors.
    """
    if priors is None:
        return dict(DEFAULT_PRIORS)
    if not isinstance(priors, dict):
        raise TypeError(
            message("priors", f"None or a dict with keys among {sorted(DEFAULT_PRIORS)}", priors)
        )
    unknown = sorted(set(priors) - set(DEFAULT_PRIORS))
    if unknown:
        raise ValueError(
            message(
                "priors",
                f"keys among {sorted(DEFAULT_PRIORS)}",
                f"unknown key(s) {unknown}",
                raw=True,
            )
        )
    out = dict(DEFAULT_PRIORS)
    for key, value in priors.items():
        if key == "means_loc":
            out[key] = check_float(value, f"priors['{key}']")
        else:
            out[key] = check_float(value, f"priors['{key}']", minimum=0.0, include_minimum=False)
    return out


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything the model's graph depends on, apart from the data.

    Hashable, so that a compiled model can be looked up by it.

    Attributes
    ----------
    n_components : int
    covariance_type : str
    priors : tuple of (str, float)
        The checked priors, sorted by name.
    features : tuple
        Feature names (the ``feature`` coordinate).
    """

    n_components: int
    covariance_type: str
    priors: tuple[tuple[str, float], ...]
    features: tuple[Any, ...]
    weighted: bool = False
    noise: bool = False

    @classmethod
    def create(
        cls,
        n_components: int,
        covariance_type: str,
        priors: dict[str, float],
        features: Any,
        weighted: bool = False,
        noise: bool = False,
    ) -> ModelSpec:
        """Make a spec from checked arguments (``priors`` as :func:`check_priors` returns).

        ``weighted``: the likelihood takes frequency weights (a ``sample_weight`` data
        variable), a different graph, so a different entry of the compile cache;
        likewise ``noise`` (the uniform noise component).
        """
        return cls(
            n_components,
            covariance_type,
            tuple(sorted(priors.items())),
            tuple(features),
            weighted,
            noise,
        )

    @property
    def n_features(self) -> int:
        return len(self.features)

    def build(
        self,
        Z: np.ndarray,
        sample_weight: np.ndarray | None = None,
        log_hypervolume: float | None = None,
    ) -> pm.Model:
        """:func:`build_pymc_model` of this spec on standardised data ``Z``.

        A weighted spec takes ``sample_weight`` (all ones if None); a spec with
        ``noise`` needs ``log_hypervolume`` (the noise's ``log V_z``).
        """
        if self.weighted and sample_weight is None:
            sample_weight = np.ones(Z.shape[0])
        return build_pymc_model(
            Z,
            self.n_components,
            self.covariance_type,
            dict(self.priors),
            list(self.features),
            sample_weight=sample_weight if self.weighted else None,
            noise=self.noise,
            log_hypervolume=log_hypervolume if self.noise else None,
        )


@dataclasses.dataclass(frozen=True)
class ModelDraws:
    """Draws of the model's free variables, as an inference engine returns them.

    Attributes
    ----------
    values : dict of str to ndarray
        ``weights``, ``means``, ``stds`` (and ``corr_chol``), each of shape
        (chain, draw, ...), in standardised units.
    groups : dict of str to xarray.Dataset
        What the engine reports beside the draws (``sample_stats`` for NUTS,
        ``laplace`` for Laplace's method), as DataTree groups.
    timings : dict of str to float
        Seconds per stage.
    problems : tuple of str
        What the engine found wrong with its own result, to be warned about.
    """

    values: dict[str, np.ndarray]
    groups: dict[str, xr.Dataset]
    timings: dict[str, float]
    problems: tuple[str, ...] = ()


# ----------------------------------------------------------------- the PyMC graph
def _core(param: Any, ndim: int) -> Any:
    """``param`` without leading axes of static length 1 beyond its core ``ndim``."""
    while param.ndim > ndim:
        if param.type.shape[0] != 1:  # pragma: no cover - the model never batches
            raise ValueError("batched mixture parameters are not supported")
        param = param[0]
    return param


def _mixture_logp_cholesky(value: Any, weights: Any, means: Any, chol: Any) -> Any:
    """``log sum_k w_k N(x | mu_k, L_k L_k')`` per row, for lower-triangular ``L_k``.

    One :class:`bayesgmm._mixture_op.MixtureLogDensity` node: a compiled loop over the
    rows (forward substitution per component, then log-sum-exp), with a hand-written
    gradient in a second node. The data enter in standardised units.
    """
    from bayesgmm._mixture_op import mixture_log_density

    # PyMC hands the parameters over with a leading batch axis of length 1 (broadcast
    # against the rows); the model has no batches of mixtures, so drop it.
    weights, means, chol = (_core(p, ndim) for p, ndim in ((weights, 1), (means, 2), (chol, 3)))
    return mixture_log_density(value, weights, means, chol)


def _mixture_logp_diagonal(value: Any, weights: Any, means: Any, stds: Any) -> Any:
    """``log sum_k w_k N(x | mu_k, diag(sigma_k^2))``: the Cholesky version, diagonal ``L_k``."""
    import pytensor.tensor as pt

    stds = _core(stds, 2)
    d = stds.type.shape[-1]
    if d is None:  # pragma: no cover - the model always builds stds with a static d
        raise ValueError("the standard deviations need a static number of features")
    return _mixture_logp_cholesky(value, weights, means, stds[..., :, None] * pt.eye(d))


def _weighted_logp_cholesky(
    value: Any, weights: Any, means: Any, chol: Any, row_weight: Any
) -> Any:
    """``w_i log sum_k w_k N(x_i | mu_k, L_k L_k')``: row i's term counted ``w_i`` times."""
    return row_weight * _mixture_logp_cholesky(value, weights, means, chol)


def _weighted_logp_diagonal(
    value: Any, weights: Any, means: Any, stds: Any, row_weight: Any
) -> Any:
    """Return the diagonal version of :func:`_weighted_logp_cholesky`."""
    return row_weight * _mixture_logp_diagonal(value, weights, means, stds)


def _noise_mixture_logp_cholesky(
    value: Any, weights: Any, means: Any, chol: Any, log_hypervolume: Any
) -> Any:
    """``log(sum_k w_k N(x | mu_k, L_k L_k') + w_0 / V)``: the Gaussians' Op and the noise.

    ``weights`` holds K + 1 entries, the noise's ``w_0`` last; the Gaussians' Op
    takes their weights as they are (they sum to ``1 - w_0``).
    """
    import pytensor.tensor as pt

    weights = _core(weights, 1)
    log_hypervolume = _core(log_hypervolume, 0)
    gaussians = _mixture_logp_cholesky(value, weights[:-1], means, chol)
    return pt.logaddexp(gaussians, pt.log(weights[-1]) - log_hypervolume)


def _noise_mixture_logp_diagonal(
    value: Any, weights: Any, means: Any, stds: Any, log_hypervolume: Any
) -> Any:
    """:func:`_noise_mixture_logp_cholesky` with a diagonal ``L_k``."""
    import pytensor.tensor as pt

    stds = _core(stds, 2)
    d = stds.type.shape[-1]
    if d is None:  # pragma: no cover - the model always builds stds with a static d
        raise ValueError("the standard deviations need a static number of features")
    return _noise_mixture_logp_cholesky(
        value, weights, means, stds[..., :, None] * pt.eye(d), log_hypervolume
    )


def build_pymc_model(
    Z: np.ndarray,
    n_components: int,
    covariance_type: str,
    priors: dict[str, float],
    feature_names: list[Any],
    batch_size: int | None = None,
    sample_weight: np.ndarray | None = None,
    *,
    noise: bool = False,
    log_hypervolume: float | None = None,
) -> pm.Model:
    """Build the marginal mixture on standardised data ``Z`` (see the module docstring).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        Standardised data. Missing entries (NaN) are allowed: the model then has
        one observed variable per missingness pattern
        (:func:`_build_pymc_model_missing`); complete data build the model below.
    n_components : int
    covariance_type : {"full", "tied", "diag", "spherical"}
    priors : dict
        All five priors, as :func:`check_priors` returns them.
    feature_names : list
        The ``feature`` coordinate.
    batch_size : int, optional
        With it, the observed variable is a :func:`pymc.Minibatch` of that many
        rows of ``Z`` drawn afresh at every evaluation, and its log-likelihood is
        multiplied by ``n / batch_size`` (``total_size``, here the symbolic number
        of rows of ``Z``, so the compiled graph serves data of any length): an
        unbiased estimate of the full-data log-likelihood, for stochastic
        variational inference.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights: a data variable ``sample_weight`` (obs_id) multiplies
        each row's log-likelihood, so the model's log density has
        ``sum_i w_i log p(z_i | theta)`` (the data with row i repeated ``w_i``
        times). ``obs``'s elementwise log-probability is then the weighted term;
        the pointwise log-likelihood the estimators store is unweighted. Not with
        ``batch_size``.
    noise : bool, default False
        Add the uniform noise component: ``weights`` then has K + 1 entries (dim
        ``mixture_component``, labels ``"0", ..., "K-1", "noise"``), the noise last.
    log_hypervolume : float, optional
        With ``noise``: ``log V_z``, the log volume of the noise's region in the
        units of ``Z`` (data ``log_hypervolume``, so a compiled model takes new
        data and a new volume).

    Returns
    -------
    pymc.Model
        Free variables ``weights``, ``means``, ``stds`` (and ``corr_chol`` for
        correlated covariances), data ``X`` (and ``log_hypervolume``) and
        observed ``obs``.
    """
    import pymc as pm

    n, d = Z.shape
    k = n_components
    if np.isnan(Z).any():
        if noise:
            raise ValueError(
                message(
                    "noise",
                    "False for data with missing values (NaN): the noise component needs "
                    "complete rows",
                    "True",
                    raw=True,
                )
            )
        if sample_weight is not None:
            raise ValueError(
                message(
                    "sample_weight",
                    "None for data with missing values (NaN): weighted fits take complete rows",
                    "weights",
                    raw=True,
                )
            )
        if batch_size is not None:
            raise ValueError(
                message("batch_size", "None for data with missing values (NaN)", batch_size)
            )
        return _build_pymc_model_missing(Z, n_components, covariance_type, priors, feature_names)
    coords = {
        "component": np.arange(k),
        "feature": list(feature_names),
        "feature_bis": list(feature_names),
        "obs_id": np.arange(n),
    }
    if sample_weight is not None and batch_size is not None:
        raise ValueError(
            message("sample_weight", "None with batch_size (minibatches)", "weights", raw=True)
        )
    if noise:
        if batch_size is not None:
            raise ValueError(message("batch_size", "None with noise=True", batch_size))
        if sample_weight is not None:
            raise ValueError(message("sample_weight", "None with noise=True", "weights", raw=True))
        if log_hypervolume is None or not np.isfinite(log_hypervolume):
            raise ValueError(
                message("log_hypervolume", "a finite number with noise=True", log_hypervolume)
            )
        coords["mixture_component"] = [*(str(c) for c in range(k)), "noise"]
    with pm.Model(coords=coords) as model:
        data = pm.Data("X", Z, dims=("obs_id", "feature"))
        observed: dict[str, Any] = {"observed": data, "dims": ("obs_id", "feature")}
        if batch_size is not None:
            # The rows of the minibatch are not the obs_id coordinate: no dims.
            observed = {
                "observed": pm.Minibatch(data, batch_size=batch_size),
                "total_size": [data.shape[0], None],
            }
        row_weight = None
        if sample_weight is not None:
            row_weight = pm.Data(
                "sample_weight", np.asarray(sample_weight, dtype=np.float64), dims="obs_id"
            )
        weights, means, factor = _component_parameters(k, d, covariance_type, priors, noise=noise)
        log_volume = None
        if noise:
            log_volume = pm.Data("log_hypervolume", np.float64(log_hypervolume))
        _likelihood_term("obs", weights, means, factor, observed, row_weight, log_volume)
    return model


def _correlated(covariance_type: str, d: int) -> bool:
    """Whether the model has correlations (``corr_chol``): full and tied with d > 1."""
    return covariance_type in ("full", "tied") and d > 1


def _component_parameters(
    k: int, d: int, covariance_type: str, priors: dict[str, float], *, noise: bool = False
) -> tuple[Any, Any, Any]:
    """Create the free variables in the current model: weights, means and scale factors.

    Returns the ``weights`` (K,; with ``noise`` K + 1 over ``mixture_component``,
    the noise's last), ``means`` (K, d) and, for correlated covariances,
    the Cholesky factors ``L_k = diag(sigma_k) C_k`` (K, d, d) of the covariances,
    otherwise the standard deviations (K, d).
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bayesgmm._corr_cholesky import CorrCholeskyTransform

    # As float64 arrays: PyTensor stores a Python float that float32 holds exactly
    # (2.0, say) as a float32 constant, and the prior's log(sigma) would lose digits.
    priors = {key: np.float64(value) for key, value in priors.items()}
    weights = pm.Dirichlet(
        "weights",
        a=np.full(k + int(noise), priors["weights_concentration"]),
        dims="mixture_component" if noise else "component",
    )
    means = pm.Normal(
        "means",
        mu=priors["means_loc"],
        sigma=priors["means_scale"],
        dims=("component", "feature"),
    )
    std_dims = LAYOUTS[covariance_type].scale_dims
    # NumPy float64s: PyTensor stores a whole Python float (3.0) as an integer
    # constant and takes its log-gamma or log in float32.
    stds = pm.InverseGamma(
        "stds",
        alpha=np.float64(STDS_SHAPE),
        beta=np.float64(priors["stds_scale"]),
        dims=std_dims,
    )
    if _correlated(covariance_type, d):
        # LKJCorr needs a static shape: its sampler is a scan that cannot see dims.
        shape = (k, d, d) if covariance_type == "full" else (d, d)
        corr_dims = std_dims + ("feature_bis",)
        # The same bijection as PyMC's default transform for LKJCorr, as one
        # compiled Op: numba compiles it in about a second instead of half a minute.
        corr_chol = pm.LKJCorr(
            "corr_chol",
            n=d,
            eta=priors["lkj_eta"],
            shape=shape,
            dims=corr_dims,
            default_transform=CorrCholeskyTransform(d),
        )
        chol = stds[..., :, None] * corr_chol
        return weights, means, pt.broadcast_to(chol, (k, d, d))
    if covariance_type == "spherical":
        return weights, means, pt.broadcast_to(stds[:, None], (k, d))
    return weights, means, pt.broadcast_to(stds, (k, d))


def _likelihood_term(
    name: str,
    weights: Any,
    means: Any,
    factor: Any,
    observed: Any,
    row_weight: Any = None,
    log_hypervolume: Any = None,
) -> Any:
    """Add the marginal mixture likelihood of ``observed`` as the CustomDist ``name``.

    ``factor`` is (K, d, d) lower-triangular Cholesky factors of the covariances or
    (K, d) standard deviations (diagonal covariances), as
    :func:`_component_parameters` returns them. With ``row_weight`` (a data
    variable over the rows) each row's log-likelihood is multiplied by its weight;
    with ``log_hypervolume`` (the noise's ``log V_z``) ``weights`` has K + 1
    entries and the likelihood adds the uniform noise ``w_0 / V_z``.
    """
    import pymc as pm

    cholesky = factor.ndim == 3
    core = "(k,d),(k,d,d)" if cholesky else "(k,d),(k,d)"
    if log_hypervolume is not None:
        return pm.CustomDist(
            name,
            weights,
            means,
            factor,
            log_hypervolume,
            logp=_noise_mixture_logp_cholesky if cholesky else _noise_mixture_logp_diagonal,
            signature="(j)," + core + ",()->(d)",
            **observed,
        )
    if row_weight is None:
        return pm.CustomDist(
            name,
            weights,
            means,
            factor,
            logp=_mixture_logp_cholesky if cholesky else _mixture_logp_diagonal,
            signature="(k)," + core + "->(d)",
            **observed,
        )
    return pm.CustomDist(
        name,
        weights,
        means,
        factor,
        row_weight,
        logp=_weighted_logp_cholesky if cholesky else _weighted_logp_diagonal,
        signature="(k)," + core + ",()->(d)",
        **observed,
    )


def _build_pymc_model_missing(
    Z: np.ndarray,
    n_components: int,
    covariance_type: str,
    priors: dict[str, float],
    feature_names: list[Any],
) -> pm.Model:
    """Build the model of :func:`build_pymc_model` on data with missing entries (NaN).

    Rows are grouped by missingness pattern (the set of features observed). A row
    with observed coordinates ``o`` enters the likelihood through the marginal of
    the mixture on ``o``, ``log sum_k w_k N(z_io | mu_ko, Sigma_koo)``: the labels
    and the missing coordinates are both integrated out, which is the observed-data
    likelihood under missingness at random (Little and Rubin 2019, section 6.2).
    Each pattern ``p`` is one observed variable ``obs_pattern_p`` over data
    ``X_pattern_p`` with dims ``obs_id_pattern_p`` (the rows' numbers in ``Z``) and
    ``feature_pattern_p`` (the observed features); the sub-covariance's Cholesky
    factor is ``L_k`` restricted to the rows and columns ``o`` when ``o`` is the
    first ``|o|`` features (a leading block of a lower-triangular factor is the
    factor of the leading block), and the Cholesky factor of ``L_ko L_ko'`` otherwise
    (``L_ko`` the rows ``o`` of ``L_k``). Diagonal covariances take the sub-vector
    of the standard deviations. The coordinate ``obs_id`` numbers every row.

    References
    ----------
    Little, R. J. A. and Rubin, D. B. (2019). Statistical Analysis with Missing
    Data, 3rd ed. Wiley. doi:10.1002/9781119482260
    """
    import pymc as pm
    import pytensor.tensor as pt

    n, d = Z.shape
    k = n_components
    check_missing(Z, "X", columns=True)
    observed_masks, row_groups = missingness_patterns(Z)
    features = list(feature_names)
    coords: dict[str, Any] = {
        "component": np.arange(k),
        "feature": features,
        "feature_bis": features,
        "obs_id": np.arange(n),
    }
    for p, (mask, rows) in enumerate(zip(observed_masks, row_groups, strict=True)):
        coords[f"obs_id_pattern_{p}"] = rows
        coords[f"feature_pattern_{p}"] = [f for f, seen in zip(features, mask, strict=True) if seen]
    with pm.Model(coords=coords) as model:
        weights, means, factor = _component_parameters(k, d, covariance_type, priors)
        for p, (mask, rows) in enumerate(zip(observed_masks, row_groups, strict=True)):
            seen = np.flatnonzero(mask)
            m = seen.size
            dims = (f"obs_id_pattern_{p}", f"feature_pattern_{p}")
            data = pm.Data(f"X_pattern_{p}", Z[np.ix_(rows, seen)], dims=dims)
            if m == d:
                sub_means, sub_factor = means, factor
            else:
                sub_means = pt.specify_shape(means[:, seen], (k, m))
                if factor.ndim == 2:
                    sub_factor = pt.specify_shape(factor[:, seen], (k, m))
                elif np.array_equal(seen, np.arange(m)):
                    sub_factor = pt.specify_shape(factor[:, :m, :m], (k, m, m))
                else:
                    rows_o = factor[:, seen, :]
                    sub_cov = rows_o @ pt.swapaxes(rows_o, -1, -2)
                    sub_factor = pt.specify_shape(pt.linalg.cholesky(sub_cov), (k, m, m))
            _likelihood_term(
                f"obs_pattern_{p}",
                weights,
                sub_means,
                sub_factor,
                {"observed": data, "dims": dims},
            )
    return model


# ---------------------------------------------------------- standardised units
def _fixed_standardization(value: Any, name: str, d: int, *, positive: bool) -> np.ndarray:
    """Check a user's ``loc`` or ``scale``: one number or one per feature, finite (and > 0)."""
    expected = f"None, a real number or {d} real numbers (one per feature)" + (
        ", all > 0" if positive else ""
    )
    raw = np.asarray(value)
    if raw.dtype.kind not in "iuf" or raw.ndim > 1:
        raise TypeError(message(name, expected, value))
    array = raw.astype(np.float64)
    if array.ndim == 1 and array.shape != (d,):
        raise ValueError(message(name, expected, f"{array.size} numbers", raw=True))
    if not np.all(np.isfinite(array)) or (positive and not np.all(array > 0)):
        raise ValueError(message(name, expected, value))
    return np.broadcast_to(array, (d,)).copy()


def standardize(
    X: np.ndarray, loc: Any = None, scale: Any = None, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Location and scale per feature, the model's units ``z = (x - loc) / scale``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    loc, scale : None, float or array-like of shape (n_features,)
        Fixed values (a number applies to every feature; ``scale`` positive).
        None takes the data's per-feature mean (``loc``) or standard deviation
        (``scale``), over the observed values where some are missing (NaN), so
        the priors adapt to the data; fixed values make the prior
        a distribution that does not depend on the data, as simulation-based
        calibration needs.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights: the data's mean and standard deviation are the
        weighted ones, those of the rows repeated by their weights.

    Returns
    -------
    loc, scale : ndarray of shape (n_features,)

    Raises
    ------
    TypeError, ValueError
        ``loc`` or ``scale`` is not a finite number or one per feature (``scale``
        not positive); or ``scale`` is None and a feature is constant (its
        standard deviation is not above 1e-12 times its mean's magnitude, or 1e-12).
    """
    d = X.shape[1]
    fixed_loc = None if loc is None else _fixed_standardization(loc, "loc", d, positive=False)
    fixed_scale = (
        None if scale is None else _fixed_standardization(scale, "scale", d, positive=True)
    )
    observed = ~np.isnan(X)
    if sample_weight is not None:
        data_loc = sample_weight @ X / sample_weight.sum()
        data_scale = np.sqrt(sample_weight @ np.square(X - data_loc) / sample_weight.sum())
    elif observed.all():
        data_loc, data_scale = X.mean(axis=0), X.std(axis=0)
    else:
        unseen = np.flatnonzero(observed.sum(axis=0) < 2)
        if unseen.size:
            raise ValueError(
                message(
                    "X",
                    "at least two observed values in every feature",
                    f"feature(s) {unseen.tolist()} with fewer",
                    raw=True,
                )
            )
        data_loc, data_scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    if fixed_scale is not None:
        return (data_loc if fixed_loc is None else fixed_loc), fixed_scale
    bad = np.flatnonzero(~(data_scale > 1e-12 * np.maximum(1.0, np.abs(data_loc))))
    if bad.size:
        raise ValueError(
            message("X", "features that vary", f"constant feature(s) {bad.tolist()}", raw=True)
        )
    return (data_loc if fixed_loc is None else fixed_loc), data_scale


def covariances_in_layout(full: np.ndarray, kind: str) -> np.ndarray:
    """Full (K, d, d) covariances in the layout of ``kind`` (for GaussianMixtureParams).

    ``tied`` takes the first component's, ``spherical`` the mean of each diagonal.
    """
    if kind == "full":
        return full
    if kind == "tied":
        return full[0]
    diagonal = np.diagonal(full, axis1=-2, axis2=-1)
    return diagonal if kind == "diag" else diagonal.mean(axis=-1)


def params_in_data_units(
    params: GaussianMixtureParams, loc: np.ndarray, scale: np.ndarray
) -> GaussianMixtureParams:
    """Move a mixture in standardised units to the data's: ``x = loc + scale * z``."""
    kind = params.covariance_type
    return GaussianMixtureParams(
        params.weights,
        loc + scale * params.means,
        covariances_in_layout(params.full_covariances() * np.outer(scale, scale), kind),
        kind,
    )


def draws_in_data_units(
    values: dict[str, np.ndarray], kind: str, loc: np.ndarray, scale: np.ndarray
) -> dict[str, np.ndarray]:
    """Draws of the free variables as ``weights``, ``means`` and full ``covariances`` of x.

    Parameters
    ----------
    values : dict of str to ndarray
        Draws of ``weights``, ``means``, ``stds`` (and ``corr_chol``), (chain, draw, ...).
    kind : {"full", "tied", "diag", "spherical"}
    loc, scale : ndarray of shape (n_features,)
        The standardisation, :func:`standardize`.

    Returns
    -------
    dict of str to ndarray
        (chain, draw, K), (chain, draw, K, d) and (chain, draw, K, d, d) arrays.
    """
    k, d = values["means"].shape[-2:]
    return {
        "weights": values["weights"],
        "means": loc + scale * values["means"],
        "covariances": covariances_from_draws(values, kind, k, d) * np.outer(scale, scale),
    }


# ------------------------------------------------- between the model and a mixture
def free_values(params: GaussianMixtureParams, d: int) -> dict[str, np.ndarray]:
    """Values of the free variables (constrained space) that reproduce ``params``.

    Parameters
    ----------
    params : GaussianMixtureParams
        A mixture in standardised units.
    d : int
        Number of features.

    Returns
    -------
    dict of str to ndarray
        ``weights`` (each at least 1e-3, renormalised), ``means``, ``stds`` and,
        for correlated covariances with ``d > 1``, ``corr_chol``.
    """
    kind = params.covariance_type
    weights = np.maximum(params.weights, 1e-3)
    values: dict[str, np.ndarray] = {
        "weights": weights / weights.sum(),
        "means": np.array(params.means),
    }
    if kind in ("spherical", "diag"):
        values["stds"] = np.sqrt(params.covariances)
    else:
        cov = params.covariances
        sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
        values["stds"] = sd
        if d > 1:
            corr = cov / (sd[..., :, None] * sd[..., None, :])
            values["corr_chol"] = np.linalg.cholesky(corr)
    return values


def covariances_from_draws(draws: dict[str, np.ndarray], kind: str, k: int, d: int) -> np.ndarray:
    """Full covariance matrices (..., K, d, d) from draws of ``stds`` (and ``corr_chol``).

    Parameters
    ----------
    draws : dict of str to ndarray
        ``stds`` and, for correlated covariances with ``d > 1``, ``corr_chol``,
        with any leading axes (chain, draw, ...).
    kind : {"full", "tied", "diag", "spherical"}
    k, d : int
        Numbers of components and features.

    Returns
    -------
    ndarray of shape (..., K, d, d)
    """
    stds = draws["stds"]
    lead = stds.shape[: stds.ndim - len(LAYOUTS[kind].scale_dims)]
    if kind == "spherical":
        stds = np.broadcast_to(stds[..., :, None], lead + (k, d))
    elif kind == "tied":
        stds = np.broadcast_to(stds[..., None, :], lead + (k, d))
    if kind in ("full", "tied") and d > 1:
        corr_chol = draws["corr_chol"]
        if kind == "tied":
            corr_chol = np.broadcast_to(corr_chol[..., None, :, :], lead + (k, d, d))
        chol = stds[..., :, None] * corr_chol
        return chol @ np.swapaxes(chol, -1, -2)
    return stds[..., :, None] ** 2 * np.eye(d)
