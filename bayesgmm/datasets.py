"""Shipped public datasets and simulators with known parameters.

Nothing here downloads anything: the real data sets are CSVs inside the package
(``bayesgmm/data/``, with its source and licence in the README there), and the
simulators draw from NumPy generators seeded by ``random_state``.
"""

from __future__ import annotations

from importlib import resources
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesgmm._gaussian import COVARIANCE_TYPES
from bayesgmm._validation import (
    check_float,
    check_int,
    check_option,
    check_random_state,
    message,
)
from bayesgmm.params import GaussianMixtureParams

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FAITHFUL_COLUMNS",
    "IRIS_COLUMNS",
    "load_faithful",
    "load_galaxies",
    "load_iris",
    "make_mixture",
    "make_moons",
    "make_stretched_blobs",
    "mixture_separation",
]

FAITHFUL_COLUMNS = ("eruptions", "waiting")
IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")

# Eigenvalues of the simulated covariances are drawn log-uniformly from this range.
_EIGENVALUE_RANGE = (0.2, 1.0)


def load_faithful(as_frame: bool = False) -> np.ndarray | pd.DataFrame:
    """Load the Old Faithful geyser data: 272 eruptions, two features.

    Each row is one eruption of the Old Faithful geyser (Yellowstone National
    Park, August 1985): ``eruptions`` is its duration and ``waiting`` the time
    to the next eruption, both in minutes. The scatter plot shows two clear
    groups, short eruptions after short waits and long after long, which makes
    it the classic first example for mixture models. The table is R's
    ``datasets::faithful`` (Härdle 1991); the longer series it comes from is
    analysed by Azzalini and Bowman (1990).

    Parameters
    ----------
    as_frame : bool, default False
        If true, return a :class:`pandas.DataFrame` with the columns
        ``eruptions`` and ``waiting``; otherwise a float array.

    Returns
    -------
    X : ndarray of shape (272, 2) or DataFrame
        Eruption duration and waiting time, in minutes, in the original order.

    References
    ----------
    .. [1] A. Azzalini and A. W. Bowman (1990). A look at some data on the Old
       Faithful geyser. Applied Statistics 39(3), 357-365. doi:10.2307/2347385
    .. [2] W. Härdle (1991). Smoothing Techniques with Implementation in S.
       Springer. doi:10.1007/978-1-4612-4432-5

    Examples
    --------
    >>> from bayesgmm.datasets import load_faithful
    >>> X = load_faithful()
    >>> X.shape
    (272, 2)
    >>> X[0].tolist()
    [3.6, 79.0]
    >>> load_faithful(as_frame=True).columns.tolist()
    ['eruptions', 'waiting']
    """
    if not isinstance(as_frame, (bool, np.bool_)):
        raise TypeError(message("as_frame", "True or False", as_frame))
    with resources.files("bayesgmm").joinpath("data", "faithful.csv").open("r") as f:
        X = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.float64)
    if as_frame:
        import pandas as pd

        return pd.DataFrame(X, columns=list(FAITHFUL_COLUMNS))
    return X


def load_iris(as_frame: bool = False) -> tuple[np.ndarray, np.ndarray] | pd.DataFrame:
    """Load Fisher's iris data: 150 flowers, four measurements and the species.

    Edgar Anderson measured the length and width of the sepals and petals, in
    centimetres, of 50 flowers of each of three species of iris (*setosa*,
    *versicolor*, *virginica*) growing in the Gaspé peninsula; Fisher (1936)
    published the table to introduce linear discriminant analysis. It is the
    usual test of model-based clustering: with all fourteen covariance models
    mclust's BIC picks VEV with two components (setosa apart, versicolor and
    virginica together). The values are R's ``datasets::iris``, which are also
    scikit-learn's (which corrected two rows of the UCI copy).

    Parameters
    ----------
    as_frame : bool, default False
        If true, return a :class:`pandas.DataFrame` with the columns
        ``sepal_length``, ``sepal_width``, ``petal_length``, ``petal_width``
        and ``species`` (categorical); otherwise an array and the labels.

    Returns
    -------
    X : ndarray of shape (150, 4)
        The measurements in centimetres, in the original order (50 of each
        species in turn). Only when ``as_frame`` is false.
    species : ndarray of shape (150,)
        ``"setosa"``, ``"versicolor"`` or ``"virginica"`` (str). Only when
        ``as_frame`` is false.
    frame : DataFrame
        Both together, when ``as_frame`` is true.

    References
    ----------
    .. [1] R. A. Fisher (1936). The use of multiple measurements in taxonomic
       problems. Annals of Eugenics 7(2), 179-188.
       doi:10.1111/j.1469-1809.1936.tb02137.x
    .. [2] E. Anderson (1935). The irises of the Gaspé peninsula. Bulletin of
       the American Iris Society 59, 2-5.

    Examples
    --------
    >>> from bayesgmm.datasets import load_iris
    >>> X, species = load_iris()
    >>> X.shape, species[:2].tolist()
    ((150, 4), ['setosa', 'setosa'])
    >>> load_iris(as_frame=True)["species"].value_counts().tolist()
    [50, 50, 50]
    """
    if not isinstance(as_frame, (bool, np.bool_)):
        raise TypeError(message("as_frame", "True or False", as_frame))
    with resources.files("bayesgmm").joinpath("data", "iris.csv").open("r") as f:
        table = np.loadtxt(f, delimiter=",", skiprows=1, dtype=str)
    X = table[:, :4].astype(np.float64)
    species = table[:, 4].astype(str)
    if as_frame:
        import pandas as pd

        frame = pd.DataFrame(X, columns=list(IRIS_COLUMNS))
        frame["species"] = pd.Categorical(species)
        return frame
    return X, species


def load_galaxies(as_frame: bool = False) -> np.ndarray | pd.DataFrame:
    """Load the galaxies data: velocities of 82 galaxies, one feature.

    Each value is the recession velocity, in km/s, of a galaxy in the Corona
    Borealis region, from a redshift survey (Postman, Huchra & Geller 1986) as
    tabulated by Roeder (1990). Groups of velocities correspond to clusters of
    galaxies at different distances, and how many there are is the classic
    hard question for mixture models: answers from 3 to 7 are published
    (Richardson & Green 1997; Grün, Malsiner-Walli & Frühwirth-Schnatter 2022).

    This is the version R ships as ``MASS::galaxies``, sorted, with its known
    typo: the 78th velocity is 26690 where Roeder's table has 26960. Many
    papers use one version and many the other; results on the two can differ
    in the tail.

    Parameters
    ----------
    as_frame : bool, default False
        If true, return a :class:`pandas.DataFrame` with the column ``velocity``;
        otherwise a float array.

    Returns
    -------
    X : ndarray of shape (82, 1) or DataFrame
        Velocities in km/s, sorted.

    References
    ----------
    .. [1] K. Roeder (1990). Density estimation with confidence sets exemplified by
       superclusters and voids in the galaxies. JASA 85(411), 617-624.
       doi:10.1080/01621459.1990.10474918
    .. [2] M. Postman, J. P. Huchra and M. J. Geller (1986). Probes of large-scale
       structure in the Corona Borealis region. The Astronomical Journal 92,
       1238-1247. doi:10.1086/114257
    .. [3] B. Grün, G. Malsiner-Walli and S. Frühwirth-Schnatter (2022). How many
       data clusters are in the Galaxy data set? Advances in Data Analysis and
       Classification 16, 325-349. doi:10.1007/s11634-021-00461-8

    Examples
    --------
    >>> from bayesgmm.datasets import load_galaxies
    >>> X = load_galaxies()
    >>> X.shape, X[77, 0]
    ((82, 1), np.float64(26690.0))
    """
    if not isinstance(as_frame, (bool, np.bool_)):
        raise TypeError(message("as_frame", "True or False", as_frame))
    with resources.files("bayesgmm").joinpath("data", "galaxies.csv").open("r") as f:
        X = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if as_frame:
        import pandas as pd

        return pd.DataFrame(X, columns=["velocity"])
    return X


def _random_covariances(
    rng: np.random.Generator, n_components: int, n_features: int, covariance_type: str
) -> np.ndarray:
    """Covariances in ``covariance_type`` layout with eigenvalues in ``_EIGENVALUE_RANGE``."""
    low, high = np.log(_EIGENVALUE_RANGE[0]), np.log(_EIGENVALUE_RANGE[1])
    if covariance_type == "spherical":
        return np.exp(rng.uniform(low, high, size=n_components))
    if covariance_type == "diag":
        return np.exp(rng.uniform(low, high, size=(n_components, n_features)))
    n_matrices = 1 if covariance_type == "tied" else n_components
    out = np.empty((n_matrices, n_features, n_features))
    for k in range(n_matrices):
        # A random orientation: Q from the QR decomposition of a Gaussian matrix,
        # with signs fixed so that Q is Haar distributed.
        q, r = np.linalg.qr(rng.standard_normal((n_features, n_features)))
        q = q * np.sign(np.diag(r))
        eigenvalues = np.exp(rng.uniform(low, high, size=n_features))
        cov = (q * eigenvalues) @ q.T
        out[k] = (cov + cov.T) / 2.0
    return out[0] if covariance_type == "tied" else out


def _largest_eigenvalues(covariances_full: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(covariances_full)[:, -1]


def mixture_separation(params: GaussianMixtureParams) -> float:
    """Dasgupta's separation ``c`` of a mixture: the smallest pairwise ``c_jk``.

    For two components, ``c_jk = ||mu_j - mu_k|| / sqrt(d * max(lambda_j,
    lambda_k))`` where ``lambda_j`` is the largest eigenvalue of ``Sigma_j`` and
    ``d`` the number of features. A mixture is *c-separated* when every pair has
    ``c_jk >= c``.

    Parameters
    ----------
    params : GaussianMixtureParams
        The mixture, with at least two components.

    Returns
    -------
    c : float
        The smallest pairwise separation.

    References
    ----------
    .. [1] S. Dasgupta (1999). Learning mixtures of Gaussians. 40th Annual
       Symposium on Foundations of Computer Science, 634-644.
       doi:10.1109/SFFCS.1999.814639

    Examples
    --------
    >>> from bayesgmm import GaussianMixtureParams
    >>> from bayesgmm.datasets import mixture_separation
    >>> p = GaussianMixtureParams([0.5, 0.5], [[0.0], [3.0]], [1.0, 1.0], "spherical")
    >>> mixture_separation(p)
    3.0
    """
    if params.n_components < 2:
        raise ValueError(
            message(
                "params",
                "a mixture with at least 2 components",
                f"{params.n_components} component",
                raw=True,
            )
        )
    largest = _largest_eigenvalues(params.full_covariances())
    d = params.n_features
    return float(
        min(
            np.linalg.norm(params.means[j] - params.means[k])
            / np.sqrt(d * max(largest[j], largest[k]))
            for j, k in combinations(range(params.n_components), 2)
        )
    )


def make_mixture(
    n_samples: int,
    n_components: int = 3,
    n_features: int = 2,
    *,
    covariance_type: str = "full",
    separation: float = 2.0,
    weights: Any = None,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray, GaussianMixtureParams]:
    """Draw data from a random Gaussian mixture whose parameters are returned.

    Overlap is controlled by Dasgupta's separation [1]_: for components ``j``
    and ``k`` let ``c_jk = ||mu_j - mu_k|| / sqrt(d * max(lambda_j, lambda_k))``,
    where ``lambda_j`` is the largest eigenvalue of ``Sigma_j``. The means are
    drawn at random and then scaled so that the smallest ``c_jk`` equals
    ``separation`` exactly (see :func:`mixture_separation`). As a guide, with
    three components in two dimensions the Bayes classifier (the true mixture's
    own ``predict``) mislabels on average about 32% of the points at
    ``separation=0.5``, 17% at 1, 3% at 2 and under 1% at 3 (20 seeds of 2000
    points each).

    Covariances have eigenvalues drawn log-uniformly between 0.2 and 1 and a
    random orientation (``full`` and ``tied``), axis-aligned (``diag``) or
    isotropic (``spherical``).

    Parameters
    ----------
    n_samples : int
        Number of points drawn.
    n_components : int, default 3
        Number of components K.
    n_features : int, default 2
        Number of features d.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Layout of the covariances of the mixture returned.
    separation : float, default 2.0
        Dasgupta's ``c``: the smallest pairwise separation, > 0. Ignored when
        ``n_components`` is 1.
    weights : array-like of shape (n_components,), optional
        Mixing weights; by default drawn from a Dirichlet distribution with all
        concentrations 10 (weights of similar but unequal size).
    random_state : None, int or numpy.random.Generator
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The points, grouped by component (shuffle them if order matters).
    labels : ndarray of shape (n_samples,)
        The component that generated each point.
    params : GaussianMixtureParams
        The true mixture.

    References
    ----------
    .. [1] S. Dasgupta (1999). Learning mixtures of Gaussians. 40th Annual
       Symposium on Foundations of Computer Science, 634-644.
       doi:10.1109/SFFCS.1999.814639

    Examples
    --------
    >>> from bayesgmm.datasets import make_mixture, mixture_separation
    >>> X, labels, params = make_mixture(500, 3, separation=1.5, random_state=0)
    >>> X.shape, labels.shape, params.n_components
    ((500, 2), (500,), 3)
    >>> round(mixture_separation(params), 6)
    1.5
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_components = check_int(n_components, "n_components", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=1)
    check_option(covariance_type, "covariance_type", COVARIANCE_TYPES)
    c = check_float(separation, "separation", minimum=0.0, include_minimum=False)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if (
            w.shape != (n_components,)
            or not np.isfinite(w).all()
            or (w < 0).any()
            or (w.sum() <= 0)
        ):
            raise ValueError(
                message("weights", f"{n_components} non-negative finite numbers", weights)
            )
        w = w / w.sum()
    rng = check_random_state(random_state)
    if weights is None:
        w = rng.dirichlet(np.full(n_components, 10.0))
    covariances = _random_covariances(rng, n_components, n_features, covariance_type)
    means = np.zeros((n_components, n_features))
    if n_components > 1:
        raw = rng.standard_normal((n_components, n_features))
        # Scale the random means so that the closest pair is exactly c-separated.
        trial = GaussianMixtureParams(w, raw, covariances, covariance_type)
        means = raw * (c / mixture_separation(trial))
    params = GaussianMixtureParams(w, means, covariances, covariance_type)
    X, labels = params.sample(n_samples, rng)
    return X, labels, params


def make_stretched_blobs(
    n_samples: int = 300,
    n_components: int = 3,
    *,
    stretch: float = 6.0,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Long, thin, parallel clusters: where k-means fails and a full-covariance GMM does not.

    Unit-variance isotropic blobs are placed on a line, spaced 5 apart, and the
    plane is then stretched by ``stretch`` along a direction 45 degrees from that
    line, so every cluster becomes an ellipse ``stretch`` times longer than it is
    wide and the nearest centre (the k-means rule) is often the wrong one.

    Parameters
    ----------
    n_samples : int, default 300
        Number of points, split as evenly as possible between the clusters.
    n_components : int, default 3
        Number of clusters.
    stretch : float, default 6.0
        Ratio of the long to the short axis of each cluster, >= 1.
    random_state : None, int or numpy.random.Generator
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        The points, in random order.
    labels : ndarray of shape (n_samples,)
        The cluster of each point.

    Examples
    --------
    >>> from bayesgmm.datasets import make_stretched_blobs
    >>> X, labels = make_stretched_blobs(90, 3, random_state=0)
    >>> X.shape, sorted(set(labels.tolist()))
    ((90, 2), [0, 1, 2])
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_components = check_int(n_components, "n_components", minimum=1)
    stretch = check_float(stretch, "stretch", minimum=1.0)
    rng = check_random_state(random_state)
    labels = rng.permutation(np.arange(n_samples) % n_components)
    centres = np.column_stack([5.0 * np.arange(n_components), np.zeros(n_components)])
    Z = centres[labels] + rng.standard_normal((n_samples, 2))
    # Stretch along the unit vector u at 45 degrees: x -> x + (stretch - 1) (u . x) u.
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)
    transform = np.eye(2) + (stretch - 1.0) * np.outer(u, u)
    return Z @ transform.T, labels


def make_moons(
    n_samples: int = 200, *, noise: float = 0.1, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: non-Gaussian clusters for density estimation.

    The upper moon is the half circle of radius 1 centred at the origin, the
    lower one the same half circle turned over and shifted to (1, 0.5); Gaussian
    noise with standard deviation ``noise`` is added to both coordinates. The
    same shape as scikit-learn's ``make_moons``, written in NumPy.

    Parameters
    ----------
    n_samples : int, default 200
        Number of points; the upper moon gets the extra point when odd.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise, >= 0.
    random_state : None, int or numpy.random.Generator
        Seed for reproducible draws.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
        The points, in random order.
    labels : ndarray of shape (n_samples,)
        0 for the upper moon, 1 for the lower.

    Examples
    --------
    >>> from bayesgmm.datasets import make_moons
    >>> X, labels = make_moons(100, noise=0.05, random_state=0)
    >>> X.shape, int(labels.sum())
    ((100, 2), 50)
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    noise = check_float(noise, "noise", minimum=0.0)
    rng = check_random_state(random_state)
    n_lower = n_samples // 2
    labels = rng.permutation(np.r_[np.zeros(n_samples - n_lower, int), np.ones(n_lower, int)])
    angle = rng.uniform(0.0, np.pi, size=n_samples)
    upper = np.column_stack([np.cos(angle), np.sin(angle)])
    lower = np.column_stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)])
    X = np.where(labels[:, None] == 0, upper, lower)
    return X + noise * rng.standard_normal((n_samples, 2)), labels
