"""EM at its defaults reaches the best optimum: stopping rule, hierarchical starts, hard panels.

The oracle for the simulated panel is the best of many long EM runs from
random starts (each run to a tight convergence); the defaults must reach it
within 0.01 log-likelihood units or beat it. The published value is mclust's
BIC for Old Faithful under EEE with three components.
"""

import warnings

import numpy as np
import pytest

from bayesgmm import EMGaussianMixture
from bayesgmm._em_steps import _should_stop
from bayesgmm._hc import hc_partitions, scaled_svd
from bayesgmm.datasets import load_faithful
from bayesgmm.em import ConvergenceWarning, DegenerateComponentWarning
from bayesgmm.selection import select_n_components

GAP = 0.01


def _loglik(model, X):
    return float(model.score(X)) * X.shape[0]


def _fit(X, k, kind, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        return EMGaussianMixture(k, covariance_type=kind, **kwargs).fit(X)


# ------------------------------------------------------------ published value


def test_old_faithful_eee3_reproduces_mclusts_published_bic():
    """mclust's BIC table for Old Faithful: EEE with 3 components, -2314.32 (mclust's sign).

    bayesgmm's bic is -2 log L + p log n, so the value to reach is 2314.32 or less; the
    scikit-learn stopping rule (tol=1e-3 on the mean log-likelihood) stops at 2314.74.
    """
    X = np.asarray(load_faithful(), dtype=float)
    model = _fit(X, 3, "tied", random_state=0)
    assert model.converged_
    assert model.bic(X) <= 2314.32
    assert model.bic(X) > 2314.2  # the maximum, not a degenerate spike


# ------------------------------------------------------------- stopping rule


def test_aitken_rule_keeps_going_while_em_crawls():
    """A change below mclust's relative threshold with a ratio near 1 leaves a large gain."""
    n, lower_bound = 1000, -5.0  # |L| = 5000: mclust's rule stops at a change of 0.05 in all
    change = 0.04 / n
    assert not _should_stop("aitken", 1e-5, n, lower_bound, change, change / 0.999)
    assert _should_stop("aitken", 1e-5, n, lower_bound, change, change / 0.1)
    assert not _should_stop("aitken", 1e-5, n, lower_bound, 1.0 / n, 2.0 / n)
    assert _should_stop("aitken", 1e-5, n, lower_bound, 0.0, 1.0)
    assert _should_stop("change", 1e-3, n, lower_bound, 5e-4, 1.0)
    assert not _should_stop("change", 1e-3, n, lower_bound, 2e-3, 1.0)


def test_default_fit_converges_closer_than_the_sklearn_rule():
    X = np.asarray(load_faithful(), dtype=float)
    tight = _fit(X, 3, "tied", random_state=0, tol=1e-12, max_iter=5000)
    default = _fit(X, 3, "tied", random_state=0)
    sklearn_rule = _fit(X, 3, "tied", random_state=0, stopping="change", tol=1e-3)
    assert _loglik(tight, X) - _loglik(default, X) < GAP
    assert _loglik(tight, X) - _loglik(sklearn_rule, X) > 5 * GAP


# ------------------------------------------------------- hierarchical starts


def test_scaled_svd_has_orthogonal_columns_scaled_by_root_singular_values():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4)) * [1.0, 10.0, 100.0, 0.1]
    Z = scaled_svd(X)
    gram = Z.T @ Z
    standardised = (X - X.mean(axis=0)) / X.std(axis=0)
    singular = np.linalg.svd(standardised, compute_uv=False)
    np.testing.assert_allclose(gram, np.diag(singular), atol=1e-8 * singular.max())


def test_hc_tree_is_nested_and_recovers_separated_groups():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 8.0]])
    truth = np.repeat(np.arange(4), [60, 30, 15, 45])
    X = centres[truth] + rng.normal(size=(truth.size, 3))
    partitions = hc_partitions(X, range(1, 7))
    assert sorted(partitions) == [1, 2, 3, 4, 5, 6]
    for k in range(1, 7):
        assert np.unique(partitions[k]).size == k
    for k in range(1, 6):
        # One tree: every group of the K + 1 partition lies inside one group of the K partition.
        pairs = {(a, b) for a, b in zip(partitions[k + 1], partitions[k], strict=True)}
        assert len(pairs) == k + 1
    contingency = np.zeros((4, 4), dtype=int)
    np.add.at(contingency, (truth, partitions[4]), 1)
    assert (contingency.max(axis=1) == np.bincount(truth)).all()


# --------------------------------------------------------- simulated panel


def _ring(seed):
    """Fourteen small round clusters on a circle (as mclust's wreath): many near-equal optima."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    centres = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    labels = rng.integers(0, 14, 700)
    return centres[labels] + rng.normal(scale=0.9, size=(700, 2)) * [1.0, 0.5]


def _unequal(seed):
    """One large diffuse group, two medium and two small tight ones near it."""
    rng = np.random.default_rng(seed)
    return np.vstack(
        [
            rng.normal([0, 0], 4.0, size=(600, 2)),
            rng.normal([9, 0], 1.0, size=(120, 2)),
            rng.normal([0, 9], 1.0, size=(120, 2)),
            rng.normal([4, 4], 0.3, size=(20, 2)),
            rng.normal([-6, -6], 0.3, size=(12, 2)),
        ]
    )


def _ten_dimensions(seed):
    """Four correlated groups in ten dimensions, overlapping, of sizes 200, 150, 100, 50."""
    rng = np.random.default_rng(seed)
    blocks = []
    for size in (200, 150, 100, 50):
        A = rng.normal(scale=0.5, size=(10, 10)) + np.eye(10)
        blocks.append(rng.normal(scale=1.5, size=10) + rng.standard_normal((size, 10)) @ A.T)
    return np.vstack(blocks)


_KNOWN_MISS = pytest.mark.xfail(
    strict=True,
    reason="open (issue 16): the hc + k-means starts end below the best of 30 random restarts",
)
PANEL = [
    pytest.param(_ring, "diag", 6, marks=_KNOWN_MISS),
    (_ring, "spherical", 9),
    pytest.param(_ring, "full", 7, marks=_KNOWN_MISS),
    pytest.param(_unequal, "full", 5, marks=_KNOWN_MISS),
    (_unequal, "tied", 4),
    (_ten_dimensions, "full", 4),
    pytest.param(_ten_dimensions, "diag", 5, marks=_KNOWN_MISS),
]


@pytest.mark.slow
@pytest.mark.parametrize(("make", "kind", "k"), PANEL, ids=lambda v: getattr(v, "__name__", v))
def test_defaults_reach_the_best_of_many_random_restarts(make, kind, k):
    """Defaults within 0.01 of (or above) the best of 30 tightly converged random restarts.

    A restart that ends with degenerate components is no competitor (its likelihood is
    inflated by a spike); the default fit must have none either.
    """
    X = make(0)
    oracle = -np.inf
    for seed in range(30):
        run = _fit(X, k, kind, init_params="random_from_data", random_state=seed, tol=1e-8)
        if not run.degenerate_components_.size:
            oracle = max(oracle, _loglik(run, X))
    default = _fit(X, k, kind, random_state=0)
    assert not default.degenerate_components_.size
    assert _loglik(default, X) >= oracle - GAP, (_loglik(default, X), oracle)


def test_selection_reaches_the_hierarchical_start_of_every_k():
    """The shared tree gives every K the start a lone ``init_params="hc"`` fit has.

    Selection keeps the best of that start, the split of K - 1's fit and k-means
    starts, so it can end higher, never lower (the hierarchical start runs first
    and is never given up).
    """
    X = _unequal(0)
    result = select_n_components(X, range(1, 6), covariance_types=("full",), random_state=0)
    for _, row in result.table.iterrows():
        alone = _fit(X, int(row["n_components"]), "full", init_params="hc", random_state=0)
        assert row["log_likelihood"] >= _loglik(alone, X) - GAP
