"""Bayesian Gaussian mixture with the labels marginalised out, sampled by NUTS.

:class:`MarginalGaussianMixture` orchestrates a fit and packages its draws as a
DataTree. The model itself (priors in standardised units, the likelihood summed
over labels) is built by :mod:`bayesgmm._marginal_model`, sampled by NUTS in
:mod:`bayesgmm._nuts` and approximated at its mode in :mod:`bayesgmm._laplace`.

Large data: ``fit(X, method="laplace")`` approximates the posterior by a normal
distribution at its mode, with a Pareto-k check; ``fit(X, subsample=m)`` fits m
random rows.

Identifiability. The posterior is invariant under the K! permutations of the
components. All chains start from one EM solution (jittered), which keeps them
in the same labelling in practice; every draw is then relabelled to that EM
solution by an assignment on the Kullback-Leibler divergence between components
(:mod:`bayesgmm.relabel`), so per-component summaries, R-hat and ESS mean
something. The raw draws stay in the ``posterior_raw`` group. Chains that end in
genuinely different modes (not just permuted) are detected and reported with a
warning; they are never silently averaged.

References
----------
Stephens, M. (2000). Dealing with label switching in mixture models. JRSS B
62(4), 795-809. doi:10.1111/1467-9868.00265
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logsumexp

from bayesgmm import _gaussian, _laplace, _nuts, relabel
from bayesgmm._base import MixtureBase
from bayesgmm._intervals import check_ci, credible_interval, membership_intervals
from bayesgmm._marginal_model import (
    DEFAULT_PRIORS,
    ModelDraws,
    ModelSpec,
    build_pymc_model,
    check_priors,
    covariances_in_layout,
    draws_in_data_units,
    params_in_data_units,
    standardize,
)
from bayesgmm._missing import missingness_patterns
from bayesgmm._validation import (
    _UNSET,
    check_array,
    check_fitted,
    check_int,
    check_option,
    check_random_state,
    check_sample_weight,
    message,
    renamed_argument,
    seed_argument_name,
)
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator

    import pymc as pm
    import xarray as xr

__all__ = [
    "DEFAULT_PRIORS",
    "LOG_LIKELIHOOD_MAX_ELEMENTS",
    "MarginalGaussianMixture",
    "SamplingWarning",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
_METHODS = ("nuts", "laplace")
# The label every DataTree and interval carries (attribute ``interval_method``).
_INTERVAL_METHODS = {"nuts": "NUTS", "laplace": "Laplace"}

LOG_LIKELIHOOD_MAX_ELEMENTS = 1 << 26
"""Largest draws x rows for which ``fit(..., log_likelihood="auto")`` stores the pointwise
log-likelihood (2^26 float64 numbers, 512 MiB)."""

# Elements of the (draws, points, components) arrays evaluated at once (about 64 MiB).
_BLOCK_ELEMENTS = 1 << 23
# Most draws behind the credible intervals of predict_proba, spread evenly over the chains.
_INTERVAL_DRAWS = 1000


class SamplingWarning(UserWarning):
    """Divergences, poor convergence, low ESS, chains in different modes, a poor approximation."""


# ------------------------------------------------------------------ draws
@dataclasses.dataclass(frozen=True)
class _Posterior:
    """Draws in the data's units, as made (``raw``) and relabelled to the EM start.

    ``relabelled`` and ``raw`` hold ``weights``, ``means`` and full ``covariances``,
    each (chain, draw, ...).
    """

    relabelled: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    reference: GaussianMixtureParams
    permutations: np.ndarray  # (chain, draw, K)
    distance: np.ndarray  # (chain,)
    flagged: np.ndarray  # (chain,)
    noise_weight: np.ndarray | None = None  # (chain, draw): w_0, with a noise component

    def mean(self) -> GaussianMixtureParams:
        """Posterior mean of the relabelled weights, means and covariances."""
        kind = self.reference.covariance_type
        weights = self.relabelled["weights"].mean(axis=(0, 1))
        means = self.relabelled["means"].mean(axis=(0, 1))
        full = self.relabelled["covariances"].mean(axis=(0, 1))
        return GaussianMixtureParams(
            weights / weights.sum(), means, covariances_in_layout(full, kind), kind
        )


def _flat_draws(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chain, draw, ...) arrays of weights, means and covariances as (draws, ...)."""
    k, d = means.shape[-2:]
    return (
        weights.reshape(-1, k),
        means.reshape(-1, k, d),
        covariances.reshape(-1, k, d, d),
    )


def _relabel(
    values: dict[str, np.ndarray],
    start: GaussianMixtureParams,
    loc: np.ndarray,
    scale: np.ndarray,
    noise: bool = False,
) -> _Posterior:
    """Put the model's draws in the data's units and relabel them to ``start``.

    With ``noise`` the model's last weight is the noise's ``w_0``: it is split off
    and only the Gaussians are permuted, compared with ``start`` by their weights
    given that a point is not noise, ``w_k / (1 - w_0)``.
    """
    noise_weight = None
    if noise:
        noise_weight = values["weights"][..., -1]
        values = {**values, "weights": values["weights"][..., :-1]}
    chains, draws, k = values["weights"].shape
    raw = draws_in_data_units(values, start.covariance_type, loc, scale)
    weights, means, covs = raw["weights"], raw["means"], raw["covariances"]
    reference = params_in_data_units(start, loc, scale)
    flat = (chains * draws, k)
    signal = weights if noise_weight is None else weights / (1.0 - noise_weight[..., None])
    perm = relabel.relabel_draws(*_flat_draws(signal, means, covs), reference).reshape(
        chains, draws, k
    )
    rows = perm.reshape(flat)
    w_rl, m_rl, c_rl = (
        relabel.apply_permutations(rows, a.reshape(flat + a.shape[3:])).reshape(a.shape)
        for a in (weights, means, covs)
    )
    distance, flagged = relabel.chain_disagreement(m_rl)
    return _Posterior(
        relabelled={"weights": w_rl, "means": m_rl, "covariances": c_rl},
        raw=raw,
        reference=reference,
        permutations=perm,
        distance=distance,
        flagged=flagged,
        noise_weight=noise_weight,
    )


def _log_joint_blocks(
    X: np.ndarray, w: np.ndarray, m: np.ndarray, c: np.ndarray, center: np.ndarray
) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield ``(rows, draws, log w_sk + log N(x_i | mu_sk, Sigma_sk))`` block by block.

    ``w``, ``m``, ``c``: (S, K), (S, K, d), (S, K, d, d) draws. ``rows`` and
    ``draws`` are slices; the array has shape (draws, rows, K). Each block of rows
    is visited with all its draw blocks, in order, before the next, so a caller can
    reduce over draws one row block at a time: memory stays within a few blocks
    of about 8M numbers (``_BLOCK_ELEMENTS``) whatever the numbers of rows and
    draws. Each density is computed by whitening, ``|L^-1 (x - mu)|^2`` with
    ``Sigma = L L'``, in coordinates centred on ``center`` (the training mean).
    """
    s, k = w.shape
    n, d = X.shape
    chol = np.linalg.cholesky(c)
    inverse = np.linalg.inv(chol)  # (S, K, d, d), lower triangular
    shift = np.einsum("skab,skb->ska", inverse, m - center)
    constant = -np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1) - 0.5 * d * _LOG_2PI
    with np.errstate(divide="ignore"):
        constant = constant + np.log(w)  # (S, K)
    per_row_draw = k * (d + 1)
    rows = min(n, max(256, _BLOCK_ELEMENTS // max(1, s * per_row_draw)))
    step = max(1, min(s, _BLOCK_ELEMENTS // max(1, rows * per_row_draw)))
    for lo in range(0, n, rows):
        row_slice = slice(lo, min(lo + rows, n))
        block_t = (X[row_slice] - center).T  # (d, rows)
        for first in range(0, s, step):
            draw_slice = slice(first, min(first + step, s))
            projected = inverse[draw_slice] @ block_t  # (draws, K, d, rows)
            projected -= shift[draw_slice, :, :, None]
            maha = np.einsum("skdr,skdr->srk", projected, projected)
            yield row_slice, draw_slice, constant[draw_slice, None, :] - 0.5 * maha


def _log_joint_blocks_observed(
    X: np.ndarray, w: np.ndarray, m: np.ndarray, c: np.ndarray, center: np.ndarray
) -> Iterator[tuple[Any, slice, np.ndarray]]:
    """:func:`_log_joint_blocks` on the observed coordinates of each row.

    Complete data go straight to :func:`_log_joint_blocks`. With missing entries
    (NaN), the rows of each missingness pattern ``o`` are evaluated under the
    marginals ``N(mu_sko, Sigma_skoo)``, and ``rows`` is then an array of row
    numbers instead of a slice; each block of rows still comes with all its draw
    blocks, in order.
    """
    if not np.isnan(X).any():
        yield from _log_joint_blocks(X, w, m, c, center)
        return
    for observed, rows in zip(*missingness_patterns(X), strict=True):
        seen = np.flatnonzero(observed)
        blocks = _log_joint_blocks(
            X[np.ix_(rows, seen)], w, m[..., seen], c[..., seen[:, None], seen], center[seen]
        )
        for row_slice, draw_slice, log_joint in blocks:
            yield rows[row_slice], draw_slice, log_joint


# ----------------------------------------------------------------- checks
def _check_start(start: Any, k: int, kind: str, d: int) -> None:
    """Check ``fit``'s ``start``: None or a mixture of this model's shape."""
    if start is None:
        return
    if not isinstance(start, GaussianMixtureParams):
        raise TypeError(message("start", "None or a GaussianMixtureParams", start))
    shape = (start.n_components, start.covariance_type, start.n_features)
    if shape != (k, kind, d):
        raise ValueError(
            message(
                "start",
                f"a mixture of {k} components, covariance_type {kind!r} and {d} features",
                f"{shape[0]} components, {shape[1]!r}, {shape[2]} features",
                raw=True,
            )
        )


def _check_subsample(subsample: Any, n: int, k: int) -> int | None:
    if subsample is None:
        return None
    low = max(2, k + 1)
    if isinstance(subsample, bool) or not isinstance(subsample, (int, np.integer)):
        raise TypeError(message("subsample", "None or an integer", subsample))
    if not low <= subsample <= n:
        raise ValueError(
            message(
                "subsample",
                f"None or an integer between {low} and the number of rows ({n})",
                subsample,
            )
        )
    return int(subsample)


def _check_log_likelihood(value: Any) -> bool | str:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(message("log_likelihood", "True, False or 'auto'", value))
        return value
    raise TypeError(message("log_likelihood", "True, False or 'auto'", value))


_WEIGHTED_LOG_LIKELIHOOD = (
    "not stored: a weighted fit (sample_weight) has no pointwise log-likelihood for LOO, "
    "its rows are not exchangeable observations; refit with rows repeated by their "
    "integer weights for LOO"
)


def _stored_log_likelihood(
    X: np.ndarray,
    posterior: _Posterior,
    store: bool | str,
    loc: np.ndarray,
    scale: np.ndarray,
    log_volume: float | None = None,
) -> tuple[np.ndarray | None, str | None]:
    """Compute the pointwise log-likelihood (chain, draw, row) to store, or say why not."""
    weights = posterior.relabelled["weights"]
    n_draws, n = weights.shape[0] * weights.shape[1], X.shape[0]
    within = n_draws * n <= LOG_LIKELIHOOD_MAX_ELEMENTS
    if store is True or (store == "auto" and within):
        flat = _flat_draws(*(posterior.relabelled[v] for v in ("weights", "means", "covariances")))
        log_lik = _pointwise_log_likelihood(X, *flat, loc, scale)
        if posterior.noise_weight is not None and log_volume is not None:
            log_lik = _with_noise(log_lik, posterior.noise_weight.reshape(-1), log_volume)
        return log_lik.reshape(weights.shape[:2] + (n,)), None
    reason = (
        f" > LOG_LIKELIHOOD_MAX_ELEMENTS = {LOG_LIKELIHOOD_MAX_ELEMENTS}"
        if store == "auto"
        else " (log_likelihood=False)"
    )
    return None, (
        f"not stored: {n_draws} draws x {n} rows = {n_draws * n} numbers{reason}; "
        "fit with log_likelihood=True to store it, or on a subsample"
    )


def _pointwise_log_likelihood(
    X: np.ndarray,
    w: np.ndarray,
    m: np.ndarray,
    c: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """``log sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` for every draw: shape (S, n).

    A row with missing entries (NaN) gets the density of its observed coordinates
    ``o``, ``log sum_k w_sk N(x_io | mu_sko, Sigma_skoo)``, rows grouped by pattern.
    One compiled loop over draws (:func:`bayesgmm._numba_density.log_density_draws`,
    the density NUTS samples, its draws spread over the cores), in standardised units.
    """
    from bayesgmm._numba_density import log_density_draws

    if not np.isnan(X).any():
        return log_density_draws(X, w, m, c, loc, scale)
    out = np.empty((w.shape[0], X.shape[0]))
    for observed, rows in zip(*missingness_patterns(X), strict=True):
        seen = np.flatnonzero(observed)
        out[:, rows] = log_density_draws(
            X[np.ix_(rows, seen)],
            w,
            m[..., seen],
            c[..., seen[:, None], seen],
            loc[seen],
            scale[seen],
        )
    return out


def _with_noise(log_lik: np.ndarray, noise_weight: np.ndarray, log_volume: float) -> np.ndarray:
    """``log(p_s(x_i) + w_0s / V)`` from the Gaussians' ``log p_s(x_i)``, (S, n), and w_0 (S,)."""
    with np.errstate(divide="ignore"):
        return np.logaddexp(log_lik, (np.log(noise_weight) - log_volume)[:, None])


def _check_noise(noise: Any, hypervolume: Any) -> tuple[bool, float | None]:
    """``noise`` as a bool and ``hypervolume`` as None or a positive finite float."""
    if not isinstance(noise, (bool, np.bool_)):
        raise TypeError(message("noise", "a bool", noise))
    if hypervolume is None:
        return bool(noise), None
    if not noise:
        raise ValueError(
            message(
                "hypervolume",
                "None when noise=False (it sets up the noise component)",
                hypervolume,
            )
        )
    if isinstance(hypervolume, bool) or not isinstance(hypervolume, (int, float, np.number)):
        raise TypeError(message("hypervolume", "None or a positive real number", hypervolume))
    if not (np.isfinite(hypervolume) and hypervolume > 0):
        raise ValueError(message("hypervolume", "None or a positive finite number", hypervolume))
    return True, float(hypervolume)


def _log_volume(X: np.ndarray, hypervolume: float | None) -> float:
    """``log V`` in the data's units: the user's volume, or mclust's ``hypvol`` of ``X``."""
    from bayesgmm._noise import log_hypervolume

    return log_hypervolume(X) if hypervolume is None else float(np.log(hypervolume))


def _in_model_units(
    params: GaussianMixtureParams, loc: np.ndarray, scale: np.ndarray
) -> GaussianMixtureParams:
    """Move a mixture in the data's units to the model's: ``z = (x - loc) / scale``."""
    return params_in_data_units(params, -loc / scale, 1.0 / scale)


# --------------------------------------------------------------------- estimator
class MarginalGaussianMixture(MixtureBase):
    """Gaussian mixture with labels marginalised out, sampled by NUTS or approximated by Laplace.

    ``fit(X)`` samples the posterior by NUTS (nutpie or PyMC); ``fit(X,
    method="laplace")`` approximates it by a normal distribution at its mode, for
    data too large for NUTS (see :meth:`fit` and :doc:`/how-to/large-data`).

    Parameters
    ----------
    n_components : int
        Number of components K.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Covariance layout, as in scikit-learn.
    priors : dict, optional
        Overrides of :data:`DEFAULT_PRIORS` (keys ``weights_concentration``,
        ``means_loc``, ``means_scale``, ``stds_scale``, ``lkj_eta``), all in
        standardised units: the data are centred and divided by their per-feature
        standard deviation before fitting and the posterior is transformed back,
        so the same priors behave the same for data in metres or in km/s.
    loc, scale : float or array-like of shape (n_features,), optional
        Fix the standardisation ``z = (x - loc) / scale`` instead of taking the
        data's per-feature mean (``loc=None``) and standard deviation
        (``scale=None``); a number applies to every feature, ``scale`` must be
        positive. The priors then hold in the units given (``loc=0, scale=1``:
        the data's own units), so the prior no longer depends on the data, as
        simulation-based calibration (:doc:`/explanation/calibration`) and
        priors elicited in physical units need. Checked at ``fit``; saved with
        the model.
    noise : bool, default False
        Add mclust's uniform noise component for outliers (Banfield and Raftery
        1993, doi:10.2307/2532201): the density is ``sum_k w_k N(x | mu_k,
        Sigma_k) + w_0 / V``, the weights a Dirichlet over K + 1 entries with the
        noise's ``w_0`` last (concentration ``weights_concentration`` for all).
        Chains start from ``EMGaussianMixture(noise=True)``; nutpie samples the
        PyMC model itself (compiled once per process and shape, tens of seconds),
        not bayesgmm's numba density. :meth:`predict` labels noise ``-1`` and
        :meth:`predict_proba` has the noise's probability as its last column (with
        its credible interval under ``ci_prob``). NUTS only.
    hypervolume : float, optional
        With ``noise=True``: the volume ``V`` of the noise's region, in the
        data's units; by default mclust's ``hypvol`` of the fitted rows
        (:func:`bayesgmm._noise.log_hypervolume`).

    Attributes
    ----------
    params_ : GaussianMixtureParams
        Posterior mean of the relabelled weights, means and covariances.
    idata_ : xarray.DataTree
        Root attribute ``inference_method`` (``"nuts"`` or ``"laplace"``). Groups
        ``posterior`` (relabelled ``weights``, ``means``, ``covariances`` (always
        full), ``stds``, ``correlations``), ``posterior_raw`` (the same, as
        sampled; with ``noise``, ``weights`` are the Gaussians' ``w_k``, summing
        to ``1 - w_0``, and ``noise_weight`` is ``w_0``, per draw),
        ``observed_data``, ``log_likelihood`` (``obs``, per ``obs_id``;
        left out on large data, see ``fit``'s ``log_likelihood``), and
        ``sample_stats`` (NUTS) or ``laplace`` (Laplace: the mode and precision
        matrix in unconstrained coordinates, the log densities of the check
        draws, and attributes ``pareto_k``, ``good_k``, ``newton_decrement`` and
        the numbers of gradient evaluations).
    inference_method_ : {"nuts", "laplace"}
        How the posterior draws were made.
    subsample_indices_ : ndarray of int or None
        Rows of ``X`` that were fitted when ``fit`` was given ``subsample``.
    reference_ : GaussianMixtureParams
        The EM solution the chains started from and were relabelled to.
    permutations_ : ndarray of shape (n_chains, n_draws, K)
        ``permutations_[c, s, k]`` is the raw component relabelled as ``k``.
    chain_distance_ : ndarray of shape (n_chains,)
        Distance of each chain's relabelled means from the consensus, in
        posterior standard deviations (above 4: a different mode).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    sampler_ : str or None
        ``"nutpie"`` or ``"pymc"`` for NUTS, None for Laplace.
    noise_weight_ : float
        Posterior mean of the noise's weight ``w_0`` (0.0 without ``noise``).
    hypervolume_ : float or None
        ``V`` in the data's units; None without ``noise``.
    timings_ : dict
        Seconds spent on the EM start (``start``), compiling (``compile``, 0 when
        the cache was used), sampling (``sample``; for Laplace ``optimize`` and
        ``draw``) and the pointwise log-likelihood (``log_likelihood``).

    Notes
    -----
    Compiling the model dominates the first NUTS fit (a few seconds for
    Laplace's method). The process keeps the eight most recently used compiled
    models, each for one number of features, K, covariance type, priors,
    sampler or method, and feature names; a later fit with the same ones
    reuses the compiled model with the new data.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import MarginalGaussianMixture
    >>> model = MarginalGaussianMixture(2, covariance_type="diag")
    >>> model.get_params()["n_components"]
    2
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> pymc_model = model.build_model(X)  # no sampling: inspect the graph
    >>> sorted(rv.name for rv in pymc_model.free_RVs)
    ['means', 'stds', 'weights']
    >>> len(pymc_model.coords["obs_id"])
    100
    """

    _fitted_attributes = ("params_", "idata_")
    _allow_nan = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        priors: dict[str, float] | None = None,
        loc: Any = None,
        scale: Any = None,
        noise: bool = False,
        hypervolume: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.priors = priors
        self.loc = loc
        self.scale = scale
        self.noise = noise
        self.hypervolume = hypervolume

    def _validated(self) -> tuple[int, str, dict[str, float]]:
        k = check_int(self.n_components, "n_components", minimum=1)
        kind = check_option(self.covariance_type, "covariance_type", _gaussian.COVARIANCE_TYPES)
        return k, kind, check_priors(self.priors)

    # ---------------------------------------------------------- the model
    def build_model(self, X: Any) -> pm.Model:
        """Build (without sampling) the PyMC model for ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        pymc.Model
            Variables ``weights`` (component), ``means`` (component, feature),
            ``stds``, ``corr_chol`` (full and tied, d > 1), data ``X`` and the
            observed ``obs`` (obs_id, feature), all in standardised units
            ``(X - loc) / scale`` (by default ``(X - X.mean(0)) / X.std(0)``);
            its log-likelihood per row is
            ``log sum_k w_k N(z_i | mu_k, Sigma_k)``. With ``noise=True``,
            ``weights`` has K + 1 entries (dim ``mixture_component``, the noise
            last), the data ``log_hypervolume`` is ``log V`` in standardised units,
            and a row's log-likelihood is ``log(sum_k w_k N(z_i | mu_k, Sigma_k)
            + w_0 / V_z)``.
        """
        k, kind, priors = self._validated()
        noise, hypervolume = _check_noise(self.noise, self.hypervolume)
        X, names = check_array(X, min_samples=2, allow_nan=True)
        loc, scale = standardize(X, self.loc, self.scale)
        features = names if names is not None else list(range(X.shape[1]))
        if not noise:
            return build_pymc_model((X - loc) / scale, k, kind, priors, features)
        log_volume = _log_volume(X, hypervolume) - float(np.log(scale).sum())
        return build_pymc_model(
            (X - loc) / scale, k, kind, priors, features, noise=True, log_hypervolume=log_volume
        )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        method: str = "nuts",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        nuts_sampler: str = "auto",
        random_state: Any = None,
        progressbar: bool = True,
        nuts_sampler_kwargs: dict[str, Any] | None = None,
        subsample: int | None = None,
        log_likelihood: bool | str = "auto",
        random_seed: Any = _UNSET,
        start: GaussianMixtureParams | None = None,
    ) -> MarginalGaussianMixture:
        """Sample the posterior by NUTS, or approximate it by Laplace's method, from EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry (missing at random): each row enters the
            likelihood through the mixture's marginal on its observed features,
            one term per missingness pattern (:meth:`build_model` shows them);
            the standardisation uses the observed values, and the EM start is
            fitted to the data with each missing entry set to its column's mean.
            Rows entirely NaN and ``method="laplace"`` are refused. nutpie then
            samples the PyMC model, compiled for this fit (see
            :doc:`/how-to/missing-values-bayesian`).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights ``w_i >= 0``: the likelihood is
            ``prod_i p(x_i | theta)^{w_i}``, so integer weights give the
            posterior of the data with row i repeated ``w_i`` times and a zero
            weight drops the row. Both NUTS samplers (the compiled density and
            the PyMC model's data variable ``sample_weight``) and Laplace's
            method weight each row's log-likelihood and gradient; the default
            standardisation and the EM start are weighted. A weighted fit
            stores no pointwise log-likelihood (``log_likelihood=True`` is
            refused): the rows of a weighted fit are not exchangeable
            observations, so PSIS-LOO over them would count each row once
            whatever its weight. The weights are kept in
            ``idata_["constant_data"]["sample_weight"]``.
        method : {"nuts", "laplace"}, default "nuts"
            ``"nuts"`` samples the posterior by NUTS, every chain starting from an
            EM solution. Each leapfrog step evaluates the likelihood of every row,
            so the cost grows linearly with the number of rows.

            ``"laplace"`` approximates the posterior by a normal distribution in
            the unconstrained coordinates NUTS samples in, centred on the mode of
            the posterior density there (found by Newton's method from the EM
            solution), with covariance the inverse of minus its Hessian at the
            mode; ``draws`` independent draws are mapped back to weights, means
            and covariances. The approximation improves as the number of rows
            grows (the Bernstein-von Mises theorem), where NUTS gets slower; it
            costs a few hundred evaluations of the full-data gradient, whatever
            the number of draws. The check: the Pareto k of the importance ratios
            posterior / approximation over 200 draws (Yao et al. 2018), stored in
            ``idata_["laplace"]`` with ArviZ's threshold ``good_k = min(1 - 1 /
            log10(S), 0.7)`` for S draws (0.57 for 200); above it the fit warns
            and the approximation is not to be trusted (use NUTS, on a
            ``subsample`` if n is large). See :doc:`/how-to/large-data` for the
            method, its accuracy and its cost against NUTS.
        draws : int, default 1000
            Kept draws per chain (NUTS) or independent draws from the normal
            approximation (Laplace).
        tune : int, default 1000
            Tuning steps per chain (NUTS only).
        chains : int, default 4
            Number of chains (NUTS only; Laplace's draws form one chain).
        nuts_sampler : {"auto", "nutpie", "pymc"}
            ``"auto"`` uses nutpie when installed, else PyMC's NUTS (NUTS only).
        random_state : int, numpy.random.Generator or None
            Seeds the subsample, the EM start, the jitter and the sampler (or the
            draws from the normal approximation).
        progressbar : bool
            Show the sampler's progress bar (NUTS only).
        nuts_sampler_kwargs : dict, optional
            Further keyword arguments for ``nutpie.sample`` or ``pymc.sample``
            (NUTS only; refused with ``method="laplace"``), over bayesgmm's
            defaults: ``{"target_accept": 0.9}`` for both samplers (their own
            default is 0.8), plus ``{"adaptation": "low_rank"}`` with nutpie, a
            mass matrix that follows the strong posterior correlations between a
            mixture's means, scales and correlations (see
            :doc:`/user-guide/marginal`). ``{"adaptation": "diag"}`` and
            ``{"target_accept": 0.8}`` give the samplers' own defaults back.
        subsample : int, optional
            Fit to this many rows of ``X`` chosen uniformly at random without
            replacement (sorted, in ``subsample_indices_``). The result is the
            posterior given those rows only: centred correctly but wider than
            the posterior given all n rows, its standard deviations by about
            ``sqrt(n / subsample)``. ``observed_data`` and ``log_likelihood``
            hold those rows, with their row numbers in ``X`` as ``obs_id``.
        log_likelihood : bool or "auto", default "auto"
            Store the pointwise log-likelihood ``log p(x_i | theta_s)`` of every
            draw and row in ``idata_["log_likelihood"]``, which
            :func:`bayesgmm.compare` and :func:`arviz_stats.loo` need: draws x
            rows numbers, so ``"auto"`` stores it only up to
            :data:`LOG_LIKELIHOOD_MAX_ELEMENTS` (with 4000 draws, 16,777 rows)
            and otherwise says why in ``idata_.attrs["log_likelihood"]``
            (:meth:`compute_log_likelihood` adds it later). True always stores
            it, False never.
        random_seed : int, numpy.random.Generator or None
            Deprecated alias of ``random_state``.
        start : GaussianMixtureParams, optional
            Where every chain starts (jittered) or Newton's method starts, in
            the data's units, with ``n_components`` components and this
            ``covariance_type``; the draws are relabelled to it. By default the
            best of three EM runs. :meth:`bayesgmm.DPGaussianMixture.refine`
            passes the variational fit's occupied components.

        Returns
        -------
        self

        Raises
        ------
        RuntimeError
            With ``method="laplace"``, when the posterior density has no strict
            local maximum near the EM solution (minus its Hessian is not
            positive definite), so no normal approximation exists there.

        Warns
        -----
        SamplingWarning
            NUTS: divergences, chains in different modes, R-hat above 1.01, bulk
            ESS below 100 per chain. Laplace: Newton's method not converged, or
            the Pareto k above ``good_k``.

        References
        ----------
        Yao, Y., Vehtari, A., Simpson, D. and Gelman, A. (2018). Yes, but did it
        work?: Evaluating variational inference. ICML, PMLR 80, 5581-5590.
        """
        # Check every argument before any work, so that a rejected call changes nothing.
        k, kind, priors = self._validated()
        noise, hypervolume = _check_noise(self.noise, self.hypervolume)
        X, names = check_array(X, min_samples=max(2, k + 1), allow_nan=True)
        method = check_option(method, "method", _METHODS)
        if noise and method != "nuts":
            raise ValueError(
                message(
                    "method",
                    "'nuts' with noise=True (Laplace's method has no noise component)",
                    method,
                )
            )
        settings = _nuts.NutsSettings.check(
            draws, tune, chains, nuts_sampler, progressbar, nuts_sampler_kwargs
        )
        random_state = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed"
        )
        rng = check_random_state(random_state, seed_argument_name(random_seed))
        if method == "laplace" and nuts_sampler_kwargs:
            raise ValueError(
                message(
                    "nuts_sampler_kwargs",
                    "None or {} with method='laplace', which runs no sampler",
                    nuts_sampler_kwargs,
                )
            )
        if method == "laplace" and np.isnan(X).any():
            raise ValueError(
                message(
                    "X",
                    "no missing values (NaN) with method='laplace'; use method='nuts', "
                    "which evaluates each row on its observed features",
                    f"{int(np.isnan(X).sum())} NaN value(s)",
                    raw=True,
                )
            )
        subsample = _check_subsample(subsample, X.shape[0], k)
        store_log_likelihood = _check_log_likelihood(log_likelihood)
        _check_start(start, k, kind, X.shape[1])
        weights = check_sample_weight(sample_weight, X.shape[0], min_positive=k + 1)
        if noise and (weights is not None or np.isnan(X).any()):
            raise ValueError(
                message(
                    "noise",
                    "False with sample_weight or with missing values (NaN): the noise "
                    "component needs complete, unweighted rows",
                    "True",
                    raw=True,
                )
            )
        if weights is not None and np.isnan(X).any():
            raise ValueError(
                message(
                    "sample_weight",
                    "None for data with missing values (NaN): weighted fits take complete rows",
                    "weights",
                    raw=True,
                )
            )
        if weights is not None and store_log_likelihood is True:
            raise ValueError(
                message(
                    "log_likelihood",
                    "False or 'auto' with sample_weight (a weighted fit stores no pointwise "
                    "log-likelihood: its rows are not exchangeable observations for LOO)",
                    log_likelihood,
                )
            )

        # Prepare the data: the rows to fit, in standardised units.
        indices = None
        if subsample is not None:
            indices = np.sort(rng.choice(X.shape[0], size=subsample, replace=False))
            X = X[indices]
            weights = None if weights is None else weights[indices]
            if weights is not None and not weights.sum() > 0:
                raise ValueError(
                    message(
                        "sample_weight",
                        "positive weights among the subsampled rows",
                        "all weights zero in the subsample",
                        raw=True,
                    )
                )
        n, d = X.shape
        loc, scale = standardize(X, self.loc, self.scale, weights)
        Z = (X - loc) / scale
        features = names if names is not None else range(d)
        spec = ModelSpec.create(k, kind, priors, features, weights is not None, noise=noise)
        # log V in the data's units, and in the model's: z = (x - loc) / scale.
        log_volume = _log_volume(X, hypervolume) if noise else None
        log_volume_z = None if log_volume is None else log_volume - float(np.log(scale).sum())

        # Compute: the EM start, the draws, their relabelling, the log-likelihood.
        t0 = time.perf_counter()
        noise_start = None
        if log_volume_z is not None:
            em_params, noise_start = _nuts.em_noise_start(Z, k, kind, rng, log_volume_z)
            start = em_params if start is None else _in_model_units(start, loc, scale)
        elif start is None:
            start = _nuts.em_start(Z, k, kind, rng, weights)
        else:
            start = _in_model_units(start, loc, scale)
        timings = {"start": time.perf_counter() - t0}
        seed = int(rng.integers(0, 2**31 - 1, size=2)[0])
        if method == "nuts":
            result = self._sample(
                Z,
                spec,
                start,
                settings,
                seed,
                weights,
                noise_weight=noise_start,
                log_hypervolume=log_volume_z,
            )
        else:
            result = _laplace.approximate(Z, spec, start, settings.draws, seed, weights)
        timings.update(result.timings)
        posterior = _relabel(result.values, start, loc, scale, noise=noise)
        params = posterior.mean()
        t0 = time.perf_counter()
        if weights is None:
            log_lik, not_stored = _stored_log_likelihood(
                X, posterior, store_log_likelihood, loc, scale, log_volume
            )
        else:
            log_lik, not_stored = None, _WEIGHTED_LOG_LIKELIHOOD
        attrs: dict[str, Any] = {
            "inference_method": method,
            "interval_method": _INTERVAL_METHODS[method],
        }
        if log_volume is not None:
            attrs["hypervolume"] = float(np.exp(log_volume))
        if log_lik is None:
            attrs["log_likelihood"] = not_stored
        else:
            timings["log_likelihood"] = time.perf_counter() - t0

        # Package: the DataTree and what is wrong with it, then the estimator's state.
        idata = _make_datatree(posterior, log_lik, X, spec.features, indices, result, attrs)
        if weights is not None:
            import xarray as xr

            obs_id = idata["observed_data"]["obs_id"].values
            idata["constant_data"] = xr.DataTree(
                xr.Dataset({"sample_weight": (("obs_id",), weights)}, coords={"obs_id": obs_id})
            )
        problems = list(result.problems)
        if method == "nuts":
            checked = ["weights", "means"] + (["noise_weight"] if noise else [])
            problems += _nuts.convergence_problems(
                idata["posterior"].to_dataset()[checked],
                result.groups.get("sample_stats"),
                posterior.flagged,
                posterior.distance,
            )

        self.params_ = params
        self.idata_ = idata
        self.reference_ = posterior.reference
        self.permutations_ = posterior.permutations
        self.chain_distance_ = posterior.distance
        self.n_features_in_ = d
        self._set_feature_names(names)
        self._loc, self._scale = loc, scale
        self.timings_ = timings
        self.sampler_ = settings.sampler if method == "nuts" else None
        self.inference_method_ = method
        self.subsample_indices_ = indices
        self.hypervolume_ = None if log_volume is None else float(np.exp(log_volume))
        self.noise_weight_ = (
            0.0 if posterior.noise_weight is None else float(posterior.noise_weight.mean())
        )
        for text in problems:
            warnings.warn(text, SamplingWarning, stacklevel=2)
        return self

    @property
    def interval_method_(self) -> str:
        """``"NUTS"`` or ``"Laplace"``: how the draws behind every interval were made."""
        return _INTERVAL_METHODS[self.inference_method_]

    def to_datatree(self) -> xr.DataTree:
        """Return the fit's DataTree, ``idata_`` (as ``DPGaussianMixture.to_datatree`` does).

        Returns
        -------
        xarray.DataTree
            The same object as ``idata_``; its root attribute ``interval_method``
            is ``"NUTS"`` or ``"Laplace"``.
        """
        check_fitted(self, self._fitted_attributes)
        return self.idata_

    def _sample(
        self,
        Z: np.ndarray,
        spec: ModelSpec,
        start: GaussianMixtureParams,
        settings: _nuts.NutsSettings,
        seed: int,
        sample_weight: np.ndarray | None = None,
        *,
        noise_weight: float | None = None,
        log_hypervolume: float | None = None,
    ) -> ModelDraws:
        """Sample by NUTS (:func:`bayesgmm._nuts.sample`)."""
        return _nuts.sample(
            Z,
            spec,
            start,
            settings,
            seed,
            sample_weight,
            noise_weight=noise_weight,
            log_hypervolume=log_hypervolume,
        )

    # ------------------------------------------------------------- draws
    def _n_draws(self) -> int:
        post = self.idata_["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    def _flat_posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        post = self.idata_["posterior"]
        w = np.asarray(post["weights"].values)
        m = np.asarray(post["means"].values)
        c = np.asarray(post["covariances"].values)
        s = w.shape[0] * w.shape[1]
        return w.reshape(s, -1), m.reshape((s,) + m.shape[2:]), c.reshape((s,) + c.shape[2:])

    def _parameter_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """At most 1000 relabelled posterior draws, spread evenly over the chains."""
        w, m, c = self._flat_posterior()
        select = np.unique(np.linspace(0, w.shape[0] - 1, min(_INTERVAL_DRAWS, w.shape[0])))
        select = select.astype(int)
        return w[select], m[select], c[select]

    def _has_noise(self) -> bool:
        return getattr(self, "hypervolume_", None) is not None

    def _n_membership_columns(self) -> int:
        """Columns of ``predict_proba``: the Gaussians, and the noise when there is one."""
        return int(self.params_.n_components) + int(self._has_noise())

    def _log_hypervolume(self) -> float:
        volume = self.hypervolume_
        if volume is None:  # pragma: no cover - callers check _has_noise first
            raise RuntimeError("the model has no noise component")
        return float(np.log(volume))

    def _flat_noise_weight(self) -> np.ndarray:
        """Draws of the noise's weight ``w_0``, flat (S,)."""
        return np.asarray(self.idata_["posterior"]["noise_weight"].values).reshape(-1)

    def _log_joint_blocks(self, X: np.ndarray, select: np.ndarray | None = None) -> Any:
        """:func:`_log_joint_blocks` over the fitted posterior (or the ``select``-ed draws).

        With a noise component every block has one more column, the last:
        ``log w_0s - log V``.
        """
        w, m, c = self._flat_posterior()
        if select is not None:
            w, m, c = w[select], m[select], c[select]
        if not self._has_noise():
            return _log_joint_blocks_observed(X, w, m, c, self._loc)
        if np.isnan(X).any():
            raise ValueError(
                message(
                    "X",
                    "complete rows for a fit with a noise component (its uniform density "
                    "is over the full feature space, so it has no marginal on the observed "
                    "features alone)",
                    f"{int(np.isnan(X).any(axis=1).sum())} row(s) with NaN",
                    raw=True,
                )
            )
        blocks = _log_joint_blocks(X, w, m, c, self._loc)
        noise = self._flat_noise_weight()
        if select is not None:
            noise = noise[select]
        with np.errstate(divide="ignore"):
            noise_column = np.log(noise) - self._log_hypervolume()
        return (
            (
                rows,
                draws,
                np.concatenate(
                    [
                        log_joint,
                        np.broadcast_to(
                            noise_column[draws, None, None], log_joint.shape[:2] + (1,)
                        ),
                    ],
                    axis=-1,
                ),
            )
            for rows, draws, log_joint in blocks
        )

    def compute_log_likelihood(self) -> xr.DataTree:
        """Add the pointwise log-likelihood of the fitted rows to ``idata_``.

        ``log p(x_i | theta_s) = log sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` for every
        posterior draw s and every row i of ``idata_["observed_data"]``: the
        ``log_likelihood`` group that :func:`bayesgmm.compare` and
        :func:`arviz_stats.loo` need, and that ``fit`` leaves out with
        ``log_likelihood=False``, or with ``"auto"`` when draws x rows exceeds
        :data:`LOG_LIKELIHOOD_MAX_ELEMENTS`. It holds draws x rows float64
        numbers (computed in blocks, but kept whole).

        Returns
        -------
        xarray.DataTree
            ``idata_``, now with a ``log_likelihood`` group (replaced if present).

        Examples
        --------
        >>> model.fit(X, log_likelihood=False)  # doctest: +SKIP
        >>> "log_likelihood" in model.compute_log_likelihood()  # doctest: +SKIP
        True
        """
        import xarray as xr

        check_fitted(self, self._fitted_attributes)
        if "constant_data" in self.idata_ and "sample_weight" in self.idata_["constant_data"]:
            raise ValueError(
                "compute_log_likelihood: expected a fit without sample_weight, got a weighted "
                "fit (its rows are not exchangeable observations, so PSIS-LOO over them would "
                "count each row once whatever its weight); refit with rows repeated by their "
                "integer weights for LOO"
            )
        observed = self.idata_["observed_data"]
        X = np.asarray(observed["obs"].values, dtype=np.float64)
        post = self.idata_["posterior"]
        chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
        w, m, c = self._flat_posterior()
        log_lik = _pointwise_log_likelihood(X, w, m, c, self._loc, self._scale)
        if self._has_noise():
            log_lik = _with_noise(log_lik, self._flat_noise_weight(), self._log_hypervolume())
        group = xr.Dataset(
            {"obs": (("chain", "draw", "obs_id"), log_lik.reshape(chains, draws, -1))},
            coords={
                "chain": post["chain"].values,
                "draw": post["draw"].values,
                "obs_id": observed["obs_id"].values,
            },
        ).assign_attrs(post.attrs)
        self.idata_["log_likelihood"] = xr.DataTree(group)
        if "log_likelihood" in self.idata_.attrs:
            attrs = dict(self.idata_.attrs)
            del attrs["log_likelihood"]
            self.idata_.attrs = attrs
        return self.idata_

    def membership_draws(
        self,
        X: Any,
        max_draws: int | None = None,
        random_state: Any = None,
        *,
        random_seed: Any = _UNSET,
    ) -> np.ndarray:
        """Membership probabilities ``p(z_i = k | x_i, theta_s)`` per relabelled draw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        max_draws : int, optional
            Use at most this many draws, chosen at random without replacement. The
            result holds ``draws x n_samples x K`` numbers: limit the draws on large X.
        random_state : int, numpy.random.Generator or None
            Chooses the draws when ``max_draws`` is smaller than the number of draws.
        random_seed : int, numpy.random.Generator or None
            Deprecated alias of ``random_state``.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_components)
            With a noise component, ``n_components + 1`` columns, the noise last.
        """
        random_state = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed"
        )
        X = self._check_X(X, allow_nan=True)
        select = self._select_draws(max_draws, random_state, seed_argument_name(random_seed))
        s = self._n_draws() if select is None else select.size
        out = np.empty((s, X.shape[0], self._n_membership_columns()))
        for rows, draws, log_joint in self._log_joint_blocks(X, select):
            out[draws, rows] = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))
        return out

    def _select_draws(
        self, max_draws: int | None, random_state: Any, seed_name: str
    ) -> np.ndarray | None:
        total = self._n_draws()
        if max_draws is None:
            return None
        max_draws = check_int(max_draws, "max_draws", minimum=1)
        rng = check_random_state(random_state, seed_name)
        if max_draws >= total:
            return None
        return np.sort(rng.choice(total, size=max_draws, replace=False))

    # -------------------------------------------------------- predictions
    def predict_proba(
        self,
        X: Any,
        *,
        ci_prob: float | None = None,
        ci_kind: str = "eti",
        hdi_prob: Any = _UNSET,
    ) -> Any:
        """Posterior membership probabilities, optionally with credible intervals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        ci_prob : float in (0, 1), optional
            Without it, the posterior mean of ``p(z_i = k | x_i, theta)`` over all
            draws, an (n, K) array. With it, an ``xarray.Dataset`` with ``mean``,
            ``median``, ``lower`` and ``upper`` (dims ``obs_id``, ``component``;
            with a noise component its column is the last, component ``K``):
            the posterior mean and median, and the credible interval holding
            ``ci_prob`` of the posterior mass, from at most 1000 draws spread
            evenly over the chains. The interval always contains the median; it
            need not contain the mean, which skewed draws (piled up near 0 or 1)
            pull outside it.
        ci_kind : {"eti", "hdi"}, default "eti"
            Equal-tailed or highest-density interval (``"hdi"`` needs
            ``ci_prob > 0.5``).
        hdi_prob : float in (0, 1), optional
            Deprecated alias of ``ci_prob`` (it gave an equal-tailed interval).

        Returns
        -------
        ndarray of shape (n_samples, n_components) or xarray.Dataset
            The Dataset's attributes ``ci_prob`` and ``ci_kind`` say which interval,
            ``interval_method`` ("NUTS" or "Laplace") how its draws were made.

        Notes
        -----
        Rows are processed in blocks (draws x rows x K within about 8M numbers), so
        memory stays bounded on millions of rows; the time is proportional to
        draws x rows.
        """
        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, hdi_prob, default=None)
        if ci_prob is None:
            return super().predict_proba(X)
        X = self._check_X(X, allow_nan=True)
        n, k = X.shape[0], self._n_membership_columns()
        s = self._n_draws()
        select = np.unique(np.linspace(0, s - 1, min(_INTERVAL_DRAWS, s)).astype(int))
        mean, median, lower, upper = (np.empty((n, k)) for _ in range(4))
        block: list[np.ndarray] = []
        for rows, draws, log_joint in self._log_joint_blocks(X, select):
            block.append(np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True)))
            if draws.stop == select.size:  # the last draws of this row block
                probs = np.concatenate(block, axis=0)
                block = []
                mean[rows] = probs.mean(axis=0)
                median[rows], lower[rows], upper[rows] = credible_interval(
                    probs, ci_prob, ci_kind, axis=0
                )
        result = membership_intervals(mean, median, lower, upper, ci_prob, ci_kind)
        return result.assign_attrs(interval_method=self.interval_method_)

    def _on_observed(self, X: np.ndarray, method: str) -> np.ndarray:
        """Rows with missing entries go through the array methods too, averaged over the draws.

        ``_score_samples_array`` and ``_predict_proba_array`` evaluate every row on
        its observed coordinates under every draw (:func:`_log_joint_blocks_observed`),
        so they give the posterior predictive density of the observed coordinates
        and the posterior mean membership, not those of the posterior mean mixture.
        """
        return getattr(self, method)(X)

    def impute(
        self,
        X: Any,
        ci_prob: float | None = None,
        *,
        ci_kind: str = "eti",
        return_draws: bool = False,
        random_state: Any = None,
    ) -> Any:
        """Fill the missing entries (NaN) of ``X``, optionally with credible intervals.

        Over at most 1000 posterior draws ``theta_s`` spread evenly over the chains
        (:mod:`bayesgmm._imputation`): each row's component probabilities
        ``p(k | x_o, theta_s)`` come from its observed coordinates ``o``, and the
        missing ones ``m`` are filled from the conditional Gaussians
        ``N(E[x_m | x_o, k, theta_s], Cov[x_m | x_o, k, theta_s])``. Observed
        entries are returned unchanged. This assumes the entries are missing at
        random, as the fit does (see :doc:`/how-to/missing-values-bayesian`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; every row needs an observed value.
        ci_prob : float in (0, 1), optional
            Without it, ``X`` with every missing entry replaced by the posterior
            mean of its conditional expectation,
            ``(1/S) sum_s sum_k p(k | x_o, theta_s) E[x_m | x_o, k, theta_s]``.
            With it, an ``xarray.Dataset`` of posterior predictive imputations
            (for each draw s, ``k ~ p(k | x_o, theta_s)``, then ``x_m`` from that
            component's conditional Gaussian): ``imputed`` (their median for
            each missing entry), ``lower`` and ``upper`` (the credible interval
            holding ``ci_prob`` of them, which counts both the uncertainty about
            the parameters and the spread of the missing value given the
            observed ones, so it is an interval for the value itself), ``mean``
            (the posterior mean of the conditional expectation, as without
            ``ci_prob``) and ``missing`` (where ``X`` is NaN), all with dims
            ``obs_id`` and ``feature``; on an observed entry ``imputed``,
            ``lower`` and ``upper`` equal the value.
        ci_kind : {"eti", "hdi"}, default "eti"
            Equal-tailed or highest-density interval (``"hdi"`` needs
            ``ci_prob > 0.5``); both contain the median.
        return_draws : bool, default False
            Also return the posterior predictive imputations themselves, an
            array of shape (n_draws, n_samples, n_features) (observed entries
            repeated in every draw), for multiple-imputation analyses.
        random_state : int, numpy.random.Generator or None
            Seeds the posterior predictive imputations (the conditional mean
            needs no randomness).

        Returns
        -------
        ndarray of shape (n_samples, n_features) or xarray.Dataset
            The Dataset's attributes ``ci_prob``, ``ci_kind``, ``n_draws`` and
            ``interval_method`` ("NUTS" or "Laplace") say how it was made.
        draws : ndarray of shape (n_draws, n_samples, n_features)
            Only with ``return_draws=True``, as the second item of a tuple.
        """
        from bayesgmm import _imputation

        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, default=None)
        if not isinstance(return_draws, (bool, np.bool_)):
            raise TypeError(message("return_draws", "a bool", return_draws))
        rng = check_random_state(random_state)
        X = self._check_X(X, allow_nan=True)
        return _imputation.impute(
            X,
            self._parameter_draws(),
            ci_prob=ci_prob,
            ci_kind=ci_kind,
            return_draws=bool(return_draws),
            rng=rng,
            features=list(getattr(self, "feature_names_in_", range(X.shape[1]))),
            interval_method=self.interval_method_,
        )

    def _predict_proba_array(self, X: np.ndarray) -> np.ndarray:
        """Posterior mean of ``p(z_i = k | x_i, theta)`` over all draws, row block by row block."""
        total = np.zeros((X.shape[0], self._n_membership_columns()))
        for rows, _, log_joint in self._log_joint_blocks(X):
            probs = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True))
            total[rows] += probs.sum(axis=0)
        return total / self._n_draws()

    def _score_samples_array(self, X: np.ndarray) -> np.ndarray:
        """Posterior predictive log density ``log (1/S) sum_s p(x_i | theta_s)`` per point.

        Rows are processed in blocks, so memory stays bounded on large ``X``.
        """
        s = self._n_draws()
        out = np.empty(X.shape[0])
        block: list[np.ndarray] = []
        for rows, draws, log_joint in self._log_joint_blocks(X):
            block.append(logsumexp(log_joint, axis=-1))
            if draws.stop == s:
                out[rows] = logsumexp(np.concatenate(block, axis=0), axis=0) - np.log(s)
                block = []
        return out

    def sample_posterior_predictive(
        self, n_samples: int, random_state: Any = None, *, random_seed: Any = _UNSET
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw points from the posterior predictive: a random draw, then a point from it.

        Parameters
        ----------
        n_samples : int
        random_state : int, numpy.random.Generator or None
        random_seed : int, numpy.random.Generator or None
            Deprecated alias of ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            Relabelled component of each point.
        """
        random_state = renamed_argument(
            random_state, random_seed, new_name="random_state", old_name="random_seed"
        )
        check_fitted(self, self._fitted_attributes)
        self._refuse_noise("sample_posterior_predictive")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        rng = check_random_state(random_state, seed_argument_name(random_seed))
        w, m, c = self._flat_posterior()
        which = rng.integers(0, w.shape[0], size=n_samples)
        u = rng.random(n_samples)
        labels = (u[:, None] > np.cumsum(w[which], axis=1)).sum(axis=1)
        labels = np.minimum(labels, w.shape[1] - 1)
        chol = np.linalg.cholesky(c[which, labels])
        noise = rng.standard_normal((n_samples, m.shape[-1]))
        X = m[which, labels] + np.einsum("nab,nb->na", chol, noise)
        return X, labels

    def sample(self, n_samples: int = 1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw points from the posterior-mean mixture ``params_``."""
        check_fitted(self)
        self._refuse_noise("sample")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        return self.params_.sample(n_samples, check_random_state(random_state))

    def _condition_at_point(self, data: np.ndarray, positions: np.ndarray) -> Any:
        self._refuse_noise("condition", "the uniform noise has no conditional Gaussian")
        return super()._condition_at_point(data, positions)

    def summary(self, **kwargs: Any) -> Any:
        """``arviz_stats.summary`` of the relabelled weights, means, stds and correlations.

        Keyword arguments go to :func:`arviz_stats.summary`.
        """
        check_fitted(self, self._fitted_attributes)
        import arviz_stats

        names = ["weights"] + (["noise_weight"] if self._has_noise() else [])
        kwargs.setdefault("var_names", names + ["means", "stds", "correlations"])
        return arviz_stats.summary(self.idata_, **kwargs)

    # ------------------------------------------------------------- saving
    def _export_state(self) -> dict[str, Any]:
        check_fitted(self, self._fitted_attributes)
        return {
            "class": type(self).__name__,
            "params": self.get_params(),
            "params_": self.params_.to_dict(),
            "reference_": self.reference_.to_dict(),
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": (
                self.feature_names_in_.tolist() if hasattr(self, "feature_names_in_") else None
            ),
            "standardization": {"loc": self._loc.tolist(), "scale": self._scale.tolist()},
            "permutations_": self.permutations_.tolist(),
            "chain_distance_": self.chain_distance_.tolist(),
            "sampler_": self.sampler_,
            "inference_method_": self.inference_method_,
            "subsample_indices_": (
                None if self.subsample_indices_ is None else self.subsample_indices_.tolist()
            ),
            "timings_": dict(self.timings_),
            "hypervolume_": getattr(self, "hypervolume_", None),
            "idata": self.idata_,
        }

    @classmethod
    def _import_state(cls, state: dict[str, Any]) -> MarginalGaussianMixture:
        model = cls(**state["params"])
        model.params_ = GaussianMixtureParams.from_dict(state["params_"])
        model.reference_ = GaussianMixtureParams.from_dict(state["reference_"])
        model.idata_ = state["idata"]
        model.n_features_in_ = int(state["n_features_in_"])
        if state.get("feature_names_in_") is not None:
            model.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        model._loc = np.asarray(state["standardization"]["loc"], dtype=np.float64)
        model._scale = np.asarray(state["standardization"]["scale"], dtype=np.float64)
        model.permutations_ = np.asarray(state["permutations_"], dtype=np.int64)
        model.chain_distance_ = np.asarray(state["chain_distance_"], dtype=np.float64)
        model.sampler_ = state.get("sampler_", "nutpie")
        model.inference_method_ = state.get("inference_method_", "nuts")
        indices = state.get("subsample_indices_")
        model.subsample_indices_ = None if indices is None else np.asarray(indices, dtype=np.int64)
        model.timings_ = dict(state.get("timings_", {}))
        model.hypervolume_ = state.get("hypervolume_")
        model.noise_weight_ = (
            float(model._flat_noise_weight().mean()) if model._has_noise() else 0.0
        )
        return model


# ---------------------------------------------------------------- the DataTree
def _std_corr(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(np.diagonal(covs, axis1=-2, axis2=-1))
    return sd, covs / (sd[..., :, None] * sd[..., None, :])


def _make_datatree(
    posterior: _Posterior,
    log_lik: np.ndarray | None,
    X: np.ndarray,
    features: Any,
    obs_id: np.ndarray | None,
    result: ModelDraws,
    attrs: dict[str, Any],
) -> xr.DataTree:
    """Assemble the fit's DataTree.

    Root ``attrs``, the posterior (relabelled and raw), the data, the pointwise
    log-likelihood when given, and the engine's own groups.
    """
    import xarray as xr

    n = X.shape[0]
    chains, draws, k = posterior.relabelled["weights"].shape
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        "component": np.arange(k),
        "feature": list(features),
        "feature_bis": list(features),
        "obs_id": np.arange(n) if obs_id is None else np.asarray(obs_id),
    }
    sample = ("chain", "draw")

    def group(arrays: dict[str, np.ndarray]) -> xr.Dataset:
        sd, corr = _std_corr(arrays["covariances"])
        data = {
            "weights": (sample + ("component",), arrays["weights"]),
            "means": (sample + ("component", "feature"), arrays["means"]),
            "covariances": (
                sample + ("component", "feature", "feature_bis"),
                arrays["covariances"],
            ),
            "stds": (sample + ("component", "feature"), sd),
            "correlations": (sample + ("component", "feature", "feature_bis"), corr),
        }
        keep = {c: coords[c] for c in ("chain", "draw", "component", "feature", "feature_bis")}
        return xr.Dataset(data, coords=keep)

    sample_attrs = {
        "sample_dims": ["chain", "draw"],
        "creation_library": "bayesgmm",
        "inference_method": attrs["inference_method"],
        "interval_method": attrs["interval_method"],
    }
    posterior_group = group(posterior.relabelled)
    raw_group = group(posterior.raw)
    if posterior.noise_weight is not None:
        noise = xr.DataArray(
            posterior.noise_weight,
            dims=sample,
            coords={c: coords[c] for c in sample},
            attrs={"long_name": "weight w_0 of the uniform noise component"},
        )
        posterior_group["noise_weight"] = noise
        raw_group["noise_weight"] = noise
    tree = {
        "/": xr.Dataset(attrs=dict(attrs)),
        "posterior": posterior_group.assign_attrs(sample_attrs),
        "posterior_raw": raw_group.assign_attrs(
            sample_attrs, note="as sampled, before relabelling"
        ),
        "observed_data": xr.Dataset(
            {"obs": (("obs_id", "feature"), X)},
            coords={c: coords[c] for c in ("obs_id", "feature")},
        ),
    }
    if log_lik is not None:
        tree["log_likelihood"] = xr.Dataset(
            {"obs": (sample + ("obs_id",), log_lik)},
            coords={c: coords[c] for c in ("chain", "draw", "obs_id")},
        ).assign_attrs(sample_attrs)
    tree.update(result.groups)
    return xr.DataTree.from_dict(tree)
