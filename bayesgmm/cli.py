"""The ``bayesgmm`` command (also ``python -m bayesgmm``).

Sub-commands: ``demo`` (the whole workflow on the Old Faithful data, with a
report), ``fit`` (fit one model to a CSV or .npy file and save it), ``select``
(choose the number of components), ``compare`` (compare saved models on the
same data), ``predict`` (labels and membership probabilities of new rows
from a saved model) and ``impute`` (fill the missing values of a data file
with a saved model).

Errors are one line on stderr that starts with ``bayesgmm: error:``; the exit
status is 0 on success, 1 for a data or runtime error (a missing or malformed
file, an existing output without ``--force``), 2 for a usage error (an unknown
option, an invalid option value) and 130 when interrupted with Ctrl-C. Every
output file is written to a temporary name and renamed when complete, so an
interrupted run leaves no half-written file.

This module parses the arguments, dispatches to the sub-commands, maps errors
to exit statuses and prints; data files are read by :func:`bayesgmm.io.read_data`
and the demo lives in :mod:`bayesgmm._demo`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from bayesgmm._gaussian import COVARIANCE_TYPES

__all__ = ["CommandError", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MODELS = {
    "em": ("bayesgmm.em", "EMGaussianMixture"),
    "marginal": ("bayesgmm.marginal", "MarginalGaussianMixture"),
    "dp": ("bayesgmm.dirichlet_process", "DPGaussianMixture"),
}
SELECTION_METHODS = ("bic", "icl", "aic", "loo", "dp", "lrt", "sparse")


class CommandError(Exception):
    """An error to report as one line on stderr, with the exit status to return.

    Parameters
    ----------
    message : str
        What went wrong and, where possible, what to do about it.
    code : int, default 1
        Exit status: 1 for data and runtime errors, 2 for usage errors.

    Examples
    --------
    >>> from bayesgmm.cli import CommandError
    >>> CommandError("data.csv: no such file").code
    1
    """

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports errors as one line instead of exiting."""

    def error(self, message: str) -> Any:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of the examples in the epilog."""


def _as_input(X: np.ndarray, names: list[str] | None) -> Any:
    """Return a DataFrame when the columns have names (so models keep them), else the array."""
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=names)


# ------------------------------------------------------------------ interruption
class _Interruption:
    """Remember a Ctrl-C even when a library catches the KeyboardInterrupt.

    nutpie, for one, answers Ctrl-C by stopping the sampler and returning the
    draws made so far. The command must not save or report such a truncated
    fit as if it were complete, so every command calls :meth:`check` before it
    writes its outputs.
    """

    def __init__(self) -> None:
        self.seen = False

    def handler(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        self.seen = False
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = signal.signal(signal.SIGINT, self.handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


_INTERRUPTION = _Interruption()


# ------------------------------------------------------------------ small helpers
def _import_model(kind: str) -> type:
    module_name, class_name = MODELS[kind]
    return getattr(importlib.import_module(module_name), class_name)


def _check_output(path: str, force: bool) -> Path:
    from bayesgmm.io import check_writable

    try:
        return check_writable(path, overwrite=force)
    except FileExistsError:
        raise CommandError(f"{path}: already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise CommandError(f"--output: {exc}") from None


def _write_text(path: Path, text: str, force: bool) -> None:
    from bayesgmm.io import atomic_path

    with atomic_path(path, overwrite=force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _echo(text: str = "", stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


def _shape(X: np.ndarray) -> str:
    rows, columns = X.shape
    return f"{rows} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------ commands
def _cmd_fit(args: argparse.Namespace) -> int:
    output = _check_output(args.output, args.force)
    from bayesgmm._demo import configure, format_table
    from bayesgmm.io import read_data, read_labelled_data, read_weight_column

    codes = None
    columns, sample_weight = args.columns, None
    if args.weights is not None:
        if args.bootstrap is not None:
            raise CommandError(
                "--bootstrap: the bootstrap resamples rows, not weighted rows; "
                "drop --bootstrap or --weights",
                EXIT_USAGE,
            )
        exclude = () if args.labels is None else (args.labels,)
        sample_weight, columns = read_weight_column(args.data, args.weights, columns, exclude)
    if args.labels is None:
        X, names = read_data(args.data, columns)
    else:
        if args.model != "em":
            raise CommandError(
                f"--labels: semi-supervised fitting is for --model em, not {args.model}",
                EXIT_USAGE,
            )
        X, names, labels = read_labelled_data(args.data, args.labels, columns)
        codes, classes = _label_codes(labels, args.components)
    if sample_weight is not None:
        from bayesgmm._validation import check_sample_weight

        sample_weight = check_sample_weight(
            sample_weight, X.shape[0], min_positive=args.components, name="--weights"
        )
    if args.bootstrap is not None and args.model != "em":
        raise CommandError(
            f"--bootstrap: expected --model em (the Bayesian models have posterior draws), "
            f"got --model {args.model}",
            EXIT_USAGE,
        )
    model, fit_kwargs = configure(
        _import_model(args.model),
        {
            "n_components": args.components,
            "covariance_type": args.covariance_type,
            "seed": args.seed,
            "draws": args.draws,
            "tune": args.tune,
            "chains": args.chains,
            "progressbar": not args.quiet,
        },
    )
    _echo(
        f"Fitting {type(model).__name__} with {args.components} component(s) to {args.data} "
        f"({_shape(X)})"
    )
    if codes is not None:
        fit_kwargs["labels"] = codes
        known = ", ".join(f"{k} = {c}" for k, c in enumerate(classes))
        _echo(f"{int((codes >= 0).sum())} labelled row(s); components {known}")
    if sample_weight is not None:
        fit_kwargs["sample_weight"] = sample_weight
        _echo(f"rows weighted by column {args.weights} (total weight {sample_weight.sum():g})")
    model.fit(_as_input(X, names), **fit_kwargs)
    _INTERRUPTION.check()
    if args.bootstrap is not None:
        _echo(f"Bootstrapping the fit ({args.bootstrap} nonparametric replicates)")
        model.bootstrap(_as_input(X, names), args.bootstrap, random_state=args.seed)
        _INTERRUPTION.check()
    from bayesgmm.io import save

    save(model, output, overwrite=args.force)
    params = model.params_
    score = float(model.score(_as_input(X, names), sample_weight=sample_weight))
    per = "row" if sample_weight is None else "unit of weight"
    _echo(f"mean log-likelihood per {per}: {score:.6g}")
    import pandas as pd

    summary = pd.DataFrame(
        params.means, columns=[f"mean {c}" for c in (names or range(X.shape[1]))]
    )
    summary.insert(0, "weight", params.weights)
    summary.index.name = "component"
    _echo(format_table(summary))
    if args.bootstrap is not None:
        attrs = model.bootstrap_.attrs
        _echo(
            f"bootstrap: {attrs['n_used']} of {attrs['n_replicates']} replicates used "
            f"({attrs['n_failed']} failed, {attrs['n_degenerate']} degenerate, "
            f"{attrs['n_not_converged']} not converged); standard errors and 90% intervals:"
        )
        _echo(format_table(model.bootstrap_summary(ci_prob=0.9).reset_index()))
    _echo(f"saved to {output}")
    return EXIT_OK


def _label_codes(labels: Any, n_components: int) -> tuple[np.ndarray, list[str]]:
    """Component codes of text labels: the classes sorted, -1 where the label is missing."""
    known = np.array([label is not None for label in labels])
    classes = sorted({str(label) for label in labels[known]})
    if len(classes) > n_components:
        raise CommandError(
            f"--labels: {len(classes)} classes but --components {n_components}; give at "
            "least as many components as classes",
            2,
        )
    index = {c: k for k, c in enumerate(classes)}
    codes = np.array([index[str(label)] if label is not None else -1 for label in labels])
    return codes, classes


def _cmd_select(args: argparse.Namespace) -> int:
    from bayesgmm._demo import format_table
    from bayesgmm.io import read_data
    from bayesgmm.selection import select_n_components

    output = _check_output(args.output, args.force) if args.output else None
    X, names = read_data(args.data, args.columns)

    covariance_types = tuple(args.covariance_types.split(","))
    for value in covariance_types:
        if value not in COVARIANCE_TYPES:
            raise CommandError(
                f"--covariance-types: expected names from {', '.join(COVARIANCE_TYPES)}, "
                f"got {value!r}",
                EXIT_USAGE,
            )
    max_components = min(args.max_components, X.shape[0])
    _echo(
        f"Choosing the number of components (1 to {max_components}) by {args.method} "
        f"on {args.data} ({_shape(X)})"
    )
    result = select_n_components(
        _as_input(X, names),
        n_components=range(1, max_components + 1),
        method=args.method,
        covariance_types=covariance_types,
        random_state=args.seed,
        fit_kwargs={"n_boot": args.n_boot} if args.method == "lrt" else None,
    )
    _echo(format_table(result.table))
    _echo(
        f"best: {result.best_n_components} component(s), "
        f"covariance_type={result.best_covariance_type!r}"
    )
    _INTERRUPTION.check()
    if output is not None:
        _write_text(output, result.table.to_csv(), args.force)
        _echo(f"table written to {output}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from bayesgmm._demo import comparison_lines
    from bayesgmm.comparison import compare
    from bayesgmm.io import read_data

    output = _check_output(args.output, args.force) if args.output else None
    X, names = read_data(args.data, args.columns)
    models: dict[str, Any] = {}
    for file in args.files:
        path = Path(file)
        model = _load_model_for(file, X, names, args.data)
        key = path.stem if path.stem not in models else str(path)
        if key in models:
            raise CommandError(f"{file}: given twice")
        models[key] = model
    _echo(f"Comparing {len(models)} model(s) on {args.data} ({X.shape[0]} rows)")
    table = compare(models, _as_input(X, names), random_state=args.seed)
    for line in comparison_lines(table):
        _echo(line)
    _INTERRUPTION.check()
    if output is not None:
        _write_text(output, table.to_csv(), args.force)
        _echo(f"table written to {output}")
    return EXIT_OK


def _load_model_for(file: str, X: np.ndarray, names: list[str] | None, data: str) -> Any:
    """Load a saved model and check that it was fitted on columns like those of ``data``."""
    from bayesgmm.io import load

    path = Path(file)
    if not path.exists():
        raise CommandError(f"{file}: no such file")
    try:
        model = load(path)
    except ValueError as exc:
        raise CommandError(_one_line(str(exc))) from None
    n_features = int(model.n_features_in_)
    if n_features != X.shape[1]:
        raise CommandError(
            f"{file}: the model was fitted on {n_features} column(s) but {data} has "
            f"{X.shape[1]} (choose columns with --columns)"
        )
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None and names is not None and list(fitted_names) != names:
        raise CommandError(
            f"{file}: the model was fitted on columns {list(fitted_names)} but {data} "
            f"has {names} (choose columns with --columns)"
        )
    return model


def _cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from bayesgmm.io import read_data

    if args.ci_kind is not None and args.ci_prob is None:
        raise CommandError("--ci-kind: given without --ci-prob (add --ci-prob P)", EXIT_USAGE)
    ci_kind = args.ci_kind or "eti"
    if ci_kind == "hdi" and args.ci_prob <= 0.5:
        raise CommandError(
            f"--ci-prob: expected a probability above 0.5 with --ci-kind hdi, got {args.ci_prob:g}",
            EXIT_USAGE,
        )
    output = _check_output(args.output, args.force)
    X, names = read_data(args.data, args.columns)
    model = _load_model_for(args.model_file, X, names, args.data)
    data = _as_input(X, names)
    if args.ci_prob is None:
        probabilities = np.asarray(model.predict_proba(data))
        columns = {}
    else:
        if "ci_prob" not in inspect.signature(model.predict_proba).parameters:
            raise CommandError(
                f"--ci-prob: {args.model_file} holds a {type(model).__name__} without "
                "parameter draws, so its probabilities have no intervals (leave out --ci-prob)",
                EXIT_USAGE,
            )
        summary = model.predict_proba(data, ci_prob=args.ci_prob, ci_kind=ci_kind)
        probabilities = np.asarray(summary["mean"].values)
        columns = {part: np.asarray(summary[part].values) for part in ("median", "lower", "upper")}
    # The label is the component of highest (posterior mean) probability, as model.predict.
    table = pd.DataFrame({"label": probabilities.argmax(axis=1)})
    for k in range(probabilities.shape[1]):
        table[f"proba_{k}"] = probabilities[:, k]
        for part, values in columns.items():
            table[f"proba_{k}_{part}"] = values[:, k]
    _INTERRUPTION.check()
    _write_text(output, table.to_csv(index=False), args.force)
    counts = np.bincount(table["label"], minlength=probabilities.shape[1])
    occupied = ", ".join(f"{k}: {c}" for k, c in enumerate(counts) if c)
    _echo(f"{X.shape[0]} row(s) of {args.data} labelled by {args.model_file} ({occupied})")
    if columns:
        _echo(f"with {ci_kind} intervals of probability {args.ci_prob:g}")
    _echo(f"written to {output}")
    return EXIT_OK


def _cmd_impute(args: argparse.Namespace) -> int:
    import pandas as pd

    from bayesgmm.io import read_data

    output = _check_output(args.output, args.force)
    X, names = read_data(args.data, args.columns, allow_nan=True)
    model = _load_model_for(args.model_file, X, names, args.data)
    if not hasattr(model, "impute"):
        raise CommandError(
            f"{args.model_file}: a {type(model).__name__} cannot impute missing values "
            "(save an em, dp or marginal model)"
        )
    missing = np.isnan(X)
    filled = np.asarray(model.impute(X))
    table = pd.DataFrame(filled, columns=names)
    _INTERRUPTION.check()
    _write_text(output, table.to_csv(index=False, header=names is not None), args.force)
    rows = int(missing.any(axis=1).sum())
    _echo(
        f"{int(missing.sum())} missing value(s) in {rows} of the {X.shape[0]} row(s) of "
        f"{args.data} filled by {args.model_file}"
    )
    _echo(f"written to {output}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CommandError(f"{out}: folder exists and is not empty; pass --force to write into it")
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    from bayesgmm import _demo
    from bayesgmm.io import _default_mode

    # Everything is written into a staging folder beside the output first and moved
    # into place at the end, so an interrupted demo leaves no partial output.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    try:
        staging.chmod(_default_mode(0o777))  # mkdtemp's folder is private; the output is not
        found = _demo.run_demo(
            staging,
            fast=args.fast,
            seed=args.seed,
            progress=not args.quiet,
            echo=_echo,
            checkpoint=_INTERRUPTION.check,
        )
        _INTERRUPTION.check()
        if not out.exists():
            os.replace(staging, out)
        else:
            for item in sorted(staging.iterdir()):
                os.replace(item, out / item.name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    _echo(f"Chosen number of components (BIC): {found['k']} ({found['covariance_type']})")
    _echo(f"Report: {out / 'report.md'}")
    return EXIT_OK


# -------------------------------------------------------------------------- parser
def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _integer_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """Make an argparse type: an integer >= ``minimum``, described as ``what`` in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _probability(text: str) -> float:
    """Parse a probability strictly between 0 and 1 (an interval's mass)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1), got {text!r}")
    return value


_positive_int = _integer_at_least(1, "a positive integer")
_seed = _integer_at_least(0, "a non-negative integer")


_EXIT_STATUS = (
    "exit status: 0 success, 1 data or runtime error (missing or malformed file, existing "
    "output without --force), 2 usage error, 130 interrupted (no partial output is left)."
)


def _parser() -> _Parser:
    parser = _Parser(
        prog="bayesgmm",
        description=_wrap(
            "Gaussian mixture models: EM, marginalised NUTS, variational Dirichlet "
            "process, and model comparison."
        ),
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  bayesgmm demo --output demo-output\n"
        "  bayesgmm fit data.csv --model em --components 3 --output model.json\n"
        "  bayesgmm select data.csv --method bic --max-components 8\n"
        "  bayesgmm compare em.json dp.json --data data.csv\n"
        "  bayesgmm predict dp.json new.csv --output labels.csv --ci-prob 0.9\n"
        "  bayesgmm impute em.json holes.csv --output filled.csv\n\n"
        "Run 'bayesgmm COMMAND --help' for the options of a command.\n" + _EXIT_STATUS,
    )
    from bayesgmm import __version__

    parser.add_argument("--version", action="version", version=f"bayesgmm {__version__}")
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an error (for bug reports)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data_help = (
        "CSV file (header detected: a first row that is not all numbers) or .npy "
        "array, one row per observation"
    )
    columns_help = "comma-separated column names or 0-based positions to use (default: all)"

    demo = commands.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="fit EM, the marginal and the DP model to Old Faithful and write a report",
        description=_wrap(
            "Fit EM (K chosen by BIC), the marginal Bayesian model and the "
            "Dirichlet-process model to the Old Faithful eruptions, print the comparison table "
            "and the choice of K, and write figures and report.md into the output folder. "
            "Under a minute on two cores, most of it compiling the NUTS model the first time."
        ),
        epilog="examples:\n  bayesgmm demo\n  bayesgmm demo --output results --force --fast\n\n"
        + _EXIT_STATUS,
    )
    demo.add_argument(
        "--output",
        default="demo-output",
        metavar="DIR",
        help="folder for the figures, tables, models and report.md (default: demo-output)",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="write into an existing non-empty folder, replacing files of the same names",
    )
    demo.add_argument("--fast", action="store_true", help="2 NUTS chains instead of 4")
    demo.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)

    fit = commands.add_parser(
        "fit",
        formatter_class=_Formatter,
        help="fit one model to a data file and save it",
        description=_wrap(
            "Fit a Gaussian mixture to DATA and save it (JSON for em and dp, NetCDF-4 "
            "for marginal); load it again in Python with bayesgmm.load(FILE)."
        ),
        epilog="examples:\n"
        "  bayesgmm fit data.csv --model em --components 3 --output em.json\n"
        "  bayesgmm fit data.npy --model dp --components 10 --covariance-type diag "
        "--output dp.json\n"
        "  bayesgmm fit data.csv --model marginal --components 2 --seed 1 --output nuts.nc\n"
        "  bayesgmm fit iris.csv --model em --components 3 --labels Species --output ssc.json\n"
        "  bayesgmm fit counts.csv --model em --components 2 --weights count --output em.json\n\n"
        + _EXIT_STATUS,
    )
    fit.add_argument("data", metavar="DATA", help=data_help)
    fit.add_argument("--model", required=True, choices=sorted(MODELS), help="which model")
    fit.add_argument(
        "--components",
        required=True,
        type=_positive_int,
        metavar="K",
        help="number of components (the truncation level for dp)",
    )
    fit.add_argument(
        "--covariance-type",
        default="full",
        choices=COVARIANCE_TYPES,
        help="covariance structure (default: full)",
    )
    fit.add_argument("--seed", type=_seed, default=None, help="random seed")
    fit.add_argument("--output", required=True, metavar="FILE", help="where to save the model")
    fit.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    fit.add_argument("--columns", default=None, help=columns_help)
    fit.add_argument(
        "--labels",
        default=None,
        metavar="COLUMN",
        help="em only: semi-supervised fit; the column (name or position) of known classes, "
        "empty or NA where unknown; component k is the k-th class in sorted order; the data "
        "are the other columns unless --columns says",
    )
    fit.add_argument(
        "--weights",
        default=None,
        metavar="COLUMN",
        help="frequency weights: the column (name or position) of non-negative numbers, row i "
        "counting as that many copies of itself; the data are the other columns unless "
        "--columns says",
    )
    fit.add_argument(
        "--draws",
        type=_positive_int,
        default=None,
        help="marginal only: posterior draws per chain (default: the model's)",
    )
    fit.add_argument(
        "--tune",
        type=_positive_int,
        default=None,
        help="marginal only: tuning steps per chain (default: the model's)",
    )
    fit.add_argument(
        "--chains",
        type=_positive_int,
        default=None,
        help="marginal only: number of chains (default: the model's)",
    )
    fit.add_argument(
        "--bootstrap",
        type=_positive_int,
        default=None,
        metavar="N",
        help="em only: bootstrap the fit with N nonparametric replicates (kept in the saved "
        "model: intervals for predict_proba and cluster_uncertainty)",
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(func=_cmd_fit)

    select = commands.add_parser(
        "select",
        formatter_class=_Formatter,
        help="choose the number of components",
        description=_wrap(
            "Fit mixtures with 1 to --max-components components (and each covariance "
            "type for the information criteria) and report which the criterion prefers: bic, aic "
            "and icl from EM fits, loo from NUTS fits, dp from the posterior number of occupied "
            "components of a Dirichlet-process mixture, sparse from that of a sparse finite "
            "mixture with --max-components components (NUTS)."
        ),
        epilog="examples:\n"
        "  bayesgmm select data.csv\n"
        "  bayesgmm select data.csv --method icl --max-components 6 --output icl.csv\n"
        "  bayesgmm select data.npy --covariance-types full,diag --seed 3\n\n" + _EXIT_STATUS,
    )
    select.add_argument("data", metavar="DATA", help=data_help)
    select.add_argument(
        "--method", default="bic", choices=SELECTION_METHODS, help="criterion (default: bic)"
    )
    select.add_argument(
        "--max-components",
        type=_positive_int,
        default=8,
        metavar="K",
        help="largest number of components tried (default: 8)",
    )
    select.add_argument(
        "--covariance-types",
        default=",".join(COVARIANCE_TYPES),
        metavar="T1,T2",
        help="covariance types tried, comma-separated (default: all four)",
    )
    select.add_argument("--seed", type=_seed, default=None, help="random seed")
    select.add_argument(
        "--n-boot",
        type=_positive_int,
        default=999,
        metavar="B",
        help="lrt only: bootstrap replicates per test (default: 999)",
    )
    select.add_argument(
        "--output",
        default=None,
        metavar="CSV",
        help="also write the table of criteria to this CSV file",
    )
    select.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    select.add_argument("--columns", default=None, help=columns_help)
    select.set_defaults(func=_cmd_select)

    comp = commands.add_parser(
        "compare",
        formatter_class=_Formatter,
        help="compare saved models on the same data",
        description=_wrap(
            "Load models saved by 'bayesgmm fit' (or model.save) and compare them by "
            "their leave-one-out expected log predictive density on DATA, which must be the data "
            "the Bayesian models were fitted on."
        ),
        epilog="examples:\n"
        "  bayesgmm compare em.json dp.json nuts.nc --data data.csv\n"
        "  bayesgmm compare k2.json k3.json --data data.csv --output comparison.csv\n\n"
        + _EXIT_STATUS,
    )
    comp.add_argument("files", nargs="+", metavar="FILE", help="saved models")
    comp.add_argument("--data", required=True, metavar="DATA", help=data_help)
    comp.add_argument("--columns", default=None, help=columns_help)
    comp.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="random seed (cross-validation folds, variational draws)",
    )
    comp.add_argument(
        "--output",
        default=None,
        metavar="CSV",
        help="also write the comparison table to this CSV file",
    )
    comp.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    comp.set_defaults(func=_cmd_compare)

    pred = commands.add_parser(
        "predict",
        formatter_class=_Formatter,
        help="label new rows with a saved model",
        description=_wrap(
            "Load a model saved by 'bayesgmm fit' (or model.save) and write, for every row "
            "of DATA, its label (the most probable component) and its membership "
            "probabilities, one column proba_K per component. With --ci-prob, a model with "
            "parameter draws (marginal, dp) adds the median and the credible interval of each "
            "probability over those draws (columns proba_K_median, proba_K_lower, "
            "proba_K_upper); proba_K is then the posterior mean."
        ),
        epilog="examples:\n"
        "  bayesgmm predict em.json new.csv --output labels.csv\n"
        "  bayesgmm predict nuts.nc new.csv --columns x,y --output labels.csv --ci-prob 0.9\n\n"
        + _EXIT_STATUS,
    )
    pred.add_argument("model_file", metavar="MODEL", help="a saved model")
    pred.add_argument("data", metavar="DATA", help=data_help)
    pred.add_argument("--output", required=True, metavar="CSV", help="where to write the table")
    pred.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    pred.add_argument("--columns", default=None, help=columns_help)
    pred.add_argument(
        "--ci-prob",
        type=_probability,
        default=None,
        metavar="P",
        help="also write credible intervals of this mass (marginal and dp models)",
    )
    pred.add_argument(
        "--ci-kind",
        default=None,
        choices=("eti", "hdi"),
        help="with --ci-prob: equal-tailed or highest-density intervals (default: eti; hdi "
        "needs P > 0.5)",
    )
    pred.set_defaults(func=_cmd_predict)

    imp = commands.add_parser(
        "impute",
        formatter_class=_Formatter,
        help="fill the missing values of a data file with a saved model",
        description=_wrap(
            "Load a model saved by 'bayesgmm fit' (or model.save) and write DATA with every "
            "missing value (an empty cell, NA, NaN, null) replaced by its conditional mean "
            "given the row's observed values under the model: each component's regression "
            "of the missing features on the observed ones, averaged with the row's "
            "membership probabilities. Observed values are written unchanged; with "
            "--columns, only those columns are read and written. Rows with no value at all "
            "are refused."
        ),
        epilog="examples:\n"
        "  bayesgmm fit complete.csv --model em --components 3 --output em.json\n"
        "  bayesgmm impute em.json holes.csv --output filled.csv\n\n" + _EXIT_STATUS,
    )
    imp.add_argument("model_file", metavar="MODEL", help="a saved model")
    imp.add_argument("data", metavar="DATA", help=data_help)
    imp.add_argument("--output", required=True, metavar="CSV", help="where to write the data")
    imp.add_argument("--force", action="store_true", help="overwrite an existing CSV")
    imp.add_argument("--columns", default=None, help=columns_help)
    imp.set_defaults(func=_cmd_impute)
    return parser


# ---------------------------------------------------------------------------- main
def _show_warning(
    message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    _echo(f"bayesgmm: warning: {_one_line(str(message))}", sys.stderr)


def _error(text: str) -> None:
    _echo(f"bayesgmm: error: {_one_line(text)}", sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bayesgmm`` command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    status : int
        0 on success, 1 for a data or runtime error, 2 for a usage error and
        130 when interrupted. Errors are reported as one line on stderr that
        starts with ``bayesgmm: error:``.

    Examples
    --------
    >>> from bayesgmm.cli import main
    >>> main(["fit", "missing.csv", "--model", "em", "--components", "2",
    ...       "--output", "model.json"])
    1
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        with warnings.catch_warnings(), _INTERRUPTION.watching():
            warnings.showwarning = _show_warning
            # Concerns PyTensor's C backend only; the models compile with Numba.
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            return int(args.func(args))
    except KeyboardInterrupt:
        _echo("bayesgmm: interrupted; no partial output was left behind", sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of the output went away (``bayesgmm select ... | head``): nothing to
        # report, but stop Python from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except CommandError as exc:
        if args.traceback:
            raise
        _error(str(exc))
        return exc.code
    except (OSError, ValueError, TypeError, ImportError, MemoryError) as exc:
        if args.traceback:
            raise
        _error(str(exc) or type(exc).__name__)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the command line reports, never shows a traceback
        if args.traceback:
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (rerun with --traceback and report it)")
        return EXIT_ERROR
