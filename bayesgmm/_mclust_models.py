"""M-steps of the fourteen eigen-decomposed covariance models (mclust's names).

Celeux and Govaert (1995) write every component covariance as

    Sigma_k = lambda_k D_k A_k D_k',

with the volume ``lambda_k = |Sigma_k|^(1/d)``, the shape ``A_k`` (diagonal, ``|A_k| = 1``)
and the orientation ``D_k`` (orthogonal). A model's three letters say whether each is
Equal across components, Varying, or the Identity (``I``): ``VEV`` has its own volume
and orientation per component and one shape for all.

Given the responsibilities, the M-step maximises the expected complete-data
log-likelihood in the covariances,

    Q(Sigma) = -1/2 sum_k [ n_k log|Sigma_k| + tr(S_k Sigma_k^{-1}) ],

where ``n_k = sum_i r_ik`` and ``S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)'`` is the
scatter of component k about its (already updated) mean; the means and weights do not
depend on the model. The functions below take the scatters in the storage that the
model needs (traces for the spherical models, diagonals for the diagonal ones, full
matrices otherwise) and return the covariances in the storage of the layout that the
registry :data:`bayesgmm._gaussian.LAYOUTS` gives the model: ``(K,)`` for EII and VII,
``(K, d)`` for the diagonal models, ``(d, d)`` for EEE and ``(K, d, d)`` for the others.

Closed forms are those of Celeux and Govaert (1995), section 3 and table 1; VEI, VEE
and VEV alternate exact maximisations in the volumes and in the shared shape (or
shared matrix) until Q stops increasing; EVE and VVE, whose shared orientation has no
closed form, alternate their eigenvalues with Jacobi sweeps of plane rotations, each
the exact minimiser in its plane (Flury and Gautschi 1986): like the
majorisation-minimisation step of Browne and McNicholas (2014, section 3) that mclust
uses, a sweep never decreases Q, and it needs far fewer steps (about ten per M-step
from the previous orientation). Each iterative M-step can start from the previous covariances, so
every inner step increases Q from the previous parameters and EM stays monotone
(a generalised EM, Dempster, Laird and Rubin 1977, section 3).

The parameter counts are mclust's ``nVarParams`` (Scrucca et al. 2016, table 3).

References
----------
Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models. Pattern
Recognition 28(5), 781-793. doi:10.1016/0031-3203(94)00125-6
Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal components in
high dimensions. Advances in Data Analysis and Classification 8(2), 217-226.
doi:10.1007/s11634-013-0139-1
Flury, B. N. and Gautschi, W. (1986). An algorithm for simultaneous orthogonal
transformation of several positive definite symmetric matrices to nearly diagonal form.
SIAM Journal on Scientific and Statistical Computing 7(1), 169-184. doi:10.1137/0907013
Scrucca, L., Fop, M., Murphy, T. B. and Raftery, A. E. (2016). mclust 5: clustering,
classification and density estimation using Gaussian finite mixture models. The R
Journal 8(1), 289-317. doi:10.32614/RJ-2016-021
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MCLUST_MODELS",
    "M_STEPS",
    "PRIOR_MODELS",
    "ConjugatePrior",
    "ResolvedPrior",
    "expected_log_likelihood",
    "map_m_step",
    "n_covariance_parameters",
    "resolve_prior",
]

#: The fourteen models in mclust's order (``mclust.options("emModelNames")``).
MCLUST_MODELS = (
    "EII",
    "VII",
    "EEI",
    "VEI",
    "EVI",
    "VVI",
    "EEE",
    "VEE",
    "EVE",
    "VVE",
    "EEV",
    "VEV",
    "EVV",
    "VVV",
)

# Inner iterations of the iterative M-steps stop when Q changes by less than this
# fraction of its size, or after _MAX_INNER steps (each step increases Q, so stopping
# early still leaves a generalised EM).
_INNER_TOL = 1e-10
_MAX_INNER = 500


# ------------------------------------------------------------------ helpers
def _geometric_mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """``prod(values)^(1/m)`` along ``axis``, computed in logs; 0 when a value is 0."""
    with np.errstate(divide="ignore"):
        return np.exp(np.log(values).mean(axis=axis))


def _sorted_eigh(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors of symmetric matrices."""
    values, vectors = np.linalg.eigh(matrices)
    return np.maximum(values[..., ::-1], 0.0), vectors[..., ::-1]


def _compose(orientation: np.ndarray, eigenvalues: np.ndarray) -> np.ndarray:
    """``D diag(a) D'`` for stacked ``D`` (K, d, d) or one ``D`` (d, d), and ``a`` (K, d)."""
    orientation = np.broadcast_to(orientation, eigenvalues.shape + eigenvalues.shape[-1:])
    matrices = np.einsum("kij,kj,klj->kil", orientation, eigenvalues, orientation)
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


def _converged(previous: float, current: float) -> bool:
    return abs(current - previous) <= _INNER_TOL * (1.0 + abs(current))


def _volumes_from(previous: np.ndarray | None, n_components: int) -> np.ndarray | None:
    """``|Sigma_k|^(1/d)`` of previous full covariances, if usable as a start."""
    if previous is None or previous.ndim != 3 or previous.shape[0] != n_components:
        return None
    sign, logdet = np.linalg.slogdet(previous)
    if not np.all(sign > 0) or not np.isfinite(logdet).all():
        return None
    return np.exp(logdet / previous.shape[-1])


def _shared_eigenvectors(previous: np.ndarray | None, n_components: int) -> np.ndarray | None:
    """Recover the common eigenvectors ``D`` of previous covariances ``D Delta_k D'``.

    A fixed irregular combination ``sum_k c_k Sigma_k`` has the eigenvectors ``D``
    and, unlike one ``Sigma_k``, distinct eigenvalues unless by coincidence, so
    ``D`` is recovered even when a component's own eigenvalues (nearly) tie.
    None when the previous covariances are missing or share no eigenvectors.
    """
    if previous is None or previous.ndim != 3 or previous.shape[0] != n_components:
        return None
    if not np.isfinite(previous).all():
        return None
    weights = 1.0 + (np.arange(n_components) * 0.6180339887498949) % 1.0
    _, vectors = _sorted_eigh(np.einsum("k,kij->ij", weights, previous))
    rotated = np.einsum("ji,kjl,lm->kim", vectors, previous, vectors)
    off_diagonal = rotated * (1.0 - np.eye(previous.shape[-1]))
    scale = np.abs(np.diagonal(rotated, axis1=1, axis2=2)).max()
    if np.abs(off_diagonal).max() > 1e-8 * scale:
        return None
    return vectors


def expected_log_likelihood(scatter: np.ndarray, nk: np.ndarray, covariances: np.ndarray) -> float:
    """``Q = -1/2 sum_k [n_k log|Sigma_k| + tr(S_k Sigma_k^{-1})]`` for full matrices.

    The quantity every M-step here maximises (up to terms free of the covariances).

    Parameters
    ----------
    scatter : ndarray of shape (K, d, d)
        ``S_k``.
    nk : ndarray of shape (K,)
    covariances : ndarray of shape (K, d, d)
    """
    sign, logdet = np.linalg.slogdet(covariances)
    if not np.all(sign > 0):
        return -np.inf
    trace = np.einsum("kij,kji->k", scatter, np.linalg.inv(covariances))
    return float(-0.5 * (nk @ logdet + trace.sum()))


# -------------------------------------------------------- spherical models
def m_step_eii(traces: np.ndarray, nk: np.ndarray, d: int) -> np.ndarray:
    """EII, ``Sigma_k = lambda I``: ``lambda = sum_k tr(S_k) / (n d)``."""
    return np.full(nk.shape, traces.sum() / (nk.sum() * d))


def m_step_vii(traces: np.ndarray, nk: np.ndarray, d: int) -> np.ndarray:
    """VII, ``Sigma_k = lambda_k I``: ``lambda_k = tr(S_k) / (n_k d)``."""
    return traces / (nk * d)


# ---------------------------------------------------------- diagonal models
def m_step_eei(diagonals: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """EEI, ``Sigma_k = lambda B``: ``lambda B = diag(sum_k S_k) / n``, the same for all k."""
    shared = diagonals.sum(axis=0) / nk.sum()
    return np.broadcast_to(shared, diagonals.shape).copy()


def m_step_vvi(diagonals: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """VVI, ``Sigma_k = lambda_k B_k``: ``diag(S_k) / n_k``."""
    return diagonals / nk[:, None]


def m_step_evi(diagonals: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """EVI, ``Sigma_k = lambda B_k`` (Celeux and Govaert 1995, table 1).

    ``B_k = diag(S_k) / |diag(S_k)|^(1/d)`` and ``lambda = sum_k |diag(S_k)|^(1/d) / n``.
    """
    volumes = _geometric_mean(diagonals)
    with np.errstate(divide="ignore", invalid="ignore"):
        shapes = diagonals / volumes[:, None]
    return volumes.sum() / nk.sum() * shapes


def m_step_vei(
    diagonals: np.ndarray, nk: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """VEI, ``Sigma_k = lambda_k B``: alternate the two exact conditional maximisers.

    Given the volumes, ``B = diag(sum_k S_k / lambda_k)`` scaled to ``|B| = 1``; given
    ``B``, ``lambda_k = tr(S_k B^{-1}) / (d n_k)`` (Celeux and Govaert 1995, section 3.2).
    ``previous`` (K, d) supplies the starting volumes.
    """
    d = diagonals.shape[1]
    if previous is not None and previous.shape == diagonals.shape and np.all(previous > 0):
        volumes = _geometric_mean(previous)
    else:
        volumes = diagonals.sum(axis=1) / (d * nk)
    objective = np.inf
    for _ in range(_MAX_INNER):
        shape = (diagonals / volumes[:, None]).sum(axis=0)
        shape = shape / _geometric_mean(shape)
        volumes = (diagonals / shape).sum(axis=1) / (d * nk)
        with np.errstate(divide="ignore"):
            current = float(d * nk @ np.log(volumes) + d * nk.sum())
        if _converged(objective, current):
            break
        objective = current
    return volumes[:, None] * shape


# -------------------------------------------------------------- full models
def m_step_eee(scatter: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """EEE, one matrix for all: ``sum_k S_k / n`` (storage (d, d))."""
    return scatter.sum(axis=0) / nk.sum()


def m_step_vvv(scatter: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """VVV, unconstrained: ``S_k / n_k``."""
    return scatter / nk[:, None, None]


def m_step_eev(scatter: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """EEV, ``Sigma_k = lambda D_k A D_k'`` (Celeux and Govaert 1995, section 3.3).

    With ``S_k = L_k Omega_k L_k'`` (eigenvalues in decreasing order), ``D_k = L_k``
    and ``lambda A = sum_k Omega_k / n``.
    """
    eigenvalues, vectors = _sorted_eigh(scatter)
    shared = eigenvalues.sum(axis=0) / nk.sum()
    return _compose(vectors, np.broadcast_to(shared, eigenvalues.shape))


def m_step_evv(scatter: np.ndarray, nk: np.ndarray) -> np.ndarray:
    """EVV, ``Sigma_k = lambda C_k`` with ``|C_k| = 1``.

    ``C_k = S_k / |S_k|^(1/d)`` and ``lambda = sum_k |S_k|^(1/d) / n``: for a fixed
    ``lambda``, ``tr(S_k C_k^{-1})`` under ``|C_k| = 1`` is smallest at ``C_k``
    proportional to ``S_k`` (Celeux and Govaert 1995, section 3.3).
    """
    eigenvalues, _ = _sorted_eigh(scatter)
    volumes = _geometric_mean(eigenvalues)
    with np.errstate(divide="ignore", invalid="ignore"):
        shapes = scatter / volumes[:, None, None]
    return volumes.sum() / nk.sum() * shapes


def m_step_vev(
    scatter: np.ndarray, nk: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """VEV, ``Sigma_k = lambda_k D_k A D_k'`` (Celeux and Govaert 1995, section 3.3).

    ``D_k`` are the eigenvectors of ``S_k`` (eigenvalues ``Omega_k`` in decreasing
    order) whatever ``A`` and ``lambda_k``; then alternate ``A = sum_k Omega_k /
    lambda_k`` scaled to ``|A| = 1`` and ``lambda_k = tr(Omega_k A^{-1}) / (d n_k)``.
    ``previous`` (K, d, d) supplies the starting volumes.
    """
    d = scatter.shape[-1]
    eigenvalues, vectors = _sorted_eigh(scatter)
    volumes = _volumes_from(previous, nk.shape[0])
    if volumes is None:
        volumes = eigenvalues.sum(axis=1) / (d * nk)
    objective = np.inf
    for _ in range(_MAX_INNER):
        shape = (eigenvalues / volumes[:, None]).sum(axis=0)
        shape = shape / _geometric_mean(shape)
        volumes = (eigenvalues / shape).sum(axis=1) / (d * nk)
        with np.errstate(divide="ignore"):
            current = float(d * nk @ np.log(volumes))
        if _converged(objective, current):
            break
        objective = current
    return _compose(vectors, volumes[:, None] * shape)


def m_step_vee(
    scatter: np.ndarray, nk: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """VEE, ``Sigma_k = lambda_k C`` with one ``C`` (``|C| = 1``) for all components.

    Alternate ``C = sum_k S_k / lambda_k`` scaled to ``|C| = 1`` and ``lambda_k =
    tr(S_k C^{-1}) / (d n_k)``, each the exact maximiser of Q given the other
    (Celeux and Govaert 1995, section 3.3). ``previous`` supplies the starting volumes.
    """
    d = scatter.shape[-1]
    volumes = _volumes_from(previous, nk.shape[0])
    if volumes is None:
        volumes = np.trace(scatter, axis1=1, axis2=2) / (d * nk)
    objective = np.inf
    for _ in range(_MAX_INNER):
        common = (scatter / volumes[:, None, None]).sum(axis=0)
        _, logdet = np.linalg.slogdet(common)
        common = common / np.exp(logdet / d)
        volumes = np.einsum("kij,ji->k", scatter, np.linalg.inv(common)) / (d * nk)
        with np.errstate(divide="ignore"):
            current = float(d * nk @ np.log(volumes))
        if _converged(objective, current):
            break
        objective = current
    common = 0.5 * (common + common.T)
    return volumes[:, None, None] * common


def _round_robin(d: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split the pairs of ``d`` axes into ``d - 1`` (``d`` if odd) rounds of disjoint pairs.

    The circle method of round-robin tournaments: disjoint plane rotations commute,
    so each round is applied at once.
    """
    players = list(range(d + d % 2))
    rounds = []
    for _ in range(len(players) - 1):
        half = len(players) // 2
        pairs = [(players[i], players[-1 - i]) for i in range(half)]
        pairs = [(min(p), max(p)) for p in pairs if max(p) < d]
        if pairs:
            first, second = zip(*pairs, strict=True)
            rounds.append((np.array(first), np.array(second)))
        players = [players[0], players[-1], *players[1:-1]]
    return rounds


def _common_orientation(
    scatter: np.ndarray,
    nk: np.ndarray,
    previous: np.ndarray | None,
    eigenvalues_given: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Covariances ``D Delta_k D'`` with one orientation ``D``: EVE and VVE.

    Given ``D`` the model's eigenvalues ``Delta_k = eigenvalues_given(diag(D' S_k
    D))`` are its exact maximiser; given the ``Delta_k``, ``D`` must minimise
    ``f(D) = sum_k tr(D' S_k D Delta_k^{-1})`` over orthogonal matrices, which has
    no closed form. Browne and McNicholas (2014) decrease ``f`` by
    majorisation-minimisation; here each sweep instead rotates every pair of
    columns ``(j, l)`` of ``D`` by the angle that minimises ``f`` exactly in that
    plane (a Jacobi sweep, as in Flury and Gautschi's algorithm for common
    principal components): with ``R_k = D' S_k D`` and ``m_k = 1 / Delta_k``,
    ``f`` along the rotation by ``theta`` is ``const + P cos 2theta + Q sin 2theta``
    with ``P = sum_k (m_kj - m_kl)(R_k,jj - R_k,ll) / 2`` and ``Q = sum_k (m_kj -
    m_kl) R_k,jl``, smallest at ``2theta = atan2(-Q, -P)``. Like the MM step it never
    increases ``f`` (theta = 0 is allowed), and it needs far fewer sweeps than MM
    steps. Sweeps and eigenvalue updates alternate until Q stops increasing.
    ``previous`` (K, d, d) supplies the starting orientation (see
    :func:`_shared_eigenvectors`); otherwise the eigenvectors of ``sum_k S_k /
    n_k`` do.

    References
    ----------
    Flury, B. N. and Gautschi, W. (1986). An algorithm for simultaneous orthogonal
    transformation of several positive definite symmetric matrices to nearly
    diagonal form. SIAM Journal on Scientific and Statistical Computing 7(1),
    169-184. doi:10.1137/0907013
    """
    d = scatter.shape[-1]
    orientation = _shared_eigenvectors(previous, nk.shape[0])
    if orientation is None:
        _, orientation = _sorted_eigh((scatter / nk[:, None, None]).sum(axis=0))
    rotated = np.einsum("ji,kjl,lm->kim", orientation, scatter, orientation)
    rounds = _round_robin(d)

    def fit_eigenvalues() -> tuple[np.ndarray, float]:
        diagonal = np.diagonal(rotated, axis1=1, axis2=2)
        eigenvalues = eigenvalues_given(diagonal)
        with np.errstate(divide="ignore"):
            value = float(nk @ np.log(eigenvalues).sum(axis=1) + (diagonal / eigenvalues).sum())
        return eigenvalues, value

    eigenvalues, objective = fit_eigenvalues()
    for _ in range(_MAX_INNER):
        weights = 1.0 / eigenvalues
        for first, second in rounds:
            contrast = weights[:, first] - weights[:, second]
            spread = rotated[:, first, first] - rotated[:, second, second]
            p = 0.5 * (contrast * spread).sum(axis=0)
            q = (contrast * rotated[:, first, second]).sum(axis=0)
            angle = 0.5 * np.arctan2(-q, -p)
            rotation = np.eye(d)
            rotation[first, first] = rotation[second, second] = np.cos(angle)
            rotation[second, first] = np.sin(angle)
            rotation[first, second] = -rotation[second, first]
            orientation = orientation @ rotation
            rotated = rotation.T @ rotated @ rotation
        eigenvalues, current = fit_eigenvalues()
        if _converged(objective, current):
            break
        objective = current
    return _compose(orientation, eigenvalues)


def m_step_vve(
    scatter: np.ndarray, nk: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """VVE, ``Sigma_k = D Delta_k D'``: given ``D``, ``Delta_k = diag(D' S_k D) / n_k``."""
    return _common_orientation(scatter, nk, previous, lambda rotated: rotated / nk[:, None])


def m_step_eve(
    scatter: np.ndarray, nk: np.ndarray, previous: np.ndarray | None = None
) -> np.ndarray:
    """EVE, ``Sigma_k = lambda D A_k D'``.

    Given ``D``, with ``E_k = diag(D' S_k D)``: ``A_k = E_k / |E_k|^(1/d)`` and
    ``lambda = sum_k |E_k|^(1/d) / n``, as in EVI rotated by ``D``.
    """
    return _common_orientation(scatter, nk, previous, lambda rotated: m_step_evi(rotated, nk))


#: Model name -> (storage family, M-step). Families: "spherical" takes traces (K,),
#: "diag" diagonals (K, d), "tied" and "full" scatter matrices (K, d, d).
M_STEPS: dict[str, tuple[str, Callable[..., np.ndarray]]] = {
    "EII": ("spherical", m_step_eii),
    "VII": ("spherical", m_step_vii),
    "EEI": ("diag", m_step_eei),
    "VEI": ("diag", m_step_vei),
    "EVI": ("diag", m_step_evi),
    "VVI": ("diag", m_step_vvi),
    "EEE": ("tied", m_step_eee),
    "VEE": ("full", m_step_vee),
    "EVE": ("full", m_step_eve),
    "VVE": ("full", m_step_vve),
    "EEV": ("full", m_step_eev),
    "VEV": ("full", m_step_vev),
    "EVV": ("full", m_step_evv),
    "VVV": ("full", m_step_vvv),
}

#: Models whose M-step iterates and can start from the previous covariances.
ITERATIVE = frozenset({"VEI", "VEE", "EVE", "VVE", "VEV"})


def n_covariance_parameters(model: str, n_components: int, n_features: int) -> int:
    """Free parameters of the covariances, as mclust's ``nVarParams``.

    A volume counts 1, a shape ``d - 1`` (its determinant is 1), an orientation
    ``d (d - 1) / 2``; each once if Equal, ``K`` times if Varying, not at all if
    ``I``. EVV has ``K`` free matrices of determinant ``lambda^d``: ``1 - K + K d (d + 1) / 2``.
    """
    k, d = n_components, n_features
    volume, shape, orientation = model[0], model[1], model[2]
    count = {"E": 1, "V": k}[volume]
    count += {"I": 0, "E": 1, "V": k}[shape] * (d - 1)
    count += {"I": 0, "E": 1, "V": k}[orientation] * (d * (d - 1) // 2)
    return int(count)


# ------------------------------------------------------------ conjugate prior
#: Models for which mclust defines its conjugate prior (``mstep*`` with a ``prior``).
PRIOR_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")


@dataclass(frozen=True)
class ConjugatePrior:
    """mclust's conjugate prior on the component means and covariances (Fraley & Raftery 2007).

    ``mu_k | Sigma_k ~ N(mean, Sigma_k / shrinkage)`` and ``Sigma_k`` inverse
    Wishart with ``dof`` degrees of freedom and scale ``scale`` (inverse gamma
    on each variance for the spherical and diagonal models); the mixing weights
    get no prior. Every field left as None takes mclust's default
    (``defaultPrior``), computed from the data at ``fit``:

    * ``shrinkage`` 0.01;
    * ``mean`` the data mean;
    * ``dof`` ``d + 2``;
    * ``scale`` ``var(X) / K^(2/d)``: the sample covariance matrix (``ddof=1``;
      its diagonal when n <= d) for EEE, EEV, VEV and VVV, and the mean of the
      feature variances, a number, for EII, VII, EEI, VEI, EVI and VVI.

    Parameters
    ----------
    shrinkage : float, optional
        ``kappa_P`` > 0: how many observations the prior mean is worth.
    mean : array-like of shape (n_features,), optional
    dof : float, optional
        ``nu_P``, greater than ``d - 1``.
    scale : float or array-like of shape (n_features, n_features), optional
        ``Lambda_P`` (symmetric positive definite), or for the spherical and
        diagonal models the inverse-gamma scale ``zeta_P^2`` (a positive number);
        a number given for a full model stands for ``scale * I``.

    References
    ----------
    Fraley, C. and Raftery, A. E. (2007). Bayesian regularization for normal
    mixture estimation and model-based clustering. Journal of Classification
    24(2), 155-181. doi:10.1007/s00357-007-0004-5

    Examples
    --------
    >>> from bayesgmm import ConjugatePrior, EMGaussianMixture
    >>> from bayesgmm.datasets import load_iris
    >>> X, _ = load_iris()
    >>> gm = EMGaussianMixture(2, covariance_type="VEV", prior=ConjugatePrior(dof=8.0),
    ...                        random_state=0).fit(X)
    >>> gm.prior
    ConjugatePrior(shrinkage=None, mean=None, dof=8.0, scale=None)
    """

    shrinkage: float | None = None
    mean: Any = None
    dof: float | None = None
    scale: Any = None


@dataclass(frozen=True)
class ResolvedPrior:
    """A :class:`ConjugatePrior` with every value filled in, in the centred frame of the fit."""

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: np.ndarray  # (d, d) for the full-matrix models, () for spherical and diagonal


def _statistics_about_means(
    nk: np.ndarray, sum_x: np.ndarray, sum_xx: np.ndarray, family: str
) -> tuple[np.ndarray, np.ndarray]:
    """Component means ``xbar_k`` and scatters ``W_k`` about them, in the family's storage."""
    xbar = sum_x / nk[:, None]
    if family == "spherical":
        scatter = np.maximum(sum_xx - nk * (xbar**2).sum(axis=1), 0.0)
    elif family == "diag":
        scatter = np.maximum(sum_xx - nk[:, None] * xbar**2, 0.0)
    else:
        scatter = sum_xx - nk[:, None, None] * xbar[:, :, None] * xbar[:, None, :]
        scatter = 0.5 * (scatter + np.swapaxes(scatter, 1, 2))
    return xbar, scatter


def _outer(vectors: np.ndarray, family: str) -> np.ndarray:
    """``v v'`` per row, in the family's storage (its trace, its diagonal or the matrix)."""
    if family == "spherical":
        return (vectors**2).sum(axis=1)
    if family == "diag":
        return vectors**2
    return vectors[:, :, None] * vectors[:, None, :]


def map_m_step(
    model: str,
    nk: np.ndarray,
    sum_x: np.ndarray,
    sum_xx: np.ndarray,
    reg: np.ndarray,
    prior: ResolvedPrior,
    previous: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-mode means and covariances under mclust's conjugate prior.

    The formulas are those of the M-steps inside mclust's EM with a prior
    (the Fortran ``me*p`` that ``Mclust(..., prior = priorControl())`` runs,
    mclust 6.0), recovered from and checked against mclust's fits on iris for
    several numbers of components and features. For EEI, EVI and EEV they
    differ from mclust's stand-alone ``mstep*`` functions with a prior, which
    divide by other counts. With ``c_k = kappa n_k / (kappa + n_k)``, ``B_k =
    c_k (xbar_k - mu_P)(xbar_k - mu_P)'`` and ``W_k`` the scatter about
    ``xbar_k``, the means are shrunk to ``(n_k xbar_k + kappa mu_P) / (n_k +
    kappa)`` (Fraley and Raftery 2007, table 2), except by EEI, which keeps
    ``xbar_k`` as mclust does, and the covariances are

    * VVV: ``(Lambda + W_k + B_k) / (n_k + nu + d + 2)``;
    * EEE: ``(Lambda + sum_k (W_k + B_k)) / (n + nu + d + 1 + K)``;
    * VII: ``(zeta + tr(W_k + B_k)) / (nu + 2 + (n_k + 1) d)``;
    * EII: ``sum_k (tr W~_k + tr B_k) / (nu + 2 + (n + K) d)``, where ``W~_k`` is the
      scatter about the shrunken mean and, as in mclust's ``mseiip``, ``zeta`` does
      not enter;
    * VVI: ``(zeta + diag(W_k + B_k)) / (nu + 3 + n_k)``;
    * EEI: ``(zeta + sum_k diag(W_k + B_k)) / (nu + 2 + n)``;
    * EVI, VEI, EEV, VEV: the model's M-step on the regularised scatters
      ``T_k`` with counts ``m_k``: EVI ``T_k = zeta + diag(W_k + B_k)`` and
      ``sum_k m_k = n + nu + 2``; VEI the same ``T_k`` and ``d m_k = d n_k + nu
      + 3``; EEV ``T_k = Lambda + W_k + B_k`` and ``sum_k m_k = n + nu + d + 2``;
      VEV the same ``T_k`` and ``m_k = n_k`` (the prior's degrees of freedom do
      not enter mclust's volumes).

    ``reg`` is added to the diagonal of ``W_k`` as ``n_k reg``, as in the
    maximum-likelihood M-step (0 gives mclust's estimates).

    Parameters
    ----------
    model : str
        One of :data:`PRIOR_MODELS`.
    nk, sum_x, sum_xx
        Sufficient statistics in the model's storage (traces, diagonals or matrices).
    reg : ndarray of shape (n_features,)
    prior : ResolvedPrior
    previous : ndarray, optional
        Previous covariances, where VEI and VEV start.

    Returns
    -------
    means : ndarray of shape (K, d)
    covariances : ndarray in the model's storage
    """
    family = M_STEPS[model][0]
    k, d = sum_x.shape
    n = nk.sum()
    kappa, nu, mu_p = prior.shrinkage, prior.dof, prior.mean
    xbar, scatter = _statistics_about_means(nk, sum_x, sum_xx, family)
    if family == "spherical":
        scatter = scatter + nk * reg.sum()
    elif family == "diag":
        scatter = scatter + nk[:, None] * reg
    else:
        scatter = scatter + nk[:, None, None] * np.diag(reg)
    means = (nk[:, None] * xbar + kappa * mu_p) / (nk + kappa)[:, None]
    between = (kappa * nk / (kappa + nk)).reshape((-1,) + (1,) * (scatter.ndim - 1)) * _outer(
        xbar - mu_p, family
    )
    scale = prior.scale
    if model == "VVV":
        return means, (scale + scatter + between) / (nk + nu + d + 2)[:, None, None]
    if model == "EEE":
        return means, (scale + (scatter + between).sum(axis=0)) / (n + nu + d + 1 + k)
    if model == "VII":
        return means, (scale + scatter + between) / (nu + 2 + (nk + 1) * d)
    if model == "EII":
        about_shrunken = scatter + nk * ((xbar - means) ** 2).sum(axis=1)
        value = (about_shrunken + between).sum() / (nu + 2 + (n + k) * d)
        return means, np.full(k, value)
    if model == "VVI":
        return means, (scale + scatter + between) / (nu + 3 + nk)[:, None]
    if model == "EEI":  # mclust's meeeip keeps the means unshrunken
        shared = (scale + (scatter + between).sum(axis=0)) / (nu + 2 + n)
        return xbar, np.broadcast_to(shared, (k, d)).copy()
    if model == "EVI":
        return means, m_step_evi(scale + scatter + between, nk + (nu + 2) / k)
    if model == "VEI":
        return means, m_step_vei(scale + scatter + between, nk + (nu + 3) / d, previous)
    if model == "EEV":
        return means, m_step_eev(scale + scatter + between, nk + (nu + d + 2) / k)
    if model == "VEV":
        return means, m_step_vev(scale + scatter + between, nk, previous)
    raise ValueError(f"prior: mclust defines no conjugate prior for {model!r}")


def resolve_prior(
    prior: ConjugatePrior,
    model: str,
    n_components: int,
    data_mean: np.ndarray,
    data_covariance: np.ndarray,
    n_samples: int,
) -> ResolvedPrior:
    """Fill in mclust's defaults (``defaultPrior``) and check the values given.

    ``data_covariance`` is the sample covariance of the data (``ddof=1``); the
    returned mean is relative to ``data_mean``, the centre of EM's frame.

    Raises
    ------
    ValueError
        Naming ``prior`` and the value that is out of range.
    """
    d = data_mean.shape[0]
    family = M_STEPS[model][0]
    shrinkage = 0.01 if prior.shrinkage is None else float(prior.shrinkage)
    if not (np.isfinite(shrinkage) and shrinkage > 0):
        raise ValueError(f"prior: expected a positive finite shrinkage, got {prior.shrinkage!r}")
    if prior.mean is None:
        mean = np.zeros(d)
    else:
        mean = np.asarray(prior.mean, dtype=float)
        if mean.shape != (d,) or not np.isfinite(mean).all():
            raise ValueError(
                f"prior: expected a finite mean of shape ({d},), got shape {mean.shape}"
            )
        mean = mean - data_mean
    dof = float(d + 2) if prior.dof is None else float(prior.dof)
    if not (np.isfinite(dof) and dof > d - 1):
        raise ValueError(f"prior: expected dof > n_features - 1 = {d - 1}, got {prior.dof!r}")
    factor = (1.0 / n_components) ** (2.0 / d)
    matrix_scale = family in ("full", "tied")
    if prior.scale is None:
        if matrix_scale:
            covariance = data_covariance if n_samples > d else np.diag(np.diag(data_covariance))
            scale = factor * covariance
        else:
            scale = np.asarray(factor * np.trace(data_covariance) / d)
    else:
        scale = np.asarray(prior.scale, dtype=float)
        if matrix_scale and scale.ndim == 0:
            scale = float(scale) * np.eye(d)
        expected = (d, d) if matrix_scale else ()
        if scale.shape != expected:
            raise ValueError(
                f"prior: expected a scale of shape {expected} for covariance model "
                f"{model!r}, got shape {scale.shape}"
            )
        if matrix_scale:
            symmetric = np.allclose(scale, scale.T, rtol=1e-8, atol=0.0)
            if not symmetric or not np.all(np.linalg.eigvalsh(scale) > 0):
                raise ValueError("prior: expected a symmetric positive definite scale matrix")
        elif not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"prior: expected a positive scale, got {prior.scale!r}")
    return ResolvedPrior(shrinkage, mean, dof, scale)
