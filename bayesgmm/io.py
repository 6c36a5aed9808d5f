"""Reading data files, and saving and loading fitted models in open formats (never pickle).

Data files (:func:`read_data`)
    CSV (comma, tab or semicolon separated, with or without a header) or a
    ``.npy`` array, read into a float matrix; a malformed file is refused with a
    ``ValueError`` that names the file, the line and the column at fault.

Model files come in two formats, told apart by their first bytes when loading:

JSON (EM and Dirichlet-process models)
    One UTF-8 JSON object::

        {"format": "bayesgmm", "version": 1, "class": "EMGaussianMixture",
         "bayesgmm_version": "0.1.0", "state": {...}}

    ``state`` is what the model's ``_export_state()`` returns: its constructor
    arguments under ``"params"``, its class name under ``"class"``, and the
    fitted attributes as numbers, strings and nested lists (arrays through
    ``ndarray.tolist()``). Floats are written with Python's shortest repr, which
    reads back to the identical double, so a loaded model predicts bit for bit as
    the saved one. Non-finite floats are written as the tokens ``NaN``,
    ``Infinity`` and ``-Infinity``, which Python's ``json`` reads back.

NetCDF-4 (the marginal Bayesian model)
    The model's posterior as an ArviZ DataTree (groups ``posterior``,
    ``log_likelihood``, ``observed_data``, ...) written with
    ``DataTree.to_netcdf`` through h5netcdf (or netCDF4), so any NetCDF reader can
    open it. The rest of the state is the same JSON envelope as above, stored as
    a string in the root group's attribute ``bayesgmm``.

Every write goes to a temporary file in the destination folder, is flushed to
disk (``fsync``) and is then renamed over the destination (``os.replace``), so an
interrupted save leaves either the old file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import importlib.util
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np

from bayesgmm._validation import check_array, message

__all__ = [
    "FORMAT",
    "MODEL_CLASSES",
    "VERSION",
    "atomic_path",
    "check_writable",
    "load",
    "netcdf_engine",
    "read_data",
    "read_labelled_data",
    "read_weight_column",
    "save",
]

FORMAT = "bayesgmm"
VERSION = 1

#: Model classes that can be saved, by the name written in the file.
MODEL_CLASSES = {
    "EMGaussianMixture": "bayesgmm.em",
    "MarginalGaussianMixture": "bayesgmm.marginal",
    "DPGaussianMixture": "bayesgmm.dirichlet_process",
}

_ATTRIBUTE = "bayesgmm"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_NETCDF3_SIGNATURE = b"CDF"
# Cells read as a missing value in a CSV file.
_MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?", "-"})


# ---------------------------------------------------------------------- writing
def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check that ``path`` can be written, before any expensive work.

    Parameters
    ----------
    path : str or path-like
        The destination file.
    overwrite : bool, default False
        Whether an existing file may be replaced.

    Returns
    -------
    path : Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder that should hold ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.io import check_writable
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     check_writable(folder + "/model.json").name
    'model.json'
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{str(path)!r} already exists; pass overwrite=True (--force on the command line) "
            "to replace it"
        )
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"folder {str(parent)!r} does not exist (for {str(path)!r})")
    return path


def _default_mode(mode: int = 0o666) -> int:
    """Permissions a new file or folder gets from ``open``/``mkdir``: ``mode`` less the umask."""
    try:  # Linux reports the umask without changing it, which is safe with threads
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return mode & ~umask


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Give a temporary path to write to; rename it to ``path`` only if the block succeeds.

    The temporary file lives in the destination folder (so the final
    ``os.replace`` is an atomic rename on the same file system) and is flushed to
    disk first. If the block raises anything, ``KeyboardInterrupt`` included, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The destination file.
    overwrite : bool, default False
        Whether an existing ``path`` may be replaced; checked before the block
        runs and again just before the rename.

    Yields
    ------
    tmp : Path
        Where the block should write (an empty file that already exists).

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.io import atomic_path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with atomic_path(folder + "/out.txt") as tmp:
    ...         _ = tmp.write_text("done")
    ...     open(folder + "/out.txt").read()
    'done'
    """
    path = check_writable(path, overwrite=overwrite)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        # mkstemp makes the file private (0600); give it the permissions of a normal new
        # file, or those of the file it replaces.
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode & 0o7777 if path.exists() else _default_mode()
            os.chmod(tmp, mode)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if not overwrite and path.exists():
            raise FileExistsError(
                f"{str(path)!r} appeared while it was being written; not replaced"
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON types from a model state (NumPy scalars and arrays are converted)."""
    # NumPy scalars first: np.float64 is also a float, but json would keep its type.
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"model state: key {key!r} at {where} is not a string")
            out[key] = _jsonable(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"model state: {where} is a {type(value).__name__}, which has no JSON form "
        "(expected numbers, strings, lists, dicts or arrays)"
    )


def _envelope(class_name: str, state: dict[str, Any]) -> dict[str, Any]:
    from bayesgmm import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "class": class_name,
        "bayesgmm_version": __version__,
        "state": _jsonable(state, "state"),
    }


def netcdf_engine() -> str:
    """Name the xarray engine that writes NetCDF-4 files with groups here.

    Returns
    -------
    engine : str
        ``"h5netcdf"`` (which needs h5py to write) or ``"netcdf4"``.

    Raises
    ------
    ImportError
        If neither is installed, with the command that installs one.

    Examples
    --------
    >>> from bayesgmm.io import netcdf_engine
    >>> netcdf_engine()  # h5netcdf and h5py are dependencies of bayesgmm
    'h5netcdf'
    """
    # h5netcdf 1.8 installs without h5py (it can read through pyfive), but it writes through h5py.
    if importlib.util.find_spec("h5netcdf") and importlib.util.find_spec("h5py"):
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4"):
        return "netcdf4"
    raise ImportError(
        "saving or loading a Bayesian model's posterior needs a NetCDF-4 library: "
        "pip install 'h5netcdf[h5py]'"
    )


def save(model: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Save a fitted model to ``path`` in an open format (JSON or NetCDF-4).

    Parameters
    ----------
    model : fitted bayesgmm model
        An EM, Dirichlet-process or marginal (NUTS) mixture, fitted.
    path : str or path-like
        Destination file. By convention ``.json`` for EM and DP models and
        ``.nc`` for the marginal model, but the format does not depend on it.
    overwrite : bool, default False
        Replace an existing file; otherwise a ``FileExistsError`` is raised.

    Returns
    -------
    path : Path
        The file written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false (nothing is written).
    TypeError
        If ``model`` cannot be saved.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import bayesgmm
    >>> from bayesgmm.datasets import load_faithful
    >>> X = load_faithful()
    >>> model = bayesgmm.EMGaussianMixture(2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = bayesgmm.io.save(model, folder + "/model.json")
    ...     loaded = bayesgmm.load(file)
    >>> bool(np.array_equal(loaded.score_samples(X), model.score_samples(X)))
    True
    """
    class_name = type(model).__name__
    if class_name not in MODEL_CLASSES or not hasattr(model, "_export_state"):
        raise TypeError(f"model: expected one of {', '.join(MODEL_CLASSES)}, got {class_name}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    path = check_writable(path, overwrite=overwrite)
    state = dict(model._export_state())
    datatree = state.pop("idata", None)
    envelope = _envelope(class_name, state)
    if datatree is None:
        text = json.dumps(envelope, indent=1)
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
        return path
    engine = netcdf_engine()
    datatree = datatree.copy()
    datatree.attrs = {**datatree.attrs, _ATTRIBUTE: json.dumps(envelope)}
    with atomic_path(path, overwrite=overwrite) as tmp:
        datatree.to_netcdf(tmp, engine=engine)
    return path


# ---------------------------------------------------------------------- reading
def _check_envelope(envelope: Any, path: Path) -> tuple[str, dict[str, Any]]:
    where = f"{str(path)!r}"
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise ValueError(f"{where} is not a bayesgmm model file (no 'format': 'bayesgmm' header)")
    version = envelope.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{where}: the file's format version {version!r} is not an integer")
    if version > VERSION:
        raise ValueError(
            f"{where} was written in format version {version} by bayesgmm "
            f"{envelope.get('bayesgmm_version', '?')}; this bayesgmm reads up to version "
            f"{VERSION}: upgrade bayesgmm to load it"
        )
    if version < 1:
        raise ValueError(f"{where}: unknown format version {version}")
    class_name = envelope.get("class")
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"{where}: unknown model class {class_name!r}")
    state = envelope.get("state")
    if not isinstance(state, dict):
        raise ValueError(f"{where} is corrupt: 'state' is missing or not an object")
    return class_name, state


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is corrupt or not a bayesgmm model file ({exc})") from None


def _read_netcdf(path: Path) -> tuple[Any, Any]:
    import xarray as xr

    engine = netcdf_engine()
    try:
        with xr.open_datatree(path, engine=engine) as opened:
            datatree = opened.load()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is corrupt or not a NetCDF-4 model file ({exc})") from None
    attrs = dict(datatree.attrs)
    text = attrs.pop(_ATTRIBUTE, None)
    if not isinstance(text, str):
        raise ValueError(
            f"{str(path)!r} is a NetCDF file but not a bayesgmm model (no '{_ATTRIBUTE}' attribute)"
        )
    datatree.attrs = attrs
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{str(path)!r} is corrupt: its '{_ATTRIBUTE}' attribute ({exc})"
        ) from None
    return envelope, datatree


def load(path: str | os.PathLike[str]) -> Any:
    """Load a model saved with :func:`save` (or a model's ``save`` method).

    Parameters
    ----------
    path : str or path-like
        A file written by bayesgmm.

    Returns
    -------
    model : fitted bayesgmm model
        The EM, Dirichlet-process or marginal mixture, which predicts exactly as
        the one saved.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a bayesgmm model file, is corrupt, or was written by
        a newer bayesgmm in a format version this one cannot read.

    Examples
    --------
    >>> import tempfile
    >>> import bayesgmm
    >>> from bayesgmm.datasets import load_faithful
    >>> model = bayesgmm.EMGaussianMixture(2, random_state=0).fit(load_faithful())
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model.save(folder + "/faithful.json")
    ...     type(bayesgmm.load(folder + "/faithful.json")).__name__
    'EMGaussianMixture'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(message("path", "a str or path-like file name", path))
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{str(path)!r}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a bayesgmm model file")
    with open(path, "rb") as f:
        head = f.read(8)
    datatree = None
    if head.startswith(_HDF5_SIGNATURE):
        envelope, datatree = _read_netcdf(path)
    elif head.lstrip()[:1] == b"{":
        envelope = _read_json(path)
    elif head.startswith(_NETCDF3_SIGNATURE):
        raise ValueError(f"{str(path)!r} is a classic NetCDF-3 file, not a bayesgmm model file")
    elif not head:
        raise ValueError(f"{str(path)!r} is empty, not a bayesgmm model file")
    else:
        raise ValueError(
            f"{str(path)!r} is not a bayesgmm model file (expected JSON or NetCDF-4 written by "
            "bayesgmm.io.save)"
        )
    class_name, state = _check_envelope(envelope, path)
    if datatree is not None:
        state = {**state, "idata": datatree}
    cls = getattr(importlib.import_module(MODEL_CLASSES[class_name]), class_name)
    try:
        return cls._import_state(state)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(
            f"{str(path)!r} is corrupt: its {class_name} state cannot be rebuilt "
            f"({type(exc).__name__}: {exc})"
        ) from None


# ------------------------------------------------------------------ data files
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


def _csv_layout(path: Path) -> tuple[str, str, list[str] | None, int]:
    """Read a CSV file's text, delimiter, header names (or None) and width."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (it is not UTF-8 text)") from None
    first_line = next((line for line in StringIO(text) if line.strip()), None)
    if first_line is None:
        raise ValueError(f"{path}: the file is empty")
    delimiter = _sniff_delimiter(first_line)
    first = [field.strip() for field in next(csv.reader([first_line], delimiter=delimiter))]
    # A header is a first row with a field that is neither a number nor a missing value.
    has_header = any(field.lower() not in _MISSING and not _is_number(field) for field in first)
    names: list[str] | None = None
    if has_header:
        names = [field or f"column_{j + 1}" for j, field in enumerate(first)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{path}: repeated column name(s) in the header: {repeated}")
    return text, delimiter, names, len(first)


def _read_csv(
    path: Path, columns: str | None = None, exclude: int | None = None, allow_nan: bool = False
) -> tuple[np.ndarray, list[str] | None]:
    """Parse the chosen columns of a CSV file (all but ``exclude`` when none are chosen).

    Only the chosen columns are parsed as numbers, so the others may hold text
    (a class label, an identifier). With ``allow_nan``, a missing-value cell
    (:data:`_MISSING`) is read as ``NaN`` instead of refused.
    """
    text, delimiter, names, n_columns = _csv_layout(path)
    if columns is not None:
        positions = _column_positions(path, names, n_columns, columns)
    else:
        positions = [j for j in range(n_columns) if j != exclude]
    X = _parse_csv_fast(text, delimiter, names is not None, n_columns, positions)
    if X is None:  # something is wrong: find the line and column, and say what
        X = _parse_csv_checked(
            path, text, delimiter, names is not None, names, n_columns, positions, allow_nan
        )
    return X, [names[p] for p in positions] if names is not None else None


def _parse_csv_fast(
    text: str, delimiter: str, has_header: bool, n_columns: int, positions: list[int]
) -> np.ndarray | None:
    """Parse columns ``positions`` with pandas' C parser; ``None`` if anything is off."""
    import pandas as pd

    try:
        with warnings.catch_warnings():
            # A row with more fields than the header: pandas would take the extra
            # leading field as the index (or, with index_col=False, drop data with a
            # ParserWarning). Either way the file is malformed: let the checked
            # parser say where.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # Every column numeric: pandas parses the floats. Otherwise the others
            # may hold text, so every field is read as text and the chosen ones converted.
            every = positions == list(range(n_columns))
            frame = pd.read_csv(
                StringIO(text),
                sep=delimiter,
                header=0 if has_header else None,
                dtype=np.float64 if every else str,
                keep_default_na=every,
                skipinitialspace=True,
                engine="c",
                index_col=False,
            )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, pd.errors.ParserWarning):
        return None
    if frame.shape[0] == 0 or frame.shape[1] != n_columns:
        return None
    try:
        X = frame.iloc[:, positions].to_numpy().astype(np.float64)
    except (ValueError, TypeError):
        return None
    if not np.isfinite(X).all():
        return None
    return X


def _parse_csv_checked(
    path: Path,
    text: str,
    delimiter: str,
    has_header: bool,
    names: list[str] | None,
    n_columns: int,
    positions: list[int] | None = None,
    allow_nan: bool = False,
) -> np.ndarray:
    """Parse columns ``positions`` (all by default) field by field; raise at the first bad one.

    A missing-value cell is ``NaN`` with ``allow_nan``, and refused without.
    """
    rows = _csv_rows(path, text, delimiter, has_header, n_columns)
    if positions is None:
        positions = list(range(n_columns))
    label = names or [str(j + 1) for j in range(n_columns)]
    X = np.empty((len(rows), len(positions)))
    for i, (number, fields) in enumerate(rows):
        for column, j in enumerate(positions):
            field = fields[j]
            if field.lower() in _MISSING:
                if allow_nan:
                    X[i, column] = np.nan
                    continue
                raise ValueError(
                    f"{path}, line {number}, column {label[j]}: missing value; drop or impute "
                    "missing values first"
                )
            try:
                value = float(field)
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}, column {label[j]}: {field!r} is not a number"
                    " (choose numeric columns with columns=..., --columns on the command line)"
                ) from None
            if not math.isfinite(value):
                raise ValueError(
                    f"{path}, line {number}, column {label[j]}: {field!r} is not a finite number"
                )
            X[i, column] = value
    return X


def _csv_rows(
    path: Path, text: str, delimiter: str, has_header: bool, n_columns: int
) -> list[tuple[int, list[str]]]:
    """Split the data rows into (line number, stripped fields), checking their width."""
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
        raise ValueError(f"{path}: the header has no data rows below it")
    for number, fields in rows:
        if len(fields) != n_columns:
            raise ValueError(
                f"{path}, line {number}: expected {n_columns} field(s) as in the first row, "
                f"got {len(fields)}"
            )
    return rows


def _read_npy(path: Path) -> np.ndarray:
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
        except ValueError:
            raise ValueError(f"{path}: not a valid .npy file (no NumPy header)") from None
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        try:
            _, _, dtype = read_header(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not a valid .npy file ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: holds Python objects; only numeric .npy arrays are read")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a valid .npy file ({exc})") from None


def _column_positions(
    path: Path, names: list[str] | None, n_columns: int, columns: str
) -> list[int]:
    """0-based positions of comma-separated column names or positions."""
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    if not wanted:
        raise ValueError(message("columns", "comma-separated column names or positions", columns))
    positions = []
    for item in wanted:
        if names is not None and item in names:
            positions.append(names.index(item))
        elif item.isdigit() and int(item) < n_columns:
            positions.append(int(item))
        else:
            available = ", ".join(names) if names else f"positions 0 to {n_columns - 1}"
            raise ValueError(f"{path}: no column {item!r} (available: {available})")
    if len(set(positions)) != len(positions):
        raise ValueError(message("columns", "each column named once", columns))
    return positions


def read_labelled_data(
    path: str | os.PathLike[str], labels: str, columns: str | None = None
) -> tuple[np.ndarray, list[str] | None, np.ndarray]:
    r"""Read a data matrix and, from the same file, one column of class labels.

    The label column may hold text or numbers; an empty cell or ``NA`` (any
    missing-value spelling :func:`read_data` knows) marks a row whose class is
    unknown. The data are the ``columns`` given, or every other column.

    Parameters
    ----------
    path : str or path-like
        A CSV or ``.npy`` file (see :func:`read_data`).
    labels : str
        The label column's name (from the header) or 0-based position.
    columns : str, optional
        The data columns, as in :func:`read_data`; default every column but ``labels``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    names : list of str or None
    labels : ndarray of object, shape (n_samples,)
        Each row's label as text, None where it is missing.

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.io import read_labelled_data
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(folder + "/data.csv", "w") as f:
    ...         _ = f.write("a,b,species\n1,2,setosa\n3,4,\n")
    ...     X, names, labels = read_labelled_data(folder + "/data.csv", "species")
    >>> X.tolist(), names, labels.tolist()
    ([[1.0, 2.0], [3.0, 4.0]], ['a', 'b'], ['setosa', None])
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a data file")
    values: list[Any]
    if path.suffix.lower() == ".npy":
        raw = _read_npy(path)
        if raw.ndim != 2:
            raise ValueError(f"{path}: a label column needs a 2-D array, got {raw.ndim}-D")
        position = _single_column(path, None, raw.shape[1], labels)
        values = [None if not np.isfinite(v) else f"{v:g}" for v in raw[:, position]]
        keep = (
            _column_positions(path, None, raw.shape[1], columns)
            if columns is not None
            else [j for j in range(raw.shape[1]) if j != position]
        )
        data, names = raw[:, keep], None
    else:
        text, delimiter, header, n_columns = _csv_layout(path)
        position = _single_column(path, header, n_columns, labels)
        rows = _csv_rows(path, text, delimiter, header is not None, n_columns)
        values = [None if f[position].lower() in _MISSING else f[position] for _, f in rows]
        if columns is not None and position in _column_positions(path, header, n_columns, columns):
            raise ValueError(
                message("columns", f"data columns other than labels={labels!r}", columns)
            )
        data, names = _read_csv(path, columns, exclude=position)
    try:
        X, _ = check_array(data, str(path), allow_1d=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    return X, names, np.asarray(values, dtype=object)


def read_weight_column(
    path: str | os.PathLike[str],
    weights: str,
    columns: str | None = None,
    exclude: tuple[str, ...] = (),
) -> tuple[np.ndarray, str]:
    r"""Read one column of per-row (frequency) weights; say which columns hold the data.

    Only the weight column is parsed, as numbers: an empty or missing cell is an
    error naming the line. The data columns are ``columns`` when given (which
    must not include the weights), else every column but the weights and the
    ``exclude`` ones (a label column); pass them to :func:`read_data` or
    :func:`read_labelled_data`.

    Parameters
    ----------
    path : str or path-like
        A CSV or ``.npy`` file (see :func:`read_data`).
    weights : str
        The weight column's name (from the header) or 0-based position.
    columns : str, optional
        The data columns, as in :func:`read_data`.
    exclude : tuple of str
        Other columns that are not data (names or positions).

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,)
    columns : str
        The data columns, as comma-separated 0-based positions.

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.io import read_data, read_weight_column
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(folder + "/data.csv", "w") as f:
    ...         _ = f.write("a,count,b\n1,2,5\n3,1,6\n")
    ...     w, columns = read_weight_column(folder + "/data.csv", "count")
    ...     X, names = read_data(folder + "/data.csv", columns)
    >>> w.tolist(), columns, X.tolist(), names
    ([2.0, 1.0], '0,2', [[1.0, 5.0], [3.0, 6.0]], ['a', 'b'])
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a data file")
    names: list[str] | None
    if path.suffix.lower() == ".npy":
        raw = _read_npy(path)
        if raw.ndim != 2:
            raise ValueError(f"{path}: a weight column needs a 2-D array, got {raw.ndim}-D")
        names, n_columns = None, raw.shape[1]
    else:
        _, _, names, n_columns = _csv_layout(path)
    positions = _column_positions(path, names, n_columns, weights)
    if len(positions) != 1:
        raise ValueError(message("weights", "one column name or position", weights))
    position = positions[0]
    if path.suffix.lower() == ".npy":
        values = np.asarray(raw[:, position], dtype=np.float64)
    else:
        values = _read_csv(path, str(position))[0][:, 0]
    if columns is not None:
        data = _column_positions(path, names, n_columns, columns)
        if position in data:
            raise ValueError(
                message("columns", f"data columns other than weights={weights!r}", columns)
            )
    else:
        excluded = {position}
        for other in exclude:
            excluded.update(_column_positions(path, names, n_columns, other))
        data = [j for j in range(n_columns) if j not in excluded]
    return values, ",".join(str(j) for j in data)


def _single_column(path: Path, names: list[str] | None, n_columns: int, column: str) -> int:
    positions = _column_positions(path, names, n_columns, column)
    if len(positions) != 1:
        raise ValueError(message("labels", "one column name or position", column))
    return positions[0]


def read_data(
    path: str | os.PathLike[str], columns: str | None = None, *, allow_nan: bool = False
) -> tuple[np.ndarray, list[str] | None]:
    r"""Read a data matrix from a CSV or ``.npy`` file, checking every value.

    A CSV file may be separated by commas, tabs or semicolons (told from the
    first line) and has a header when its first row holds a field that is not a
    number. Empty cells and ``NA``/``NaN``/``null`` are missing values, which
    are reported, never imputed. A ``.npy`` file holds one numeric array; a
    1-D array is read as one feature. The ``bayesgmm`` command reads its data
    files with this function.

    Parameters
    ----------
    path : str or path-like
        The file; ``.npy`` files are told by their suffix, everything else is
        read as CSV.
    columns : str, optional
        Comma-separated column names (from the header) or 0-based positions to
        keep, in that order. Only these columns of a CSV file are parsed, so the
        others may hold text (a class label, an identifier).
    allow_nan : bool, default False
        Return missing values as ``NaN`` instead of refusing them (rows with
        no value at all are refused all the same).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data as floats.
    names : list of str or None
        Column names when the CSV file has a header.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the file is malformed, with a one-line message naming the file, and
        the line and column at fault.

    Examples
    --------
    >>> import tempfile
    >>> from bayesgmm.io import read_data
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open(folder + "/data.csv", "w") as f:
    ...         _ = f.write("a,b\n1,2\n3,4\n")
    ...     X, names = read_data(folder + "/data.csv")
    >>> X.tolist(), names
    ([[1.0, 2.0], [3.0, 4.0]], ['a', 'b'])
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a data file")
    names: list[str] | None
    if path.suffix.lower() == ".npy":
        raw, names = _read_npy(path), None
    else:
        raw, names = _read_csv(path, columns, allow_nan=allow_nan)
        columns = None  # chosen while parsing
    try:
        X, _ = check_array(raw, str(path), allow_1d=True, allow_nan=allow_nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if columns is not None:
        X = X[:, _column_positions(path, None, X.shape[1], columns)]
    return X, names
