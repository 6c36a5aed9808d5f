"""Pure Gaussian maths shared by EM, variational inference and the Bayesian models.

The central idea: for every covariance type the log density of a Gaussian is an
affine function of a fixed *feature map* of the data,

    log N(x | mu, Sigma) = c + phi(x) . eta,

where, with precision Lambda = Sigma^{-1},

* ``full``/``tied``: phi(x) = (x, x_i x_j for i <= j), eta = (Lambda mu, -Lambda_ij / 2
  on the diagonal and -Lambda_ij off it), c = -d/2 log(2 pi) + 1/2 log|Lambda|
  - 1/2 mu' Lambda mu;
* ``diag``: phi(x) = (x, x**2), eta = (Lambda mu, -Lambda / 2);
* ``spherical``: phi(x) = (x, |x|**2), eta = (lambda mu, -lambda / 2).

So the log density of every component at every point is one matrix product
``phi(X) @ eta`` (the E-step), and the sufficient statistics that the M-step
needs (N_k, sum_i r_ik x_i, sum_i r_ik x_i x_i') are ``R' phi(X)``, accumulated
chunk by chunk. :func:`e_step_statistics` is that kernel, the only one in the
package: EM runs it with the current natural parameters, coordinate-ascent VI
with their expectations E_q[eta], and Dask maps it over row blocks.

Everything that depends on the covariance type (the shape of the parameter, the
feature map's quadratic columns, conversions to full matrices and to Cholesky
factors of precisions, the number of free parameters, the M-step's covariance)
is one :class:`CovarianceLayout` in the registry :data:`LAYOUTS`; the functions
below read it, so a new covariance model is written once, here.

Expanding the quadratic form loses a little precision when the data sit far
from the origin relative to their spread, so callers centre the data first
(every function here that takes raw data does so itself).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from bayesgmm import _mclust_models
from bayesgmm._validation import message

__all__ = [
    "COVARIANCE_TYPES",
    "EM_COVARIANCE_TYPES",
    "LAYOUTS",
    "MCLUST_ALIASES",
    "MCLUST_MODELS",
    "CovarianceLayout",
    "DegenerateCovarianceError",
    "SufficientStatistics",
    "compute_precision_cholesky",
    "covariances_from_statistics",
    "default_chunk_size",
    "e_step_statistics",
    "feature_map",
    "full_covariances",
    "log_gaussian_prob",
    "log_mixture_density",
    "n_feature_columns",
    "n_free_parameters",
    "natural_parameters",
    "sample_mixture",
    "statistics_from_responsibilities",
    "unpack_feature_sums",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
_EPS = float(np.finfo(np.float64).eps)
# Bytes of the transposed feature map held per chunk: small enough to stay in cache
# and to keep OpenBLAS on its fast small-matrix paths.
_CHUNK_BYTES = 1 << 21

_DEGENERATE_MESSAGE = (
    "covariances: component(s) {components} have a covariance that is not positive "
    "definite (a component collapsed onto too few or duplicated points). Increase "
    "reg_covar, reduce n_components, or scale the features to comparable ranges."
)


class DegenerateCovarianceError(ValueError):
    """A covariance matrix is not positive definite (a collapsed or singleton component)."""


def _pack_symmetric(matrices: np.ndarray, off_diagonal_factor: float) -> np.ndarray:
    """Pack the upper triangles of ``(K, d, d)`` matrices, scaling off-diagonal entries."""
    d = matrices.shape[-1]
    rows, cols = np.triu_indices(d)
    packed = matrices[:, rows, cols].copy()
    packed[:, rows != cols] *= off_diagonal_factor
    return packed


def _unpack_symmetric(packed: np.ndarray, d: int) -> np.ndarray:
    """Inverse of :func:`_pack_symmetric` with factor 1: rebuild symmetric ``(K, d, d)``."""
    rows, cols = np.triu_indices(d)
    out = np.zeros(packed.shape[:-1] + (d, d))
    out[..., rows, cols] = packed
    out[..., cols, rows] = packed
    return out


# ------------------------------------------------------------- covariance layouts
class CovarianceLayout:
    """Everything that depends on one covariance type, in one place.

    A layout knows the shape of its covariance parameter (scikit-learn's
    layouts), the quadratic columns it adds to the feature map ``phi(x)``, how
    to turn its parameter into full matrices and into Cholesky factors ``P`` of
    the precisions (``Lambda = P P'``), how the M-step estimates it from
    sufficient statistics, and how many free parameters it has. Every engine
    (EM, CAVI, the PyMC models, selection) reads these instead of branching on
    the type's name.
    """

    name: str = ""
    #: The storage family among scikit-learn's four layouts ("full", "tied", "diag",
    #: "spherical"): the parameter's shape, the feature map and the conversions.
    storage: str = ""
    #: Fewest points a component needs to estimate its own covariance (d is added for ``full``).
    min_points: int = 1

    def fewest_points(self, n_features: int) -> int:
        """Fewest points a component needs to estimate its own covariance."""
        return self.min_points

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of the covariance (and precision) parameter."""
        raise NotImplementedError

    def statistics_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``sum_i r_ik x_i x_i'`` as the M-step needs it."""
        raise NotImplementedError

    def component_shape(self, n_features: int) -> tuple[int, ...]:
        """Shape of one component's covariance (a prior guess of it, say)."""
        raise NotImplementedError

    #: Dims of the covariance parameter (and its Cholesky factor) in a PyMC model or DataTree.
    parameter_dims: tuple[str, ...] = ()

    @property
    def scale_dims(self) -> tuple[str, ...]:
        """Dims of the standard deviations: the parameter's dims without the second feature."""
        return tuple(dim for dim in self.parameter_dims if dim != "feature_bis")

    def unit_covariances(self, n_components: int, n_features: int) -> np.ndarray:
        """Identity covariances in this layout: a valid point of any model."""
        raise NotImplementedError

    def n_quadratic_columns(self, n_features: int) -> int:
        """Columns the feature map adds after ``x`` itself."""
        raise NotImplementedError

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters of the covariances."""
        raise NotImplementedError

    def quadratic_features(self, Xt: np.ndarray, out: np.ndarray) -> None:
        """Write the quadratic rows of ``phi(X)'`` for ``Xt`` (d, n) into ``out``."""
        raise NotImplementedError

    def unpack_quadratic(self, packed: np.ndarray, n_features: int) -> np.ndarray:
        """``sum_xx`` from the quadratic columns of ``R' phi(X)`` (K, q)."""
        raise NotImplementedError

    def precision_terms(
        self, means: np.ndarray, chol: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(Lambda mu, quadratic coefficients, log|P|, mu' Lambda mu)`` per component."""
        raise NotImplementedError

    def to_full(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        """Expand the covariances to ``(n_components, d, d)`` matrices."""
        raise NotImplementedError

    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        """Cholesky factors of the precisions; :class:`DegenerateCovarianceError` if not PD."""
        raise NotImplementedError

    def cholesky_of_precisions(self, precisions: np.ndarray, name: str) -> np.ndarray:
        """Lower Cholesky factors of user-given precisions; ``ValueError`` naming ``name``."""
        raise NotImplementedError

    def precisions_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        """``Lambda = P P'`` in this layout."""
        raise NotImplementedError

    def covariances_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        """``Sigma = (P P')^{-1}`` in this layout."""
        raise NotImplementedError

    def m_step_covariances(
        self,
        stats: SufficientStatistics,
        nk: np.ndarray,
        means: np.ndarray,
        reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        """Maximum-likelihood covariances from statistics, ``reg`` added per feature.

        ``previous`` (the covariances before this M-step, or None) is where
        iterative M-steps start; the closed-form ones ignore it.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"CovarianceLayout({self.name!r})"


class _MatrixLayout(CovarianceLayout):
    """``full`` (one matrix per component) and ``tied`` (one matrix for all)."""

    shared = False

    def _stack(self, array: np.ndarray) -> np.ndarray:
        return array[None] if self.shared else array

    def _unstack(self, array: np.ndarray) -> np.ndarray:
        return array[0] if self.shared else array

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        d = n_features
        return (d, d) if self.shared else (n_components, d, d)

    def statistics_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def component_shape(self, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def unit_covariances(self, n_components: int, n_features: int) -> np.ndarray:
        identity = np.eye(n_features)
        return (
            identity
            if self.shared
            else np.broadcast_to(identity, (n_components,) + identity.shape).copy()
        )

    def n_quadratic_columns(self, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        per_matrix = n_features * (n_features + 1) // 2
        return per_matrix if self.shared else n_components * per_matrix

    def quadratic_features(self, Xt: np.ndarray, out: np.ndarray) -> None:
        d = Xt.shape[0]
        start = 0
        for i in range(d):
            np.multiply(Xt[i : i + 1], Xt[i:], out=out[start : start + d - i])
            start += d - i

    def unpack_quadratic(self, packed: np.ndarray, n_features: int) -> np.ndarray:
        return _unpack_symmetric(packed, n_features)

    def precision_terms(
        self, means: np.ndarray, chol: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k, d = means.shape
        chol = np.broadcast_to(chol, (k, d, d)) if self.shared else chol
        precisions = chol @ np.swapaxes(chol, -1, -2)
        linear = np.einsum("kij,kj->ki", precisions, means)
        quadratic = _pack_symmetric(precisions, 2.0) * -0.5
        log_det = np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=1)
        maha = np.square(np.einsum("ki,kij->kj", means, chol)).sum(axis=1)
        return linear, quadratic, log_det, maha

    def to_full(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        if self.shared:
            return np.broadcast_to(covariances, (n_components,) + covariances.shape).copy()
        return covariances

    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        stack = self._stack(covariances)
        d = stack.shape[-1]
        out = np.empty_like(stack)
        identity = np.eye(d)
        bad = []
        for k, cov in enumerate(stack):
            try:
                chol = linalg.cholesky(cov, lower=True, check_finite=False)
            except linalg.LinAlgError:
                bad.append(k)
                continue
            if not np.all(np.diag(chol) > 0):
                bad.append(k)
                continue
            out[k] = linalg.solve_triangular(chol, identity, lower=True, check_finite=False).T
        if bad or not np.isfinite(out).all():
            raise DegenerateCovarianceError(_DEGENERATE_MESSAGE.format(components=bad or "?"))
        return self._unstack(out)

    def cholesky_of_precisions(self, precisions: np.ndarray, name: str) -> np.ndarray:
        stack = self._stack(precisions)
        if not np.allclose(stack, np.swapaxes(stack, -1, -2), rtol=1e-8, atol=0):
            raise ValueError(
                message(name, "symmetric matrices", "non-symmetric matrices", raw=True)
            )
        out = np.empty_like(stack)
        for k, matrix in enumerate(stack):
            try:
                out[k] = linalg.cholesky(matrix, lower=True, check_finite=False)
            except linalg.LinAlgError:
                raise ValueError(
                    message(
                        name,
                        "positive definite matrices",
                        f"a matrix that is not positive definite at index {k}",
                        raw=True,
                    )
                ) from None
        return self._unstack(out)

    def precisions_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        return chol @ np.swapaxes(chol, -1, -2)

    def covariances_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        covariances = np.linalg.inv(self.precisions_from_cholesky(chol))
        return 0.5 * (covariances + np.swapaxes(covariances, -1, -2))

    def m_step_covariances(
        self,
        stats: SufficientStatistics,
        nk: np.ndarray,
        means: np.ndarray,
        reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        d = means.shape[1]
        diagonal = (np.arange(d), np.arange(d))
        if self.shared:
            cov = stats.sum_xx.sum(axis=0) - np.einsum("k,ki,kj->ij", nk, means, means)
            cov = 0.5 * (cov + cov.T) / nk.sum()
            cov[diagonal] += reg
            return cov
        cov = stats.sum_xx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[(slice(None),) + diagonal] += reg
        return cov


class _FullLayout(_MatrixLayout):
    name = "full"
    storage = "full"
    min_points = 1  # plus d: see fewest_points
    parameter_dims = ("component", "feature", "feature_bis")

    def fewest_points(self, n_features: int) -> int:
        return self.min_points + n_features


class _TiedLayout(_MatrixLayout):
    name = "tied"
    storage = "tied"
    shared = True
    min_points = 1
    parameter_dims = ("feature", "feature_bis")


class _VectorLayout(CovarianceLayout):
    """``diag`` (a variance per feature and component) and ``spherical`` (one per component)."""

    min_points = 2

    def precision_cholesky(self, covariances: np.ndarray) -> np.ndarray:
        if not np.all(covariances > 0) or not np.isfinite(covariances).all():
            bad = np.unique(np.nonzero(~(covariances > 0))[0]).tolist()
            raise DegenerateCovarianceError(_DEGENERATE_MESSAGE.format(components=bad))
        return 1.0 / np.sqrt(covariances)

    def cholesky_of_precisions(self, precisions: np.ndarray, name: str) -> np.ndarray:
        if not (precisions > 0).all():
            raise ValueError(message(name, "positive values", precisions))
        return np.sqrt(precisions)

    def precisions_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        return chol**2

    def covariances_from_cholesky(self, chol: np.ndarray) -> np.ndarray:
        return 1.0 / chol**2

    def unit_covariances(self, n_components: int, n_features: int) -> np.ndarray:
        return np.ones(self.parameter_shape(n_components, n_features))


class _DiagLayout(_VectorLayout):
    name = "diag"
    storage = "diag"
    parameter_dims = ("component", "feature")

    def component_shape(self, n_features: int) -> tuple[int, ...]:
        return (n_features,)

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    statistics_shape = parameter_shape

    def n_quadratic_columns(self, n_features: int) -> int:
        return n_features

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def quadratic_features(self, Xt: np.ndarray, out: np.ndarray) -> None:
        np.multiply(Xt, Xt, out=out)

    def unpack_quadratic(self, packed: np.ndarray, n_features: int) -> np.ndarray:
        return packed.copy()

    def precision_terms(
        self, means: np.ndarray, chol: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        precisions = chol**2
        return (
            precisions * means,
            -0.5 * precisions,
            np.log(chol).sum(axis=1),
            (precisions * means**2).sum(axis=1),
        )

    def to_full(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        return np.einsum("ki,ij->kij", covariances, np.eye(n_features))

    def m_step_covariances(
        self,
        stats: SufficientStatistics,
        nk: np.ndarray,
        means: np.ndarray,
        reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        return np.maximum(stats.sum_xx / nk[:, None] - means**2, 0.0) + reg


class _SphericalLayout(_VectorLayout):
    name = "spherical"
    storage = "spherical"
    parameter_dims = ("component",)

    def component_shape(self, n_features: int) -> tuple[int, ...]:
        return ()

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    statistics_shape = parameter_shape

    def n_quadratic_columns(self, n_features: int) -> int:
        return 1

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def quadratic_features(self, Xt: np.ndarray, out: np.ndarray) -> None:
        np.einsum("ij,ij->j", Xt, Xt, out=out[0])

    def unpack_quadratic(self, packed: np.ndarray, n_features: int) -> np.ndarray:
        return packed[:, 0].copy()

    def precision_terms(
        self, means: np.ndarray, chol: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        d = means.shape[1]
        precisions = chol**2
        return (
            precisions[:, None] * means,
            -0.5 * precisions[:, None],
            d * np.log(chol),
            precisions * (means**2).sum(axis=1),
        )

    def to_full(self, covariances: np.ndarray, n_components: int, n_features: int) -> np.ndarray:
        return covariances[:, None, None] * np.eye(n_features)

    def m_step_covariances(
        self,
        stats: SufficientStatistics,
        nk: np.ndarray,
        means: np.ndarray,
        reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        d = means.shape[1]
        return np.maximum(stats.sum_xx / nk - (means**2).sum(axis=1), 0.0) / d + reg.mean()


_STORAGE_CLASSES: dict[str, type[CovarianceLayout]] = {
    "full": _FullLayout,
    "tied": _TiedLayout,
    "diag": _DiagLayout,
    "spherical": _SphericalLayout,
}


class _MclustModel:
    """One of mclust's fourteen models (see :mod:`bayesgmm._mclust_models`), as a mixin.

    Mixed into the scikit-learn layout that stores the model's covariances (its
    ``storage``), so the feature map, the E-step kernel and every conversion are
    that layout's; the M-step, the parameter count and the fewest points per
    component are the model's. EEI and EII keep one row or value per component,
    all equal.
    """

    name: str
    storage: str

    def m_step_covariances(
        self,
        stats: SufficientStatistics,
        nk: np.ndarray,
        means: np.ndarray,
        reg: np.ndarray,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        # The regularised ML covariances of the storage family, times N_k, are the
        # scatters S_k + N_k diag(reg) over which the model's M-step maximises.
        family, m_step = _mclust_models.M_STEPS[self.name]
        storage_m_step = _STORAGE_CLASSES[family].m_step_covariances
        unconstrained = storage_m_step(self, stats, nk, means, reg)  # type: ignore[arg-type]
        if family == "tied":
            return m_step(nk[:, None, None] * unconstrained[None], nk)
        if family == "spherical":
            d = means.shape[1]
            return m_step(nk * d * unconstrained, nk, d)
        scatter = nk.reshape((-1,) + (1,) * (unconstrained.ndim - 1)) * unconstrained
        if self.name in _mclust_models.ITERATIVE:
            return m_step(scatter, nk, previous)
        return m_step(scatter, nk)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return _mclust_models.n_covariance_parameters(self.name, n_components, n_features)

    def fewest_points(self, n_features: int) -> int:
        # Its own shape and orientation: the component's scatter must be definite (d + 1);
        # anything else of its own (a volume, a shape): 2; everything shared: 1.
        if self.name[1:] == "VV":
            return n_features + 1
        return 2 if "V" in self.name else 1


def _mclust_layout(model: str) -> CovarianceLayout:
    """Build the registry entry of mclust's model ``model``."""
    family = _mclust_models.M_STEPS[model][0]
    cls = type(
        f"_{model}Layout",
        (_MclustModel, _STORAGE_CLASSES[family]),
        {"name": model, "storage": family, "__doc__": f"mclust's {model}, stored as {family}."},
    )
    layout: CovarianceLayout = cls()
    return layout


LAYOUTS: dict[str, CovarianceLayout] = {
    layout.name: layout
    for layout in (_FullLayout(), _TiedLayout(), _DiagLayout(), _SphericalLayout())
}
"""The registry: covariance type -> its :class:`CovarianceLayout`."""

#: scikit-learn's four covariance types, which every engine (EM, the DP, the marginal model) fits.
COVARIANCE_TYPES = tuple(LAYOUTS)

MCLUST_MODELS = _mclust_models.MCLUST_MODELS
LAYOUTS.update({model: _mclust_layout(model) for model in MCLUST_MODELS})

#: Every covariance type that EM fits: the four and mclust's fourteen models.
EM_COVARIANCE_TYPES = tuple(LAYOUTS)

#: scikit-learn's names as aliases of mclust's models: the same M-step and parameter count.
MCLUST_ALIASES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}


def min_points(n_features: int, covariance_type: str) -> int:
    """Fewest points a component needs to estimate its own covariance (d + 1 for ``full``)."""
    return LAYOUTS[covariance_type].fewest_points(n_features)


# ------------------------------------------------------------------ feature map
def n_feature_columns(n_features: int, covariance_type: str) -> int:
    """Width of the feature map ``phi(x)`` for ``n_features`` features."""
    return n_features + LAYOUTS[covariance_type].n_quadratic_columns(n_features)


def default_chunk_size(n_features: int, covariance_type: str) -> int:
    """Rows per chunk so that one chunk of the feature map takes about 2 MiB."""
    width = n_feature_columns(n_features, covariance_type)
    return max(256, _CHUNK_BYTES // (8 * width))


def _feature_map_t(rows: np.ndarray, covariance_type: str, out: np.ndarray) -> np.ndarray:
    """``phi(X)'`` of shape (width, n) for rows ``X`` (n, d), written into ``out``.

    ``X`` is first copied, transposed, into the first d rows of ``out``; the
    quadratic rows are products of those contiguous rows.
    """
    d = rows.shape[1]
    out[:d] = rows.T
    LAYOUTS[covariance_type].quadratic_features(out[:d], out[d:])
    return out


def feature_map(X: np.ndarray, covariance_type: str) -> np.ndarray:
    """Return ``phi(X)``: the columns in which every Gaussian log density is linear.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data, ideally centred.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Which quadratic terms the covariance type needs.

    Returns
    -------
    ndarray of shape (n_samples, n_feature_columns)
        ``X`` followed by the products ``x_i x_j`` (i <= j, row-major upper
        triangle) for full/tied, ``x**2`` for diag, ``|x|**2`` for spherical.
    """
    width = n_feature_columns(X.shape[1], covariance_type)
    return _feature_map_t(X, covariance_type, np.empty((width, X.shape[0]))).T


def natural_parameters(
    means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(eta, c)`` such that ``log N(x | mu_k, Sigma_k) = c_k + phi(x) . eta[:, k]``.

    Parameters
    ----------
    means : ndarray of shape (n_components, n_features)
    precisions_cholesky : ndarray
        Cholesky factors ``P`` of the precisions, ``Lambda = P P'``, in
        scikit-learn's layout: (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    eta : ndarray of shape (n_feature_columns, n_components)
    c : ndarray of shape (n_components,)
    """
    d = means.shape[1]
    linear, quadratic, log_det, maha = LAYOUTS[covariance_type].precision_terms(
        means, precisions_cholesky
    )
    eta = np.concatenate([linear, quadratic], axis=1).T
    const = -0.5 * d * _LOG_2PI + log_det - 0.5 * maha
    return np.ascontiguousarray(eta), const


def log_gaussian_prob(
    X: np.ndarray,
    means: np.ndarray,
    precisions_cholesky: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Log density of every component at every point, ``log N(x_i | mu_k, Sigma_k)``.

    The data and the means are first centred on the mean of the means (the
    densities do not change), then evaluated chunk by chunk as ``phi(X) @ eta``.

    Returns
    -------
    ndarray of shape (n_samples, n_components)
    """
    center = means.mean(axis=0)
    eta, const = natural_parameters(means - center, precisions_cholesky, covariance_type)
    n, d = X.shape
    out = np.empty((n, means.shape[0]))
    step = chunk_size or default_chunk_size(d, covariance_type)
    buffer = np.empty((eta.shape[0], min(step, n)))
    eta_t = np.ascontiguousarray(eta.T)
    for start in range(0, n, step):
        stop = min(start + step, n)
        features = _feature_map_t(
            X[start:stop] - center, covariance_type, buffer[:, : stop - start]
        )
        out[start:stop] = (eta_t @ features).T
        out[start:stop] += const
    return out


def log_mixture_density(
    X: np.ndarray,
    weights: np.ndarray,
    means: np.ndarray,
    precisions_cholesky: np.ndarray,
    covariance_type: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``log p(x_i)`` and the log responsibilities ``log p(z_i = k | x_i)``.

    Returns
    -------
    log_density : ndarray of shape (n_samples,)
        ``log sum_k w_k N(x_i | mu_k, Sigma_k)``.
    log_resp : ndarray of shape (n_samples, n_components)
    """
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    weighted = log_gaussian_prob(X, means, precisions_cholesky, covariance_type) + log_weights
    log_density = logsumexp(weighted, axis=1)
    return log_density, weighted - log_density[:, None]


# ----------------------------------------------------------- sufficient statistics
@dataclass
class SufficientStatistics:
    """Responsibility-weighted sums over the data; additive across chunks.

    Attributes
    ----------
    covariance_type : str
    nk : ndarray of shape (n_components,)
        ``N_k = sum_i r_ik``.
    sum_x : ndarray of shape (n_components, n_features)
        ``sum_i r_ik x_i``.
    sum_xx : ndarray
        ``sum_i r_ik x_i x_i'`` with shape (K, d, d) for full and tied, its
        diagonal (K, d) for diag, and its trace (K,) for spherical.
    log_normalizer : float
        ``sum_i log sum_k exp(s_ik)`` of the unnormalised log responsibilities
        ``s``: the log-likelihood in EM, and the data part of the ELBO in CAVI.
    n_samples : int
    noise_nk : float
        ``sum_i r_i0``, the responsibilities of a uniform noise component (0
        without one); ``nk`` then counts the Gaussian components' share only.
    """

    covariance_type: str
    nk: np.ndarray
    sum_x: np.ndarray
    sum_xx: np.ndarray
    log_normalizer: float
    n_samples: int
    noise_nk: float = 0.0

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        if other.covariance_type != self.covariance_type:
            raise ValueError("cannot add statistics of different covariance types")
        return SufficientStatistics(
            self.covariance_type,
            self.nk + other.nk,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.log_normalizer + other.log_normalizer,
            self.n_samples + other.n_samples,
            self.noise_nk + other.noise_nk,
        )

    @classmethod
    def zeros(
        cls, n_components: int, n_features: int, covariance_type: str
    ) -> SufficientStatistics:
        """Statistics of no data: the identity of ``+``."""
        shape = LAYOUTS[covariance_type].statistics_shape(n_components, n_features)
        return cls(
            covariance_type,
            np.zeros(n_components),
            np.zeros((n_components, n_features)),
            np.zeros(shape),
            0.0,
            0,
        )


def unpack_feature_sums(
    packed: np.ndarray, n_features: int, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``R' phi(X)`` (K, width) into ``sum_x`` and ``sum_xx``."""
    d = n_features
    sum_xx = LAYOUTS[covariance_type].unpack_quadratic(packed[:, d:], d)
    return packed[:, :d].copy(), sum_xx


def _chunk_bounds(n: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _chunk_statistics(
    X: np.ndarray,
    bounds: list[tuple[int, int]],
    eta_t: np.ndarray,
    offset: np.ndarray,
    covariance_type: str,
    resp_out: np.ndarray | None,
    noise_log_density: float | None = None,
    sample_weight: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """Per-chunk ``(phi' R, N, log-normaliser, noise N)`` for consecutive chunks, sharing buffers.

    With ``noise_log_density`` the log-sum-exp of each row also runs over that
    constant (a uniform component's ``log w_0 - log V``), whose responsibilities
    are summed apart; without it the noise sum is 0 and nothing else changes.
    With ``sample_weight``, row i's responsibilities count ``w_i`` times in the
    statistics and its log-normaliser ``w_i`` times in the sum.
    """
    n_components, width = eta_t.shape
    most = max(stop - start for start, stop in bounds)
    features_buffer = np.empty((width, most))
    scores_buffer = np.empty((n_components, most))
    out = []
    for start, stop in bounds:
        rows = stop - start
        if rows == most:
            features, scores = features_buffer, scores_buffer
        else:  # contiguous buffers for the short last chunk
            features = np.empty((width, rows))
            scores = np.empty((n_components, rows))
        _feature_map_t(X[start:stop], covariance_type, features)
        np.matmul(eta_t, features, out=scores)
        scores += offset
        top = scores.max(axis=0)
        if noise_log_density is not None:
            np.maximum(top, noise_log_density, out=top)
        scores -= top
        np.exp(scores, out=scores)
        total = scores.sum(axis=0)
        noise = None
        if noise_log_density is not None:
            noise = np.exp(noise_log_density - top)
            total += noise
            noise /= total
            if resp_out is not None and resp_out.shape[1] > n_components:
                resp_out[start:stop, n_components] = noise
        scores /= total
        if resp_out is not None:
            resp_out[start:stop, :n_components] = scores.T
        if sample_weight is None:
            log_normalizer = float(np.log(total).sum() + top.sum())
            noise_sum = 0.0 if noise is None else float(noise.sum())
        else:
            weight = sample_weight[start:stop]
            log_normalizer = float(weight @ (np.log(total) + top))
            noise_sum = 0.0 if noise is None else float(weight @ noise)
            scores *= weight
        out.append((features @ scores.T, scores.sum(axis=1), log_normalizer, noise_sum))
    return out


def e_step_statistics(
    X: np.ndarray,
    log_weights: np.ndarray,
    eta: np.ndarray,
    const: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
    resp_out: np.ndarray | None = None,
    executor: Executor | None = None,
    n_workers: int = 1,
    noise_log_density: float | None = None,
    sample_weight: np.ndarray | None = None,
) -> SufficientStatistics:
    """One pass over ``X``: responsibilities and the sufficient statistics they weight.

    With unnormalised log responsibilities ``s_ik = log_weights_k + c_k + phi(x_i) . eta_k``,
    the responsibilities are ``r_ik = exp(s_ik - logsumexp_k s_ik)`` and the
    statistics are ``N_k = sum_i r_ik`` and ``R' phi(X)``. In EM ``(eta, c)``
    are the natural parameters of the current estimate and ``log_weights`` the
    log mixing weights; in CAVI they are their expectations under q.

    Each chunk is evaluated transposed, one component per row
    (``S' = eta' phi(X)' + (c + log w)``), so the normalisation runs along
    contiguous rows and the statistics are ``phi(X)' R``: OpenBLAS is many times
    slower on ``R' phi(X)`` with a tall, thin ``R``. The chunks may run on
    ``n_workers`` threads of ``executor`` (NumPy and BLAS release the GIL); their
    statistics are always added in chunk order, so the result is bitwise the same
    whatever the number of threads.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The data in the frame ``eta`` was computed in (usually centred).
    log_weights, eta, const
        See above; ``eta`` has shape (width, K).
    covariance_type : str
    chunk_size : int, optional
        Rows per chunk (default: about 2 MiB of features).
    resp_out : ndarray of shape (n_samples, n_components), optional
        If given, the responsibilities are written into it (with a noise
        component and ``n_components + 1`` columns, the noise's in the last).
    executor : concurrent.futures.Executor, optional
        Thread pool for the chunks; serial if None.
    n_workers : int
        Number of groups of consecutive chunks handed to ``executor``.
    noise_log_density : float, optional
        ``log w_0 - log V`` of a uniform noise component over a region of
        volume ``V`` (Banfield and Raftery 1993, doi:10.2307/2532201): one more
        term, the same for every row, in each row's log-sum-exp. The Gaussian
        statistics are then weighted by the Gaussian responsibilities only and
        ``noise_nk`` is the sum of the noise responsibilities.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights ``w_i >= 0``: row i counts as ``w_i`` copies of itself,
        so the statistics are ``N_k = sum_i w_i r_ik`` and ``phi(X)' W R``, and the
        log-normaliser is ``sum_i w_i logsumexp_k s_ik``. Integer weights give the
        statistics of the data with each row repeated ``w_i`` times, and a zero
        weight those of the data without the row. ``resp_out`` still receives the
        unweighted responsibilities.

    Returns
    -------
    SufficientStatistics
        Additive over blocks: the statistics of a concatenation are the sum of
        the blocks' statistics. ``n_samples`` is the number of rows, whatever
        the weights.
    """
    n, d = X.shape
    width, n_components = eta.shape
    step = chunk_size or default_chunk_size(d, covariance_type)
    eta_t = np.ascontiguousarray(eta.T)
    offset = (const + log_weights)[:, None]
    bounds = _chunk_bounds(n, step)
    if not bounds:
        return SufficientStatistics.zeros(n_components, d, covariance_type)
    if executor is None or n_workers <= 1 or len(bounds) < 2:
        parts = _chunk_statistics(
            X, bounds, eta_t, offset, covariance_type, resp_out, noise_log_density, sample_weight
        )
    else:
        groups = [g.tolist() for g in np.array_split(np.arange(len(bounds)), n_workers) if g.size]
        futures = [
            executor.submit(
                _chunk_statistics,
                X,
                [bounds[i] for i in g],
                eta_t,
                offset,
                covariance_type,
                resp_out,
                noise_log_density,
                sample_weight,
            )
            for g in groups
        ]
        parts = [part for future in futures for part in future.result()]
    packed_t = np.zeros((width, n_components))
    nk = np.zeros(n_components)
    log_normalizer = noise_nk = 0.0
    for chunk_packed, chunk_nk, chunk_log_normalizer, chunk_noise_nk in parts:
        packed_t += chunk_packed
        nk += chunk_nk
        log_normalizer += chunk_log_normalizer
        noise_nk += chunk_noise_nk
    sum_x, sum_xx = unpack_feature_sums(packed_t.T, d, covariance_type)
    return SufficientStatistics(
        covariance_type, nk, sum_x, sum_xx, log_normalizer, n, noise_nk=noise_nk
    )


def statistics_from_responsibilities(
    X: np.ndarray,
    resp: np.ndarray,
    covariance_type: str,
    *,
    chunk_size: int | None = None,
    sample_weight: np.ndarray | None = None,
) -> SufficientStatistics:
    """Sufficient statistics for given responsibilities (used by initialisation).

    ``log_normalizer`` is set to 0 because no log density was evaluated. With
    ``sample_weight`` (frequency weights), row i's responsibilities count
    ``w_i`` times, as in :func:`e_step_statistics`.
    """
    if sample_weight is not None:
        resp = resp * sample_weight[:, None]
    n, d = X.shape
    step = chunk_size or default_chunk_size(d, covariance_type)
    width = n_feature_columns(d, covariance_type)
    packed_t = np.zeros((width, resp.shape[1]))
    buffer = np.empty((width, min(step, n)))
    for start, stop in _chunk_bounds(n, step):
        features = _feature_map_t(X[start:stop], covariance_type, buffer[:, : stop - start])
        packed_t += features @ resp[start:stop]
    sum_x, sum_xx = unpack_feature_sums(packed_t.T, d, covariance_type)
    return SufficientStatistics(covariance_type, resp.sum(axis=0), sum_x, sum_xx, 0.0, n)


def covariances_from_statistics(
    stats: SufficientStatistics,
    reg_covar: float | np.ndarray,
    previous: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the M-step: maximum-likelihood weights, means and covariances from statistics.

    Follows scikit-learn's ``_estimate_gaussian_parameters``: ``N_k`` gets
    ``10 * eps`` added so an empty component does not divide by zero, the
    weights are ``N_k / sum N_k``, the means ``sum_x / N_k`` and the covariance
    ``sum_xx / N_k - mu mu'`` plus ``reg_covar`` on the diagonal (pooled over
    components for ``tied``, averaged over features for ``spherical``).
    Variances that cancellation would make negative are clipped at zero before
    ``reg_covar`` is added.

    Parameters
    ----------
    stats : SufficientStatistics
    reg_covar : float or ndarray of shape (n_features,)
        Added to the covariance diagonals: one amount for every feature (a
        float, scikit-learn's case), or one per feature. ``spherical`` adds the
        mean over features, which is what averaging the regularised diagonal
        gives.
    previous : ndarray, optional
        The covariances before this M-step: where the iterative M-steps of
        mclust's models (VEI, VEE, EVE, VVE, VEV) start, so that each M-step
        increases the expected complete-data log-likelihood from them.

    Returns
    -------
    weights, means, covariances
    """
    nk = stats.nk + 10 * _EPS
    weights = nk / nk.sum()
    means = stats.sum_x / nk[:, None]
    d = means.shape[1]
    reg = np.asarray(reg_covar, dtype=float)
    if reg.ndim > 1 or (reg.ndim == 1 and reg.shape[0] != d):
        raise ValueError(f"reg_covar: expected a float or shape ({d},), got shape {reg.shape}")
    reg = np.broadcast_to(reg, (d,))
    covariances = LAYOUTS[stats.covariance_type].m_step_covariances(stats, nk, means, reg, previous)
    return weights, means, covariances


def compute_precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Cholesky factors ``P`` of the precisions (``Lambda = P P'``), scikit-learn's layout.

    Raises
    ------
    DegenerateCovarianceError
        If a covariance is not positive definite; the message names the
        component and says what to do.
    """
    return LAYOUTS[covariance_type].precision_cholesky(covariances)


def full_covariances(
    covariances: np.ndarray, covariance_type: str, n_components: int, n_features: int
) -> np.ndarray:
    """Expand any covariance layout to ``(n_components, d, d)`` matrices."""
    return LAYOUTS[covariance_type].to_full(covariances, n_components, n_features)


def n_free_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Count free parameters: ``K - 1`` weights, ``K d`` means and the covariances."""
    d, k = n_features, n_components
    cov = LAYOUTS[covariance_type].n_covariance_parameters(k, d)
    return int(cov + k * d + k - 1)


def sample_mixture(
    n_samples: int,
    weights: np.ndarray,
    means: np.ndarray,
    covariances_full: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_samples`` points and their component labels from a Gaussian mixture."""
    counts = rng.multinomial(n_samples, weights / weights.sum())
    d = means.shape[1]
    X = np.empty((n_samples, d))
    labels = np.repeat(np.arange(len(weights)), counts)
    start = 0
    for k, count in enumerate(counts):
        if count:
            chol = np.linalg.cholesky(covariances_full[k])
            X[start : start + count] = means[k] + rng.standard_normal((count, d)) @ chol.T
        start += count
    return X, labels
