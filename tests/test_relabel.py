"""Relabelling on artificially permuted draws (pure NumPy, no sampling)."""

import itertools

import numpy as np
import pytest

from bayesgmm.params import GaussianMixtureParams
from bayesgmm.relabel import (
    apply_permutations,
    chain_disagreement,
    kl_cost,
    label_invariant_summary,
    relabel_draws,
)


def _posterior_like(seed, n_draws=400, k=3, d=2, spread=0.05):
    """Draws scattered around one mixture, then each draw's components shuffled."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(scale=4.0, size=(k, d))
    A = rng.normal(size=(k, d, d)) * 0.3 + np.eye(d)
    covs = A @ np.swapaxes(A, 1, 2)
    w = np.abs(weights + rng.normal(scale=spread * 0.1, size=(n_draws, k)))
    w /= w.sum(axis=1, keepdims=True)
    m = means + rng.normal(scale=spread, size=(n_draws, k, d))
    c = covs * np.exp(rng.normal(scale=spread, size=(n_draws, k, 1, 1)))
    truth = (w, m, c)
    shuffles = np.array([rng.permutation(k) for _ in range(n_draws)])
    shuffled = apply_permutations(shuffles, w, m, c)
    return truth, shuffled, GaussianMixtureParams(weights, means, covs, "full")


@pytest.mark.parametrize("seed", range(5))
def test_relabelling_undoes_random_permutations(seed):
    (w, m, c), (ws, ms, cs), reference = _posterior_like(seed)
    perm = relabel_draws(ws, ms, cs, reference)
    w2, m2, c2 = apply_permutations(perm, ws, ms, cs)
    np.testing.assert_array_equal(m2, m)
    np.testing.assert_array_equal(w2, w)
    np.testing.assert_array_equal(c2, c)


@pytest.mark.parametrize("seed", range(3))
def test_relabelling_without_reference_is_consistent_up_to_one_permutation(seed):
    (_, m, _), (ws, ms, cs), _ = _posterior_like(seed)
    perm = relabel_draws(ws, ms, cs)
    m2 = apply_permutations(perm, ms)
    # The pivot is the first draw, so the labels equal the truth up to one global order.
    matches = [
        np.array_equal(m2, m[:, list(order)]) for order in itertools.permutations(range(m.shape[1]))
    ]
    assert sum(matches) == 1


def test_permutations_are_permutations_and_identity_for_aligned_draws():
    (w, m, c), _, reference = _posterior_like(0)
    perm = relabel_draws(w, m, c, reference)
    assert perm.shape == w.shape
    np.testing.assert_array_equal(np.sort(perm, axis=1), np.tile(np.arange(3), (len(w), 1)))
    np.testing.assert_array_equal(perm, np.tile(np.arange(3), (len(w), 1)))


def test_kl_cost_matches_a_naive_loop_and_vanishes_on_the_diagonal():
    (w, m, c), _, _ = _posterior_like(1, n_draws=3)
    ref_m, ref_c = m[0], c[0]
    cost = kl_cost(m, c, ref_m, ref_c)
    for s, j, k in itertools.product(range(3), range(3), range(3)):
        prec = np.linalg.inv(ref_c[k])
        diff = ref_m[k] - m[s, j]
        expected = 0.5 * (
            np.trace(prec @ c[s, j])
            + diff @ prec @ diff
            - 2
            + np.log(np.linalg.det(ref_c[k]) / np.linalg.det(c[s, j]))
        )
        assert cost[s, j, k] == pytest.approx(expected, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(np.diagonal(cost[0]), 0.0, atol=1e-12)


def test_label_invariant_summary_does_not_change_under_permutation():
    (w, m, c), (ws, ms, cs), _ = _posterior_like(2)
    a = label_invariant_summary(w, m, c)
    b = label_invariant_summary(ws, ms, cs)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12)
    # The mixture covariance equals the covariance of a large sample from draw 0.
    rng = np.random.default_rng(0)
    params = GaussianMixtureParams(w[0], m[0], c[0], "full")
    X, _ = params.sample(200_000, rng)
    np.testing.assert_allclose(a["mixture_covariance"][0], np.cov(X.T), rtol=0.05, atol=0.05)


def test_chain_disagreement_flags_a_chain_in_another_mode():
    rng = np.random.default_rng(3)
    means = rng.normal(scale=0.1, size=(4, 200, 2, 2))
    distance, flagged = chain_disagreement(means)
    assert not flagged.any()
    means[2, :, 0, 0] += 3.0  # one chain merged/split differently: 30 sd away
    distance, flagged = chain_disagreement(means)
    np.testing.assert_array_equal(flagged, [False, False, True, False])
    assert distance[2] > 20


def test_bad_shapes_are_rejected_with_the_argument_named():
    (w, m, c), _, _ = _posterior_like(0, n_draws=5)
    with pytest.raises(ValueError, match="^weights"):
        relabel_draws(w[:, :2], m, c)
    with pytest.raises(ValueError, match="^covariances"):
        relabel_draws(w, m, c[..., 0])
    with pytest.raises(ValueError, match="^reference"):
        relabel_draws(w, m, c, reference=(w[0], m[0, :2], c[0]))
    with pytest.raises(TypeError, match="^reference"):
        relabel_draws(w, m, c, reference=3)
