"""The estimator base: parameters, input checks and the predict side (scikit-learn's contract).

The constructor of every estimator only stores its arguments; ``get_params``,
``set_params`` and ``__repr__`` read them back from the signature, so adding an
argument needs no change here (:class:`ParamsMixin`).

:class:`MixtureBase` owns what every fitted mixture does the same way, as
scikit-learn's ``BaseMixture`` does: checking new data against the fit (number
of features, feature names), ``score_samples``, ``score`` (the mean
log-likelihood), ``predict_proba``, ``predict``, ``fit_predict``, ``save``, lazy
evaluation over the row blocks of a Dask array, conditional prediction
(``condition``, ``predict_conditional``) and the tags scikit-learn's utilities
read. An estimator supplies ``fit`` and two pure array methods,
``_score_samples_array`` and ``_predict_proba_array``, and, when it has
parameter draws to give intervals from, ``_parameter_draws``.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Self

import numpy as np
from scipy.special import logsumexp

from bayesgmm._chunks import check_dask_array, is_dask_array, map_rows
from bayesgmm._intervals import check_ci, credible_interval
from bayesgmm._missing import impute_conditional_mean, observed_log_density
from bayesgmm._validation import (
    check_array,
    check_dask_sample_weight,
    check_fitted,
    check_n_features,
    check_sample_weight,
    message,
)
from bayesgmm.conditional import (
    ConditionalMixture,
    check_conditioning,
    conditional_mixture,
    full_covariances,
)

__all__ = ["MixtureBase", "ParamsMixin"]


class ParamsMixin:
    """``get_params``, ``set_params`` and a scikit-learn style ``__repr__``."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters as a dict (scikit-learn convention).

        Parameters
        ----------
        deep : bool
            Ignored (no nested estimators); kept for scikit-learn compatibility.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; they are validated at the next ``fit``.

        Every name is checked before anything is set, so a call with an unknown
        name changes nothing.

        Returns
        -------
        self
        """
        valid = self._get_param_names()
        for name in params:
            if name not in valid:
                raise ValueError(message("params", f"names among {valid}", f"{name!r}", raw=True))
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """Show the arguments that differ from their defaults; the first one unnamed."""
        parameters = [
            p
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
        ]
        shown = []
        for position, p in enumerate(parameters):
            value = getattr(self, p.name)
            if value is p.default:
                continue
            if (
                isinstance(value, (str, numbers.Number, bool))
                and type(value) is type(p.default)
                and value == p.default
            ):
                continue
            text = repr(value)
            if isinstance(value, np.ndarray) or len(text) > 40:
                text = f"<{type(value).__name__}>"
            shown.append(text if position == 0 else f"{p.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"


class MixtureBase(ParamsMixin):
    """The predict side shared by the mixture estimators.

    Subclasses implement ``fit`` (setting ``params_``, ``n_features_in_`` and,
    for DataFrame input with string column names, ``feature_names_in_`` via
    :meth:`_set_feature_names`), ``_score_samples_array(X)`` returning the log
    density of each row and ``_predict_proba_array(X)`` returning the
    membership probabilities, both on a checked float array.
    """

    _estimator_type = "density_estimator"
    #: What ``fit`` sets; a method that needs a fitted model checks for these.
    _fitted_attributes: tuple[str, ...] = ("params_",)
    params_: Any
    n_features_in_: int
    #: Whether ``fit``, the predictions and ``impute`` take ``NaN`` as missing values
    #: (scikit-learn's ``allow_nan`` tag); when false they refuse it.
    _allow_nan: bool = False

    # ----------------------------------------------------------- to implement
    def fit(self, X: Any, y: Any = None) -> Self:  # pragma: no cover - abstract
        """Fit the model to ``X``; return ``self``."""
        raise NotImplementedError

    def _score_samples_array(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _predict_proba_array(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _n_membership_columns(self) -> int:
        """Columns of ``predict_proba``: the number of components."""
        return int(self.params_.n_components)

    def _parameter_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Draws of the parameters behind intervals, or None for a point fit.

        Weights (S, K), means (S, K, d) and full covariances (S, K, d, d), in the
        data's units; the components of every draw in the same order (relabelled).
        """
        return None

    # ---------------------------------------------------------------- checks
    def _set_feature_names(self, feature_names: list[str] | None) -> None:
        """Keep the training data's column names (or forget those of an earlier fit)."""
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _check_feature_names(self, feature_names: list[str] | None) -> None:
        """Refuse a DataFrame whose column names differ from the training data's.

        Columns are matched by position. A plain array is taken as it is (bayesgmm's
        own helpers pass arrays), as is a DataFrame when the fit saw none; only names
        that contradict the fit's are an error, as in scikit-learn.
        """
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None or feature_names is None:
            return
        if list(feature_names) != [str(f) for f in fitted]:
            raise ValueError(
                message(
                    "X",
                    f"the feature names seen in fit, {list(fitted)}",
                    f"{list(feature_names)}. The feature names should match those that were "
                    "passed during fit",
                    raw=True,
                )
            )

    def _check_X(self, X: Any, *, allow_nan: bool = False) -> np.ndarray:
        """Check new data against the fit; return it as a float array.

        With ``allow_nan``, and when the estimator takes missing values
        (``_allow_nan``), ``NaN`` entries are accepted as missing values (rows
        entirely ``NaN`` are not).
        """
        check_fitted(self, self._fitted_attributes)
        array, feature_names = check_array(
            X,
            allow_nan=allow_nan and self._allow_nan,
            missing_hint=(
                "drop or impute missing values first"
                if self._allow_nan
                else f"{type(self).__name__} does not take missing values: EMGaussianMixture "
                "does, or drop or impute them first"
            ),
        )
        self._check_feature_names(feature_names)
        check_n_features(array, self.n_features_in_, estimator=type(self).__name__)
        return array

    def _for_workers(self) -> Self:
        """Return the model as Dask tasks carry it (it may leave out its training data)."""
        return self

    def _by_rows(self, X: Any, method: str, *, per_component: bool) -> Any:
        """Apply a row-wise array method to checked data; lazily, by row blocks, to Dask input.

        ``method`` names a method of an array that returns one value per row, or
        one per row and component when ``per_component`` is true.
        """
        if not is_dask_array(X):
            return self._on_observed(self._check_X(X, allow_nan=True), method)
        check_fitted(self, self._fitted_attributes)
        data = check_dask_array(X)
        check_n_features(data, self.n_features_in_, estimator=type(self).__name__)
        columns = self._n_membership_columns() if per_component else None
        return map_rows(getattr(self._for_workers(), method), data, columns)

    # ------------------------------------------------------- missing values
    def _on_observed(self, X: np.ndarray, method: str) -> np.ndarray:
        """Apply ``_score_samples_array`` or ``_predict_proba_array`` to rows that may hold NaN.

        Complete rows go to ``method`` itself, unchanged; rows with missing
        entries to its counterpart on the observed coordinates
        (``_score_samples_incomplete`` or ``_predict_proba_incomplete``).
        """
        missing = np.isnan(X).any(axis=1)
        if not missing.any():
            return getattr(self, method)(X)
        incomplete = {
            "_score_samples_array": self._score_samples_incomplete,
            "_predict_proba_array": self._predict_proba_incomplete,
        }[method](X[missing])
        out = np.empty((X.shape[0],) + incomplete.shape[1:])
        out[missing] = incomplete
        if not missing.all():
            out[~missing] = getattr(self, method)(X[~missing])
        return out

    def _observed_log_joint(self, X: np.ndarray) -> np.ndarray:
        """``log w_k + log p(x_io | k)`` of rows with NaN, on their observed coordinates.

        The marginal of each component's Gaussian over the observed features,
        ``N(x_io | mu_ko, Sigma_koo)``, under the fitted point estimate
        ``params_`` (see :func:`bayesgmm._missing.observed_log_density`).
        Estimators whose predictive density is not a Gaussian mixture override it.
        """
        params = self.params_
        with np.errstate(divide="ignore"):
            log_weights = np.log(params.weights)
        return observed_log_density(X, params.means, params.full_covariances()) + log_weights

    def _score_samples_incomplete(self, X: np.ndarray) -> np.ndarray:
        """Log density of the observed coordinates of rows with missing entries."""
        return logsumexp(self._observed_log_joint(X), axis=1)

    def _predict_proba_incomplete(self, X: np.ndarray) -> np.ndarray:
        """Membership probabilities given the observed coordinates of rows with missing entries."""
        log_joint = self._observed_log_joint(X)
        return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))

    # ----------------------------------------------------------- predictions
    def score_samples(self, X: Any) -> np.ndarray:
        """Log density of the fitted mixture at every sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            For estimators that take missing values (EM and the DP),
            ``NaN`` marks a missing entry: such a row is evaluated on its observed
            features alone (the marginal of the mixture over them).

        Returns
        -------
        ndarray of shape (n_samples,)
            A lazy Dask array when ``X`` is a Dask array.
        """
        return self._by_rows(X, "_score_samples_array", per_component=False)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per sample, as scikit-learn's mixtures.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            For estimators that take missing values (EM and the DP),
            ``NaN`` marks a missing entry: such a row is evaluated on its observed
            features alone (the marginal of the mixture over them).
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Frequency weights: the weighted mean ``sum_i w_i log p(x_i) / sum_i w_i``,
            the mean over the data with row i repeated ``w_i`` times.

        Returns
        -------
        float
        """
        scores = self.score_samples(X)
        if sample_weight is None:
            return float(np.mean(scores))
        n = int(scores.shape[0])
        if is_dask_array(scores):
            weights = check_dask_sample_weight(sample_weight, n)
            return float(((scores * weights).sum() / weights.sum()).compute())
        checked = check_sample_weight(sample_weight, n)
        assert checked is not None
        return float(checked @ np.asarray(scores) / checked.sum())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Membership probabilities ``p(z_i = k | x_i)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            For estimators that take missing values (EM and the DP),
            ``NaN`` marks a missing entry: such a row is evaluated on its observed
            features alone (the marginal of the mixture over them).

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            A lazy Dask array when ``X`` is a Dask array.
        """
        return self._by_rows(X, "_predict_proba_array", per_component=True)

    def _has_noise(self) -> bool:
        """Whether the fit has a uniform noise component (the last membership column)."""
        return False

    def _refuse_noise(
        self, method: str, why: str = "the noise's region is not kept, only its volume"
    ) -> None:
        """Raise for ``method`` on a fit with a noise component, saying ``why``."""
        if self._has_noise():
            raise ValueError(
                message(
                    "noise",
                    f"False for {method} ({why})",
                    "True; refit with noise=False",
                    raw=True,
                )
            )

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of every sample; -1 where it is a noise component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            For estimators that take missing values (EM, the DP and the marginal
            model), ``NaN`` marks a missing entry: such a row is evaluated on its
            observed features alone (the marginal of the mixture over them).

        Returns
        -------
        ndarray of shape (n_samples,)
            The argmax of :meth:`predict_proba` (for the Bayesian models, of the
            posterior mean membership), with the noise column of a fit with
            ``noise=True`` labelled -1. A lazy Dask array when ``X`` is a Dask array.
        """
        labels = self.predict_proba(X).argmax(axis=1)
        if self._has_noise():
            return np.where(labels == self.params_.n_components, -1, labels)
        return labels

    def impute(self, X: Any) -> Any:
        """Fill the missing entries of ``X`` with their conditional mean under the fitted mixture.

        For a row with observed features ``o`` and missing features ``m``,
        ``E[x_m | x_o] = sum_k p(k | x_o) E[x_m | x_o, k]``, where
        ``E[x_m | x_o, k] = mu_km + Sigma_kmo Sigma_koo^{-1} (x_o - mu_ko)`` is the
        regression of the missing features on the observed ones within component
        k and ``p(k | x_o)`` the membership given the observed features alone
        (Ghahramani and Jordan 1994; Little and Rubin 2019, section 11.2,
        doi:10.1002/9781119482260). Observed entries are returned unchanged.
        The parameters are the fitted point estimate ``params_``. This is the
        best single guess in squared error under the model, not a draw: its
        spread is smaller than the data's. Estimators that do not take missing
        values refuse ``NaN`` here too.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with ``NaN`` for missing entries; no row may be entirely ``NaN``.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or pandas.DataFrame
            A new array, or a DataFrame with ``X``'s index and columns when ``X``
            is one.
        """
        data = self._check_X(X, allow_nan=True)
        params = self.params_
        filled = impute_conditional_mean(
            data, params.weights, params.means, params.full_covariances()
        )
        if hasattr(X, "columns") and hasattr(X, "index") and hasattr(X, "to_numpy"):
            return type(X)(filled, index=X.index, columns=X.columns)
        return filled

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit, then return the most probable component of every sample.

        Equal to ``fit(X).predict(X)``.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.fit(X).predict(X)

    # -------------------------------------------------- conditional prediction
    def condition(self, X_a: Any, indices: Any) -> ConditionalMixture:
        """Mixture of the remaining features given observed values of the features ``indices``.

        Every component's conditional Gaussian, reweighted by the marginal density
        of the observed features: weights ``w_k N(x_a | mu_ka, Sigma_kaa)``
        normalised, means ``mu_kb + Sigma_kba Sigma_kaa^{-1} (x_a - mu_ka)`` and
        covariances the Schur complement ``Sigma_kbb - Sigma_kba Sigma_kaa^{-1}
        Sigma_kab`` (see :mod:`bayesgmm.conditional`), at the fitted point
        parameters ``params_`` (the posterior means for the Bayesian models).

        Parameters
        ----------
        X_a : array-like of shape (n_samples, len(indices))
            Observed values, one column per index (a 1-D array for one index).
        indices : int or sequence of int
            Positions of the observed features: in range, unique, not all of them.

        Returns
        -------
        bayesgmm.conditional.ConditionalMixture
            ``weights`` (n_samples, K), ``means`` (n_samples, K, n_remaining),
            ``covariances`` (K, n_remaining, n_remaining), and ``remaining``, the
            positions of the predicted features.

        Examples
        --------
        >>> import numpy as np
        >>> from bayesgmm import EMGaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> x = rng.uniform(-3, 3, 500)
        >>> X = np.column_stack([x, np.sin(x) + rng.normal(0, 0.1, 500)])
        >>> model = EMGaussianMixture(6, random_state=0).fit(X)
        >>> mixture = model.condition([[1.0]], [0])
        >>> mixture.weights.shape, mixture.means.shape, mixture.covariances.shape
        ((1, 6), (1, 6, 1), (6, 1, 1))
        >>> bool(abs(mixture.mean()[0, 0] - np.sin(1.0)) < 0.1)
        True
        """
        return self._condition_at_point(*self._check_conditioning(X_a, indices))

    def _check_conditioning(self, X_a: Any, indices: Any) -> tuple[np.ndarray, np.ndarray]:
        check_fitted(self, self._fitted_attributes)
        return check_conditioning(X_a, indices, self.n_features_in_)

    def _condition_at_point(self, data: np.ndarray, positions: np.ndarray) -> ConditionalMixture:
        params = self.params_
        return conditional_mixture(
            params.weights, params.means, full_covariances(params), data, positions
        )

    def predict_conditional(
        self, X_a: Any, indices: Any, *, ci_prob: float | None = None, ci_kind: str = "eti"
    ) -> Any:
        """Conditional mean of the remaining features given observed ones, with intervals.

        Gaussian-mixture regression: ``E[x_b | x_a] = sum_k w_k(x_a) mu_kb(x_a)``,
        the mean of :meth:`condition`'s mixture.

        Parameters
        ----------
        X_a : array-like of shape (n_samples, len(indices))
            Observed values, one column per index (a 1-D array for one index).
        indices : int or sequence of int
            Positions of the observed features: in range, unique, not all of them.
        ci_prob : float in (0, 1), optional
            Without it, the conditional mean at the point parameters ``params_``,
            an (n_samples, n_remaining) array. With it, an ``xarray.Dataset`` with
            ``mean``, ``median``, ``lower`` and ``upper`` (dims ``obs_id`` and
            ``feature``) of the conditional mean ``E[x_b | x_a, theta_s]`` over
            parameter draws ``theta_s``: the posterior draws of the marginal model
            (at most 1000, spread evenly over the chains), 200 draws of the DP's
            variational posterior (seed 0), and the bootstrap replicates of an EM
            fit that has them. The interval is over the parameters' uncertainty:
            it says where the regression function lies, not where a new ``x_b`` falls.
        ci_kind : {"eti", "hdi"}, default "eti"
            Equal-tailed or highest-density interval (``"hdi"`` needs ``ci_prob > 0.5``).

        Returns
        -------
        ndarray of shape (n_samples, n_remaining) or xarray.Dataset
            The Dataset's attributes ``ci_prob`` and ``ci_kind`` say which interval;
            its ``feature`` coordinate holds the names of the predicted features
            when the fit saw a DataFrame, else their positions.

        Raises
        ------
        ValueError
            With ``ci_prob`` on a model without parameter draws (EM without a bootstrap).
        """
        ci_prob, ci_kind = check_ci(ci_prob, ci_kind, default=None)
        data, positions = self._check_conditioning(X_a, indices)
        mixture = self._condition_at_point(data, positions)
        if ci_prob is None:
            return mixture.mean()
        draws = self._parameter_draws()
        if draws is None:
            raise ValueError(
                message(
                    "ci_prob",
                    f"None for a {type(self).__name__} without parameter draws "
                    "(intervals need posterior draws or bootstrap replicates)",
                    ci_prob,
                )
            )
        weights, means, covariances = draws
        per_draw = np.stack(
            [
                conditional_mixture(w, m, c, data, positions).mean()
                for w, m, c in zip(weights, means, covariances, strict=True)
            ]
        )
        median, lower, upper = credible_interval(per_draw, ci_prob, ci_kind, axis=0)
        import xarray as xr

        dims = ("obs_id", "feature")
        return xr.Dataset(
            {
                "mean": (dims, per_draw.mean(axis=0)),
                "median": (dims, median),
                "lower": (dims, lower),
                "upper": (dims, upper),
            },
            coords={"obs_id": np.arange(data.shape[0]), "feature": self._feature_labels(mixture)},
            attrs={"ci_prob": ci_prob, "ci_kind": ci_kind},
        )

    def _feature_labels(self, mixture: ConditionalMixture) -> np.ndarray:
        """Names of the predicted features when the fit saw names, else their positions."""
        names = getattr(self, "feature_names_in_", None)
        return mixture.remaining if names is None else np.asarray(names)[mixture.remaining]

    # -------------------------------------------------------------------- io
    def save(self, path: Any, *, overwrite: bool = False) -> None:
        """Save the fitted model (see :func:`bayesgmm.io.save`)."""
        from bayesgmm.io import save

        save(self, path, overwrite=overwrite)

    # ----------------------------------------------------- scikit-learn tags
    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, name) for name in self._fitted_attributes)

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn's utilities (imported only when scikit-learn asks)."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            classifier_tags=None,
            regressor_tags=None,
            input_tags=InputTags(two_d_array=True, allow_nan=self._allow_nan),
            non_deterministic=False,
        )
