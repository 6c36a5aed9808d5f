"""The compiled mixture log density Op: values, gradients, both linkers."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from scipy import stats

from bayesgmm._mixture_op import MixtureLogDensity, mixture_log_density

PYTHON_MODE = Mode(linker="py", optimizer="fast_compile")


def _problem(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 1.5
    weights = rng.dirichlet(np.full(k, 2.0))
    means = rng.normal(size=(k, d))
    A = rng.normal(size=(k, d, d)) * 0.6
    covs = A @ np.swapaxes(A, -1, -2) + 0.3 * np.eye(d)
    return X, weights, means, np.linalg.cholesky(covs), covs


def _scipy_log_density(X, weights, means, covs):
    comps = [
        np.log(w) + stats.multivariate_normal(m, c).logpdf(X)
        for w, m, c in zip(weights, means, covs, strict=True)
    ]
    return np.logaddexp.reduce(np.stack(comps, axis=-1).reshape(len(X), -1), axis=-1)


def _compiled(mode=None):
    X, w, m, L = pt.matrix("X"), pt.vector("w"), pt.matrix("m"), pt.tensor3("L")
    logp, resp, phi = MixtureLogDensity()(X, w, m, L)
    return pytensor.function([X, w, m, L], [logp, resp, phi], mode=mode)


@pytest.mark.parametrize(("d", "k"), [(1, 1), (1, 3), (2, 3), (5, 4)])
@pytest.mark.parametrize("mode", [None, PYTHON_MODE], ids=["numba", "python"])
def test_log_density_equals_scipy_mixture(d, k, mode):
    X, w, m, L, covs = _problem(60, d, k, seed=d * 10 + k)
    logp, resp, phi = _compiled(mode)(X, w, m, L)
    np.testing.assert_allclose(logp, _scipy_log_density(X, w, m, covs), rtol=0, atol=1e-10)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, atol=1e-12)
    assert phi.shape == (60, d + d * (d + 1) // 2)


def test_upper_triangle_is_ignored_and_components_are_exchangeable():
    X, w, m, L, _ = _problem(40, 3, 3, seed=1)
    f = _compiled()
    base = f(X, w, m, L)[0]
    junk = L + np.triu(np.full((3, 3), 7.0), 1)
    np.testing.assert_array_equal(f(X, w, m, junk)[0], base)
    order = [2, 0, 1]
    np.testing.assert_allclose(f(X, w[order], m[order], L[order])[0], base, atol=1e-12)


@pytest.mark.parametrize(("d", "k"), [(1, 2), (3, 3)])
def test_gradient_matches_finite_differences(d, k):
    X, w, m, L, _ = _problem(30, d, k, seed=7)
    g = np.random.default_rng(3).normal(size=30)
    rows, cols = np.tril_indices(d)

    def weighted_sum(weights, means, lower):
        # Differentiate through the lower triangle only (the Op reads nothing else).
        chol = pt.zeros((k, d, d))[:, rows, cols].set(lower)
        return (mixture_log_density(X, weights, means, chol) * g).sum()

    pytensor.gradient.verify_grad(
        weighted_sum,
        [w, m, L[:, rows, cols]],
        rng=np.random.default_rng(0),
        # One-sided differences with step 1e-6 are accurate to about 1e-6 times the
        # curvature, which is of order 10 here.
        abs_tol=1e-4,
        rel_tol=1e-4,
        eps=1e-6,
    )


def test_gradient_of_the_upper_triangle_is_zero_and_agrees_across_linkers():
    X, w, m, L, _ = _problem(50, 4, 3, seed=2)
    tw, tm, tL = pt.vector("w"), pt.matrix("m"), pt.tensor3("L")
    total = mixture_log_density(X, tw, tm, tL).sum()
    grads = pt.grad(total, [tw, tm, tL])
    fast = pytensor.function([tw, tm, tL], grads)(w, m, L)
    slow = pytensor.function([tw, tm, tL], grads, mode=PYTHON_MODE)(w, m, L)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert np.all(np.triu(fast[2], 1) == 0.0)


def test_responsibilities_are_not_differentiable():
    X, w, m, L, _ = _problem(10, 2, 2, seed=0)
    tw = pt.vector("w")
    resp = MixtureLogDensity()(X, tw, m, L)[1]
    with pytest.raises(NotImplementedError, match="first output"):
        pt.grad(resp.sum(), tw)


def test_inputs_of_the_wrong_rank_are_refused():
    with pytest.raises(TypeError, match="chol must have 3 dimensions"):
        mixture_log_density(pt.matrix(), pt.vector(), pt.matrix(), pt.matrix())


def test_log_density_draws_equals_scipy_in_the_units_of_the_data():
    """Every draw, every row; data far from the origin and on a small scale."""
    from bayesgmm._mixture_op import log_density_draws

    rng = np.random.default_rng(5)
    d, k, draws = 3, 2, 4
    loc, scale = np.array([1e4, -3.0, 0.5]), np.array([2e-3, 1.0, 40.0])
    X = loc + scale * rng.normal(size=(70, d))
    weights, means, covs = [], [], []
    for s in range(draws):
        _, w, m, _, c = _problem(1, d, k, seed=100 + s)
        weights.append(w)
        means.append(loc + scale * m)
        covs.append(c * np.outer(scale, scale))
    weights, means, covs = np.array(weights), np.array(means), np.array(covs)
    got = log_density_draws(X, weights, means, covs, loc, scale)
    triples = zip(weights, means, covs, strict=True)
    expected = np.stack([_scipy_log_density(X, *params) for params in triples])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-8)
