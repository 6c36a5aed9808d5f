"""Compare fitted mixtures by their expected log predictive density, a thin layer over arviz_stats.

Every model gets an estimate of the same quantity, the expected log pointwise
predictive density on the observations ``X``,

    elpd = sum_i log p(x_i | X without x_i),

estimated in the way that suits how it was fitted:

* NUTS fits (:class:`~bayesgmm.MarginalGaussianMixture`): PSIS-LOO,
  :func:`arviz_stats.loo` on ``idata_``;
* variational fits (:class:`~bayesgmm.DPGaussianMixture`): PSIS-LOO corrected for
  the approximate posterior, :func:`arviz_stats.loo_approximate_posterior` on
  ``to_datatree()`` with the stored log p and log q of every draw;
* point estimates (:class:`~bayesgmm.EMGaussianMixture`): exact K-fold
  cross-validation, :func:`arviz_stats.loo_kfold`, refitting EM on every training
  fold and scoring the held-out fold.

Above :data:`SUBSAMPLE_THRESHOLD` observations the PSIS estimates use
:func:`arviz_stats.loo_subsample` and the table says so. Whether a Pareto k is
too high is ArviZ's call: the threshold ``good_k`` its ELPD result carries
(:func:`pareto_k_threshold` gives the same number for a number of draws). The estimates are then
passed to :func:`arviz_stats.compare` (stacking weights, differences and their
standard errors). WAIC, which ArviZ 1.x no longer offers, is available from
:func:`waic` and is shown in separate columns, never fed to ``compare``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logsumexp

from bayesgmm._validation import (
    check_array,
    check_fitted,
    check_int,
    check_option,
    check_random_state,
    message,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

__all__ = [
    "SUBSAMPLE_THRESHOLD",
    "WAICResult",
    "compare",
    "elpd",
    "loo_mcse",
    "pareto_k_threshold",
    "waic",
]

#: Above this many observations, PSIS-LOO runs on a subsample (arviz_stats.loo_subsample).
SUBSAMPLE_THRESHOLD = 5000
#: Observations in that subsample.
SUBSAMPLE_SIZE = 1000
#: Posterior variance of a pointwise log likelihood above which WAIC is unreliable.
WAIC_VARIANCE_LIMIT = 0.4

_HIGH_K_ADVICE = (
    "{count} observation(s) with Pareto k above {threshold}: the PSIS estimate is unreliable "
    "there; draw more posterior samples, or use exact K-fold cross-validation "
    "(arviz_stats.loo_kfold)"
)


def pareto_k_threshold(n_samples: int) -> float:
    """Pareto k above which a PSIS estimate from ``n_samples`` draws is unreliable.

    ArviZ's rule, ``good_k = min(1 - 1 / log10(S), 0.7)`` for ``S > 1`` draws
    (0.7 otherwise), as arviz-stats computes it in ``arviz_stats.loo.loo_helper``
    (``_warn_pareto_k``) and stores as ``good_k`` in every PSIS ELPD result; the
    sample-size dependent bound is from Vehtari et al. (2024). Read ``good_k``
    from the result where there is one; this function is for checks that
    bayesgmm runs itself.

    Parameters
    ----------
    n_samples : int
        Number of posterior draws the importance ratios come from.

    Returns
    -------
    float
        The threshold, at most 0.7.

    References
    ----------
    Vehtari, A., Simpson, D., Gelman, A., Yao, Y. & Gabry, J. (2024). Pareto smoothed
    importance sampling. JMLR 25(72), 1-58.

    Examples
    --------
    >>> from bayesgmm.comparison import pareto_k_threshold
    >>> round(pareto_k_threshold(400), 3), pareto_k_threshold(4000)
    (0.616, 0.7)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    return min(1.0 - 1.0 / math.log10(n_samples), 0.7) if n_samples > 1 else 0.7


def _threshold_text(good_k: float, n_samples: int) -> str:
    return f"ArviZ's threshold ({good_k:.2f} for {n_samples} draws)"


def _pareto_k_check(result: Any) -> tuple[float, int, str]:
    """Largest Pareto k of an ELPD result, how many exceed ArviZ's threshold, and that threshold.

    The threshold is the ``good_k`` the result carries, described in words
    (``"ArviZ's threshold (0.67 for 1000 draws)"``). A result without Pareto k
    (K-fold cross-validation) gives ``(nan, 0, "")``.
    """
    pareto_k = getattr(result, "pareto_k", None)
    if pareto_k is None:
        return float("nan"), 0, ""
    k = np.asarray(pareto_k.values, dtype=float)
    k = k[np.isfinite(k)]
    if k.size == 0:
        return float("nan"), 0, ""
    good_k = result.good_k if result.good_k is not None else pareto_k_threshold(result.n_samples)
    count = int((k > good_k).sum())
    return float(k.max()), count, _threshold_text(float(good_k), int(result.n_samples))


def loo_mcse(result: Any, log_likelihood: Any) -> float:
    """Monte Carlo standard error of a PSIS-LOO elpd estimate.

    ``elpd = sum_i log E_i`` with ``E_i = sum_s w_is p_is`` the self-normalised
    importance-sampling estimate of ``p(x_i | x_-i)`` (``p_is = p(x_i | theta_s)``,
    ``w_is`` the normalised Pareto-smoothed weights, summing to 1 over the S draws).
    To first order (the delta method), its error is the mean over draws of

        h_s = S sum_i w_is (p_is / E_i - 1),

    so the Monte Carlo standard error of elpd is that of the mean of ``h``,
    which :func:`arviz_stats.mcse` estimates from the chains (its effective
    sample size accounts for autocorrelated draws). Summing ``h`` over points
    *before* taking the variance keeps the correlation between points that
    share a draw: a posterior draw with a wider component lowers the
    likelihood of all its points at once, so the errors of the pointwise
    ``elpd_i`` add up by more than their independent sum. For independent
    points the result reduces to ``sqrt(sum_i sum_s w_is^2 (p_is / E_i - 1)^2 /
    r_eff)``, the variance the loo R package computes per point (Vehtari et al.
    2024, section 3). arviz_stats 1.x reports the standard error of elpd over
    observations (``se``), not this Monte Carlo error; the two answer different
    questions: ``se`` how much elpd would change with other data, this how much
    it would change with other posterior draws of the same data.

    Parameters
    ----------
    result : arviz_stats ELPDData
        From ``arviz_stats.loo(..., pointwise=True)``, with ``log_weights``.
    log_likelihood : xarray.DataArray
        The pointwise log-likelihood the result was computed from, dims
        ``chain``, ``draw`` and observation dimensions.

    Returns
    -------
    float
        The Monte Carlo standard error of ``result.elpd``.

    References
    ----------
    Vehtari, A., Simpson, D., Gelman, A., Yao, Y. & Gabry, J. (2024). Pareto smoothed
    importance sampling. JMLR 25(72), 1-58.

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> import arviz_stats
    >>> from bayesgmm.comparison import loo_mcse
    >>> ll = np.random.default_rng(0).normal(-1.0, 0.1, size=(2, 200, 20))
    >>> tree = xr.DataTree.from_dict({
    ...     "posterior": xr.Dataset({"mu": (("chain", "draw"), ll[:, :, 0])}),
    ...     "log_likelihood": xr.Dataset({"obs": (("chain", "draw", "obs_id"), ll)})})
    >>> result = arviz_stats.loo(tree, pointwise=True)
    >>> bool(0 < loo_mcse(result, tree["log_likelihood"]["obs"]) < 0.1)
    True
    """
    import arviz_stats
    import xarray as xr

    if getattr(result, "log_weights", None) is None or result.elpd_i is None:
        raise ValueError(
            message(
                "result",
                "an ELPD result of arviz_stats.loo(..., pointwise=True) with log_weights",
                result,
            )
        )
    sample_dims = ["chain", "draw"]
    log_lik = log_likelihood.transpose(*sample_dims, ...)
    obs_dims = [d for d in log_lik.dims if d not in sample_dims]
    chains, draws = log_lik.sizes["chain"], log_lik.sizes["draw"]
    values = log_lik.values.reshape(chains, draws, -1)
    log_weights = result.log_weights.transpose(*sample_dims, *obs_dims).values
    log_weights = log_weights.reshape(chains, draws, -1)
    elpd_i = result.elpd_i.transpose(*obs_dims).values.reshape(-1)
    # w_is (p_is / E_i - 1), in log space for the ratio so that nothing overflows.
    terms = np.exp(log_weights + values - elpd_i) - np.exp(log_weights)
    h = chains * draws * terms.sum(axis=-1)
    error = arviz_stats.mcse(xr.DataArray(h, dims=sample_dims), method="mean")
    return float(np.asarray(error))


def repeated_draws(log_likelihood: Any) -> np.ndarray:
    """Fraction of each chain's draws that repeat the draw before them exactly.

    A NUTS chain moves at every draw unless every proposal is rejected; a chain
    stuck in a region the sampler cannot leave (a component collapsed onto tied
    data values, where the density has a spike) repeats its draw, and its
    constant pointwise log-likelihood breaks the Pareto fit of PSIS ("All tail
    values are the same").

    Parameters
    ----------
    log_likelihood : xarray.DataArray
        Dims ``chain``, ``draw`` and observation dimensions.

    Returns
    -------
    ndarray of shape (n_chains,)
    """
    values = np.asarray(log_likelihood.transpose("chain", "draw", ...).values)
    values = values.reshape(values.shape[0], values.shape[1], -1)
    if values.shape[1] < 2:
        return np.zeros(values.shape[0])
    same = (values[:, 1:] == values[:, :-1]).all(axis=-1)
    return same.mean(axis=1)


def psis_loo(tree: Any, var_name: str = "obs") -> tuple[Any, str]:
    """PSIS-LOO of a NUTS fit, or why it cannot be estimated.

    :func:`arviz_stats.loo` fits a generalised Pareto distribution to the largest
    importance ratios of every observation; when those ratios are all equal
    (a chain that did not move, so the same log-likelihood repeats in every
    draw) the fit is impossible and arviz_stats raises. Here that becomes a
    reason, so that a model selection can report the fit as not scored instead
    of stopping.

    Parameters
    ----------
    tree : xarray.DataTree
        With ``posterior`` and ``log_likelihood`` groups.
    var_name : str, default "obs"

    Returns
    -------
    result : arviz_stats ELPDData or None
        None when PSIS-LOO could not be computed.
    reason : str
        Empty, or why there is no result.
    """
    import arviz_stats

    try:
        return arviz_stats.loo(tree, pointwise=True, var_name=var_name), ""
    except ValueError as exc:
        stuck = repeated_draws(tree["log_likelihood"][var_name])
        detail = (
            f"; chain(s) {np.flatnonzero(stuck > 0.5).tolist()} repeat more than half their "
            "draws (stuck)"
            if (stuck > 0.5).any()
            else ""
        )
        return None, f"PSIS-LOO impossible ({exc}){detail}"


@dataclass(frozen=True)
class WAICResult:
    """The widely applicable information criterion on the log scale.

    Attributes
    ----------
    elpd_waic : float
        ``sum_i lppd_i - p_waic_i``, an estimate of the expected log predictive density.
    se : float
        Standard error of ``elpd_waic``: ``sqrt(n * var(elpd_waic_i))``.
    p_waic : float
        Effective number of parameters, ``sum_i var_s(log p(x_i | theta_s))``.
    n_samples : int
        Posterior draws used.
    n_data_points : int
        Observations.
    warning : bool
        True when some ``p_waic_i`` exceeds 0.4, where WAIC is known to be unreliable.
    elpd_i : ndarray of shape (n_data_points,)
    p_waic_i : ndarray of shape (n_data_points,)
    """

    elpd_waic: float
    se: float
    p_waic: float
    n_samples: int
    n_data_points: int
    warning: bool
    elpd_i: np.ndarray = field(repr=False)
    p_waic_i: np.ndarray = field(repr=False)


def _log_likelihood_matrix(fit: Any, var_name: str) -> np.ndarray:
    """Pointwise log likelihood of a model or DataTree as (n_draws, n_obs)."""
    tree = fit
    if not hasattr(fit, "children") and not hasattr(fit, "groups"):
        if hasattr(fit, "idata_"):
            tree = fit.idata_
        elif hasattr(fit, "to_datatree"):
            tree = fit.to_datatree()
        else:
            raise TypeError(
                message(
                    "fit",
                    "a Bayesian model (idata_ or to_datatree) or a DataTree with a "
                    "log_likelihood group",
                    fit,
                )
            )
    try:
        group = tree["log_likelihood"]
    except KeyError:
        raise ValueError(
            message(
                "fit",
                "a DataTree with a 'log_likelihood' group",
                "a DataTree without one",
                raw=True,
            )
        ) from None
    if var_name not in group.data_vars:
        raise ValueError(message("var_name", f"one of {sorted(group.data_vars)}", var_name))
    values = group[var_name]
    sample_dims = [d for d in ("chain", "draw") if d in values.dims]
    obs_dims = [d for d in values.dims if d not in sample_dims]
    return np.asarray(values.transpose(*sample_dims, *obs_dims).values).reshape(
        int(np.prod([values.sizes[d] for d in sample_dims])), -1
    )


def waic(fit: Any, *, var_name: str = "obs") -> WAICResult:
    """Widely applicable information criterion from the ``log_likelihood`` group.

    With ``S`` posterior draws and ``l_si = log p(x_i | theta_s)``:
    the log pointwise predictive density is ``lppd_i = log mean_s exp(l_si)``,
    the effective number of parameters ``p_waic_i`` is the sample variance over
    draws of ``l_si``, and ``elpd_waic = sum_i (lppd_i - p_waic_i)`` with standard
    error ``sqrt(n var_i(lppd_i - p_waic_i))`` (Vehtari, Gelman & Gabry 2017,
    eqs. 11-13 and 22). ArviZ 1.x removed WAIC because PSIS-LOO is more reliable
    and diagnosable; use it beside LOO, not instead.

    Parameters
    ----------
    fit : MarginalGaussianMixture, DPGaussianMixture or DataTree
        A fitted Bayesian model or a DataTree with a ``log_likelihood`` group
        (dims ``chain``, ``draw`` and one observation dimension).
    var_name : str, default "obs"
        Variable of the ``log_likelihood`` group.

    Returns
    -------
    WAICResult

    Warns
    -----
    UserWarning
        When any ``p_waic_i`` exceeds 0.4 (the posterior variance of a pointwise
        log likelihood): WAIC is then unreliable and PSIS-LOO should be preferred.

    References
    ----------
    Watanabe, S. (2010). Asymptotic equivalence of Bayes cross validation and
    widely applicable information criterion. JMLR 11, 3571-3594.

    Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation
    using leave-one-out cross-validation and WAIC. Statistics and Computing 27,
    1413-1432. https://doi.org/10.1007/s11222-016-9696-4

    Examples
    --------
    >>> import numpy as np
    >>> import xarray as xr
    >>> from bayesgmm import waic
    >>> ll = np.random.default_rng(0).normal(-1.0, 0.1, size=(2, 100, 20))
    >>> tree = xr.DataTree.from_dict(
    ...     {"log_likelihood": xr.Dataset({"obs": (("chain", "draw", "obs_id"), ll)})})
    >>> result = waic(tree)
    >>> result.n_data_points, bool(result.warning)
    (20, False)
    """
    ll = _log_likelihood_matrix(fit, var_name)
    n_samples, n_obs = ll.shape
    if n_samples < 2:
        raise ValueError(message("fit", "at least 2 posterior draws", f"{n_samples}", raw=True))
    lppd_i = logsumexp(ll, axis=0) - np.log(n_samples)
    p_waic_i = ll.var(axis=0, ddof=1)
    elpd_i = lppd_i - p_waic_i
    se = float(np.sqrt(n_obs * elpd_i.var()))
    high = int((p_waic_i > WAIC_VARIANCE_LIMIT).sum())
    if high:
        warnings.warn(
            f"{high} observation(s) have a posterior variance of the log likelihood above "
            f"{WAIC_VARIANCE_LIMIT}: WAIC is unreliable; prefer PSIS-LOO (bayesgmm.compare).",
            UserWarning,
            stacklevel=2,
        )
    return WAICResult(
        elpd_waic=float(elpd_i.sum()),
        se=se,
        p_waic=float(p_waic_i.sum()),
        n_samples=n_samples,
        n_data_points=n_obs,
        warning=bool(high),
        elpd_i=elpd_i,
        p_waic_i=p_waic_i,
    )


# ---------------------------------------------------------------- per-model elpd
def _kind(model: Any) -> str:
    """How a model's elpd is estimated: "nuts", "variational" or "point"."""
    if hasattr(model, "idata_"):
        return "nuts"
    if hasattr(model, "to_datatree"):
        return "variational"
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        return "point"
    raise TypeError(
        message("models", "fitted bayesgmm models (EM, marginal or Dirichlet-process)", model)
    )


def _check_same_data(name: str, tree: Any, X: np.ndarray) -> None:
    """Raise if the observed data stored in ``tree`` is not ``X``."""
    try:
        observed = np.asarray(tree["observed_data"]["obs"].values, dtype=np.float64)
    except KeyError:
        raise ValueError(
            f"{name}: expected a fit with an 'observed_data' group to check that it "
            "was fitted on X, got none"
        ) from None
    if observed.ndim == 1:
        observed = observed[:, None]
    if observed.shape != X.shape or not np.allclose(observed, X, rtol=1e-12, atol=0.0):
        raise ValueError(
            f"{name}: expected a model fitted on X (shape {X.shape}) so that every "
            f"elpd is on the same observations, got one fitted on other data (shape "
            f"{observed.shape}); refit it on X"
        )


def _point_datatree(log_lik: np.ndarray, X: np.ndarray) -> xr.DataTree:
    """Build a one-draw DataTree for a point estimate (what loo_kfold starts from)."""
    import xarray as xr

    n = X.shape[0]
    coords = {"chain": [0], "draw": [0], "obs_id": np.arange(n), "feature": np.arange(X.shape[1])}
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {"lp": (("chain", "draw"), [[float(log_lik.sum())]])},
                coords={"chain": [0], "draw": [0]},
            ),
            "log_likelihood": xr.Dataset(
                {"obs": (("chain", "draw", "obs_id"), log_lik[None, None, :])},
                coords={k: coords[k] for k in ("chain", "draw", "obs_id")},
            ),
            "observed_data": xr.Dataset(
                {"obs": (("obs_id", "feature"), X)},
                coords={k: coords[k] for k in ("obs_id", "feature")},
            ),
        }
    )


def _kfold_wrapper(model: Any, X: np.ndarray) -> Any:
    """Build an arviz_stats SamplingWrapper that refits a clone of a point-estimate model."""
    import xarray as xr
    from arviz_stats.loo import SamplingWrapper

    class _RefitWrapper(SamplingWrapper):
        """Refit ``type(model)(**model.get_params())`` on the training fold."""

        def __init__(self) -> None:
            super().__init__(model=model)

        def sel_observations(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            test = np.zeros(X.shape[0], dtype=bool)
            test[np.asarray(idx)] = True
            return X[~test], X[test]

        def sample(self, modified_observed_data: np.ndarray) -> Any:
            clone = type(model)(**model.get_params())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return clone.fit(modified_observed_data)

        def get_inference_data(self, fitted_model: Any) -> Any:
            return fitted_model

        def log_likelihood__i(self, excluded_obs: np.ndarray, idata__i: Any) -> xr.DataArray:
            values = idata__i.score_samples(excluded_obs)
            return xr.DataArray(values[None, None, :], dims=("chain", "draw", "obs_id"))

    return _RefitWrapper()


def _log_p_log_q(tree: Any) -> tuple[Any, Any]:
    """Return the per-draw log joint density and log q density stored by the variational DP."""
    try:
        stats = tree["sample_stats"]
        return stats["log_p"], stats["log_q"]
    except KeyError:
        raise ValueError(
            "model: expected a to_datatree() output holding the log p and log q of every "
            "draw (variables 'log_p' and 'log_q' in sample_stats), got neither"
        ) from None


def elpd(
    model: Any,
    X: Any,
    *,
    k_folds: int = 10,
    n_draws: int = 1000,
    random_state: Any = None,
    subsample_threshold: int = SUBSAMPLE_THRESHOLD,
    subsample_size: int = SUBSAMPLE_SIZE,
) -> tuple[Any, str]:
    """Estimate one fitted model's elpd on ``X`` with the method that suits it.

    Parameters
    ----------
    model : EMGaussianMixture, MarginalGaussianMixture or DPGaussianMixture
        A fitted model. EM is refitted on every training fold (its constructor
        parameters, not its fitted state, are used); the Bayesian models must
        have been fitted on ``X`` itself.
    X : array-like of shape (n_samples, n_features)
    k_folds : int, default 10
        Folds of the exact cross-validation for point estimates.
    n_draws : int, default 1000
        Draws from the variational posterior of the DP model.
    random_state : None, int or Generator
        Seeds the fold split, the variational draws and the subsample.
    subsample_threshold : int, default 5000
        Above this many observations, PSIS-LOO runs on a subsample of
        ``subsample_size`` observations (:func:`arviz_stats.loo_subsample`).
    subsample_size : int, default 1000
        Observations in that subsample.

    Returns
    -------
    elpd_data : arviz_stats ELPDData
        With pointwise values, ready for :func:`arviz_stats.compare`.
    method : str
        ``"psis-loo"``, ``"psis-loo (approximate posterior)"``,
        ``"k-fold (k=...)"``, with ``", subsampled (m of n)"`` appended when subsampled.
        A variational fit whose PSIS-LOO has Pareto k above ArviZ's threshold
        (:func:`pareto_k_threshold`) is cross-validated exactly instead
        (``"k-fold (k=...); psis-loo (approximate posterior) had N Pareto k above
        ArviZ's threshold (0.67 for 1000 draws)"``), since its refits take seconds.
    """
    X, _ = check_array(X)
    _check_model("model", model, X)
    k_folds, n_draws, subsample_threshold, subsample_size = _check_options(
        X, k_folds, n_draws, subsample_threshold, subsample_size
    )
    seed = int(check_random_state(random_state).integers(2**31 - 1))
    tree = _model_tree(model, X, "model", n_draws, seed)
    return _estimate(
        model,
        X,
        tree,
        k_folds=k_folds,
        subsample=X.shape[0] > subsample_threshold,
        subsample_size=subsample_size,
        seed=seed,
    )


def _model_tree(model: Any, X: np.ndarray, name: str, n_draws: int, seed: int) -> Any:
    """Return the DataTree of a Bayesian model after checking that it holds ``X``."""
    kind = _kind(model)
    if kind == "point":
        return None
    if kind == "nuts":
        tree = model.idata_
    else:
        tree = model.to_datatree(n_draws=n_draws, random_state=seed)
    _check_same_data(name, tree, X)
    if kind == "nuts" and "log_likelihood" not in tree.children:
        raise ValueError(
            f"{name}: expected a fit with a 'log_likelihood' group, got one without it "
            f"({tree.attrs.get('log_likelihood', 'not stored')}); call its "
            "compute_log_likelihood() or refit with log_likelihood=True"
        )
    return tree


def _estimate(
    model: Any,
    X: np.ndarray,
    tree: Any,
    *,
    k_folds: int,
    subsample: bool,
    subsample_size: int,
    seed: int,
) -> tuple[Any, str]:
    """Run the arviz_stats estimator that suits ``model`` (``tree`` from :func:`_model_tree`).

    For a variational fit whose PSIS-LOO has Pareto k above ArviZ's threshold,
    exact K-fold cross-validation (refitting the model) replaces it.
    """
    import arviz_stats

    n = X.shape[0]
    m = min(subsample_size, n)
    if tree is None:
        point_tree = _point_datatree(model.score_samples(X), X)
        result = arviz_stats.loo_kfold(
            point_tree,
            _kfold_wrapper(model, X),
            pointwise=True,
            var_name="obs",
            k=k_folds,
            seed=seed,
        )
        return result, f"k-fold (k={k_folds})"
    if _kind(model) == "nuts":
        if subsample:
            result = arviz_stats.loo_subsample(
                tree, observations=m, pointwise=True, var_name="obs", seed=seed
            )
            return result, f"psis-loo, subsampled ({m} of {n})"
        return arviz_stats.loo(tree, pointwise=True, var_name="obs"), "psis-loo"
    log_p, log_q = _log_p_log_q(tree)
    if subsample:
        result = arviz_stats.loo_subsample(
            tree,
            observations=m,
            pointwise=True,
            var_name="obs",
            log_p=log_p,
            log_q=log_q,
            seed=seed,
        )
        return result, f"psis-loo (approximate posterior), subsampled ({m} of {n})"
    result = arviz_stats.loo_approximate_posterior(
        tree, log_p=log_p, log_q=log_q, pointwise=True, var_name="obs"
    )
    _, n_high, threshold = _pareto_k_check(result)
    if n_high:
        # Importance sampling from a mean-field q fails when q is much narrower than
        # the posterior (Yao et al. 2018): high Pareto k. A variational fit takes
        # seconds, so exact K-fold cross-validation of its posterior predictive is
        # affordable and replaces the unreliable estimate.
        kfold, _ = _estimate(
            model,
            X,
            None,
            k_folds=k_folds,
            subsample=False,
            subsample_size=subsample_size,
            seed=seed,
        )
        return kfold, (
            f"k-fold (k={k_folds}); psis-loo (approximate posterior) had {n_high} "
            f"Pareto k above {threshold}"
        )
    return result, "psis-loo (approximate posterior)"


def _check_options(
    X: np.ndarray, k_folds: Any, n_draws: Any, subsample_threshold: Any, subsample_size: Any
) -> tuple[int, int, int, int]:
    return (
        check_int(k_folds, "k_folds", minimum=2, maximum=X.shape[0]),
        check_int(n_draws, "n_draws", minimum=10),
        check_int(subsample_threshold, "subsample_threshold", minimum=1),
        check_int(subsample_size, "subsample_size", minimum=2),
    )


def _check_model(name: str, model: Any, X: np.ndarray) -> None:
    _kind(model)
    check_fitted(model)
    if model.n_features_in_ != X.shape[1]:
        raise ValueError(
            f"{name}: expected a model fitted on data with {X.shape[1]} feature(s) like X, "
            f"got one with {model.n_features_in_}"
        )


def _fill_subsample(result: Any) -> Any:
    """Fill the pointwise elpd outside a LOO subsample with its PSIS approximation.

    :func:`arviz_stats.loo_subsample` leaves NaN in ``elpd_i`` for the
    observations outside the subsample. The elpd differences of
    :func:`arviz_stats.compare` use only the subsampled observations, but its
    stacking weights need every pointwise value and stay at their uniform
    starting point when some are NaN. The filled values are the approximations
    (``elpd_loo_approx``) that the subsampling estimator itself uses.
    """
    approx = getattr(result, "elpd_loo_approx", None)
    if approx is None or result.elpd_i is None:
        return result
    values = np.asarray(result.elpd_i.values, dtype=float)
    missing = np.isnan(values)
    if not missing.any():
        return result
    filled = result.elpd_i.copy(data=np.where(missing, np.asarray(approx.values), values))
    return dataclasses.replace(result, elpd_i=filled)


def _diagnostic(result: Any) -> tuple[float, int, str]:
    """Largest Pareto k, the count above ArviZ's threshold and what to do about it."""
    k_max, count, threshold = _pareto_k_check(result)
    text = _HIGH_K_ADVICE.format(count=count, threshold=threshold) if count else ""
    return k_max, count, text


def compare(
    models: dict[str, Any],
    X: Any,
    *,
    method: str = "stacking",
    k_folds: int = 10,
    n_draws: int = 1000,
    include_waic: bool = True,
    random_state: Any = None,
    subsample_threshold: int = SUBSAMPLE_THRESHOLD,
    subsample_size: int = SUBSAMPLE_SIZE,
) -> pd.DataFrame:
    """Compare fitted mixtures by their expected log predictive density on ``X``.

    Each model's elpd is estimated as :func:`elpd` describes (PSIS-LOO for NUTS,
    PSIS-LOO with the approximate-posterior correction for variational fits,
    exact K-fold cross-validation for EM, and for variational fits whose
    Pareto k exceeds ArviZ's threshold, where importance sampling is unreliable),
    then :func:`arviz_stats.compare`
    ranks them, computes the differences to the best model with their standard
    errors and the stacking weights (Yao et al. 2018,
    https://doi.org/10.1214/17-BA1091).

    Parameters
    ----------
    models : dict of str to fitted model
        At least one model. The Bayesian models must have been fitted on ``X``.
    X : array-like of shape (n_samples, n_features)
        The observations on which every elpd is computed.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}, default "stacking"
        How :func:`arviz_stats.compare` weights the models.
    k_folds : int, default 10
        Folds of the exact cross-validation for EM.
    n_draws : int, default 1000
        Draws from the variational posterior of DP models.
    include_waic : bool, default True
        Add ``elpd_waic``, ``se_waic`` and ``p_waic`` columns for Bayesian models
        (NaN for EM). They are shown beside LOO and never enter the ranking.
    random_state : None, int or Generator
        Seeds the fold split, the variational draws and subsamples.
    subsample_threshold : int, default 5000
        Above this many observations PSIS-LOO runs on a subsample of
        ``subsample_size`` observations (:func:`arviz_stats.loo_subsample`); the
        ``criterion`` column says so and a ``subsampling_dse`` column appears.
    subsample_size : int, default 1000
        Observations in that subsample (the same ones for every model).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first, with the columns of
        :func:`arviz_stats.compare` (``rank``, ``elpd_diff``, ``dse``, ``p_worse``,
        ``diag_diff``, ``diag_elpd``, ``p``, ``elpd``, ``se``, ``weight``)
        unrounded, then ``criterion`` (how the elpd was estimated),
        ``pareto_k_max`` and ``n_high_pareto_k`` (NaN and 0 for K-fold),
        ``warning`` (empty, or what to do when Pareto k exceed ArviZ's threshold
        :func:`pareto_k_threshold`), and the WAIC
        columns.

    Raises
    ------
    ValueError
        If a Bayesian model was fitted on other data than ``X``, or ``models`` is empty.

    References
    ----------
    Vehtari, A., Gelman, A. & Gabry, J. (2017). Practical Bayesian model evaluation
    using leave-one-out cross-validation and WAIC. Statistics and Computing 27,
    1413-1432. https://doi.org/10.1007/s11222-016-9696-4

    Vehtari, A., Simpson, D., Gelman, A., Yao, Y. & Gabry, J. (2024). Pareto smoothed
    importance sampling. JMLR 25(72), 1-58.

    Magnusson, M., Andersen, M. R., Jonasson, J. & Vehtari, A. (2019). Bayesian
    leave-one-out cross-validation for large data. ICML, PMLR 97, 4244-4253.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, compare
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    >>> models = {f"K={k}": EMGaussianMixture(k, random_state=0).fit(X) for k in (1, 2)}
    >>> table = compare(models, X, k_folds=5, random_state=0)
    >>> list(table.index)
    ['K=2', 'K=1']
    >>> str(table.loc["K=2", "criterion"])
    'k-fold (k=5)'
    """
    import arviz_stats
    import pandas as pd

    if not isinstance(models, dict):
        raise TypeError(message("models", "a dict of name to fitted model", models))
    if not models:
        raise ValueError(message("models", "at least one model", "an empty dict", raw=True))
    method = check_option(method, "method", ("stacking", "BB-pseudo-BMA", "pseudo-BMA"))
    X, _ = check_array(X)
    k_folds, n_draws, subsample_threshold, subsample_size = _check_options(
        X, k_folds, n_draws, subsample_threshold, subsample_size
    )
    seed = int(check_random_state(random_state).integers(2**31 - 1))
    for name, model in models.items():
        _check_model(f"models[{name!r}]", model, X)
    # Every check (including that the Bayesian models were fitted on X) runs before
    # any cross-validation. The same seed for every model gives the same folds and the
    # same subsample, so that the pointwise differences pair up.
    trees = {
        name: _model_tree(model, X, f"models[{name!r}]", n_draws, seed)
        for name, model in models.items()
    }
    estimates: dict[str, Any] = {}
    how: dict[str, str] = {}
    for name, model in models.items():
        estimates[name], how[name] = _estimate(
            model,
            X,
            trees[name],
            k_folds=k_folds,
            subsample=X.shape[0] > subsample_threshold,
            subsample_size=subsample_size,
            seed=seed,
        )
    if len(estimates) == 1:
        ((name, result),) = estimates.items()
        table = pd.DataFrame(
            {
                "rank": [0],
                "elpd_diff": [0.0],
                "dse": [0.0],
                "p_worse": [np.nan],
                "diag_diff": [""],
                "diag_elpd": [""],
                "p": [result.p],
                "elpd": [result.elpd],
                "se": [result.se],
                "weight": [1.0],
            },
            index=[name],
        )
    else:
        with warnings.catch_warnings():
            # Comparing K-fold with PSIS-LOO is what this function is for; the mix is
            # recorded in the criterion column instead.
            warnings.filterwarnings("ignore", message="Comparing LOO-CV to K-fold-CV")
            table = arviz_stats.compare(
                {name: _fill_subsample(result) for name, result in estimates.items()},
                method=method,
                round_to="none",
            )
    table["criterion"] = [how[name] for name in table.index]
    diagnostics = [_diagnostic(estimates[name]) for name in table.index]
    table["pareto_k_max"] = [d[0] for d in diagnostics]
    table["n_high_pareto_k"] = [d[1] for d in diagnostics]
    table["warning"] = [d[2] for d in diagnostics]
    if include_waic:
        rows = []
        for name in table.index:
            tree = trees[name]
            if tree is None:
                rows.append((np.nan, np.nan, np.nan))
                continue
            with warnings.catch_warnings():
                # Reported in the warning column instead, from the result's flag.
                warnings.simplefilter("ignore", UserWarning)
                result = waic(tree)
            if result.warning:
                note = "WAIC unreliable (some p_waic_i > 0.4): use the LOO columns"
                previous = table.loc[name, "warning"]
                table.loc[name, "warning"] = f"{previous}; {note}" if previous else note
            rows.append((result.elpd_waic, result.se, result.p_waic))
        table["elpd_waic"] = [r[0] for r in rows]
        table["se_waic"] = [r[1] for r in rows]
        table["p_waic"] = [r[2] for r in rows]
    return table
