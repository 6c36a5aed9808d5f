"""The ``bayesgmm`` command (also ``python -m bayesgmm``).

Sub-commands: ``demo`` (the whole workflow on the Old Faithful data, with a
report), ``fit`` (fit one model to a CSV or .npy file and save it), ``select``
(choose the number of components) and ``compare`` (compare saved models on the
same data).

Errors are one line on stderr that starts with ``bayesgmm: error:``; the exit
status is 0 on success, 1 for a data or runtime error (a missing or malformed
file, an existing output without ``--force``), 2 for a usage error (an unknown
option, an invalid option value) and 130 when interrupted with Ctrl-C. Every
output file is written to a temporary name and renamed when complete, so an
interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import inspect
import io
import math
import os
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["CommandError", "main", "read_data"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

MODELS = {
    "em": ("bayesgmm.em", "EMGaussianMixture"),
    "marginal": ("bayesgmm.marginal", "MarginalGaussianMixture"),
    "dp": ("bayesgmm.dirichlet_process", "DPGaussianMixture"),
}
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SELECTION_METHODS = ("bic", "icl", "aic", "loo", "dp")
# Columns of bayesgmm.compare's table that the command prints.
_COMPARE_COLUMNS = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "criterion", "pareto_k_max")
# Cells read as a missing value in a CSV file.
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?", "-"})


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


# ------------------------------------------------------------------- reading data
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sniff_delimiter(line: str) -> str:
    for delimiter in (",", "\t", ";"):
        if delimiter in line:
            return delimiter
    return ","


def _read_csv(path: Path) -> tuple[np.ndarray, list[str] | None]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a text CSV file (it is not UTF-8 text)") from None
    first_line = next((line for line in io.StringIO(text) if line.strip()), None)
    if first_line is None:
        raise CommandError(f"{path}: the file is empty")
    delimiter = _sniff_delimiter(first_line)
    first = [field.strip() for field in next(csv.reader([first_line], delimiter=delimiter))]
    # A header is a first row with a field that is neither a number nor a missing value.
    has_header = any(field.lower() not in _MISSING and not _is_number(field) for field in first)
    names: list[str] | None = None
    if has_header:
        names = [field or f"column_{j + 1}" for j, field in enumerate(first)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise CommandError(f"{path}: repeated column name(s) in the header: {repeated}")
    X = _parse_csv_fast(text, delimiter, has_header, len(first))
    if X is None:  # something is wrong: find the line and column, and say what
        X = _parse_csv_checked(path, text, delimiter, has_header, names, len(first))
    return X, names


def _parse_csv_fast(
    text: str, delimiter: str, has_header: bool, n_columns: int
) -> np.ndarray | None:
    """Parse a well-formed numeric CSV with pandas' C parser; ``None`` when anything is off."""
    import pandas as pd

    try:
        with warnings.catch_warnings():
            # A row with more fields than the header: pandas would take the extra
            # leading field as the index (or, with index_col=False, drop data with a
            # ParserWarning). Either way the file is malformed: let the checked
            # parser say where.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                sep=delimiter,
                header=0 if has_header else None,
                dtype=np.float64,
                skipinitialspace=True,
                engine="c",
                index_col=False,
            )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, pd.errors.ParserWarning):
        return None
    X = frame.to_numpy(dtype=np.float64)
    if X.shape[0] == 0 or X.shape[1] != n_columns or not np.isfinite(X).all():
        return None
    return X


def _parse_csv_checked(
    path: Path,
    text: str,
    delimiter: str,
    has_header: bool,
    names: list[str] | None,
    n_columns: int,
) -> np.ndarray:
    """Parse a CSV field by field, raising a :class:`CommandError` at the first bad field."""
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    rows = [
        (number, [field.strip() for field in fields])
        for (number, _), fields in zip(
            lines, csv.reader((line for _, line in lines), delimiter=delimiter), strict=True
        )
    ]
    if has_header:
        rows = rows[1:]
    if not rows:
        raise CommandError(f"{path}: the header has no data rows below it")
    label = names or [str(j + 1) for j in range(n_columns)]
    X = np.empty((len(rows), n_columns))
    for i, (number, fields) in enumerate(rows):
        if len(fields) != n_columns:
            raise CommandError(
                f"{path}, line {number}: expected {n_columns} field(s) as in the first row, "
                f"got {len(fields)}"
            )
        for j, field in enumerate(fields):
            if field.lower() in _MISSING:
                raise CommandError(
                    f"{path}, line {number}, column {label[j]}: missing value; drop or impute "
                    "missing values first"
                )
            try:
                value = float(field)
            except ValueError:
                raise CommandError(
                    f"{path}, line {number}, column {label[j]}: {field!r} is not a number"
                    " (choose numeric columns with --columns)"
                ) from None
            if not math.isfinite(value):
                raise CommandError(
                    f"{path}, line {number}, column {label[j]}: {field!r} is not a finite number"
                )
            X[i, j] = value
    return X


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise CommandError(f"{path}: not a valid .npy file (no NumPy header)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CommandError(
                f"{path}: holds Python objects; only numeric .npy arrays are read"
            ) from None
        raise CommandError(f"{path}: not a valid .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise CommandError(f"{path}: not a valid .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise CommandError(f"{path}: not a single .npy array")
    return array


def _select_columns(
    path: Path, X: np.ndarray, names: list[str] | None, columns: str
) -> tuple[np.ndarray, list[str] | None]:
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    if not wanted:
        raise CommandError("--columns: expected comma-separated column names or positions, got ''")
    positions = []
    for item in wanted:
        if names is not None and item in names:
            positions.append(names.index(item))
        elif item.isdigit() and int(item) < X.shape[1]:
            positions.append(int(item))
        else:
            available = ", ".join(names) if names else f"positions 0 to {X.shape[1] - 1}"
            raise CommandError(f"{path}: no column {item!r} (available: {available})")
    if len(set(positions)) != len(positions):
        raise CommandError(f"--columns: a column is named twice in {columns!r}")
    selected = X[:, positions]
    return selected, [names[p] for p in positions] if names is not None else None


def read_data(
    path: str | os.PathLike[str], columns: str | None = None
) -> tuple[np.ndarray, list[str] | None]:
    r"""Read a data matrix from a CSV or ``.npy`` file, checking it as the command does.

    A CSV file may be separated by commas, tabs or semicolons (told from the
    first line) and has a header when its first row holds a field that is not a
    number. Empty cells and ``NA``/``NaN``/``null`` are missing values, which
    are reported, never imputed. A ``.npy`` file holds one numeric array; a
    1-D array is read as one feature.

    Parameters
    ----------
    path : str or path-like
        The file; ``.npy`` files are told by their suffix, everything else is
        read as CSV.
    columns : str, optional
        Comma-separated column names (from the header) or 0-based positions to
        keep, in that order.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data as floats.
    names : list of str or None
        Column names when the CSV file has a header.

    Raises
    ------
    CommandError
        With a one-line message naming the file, line and column at fault.

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.cli import read_data
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(folder + "/data.csv", "w") as f:
    ...         _ = f.write("a,b\n1,2\n3,4\n")
    ...     X, names = read_data(folder + "/data.csv")
    >>> X.tolist(), names
    ([[1.0, 2.0], [3.0, 4.0]], ['a', 'b'])
    """
    from bayesgmm._validation import check_array

    path = Path(os.fspath(path))
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if path.is_dir():
        raise CommandError(f"{path}: is a folder, not a data file")
    names: list[str] | None
    if path.suffix.lower() == ".npy":
        raw, names = _read_npy(path), None
    else:
        raw, names = _read_csv(path)
    try:
        X, _ = check_array(raw, str(path), allow_1d=True)
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if columns is not None:
        X, names = _select_columns(path, X, names, columns)
    return X, names


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
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise CommandError(f"--model {kind}: {module_name} is not available") from None
        raise
    return getattr(module, class_name)


def _configure(cls: type, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Instantiate ``cls``; each option goes to the constructor or, failing that, to ``fit``.

    Options that neither accepts are dropped (``draws`` for EM, say), as are
    ``None`` values (the model's default applies); ``seed`` becomes
    ``random_state`` or ``random_seed`` and ``n_components`` becomes
    ``truncation``, whichever the model takes.
    """
    init_names = set(inspect.signature(cls).parameters)
    fit_names = set(inspect.signature(cls.fit).parameters)  # type: ignore[attr-defined]
    options = {k: v for k, v in options.items() if v is not None}
    if "n_components" not in init_names and "truncation" in init_names:
        # The DP model's number of components is its truncation level.
        options["truncation"] = options.pop("n_components", None)
    seed = options.pop("seed", None)
    if seed is not None:
        for name in ("random_state", "random_seed"):
            if name in init_names or name in fit_names:
                options[name] = seed
                break
    init = {k: v for k, v in options.items() if k in init_names}
    fit = {k: v for k, v in options.items() if k not in init_names and k in fit_names}
    return cls(**init), fit


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


def _format_table(table: Any, columns: Sequence[str] | None = None) -> str:
    if columns is not None:
        table = table[[c for c in columns if c in table.columns]]
    return str(table.to_string(float_format=lambda v: f"{v:.4g}"))


def _markdown_table(table: Any, columns: Sequence[str] | None = None, index: bool = True) -> str:
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


def _echo_table_warnings(table: Any) -> None:
    if "warning" in table.columns:
        for name, text in table["warning"].items():
            if isinstance(text, str) and text:
                _echo(f"note ({name}): {text}")


def _echo(text: str = "", stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


@contextlib.contextmanager
def _step(title: str) -> Iterator[None]:
    _echo(f"==> {title}")
    start = time.perf_counter()
    yield
    _INTERRUPTION.check()  # stop at once, even if the step itself swallowed Ctrl-C
    _echo(f"    done in {time.perf_counter() - start:.1f} s")


def _shape(X: np.ndarray) -> str:
    rows, columns = X.shape
    return f"{rows} row{'s' * (rows != 1)}, {columns} column{'s' * (columns != 1)}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------ commands
def _cmd_fit(args: argparse.Namespace) -> int:
    output = _check_output(args.output, args.force)
    if args.model == "marginal":
        from bayesgmm.io import netcdf_engine

        try:  # before minutes of sampling, not after
            netcdf_engine()
        except ImportError as exc:
            raise CommandError(f"--model marginal: {exc}") from None
    X, names = read_data(args.data, args.columns)
    model, fit_kwargs = _configure(
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
    model.fit(_as_input(X, names), **fit_kwargs)
    _INTERRUPTION.check()
    from bayesgmm.io import save

    save(model, output, overwrite=args.force)
    params = model.params_
    _echo(f"mean log-likelihood per row: {float(model.score(_as_input(X, names))):.6g}")
    import pandas as pd

    summary = pd.DataFrame(
        params.means, columns=[f"mean {c}" for c in (names or range(X.shape[1]))]
    )
    summary.insert(0, "weight", params.weights)
    summary.index.name = "component"
    _echo(_format_table(summary))
    _echo(f"saved to {output}")
    return EXIT_OK


def _cmd_select(args: argparse.Namespace) -> int:
    output = _check_output(args.output, args.force) if args.output else None
    X, names = read_data(args.data, args.columns)
    from bayesgmm.selection import select_n_components

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
    )
    _echo(_format_table(result.table))
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
    from bayesgmm.comparison import compare
    from bayesgmm.io import load

    output = _check_output(args.output, args.force) if args.output else None
    X, names = read_data(args.data, args.columns)
    models: dict[str, Any] = {}
    for file in args.files:
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
                f"{file}: the model was fitted on {n_features} column(s) but {args.data} has "
                f"{X.shape[1]} (choose columns with --columns)"
            )
        fitted_names = getattr(model, "feature_names_in_", None)
        if fitted_names is not None and names is not None and list(fitted_names) != names:
            raise CommandError(
                f"{file}: the model was fitted on columns {list(fitted_names)} but {args.data} "
                f"has {names} (choose columns with --columns)"
            )
        key = path.stem if path.stem not in models else str(path)
        if key in models:
            raise CommandError(f"{file}: given twice")
        models[key] = model
    _echo(f"Comparing {len(models)} model(s) on {args.data} ({X.shape[0]} rows)")
    table = compare(models, _as_input(X, names), random_state=args.seed)
    _echo(_format_table(table, _COMPARE_COLUMNS))
    _echo_table_warnings(table)
    _INTERRUPTION.check()
    if output is not None:
        _write_text(output, table.to_csv(), args.force)
        _echo(f"table written to {output}")
    return EXIT_OK


# --------------------------------------------------------------------------- demo
@contextlib.contextmanager
def _optional(found: dict[str, Any], what: str) -> Iterator[None]:
    """Run a demo step that needs a bayesgmm module; note it as not run if the module is absent."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("bayesgmm."):
            raise
        found["skipped"].append(f"{what} ({exc.name} is not available)")
        _echo(f"    not run: {what} ({exc.name} is not available)")


def _save_figure(folder: Path, name: str, draw: Callable[[Any], Any]) -> str:
    from matplotlib.figure import Figure

    # A Figure without pyplot: no GUI backend, no global state, nothing to close.
    figure = Figure(figsize=(6.4, 4.8), layout="constrained")
    draw(figure.subplots())
    figure.savefig(folder / name, dpi=110)
    return name


def _run_demo(folder: Path, *, fast: bool, seed: int, progress: bool) -> dict[str, Any]:
    """Fit, compare and plot on Old Faithful; write every file into ``folder``."""
    from bayesgmm.datasets import load_faithful

    X = load_faithful(as_frame=True)
    found: dict[str, Any] = {
        "figures": {},
        "skipped": [],
        "n": len(X),
        "k": 2,
        "covariance_type": "full",
    }
    _echo(f"Old Faithful: {len(X)} eruptions; eruption duration and waiting time in minutes")

    with _step("EM: choosing K and the covariance type by BIC (K = 1 to 6)"):
        with _optional(found, "choosing K by BIC"):
            from bayesgmm.selection import select_n_components

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
            _echo(
                f"    BIC chooses K = {found['k']}, covariance_type = {found['covariance_type']!r}"
            )
        if "em" not in found:
            from bayesgmm.em import EMGaussianMixture

            found["em"] = EMGaussianMixture(2, random_state=seed).fit(X)
        found["em"].save(folder / "em.json")
    k, covariance_type = found["k"], found["covariance_type"]

    chains = 2 if fast else 4
    with _step(f"Marginal model by NUTS: K = {k}, 500 tuning + 500 draws x {chains} chains"):
        with _optional(found, "the marginal model"):
            from bayesgmm.io import netcdf_engine
            from bayesgmm.marginal import MarginalGaussianMixture

            marginal, fit_kwargs = _configure(
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
            try:
                netcdf_engine()
            except ImportError as exc:
                found["marginal_not_saved"] = str(exc)
                _echo(f"    the marginal model is not saved: {exc}")
            else:
                found["marginal"].save(folder / "marginal.nc")
                found["saved_marginal"] = True

    with _step("Dirichlet-process mixture by variational inference (truncation 10)"):
        with _optional(found, "the DP model"):
            from bayesgmm.dirichlet_process import DPGaussianMixture

            dp, fit_kwargs = _configure(
                DPGaussianMixture,
                {
                    "n_components": 10,
                    "covariance_type": "full",
                    "seed": seed,
                    "progressbar": progress,
                },
            )
            found["dp"] = dp.fit(X, **fit_kwargs)
            found["dp"].save(folder / "dp.json")

    models = {f"EM (K={k})": found["em"]}
    if "marginal" in found:
        models[f"Marginal NUTS (K={k})"] = found["marginal"]
    if "dp" in found:
        models["DP (variational)"] = found["dp"]
    with _step("Comparing the models by leave-one-out elpd"):
        with _optional(found, "the model comparison"):
            from bayesgmm.comparison import compare

            table = compare(models, X, random_state=seed)
            found["compare"] = table
            table.to_csv(folder / "compare.csv")
            _echo(_format_table(table, _COMPARE_COLUMNS))
            _echo_table_warnings(table)

    # The Bayesian fit when there is one: its ellipses and intervals show the posterior.
    main_model = found.get("marginal", found["em"])
    with _step("Membership uncertainty"):
        with _optional(found, "membership intervals"):
            from bayesgmm.clustering import cluster_uncertainty

            uncertainty = cluster_uncertainty(main_model, X, random_seed=seed)
            uncertainty.table.to_csv(folder / "membership.csv")
            found["uncertainty"] = uncertainty

    with _step("Figures"):
        with _optional(found, "the figures"):
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
            if "selection" in found:
                figures["selection"] = _save_figure(
                    folder,
                    "selection.png",
                    lambda ax: plotting.plot_selection(found["selection"], ax=ax),
                )
            if "compare" in found:
                figures["compare"] = _save_figure(
                    folder, "compare.png", lambda ax: plotting.plot_compare(found["compare"], ax=ax)
                )
            if "dp" in found:
                figures["dp_weights"] = _save_figure(
                    folder,
                    "dp_weights.png",
                    lambda ax: plotting.plot_dp_weights(found["dp"], ax=ax),
                )
            figures["density"] = _save_figure(
                folder, "density.png", lambda ax: plotting.plot_density(found["em"], X, ax=ax)
            )

    (folder / "report.md").write_text(_report(found, fast=fast, seed=seed), encoding="utf-8")
    return found


def _table_notes(table: Any) -> list[str]:
    """List the comparison's diagnostics as Markdown bullets (empty when there are none)."""
    if "warning" not in table.columns:
        return []
    notes = [
        f"- {name}: {text}"
        for name, text in table["warning"].items()
        if isinstance(text, str) and text
    ]
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


def _report(found: dict[str, Any], *, fast: bool, seed: int) -> str:
    """Write the demo's Markdown report: figures, tables and what they say."""
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
            _markdown_table(_best_rows(found["selection"].table, "bic", 10), index=False),
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
        lines += [
            "## Membership uncertainty",
            "",
            f"{n_ambiguous} of {n} eruptions are flagged *ambiguous*: the credible interval "
            "of the probability that they belong to their own cluster reaches below one half, "
            "so a hard label would overstate what the data say. They lie where components "
            "overlap. The full table (label, probability with its interval, entropy) is in "
            "`membership.csv`.",
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
            "its Pareto k exceed 0.7 and importance sampling cannot be trusted, exact K-fold "
            "cross-validation, as the `criterion` column says), and exact K-fold "
            "cross-validation for EM. `elpd_diff` is the difference to the best model "
            "and `dse` its standard error, so a difference within about two `dse` is no real "
            "difference; `weight` is each model's stacking weight.",
            "",
            _markdown_table(table, _COMPARE_COLUMNS),
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
            *image("dp_weights", "Posterior of the DP weights"),
        ]
    if "density" in figures:
        lines += ["## Density", "", *image("density", "Density of the EM fit")]
    if found["skipped"]:
        lines += ["## Not run", "", *[f"- {item}" for item in found["skipped"]], ""]
    lines += [
        "## Files",
        "",
        "The tables above in full as CSV (`selection.csv`, `compare.csv`, `membership.csv`), "
        "the fitted models (`em.json`, `dp.json`"
        + (", `marginal.nc`" if found.get("saved_marginal") else "")
        + "; load them with `bayesgmm.load`) and the figures as PNG."
        + (
            f" The marginal model was not saved: {found['marginal_not_saved']}."
            if "marginal_not_saved" in found
            else ""
        ),
        "",
    ]
    return "\n".join(lines)


def _cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise CommandError(f"{out}: folder exists and is not empty; pass --force to write into it")
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    from bayesgmm.io import _default_mode

    # Everything is written into a staging folder beside the output first and moved
    # into place at the end, so an interrupted demo leaves no partial output.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    try:
        staging.chmod(_default_mode(0o777))  # mkdtemp's folder is private; the output is not
        found = _run_demo(staging, fast=args.fast, seed=args.seed, progress=not args.quiet)
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
    for item in found["skipped"]:
        _echo(f"not run: {item}")
    _echo(f"Report: {out / 'report.md'}")
    return EXIT_OK


# -------------------------------------------------------------------------- parser
def _wrap(text: str) -> str:
    return textwrap.fill(text, width=79)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


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
        "  bayesgmm compare em.json dp.json --data data.csv\n\n"
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
            "A few minutes on two cores (most of it compiling the NUTS model once)."
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
        "  bayesgmm fit data.csv --model marginal --components 2 --seed 1 --output nuts.nc\n\n"
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
            "components of a Dirichlet-process mixture."
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
    except FileExistsError as exc:
        if args.traceback:
            raise
        _error(f"{exc} (pass --force to overwrite)" if "--force" not in str(exc) else str(exc))
        return EXIT_ERROR
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
