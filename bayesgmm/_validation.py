"""Input checks for the public boundary, with one error-message format.

Every message reads ``"<argument>: expected <what>, got <what was received>"`` so
that a user sees at once which argument is wrong and how to fix it. Checks run
before any state changes, so a rejected call leaves an estimator as it was.
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "NotFittedError",
    "check_array",
    "check_fitted",
    "check_float",
    "check_int",
    "check_missing",
    "check_n_features",
    "check_option",
    "check_random_state",
    "check_shape",
    "describe",
    "message",
    "renamed_argument",
    "seed_argument_name",
    "sklearn_compatible",
]

_UNSET: Any = object()
"""Default of a deprecated keyword: tells "not passed" apart from every real value."""


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted model is called before ``fit``.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's. When scikit-learn
    is loaded, the error raised is also an instance of
    :class:`sklearn.exceptions.NotFittedError` (see :func:`check_fitted`), so code
    written for scikit-learn's estimators catches it too.
    """


class ComplexDataError(TypeError, ValueError):
    """Complex input: a ``TypeError`` (the wrong kind of number) and a ``ValueError``.

    scikit-learn's contract expects the ``ValueError``.
    """


class SparseDataError(TypeError, ValueError):
    """Sparse input, which the estimators do not accept."""


def sklearn_compatible[T: type](cls: T) -> T:
    """``cls``, joined with scikit-learn's class of the same name when scikit-learn is loaded.

    An exception or warning raised through this is an instance of bayesgmm's
    class and, where ``sklearn.exceptions`` has been imported, of scikit-learn's
    class of the same name too, so ``except sklearn.exceptions.NotFittedError``
    and ``pytest.warns(sklearn.exceptions.ConvergenceWarning)`` work on bayesgmm's
    estimators. scikit-learn is never imported here: where it is not loaded, no
    code can name its classes either.
    """
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    other = getattr(sklearn_exceptions, cls.__name__, None)
    if other is None or issubclass(cls, other):
        return cls
    return _joined(cls, other)


@functools.cache
def _joined(cls: type, other: type) -> Any:
    return type(cls.__name__, (cls, other), {"__module__": cls.__module__, "__doc__": cls.__doc__})


def describe(value: Any) -> str:
    """Return a short description of ``value`` for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def message(name: str, expected: str, received: Any, *, raw: bool = False) -> str:
    """Format the package's error message: ``"name: expected ..., got ..."``."""
    got = received if raw else describe(received)
    return f"{name}: expected {expected}, got {got}"


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(message(name, "an integer", value))
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(message(name, f"an integer >= {minimum}", value))
    if maximum is not None and value > maximum:
        raise ValueError(message(name, f"an integer <= {maximum}", value))
    return value


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    include_minimum: bool = True,
    include_maximum: bool = True,
) -> float:
    """Return ``value`` as a finite ``float`` after checking its type and range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(message(name, "a real number", value))
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(message(name, "a finite number", value))
    if minimum is not None:
        bad = value < minimum if include_minimum else value <= minimum
        if bad:
            op = ">=" if include_minimum else ">"
            raise ValueError(message(name, f"a number {op} {minimum}", value))
    if maximum is not None:
        bad = value > maximum if include_maximum else value >= maximum
        if bad:
            op = "<=" if include_maximum else "<"
            raise ValueError(message(name, f"a number {op} {maximum}", value))
    return value


def check_option(value: Any, name: str, options: Iterable[str]) -> str:
    """Check that ``value`` is one of the strings in ``options``."""
    options = tuple(options)
    listed = ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise TypeError(message(name, f"one of {listed}", value))
    if value not in options:
        raise ValueError(message(name, f"one of {listed}", value))
    return value


def check_random_state(seed: Any, name: str = "random_state") -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    ``None`` gives fresh entropy; an integer or a :class:`numpy.random.SeedSequence`
    seeds a new generator; a ``Generator`` is used as it is; a legacy
    ``RandomState`` is turned into a generator seeded from it.
    """
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1, size=4))
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(message(name, "a non-negative integer seed", seed))
        return np.random.default_rng(int(seed))
    raise TypeError(message(name, "None, a non-negative integer or a numpy.random.Generator", seed))


def renamed_argument(
    new_value: Any,
    old_value: Any,
    *,
    new_name: str,
    old_name: str,
    default: Any = None,
    stacklevel: int = 3,
) -> Any:
    """Resolve a keyword argument that was renamed, warning when the old name is used.

    Parameters
    ----------
    new_value : object
        What the caller passed under the new name (``default`` when not passed).
    old_value : object
        What the caller passed under the old name, or the sentinel ``_UNSET``.
    new_name, old_name : str
        The two names, for the messages.
    default : object
        The new argument's default, to tell whether both names were given.
    stacklevel : int
        Where the warning points: 3 is the caller of the function that calls this.

    Returns
    -------
    object
        The value to use.

    Raises
    ------
    TypeError
        Both names were given.
    """
    if old_value is _UNSET:
        return new_value
    if new_value is not default and new_value != default:
        raise TypeError(f"{old_name} is a deprecated alias of {new_name}: pass only {new_name}")
    import warnings

    warnings.warn(
        f"{old_name} is deprecated and will be removed in the next release: use {new_name}",
        FutureWarning,
        stacklevel=stacklevel,
    )
    return old_value


def seed_argument_name(random_seed: Any) -> str:
    """Name the seed argument a caller used (``random_seed`` is the deprecated one)."""
    return "random_state" if random_seed is _UNSET else "random_seed"


def _is_dask_array(X: Any) -> bool:
    return type(X).__module__.startswith("dask.") and hasattr(X, "chunks")


def check_array(
    X: Any,
    name: str = "X",
    *,
    min_samples: int = 1,
    min_features: int = 1,
    allow_1d: bool = False,
    allow_nan: bool = False,
    missing_hint: str = "drop or impute missing values first",
) -> tuple[np.ndarray, list[str] | None]:
    """Validate a data matrix and return it as a C-contiguous ``float64`` array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        NumPy array, nested sequence or pandas DataFrame. Integer and boolean
        input is converted to floating point.
    name : str
        Argument name used in error messages.
    min_samples : int
        Fewest rows accepted.
    min_features : int
        Fewest columns accepted.
    allow_1d : bool
        If true, a 1-D input is read as one feature (a column); otherwise it is
        rejected with a message that says how to reshape it.
    allow_nan : bool
        If true, ``NaN`` entries are accepted as missing values, but not rows
        that are entirely ``NaN`` nor infinite values (see :func:`check_missing`).
    missing_hint : str
        What the message for non-finite values (when ``allow_nan`` is false)
        tells the user to do about missing values.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The validated data.
    feature_names : list of str or None
        Column names when ``X`` was a DataFrame with string column names.
    """
    feature_names = None
    if type(X).__module__.startswith("scipy.sparse"):
        raise SparseDataError(
            message(
                name,
                "a dense 2-D array",
                f"a sparse {type(X).__name__} (sparse input is not supported: call X.toarray())",
                raw=True,
            )
        )
    columns = getattr(X, "columns", None)
    if columns is not None and hasattr(X, "to_numpy"):
        names = [str(c) for c in columns]
        if all(isinstance(c, str) for c in columns):
            feature_names = names
        dtypes = getattr(X, "dtypes", None)
        if dtypes is not None:
            bad = [n for n, t in zip(names, dtypes, strict=False) if not _numeric_dtype(t)]
            if bad:
                raise TypeError(
                    message(
                        name,
                        "numeric columns only",
                        f"non-numeric column(s) {bad[:5]}",
                        raw=True,
                    )
                )
        X = X.to_numpy()
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(message(name, "a 2-D array-like of numbers", X))
    try:
        array = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise TypeError(
            message(
                name,
                "a 2-D array-like of numbers",
                f"something NumPy cannot read ({exc})",
                raw=True,
            )
        ) from None
    if array.dtype == object:
        try:
            array = array.astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                message(
                    name,
                    "an array of real numbers",
                    f"values of non-numeric type ({exc})",
                    raw=True,
                )
            ) from None
    if np.iscomplexobj(array):
        raise ComplexDataError(
            message(name, "real numbers", "complex values (Complex data not supported)", raw=True)
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(message(name, "an array of real numbers", f"dtype {array.dtype}", raw=True))
    if array.ndim == 1:
        if not allow_1d:
            raise ValueError(
                message(
                    name,
                    "a 2-D array of shape (n_samples, n_features). Reshape your data with "
                    "X.reshape(-1, 1) if it holds a single feature or X.reshape(1, -1) if it "
                    "holds a single sample",
                    f"a 1-D array of shape {array.shape}",
                    raw=True,
                )
            )
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(
            message(
                name,
                "a 2-D array of shape (n_samples, n_features)",
                f"an array with {array.ndim} dimensions",
                raw=True,
            )
        )
    array = np.ascontiguousarray(array, dtype=np.float64)
    n_samples, n_features = array.shape
    if n_samples < min_samples:
        what = "a non-empty array" if min_samples == 1 else f"at least {min_samples} samples"
        raise ValueError(message(name, what, f"{n_samples} sample(s)", raw=True))
    if n_features < min_features:
        raise ValueError(
            message(
                name,
                f"at least {min_features} feature(s)",
                f"{n_features} feature(s) (shape={array.shape}) while a minimum of "
                f"{min_features} is required.",
                raw=True,
            )
        )
    if allow_nan:
        check_missing(array, name)
    elif not np.isfinite(array).all():
        n_nan = int(np.isnan(array).sum())
        n_inf = int(np.isinf(array).sum())
        raise ValueError(
            message(
                name,
                f"finite values ({missing_hint})",
                f"{n_nan} NaN and {n_inf} infinite value(s)",
                raw=True,
            )
        )
    return array, feature_names


def check_missing(array: np.ndarray, name: str = "X", *, columns: bool = False) -> None:
    """Refuse what missing values cannot stand for: infinities, empty rows, empty columns.

    ``NaN`` marks a missing entry. A row with no observed entry carries no
    information, so it is refused, naming the rows (at most five). With
    ``columns`` (for fitting), a feature never observed, which cannot be
    estimated, is refused too; new data may lack a feature in every row.
    """
    if np.isinf(array).any():
        n_inf = int(np.isinf(array).sum())
        raise ValueError(
            message(
                name,
                "finite values or NaN for missing entries",
                f"{n_inf} infinite value(s)",
                raw=True,
            )
        )
    missing = np.isnan(array)
    if not missing.any():
        return
    empty_rows = np.flatnonzero(missing.all(axis=1))
    if empty_rows.size:
        shown = ", ".join(str(i) for i in empty_rows[:5]) + (", ..." if empty_rows.size > 5 else "")
        raise ValueError(
            message(
                name,
                "at least one observed (non-NaN) value in every row",
                f"{empty_rows.size} row(s) entirely NaN, at indices {shown}; drop them",
                raw=True,
            )
        )
    empty_columns = np.flatnonzero(missing.all(axis=0))
    if columns and empty_columns.size:
        shown = ", ".join(str(j) for j in empty_columns[:5])
        raise ValueError(
            message(
                name,
                "at least one observed (non-NaN) value in every column",
                f"column(s) {shown} entirely NaN; drop them",
                raw=True,
            )
        )


def _numeric_dtype(dtype: Any) -> bool:
    try:
        return bool(np.issubdtype(np.dtype(dtype), np.number) or np.dtype(dtype) == np.bool_)
    except TypeError:
        return False


def check_n_features(
    X: np.ndarray, n_features: int, name: str = "X", *, estimator: str = "the model"
) -> None:
    """Check that ``X`` has as many columns as the data the model was fitted on."""
    if X.shape[1] != n_features:
        raise ValueError(
            message(
                name,
                f"{n_features} feature(s), as in the data {estimator} was fitted on",
                f"{X.shape[1]} ({name} has {X.shape[1]} features, but {estimator} is expecting "
                f"{n_features} features as input)",
                raw=True,
            )
        )


def check_shape(array: np.ndarray, shape: tuple[int, ...], name: str, why: str = "") -> None:
    """Check that a parameter array has ``shape``; ``why`` says what fixes it (``"for K=3"``)."""
    if array.shape != shape:
        expected = f"shape {shape}" + (f" {why}" if why else "")
        raise ValueError(message(name, expected, f"shape {array.shape}", raw=True))


def check_fitted(estimator: Any, attributes: Sequence[str] = ("params_",)) -> None:
    """Raise :class:`NotFittedError` if ``estimator`` lacks the fitted ``attributes``."""
    missing = [a for a in attributes if not hasattr(estimator, a)]
    if missing:
        raise sklearn_compatible(NotFittedError)(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
