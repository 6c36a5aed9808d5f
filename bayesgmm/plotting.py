"""Plots for fitted mixtures: ``plot_*(..., ax=None) -> Axes``; none of them calls ``plt.show()``.

Every function draws on ``ax`` when given, otherwise on a new figure, and returns
the Axes. matplotlib is imported when a function is first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._intervals import DEFAULT_CI_PROB, credible_interval
from bayesgmm._validation import (
    _UNSET,
    check_array,
    check_fitted,
    check_float,
    check_int,
    check_n_features,
    message,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "plot_clusters",
    "plot_coclustering",
    "plot_compare",
    "plot_density",
    "plot_dp_weights",
    "plot_membership_uncertainty",
    "plot_selection",
]

_POSTERIOR_GID = "posterior"


def _axes(ax: Any) -> Axes:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    elif not isinstance(ax, plt.Axes):
        raise TypeError(message("ax", "a matplotlib Axes or None", ax))
    return ax


_NOISE_COLOR = (0.5, 0.5, 0.5, 1.0)


def _colors(n: int) -> np.ndarray:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return np.array([cmap(i % cmap.N) for i in range(n)])


def _check_dims(dims: Any, n_features: int) -> tuple[int, int]:
    if len(dims) != 2 or any(not 0 <= int(i) < n_features for i in dims) or dims[0] == dims[1]:
        raise ValueError(
            message("dims", f"two different feature indices in 0..{n_features - 1}", dims)
        )
    return int(dims[0]), int(dims[1])


def _ellipse(mean: np.ndarray, cov: np.ndarray, n_std: float, **kwargs: Any) -> Any:
    """Return the ``n_std``-sigma contour of a 2-D Gaussian as a matplotlib Ellipse."""
    from matplotlib.patches import Ellipse

    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 0.0, None)
    angle = float(np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1])))
    width, height = 2.0 * n_std * np.sqrt(values[::-1])
    return Ellipse(tuple(mean), width=width, height=height, angle=angle, **kwargs)


def _variational_draws(model: Any, n_draws: int, random_state: Any) -> Any:
    """Return ``model.to_datatree`` with ``n_draws`` draws from the variational posterior."""
    return model.to_datatree(n_draws=n_draws, random_state=random_state)


def _interval_label(model: Any) -> str:
    """How the model's posterior draws were made, for legends and titles."""
    from bayesgmm.clustering import interval_method

    return interval_method(model) or "point estimate"


def posterior_parameter_draws(
    model: Any, n_draws: int, *, random_state: Any = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Up to ``n_draws`` posterior draws of weights, means and full covariances.

    Returns ``None`` for a point estimate. Draws come from ``idata_`` (NUTS,
    thinned evenly), from ``to_datatree`` (variational) or from an EM model's
    kept bootstrap (``bootstrap_``, the replicates relabelled to the fit).

    Returns
    -------
    weights : ndarray of shape (S, K)
    means : ndarray of shape (S, K, d)
    covariances : ndarray of shape (S, K, d, d)
    """
    if hasattr(model, "idata_"):
        tree = model.idata_
    elif getattr(model, "bootstrap_", None) is not None:
        tree = model.bootstrap_.copy()
        tree["posterior"] = tree["bootstrap"]
    elif hasattr(model, "to_datatree"):
        tree = _variational_draws(model, max(n_draws, 1), random_state)
    else:
        return None
    post = tree["posterior"]
    stacked = [
        np.asarray(post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values)
        for name in ("weights", "means", "covariances")
    ]
    total = stacked[0].shape[0]
    keep = np.unique(np.linspace(0, total - 1, min(n_draws, total)).round().astype(int))
    return stacked[0][keep], stacked[1][keep], stacked[2][keep]


def plot_clusters(
    model: Any,
    X: Any,
    *,
    ax: Any = None,
    n_std: Any = (1, 2, 3),
    n_posterior_draws: int = 30,
    dims: tuple[int, int] = (0, 1),
    min_weight: float = 0.005,
) -> Axes:
    """Plot the data coloured by component, faded by certainty, with 1-3 sigma ellipses.

    Each point takes the colour of its most probable component and an opacity
    equal to that membership probability (at least 0.15), so uncertain points
    fade. Each component gets one ellipse per entry of ``n_std`` from the point
    estimate ``model.params_``. For Bayesian models, faint ellipses at the
    middle entry of ``n_std`` are added for ``n_posterior_draws`` posterior draws
    (relabelled), so the posterior spread of the components is visible; these
    patches carry ``gid="posterior"``. Points whose most probable component is
    the noise (``EMGaussianMixture(noise=True)``) are grey.

    Parameters
    ----------
    model : fitted bayesgmm model
    X : array-like of shape (n_samples, n_features), n_features >= 2
    ax : matplotlib Axes, optional
    n_std : sequence of float, default (1, 2, 3)
        Contours in standard deviations (Mahalanobis radii).
    n_posterior_draws : int, default 30
        Posterior draws whose ellipses are drawn (0 for none).
    dims : (int, int), default (0, 1)
        The two features shown; ellipses are those of the marginal Gaussians.
    min_weight : float, default 0.005
        Components whose weight in ``model.params_`` is below this get no
        ellipses (the unused components of a truncated Dirichlet process keep
        prior-sized covariances that would swamp the picture).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, plotting
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    >>> model = EMGaussianMixture(2, random_state=0).fit(X)
    >>> ax = plotting.plot_clusters(model, X)
    >>> len(ax.patches)  # 2 components x (1, 2, 3) sigma
    6
    """
    check_fitted(model)
    X, _ = check_array(X)
    check_n_features(X, model.n_features_in_)
    if X.shape[1] < 2:
        raise ValueError(message("X", "at least 2 features to plot clusters", X.shape[1]))
    i, j = _check_dims(dims, X.shape[1])
    n_posterior_draws = check_int(n_posterior_draws, "n_posterior_draws", minimum=0)
    try:
        radii = [float(r) for r in np.atleast_1d(n_std)]
    except (TypeError, ValueError):
        raise TypeError(message("n_std", "a number or a sequence of numbers", n_std)) from None
    if not radii or any(r <= 0 for r in radii):
        raise ValueError(message("n_std", "positive numbers", n_std))
    min_weight = check_float(min_weight, "min_weight", minimum=0.0, maximum=1.0)
    ax = _axes(ax)
    params = model.params_
    shown = np.flatnonzero(params.weights >= min_weight)
    proba = np.asarray(model.predict_proba(X))
    labels = proba.argmax(axis=1)
    colors = _colors(params.n_components)
    # A noise component's column comes last; its points are grey.
    palette = np.vstack([colors, np.tile(_NOISE_COLOR, (proba.shape[1] - len(colors), 1))])
    point_colors = palette[labels].copy()
    point_colors[:, 3] = np.clip(proba.max(axis=1), 0.15, 1.0)
    ax.scatter(X[:, i], X[:, j], c=point_colors, s=12, linewidths=0)
    sub = np.ix_([i, j], [i, j])
    draws = None
    if n_posterior_draws:
        draws = posterior_parameter_draws(model, n_posterior_draws)
        if draws is not None:
            _, means, covs = draws
            radius = radii[len(radii) // 2]
            for s in range(means.shape[0]):
                for k in shown:
                    ax.add_patch(
                        _ellipse(
                            means[s, k, [i, j]],
                            covs[s, k][sub],
                            radius,
                            fill=False,
                            edgecolor=colors[k],
                            alpha=0.12,
                            linewidth=0.8,
                            gid=_POSTERIOR_GID,
                        )
                    )
    full = params.full_covariances()
    for k in shown:
        for radius in radii:
            ax.add_patch(
                _ellipse(
                    params.means[k, [i, j]],
                    full[k][sub],
                    radius,
                    fill=False,
                    edgecolor=colors[k],
                    linewidth=1.5,
                    alpha=0.9,
                )
            )
    ax.scatter(params.means[shown, i], params.means[shown, j], c=colors[shown], marker="x", s=60)
    names = getattr(model, "feature_names_in_", None)
    ax.set_xlabel(str(names[i]) if names is not None else f"feature {i}")
    ax.set_ylabel(str(names[j]) if names is not None else f"feature {j}")
    title = f"{type(model).__name__}: {params.n_components} components"
    if n_posterior_draws and draws is not None:
        title += f" (faint: {_interval_label(model)} draws)"
    ax.set_title(title)
    ax.autoscale_view()
    return ax


def plot_membership_uncertainty(
    model: Any,
    X: Any,
    *,
    ax: Any = None,
    ci_prob: float = DEFAULT_CI_PROB,
    ci_kind: str = "eti",
    random_state: Any = None,
    hdi_prob: Any = _UNSET,
    random_seed: Any = _UNSET,
) -> Axes:
    """Top membership probability of every point with its credible interval.

    Points are sorted by their posterior median top probability and coloured by
    component; the error bars are the credible intervals of
    :func:`bayesgmm.cluster_uncertainty` (zero length for EM) and ambiguous points
    are drawn hollow. A dashed line marks 0.5.

    Parameters
    ----------
    model : fitted bayesgmm model
    X : array-like of shape (n_samples, n_features)
    ax : matplotlib Axes, optional
    ci_prob : float, default 0.94
        Mass of the intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals.
    random_state : None, int or Generator
        Seeds the posterior draws of variational models.
    hdi_prob : float, optional
        Deprecated alias of ``ci_prob``.
    random_seed : None, int or Generator, optional
        Deprecated alias of ``random_state``.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, plotting
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    >>> model = EMGaussianMixture(2, random_state=0).fit(X)
    >>> ax = plotting.plot_membership_uncertainty(model, X)
    >>> ax.get_xlabel()
    'points, sorted by membership probability'
    """
    from bayesgmm.clustering import cluster_uncertainty

    result = cluster_uncertainty(
        model,
        X,
        ci_prob=ci_prob,
        ci_kind=ci_kind,
        random_state=random_state,
        hdi_prob=hdi_prob,
        random_seed=random_seed,
    )
    table = result.table.sort_values("probability", kind="stable")
    ax = _axes(ax)
    colors = _colors(result.membership.shape[1])
    position = np.arange(len(table))
    yerr = np.vstack([table["probability"] - table["lower"], table["upper"] - table["probability"]])
    ax.errorbar(
        position,
        table["probability"],
        yerr=np.clip(yerr, 0.0, None),
        fmt="none",
        ecolor="0.6",
        elinewidth=0.8,
    )
    label = table["label"].to_numpy()
    ambiguous = table["ambiguous"].to_numpy()
    ax.scatter(
        position[~ambiguous],
        table["probability"].to_numpy()[~ambiguous],
        c=colors[label[~ambiguous]],
        s=10,
    )
    ax.scatter(
        position[ambiguous],
        table["probability"].to_numpy()[ambiguous],
        facecolors="none",
        edgecolors=colors[label[ambiguous]],
        s=14,
    )
    ax.axhline(0.5, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("points, sorted by membership probability")
    kind = {"eti": "equal-tailed", "hdi": "highest-density"}[result.ci_kind]
    method = result.interval_method or "point estimate"
    ax.set_ylabel(f"top membership probability ({result.ci_prob:.0%} {kind} interval, {method})")
    return ax


def plot_selection(result: Any, *, ax: Any = None, criterion: str | None = None) -> Axes:
    """Criterion against the number of components, one curve per covariance model.

    Each covariance model is named, marked and coloured as in mclust's BIC plot
    (``plot(mclustBIC(...))``, ``mclust.options("bicPlotSymbols")`` and
    ``("bicPlotColors")``; R's plotting symbols drawn with the nearest matplotlib
    marker): scikit-learn's names show as their mclust model, ``"VVV (full)"``,
    ``"EEE (tied)"``, ``"VVI (diag)"``, ``"VII (spherical)"``, and in one
    dimension as mclust's ``E`` and ``V``. Error bars are drawn where the table
    has standard errors (``se`` for the LOO method). For the ``dp`` method the
    curves are the posterior probability of each number of occupied
    components. The chosen model is circled.

    Parameters
    ----------
    result : SelectionResult
        From :func:`bayesgmm.select_n_components`.
    ax : matplotlib Axes, optional
    criterion : str, optional
        The table column to draw; by default the one the choice was made on.
        ``"bic_mclust"`` draws BIC in mclust's sign, ``2 log L - n_par log n``
        (higher is better), as mclust plots it.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import select_n_components
    >>> X = np.random.default_rng(0).normal(size=(100, 2))
    >>> result = select_n_components(X, range(1, 4), covariance_types=("diag",),
    ...                              random_state=0)
    >>> ax = result.plot()
    >>> ax.get_xlabel(), [t.get_text() for t in ax.get_legend().get_texts()]
    ('number of components', ['VVI (diag)', 'chosen'])
    """
    from bayesgmm._reports import BIC_PLOT_STYLE, mclust_name

    if not all(hasattr(result, a) for a in ("table", "criterion", "best_n_components")):
        raise TypeError(message("result", "a SelectionResult from select_n_components", result))
    table = result.table
    if criterion is None:
        criterion, label = result.criterion, result.criterion_label
    elif not isinstance(criterion, str) or criterion not in table.columns:
        raise ValueError(
            message("criterion", f"a column of the table, {list(table.columns)}", criterion)
        )
    elif criterion == "bic_mclust":
        label = "BIC (mclust's sign: 2 log L - n_par log n, higher is better)"
    else:
        label = criterion
    n_features = getattr(getattr(result, "best_model", None), "n_features_in_", None)
    ax = _axes(ax)
    for covariance_type, rows in table.groupby("covariance_type", sort=False):
        rows = rows.sort_values("n_components")
        values = rows[criterion].to_numpy(dtype=float)
        keep = np.isfinite(values)
        x = rows["n_components"].to_numpy()[keep]
        name = mclust_name(str(covariance_type), n_features)
        style: dict[str, Any] = {
            "label": name if name == covariance_type else f"{name} ({covariance_type})"
        }
        if name in BIC_PLOT_STYLE:
            marker, filled, colour = BIC_PLOT_STYLE[name]
            style.update(marker=marker, color=colour, markerfacecolor=colour if filled else "none")
        else:
            style.update(marker="o")
        if "se" in rows.columns:
            ax.errorbar(
                x, values[keep], yerr=rows["se"].to_numpy(dtype=float)[keep], capsize=3, **style
            )
        else:
            ax.plot(x, values[keep], **style)
    best = table[
        (table["n_components"] == result.best_n_components)
        & (table["covariance_type"] == result.best_covariance_type)
    ]
    if len(best):
        ax.scatter(
            best["n_components"],
            best[criterion],
            s=160,
            facecolors="none",
            edgecolors="black",
            linewidths=1.5,
            zorder=3,
            label="chosen",
        )
    ax.set_xlabel("number of components")
    ax.set_ylabel(label)
    ax.legend(title="covariance model")
    return ax


def plot_compare(table: pd.DataFrame, *, ax: Any = None) -> Axes:
    """Elpd of each model with its standard error, and the difference to the best.

    Drawn with matplotlib from the table of :func:`bayesgmm.compare` (arviz_plots'
    ``plot_compare`` returns a PlotCollection on its own figure, so it cannot
    draw on a given Axes): filled markers are the elpd with +-1 SE, hollow
    markers the elpd difference to the best model with +-1 SE of the difference,
    drawn at the best model's elpd. A vertical line marks the best elpd.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesgmm.compare` (or :func:`arviz_stats.compare`): columns
        ``elpd`` and ``se``, and ``elpd_diff`` and ``dse`` for the differences.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, plotting
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    >>> model = EMGaussianMixture(2, random_state=0).fit(X)
    >>> from bayesgmm import compare
    >>> models = {"K=1": EMGaussianMixture(1).fit(X), "K=2": model}
    >>> ax = plotting.plot_compare(compare(models, X, k_folds=4, random_state=0))
    >>> [label.get_text() for label in ax.get_yticklabels()]
    ['K=2', 'K=1']
    """
    if not hasattr(table, "columns"):
        raise TypeError(message("table", "a pandas DataFrame from bayesgmm.compare", table))
    for column in ("elpd", "se"):
        if column not in table.columns:
            raise ValueError(
                message(
                    "table",
                    "a comparison table with 'elpd' and 'se' columns",
                    f"columns {list(table.columns)}",
                    raw=True,
                )
            )
    ax = _axes(ax)
    table = table.sort_values("elpd", ascending=False)
    y = np.arange(len(table))[::-1].astype(float)
    elpd = table["elpd"].to_numpy(dtype=float)
    ax.errorbar(
        elpd,
        y,
        xerr=table["se"].to_numpy(dtype=float),
        fmt="o",
        color="C0",
        capsize=3,
        label="elpd +- SE",
    )
    if "elpd_diff" in table.columns and "dse" in table.columns and len(table) > 1:
        diff = table["elpd_diff"].to_numpy(dtype=float)[1:]
        ax.errorbar(
            elpd[0] + diff,
            y[1:] - 0.2,
            xerr=table["dse"].to_numpy(dtype=float)[1:],
            fmt="o",
            mfc="none",
            color="C1",
            capsize=3,
            label="difference +- dSE",
        )
    ax.axvline(elpd[0], color="0.5", linestyle="--", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([str(name) for name in table.index])
    ax.set_xlabel("elpd (log scale; higher is better)")
    ax.legend()
    return ax


def plot_dp_weights(model: Any, *, ax: Any = None, n_draws: int = 500) -> Axes:
    """Posterior mean weight of every component of a Dirichlet-process mixture.

    Bars are ``model.weights_`` (components sorted by weight); when the model
    offers ``to_datatree``, dots with error bars are the posterior medians and
    94% equal-tailed intervals of ``n_draws`` posterior draws, labelled with
    the model's ``interval_method_`` (``"VI"`` or ``"VI+PSIS"``), and the
    dashed line is ``1 / n_samples``, below which a component explains less
    than one point.

    Parameters
    ----------
    model : fitted DPGaussianMixture
        Any fitted model with ``weights_``; intervals need ``to_datatree``.
    ax : matplotlib Axes, optional
    n_draws : int, default 500
        Posterior draws for the intervals.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import DPGaussianMixture, plotting
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    >>> model = DPGaussianMixture(5, random_state=0).fit(X)
    >>> ax = plotting.plot_dp_weights(model, n_draws=100)
    >>> len(ax.patches)
    5
    """
    check_fitted(model)
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    weights = np.asarray(model.weights_, dtype=float)
    ax = _axes(ax)
    x = np.arange(weights.size)
    n_samples = None
    ax.bar(x, weights, color="C0")
    if hasattr(model, "to_datatree"):
        tree = _variational_draws(model, n_draws, 0)
        draws = np.asarray(
            tree["posterior"]["weights"].stack(sample=("chain", "draw")).transpose("sample", ...)
        )
        median, lower, upper = credible_interval(draws, DEFAULT_CI_PROB, "eti")
        ax.errorbar(
            x,
            median,
            yerr=np.vstack([median - lower, upper - median]),
            fmt="o",
            color="black",
            markersize=3,
            capsize=2,
            label=f"median, {DEFAULT_CI_PROB:.0%} interval ({_interval_label(model)})",
        )
        ax.legend(loc="upper right", fontsize="small")
        n_samples = tree["observed_data"].sizes.get("obs_id")
    if n_samples:
        ax.axhline(1.0 / n_samples, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_xlabel("component")
    ax.set_ylabel("weight")
    ax.set_xticks(x)
    return ax


def plot_coclustering(matrix: Any, *, ax: Any = None, order: Any = None) -> Axes:
    """Heatmap of the posterior co-clustering matrix ``P(z_i = z_j)``.

    Parameters
    ----------
    matrix : array-like of shape (n, n)
        From :func:`bayesgmm.cluster_uncertainty` (``.coclustering``).
    ax : matplotlib Axes, optional
    order : array-like of int, optional
        Order of the points. By default, points are ordered by average-linkage
        hierarchical clustering of ``1 - matrix`` (n <= 3000), so clusters
        appear as blocks on the diagonal.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import plotting
    >>> labels = np.array([0, 1, 0, 1])
    >>> ax = plotting.plot_coclustering((labels[:, None] == labels).astype(float))
    >>> ax.get_images()[0].get_array().shape
    (4, 4)
    """
    try:
        matrix = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(message("matrix", "a square array of probabilities", matrix)) from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(message("matrix", "a square 2-D array", f"shape {matrix.shape}", raw=True))
    if not np.all((matrix >= -1e-9) & (matrix <= 1.0 + 1e-9)):  # also false for NaN
        raise ValueError(
            message("matrix", "probabilities in [0, 1]", "NaN or values outside [0, 1]", raw=True)
        )
    n = matrix.shape[0]
    if order is None:
        order = np.arange(n)
        if 2 < n <= 3000:
            from scipy.cluster.hierarchy import leaves_list, linkage
            from scipy.spatial.distance import squareform

            distance = np.clip(1.0 - 0.5 * (matrix + matrix.T), 0.0, None)
            np.fill_diagonal(distance, 0.0)
            order = leaves_list(linkage(squareform(distance, checks=False), method="average"))
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(n)):
        raise ValueError(message("order", f"a permutation of 0..{n - 1}", order))
    ax = _axes(ax)
    image = ax.imshow(
        matrix[np.ix_(order, order)], vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest"
    )
    ax.figure.colorbar(image, ax=ax, label="P(same component)")
    ax.set_xlabel("point (reordered)")
    ax.set_ylabel("point (reordered)")
    return ax


def plot_density(
    model: Any,
    X: Any,
    *,
    ax: Any = None,
    grid_size: int = 100,
    levels: int = 10,
    dims: tuple[int, int] = (0, 1),
) -> Axes:
    """Contours of the fitted density over the data (a curve in one dimension).

    With two features the density is ``exp(model.score_samples)`` (for Bayesian
    models the posterior predictive density); with more, it is the marginal of
    the point estimate ``model.params_`` on the two features in ``dims``.

    Parameters
    ----------
    model : fitted bayesgmm model
    X : array-like of shape (n_samples, n_features)
        The data, drawn as points; the grid spans their range plus 10%.
    ax : matplotlib Axes, optional
    grid_size : int, default 100
        Grid points per axis.
    levels : int, default 10
        Number of contour levels.
    dims : (int, int), default (0, 1)
        The two features shown when there are more than one.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesgmm import EMGaussianMixture, plotting
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    >>> model = EMGaussianMixture(2, random_state=0).fit(X)
    >>> ax = plotting.plot_density(model, X, grid_size=30)
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('feature 0', 'feature 1')
    """
    check_fitted(model)
    X, _ = check_array(X)
    check_n_features(X, model.n_features_in_)
    grid_size = check_int(grid_size, "grid_size", minimum=10)
    levels = check_int(levels, "levels", minimum=1)
    ax = _axes(ax)
    if X.shape[1] == 1:
        pad = 0.1 * np.ptp(X[:, 0]) + 1e-12
        grid = np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, grid_size)
        ax.plot(grid, np.exp(model.score_samples(grid[:, None])))
        ax.plot(X[:, 0], np.zeros(X.shape[0]), "|", color="0.3")
        ax.set_xlabel("feature 0")
        ax.set_ylabel("density")
        return ax
    i, j = _check_dims(dims, X.shape[1])
    pad_x = 0.1 * np.ptp(X[:, i]) + 1e-12
    pad_y = 0.1 * np.ptp(X[:, j]) + 1e-12
    gx = np.linspace(X[:, i].min() - pad_x, X[:, i].max() + pad_x, grid_size)
    gy = np.linspace(X[:, j].min() - pad_y, X[:, j].max() + pad_y, grid_size)
    xx, yy = np.meshgrid(gx, gy)
    points = np.column_stack([xx.ravel(), yy.ravel()])
    if X.shape[1] == 2:
        log_density = model.score_samples(
            points[:, [0, 1]] if (i, j) == (0, 1) else points[:, ::-1]
        )
    else:
        from bayesgmm.params import GaussianMixtureParams

        p = model.params_
        full = p.full_covariances()[:, [i, j]][:, :, [i, j]]
        log_density = GaussianMixtureParams(
            p.weights, p.means[:, [i, j]], full, "full"
        ).score_samples(points)
    ax.contour(xx, yy, np.exp(log_density).reshape(xx.shape), levels=levels, cmap="viridis")
    ax.scatter(X[:, i], X[:, j], s=4, color="0.3", alpha=0.5)
    names = getattr(model, "feature_names_in_", None)
    ax.set_xlabel(str(names[i]) if names is not None else f"feature {i}")
    ax.set_ylabel(str(names[j]) if names is not None else f"feature {j}")
    return ax
