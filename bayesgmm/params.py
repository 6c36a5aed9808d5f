"""The parameter type every model in bayesgmm shares.

A Gaussian mixture with K components in d dimensions is

    p(x) = sum_k w_k N(x | mu_k, Sigma_k),

with weights ``w`` on the simplex, means ``mu`` (K, d) and covariances in one
of four layouts (scikit-learn's): ``full`` (K, d, d), ``tied`` (d, d) shared by
all components, ``diag`` (K, d) and ``spherical`` (K,). mclust's fourteen
eigen-decomposed models are stored in the layout that holds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesgmm import _gaussian
from bayesgmm._validation import (
    check_array,
    check_n_features,
    check_option,
    check_shape,
    message,
)

__all__ = ["GaussianMixtureParams"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; TypeError naming ``name`` for text or complex values."""
    array = np.asarray(value)
    if array.dtype.kind == "c" or (
        array.dtype == object and any(isinstance(v, complex) for v in array.flat)
    ):
        raise TypeError(message(name, "real numbers", "complex values", raw=True))
    wrong_type = TypeError(
        message(name, "an array of real numbers", f"dtype {array.dtype}", raw=True)
    )
    if array.dtype.kind not in "biufO":  # text, bytes, dates
        raise wrong_type
    try:
        return np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise wrong_type from None


@dataclass(frozen=True, eq=False)
class GaussianMixtureParams:
    """Weights, means and covariances of a Gaussian mixture, checked once.

    Parameters
    ----------
    weights : array-like of shape (n_components,)
        Mixing weights: non-negative and summing to one (within 1e-6; they are
        renormalised exactly).
    means : array-like of shape (n_components, n_features)
    covariances : array-like
        (K, d, d) for ``full``, (d, d) for ``tied``, (K, d) for ``diag`` and
        (K,) for ``spherical``; symmetric positive definite. mclust's models
        are stored in the layout that holds them: EII and VII as ``spherical``
        (EII's values all equal), EEI, VEI, EVI and VVI as ``diag`` (EEI's rows
        all equal), EEE as ``tied`` and the other seven as ``full``. The
        constraints of a model (a shared shape, say) are what EM's M-step
        imposes; they are not checked here.
    covariance_type : str
        ``"full"``, ``"tied"``, ``"diag"``, ``"spherical"`` or one of mclust's
        fourteen model names (``"EII"``, ..., ``"VVV"``; see
        :data:`bayesgmm._gaussian.MCLUST_MODELS`).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import GaussianMixtureParams
    >>> p = GaussianMixtureParams([0.5, 0.5], [[0.0], [3.0]], [1.0, 1.0], "spherical")
    >>> p.n_components, p.n_features
    (2, 1)
    >>> float(np.round(p.score_samples([[0.0]])[0], 4))
    -1.601
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    covariance_type: str = "full"
    _precisions_cholesky: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_option(self.covariance_type, "covariance_type", _gaussian.EM_COVARIANCE_TYPES)
        weights = _real_array(self.weights, "weights")
        means = _real_array(self.means, "means")
        covariances = _real_array(self.covariances, "covariances")
        if means.ndim != 2:
            raise ValueError(
                message(
                    "means",
                    "an array of shape (n_components, n_features)",
                    f"shape {means.shape}",
                    raw=True,
                )
            )
        k, d = means.shape
        if weights.shape != (k,):
            raise ValueError(
                message("weights", f"shape ({k},) to match means", weights.shape, raw=True)
            )
        if not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise ValueError(message("weights", "finite non-negative values", weights))
        if abs(weights.sum() - 1.0) > 1e-6:
            raise ValueError(
                message("weights", "values summing to 1", f"sum {weights.sum()!r}", raw=True)
            )
        if not np.isfinite(means).all():
            raise ValueError(message("means", "finite values", "NaN or infinite values", raw=True))
        layout = _gaussian.LAYOUTS[self.covariance_type]
        check_shape(
            covariances,
            layout.parameter_shape(k, d),
            "covariances",
            f"for covariance_type={self.covariance_type!r}",
        )
        if layout.storage in ("full", "tied"):
            if not np.allclose(
                covariances,
                np.swapaxes(covariances, -1, -2),
                rtol=1e-8,
                atol=1e-12 * max(1.0, float(np.abs(covariances).max())),
            ):
                raise ValueError(
                    message("covariances", "symmetric matrices", "non-symmetric matrices", raw=True)
                )
        chol = layout.precision_cholesky(covariances)
        object.__setattr__(self, "weights", _readonly(_normalised(weights)))
        object.__setattr__(self, "means", _readonly(means))
        object.__setattr__(self, "covariances", _readonly(covariances))
        object.__setattr__(self, "_precisions_cholesky", _readonly(chol))

    # ------------------------------------------------------------------ shape
    @property
    def n_components(self) -> int:
        """Number of components K."""
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features d."""
        return int(self.means.shape[1])

    @property
    def layout(self) -> _gaussian.CovarianceLayout:
        """The covariance type's entry in the registry :data:`bayesgmm._gaussian.LAYOUTS`."""
        return _gaussian.LAYOUTS[self.covariance_type]

    @property
    def precisions_cholesky(self) -> np.ndarray:
        """Cholesky factors ``P`` of the precisions, ``Lambda = P P'`` (scikit-learn's layout)."""
        return self._precisions_cholesky

    @property
    def precisions(self) -> np.ndarray:
        """Inverse covariances, in the layout of ``covariances``."""
        return self.layout.precisions_from_cholesky(self._precisions_cholesky)

    def full_covariances(self) -> np.ndarray:
        """Covariances expanded to ``(n_components, n_features, n_features)``."""
        return self.layout.to_full(self.covariances, self.n_components, self.n_features)

    def n_parameters(self) -> int:
        """Count the free parameters (for BIC and AIC)."""
        return _gaussian.n_free_parameters(self.n_components, self.n_features, self.covariance_type)

    # ------------------------------------------------------------ densities
    def _check_X(self, X: Any) -> np.ndarray:
        array, _ = check_array(X)
        check_n_features(array, self.n_features)
        return array

    def log_component_densities(self, X: Any) -> np.ndarray:
        """``log N(x_i | mu_k, Sigma_k)`` for every point and component, shape (n, K)."""
        return _gaussian.log_gaussian_prob(
            self._check_X(X), self.means, self._precisions_cholesky, self.covariance_type
        )

    def score_samples(self, X: Any) -> np.ndarray:
        """Log density of the mixture at each point, ``log sum_k w_k N(x_i | mu_k, Sigma_k)``."""
        log_density, _ = _gaussian.log_mixture_density(
            self._check_X(X),
            self.weights,
            self.means,
            self._precisions_cholesky,
            self.covariance_type,
        )
        return log_density

    def predict_proba(self, X: Any) -> np.ndarray:
        """Membership probabilities ``p(z_i = k | x_i)``, shape (n, K)."""
        _, log_resp = _gaussian.log_mixture_density(
            self._check_X(X),
            self.weights,
            self.means,
            self._precisions_cholesky,
            self.covariance_type,
        )
        return np.exp(log_resp)

    def sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` points and their component labels."""
        return _gaussian.sample_mixture(
            n_samples, self.weights, self.means, self.full_covariances(), rng
        )

    # --------------------------------------------------------- rearranging
    def permuted(self, order: Any) -> GaussianMixtureParams:
        """Return the same mixture reordered: new component j is old component ``order[j]``."""
        order = np.asarray(order)
        if sorted(order.tolist()) != list(range(self.n_components)):
            raise ValueError(
                message("order", f"a permutation of 0..{self.n_components - 1}", order)
            )
        cov = self.covariances if self.layout.storage == "tied" else self.covariances[order]
        return GaussianMixtureParams(
            self.weights[order], self.means[order], cov, self.covariance_type
        )

    def sorted_by_weight(self) -> GaussianMixtureParams:
        """Components in order of decreasing weight (ties kept in their order)."""
        return self.permuted(np.argsort(-self.weights, kind="stable"))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and strings, for JSON and other open formats."""
        return {
            "covariance_type": self.covariance_type,
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GaussianMixtureParams:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(data["weights"]),
            np.asarray(data["means"]),
            np.asarray(data["covariances"]),
            data["covariance_type"],
        )

    def __repr__(self) -> str:
        return (
            f"GaussianMixtureParams(n_components={self.n_components}, "
            f"n_features={self.n_features}, covariance_type={self.covariance_type!r})"
        )


def _normalised(weights: np.ndarray) -> np.ndarray:
    """Divide by the sum until it is 1 in floating point, so normalising is idempotent.

    One division can leave a sum one rounding unit off 1, and normalising those weights
    again (when a saved model is loaded) would change them in the last bit.
    """
    for _ in range(4):
        total = weights.sum()
        if total == 1.0:
            break
        weights = weights / total
    return weights
