"""Discriminant analysis with Gaussian mixtures: :class:`MixtureDiscriminantAnalysis`.

Each class ``c`` gets a density ``f_c(x)`` and a prior probability ``pi_c``; a
point is assigned by Bayes' rule,

    p(c | x) = pi_c f_c(x) / sum_c' pi_c' f_c'(x).

Two families of class densities, as in mclust's ``MclustDA`` (Fraley and Raftery
2002):

* ``"EDDA"`` (eigenvalue decomposition discriminant analysis, Bensmail and
  Celeux 1996): one Gaussian per class, the class covariances sharing one
  covariance model ``Sigma_c = lambda_c D_c A_c D_c'`` with some of volume,
  shape and orientation equal across classes. ``"tied"`` (mclust's EEE) is
  linear discriminant analysis and ``"full"`` (VVV) quadratic discriminant
  analysis; the model is chosen by BIC among the candidates. The fit is EM with
  every row labelled: the M-step on the classes, iterated for the covariance
  models whose M-step is itself iterative.
* ``"MclustDA"`` (Hastie and Tibshirani 1996's mixture discriminant analysis
  with model-based clustering inside each class): a Gaussian mixture per class,
  its number of components and covariance model chosen by BIC for that class
  alone with :func:`bayesgmm.select_n_components`.

The class priors are the training class proportions unless given.

References
----------
Bensmail, H. and Celeux, G. (1996). Regularized Gaussian discriminant analysis
through eigenvalue decomposition. JASA 91(436), 1743-1748.
doi:10.1080/01621459.1996.10476996
Fraley, C. and Raftery, A. E. (2002). Model-based clustering, discriminant
analysis, and density estimation. JASA 97(458), 611-631.
doi:10.1198/016214502760047131
Hastie, T. and Tibshirani, R. (1996). Discriminant analysis by Gaussian
mixtures. JRSS B 58(1), 155-176. doi:10.1111/j.2517-6161.1996.tb02073.x
Scrucca, L., Fop, M., Murphy, T. B. and Raftery, A. E. (2016). mclust 5:
clustering, classification and density estimation using Gaussian finite mixture
models. The R Journal 8(1), 289-317. doi:10.32614/RJ-2016-021
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from scipy.special import logsumexp

from bayesgmm._base import ParamsMixin
from bayesgmm._gaussian import LAYOUTS, DegenerateCovarianceError, n_free_parameters
from bayesgmm._reports import ClassificationSummary, mclust_name
from bayesgmm._validation import (
    check_array,
    check_fitted,
    check_int,
    check_n_features,
    check_option,
    check_random_state,
    message,
    sklearn_compatible,
)
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "MODEL_TYPES",
    "CrossValidation",
    "DataConversionWarning",
    "MixtureDiscriminantAnalysis",
    "brier_score",
]

MODEL_TYPES = ("MclustDA", "EDDA")
# mclust's default numbers of components per class, G = 1:5.
_DEFAULT_N_COMPONENTS = (1, 2, 3, 4, 5)


class DataConversionWarning(UserWarning):
    """``y`` was given as a column vector and read as a 1-D array."""


def all_covariance_types() -> list[str]:
    """Every covariance model EM accepts, each once (an alias of another is left out)."""
    seen_layouts: set[int] = set()
    seen_models: set[str] = set()
    types = []
    for name, layout in LAYOUTS.items():
        model = mclust_name(name)
        if id(layout) in seen_layouts or model in seen_models:
            continue
        seen_layouts.add(id(layout))
        seen_models.add(model)
        types.append(name)
    return types


def brier_score(probabilities: Any, y_codes: Any) -> float:
    """Brier score of class probabilities, as mclust's ``BrierScore``.

    ``sum_i sum_c (p_ic - 1[y_i = c])^2 / (2 n)``: 0 for certain, correct
    predictions, 1 for certain, wrong ones (the rows are first normalised).

    Parameters
    ----------
    probabilities : array-like of shape (n_samples, n_classes)
    y_codes : array-like of shape (n_samples,)
        The true class of each row as a column index of ``probabilities``.

    Returns
    -------
    float
    """
    z = np.asarray(probabilities, dtype=float)
    z = z / z.sum(axis=1, keepdims=True)
    truth = np.zeros_like(z)
    truth[np.arange(z.shape[0]), np.asarray(y_codes, dtype=np.intp)] = 1.0
    return float(((truth - z) ** 2).sum() / (2 * z.shape[0]))


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validated classification error and Brier score (mclust's ``cvMclustDA``).

    Attributes
    ----------
    error, error_se : float
        Classification error over all held-out rows and its standard error
        across folds.
    brier, brier_se : float
        Brier score (see :func:`brier_score`) and its standard error.
    predictions : ndarray of shape (n_samples,)
        Each row's class as predicted by the model fitted without its fold.
    probabilities : ndarray of shape (n_samples, n_classes)
        The held-out class probabilities.
    n_folds : int
    """

    error: float
    error_se: float
    brier: float
    brier_se: float
    predictions: np.ndarray
    probabilities: np.ndarray
    n_folds: int


class MixtureDiscriminantAnalysis(ParamsMixin):
    """Classifier with a Gaussian (EDDA) or a Gaussian mixture (MclustDA) per class.

    A scikit-learn classifier: ``fit(X, y)``, ``predict``, ``predict_proba``,
    ``score`` (accuracy), ``classes_``. The class densities are fitted by EM
    (:class:`bayesgmm.EMGaussianMixture`, its defaults) and their models chosen
    by BIC, as mclust's ``MclustDA`` (see the module's description).

    Parameters
    ----------
    model_type : {"MclustDA", "EDDA"}, default="MclustDA"
        ``"EDDA"``: one Gaussian per class, the class covariances following one
        covariance model, chosen by the BIC of the whole fit among
        ``covariance_types``. ``"MclustDA"``: a mixture per class, its number of
        components (from ``n_components``) and covariance model chosen by that
        class's BIC.
    n_components : int or iterable of int, optional
        Candidate numbers of components per class for ``"MclustDA"``; default
        1 to 5 (mclust's ``G = 1:5``). Candidates above a class's size are left
        out for that class. ``"EDDA"`` has one component per class and refuses
        any other value.
    covariance_types : str or iterable of str, optional
        Candidate covariance models; default every model
        :class:`~bayesgmm.EMGaussianMixture` accepts (each once: an alias of
        another is tried once).
    priors : array-like of shape (n_classes,), optional
        Prior class probabilities ``pi_c``, in the order of ``classes_``;
        normalised to sum to one. Default: the training class proportions.
    n_init : int, default=1
        EM initialisations per fit.
    random_state : None, int or numpy.random.Generator, optional
        Seeds every EM fit.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    priors_ : ndarray of shape (n_classes,)
        The priors used by ``predict_proba``.
    class_proportions_ : ndarray of shape (n_classes,)
        The training class proportions.
    mixtures_ : list of GaussianMixtureParams
        The density of each class (one component for EDDA).
    n_components_ : ndarray of int, shape (n_classes,)
        Components of each class's mixture.
    covariance_types_ : ndarray of str, shape (n_classes,)
        Covariance model of each class (the same for all with EDDA).
    log_likelihood_ : float
        ``sum_i log sum_c p_c f_c(x_i)`` on the training data, with ``p_c`` the
        class proportions (mclust's ``logLik.MclustDA``).
    n_parameters_ : int
        Free parameters of the class densities (the class proportions are not
        counted, as in mclust).
    bic_ : float
        ``-2 log_likelihood_ + n_parameters_ log n`` (lower is better;
        mclust's BIC is minus this).
    bic_table_ : pandas.DataFrame
        The BIC of every candidate: one row per covariance model for EDDA, and
        for MclustDA every class's table from
        :func:`~bayesgmm.select_n_components` with a ``class`` column.
    n_samples_fit_ : int
        Number of training samples.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import MixtureDiscriminantAnalysis
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-2, 1, (60, 2)), rng.normal(2, 1, (60, 2))])
    >>> y = np.repeat(["a", "b"], 60)
    >>> model = MixtureDiscriminantAnalysis("EDDA", covariance_types=["full", "tied"],
    ...                                     random_state=0).fit(X, y)
    >>> model.predict([[-2.0, -2.0], [2.0, 2.0]]).tolist()
    ['a', 'b']
    """

    _estimator_type = "classifier"

    def __init__(
        self,
        model_type: str = "MclustDA",
        *,
        n_components: Any = None,
        covariance_types: Any = None,
        priors: Any = None,
        n_init: int = 1,
        random_state: Any = None,
    ) -> None:
        self.model_type = model_type
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.priors = priors
        self.n_init = n_init
        self.random_state = random_state

    # -------------------------------------------------------------- validation
    def _validated(self) -> dict[str, Any]:
        v: dict[str, Any] = {}
        v["model_type"] = check_option(self.model_type, "model_type", MODEL_TYPES)
        v["n_components"] = _check_n_components(self.n_components, v["model_type"])
        v["covariance_types"] = _check_covariance_types(self.covariance_types)
        v["n_init"] = check_int(self.n_init, "n_init", minimum=1)
        v["rng"] = check_random_state(self.random_state)
        return v

    def _validated_priors(self, n_classes: int) -> np.ndarray | None:
        if self.priors is None:
            return None
        expected = f"{n_classes} non-negative numbers with a positive sum, one per class"
        try:
            priors = np.asarray(self.priors, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(message("priors", expected, self.priors)) from None
        if priors.shape != (n_classes,):
            raise ValueError(message("priors", expected, f"shape {priors.shape}", raw=True))
        if not (np.isfinite(priors).all() and (priors >= 0).all() and priors.sum() > 0):
            raise ValueError(message("priors", expected, priors))
        return priors / priors.sum()

    # --------------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any) -> Self:
        """Fit one density per class and choose its model by BIC.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (integers, strings or booleans).

        Returns
        -------
        self
        """
        v = self._validated()
        data, feature_names = check_array(X, min_samples=2)
        classes, codes = _check_targets(y, data.shape[0])
        priors = self._validated_priors(classes.shape[0])
        n, d = data.shape
        proportions = np.bincount(codes, minlength=classes.shape[0]) / n
        if v["model_type"] == "EDDA":
            mixtures, table = _fit_edda(data, codes, classes, v)
            n_parameters = int(table.loc[table["chosen"], "n_parameters"].iloc[0])
        else:
            mixtures, table = _fit_mclustda(data, codes, classes, v)
            n_parameters = sum(m.n_parameters() for m in mixtures)
        log_likelihood = float(
            logsumexp(_log_densities(mixtures, data) + np.log(proportions), axis=1).sum()
        )
        # Everything is computed; now change the estimator's state.
        self.classes_ = classes
        self.class_proportions_ = proportions
        self.priors_ = proportions.copy() if priors is None else priors
        self.mixtures_ = mixtures
        self.n_components_ = np.array([m.n_components for m in mixtures], dtype=int)
        self.covariance_types_ = np.array([m.covariance_type for m in mixtures], dtype=object)
        self.log_likelihood_ = log_likelihood
        self.n_parameters_ = n_parameters
        self.bic_ = -2.0 * log_likelihood + n_parameters * np.log(n)
        self.bic_table_ = table
        self.n_samples_fit_ = n
        self.n_features_in_ = d
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    # ------------------------------------------------------------- prediction
    def _check_X(self, X: Any) -> np.ndarray:
        check_fitted(self, ("mixtures_",))
        array, feature_names = check_array(X)
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None and feature_names is not None and feature_names != list(fitted):
            raise ValueError(
                message("X", f"the feature names seen in fit, {list(fitted)}", feature_names)
            )
        check_n_features(array, self.n_features_in_, estimator=type(self).__name__)
        return array

    def _joint_log(self, X: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return _log_densities(self.mixtures_, X) + np.log(self.priors_)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log posterior class probabilities ``log p(c | x)``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        joint = self._joint_log(self._check_X(X))
        return joint - logsumexp(joint, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior class probabilities ``p(c | x) = pi_c f_c(x) / sum_c' pi_c' f_c'(x)``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predict the most probable class of every sample.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        joint = self._joint_log(self._check_X(X))
        return self.classes_[joint.argmax(axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy: the share of samples whose predicted class is ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the samples in the share.

        Returns
        -------
        float
        """
        prediction = self.predict(X)
        truth = np.asarray(y).reshape(-1)
        if truth.shape != prediction.shape:
            raise ValueError(message("y", f"shape {prediction.shape}, one label per row of X", y))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return float(np.average(prediction == truth, weights=weights))

    # -------------------------------------------------------------- reporting
    def _codes(self, y: Any, n_samples: int) -> np.ndarray:
        classes, codes = _check_targets(y, n_samples)
        unknown = np.setdiff1d(classes, self.classes_)
        if unknown.size:
            raise ValueError(
                message("y", f"labels among classes_ {self.classes_.tolist()}", unknown.tolist())
            )
        return np.searchsorted(self.classes_, classes)[codes]

    def cross_validate(
        self, X: Any, y: Any, *, n_folds: int = 10, random_state: Any = None
    ) -> CrossValidation:
        """Cross-validated classification error and Brier score, as mclust's ``cvMclustDA``.

        The rows are split into ``n_folds`` folds balanced by class (each
        class's rows are shuffled and dealt to the folds in turn). For each
        fold, the class densities are refitted without it, keeping each class's
        chosen number of components and covariance model (the BIC choice is
        not redone, as in mclust), and the fold is predicted with ``priors_``.
        The error and Brier score are over all rows; their standard errors are
        mclust's, from the spread of the per-fold values weighted by fold
        size. To cross-validate the BIC choice as well, use scikit-learn's
        ``cross_val_score`` on an unfitted estimator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Usually the training data.
        y : array-like of shape (n_samples,)
        n_folds : int, default=10
            Between 2 and the number of samples (leave-one-out).
        random_state : None, int or numpy.random.Generator, optional
            Seeds the folds and the refits.

        Returns
        -------
        CrossValidation
        """
        data = self._check_X(X)
        n = data.shape[0]
        codes = self._codes(y, n)
        n_folds = check_int(n_folds, "n_folds", minimum=2)
        if n_folds > n:
            raise ValueError(message("n_folds", f"at most the number of samples, {n}", n_folds))
        rng = check_random_state(random_state)
        folds = _balanced_folds(codes, n_folds, rng)
        n_classes = self.classes_.shape[0]
        probabilities = np.empty((n, n_classes))
        errors, briers, sizes = [], [], []
        for fold in range(n_folds):
            test = folds == fold
            if not test.any():
                continue
            mixtures = self._refit(data[~test], codes[~test], rng)
            with np.errstate(divide="ignore"):
                joint = _log_densities(mixtures, data[test]) + np.log(self.priors_)
            z = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
            probabilities[test] = z
            errors.append(float(np.mean(z.argmax(axis=1) != codes[test])))
            briers.append(brier_score(z, codes[test]))
            sizes.append(int(test.sum()))
        weight = np.asarray(sizes, dtype=float)
        error, error_se = _weighted_mean_and_se(np.asarray(errors), weight)
        brier, brier_se = _weighted_mean_and_se(np.asarray(briers), weight)
        return CrossValidation(
            error=error,
            error_se=error_se,
            brier=brier,
            brier_se=brier_se,
            predictions=self.classes_[probabilities.argmax(axis=1)],
            probabilities=probabilities,
            n_folds=len(sizes),
        )

    def _refit(
        self, X: np.ndarray, codes: np.ndarray, rng: np.random.Generator
    ) -> list[GaussianMixtureParams]:
        """Refit the class densities on ``X``, keeping each class's K and covariance model."""
        from bayesgmm.em import EMGaussianMixture

        n_classes = self.classes_.shape[0]
        missing = np.setdiff1d(np.arange(n_classes), codes)
        if missing.size:
            raise ValueError(
                message(
                    "n_folds",
                    "folds that leave rows of every class for training",
                    f"training rows without class(es) {self.classes_[missing].tolist()}",
                    raw=True,
                )
            )
        with _quiet_em():
            if self.n_components_.max() == 1 and len(set(self.covariance_types_)) == 1:
                kind = str(self.covariance_types_[0])
                model = EMGaussianMixture(
                    n_classes,
                    covariance_type=kind,
                    n_init=int(self.n_init),
                    random_state=int(rng.integers(2**31 - 1)),
                )
                return _split_classes(model.fit(X, labels=codes).params_)
            return [
                EMGaussianMixture(
                    int(self.n_components_[c]),
                    covariance_type=str(self.covariance_types_[c]),
                    n_init=int(self.n_init),
                    random_state=int(rng.integers(2**31 - 1)),
                )
                .fit(X[codes == c])
                .params_
                for c in range(n_classes)
            ]

    def summary(self, X: Any, y: Any) -> ClassificationSummary:
        """Summarise the fit on ``(X, y)`` as mclust's ``summary(MclustDA(...))`` does.

        Printing the result gives mclust's layout: log-likelihood, n, df and
        BIC of the fit (mclust's sign, higher is better), each class's size,
        mclust model name and number of components, the confusion matrix, the
        classification error and the Brier score on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Usually the training data (bayesgmm does not keep them).
        y : array-like of shape (n_samples,)

        Returns
        -------
        bayesgmm._reports.ClassificationSummary
        """
        data = self._check_X(X)
        codes = self._codes(y, data.shape[0])
        probabilities = self.predict_proba(data)
        predicted = probabilities.argmax(axis=1)
        n_classes = self.classes_.shape[0]
        confusion = np.zeros((n_classes, n_classes), dtype=int)
        np.add.at(confusion, (codes, predicted), 1)
        d = self.n_features_in_
        return ClassificationSummary(
            model_type=str(self.model_type),
            log_likelihood=self.log_likelihood_,
            n_samples=self.n_samples_fit_,
            n_parameters=self.n_parameters_,
            bic=-self.bic_,
            classes=[str(c) for c in self.classes_],
            class_counts=np.bincount(codes, minlength=n_classes),
            # EDDA's classes share one model, which mclust names as such.
            model_names=[
                mclust_name(str(t), d, None if self.model_type == "EDDA" else int(k))
                for t, k in zip(self.covariance_types_, self.n_components_, strict=True)
            ],
            n_components=self.n_components_.copy(),
            confusion=confusion,
            error=float(np.mean(predicted != codes)),
            brier=brier_score(probabilities, codes),
        )

    # ----------------------------------------------------- scikit-learn tags
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixtures_")

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn's utilities (imported only when scikit-learn asks)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            transformer_tags=None,
            classifier_tags=ClassifierTags(),
            regressor_tags=None,
            input_tags=InputTags(two_d_array=True, allow_nan=False),
            non_deterministic=False,
        )


# ------------------------------------------------------------------ helpers
def _check_n_components(n_components: Any, model_type: str) -> tuple[int, ...]:
    if n_components is None:
        return (1,) if model_type == "EDDA" else _DEFAULT_N_COMPONENTS
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        values: Iterable[Any] = (n_components,)
    elif isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes)):
        values = n_components
    else:
        raise TypeError(
            message("n_components", "a positive integer or an iterable of them", n_components)
        )
    checked = tuple(sorted({check_int(k, "n_components", minimum=1) for k in values}))
    if not checked:
        raise ValueError(message("n_components", "at least one value", n_components))
    if model_type == "EDDA" and checked != (1,):
        raise ValueError(
            message(
                "n_components",
                "None or 1 with model_type='EDDA' (one Gaussian per class; use "
                "model_type='MclustDA' for a mixture per class)",
                n_components,
            )
        )
    return checked


def _check_covariance_types(covariance_types: Any) -> list[str]:
    options = tuple(LAYOUTS)
    if covariance_types is None:
        return all_covariance_types()
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    if not isinstance(covariance_types, Iterable):
        raise TypeError(
            message("covariance_types", f"None, or an iterable among {options}", covariance_types)
        )
    values = [check_option(c, "covariance_types", options) for c in covariance_types]
    if not values:
        raise ValueError(message("covariance_types", "at least one", covariance_types))
    return list(dict.fromkeys(values))


def _check_targets(y: Any, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels as (sorted classes, code of each row); refuse what is not a class label."""
    if y is None:
        raise ValueError(
            message(
                "y",
                "class labels, one per row of X (this estimator requires y to be passed, "
                "but the target y is None)",
                y,
            )
        )
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel().",
            sklearn_compatible(DataConversionWarning),
            stacklevel=3,
        )
        array = array.ravel()
    if array.ndim != 1:
        raise ValueError(
            message(
                "y", "a 1-D array of class labels (one output)", f"shape {array.shape}", raw=True
            )
        )
    if array.shape[0] != n_samples:
        raise ValueError(
            message("y", f"{n_samples} labels, one per row of X", f"{array.shape[0]}", raw=True)
        )
    if array.dtype.kind == "c":
        raise ValueError(message("y", "class labels", "complex values", raw=True))
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(message("y", "class labels", "NaN or infinite values", raw=True))
        if (array != np.round(array)).any():
            raise ValueError(
                message(
                    "y",
                    "class labels (integers, strings or booleans)",
                    "non-integer numbers: Unknown label type: 'continuous'",
                    raw=True,
                )
            )
    if array.dtype == object:
        kinds = {type(v) for v in array}
        if len(kinds) > 1 and not all(issubclass(k, str) for k in kinds):
            raise TypeError(message("y", "labels of one type", f"types {sorted(map(str, kinds))}"))
    classes, codes = np.unique(array, return_inverse=True)
    return classes, codes.reshape(-1).astype(np.intp)


@contextmanager
def _quiet_em() -> Iterator[None]:
    """Silence EM's convergence and degeneracy warnings: the BIC table reports them."""
    from bayesgmm.em import ConvergenceWarning, DegenerateComponentWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        yield


def _split_classes(params: GaussianMixtureParams) -> list[GaussianMixtureParams]:
    """One single-component mixture per component of an EDDA fit (component c is class c).

    A covariance parameter stored once for all components (its shape does not
    depend on K in the registry) is shared; otherwise each class takes its slice.
    """
    layout = LAYOUTS[params.covariance_type]
    k, d = params.n_components, params.n_features
    shared = layout.parameter_shape(k, d) == layout.parameter_shape(1, d)
    return [
        GaussianMixtureParams(
            np.ones(1),
            params.means[c : c + 1],
            params.covariances if shared else params.covariances[c : c + 1],
            params.covariance_type,
        )
        for c in range(k)
    ]


def _log_densities(mixtures: list[GaussianMixtureParams], X: np.ndarray) -> np.ndarray:
    """``log f_c(x_i)`` for every row and class, shape (n, n_classes)."""
    return np.column_stack([m.score_samples(X) for m in mixtures])


def _fit_edda(
    X: np.ndarray, codes: np.ndarray, classes: np.ndarray, v: dict[str, Any]
) -> tuple[list[GaussianMixtureParams], pd.DataFrame]:
    """EM with every row labelled, for each covariance model; keep the best BIC.

    mclust's EDDA BIC: the mixture log-likelihood with the class proportions as
    weights, and the parameters of the means and covariances only (``equalPro``:
    the proportions are not estimated by the model).
    """
    import pandas as pd

    from bayesgmm.em import EMGaussianMixture

    n, d = X.shape
    n_classes = classes.shape[0]
    rows, fits = [], []
    for kind in v["covariance_types"]:
        model = EMGaussianMixture(
            n_classes,
            covariance_type=kind,
            n_init=v["n_init"],
            random_state=int(v["rng"].integers(2**31 - 1)),
        )
        note = ""
        log_likelihood = bic = np.nan
        with _quiet_em():
            try:
                model.fit(X, labels=codes)
            except DegenerateCovarianceError as exc:
                note = f"fit failed: {exc}"
        n_parameters = n_free_parameters(n_classes, d, kind) - (n_classes - 1)
        if not note:
            log_likelihood = float(model.score_samples(X).sum())
            if model.degenerate_components_.size:
                note = f"degenerate class(es) {classes[model.degenerate_components_].tolist()}"
            else:
                bic = -2.0 * log_likelihood + n_parameters * np.log(n)
        fits.append(model if not note else None)
        rows.append(
            {
                "covariance_type": kind,
                "model": mclust_name(kind, d),
                "bic": bic,
                "bic_mclust": -bic,
                "log_likelihood": log_likelihood,
                "n_parameters": n_parameters,
                "note": note,
            }
        )
    table = pd.DataFrame(rows)
    usable = np.isfinite(table["bic"].to_numpy(dtype=float))
    if not usable.any():
        raise ValueError(
            "X: expected data on which at least one covariance model fits every class without "
            "degenerate covariances, got none (notes: "
            f"{'; '.join(table['note'])}); scale the features or remove duplicated rows"
        )
    best = int(np.flatnonzero(usable)[np.argmin(table["bic"].to_numpy(dtype=float)[usable])])
    table["chosen"] = np.arange(len(table)) == best
    chosen = fits[best]
    assert chosen is not None
    return _split_classes(chosen.params_), table


def _fit_mclustda(
    X: np.ndarray, codes: np.ndarray, classes: np.ndarray, v: dict[str, Any]
) -> tuple[list[GaussianMixtureParams], pd.DataFrame]:
    """Fit a mixture per class, its K and covariance model chosen by that class's BIC."""
    import pandas as pd

    from bayesgmm.selection import select_n_components

    mixtures, tables = [], []
    for c, label in enumerate(classes):
        rows = X[codes == c]
        ks = [k for k in v["n_components"] if k <= rows.shape[0]]
        if not ks or rows.shape[0] < 2:
            raise ValueError(
                message(
                    "y",
                    f"at least 2 samples and min(n_components)={min(v['n_components'])} "
                    "sample(s) of every class",
                    f"{rows.shape[0]} sample(s) of class {label!r}",
                    raw=True,
                )
            )
        with _quiet_em():
            result = select_n_components(
                rows,
                ks,
                covariance_types=v["covariance_types"],
                random_state=int(v["rng"].integers(2**31 - 1)),
                n_init=v["n_init"],
            )
        mixtures.append(result.best_model.params_)
        table = result.table.copy()
        table.insert(0, "class", label)
        table["chosen"] = (table["n_components"] == result.best_n_components) & (
            table["covariance_type"] == result.best_covariance_type
        )
        tables.append(table)
    return mixtures, pd.concat(tables, ignore_index=True)


def _balanced_folds(codes: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of every row: each class's rows shuffled and dealt in turn (mclust's balancedFolds)."""
    folds = np.empty(codes.shape[0], dtype=np.intp)
    start = 0
    for c in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == c))
        folds[rows] = (start + np.arange(rows.shape[0])) % n_folds
        start += rows.shape[0]
    return folds


def _weighted_mean_and_se(values: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """Mean of per-fold values weighted by fold size, and mclust's standard error of it."""
    mean = float((values * sizes).sum() / sizes.sum())
    n_folds = values.shape[0]
    if n_folds < 2:
        return mean, float("nan")
    spread = ((values - mean) ** 2 * sizes).sum() / (sizes.sum() * (n_folds - 1) / n_folds)
    return mean, float(np.sqrt(spread / n_folds))
