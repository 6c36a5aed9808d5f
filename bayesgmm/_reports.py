"""Reports in mclust's layout: model names, summaries of fits and of model selection.

mclust (Scrucca, Fop, Murphy and Raftery 2016, doi:10.32614/RJ-2016-021) names
each covariance model by three letters, the volume, shape and orientation of
``Sigma_k = lambda_k D_k A_k D_k'`` being Equal across components, Variable, or
the Identity (Celeux and Govaert 1995, doi:10.1016/0031-3203(94)00125-6).
scikit-learn's four names are four of them (:data:`SKLEARN_ALIASES`). This
module turns a covariance type into mclust's name and description, and formats
the summaries that :meth:`bayesgmm.EMGaussianMixture.summary`,
:meth:`bayesgmm.selection.SelectionResult.summary` and
:meth:`bayesgmm.MixtureDiscriminantAnalysis.summary` return, as mclust's
``summary`` methods print them. Numbers are in mclust's sign: its BIC and ICL
are ``2 log L - n_par log n`` (higher is better), minus bayesgmm's.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "BIC_PLOT_STYLE",
    "MCLUST_DESCRIPTIONS",
    "SKLEARN_ALIASES",
    "ClassificationSummary",
    "MixtureSummary",
    "SelectionSummary",
    "mclust_name",
]

#: mclust's description of every model (``mclustModelNames``), in its order.
MCLUST_DESCRIPTIONS = {
    "EII": "spherical, equal volume",
    "VII": "spherical, varying volume",
    "EEI": "diagonal, equal volume and shape",
    "VEI": "diagonal, equal shape",
    "EVI": "diagonal, equal volume, varying shape",
    "VVI": "diagonal, varying volume and shape",
    "EEE": "ellipsoidal, equal volume, shape and orientation",
    "VEE": "ellipsoidal, equal shape and orientation",
    "EVE": "ellipsoidal, equal volume and orientation",
    "VVE": "ellipsoidal, equal orientation",
    "EEV": "ellipsoidal, equal volume and shape",
    "VEV": "ellipsoidal, equal shape",
    "EVV": "ellipsoidal, equal volume",
    "VVV": "ellipsoidal, varying volume, shape, and orientation",
    "E": "univariate, equal variance",
    "V": "univariate, unequal variance",
    "X": "univariate normal",
    "XII": "spherical multivariate normal",
    "XXI": "diagonal multivariate normal",
    "XXX": "ellipsoidal multivariate normal",
}

#: scikit-learn's covariance types and the mclust models they are.
SKLEARN_ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}

# mclust.options("bicPlotSymbols") (R's pch codes) and ("bicPlotColors"), mclust 6.
# Each pch code is drawn with the nearest matplotlib marker: (marker, filled).
_PCH_MARKERS: dict[int, tuple[Any, bool]] = {
    0: ("s", False),
    1: ("o", False),
    2: ("^", False),
    5: ("D", False),
    7: (r"$\boxtimes$", True),
    8: ((8, 2, 0), True),
    9: ("P", False),
    10: (r"$\oplus$", True),
    12: (r"$\boxplus$", True),
    13: (r"$\otimes$", True),
    14: (r"$\boxdot$", True),
    15: ("s", True),
    16: ("o", True),
    17: ("^", True),
}
_BIC_PCH = {
    "EII": 17, "VII": 2, "EEI": 16, "EVI": 10, "VEI": 13, "VVI": 1, "EEE": 15, "VEE": 8,
    "EVE": 5, "VVE": 9, "EEV": 12, "VEV": 7, "EVV": 14, "VVV": 0, "E": 17, "V": 2,
}  # fmt: skip
_BIC_COLORS = {
    "EII": "#BEBEBE", "VII": "#000000", "EEI": "#218B21", "EVI": "#41884F",
    "VEI": "#508476", "VVI": "#58819C", "EEE": "#597DC3", "VEE": "#5178EA",
    "EVE": "#716EE7", "VVE": "#9B60B8", "EEV": "#B2508B", "VEV": "#C03F60",
    "EVV": "#C82A36", "VVV": "#CC0000", "E": "#BEBEBE", "V": "#000000",
}  # fmt: skip

#: Line style of each model in mclust's BIC plot: (marker, filled, colour).
BIC_PLOT_STYLE: dict[str, tuple[Any, bool, str]] = {
    name: (*_PCH_MARKERS[pch], _BIC_COLORS[name]) for name, pch in _BIC_PCH.items()
}

_RULE_WIDTH = 79  # R wraps its summaries at getOption("width") = 80 columns


def mclust_name(
    covariance_type: str, n_features: int | None = None, n_components: int | None = None
) -> str:
    """Return mclust's name of a covariance type (at ``n_features`` and ``n_components``).

    scikit-learn's names become their model (``"full"`` is ``"VVV"``). As mclust
    names them, one-dimensional models are ``"E"`` (equal variances) or ``"V"``,
    and a single component is ``"X"`` (one dimension), ``"XII"`` (spherical),
    ``"XXI"`` (diagonal) or ``"XXX"`` (ellipsoidal). A type mclust does not know
    keeps its own name.

    Examples
    --------
    >>> from bayesgmm._reports import mclust_name
    >>> mclust_name("full"), mclust_name("tied", 4, 3), mclust_name("diag", 4, 1)
    ('VVV', 'EEE', 'XXI')
    """
    name = SKLEARN_ALIASES.get(covariance_type, covariance_type)
    if name not in MCLUST_DESCRIPTIONS or len(name) != 3:
        return name
    if n_features == 1:
        return "X" if n_components == 1 else name[0]
    if n_components == 1:
        return "XII" if name.endswith("II") else "XXI" if name.endswith("I") else "XXX"
    return name


# ------------------------------------------------------------------ formatting
def _number(value: float) -> str:
    """Format a number as R prints it, with 7 significant digits."""
    if not np.isfinite(value):
        return "NA" if np.isnan(value) else ("Inf" if value > 0 else "-Inf")
    return f"{value:.7g}"


def _row_table(header: Sequence[str], cells: Sequence[Sequence[str]], names: Sequence[str]) -> str:
    """Right-aligned columns under their headers, one row per name, as R prints a data.frame."""
    width = max((len(n) for n in names), default=0)
    columns = [max(len(h), *(len(row[j]) for row in cells)) for j, h in enumerate(header)]
    lines = [" " * width + "".join(" " + h.rjust(w) for h, w in zip(header, columns, strict=True))]
    for name, row in zip(names, cells, strict=True):
        lines.append(
            name.ljust(width) + "".join(" " + c.rjust(w) for c, w in zip(row, columns, strict=True))
        )
    return "\n".join(lines)


def _bare_table(header: Sequence[str], values: Sequence[str]) -> str:
    """One row of values under right-aligned headers, as R prints a table or a named vector."""
    widths = [max(len(h), len(v)) for h, v in zip(header, values, strict=True)]
    top = " ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    bottom = " ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))
    return f"{top}\n{bottom}"


def _frame(title: str) -> list[str]:
    rule = "-" * len(title)
    return [rule, title + " ", rule]


def _matrix(values: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> str:
    cells = [[f"{v:.7g}" for v in row] for row in np.atleast_2d(values)]
    return _row_table(list(columns), cells, list(rows))


@dataclass(frozen=True, eq=False)
class MixtureSummary:
    """A fitted mixture summarised as mclust's ``summary(Mclust(...))`` prints it.

    Printing it (``str`` or ``repr``) gives mclust's layout; the numbers are
    attributes. BIC and ICL are in mclust's sign (higher is better).

    Attributes
    ----------
    estimator : str
        The estimator's class name.
    covariance_type : str
        bayesgmm's name of the covariance model.
    model_name : str
        mclust's name for it at this ``n_features`` and ``n_components``.
    description : str
        mclust's description of that model.
    n_components, n_samples, n_parameters : int
        K, the number of rows summarised, and the free parameters (mclust's df).
    log_likelihood : float
        ``sum_i log p(x_i)`` under the fitted parameters.
    bic, icl : float
        ``2 log L - n_parameters log n`` and mclust's ICL (``-EMGaussianMixture.icl(X)``).
    cluster_sizes : ndarray of int
        How many rows each component's MAP classification holds.
    weights, means, covariances : ndarray or None
        The parameters, when ``parameters=True`` (covariances as full matrices).
    feature_names : list of str
    noise_size : int or None
        With a noise component: how many rows its MAP classification holds
        (printed as the column ``noise``).
    noise_weight : float or None
        With a noise component and ``parameters=True``: its weight.
    """

    estimator: str
    covariance_type: str
    model_name: str
    description: str
    n_components: int
    n_samples: int
    n_parameters: int
    log_likelihood: float
    bic: float
    icl: float
    cluster_sizes: np.ndarray
    feature_names: list[str]
    weights: np.ndarray | None = field(default=None, repr=False)
    means: np.ndarray | None = field(default=None, repr=False)
    covariances: np.ndarray | None = field(default=None, repr=False)
    noise_size: int | None = None
    noise_weight: float | None = field(default=None, repr=False)

    def __str__(self) -> str:
        lines = _frame("Gaussian finite mixture model fitted by EM algorithm")
        noise = [] if self.noise_size is None else ["noise"]
        plural = "component" if self.n_components == 1 else "components"
        alias = (
            f" [covariance_type={self.covariance_type!r}]"
            if self.covariance_type != self.model_name
            else ""
        )
        lines += [
            "",
            textwrap.fill(
                f"{self.estimator} {self.model_name} ({self.description}) model with "
                f"{self.n_components} {plural}{alias}:",
                width=_RULE_WIDTH,
            )
            + " ",
            "",
            _row_table(
                ["log-likelihood", "n", "df", "BIC", "ICL"],
                [
                    [
                        _number(self.log_likelihood),
                        str(self.n_samples),
                        str(self.n_parameters),
                        _number(self.bic),
                        _number(self.icl),
                    ]
                ],
                [""],
            ),
            "",
            "Clustering table:",
            _bare_table(
                [str(k) for k in range(self.n_components)] + noise,
                [str(int(c)) for c in self.cluster_sizes] + [str(self.noise_size) for _ in noise],
            ),
        ]
        if self.weights is not None and self.means is not None and self.covariances is not None:
            components = [str(k) for k in range(self.n_components)]
            lines += [
                "",
                "Mixing probabilities:",
                _bare_table(
                    components + (["noise"] if self.noise_weight is not None else []),
                    [f"{w:.7g}" for w in self.weights]
                    + ([f"{self.noise_weight:.7g}"] if self.noise_weight is not None else []),
                ),
                "",
                "Means:",
                _matrix(self.means.T, self.feature_names, components),
                "",
                "Variances:",
            ]
            for k, covariance in enumerate(self.covariances):
                lines += [f"[,,{k}]", _matrix(covariance, self.feature_names, self.feature_names)]
        return "\n".join(lines)

    __repr__ = __str__


@dataclass(frozen=True, eq=False)
class SelectionSummary:
    """The best models of a selection, as mclust's ``summary(mclustBIC(...))`` prints them.

    Attributes
    ----------
    criterion : str
        ``"BIC"``, ``"ICL"``, ``"AIC"``, ``"elpd"`` or ``"probability"``.
    table : pandas.DataFrame
        The best models, best first: ``model`` (mclust's ``"name,K"``),
        ``covariance_type``, ``n_components``, ``value`` (higher is better: mclust's
        sign for BIC, ICL and AIC) and ``difference`` from the best.
    """

    criterion: str
    table: pd.DataFrame

    def __str__(self) -> str:
        models = [str(m) for m in self.table["model"]]
        cells = [
            [_number(v) for v in self.table["value"]],
            [_number(v) for v in self.table["difference"]],
        ]
        body = _row_table(models, cells, [self.criterion, f"{self.criterion} diff"])
        return f"Best {self.criterion} values:\n{body}"

    __repr__ = __str__


@dataclass(frozen=True, eq=False)
class ClassificationSummary:
    """A fitted discriminant analysis as mclust's ``summary(MclustDA(...))`` prints it.

    Attributes
    ----------
    model_type : str
        ``"EDDA"`` or ``"MclustDA"``.
    log_likelihood, bic : float
        ``sum_i log sum_c pi_c p(x_i | c)`` with the training class proportions,
        and ``2 log L - df log n`` (mclust's sign).
    n_samples, n_parameters : int
    classes : list of str
    class_counts : ndarray of int
    model_names : list of str
        mclust's name of each class's model.
    n_components : ndarray of int
    confusion : ndarray of int
        Rows: true class; columns: predicted class.
    error, brier : float
        Classification error and Brier score of the rows summarised.
    """

    model_type: str
    log_likelihood: float
    n_samples: int
    n_parameters: int
    bic: float
    classes: list[str]
    class_counts: np.ndarray
    model_names: list[str]
    n_components: np.ndarray
    confusion: np.ndarray
    error: float
    brier: float

    def __str__(self) -> str:
        lines = _frame("Gaussian finite mixture model for classification")
        summary = [
            _number(self.log_likelihood),
            str(self.n_samples),
            str(self.n_parameters),
            _number(self.bic),
        ]
        total = int(self.class_counts.sum())
        classes = [
            [str(int(c)), f"{100 * c / total:.2f}", name, str(int(g))]
            for c, name, g in zip(
                self.class_counts, self.model_names, self.n_components, strict=True
            )
        ]
        predicted = _row_table(
            self.classes, [[str(int(v)) for v in row] for row in self.confusion], self.classes
        )
        lines += [
            "",
            f"{self.model_type} model summary: ",
            "",
            _row_table(["log-likelihood", "n", "df", "BIC"], [summary], [""]),
            "",
            _row_table(["n", "%", "Model", "G"], classes, self.classes),
            "",
            "Training confusion matrix (rows: class, columns: predicted):",
            predicted,
            f"Classification error = {self.error:.4g} ",
            f"Brier score          = {self.brier:.4g} ",
        ]
        return "\n".join(lines)

    __repr__ = __str__
