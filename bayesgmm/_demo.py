"""The ``bayesgmm demo`` run and its report.

:func:`run_demo` fits EM (K and the covariance type chosen by BIC), the
marginal model by NUTS and the Dirichlet-process mixture to the Old Faithful
eruptions, compares them, draws the figures and writes everything, with a
Markdown report (:func:`report`), into one folder. It prints its progress
through the ``echo`` it is given and calls ``checkpoint`` after every step, so
the command line decides where the text goes and how an interruption stops the
run (:mod:`bayesgmm.cli` stages the folder and moves it into place at the end).

The command's ``fit`` and ``compare`` sub-commands build models and print
comparison tables as the demo does, through :func:`configure`,
:func:`format_table` and :func:`comparison_lines`.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COMPARE_COLUMNS",
    "comparison_lines",
    "configure",
    "format_table",
    "markdown_table",
    "report",
    "run_demo",
    "table_warnings",
]

#: Columns of bayesgmm.compare's table that are printed and put in the report.
COMPARE_COLUMNS = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "criterion", "pareto_k_max")


def configure(cls: type, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Instantiate ``cls``; each option goes to the constructor or, failing that, to ``fit``.

    Options that neither accepts are dropped (``draws`` for EM, say), as are
    ``None`` values (the model's default applies); ``seed`` becomes
    ``random_state``, and ``n_components`` becomes ``truncation`` for a model without it.
    """
    init_names = set(inspect.signature(cls).parameters)
    fit_names = set(inspect.signature(cls.fit).parameters)  # type: ignore[attr-defined]
    options = {k: v for k, v in options.items() if v is not None}
    if "n_components" not in init_names and "truncation" in init_names:
        # The DP model's number of components is its truncation level.
        options["truncation"] = options.pop("n_components", None)
    seed = options.pop("seed", None)
    if seed is not None and ("random_state" in init_names or "random_state" in fit_names):
        options["random_state"] = seed
    init = {k: v for k, v in options.items() if k in init_names}
    fit = {k: v for k, v in options.items() if k not in init_names and k in fit_names}
    return cls(**init), fit


def format_table(table: Any, columns: Sequence[str] | None = None) -> str:
    """Format ``table`` as plain text, floats to four significant digits."""
    if columns is not None:
        table = table[[c for c in columns if c in table.columns]]
    return str(table.to_string(float_format=lambda v: f"{v:.4g}"))


def markdown_table(table: Any, columns: Sequence[str] | None = None, index: bool = True) -> str:
    """Format ``table`` as a Markdown pipe table (without needing tabulate)."""
    if columns is not None:
        table = table[[c for c in columns if c in table.columns]]

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    header = ([str(table.index.name or "")] if index else []) + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, row in table.iterrows():
        cells = ([cell(key)] if index else []) + [cell(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_warnings(table: Any) -> list[tuple[str, str]]:
    """Return the (model, text) pairs of a comparison table's non-empty ``warning`` column."""
    if "warning" not in table.columns:
        return []
    return [
        (str(name), text)
        for name, text in table["warning"].items()
        if isinstance(text, str) and text
    ]


def comparison_lines(table: Any) -> list[str]:
    """Return a comparison table as printed: the main columns, then a note per warning."""
    return [
        format_table(table, COMPARE_COLUMNS),
        *(f"note ({name}): {text}" for name, text in table_warnings(table)),
    ]


class _Progress:
    """Print the demo's steps through ``echo``; stop through ``checkpoint`` after each."""

    def __init__(self, echo: Callable[[str], None], checkpoint: Callable[[], None]) -> None:
        self.echo = echo
        self.checkpoint = checkpoint

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.echo(f"==> {title}")
        start = time.perf_counter()
        yield
        self.checkpoint()  # stop at once, even if the step itself swallowed Ctrl-C
        self.echo(f"    done in {time.perf_counter() - start:.1f} s")


def _dp_interval_note(dp: Any) -> str:
    """Say how the DP's intervals were made and whether the approximation can be trusted."""
    text = (
        f"Its intervals come from {dp.interval_method_} draws. The Pareto k of the importance "
        "ratios posterior / variational approximation (Yao et al. 2018) is "
        f"{dp.pareto_k_:.2f}"
    )
    if dp.interval_method_ == "VI+PSIS":
        return text + (
            ", within ArviZ's threshold: the draws are reweighted by the Pareto-smoothed "
            "importance weights, which corrects the approximation."
        )
    return text + (
        ", above ArviZ's threshold: the variational intervals are too narrow to be trusted "
        "(the point estimates are not affected); `dp.refine(X)` samples the mixture of its "
        "occupied components by NUTS for intervals that can be."
    )


def _save_figure(folder: Path, name: str, draw: Callable[[Any], Any]) -> str:
    from matplotlib.figure import Figure

    # A Figure without pyplot: no GUI backend, no global state, nothing to close.
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    draw(figure.subplots())
    figure.savefig(folder / name, dpi=110)
    return name


def run_demo(
    folder: Path,
    *,
    fast: bool,
    seed: int,
    progress: bool,
    echo: Callable[[str], None],
    checkpoint: Callable[[], None],
) -> dict[str, Any]:
    """Fit, compare and plot on Old Faithful; write every file into ``folder``.

    Parameters
    ----------
    folder : Path
        An existing, empty folder.
    fast : bool
        Two NUTS chains instead of four.
    seed : int
        Seeds every fit, the comparison and the membership draws.
    progress : bool
        Show the samplers' progress bars.
    echo : callable
        Prints one line of progress.
    checkpoint : callable
        Called after every step; raises to stop the run (``KeyboardInterrupt``).

    Returns
    -------
    dict
        What was computed, as :func:`report` reads it: ``k``,
        ``covariance_type``, ``n``, the fitted models, the tables and the
        figures' file names.
    """
    from bayesgmm.clustering import cluster_uncertainty
    from bayesgmm.comparison import compare
    from bayesgmm.datasets import load_faithful
    from bayesgmm.dirichlet_process import DPGaussianMixture
    from bayesgmm.marginal import MarginalGaussianMixture
    from bayesgmm.selection import select_n_components

    steps = _Progress(echo, checkpoint)
    X = load_faithful(as_frame=True)
    found: dict[str, Any] = {"figures": {}, "n": len(X)}
    echo(f"Old Faithful: {len(X)} eruptions; eruption duration and waiting time in minutes")

    with steps.step("EM: choosing K and the covariance type by BIC (K = 1 to 6)"):
        selection = select_n_components(
            X, n_components=range(1, 7), method="bic", random_state=seed
        )
        found.update(
            selection=selection,
            k=int(selection.best_n_components),
            covariance_type=str(selection.best_covariance_type),
            em=selection.best_model,
        )
        selection.table.to_csv(folder / "selection.csv")
        echo(f"    BIC chooses K = {found['k']}, covariance_type = {found['covariance_type']!r}")
        found["em"].save(folder / "em.json")
    k, covariance_type = found["k"], found["covariance_type"]

    chains = 2 if fast else 4
    with steps.step(f"Marginal model by NUTS: K = {k}, 500 tuning + 500 draws x {chains} chains"):
        marginal, fit_kwargs = configure(
            MarginalGaussianMixture,
            {
                "n_components": k,
                "covariance_type": covariance_type,
                "draws": 500,
                "tune": 500,
                "chains": chains,
                "seed": seed,
                "progressbar": progress,
            },
        )
        found["marginal"] = marginal.fit(X, **fit_kwargs)
        found["marginal"].save(folder / "marginal.nc")

    with steps.step("Dirichlet-process mixture by variational inference (truncation 10)"):
        found["dp"] = DPGaussianMixture(
            10, covariance_type="full", random_state=seed, progressbar=progress
        ).fit(X)
        found["dp"].save(folder / "dp.json")

    models = {
        f"EM (K={k})": found["em"],
        f"Marginal NUTS (K={k})": found["marginal"],
        "DP (variational)": found["dp"],
    }
    with steps.step("Comparing the models by leave-one-out elpd"):
        table = compare(models, X, random_state=seed)
        found["compare"] = table
        table.to_csv(folder / "compare.csv")
        for line in comparison_lines(table):
            echo(line)

    # The Bayesian fit: its ellipses and intervals show the posterior.
    main_model = found["marginal"]
    with steps.step("Membership uncertainty"):
        uncertainty = cluster_uncertainty(main_model, X, random_state=seed)
        uncertainty.table.to_csv(folder / "membership.csv")
        found["uncertainty"] = uncertainty

    with steps.step("Figures"):
        import bayesgmm.plotting as plotting

        figures = found["figures"]
        figures["clusters"] = _save_figure(
            folder, "clusters.png", lambda ax: plotting.plot_clusters(main_model, X, ax=ax)
        )
        figures["membership"] = _save_figure(
            folder,
            "membership.png",
            lambda ax: plotting.plot_membership_uncertainty(main_model, X, ax=ax),
        )
        figures["selection"] = _save_figure(
            folder, "selection.png", lambda ax: plotting.plot_selection(selection, ax=ax)
        )
        figures["compare"] = _save_figure(
            folder, "compare.png", lambda ax: plotting.plot_compare(table, ax=ax)
        )
        figures["dp_weights"] = _save_figure(
            folder, "dp_weights.png", lambda ax: plotting.plot_dp_weights(found["dp"], ax=ax)
        )
        figures["density"] = _save_figure(
            folder, "density.png", lambda ax: plotting.plot_density(found["em"], X, ax=ax)
        )

    (folder / "report.md").write_text(report(found, fast=fast, seed=seed), encoding="utf-8")
    return found


def _table_notes(table: Any) -> list[str]:
    """List the comparison's diagnostics as Markdown bullets (empty when there are none)."""
    notes = [f"- {name}: {text}" for name, text in table_warnings(table)]
    return ["Diagnostics of the estimates:", "", *notes, ""] if notes else []


def _close_models(table: Any) -> str:
    """Say which models are within two standard errors of the best one."""
    if not {"elpd_diff", "dse"} <= set(table.columns) or len(table) < 2:
        return ""
    rest = table.iloc[1:]
    close = [str(name) for name, row in rest.iterrows() if -row["elpd_diff"] <= 2 * row["dse"]]
    if not close:
        return "Every other model is more than two standard errors behind it."
    return (
        f"Within two standard errors of it, so not distinguishable on this data: "
        f"{', '.join(close)}."
    )


def _best_rows(table: Any, column: str, n: int) -> Any:
    """Return the ``n`` rows with the lowest ``column`` (all rows if there is no such column)."""
    if column not in table.columns:
        return table
    return table.sort_values(column, kind="stable").head(n)


def report(found: dict[str, Any], *, fast: bool, seed: int) -> str:
    """Write the demo's Markdown report: figures, tables and what they say.

    Parameters
    ----------
    found : dict
        What :func:`run_demo` computed; a section whose results are missing is
        left out.
    fast, seed
        The run's options, named in the report's first lines.

    Returns
    -------
    str
        The report as Markdown.
    """
    from bayesgmm import __version__

    k, covariance_type, n = found["k"], found["covariance_type"], found["n"]
    figures = found["figures"]

    def image(key: str, caption: str) -> list[str]:
        return [f"![{caption}]({figures[key]})", ""] if key in figures else []

    lines = [
        "# bayesgmm demo: Old Faithful",
        "",
        f"bayesgmm {__version__}, seed {seed}{', fast mode (2 chains)' if fast else ''}. "
        f"Data: {n} eruptions of the Old Faithful geyser (R's `datasets::faithful`; Azzalini "
        "and Bowman 1990, doi:10.2307/2347385): the duration of each eruption and the waiting "
        "time to the next, both in minutes.",
        "",
        "## How many components?",
        "",
    ]
    if "selection" in found:
        lines += [
            "EM was fitted for K = 1 to 6 with each covariance type, and the Bayesian "
            f"information criterion (BIC, lower is better) chose **K = {k}** with "
            f"**{covariance_type}** covariances. BIC trades the fit (the maximised "
            "log-likelihood) against the number of free parameters, so it picks the simplest "
            "mixture that describes the data well. "
            + (
                "The two components are the two groups the scatter plot shows: short "
                "eruptions after short waits and long eruptions after long waits."
                if k == 2
                else f"The scatter plot shows two groups (short eruptions after short waits, "
                f"long after long); with K = {k}, BIC describes at least one of them by more "
                "than one Gaussian because a single ellipse does not fit its shape"
                + (
                    " (mclust's documented example on these data also picks three components "
                    "with equal covariances)"
                    if k == 3 and covariance_type == "tied"
                    else ""
                )
                + ". Whether an extra component is a group or only shape is what the "
                "comparison and the DP model below help decide."
            ),
            "",
            *image("selection", "BIC against the number of components"),
            "The ten best fits by BIC (all of them in `selection.csv`):",
            "",
            markdown_table(_best_rows(found["selection"].table, "bic", 10), index=False),
            "",
        ]
    else:
        lines += [f"K was not chosen (selection not run); K = {k} was used.", ""]
    lines += ["## Clusters", ""]
    if "marginal" in found:
        lines += [
            f"The marginal Bayesian model (K = {k}, sampled by NUTS with the component labels "
            "summed out of the likelihood) gives the clusters below. Points take the colour "
            "of their most probable component and fade where that probability is low; the "
            "ellipses are 1, 2 and 3 standard deviations of each component at the posterior "
            "mean, and the faint ones come from individual posterior draws, which shows how "
            "precisely the data pin the components down.",
            "",
        ]
    else:
        lines += [f"The EM fit with K = {k}, with 1, 2 and 3 standard-deviation ellipses.", ""]
    lines += image("clusters", "Clusters with ellipses")
    if "uncertainty" in found:
        table = found["uncertainty"].table
        n_ambiguous = int(table["ambiguous"].sum()) if "ambiguous" in table else 0
        method = found["uncertainty"].interval_method or "none: a point estimate"
        lines += [
            "## Membership uncertainty",
            "",
            f"{n_ambiguous} of {n} eruptions are flagged *ambiguous*: the credible interval "
            "of the probability that they belong to their own cluster reaches below one half, "
            "so a hard label would overstate what the data say. They lie where components "
            "overlap. The full table (label, probability with its interval, entropy) is in "
            "`membership.csv`. Each probability is the posterior median, which its "
            f"equal-tailed interval always contains; intervals from {method} draws.",
            "",
            *image("membership", "Membership probability with credible intervals"),
        ]
    if "compare" in found:
        table = found["compare"]
        lines += [
            "## Comparing the models",
            "",
            "The models are compared by their expected log predictive density (elpd, higher "
            "is better) estimated by leave-one-out: PSIS-LOO for the NUTS fit, PSIS-LOO "
            "corrected for the approximate posterior for the variational DP fit (or, when "
            "its Pareto k exceed ArviZ's threshold, min(1 - 1/log10(S), 0.7) for S draws, and "
            "importance sampling cannot be trusted, exact K-fold cross-validation, as the "
            "`criterion` column says), and exact K-fold "
            "cross-validation for EM. `elpd_diff` is the difference to the best model "
            "and `dse` its standard error, so a difference within about two `dse` is no real "
            "difference; `weight` is each model's stacking weight.",
            "",
            markdown_table(table, COMPARE_COLUMNS),
            "",
            f"Best by elpd: **{table.index[0]}**. {_close_models(table)}",
            "",
            *_table_notes(table),
            *image("compare", "Model comparison"),
        ]
    if "dp" in found:
        weights = np.sort(np.asarray(found["dp"].params_.weights))[::-1]
        n_large = int((weights > 0.01).sum())
        lines += [
            "## The Dirichlet-process mixture",
            "",
            "The DP model may use up to 10 components and lets the data switch off those it "
            f"does not need: {n_large} component(s) keep a weight above 1% (largest weights "
            f"{', '.join(f'{w:.3f}' for w in weights[:4])}), "
            + (
                f"the same number as BIC's K = {k}."
                if n_large == k
                else f"where BIC chose K = {k}: a second opinion on K, from a model that "
                "pays for every component it uses through its prior rather than through a "
                "penalty on the number of parameters."
            ),
            "",
            _dp_interval_note(found["dp"]),
            "",
            *image("dp_weights", "Posterior of the DP weights"),
        ]
    if "density" in figures:
        lines += ["## Density", "", *image("density", "Density of the EM fit")]
    lines += [
        "## Files",
        "",
        "The tables above in full as CSV (`selection.csv`, `compare.csv`, `membership.csv`), "
        "the fitted models (`em.json`, `dp.json`"
        + (", `marginal.nc`" if "marginal" in found else "")
        + "; load them with `bayesgmm.load`) and the figures as PNG.",
        "",
    ]
    return "\n".join(lines)
