"""The numba log density nutpie samples, checked against the PyMC model it replaces.

The PyMC model (:func:`bayesgmm._marginal_model.build_pymc_model`) is the reference:
its ``logp`` and ``dlogp`` (value, priors, transforms, Jacobians, the marginal
likelihood) at random unconstrained points must agree with
:func:`bayesgmm._numba_density.logp_and_grad` to 1e-10, for every covariance type
and several K and d. Both are deterministic functions of the point, so these tests
have no false-failure probability beyond floating-point rounding (observed
differences are below 1e-12). The reference is evaluated with PyTensor's Python
linker, which compiles nothing.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from scipy import stats

from bayesgmm import _numba_density as nd
from bayesgmm._gaussian import COVARIANCE_TYPES
from bayesgmm._marginal_model import DEFAULT_PRIORS, build_pymc_model, free_values
from bayesgmm.params import GaussianMixtureParams

SHAPES = [(1, 2), (2, 1), (3, 2), (4, 3), (2, 5)]  # (K, d)
PRIORS = dict(
    DEFAULT_PRIORS,
    weights_concentration=1.7,
    means_loc=0.3,
    means_scale=1.6,
    stds_scale=0.8,
    lkj_eta=2.5,
)


def _reference(Z, k, kind, priors):
    """The PyMC model's logp and dlogp (Python linker) and its value variables' names."""
    from pytensor.compile.mode import Mode

    model = build_pymc_model(Z, k, kind, priors, list(range(Z.shape[1])))
    mode = Mode(linker="py", optimizer="fast_compile")
    return model, model.compile_logp(mode=mode), model.compile_dlogp(mode=mode)


def _point(theta, layout):
    point, start = {}, 0
    for name, shape in layout.unconstrained():
        size = int(np.prod(shape))
        point[name] = theta[start : start + size].reshape(shape)
        start += size
    return point


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize(
    ("k", "d", "priors"),
    [(k, d, DEFAULT_PRIORS) for k, d in SHAPES] + [(3, 3, PRIORS)],
    ids=[f"K{k}-d{d}" for k, d in SHAPES] + ["K3-d3-other-priors"],
)
def test_logp_and_gradient_match_the_pymc_model(kind, k, d, priors):
    rng = np.random.default_rng(100 * k + d)
    Z = rng.normal(size=(30, d))
    model, logp, dlogp = _reference(Z, k, kind, priors)
    layout = nd.DensityLayout(k, d, kind)
    assert [v.name for v in model.value_vars] == [name for name, _ in layout.unconstrained()]
    buffer = nd.bind_buffer(Z, layout, priors)
    for _ in range(3):
        theta = rng.normal(scale=0.8, size=layout.n_unconstrained)
        grad = np.empty_like(theta)
        value = nd.logp_and_grad(theta, buffer, grad)
        point = _point(theta, layout)
        np.testing.assert_allclose(value, logp(point), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_callback_is_the_same_function_through_its_c_entry(kind):
    rng = np.random.default_rng(7)
    layout = nd.DensityLayout(3, 3, kind)
    buffer = nd.bind_buffer(rng.normal(size=(50, 3)), layout, DEFAULT_PRIORS)
    theta = rng.normal(size=layout.n_unconstrained)
    expected_grad = np.empty_like(theta)
    expected = nd.logp_and_grad(theta, buffer, expected_grad)
    grad, value = np.empty_like(theta), np.empty(1)
    pointer = ctypes.POINTER(ctypes.c_double)
    code = nd._logp_callback.ctypes(
        theta.size,
        theta.ctypes.data_as(pointer),
        grad.ctypes.data_as(pointer),
        value.ctypes.data_as(pointer),
        ctypes.c_void_p(buffer.ctypes.data),
    )
    assert code == 0
    assert value[0] == expected
    np.testing.assert_array_equal(grad, expected_grad)
    out = np.empty(layout.n_expanded)
    code = nd._expand_callback.ctypes(
        theta.size,
        out.size,
        theta.ctypes.data_as(pointer),
        out.ctypes.data_as(pointer),
        ctypes.c_void_p(buffer.ctypes.data),
    )
    assert code == 0
    np.testing.assert_array_equal(
        out, np.concatenate([np.ravel(v) for v in nd.expand(theta, layout).values()])
    )


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
@pytest.mark.parametrize(("k", "d"), [(3, 2), (2, 4), (2, 1)])
def test_start_values_round_trip_and_match_pymc_transforms(kind, k, d):
    """``to_unconstrained`` is PyMC's forward transform and ``expand`` its inverse."""
    from pymc.initial_point import make_initial_point_fn

    rng = np.random.default_rng(3)
    A = rng.normal(size=(k, d, d))
    full = A @ np.swapaxes(A, -1, -2) + np.eye(d)
    cov = {
        "full": full,
        "tied": full[0],
        "diag": np.diagonal(full, axis1=-2, axis2=-1),
        "spherical": np.diagonal(full, axis1=-2, axis2=-1).mean(-1),
    }[kind]
    params = GaussianMixtureParams(rng.dirichlet(np.ones(k)), rng.normal(size=(k, d)), cov, kind)
    values = free_values(params, d)
    layout = nd.DensityLayout(k, d, kind)
    theta = nd.to_unconstrained(values, layout)
    model = build_pymc_model(rng.normal(size=(10, d)), k, kind, DEFAULT_PRIORS, list(range(d)))
    point = make_initial_point_fn(
        model=model, overrides=values, jitter_rvs=set(), return_transformed=True
    )(0)
    for name, block in _point(theta, layout).items():
        np.testing.assert_allclose(block, point[name], rtol=1e-12, atol=1e-12)
    back = nd.expand(theta, layout)
    assert list(back) == list(values)
    for name in values:
        np.testing.assert_allclose(back[name], values[name], rtol=1e-12, atol=1e-12)


def test_pointwise_log_density_matches_scipy():
    rng = np.random.default_rng(11)
    s, k, d, n = 4, 3, 2, 25
    X = rng.normal(size=(n, d)) * 3.0 + 1.0
    weights = rng.dirichlet(np.ones(k), size=s)
    means = rng.normal(size=(s, k, d))
    A = rng.normal(size=(s, k, d, d))
    covariances = A @ np.swapaxes(A, -1, -2) + np.eye(d)
    got = nd.log_density_draws(X, weights, means, covariances, X.mean(0), X.std(0))
    expected = np.array(
        [
            np.log(
                sum(
                    weights[i, c] * stats.multivariate_normal(means[i, c], covariances[i, c]).pdf(X)
                    for c in range(k)
                )
            )
            for i in range(s)
        ]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_one_compiled_function_serves_every_shape_and_type():
    """Shapes are read at run time: no new specialisation for another n, d, K or type."""
    rng = np.random.default_rng(5)
    signatures = None
    for kind in COVARIANCE_TYPES:
        for k, d in SHAPES:
            layout = nd.DensityLayout(k, d, kind)
            buffer = nd.bind_buffer(rng.normal(size=(7, d)), layout, DEFAULT_PRIORS)
            grad = np.empty(layout.n_unconstrained)
            assert np.isfinite(nd.logp_and_grad(np.zeros(layout.n_unconstrained), buffer, grad))
            signatures = signatures or len(nd.logp_and_grad.signatures)
            assert len(nd.logp_and_grad.signatures) == signatures


@pytest.mark.parametrize("kind", COVARIANCE_TYPES)
def test_weighted_logp_and_gradient_match_the_pymc_model_and_repeated_rows(kind):
    """Frequency weights: the compiled density equals the PyMC model with its
    ``sample_weight`` data variable, and the unweighted density of the rows repeated."""
    from pytensor.compile.mode import Mode

    k, d = 3, 2
    rng = np.random.default_rng(21)
    Z = rng.normal(size=(30, d))
    w = rng.integers(0, 4, size=30)
    model = build_pymc_model(Z, k, kind, DEFAULT_PRIORS, list(range(d)), sample_weight=w * 1.0)
    mode = Mode(linker="py", optimizer="fast_compile")
    logp, dlogp = model.compile_logp(mode=mode), model.compile_dlogp(mode=mode)
    layout = nd.DensityLayout(k, d, kind)
    weighted = nd.bind_buffer(Z, layout, DEFAULT_PRIORS, w * 1.0)
    repeated = nd.bind_buffer(np.repeat(Z, w, axis=0), layout, DEFAULT_PRIORS)
    for _ in range(3):
        theta = rng.normal(scale=0.8, size=layout.n_unconstrained)
        grad, grad_repeated = np.empty_like(theta), np.empty_like(theta)
        value = nd.logp_and_grad(theta, weighted, grad)
        point = _point(theta, layout)
        np.testing.assert_allclose(value, logp(point), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-10, atol=1e-10)
        value_repeated = nd.logp_and_grad(theta, repeated, grad_repeated)
        np.testing.assert_allclose(value, value_repeated, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grad, grad_repeated, rtol=1e-10, atol=1e-10)
