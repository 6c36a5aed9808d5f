"""Choosing the number of components K (and the covariance type).

Five routes, one result type:

* ``"bic"``, ``"aic"``, ``"icl"``: fit EM (several restarts from the EM's own
  initialisation) for every (K, covariance type) and take the smallest criterion
  (scikit-learn's sign: lower is better). The table also carries BIC in mclust's
  convention, ``2 log L - n_par log n`` (higher is better). Fits with degenerate
  components are left out of the choice, with a note in the table.
* ``"loo"``: fit :class:`~bayesgmm.MarginalGaussianMixture` (NUTS) for every K and
  estimate its elpd by PSIS-LOO. Every fit is checked (divergences, R-hat, ESS,
  chains in different modes, stuck chains, components collapsed onto tied data
  values, Pareto k) and refitted once with more tuning and draws when a check
  fails; a fit that still fails is shown but kept out of the choice, with the
  reason in ``note``. The choice is the simplest of the models the data cannot
  tell from the best (:func:`indistinguishable_rule`), refitting with more draws
  when that decision is within Monte Carlo error. Every K samples the one
  compiled numba density (loaded once per process); still the slowest route,
  about three K_max fits on Old Faithful (``benchmarks/bench_select_loo.py``).
* ``"dp"``: fit one :class:`~bayesgmm.DPGaussianMixture` per covariance type
  with truncation ``max(n_components)`` and read the posterior of the number of
  occupied components. DP posteriors of the number of clusters are not
  consistent (Miller & Harrison 2013): prefer ``"loo"`` or ``"sparse"`` when the
  number itself is the question.
* ``"sparse"``: one sparse finite mixture (the marginal model with ``max(n_components)``
  components and a Dirichlet concentration of 0.01, Malsiner-Walli,
  Frühwirth-Schnatter & Grün 2016) per covariance type, sampled by NUTS; the
  posterior of the number of occupied components, computed from membership
  draws, concentrates on the number the data support, and the DP's posterior
  of the same number is reported beside it.
* ``"lrt"``: for every covariance type, the sequential bootstrap
  likelihood-ratio test of K against K + 1 (:func:`bayesgmm.bootstrap_lrt`,
  mclust's ``mclustBootstrapLRT``) keeps the first K it does not reject; among
  covariance types the kept model with the smallest BIC is chosen.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._gaussian import (
    COVARIANCE_TYPES,
    EM_COVARIANCE_TYPES,
    MCLUST_MODELS,
    DegenerateCovarianceError,
    n_free_parameters,
)
from bayesgmm._noise import NOISE_PARAMETERS, nearest_neighbour_noise
from bayesgmm._validation import (
    check_array,
    check_int,
    check_option,
    check_random_state,
    check_sample_weight,
    message,
)
from bayesgmm.comparison import _pareto_k_check

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

    from bayesgmm._reports import SelectionSummary

__all__ = [
    "METHODS",
    "SelectionResult",
    "indistinguishable_rule",
    "one_standard_error_rule",
    "select_n_components",
]

# elpd differences below this are small whatever their standard error (Sivula et al. 2022).
SMALL_ELPD_DIFFERENCE = 4.0
#: Two models are indistinguishable when their elpd difference is within this many
#: standard errors of that difference (about a 95 % normal interval).
INDISTINGUISHABLE_SE = 2.0

METHODS = ("bic", "icl", "aic", "loo", "dp", "lrt", "sparse")

_CRITERION = {
    "bic": ("bic", "BIC (lower is better)"),
    "icl": ("icl", "ICL (lower is better)"),
    "aic": ("aic", "AIC (lower is better)"),
    "loo": ("elpd", "elpd (PSIS-LOO, higher is better)"),
    "dp": ("probability", "posterior probability of K occupied components"),
    "lrt": ("p_value", "p-value of K against K + 1 components (bootstrap LRT)"),
    "sparse": ("probability", "posterior probability of K occupied components"),
}


@dataclass(frozen=True)
class SelectionResult:
    """The outcome of :func:`select_n_components`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (n_components, covariance_type) with the criterion and a
        ``note`` column (why a row was left out of the choice, or empty).
    best_n_components : int
    best_covariance_type : str
    best_model : fitted model
        The chosen EM or marginal model, or the DP model (for ``"dp"``).
    method : str
    criterion : str
        Name of the table column the choice was made on.
    criterion_label : str
        Axis label for that column.
    """

    table: pd.DataFrame
    best_n_components: int
    best_covariance_type: str
    best_model: Any = field(repr=False)
    method: str
    criterion: str
    criterion_label: str

    def summary(self, n_best: int = 3) -> SelectionSummary:
        """List the best models, as mclust's ``summary(mclustBIC(...))`` prints them.

        For the EM routes the values are in mclust's sign, higher is better
        (mclust's BIC is ``2 log L - n_par log n``, minus the table's ``bic``;
        likewise ICL and AIC), with each model's difference from the best;
        models left out of the choice (failed or degenerate fits) are not
        listed. For ``"loo"`` the values are the elpd, for ``"dp"`` the posterior
        probabilities. Models are named as mclust names them, ``"VEV,2"``
        (``"full"`` is VVV, ``"tied"`` EEE, ``"diag"`` VVI, ``"spherical"`` VII).

        Parameters
        ----------
        n_best : int, default=3
            How many models to list (mclust lists three).

        Returns
        -------
        bayesgmm._reports.SelectionSummary
            Printing it gives mclust's layout; its ``table`` holds the numbers.
        """
        import pandas as pd

        from bayesgmm._reports import SelectionSummary, mclust_name

        n_best = check_int(n_best, "n_best", minimum=1)
        label = {"bic": "BIC", "icl": "ICL", "aic": "AIC", "loo": "elpd", "dp": "probability"}
        if self.method not in label:
            raise ValueError(
                message(
                    "method",
                    f"a selection by {sorted(label)} to rank the best models "
                    "(read the table otherwise)",
                    self.method,
                )
            )
        table = self.table
        values = table[self.criterion].to_numpy(dtype=float)
        if self.method in ("bic", "icl", "aic"):
            values = -values
        order = [i for i in np.argsort(-values, kind="stable") if np.isfinite(values[i])]
        order = order[:n_best]
        n_features = getattr(self.best_model, "n_features_in_", None)
        rows = table.iloc[order]
        best = values[order[0]] if order else np.nan
        top = pd.DataFrame(
            {
                "model": [
                    f"{mclust_name(str(c), n_features)},{int(k)}"
                    for c, k in zip(rows["covariance_type"], rows["n_components"], strict=True)
                ],
                "covariance_type": rows["covariance_type"].to_numpy(),
                "n_components": rows["n_components"].to_numpy(dtype=int),
                "value": values[order],
                "difference": values[order] - best,
            }
        )
        return SelectionSummary(label[self.method], top)

    def plot(self, ax: Any = None, *, criterion: str | None = None) -> Axes:
        """Plot the criterion against K (see :func:`bayesgmm.plotting.plot_selection`).

        ``criterion="bic_mclust"`` draws BIC in mclust's sign, as ``plot(mclustBIC(X))``.
        """
        from bayesgmm.plotting import plot_selection

        return plot_selection(self, ax=ax, criterion=criterion)


def _check_n_components(n_components: Any, n_samples: int) -> list[int]:
    if isinstance(n_components, (str, bytes)) or not isinstance(n_components, Iterable):
        raise TypeError(message("n_components", "an iterable of positive integers", n_components))
    values = sorted({check_int(k, "n_components", minimum=1) for k in n_components})
    if not values:
        raise ValueError(message("n_components", "at least one value", n_components))
    if values[-1] > n_samples:
        raise ValueError(
            message("n_components", f"values <= the number of samples ({n_samples})", values[-1])
        )
    return values


def _check_covariance_types(covariance_types: Any, method: str) -> list[str]:
    """Check the covariance types: EM's methods take every model, "loo" and "dp" the four.

    ``"all"`` stands for mclust's fourteen models (which include the four under
    their mclust names).
    """
    em = method in ("bic", "icl", "aic", "lrt")
    if isinstance(covariance_types, str) and covariance_types == "all" and em:
        covariance_types = MCLUST_MODELS
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    if not isinstance(covariance_types, Iterable):
        raise TypeError(
            message("covariance_types", "an iterable of covariance types", covariance_types)
        )
    allowed = EM_COVARIANCE_TYPES if em else COVARIANCE_TYPES
    values = [check_option(c, "covariance_types", allowed) for c in covariance_types]
    if not values:
        raise ValueError(
            message("covariance_types", "at least one covariance type", covariance_types)
        )
    return list(dict.fromkeys(values))


def _choose_simplest(table: pd.DataFrame, candidates: np.ndarray) -> int:
    """Row position of the candidate with the fewest parameters (then smallest K)."""
    rows = table.iloc[np.flatnonzero(candidates)]
    rows = rows.sort_values(["n_parameters", "n_components"], kind="stable")
    return int(table.index.get_loc(rows.index[0]))


def one_standard_error_rule(table: pd.DataFrame) -> tuple[int, np.ndarray]:
    """Pick the simplest model whose elpd is within one standard error of the best.

    A model is within one standard error when ``elpd_diff >= -max(dse, 4)``: its
    elpd difference from the best model is no larger than the standard error of
    that difference (computed from the paired pointwise differences, which is
    much smaller than the SE of either elpd), with a floor of 4. The floor
    follows Sivula, Magnusson & Vehtari (2022, arXiv:2008.10296): differences
    below 4 are small, and there the SE of the difference is itself unreliable.
    This matters for mixtures: a model with one more, nearly empty component
    predicts almost exactly as the smaller one, so its ``dse`` is tiny and a
    difference of one elpd unit would otherwise count against the smaller
    model. Among the models within, the one with the fewest free parameters,
    then the smallest K, is chosen (Breiman et al. 1984's rule, applied to elpd
    as recommended by Vehtari, Gelman & Gabry 2017).

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``elpd_diff`` (<= 0, 0 for the best), ``dse``, ``n_parameters``
        and ``n_components``.

    Returns
    -------
    best : int
        Row position of the chosen model.
    within : ndarray of bool
        Which rows are within one standard error.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesgmm.selection import one_standard_error_rule
    >>> table = pd.DataFrame({"n_components": [1, 2, 3], "n_parameters": [5, 11, 17],
    ...                       "elpd_diff": [-40.0, -1.5, 0.0], "dse": [8.0, 2.0, 0.0]})
    >>> best, within = one_standard_error_rule(table)
    >>> best, within.tolist()
    (1, [False, True, True])
    """
    tolerance = np.maximum(table["dse"].to_numpy(dtype=float), SMALL_ELPD_DIFFERENCE)
    within = table["elpd_diff"].to_numpy(dtype=float) >= -tolerance
    return _choose_simplest(table, within), within


def _split_partition(model: Any, X: np.ndarray) -> np.ndarray | None:
    """Split the worst-fitting group of a K-component fit: a partition into K + 1 groups.

    Rows go to their most probable component; the group with the largest share
    of the negative log-likelihood is cut in two along the first principal axis
    of its standardised rows (at its mean), the start of the K + 1 fit. None
    when no group can be cut in two.
    """
    labels = model.predict(X)
    loss = -model.score_samples(X)
    k = int(labels.max()) + 1 if labels.size else 1
    shares = np.bincount(labels, weights=loss - loss.min(), minlength=k)
    sizes = np.bincount(labels, minlength=k)
    shares[sizes < 2] = -np.inf
    worst = int(np.argmax(shares))
    rows = np.flatnonzero(labels == worst)
    group = X[rows] - X[rows].mean(axis=0)
    scale = X.std(axis=0)
    group = group / np.where(scale > 0, scale, 1.0)
    _, _, vt = np.linalg.svd(group, full_matrices=False)
    upper = group @ vt[0] > 0
    if upper.all() or not upper.any():
        return None
    new = labels.copy()
    new[rows[upper]] = k
    return new


def _select_em(
    X: Any,
    ks: list[int],
    types: list[str],
    method: str,
    rng: np.random.Generator,
    n_init: int,
    noise: bool = False,
    sample_weight: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[Any], np.ndarray]:
    """Fit EM for every candidate and say which fits may be chosen.

    Work is shared across the grid: one model-based hierarchical tree (see
    :mod:`bayesgmm._hc`, on a subset of ``HC_MAX_SAMPLES`` rows of large data)
    gives a starting partition for every K, and the fit for K + 1 also starts
    from the fit for K with its worst-fitting component split in two (see
    :func:`_split_partition`), beside the EM's own k-means start; restarts that
    cannot catch the best are given up early (``init_params="auto"``).
    A fit may be chosen unless it failed, has a degenerate component or a
    criterion that is not finite; the table's ``note`` says why, for people.
    With ``noise`` every fit has mclust's noise component, all started from
    one nearest-neighbour cleaning, and the tree grows on the rows it keeps.
    With ``sample_weight`` (frequency weights) every fit and criterion is
    weighted, ``n`` is the total weight, and no hierarchical or split start is
    used (EM starts weighted fits from k-means).
    """
    import pandas as pd

    from bayesgmm._hc import HC_MAX_SAMPLES, hc_partitions
    from bayesgmm.em import ConvergenceWarning, DegenerateComponentWarning, EMGaussianMixture

    array = np.asarray(X, dtype=float)
    n = array.shape[0] if sample_weight is None else float(sample_weight.sum())
    noise_rows = nearest_neighbour_noise(array) if noise else None
    signal = array if noise_rows is None else array[~noise_rows]
    hc_rows = None
    if sample_weight is not None:
        tree: dict[int, np.ndarray] = {}
    else:
        if signal.shape[0] > HC_MAX_SAMPLES:
            hc_rows = np.sort(rng.choice(signal.shape[0], size=HC_MAX_SAMPLES, replace=False))
        tree = hc_partitions(signal if hc_rows is None else signal[hc_rows], ks)
    rows: list[dict[str, Any]] = []
    models: list[Any] = []
    eligible: list[bool] = []
    for covariance_type in types:
        previous: Any = None
        for k in ks:
            seed = int(rng.integers(2**31 - 1))
            model = EMGaussianMixture(
                k, covariance_type=covariance_type, n_init=n_init, random_state=seed
            )
            if noise_rows is not None:
                model.set_params(noise=True, noise_init=noise_rows)
            starts = [] if k not in tree else [(hc_rows, tree[k])]
            split = None
            if (
                noise_rows is None
                and sample_weight is None
                and previous is not None
                and previous.n_components == k - 1
            ):
                split = _split_partition(previous, array)
            if split is not None:
                starts.append((None, split))
            note = ""
            with warnings.catch_warnings():
                # Both are reported in the table (converged_, degenerate_components_),
                # once per candidate, instead of as warnings.
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", DegenerateComponentWarning)
                try:
                    model._fit(X, partitions=starts, sample_weight=sample_weight)
                except DegenerateCovarianceError as exc:
                    note = f"fit failed: {exc}"
            previous = None if note else model
            n_par = n_free_parameters(k, array.shape[1], covariance_type)
            n_par += NOISE_PARAMETERS * int(noise)
            if note:
                values = dict.fromkeys(("bic", "aic", "icl", "log_likelihood"), np.nan)
                converged = usable = False
                models.append(None)
            else:
                w = sample_weight
                values = {
                    "bic": float(model.bic(X, sample_weight=w)),
                    "aic": float(model.aic(X, sample_weight=w)),
                    "icl": float(model.icl(X, sample_weight=w)),
                    "log_likelihood": float(model.score(X, sample_weight=w) * n),
                }
                converged = bool(model.converged_)
                degenerate = np.asarray(model.degenerate_components_)
                usable = not degenerate.size and bool(np.isfinite(values[method]))
                if degenerate.size:
                    note = f"degenerate component(s) {degenerate.tolist()}: left out"
                elif not np.isfinite(values[method]):
                    note = "criterion not finite: left out"
                elif not converged:
                    note = "EM did not converge"
                models.append(model)
            eligible.append(usable)
            rows.append(
                {
                    "n_components": k,
                    "covariance_type": covariance_type,
                    method: values[method],
                    "bic": values["bic"],
                    "icl": values["icl"],
                    # mclust's sign convention: 2 log L - n_par log n, higher is better.
                    "bic_mclust": 2.0 * values["log_likelihood"] - n_par * np.log(n),
                    "log_likelihood": values["log_likelihood"],
                    "n_parameters": n_par,
                    "converged": converged,
                    "note": note,
                }
            )
    table = pd.DataFrame(rows)
    # The duplicate "bic" or "icl" column (method == "bic" or "icl") collapses into one.
    table = table.loc[:, ~table.columns.duplicated()]
    return table, models, np.array(eligible, dtype=bool)


#: Refits allowed for a NUTS fit in LOO selection: one repair (twice the tuning and
#: draws, another seed) after a failed check, one with twice the draws when the
#: choice is within Monte Carlo error.
_LOO_REFIT_FACTOR = 2
#: A chain is stuck when more than this fraction of its draws repeat the previous one.
_STUCK_FRACTION = 0.5
#: The choice is within Monte Carlo error when a margin is below this many MCSE.
_MCSE_MARGIN = 2.0


def _resolution(X: np.ndarray) -> np.ndarray:
    """Smallest gap between distinct values of every feature (inf for a constant one)."""
    out = np.full(X.shape[1], np.inf)
    for j in range(X.shape[1]):
        gaps = np.diff(np.unique(X[:, j]))
        if gaps.size:
            out[j] = gaps.min()
    return out


def _collapsed_components(model: Any, resolution: np.ndarray) -> str:
    """Say which chains hold a component narrower than the data's resolution.

    Rounded data repeat values (Old Faithful's durations are given to the
    second, its waiting times to the minute). On ``m >= 2`` tied values of a
    feature, the likelihood of a component centred there grows like
    ``sigma^-(m - 1)`` as its standard deviation ``sigma`` in that feature
    shrinks (after integrating over its mean), which a prior with positive
    density at ``sigma = 0`` does not stop: the posterior has a non-integrable
    spike, and a chain that finds it stays there. Under the marginal model's
    InverseGamma(3, ``stds_scale``) prior on ``sigma`` (see
    :mod:`bayesgmm._marginal_model`) the density of ``log sigma`` there turns
    down below about ``stds_scale / (m + 2)`` standardised units and vanishes
    at zero; a small ``stds_scale`` moves that point below the data's
    resolution, and this check still catches it. A component whose standard
    deviation in some feature is below half the smallest gap between distinct
    values of that feature can only be sitting on ties.
    """
    post = model.idata_["posterior"]
    covariances = np.asarray(post["covariances"].values)
    stds = np.sqrt(np.clip(np.diagonal(covariances, axis1=-2, axis2=-1), 0.0, None))
    collapsed = (stds < resolution / 2.0).any(axis=(-1, -2))  # (chain, draw)
    chains = np.flatnonzero(collapsed.mean(axis=1) > 0.01)
    if not chains.size:
        return ""
    return (
        f"chain(s) {chains.tolist()} hold a component narrower than the data's resolution "
        "(collapsed onto tied values, where the posterior density has a spike)"
    )


def _fit_nuts_checked(
    X: Any,
    resolution: np.ndarray,
    k: int,
    covariance_type: str,
    seed: int,
    kwargs: dict[str, Any],
) -> tuple[Any, list[str]]:
    """Fit the marginal model and list what is wrong with its draws.

    The checks: the fit's own (divergences, chains in different modes after
    relabelling, R-hat, bulk ESS: :func:`bayesgmm._nuts.convergence_problems`),
    chains that do not move, and components collapsed onto tied values.
    """
    from bayesgmm.comparison import repeated_draws
    from bayesgmm.marginal import MarginalGaussianMixture, SamplingWarning

    model = MarginalGaussianMixture(n_components=k, covariance_type=covariance_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplingWarning)
        model.fit(X, random_state=seed, **kwargs)
    problems = []
    for item in caught:
        if issubclass(item.category, SamplingWarning):
            problems.append(str(item.message).split(":")[0])
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    stuck = np.flatnonzero(repeated_draws(model.idata_["log_likelihood"]["obs"]) > _STUCK_FRACTION)
    if stuck.size:
        problems.append(f"chain(s) {stuck.tolist()} stuck (repeat most draws)")
    collapsed = _collapsed_components(model, resolution)
    if collapsed:
        problems.append(collapsed)
    return model, problems


def _scaled(kwargs: dict[str, Any], *names: str) -> dict[str, Any]:
    """``kwargs`` with the sampler settings ``names`` multiplied by the refit factor."""
    defaults = {"draws": 1000, "tune": 1000}
    return {**kwargs, **{n: _LOO_REFIT_FACTOR * kwargs.get(n, defaults[n]) for n in names}}


@dataclass
class _LooFit:
    """One (K, covariance type) of a LOO selection, as it goes through its checks."""

    n_components: int
    covariance_type: str
    model: Any = None
    problems: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    result: Any = None
    mcse: float = np.nan
    reason: str = ""  # why the fit is left out of the choice; empty when it is not

    def score(self) -> None:
        """PSIS-LOO, its Monte Carlo error and Pareto-k check: the fit's reason if any fails."""
        from bayesgmm.comparison import loo_mcse, psis_loo

        self.result, why = psis_loo(self.model.idata_)
        if self.result is None:
            self.reason = f"not scored: {why}"
            return
        self.mcse = loo_mcse(self.result, self.model.idata_["log_likelihood"]["obs"])
        _, n_high, threshold = _pareto_k_check(self.result)
        if self.problems:
            self.reason = "unreliable: " + "; ".join(self.problems)
        elif n_high:
            self.reason = f"unreliable: {n_high} Pareto k above {threshold}"
        else:
            self.reason = ""


def _fit_and_score(
    X: Any,
    resolution: np.ndarray,
    fit: _LooFit,
    rng: np.random.Generator,
    kwargs: dict[str, Any],
) -> None:
    """Fit, check, and repair once (twice the tuning and draws, another seed) on failure."""
    for attempt, settings in enumerate((kwargs, _scaled(kwargs, "tune", "draws"))):
        seed = int(rng.integers(2**31 - 1))
        with warnings.catch_warnings():
            # High Pareto k are reported in the row, not as warnings.
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
            fit.model, fit.problems = _fit_nuts_checked(
                X, resolution, fit.n_components, fit.covariance_type, seed, settings
            )
            fit.score()
        if not fit.reason:
            if attempt:
                fit.history.append(
                    "repaired by a refit with twice the tuning and draws (first fit "
                    + fit.history.pop()
                    + ")"
                )
            return
        if attempt == 0:
            fit.history.append(fit.reason)
    fit.history[-1] = "first fit " + fit.history[-1] + "; refitted with twice the tuning and draws"


def _compare_table(fits: list[_LooFit]) -> pd.DataFrame:
    """Compare the eligible fits: elpd differences, their standard errors, two kinds of weight."""
    import arviz_stats
    import pandas as pd

    estimates = {i: f.result for i, f in enumerate(fits) if not f.reason}
    columns = ["elpd_diff", "dse", "weight", "weight_pseudo_bma_plus"]
    out = pd.DataFrame(np.nan, index=range(len(fits)), columns=columns)
    if len(estimates) == 1:
        out.loc[list(estimates)] = [[0.0, 0.0, 1.0, 1.0]]
        return out
    if not estimates:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stacking = arviz_stats.compare(estimates, method="stacking", round_to="none")
        # Pseudo-BMA+: Akaike-type weights regularised by the Bayesian bootstrap
        # (Yao et al. 2018, section 3.3).
        bma = arviz_stats.compare(estimates, method="BB-pseudo-BMA", round_to="none")
    rows = list(estimates)
    out.loc[rows, ["elpd_diff", "dse", "weight"]] = stacking.loc[
        rows, ["elpd_diff", "dse", "weight"]
    ].to_numpy(dtype=float)
    out.loc[rows, "weight_pseudo_bma_plus"] = bma.loc[rows, "weight"].to_numpy(dtype=float)
    return out


def indistinguishable_rule(table: pd.DataFrame) -> tuple[int, np.ndarray, np.ndarray]:
    """Find the models the data cannot tell from the best, and choose the simplest of them.

    Among the rows with a finite ``elpd_diff`` (the eligible fits), a model is
    *indistinguishable* from the best when its elpd difference is within two
    standard errors of that difference (:data:`INDISTINGUISHABLE_SE`, a 95 %
    normal interval: the data cannot tell which predicts better) or below 4,
    ``elpd_diff >= -max(2 dse, 4)``. Differences below 4 are small whatever
    their standard error (Sivula, Magnusson & Vehtari 2022, arXiv:2008.10296).
    The choice is the indistinguishable model with the fewest free parameters,
    then the smallest K. The difference is a Monte Carlo estimate: when
    ``mcse_diff`` (its Monte Carlo standard error) is given, a row whose margin
    ``elpd_diff + max(2 dse, 4)`` is within two of those errors of zero is
    *undecided*: more draws can change the answer. Undecided rows count as
    indistinguishable, so that the rule errs towards the simpler model.

    A one-standard-error threshold (:func:`one_standard_error_rule`) is less
    stable: on Old Faithful (full covariances) the elpd of K = 3 exceeds that of
    K = 2 by 4.9 with a standard error of 4.0, so whether K = 2 is within one
    standard error turns on the Monte Carlo noise of a fraction of an elpd unit.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``elpd_diff`` (NaN for rows left out of the choice), ``dse``,
        ``n_parameters``, ``n_components`` and optionally ``mcse_diff``.

    Returns
    -------
    best : int
        Row position of the chosen model.
    indistinguishable : ndarray of bool
    undecided : ndarray of bool

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesgmm.selection import indistinguishable_rule
    >>> table = pd.DataFrame({"n_components": [1, 2, 3, 4], "n_parameters": [5, 11, 17, 23],
    ...                       "elpd_diff": [-150.0, -12.0, -3.0, 0.0],
    ...                       "dse": [15.0, 5.0, 1.5, 0.0], "mcse_diff": [0.1, 1.6, 0.3, 0.0]})
    >>> best, same, undecided = indistinguishable_rule(table)
    >>> best, same.tolist(), undecided.tolist()
    (1, [False, True, True, True], [False, True, False, False])
    """
    diff = table["elpd_diff"].to_numpy(dtype=float)
    eligible = np.isfinite(diff)
    if not eligible.any():
        raise ValueError(message("table", "at least one row with a finite elpd_diff", "none"))
    tolerance = np.maximum(
        INDISTINGUISHABLE_SE * table["dse"].to_numpy(dtype=float), SMALL_ELPD_DIFFERENCE
    )
    margin = np.where(eligible, diff + tolerance, -np.inf)
    if "mcse_diff" in table:
        noise = _MCSE_MARGIN * np.nan_to_num(table["mcse_diff"].to_numpy(dtype=float))
    else:
        noise = np.zeros(len(table))
    undecided = eligible & (np.abs(margin) < noise)
    indistinguishable = eligible & ((margin >= 0) | undecided)
    return _choose_simplest(table, indistinguishable), indistinguishable, undecided


def _loo_rows(fits: list[_LooFit], n_features: int) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for fit in fits:
        result = fit.result
        k_max, n_high, _ = _pareto_k_check(result) if result is not None else (np.nan, 0, "")
        rows.append(
            {
                "n_components": fit.n_components,
                "covariance_type": fit.covariance_type,
                "elpd": float(result.elpd) if result is not None else np.nan,
                "se": float(result.se) if result is not None else np.nan,
                "mcse": fit.mcse,
                "p": float(result.p) if result is not None else np.nan,
                "n_parameters": n_free_parameters(
                    fit.n_components, n_features, fit.covariance_type
                ),
                "pareto_k_max": k_max,
                "n_high_pareto_k": n_high,
                "eligible": not fit.reason,
                "note": "; ".join([fit.reason, *fit.history] if fit.reason else fit.history),
            }
        )
    table = pd.DataFrame(rows)
    table = pd.concat([table, _compare_table(fits)], axis=1)
    best = int(np.nanargmax(np.where(table["eligible"], table["elpd"], np.nan)))
    table["mcse_diff"] = np.where(
        table["eligible"], np.hypot(table["mcse"], table.loc[best, "mcse"]), np.nan
    )
    table.loc[best, "mcse_diff"] = 0.0
    return table


def _select_loo(
    X: Any,
    ks: list[int],
    types: list[str],
    rng: np.random.Generator,
    fit_kwargs: dict[str, Any],
) -> tuple[pd.DataFrame, list[Any], int]:
    """LOO selection with checked fits and a choice that more draws would not change.

    Every fit is checked (:func:`_fit_nuts_checked`) and refitted once with
    twice the tuning and draws when a check fails; a fit that still fails, or
    that PSIS-LOO cannot score, or with Pareto k above ArviZ's threshold, is
    kept in the table with the reason in ``note`` and out of the choice. Then
    :func:`indistinguishable_rule`; the fits whose membership of the
    indistinguishable set is within Monte Carlo error, and the best fit, are
    refitted once with twice the draws and the rule applied again.
    """
    array = np.asarray(X, dtype=np.float64)
    resolution = _resolution(array)
    # LOO needs the pointwise log-likelihood, which fit leaves out by default on
    # large data ("auto"): ask for it.
    kwargs = {"progressbar": False, **fit_kwargs, "log_likelihood": True}
    fits = [_LooFit(k, covariance_type) for covariance_type in types for k in ks]
    for fit in fits:
        _fit_and_score(X, resolution, fit, rng, kwargs)
    if all(fit.reason for fit in fits):
        raise ValueError(
            "X: expected data on which at least one NUTS fit passes its checks, got none ("
            + "; ".join(f"K={f.n_components} {f.covariance_type}: {f.reason}" for f in fits)
            + "); increase draws and tune in fit_kwargs, or reduce n_components"
        )
    table = _loo_rows(fits, array.shape[1])
    best, same, undecided = indistinguishable_rule(table)
    if undecided.any():
        best_elpd = int(np.nanargmax(np.where(table["eligible"], table["elpd"], np.nan)))
        for i in sorted({best_elpd, *np.flatnonzero(undecided).tolist()}):
            refit = _LooFit(fits[i].n_components, fits[i].covariance_type)
            _fit_and_score(X, resolution, refit, rng, _scaled(kwargs, "draws"))
            note = "refitted with twice the draws: the choice was within Monte Carlo error"
            if refit.reason:  # keep the first fit, say that the longer run failed
                fits[i].history.append(f"{note}, but the longer run failed ({refit.reason})")
            else:
                refit.history.insert(0, note)
                fits[i] = refit
        table = _loo_rows(fits, array.shape[1])
        best, same, undecided = indistinguishable_rule(table)
    table["indistinguishable"] = same
    table["within_mcse"] = undecided
    return table, [fit.model for fit in fits], best


def _select_lrt(
    X: Any,
    array: np.ndarray,
    ks: list[int],
    types: list[str],
    rng: np.random.Generator,
    n_init: int,
    fit_kwargs: dict[str, Any],
) -> tuple[pd.DataFrame, int, Any]:
    """Run the sequential bootstrap LRT per covariance type; choose among types by BIC.

    The table has one row per test (K against K + 1, with its ``statistic``,
    ``p_value`` and ``n_failed`` replicates) and a row for the kept K when every
    test up to ``max(n_components)`` was rejected (it was never the null).
    """
    import pandas as pd

    from bayesgmm.bootstrap import bootstrap_lrt
    from bayesgmm.em import EMGaussianMixture

    largest = max(ks)
    if largest < 2:
        raise ValueError(
            message("n_components", "a maximum of at least 2 with method='lrt'", largest)
        )
    options = {key: fit_kwargs[key] for key in ("n_boot", "level") if key in fit_kwargs}
    unknown = sorted(set(fit_kwargs) - set(options))
    if unknown:
        raise TypeError(
            message("fit_kwargs", "only n_boot and level with method='lrt'", unknown, raw=True)
        )
    frames, kept_models = [], {}
    for covariance_type in types:
        seed = int(rng.integers(2**31 - 1))
        tests = bootstrap_lrt(
            array,
            covariance_type,
            max_components=largest,
            n_init=n_init,
            random_state=seed,
            **options,
        )
        kept = int(tests.attrs["n_components"])
        frame = tests.assign(covariance_type=covariance_type, kept=tests["n_components"] == kept)
        frame["note"] = ""
        if kept not in set(tests["n_components"]):
            extra = {
                "n_components": kept,
                "covariance_type": covariance_type,
                "kept": True,
                "note": f"every test up to {largest} components rejected: not tested as the null",
            }
            frame = pd.concat([frame, pd.DataFrame([extra])], ignore_index=True)
        frames.append(frame)
        model = EMGaussianMixture(
            kept, covariance_type=covariance_type, n_init=n_init, random_state=seed
        ).fit(X)
        kept_models[covariance_type] = model
    table = pd.concat(frames, ignore_index=True)
    bics = {c: float(m.bic(array)) for c, m in kept_models.items()}
    table["bic"] = [
        bics[c] if kept else np.nan
        for c, kept in zip(table["covariance_type"], table["kept"], strict=True)
    ]
    best_type = min(bics, key=lambda c: bics[c])
    best_row = int(
        np.flatnonzero(table["kept"].to_numpy() & (table["covariance_type"] == best_type))[0]
    )
    return table, best_row, kept_models[best_type]


def _occupied_probabilities(model: Any, ks: list[int]) -> np.ndarray:
    """P(K occupied = k) for every k in ``ks`` from a DP model's posterior."""
    import pandas as pd

    dist = model.n_occupied_distribution()
    if isinstance(dist, pd.DataFrame):
        dist = dist.iloc[:, -1]
    if isinstance(dist, (pd.Series, dict)):
        mapping = {int(k): float(v) for k, v in dict(dist).items()}
    else:
        array = np.asarray(dist, dtype=float)
        mapping = {i: float(v) for i, v in enumerate(array)}
    return np.array([mapping.get(k, 0.0) for k in ks])


def _select_dp(
    X: np.ndarray,
    ks: list[int],
    types: list[str],
    rng: np.random.Generator,
    fit_kwargs: dict[str, Any],
) -> tuple[pd.DataFrame, list[Any], int, Any]:
    import pandas as pd

    from bayesgmm.dirichlet_process import DPGaussianMixture

    rows, models = [], []
    fitted = {}
    for covariance_type in types:
        seed = int(rng.integers(2**31 - 1))
        model = DPGaussianMixture(
            max(ks),  # the truncation
            covariance_type=covariance_type,
            random_state=seed,
            **fit_kwargs,
        ).fit(X)
        fitted[covariance_type] = model
        probabilities = _occupied_probabilities(model, ks)
        for k, probability in zip(ks, probabilities, strict=True):
            rows.append(
                {
                    "n_components": k,
                    "covariance_type": covariance_type,
                    "probability": float(probability),
                    "elbo": float(model.elbo_),
                    "n_parameters": n_free_parameters(k, X.shape[1], covariance_type),
                    "note": "",
                }
            )
            models.append(model)
    table = pd.DataFrame(rows)
    # The ELBO is complete (constants included), so it ranks the covariance types;
    # within the best type, the mode of the posterior of the number of occupied components.
    best_type = max(fitted, key=lambda c: fitted[c].elbo_)
    rows_best = table[table["covariance_type"] == best_type]
    best_row = int(table.index.get_loc(rows_best["probability"].idxmax()))
    return table, models, best_row, fitted[best_type]


#: Dirichlet concentration of the sparse finite mixture: below 1 / K_max for any
#: K_max up to 100, so that superfluous components empty (Malsiner-Walli et al. 2016
#: use e0 = 0.01 with a fixed prior).
SPARSE_CONCENTRATION = 0.01


def occupied_counts(memberships: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Count the occupied components in every posterior draw, from membership draws.

    For each draw ``s`` the label of every point is drawn from its membership
    probabilities, ``z_i ~ Categorical(p(z_i = . | x_i, theta_s))``, and the
    components that receive at least one point are counted: a draw from the
    posterior of the number of occupied components ``K+`` (Malsiner-Walli,
    Frühwirth-Schnatter & Grün 2016, section 2.2). The count does not depend
    on how the components are labelled, so no relabelling is needed.

    Parameters
    ----------
    memberships : ndarray of shape (n_draws, n_samples, n_components)
        Membership probabilities per draw (``membership_draws``).
    rng : numpy.random.Generator
        Draws the labels.

    Returns
    -------
    ndarray of int, shape (n_draws,)

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm.selection import occupied_counts
    >>> p = np.zeros((2, 4, 3))
    >>> p[0, :, 0] = 1.0            # draw 0: every point in component 0
    >>> p[1, :2, 1] = p[1, 2:, 2] = 1.0  # draw 1: two points in 1, two in 2
    >>> occupied_counts(p, np.random.default_rng(0)).tolist()
    [1, 2]
    """
    memberships = np.asarray(memberships, dtype=np.float64)
    n_draws, _, k = memberships.shape
    uniform = rng.random(memberships.shape[:2])
    labels = (uniform[..., None] > memberships.cumsum(axis=-1)).sum(axis=-1).clip(max=k - 1)
    occupied = np.zeros((n_draws, k), dtype=bool)
    np.put_along_axis(occupied, labels, True, axis=1)
    return occupied.sum(axis=1)


def _fit_sparse(
    X: Any,
    k_max: int,
    covariance_type: str,
    concentration: float,
    seed: int,
    rng: np.random.Generator,
    log_likelihood: bool,
    kwargs: dict[str, Any],
) -> tuple[Any, np.ndarray, list[str]]:
    """Sample one sparse mixture; its occupied counts (chain, draw) and what is wrong.

    Per-component R-hat and ESS mean nothing for the components that are empty
    (their parameters wander over the prior, and their labels with them); the
    checks that matter are divergences and that the chains agree on the number
    of occupied components (its R-hat).
    """
    import arviz_stats

    from bayesgmm.marginal import MarginalGaussianMixture, SamplingWarning

    model = MarginalGaussianMixture(
        k_max,
        covariance_type=covariance_type,
        priors={"weights_concentration": concentration},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplingWarning)
        model.fit(X, random_state=seed, log_likelihood=log_likelihood, **kwargs)
    problems = [
        str(item.message).split(":")[0]
        for item in caught
        if issubclass(item.category, SamplingWarning) and "divergent" in str(item.message)
    ]
    post = model.idata_["posterior"]
    counts = occupied_counts(model.membership_draws(X), rng).reshape(
        post.sizes["chain"], post.sizes["draw"]
    )
    if counts.shape[0] > 1 and counts.shape[1] >= 4 and np.ptp(counts) > 0:
        rhat = float(arviz_stats.rhat(counts.astype(float), chain_axis=0, draw_axis=1))
        if not rhat <= 1.05:
            problems.append(f"R-hat of the number of occupied components {rhat:.2f} > 1.05")
    return model, counts, problems


def _select_sparse(
    X: Any,
    ks: list[int],
    types: list[str],
    rng: np.random.Generator,
    fit_kwargs: dict[str, Any],
) -> tuple[pd.DataFrame, list[Any], int, Any]:
    """Fit one sparse finite mixture per covariance type and read the posterior of K+.

    The marginal model with ``K_max = max(ks)`` components and Dirichlet
    concentration ``weights_concentration`` (:data:`SPARSE_CONCENTRATION` unless
    ``fit_kwargs`` gives one) is sampled by NUTS; the posterior of the number of
    occupied components comes from :func:`occupied_counts`. The variational DP
    with the same truncation is fitted beside it and its posterior of the same
    number is the ``dp_probability`` column. Several covariance types are
    ranked by the PSIS-LOO elpd of their sparse fits.
    """
    import pandas as pd

    from bayesgmm.comparison import psis_loo
    from bayesgmm.dirichlet_process import DPGaussianMixture

    kwargs = {"progressbar": False, **fit_kwargs}
    concentration = kwargs.pop("weights_concentration", SPARSE_CONCENTRATION)
    kwargs.pop("log_likelihood", None)  # stored only to rank several covariance types
    k_max = max(ks)
    n_features = np.asarray(X).shape[1]
    rows, fitted, scores = [], {}, {}
    for covariance_type in types:
        seed = int(rng.integers(2**31 - 1))
        model, counts, problems = _fit_sparse(
            X, k_max, covariance_type, concentration, seed, rng, len(types) > 1, kwargs
        )
        if problems:  # one repair, as for LOO: twice the tuning and draws, another seed
            first = "; ".join(problems)
            model, counts, problems = _fit_sparse(
                X,
                k_max,
                covariance_type,
                concentration,
                int(rng.integers(2**31 - 1)),
                rng,
                len(types) > 1,
                _scaled(kwargs, "tune", "draws"),
            )
            problems.append(
                f"refitted with twice the tuning and draws (first fit: {first})"
                if problems
                else f"repaired by a refit with twice the tuning and draws (first fit: {first})"
            )
        if len(types) > 1:
            result, why = psis_loo(model.idata_)
            scores[covariance_type] = result.elpd if result is not None else -np.inf
        dp = DPGaussianMixture(k_max, covariance_type=covariance_type, random_state=seed).fit(X)
        dp_probabilities = _occupied_probabilities(dp, ks)
        fitted[covariance_type] = model
        # The last entry says whether the refit repaired the first fit.
        reliable = not problems or problems[-1].startswith("repaired")
        note = "; ".join(problems)
        for k, dp_probability in zip(ks, dp_probabilities, strict=True):
            rows.append(
                {
                    "n_components": k,
                    "covariance_type": covariance_type,
                    "probability": float(np.mean(counts == k)),
                    "dp_probability": float(dp_probability),
                    "n_parameters": n_free_parameters(k, n_features, covariance_type),
                    "reliable": reliable,
                    "note": note,
                }
            )
    table = pd.DataFrame(rows)
    best_type = max(scores, key=lambda c: scores[c]) if scores else types[0]
    rows_best = table[table["covariance_type"] == best_type]
    best_row = int(table.index.get_loc(rows_best["probability"].idxmax()))
    return table, [fitted[c] for c in table["covariance_type"]], best_row, fitted[best_type]


def select_n_components(
    X: Any,
    n_components: Iterable[int] = range(1, 10),
    *,
    method: str = "bic",
    covariance_types: Iterable[str] = ("full", "tied", "diag", "spherical"),
    random_state: Any = None,
    n_init: int = 1,
    fit_kwargs: dict[str, Any] | None = None,
    noise: bool = False,
    sample_weight: Any = None,
) -> SelectionResult:
    """Choose the number of mixture components (and the covariance type).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int, default range(1, 10)
        Candidate numbers of components. For ``"dp"`` the truncation is their
        maximum and the table reports the posterior probability of each.
    method : {"bic", "icl", "aic", "loo", "dp", "lrt", "sparse"}, default "bic"
        ``"bic"``: Schwarz (1978), ``-2 log L + n_par log n``. ``"aic"``: Akaike
        (1974), ``-2 log L + 2 n_par``. ``"icl"``: mclust's ICL, BIC minus twice
        the log-probability of each point's most probable component
        (Biernacki, Celeux & Govaert 2000, https://doi.org/10.1109/34.865189;
        :meth:`EMGaussianMixture.icl`), which penalises overlapping components;
        the table of the EM methods carries BIC and ICL together. ``"loo"``:
        PSIS-LOO elpd of the NUTS marginal model
        (Vehtari, Gelman & Gabry 2017, https://doi.org/10.1007/s11222-016-9696-4);
        every fit is checked and repaired or left out (see the module notes), and
        the choice is the simplest model (fewest free parameters, then smallest K)
        among those the data cannot tell from the best, ``elpd_diff >= -max(2 dse,
        4)`` (:func:`indistinguishable_rule`); when that decision is within two
        Monte Carlo standard errors of the differences the fits concerned are
        refitted with twice the draws. The table has the stacking and
        pseudo-BMA+ weights (Yao et al. 2018, https://doi.org/10.1214/17-BA1091),
        ``indistinguishable``, ``within_mcse``, ``eligible`` and ``note``.
        ``"dp"``: mode of the posterior of the number of occupied components of
        the variational DP (covariance type by the largest ELBO). ``"sparse"``:
        mode of the posterior of the number of occupied components of a sparse
        finite mixture with ``max(n_components)`` components (Malsiner-Walli,
        Frühwirth-Schnatter & Grün 2016, https://doi.org/10.1007/s11222-014-9500-2),
        from membership draws (:func:`occupied_counts`), with the DP's posterior
        of the same number in ``dp_probability`` (covariance type by the
        PSIS-LOO elpd of the sparse fits). A sparse fit with divergences or
        chains that disagree on that number (its R-hat above 1.05) is refitted
        once with twice the tuning and draws; ``reliable`` and ``note`` say how
        that ended. ``"lrt"``: the sequential
        bootstrap likelihood-ratio test of K against K + 1 (McLachlan 1987,
        https://doi.org/10.2307/2347790; :func:`bayesgmm.bootstrap_lrt`) keeps the
        first K not rejected at 5%, per covariance type, up to
        ``max(n_components)``; the covariance type whose kept model has the
        smallest BIC is chosen.
    covariance_types : iterable of str or "all", default the four of scikit-learn
        Covariance types tried. With ``"bic"``, ``"icl"``, ``"aic"`` and ``"lrt"``
        any type :class:`~bayesgmm.EMGaussianMixture` fits, including mclust's
        fourteen models by name (``"EII"``, ..., ``"VVV"``), and ``"all"`` for
        those fourteen; ``"loo"``, ``"dp"`` and ``"sparse"`` take ``"full"``, ``"tied"``,
        ``"diag"`` and ``"spherical"`` only.
    random_state : None, int or Generator
        Seeds every fit.
    n_init : int, default 1
        Initialisations per fit (bic, icl, aic). Each fit starts from the
        partition into K groups of one model-based hierarchical tree grown once
        for all K, from the fit for K - 1 with its worst-fitting component split,
        and from the EM's multi-scale k-means start (one more per extra
        initialisation); EM runs to convergence from each and the most likely
        end is kept.
    fit_kwargs : dict, optional
        Extra keyword arguments: for ``"loo"`` passed to
        ``MarginalGaussianMixture.fit`` (e.g. ``draws``, ``tune``, ``chains``;
        ``log_likelihood`` is always True, since LOO needs it); for ``"sparse"``
        the same, plus ``weights_concentration`` (default
        :data:`SPARSE_CONCENTRATION`); for ``"dp"`` to the ``DPGaussianMixture``
        constructor; for ``"lrt"`` ``n_boot`` (default 999)
        and ``level`` (default 0.05) of :func:`bayesgmm.bootstrap_lrt`.
    noise : bool, default False
        With ``"bic"``, ``"icl"`` or ``"aic"``: every candidate has mclust's
        uniform noise component (``EMGaussianMixture(noise=True)``), started
        from one nearest-neighbour cleaning of ``X``; the noise weight and
        volume count as two more free parameters, as in mclust. Refused with
        the other methods.
    sample_weight : array-like of shape (n_samples,), optional
        Frequency weights of the rows (see :meth:`EMGaussianMixture.fit`), for
        ``"bic"``, ``"icl"`` and ``"aic"``: every fit and criterion is weighted,
        with ``n`` the total weight in the penalty. The other methods refuse them
        (LOO and the posterior of the number of components need exchangeable rows;
        the bootstrap LRT resamples rows).

    Returns
    -------
    SelectionResult

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import select_n_components
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-4, 1, (150, 2)), rng.normal(4, 1, (150, 2))])
    >>> result = select_n_components(X, range(1, 5), covariance_types=("full",),
    ...                              random_state=0)
    >>> result.best_n_components, result.best_covariance_type
    (2, 'full')
    """
    method = check_option(method, "method", METHODS)
    array, feature_names = check_array(X, min_samples=2)
    # Fit on the DataFrame itself when it has column names, so that the chosen
    # model keeps feature_names_in_; the validated array otherwise.
    X = X if feature_names is not None else array
    ks = _check_n_components(n_components, array.shape[0])
    types = _check_covariance_types(covariance_types, method)
    n_init = check_int(n_init, "n_init", minimum=1)
    if fit_kwargs is not None and not isinstance(fit_kwargs, dict):
        raise TypeError(message("fit_kwargs", "a dict or None", fit_kwargs))
    fit_kwargs = dict(fit_kwargs or {})
    if method == "loo" and fit_kwargs.get("log_likelihood", True) is not True:
        raise ValueError(
            message(
                "fit_kwargs",
                "no log_likelihood other than True with method='loo' (LOO needs the "
                "pointwise log-likelihood of every fit)",
                f"log_likelihood={fit_kwargs['log_likelihood']!r}",
                raw=True,
            )
        )
    if not isinstance(noise, (bool, np.bool_)):
        raise TypeError(message("noise", "a bool", noise))
    if noise and method not in ("bic", "icl", "aic"):
        raise ValueError(
            message(
                "noise",
                "False with method=" + repr(method) + " (noise needs bic, icl or aic)",
                "True",
                raw=True,
            )
        )
    weights = check_sample_weight(sample_weight, array.shape[0])
    if weights is not None and method not in ("bic", "icl", "aic"):
        raise ValueError(
            message(
                "sample_weight",
                f"None with method={method!r} (weights are honoured by 'bic', 'icl' and 'aic')",
                "weights",
                raw=True,
            )
        )
    rng = check_random_state(random_state)
    criterion, label = _CRITERION[method]
    if method in ("bic", "icl", "aic"):
        table, models, eligible = _select_em(
            X, ks, types, method, rng, n_init, bool(noise), weights
        )
        values = table[method].to_numpy(dtype=float)
        if not eligible.any():
            raise ValueError(
                "X: expected data on which at least one candidate fits without degenerate "
                "components, got none; scale the features, reduce n_components or remove "
                "duplicated points"
            )
        best_value = values[eligible].min()
        best = _choose_simplest(table, eligible & (values == best_value))
        best_model = models[best]
    elif method == "loo":
        table, models, best = _select_loo(X, ks, types, rng, fit_kwargs)
        best_model = models[best]
    elif method == "lrt":
        table, best, best_model = _select_lrt(X, array, ks, types, rng, n_init, fit_kwargs)
    elif method == "sparse":
        table, _, best, best_model = _select_sparse(X, ks, types, rng, fit_kwargs)
    else:
        table, _, best, best_model = _select_dp(X, ks, types, rng, fit_kwargs)
    table = table.reset_index(drop=True)
    return SelectionResult(
        table=table,
        best_n_components=int(table.loc[best, "n_components"]),
        best_covariance_type=str(table.loc[best, "covariance_type"]),
        best_model=best_model,
        method=method,
        criterion=criterion,
        criterion_label=label,
    )
