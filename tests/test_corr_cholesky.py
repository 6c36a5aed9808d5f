"""CorrCholeskyTransform: a one-Op bijection onto Cholesky factors of correlation matrices."""

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from pymc.distributions.transforms import CholeskyCorrTransform
from pytensor.gradient import verify_grad

from bayesgmm._corr_cholesky import (
    CorrCholeskyTransform,
    UnitRowCholesky,
    UnitRowCholeskyGrad,
    unit_row_cholesky,
)

PY = "FAST_COMPILE"  # Python `perform` implementations, no numba compile
NS = (2, 3, 5)


def _m(n):
    return n * (n - 1) // 2


def _fn(inputs, outputs, mode=PY):
    return pytensor.function(inputs, outputs, mode=mode, on_unused_input="ignore")


def _random_chol(rng, n, batch=()):
    """Cholesky factors of random correlation matrices (not from our backward map)."""
    a = rng.normal(size=(*batch, n, n + 2))
    cov = a @ np.swapaxes(a, -1, -2)
    chol = np.linalg.cholesky(cov)
    return chol / np.linalg.norm(chol, axis=-1, keepdims=True)


def _permutation(n):
    """``perm`` with PyMC's unconstrained vector == ours[..., perm] for the same L."""
    tr = CorrCholeskyTransform(n)
    y = pt.vector("y")
    y_pymc = CholeskyCorrTransform(n=n, upper=False).forward(tr.backward(y))
    labels = np.arange(1, _m(n) + 1) / 10.0
    out = _fn([y], y_pymc)(labels)
    perm = np.rint(out * 10.0).astype(int) - 1
    assert sorted(perm.tolist()) == list(range(_m(n)))
    return perm


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_round_trip_and_support(n, batch):
    rng = np.random.default_rng(n)
    tr = CorrCholeskyTransform(n)
    y = pt.tensor("y", shape=(None,) * (len(batch) + 1))
    chol = pt.tensor("L", shape=(None,) * (len(batch) + 2))
    to_chol = _fn([y], tr.backward(y))
    to_y = _fn([chol], tr.forward(chol))

    yv = rng.normal(scale=1.5, size=(*batch, _m(n)))
    lv = to_chol(yv)
    assert lv.shape == (*batch, n, n)
    np.testing.assert_allclose(to_y(lv), yv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(lv, axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(np.triu(lv, 1), 0.0)
    assert np.all(np.diagonal(lv, axis1=-2, axis2=-1) > 0)

    lv = _random_chol(rng, n, batch)
    np.testing.assert_allclose(to_chol(to_y(lv)), lv, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", NS)
def test_same_bijection_as_pymc(n):
    perm = _permutation(n)
    ours = CorrCholeskyTransform(n)
    theirs = CholeskyCorrTransform(n=n, upper=False)
    y = pt.matrix("y")
    f = _fn(
        [y],
        [
            ours.backward(y),
            ours.log_jac_det(y),
            theirs.backward(y[:, perm]),
            theirs.log_jac_det(y[:, perm]),
        ],
    )
    yv = np.random.default_rng(10 + n).normal(scale=1.5, size=(4, _m(n)))
    chol, ljd, chol_pymc, ljd_pymc = f(yv)
    np.testing.assert_allclose(chol, chol_pymc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ljd, ljd_pymc, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", NS)
def test_log_jac_det_matches_finite_differences(n):
    tr = CorrCholeskyTransform(n)
    rows, cols = np.tril_indices(n, -1)
    y = pt.vector("y")
    to_chol = _fn([y], tr.backward(y))
    ljd = _fn([y], tr.log_jac_det(y))
    yv = np.random.default_rng(20 + n).normal(size=_m(n))
    h = 1e-6
    jac = np.empty((_m(n), _m(n)))
    for k in range(_m(n)):
        step = np.zeros(_m(n))
        step[k] = h
        jac[:, k] = (to_chol(yv + step)[rows, cols] - to_chol(yv - step)[rows, cols]) / (2 * h)
    sign, logdet = np.linalg.slogdet(jac)
    assert sign != 0
    np.testing.assert_allclose(ljd(yv), logdet, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_verify_grad(n, batch):
    rng = np.random.default_rng(30 + n)
    yv = rng.normal(size=(*batch, _m(n)))

    def scalar(y):
        chol = unit_row_cholesky(y, n)
        corr = chol @ pt.swapaxes(chol, -1, -2)
        return pt.sum(pt.log(pt.diagonal(chol, axis1=-2, axis2=-1))) + pt.sum(corr[..., -1, 0])

    verify_grad(UnitRowCholesky(n), [yv], rng=rng, mode=PY)
    verify_grad(scalar, [yv], rng=rng, mode=PY)


def test_verify_grad_numba():
    rng = np.random.default_rng(40)
    verify_grad(UnitRowCholesky(3), [rng.normal(size=(2, 3, 3))], rng=rng)


@pytest.mark.parametrize("n", NS)
def test_numba_matches_python(n):
    """One numba compile per n, covering both Ops, batched and unbatched, and forward."""
    rng = np.random.default_rng(50 + n)
    tr = CorrCholeskyTransform(n)
    y1 = pt.vector("y1")
    y3 = pt.tensor3("y3")
    outs = []
    for y in (y1, y3):
        chol = tr.backward(y)
        weights = rng.normal(size=(2, 3, n, n))[(0,) * (4 - chol.ndim)]
        outs += [chol, pt.grad(pt.sum(chol * weights), y), tr.log_jac_det(y), tr.forward(chol)]
    values = [rng.normal(size=_m(n)), rng.normal(size=(2, 3, _m(n)))]
    # A non-contiguous batched input exercises the kernels' copy to contiguous memory.
    values[1] = np.asfortranarray(values[1])
    got = _fn([y1, y3], outs, mode=None)(*values)
    want = _fn([y1, y3], outs)(*values)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[3], values[0], atol=1e-12)
    np.testing.assert_allclose(got[7], values[1], atol=1e-12)


def test_static_shapes_and_infer_shape():
    y = pt.tensor("y", shape=(4, 3))
    chol = unit_row_cholesky(y, 3)
    assert chol.type.shape == (4, 3, 3)
    assert unit_row_cholesky(pt.tensor("y", shape=(None, None, 10)), 5).type.shape == (
        None,
        None,
        5,
        5,
    )
    grad = pt.grad(chol.sum(), y)
    assert grad.type.shape == (4, 3)
    assert unit_row_cholesky(pt.tensor("y", dtype="float32", shape=(3,)), 3).dtype == "float32"
    assert unit_row_cholesky(np.zeros(3, dtype=int), 3).dtype == pytensor.config.floatX

    z = pt.tensor("z", shape=(None, 6))
    f = _fn([z], [unit_row_cholesky(z, 4).shape, pt.grad(unit_row_cholesky(z, 4).sum(), z).shape])
    ops = {type(node.op) for node in f.maker.fgraph.apply_nodes}
    assert UnitRowCholesky not in ops and UnitRowCholeskyGrad not in ops
    shape, grad_shape = f(np.zeros((7, 6)))
    assert tuple(shape) == (7, 4, 4) and tuple(grad_shape) == (7, 6)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        CorrCholeskyTransform(1)
    with pytest.raises(TypeError):
        UnitRowCholesky(2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length 3"):
        unit_row_cholesky(pt.tensor("y", shape=(2, 4)), 3)
    with pytest.raises(TypeError):
        unit_row_cholesky(pt.scalar("y"), 2)
    assert UnitRowCholesky(3) == UnitRowCholesky(3) != UnitRowCholesky(4)
    assert hash(UnitRowCholesky(3)) == hash(UnitRowCholesky(3))


def _lkj_model(d, transform):
    kwargs = {} if transform is None else {"default_transform": transform}
    with pm.Model() as model:
        pm.LKJCorr("c", n=d, eta=2.0, shape=(3, d, d), **kwargs)
    return model


@pytest.mark.parametrize("d", [2, 3, 5])
def test_lkj_model_logp_matches_pymc_transform(d):
    perm = _permutation(d)
    ours = _lkj_model(d, CorrCholeskyTransform(d))
    theirs = _lkj_model(d, None)
    (value_ours,) = ours.value_vars
    (value_theirs,) = theirs.value_vars
    assert value_ours.name == "c_corr_cholesky__"
    assert value_ours.type.shape == (3, _m(d))

    y = np.random.default_rng(60 + d).normal(size=(3, _m(d)))
    point_ours = {value_ours.name: y}
    point_theirs = {value_theirs.name: y[:, perm]}
    logp_ours = ours.compile_logp()(point_ours)  # numba (default mode)
    logp_theirs = theirs.compile_logp(mode=PY)(point_theirs)
    np.testing.assert_allclose(logp_ours, logp_theirs, rtol=0, atol=1e-10)
    dlogp_ours = ours.compile_dlogp()(point_ours).reshape(3, _m(d))
    dlogp_theirs = theirs.compile_dlogp(mode=PY)(point_theirs).reshape(3, _m(d))
    np.testing.assert_allclose(dlogp_ours[:, perm], dlogp_theirs, rtol=0, atol=1e-10)

    # The initial point (the identity) maps to zeros through `forward`.
    np.testing.assert_array_equal(ours.initial_point()[value_ours.name], 0.0)


@pytest.mark.slow
def test_nutpie_prior_marginals_are_beta():
    """Off-diagonal LKJ(eta) correlations: (r + 1) / 2 ~ Beta(eta - 1 + d/2, eta - 1 + d/2)."""
    import nutpie
    from arviz_stats.base import array_stats
    from scipy import stats

    d, eta, chains, draws = 3, 2.0, 4, 1000
    with pm.Model() as model:
        pm.LKJCorr("c", n=d, eta=eta, shape=(3, d, d), default_transform=CorrCholeskyTransform(d))
    compiled = nutpie.compile_pymc_model(model)
    trace = nutpie.sample(
        compiled, draws=draws, tune=1000, chains=chains, seed=7, progress_bar=False
    )
    chol = np.asarray(trace["posterior"]["c"].values)
    assert chol.shape == (chains, draws, 3, d, d)
    corr = chol @ np.swapaxes(chol, -1, -2)
    rows, cols = np.tril_indices(d, -1)
    r = corr[..., rows, cols].reshape(chains, draws, -1)  # (chain, draw, 9 correlations)

    assert np.max(array_stats.rhat(r, chain_axis=0, draw_axis=1)) < 1.01
    ess = array_stats.ess(r, chain_axis=0, draw_axis=1, method="bulk")
    a = eta - 1 + d / 2
    # Family-wise level 0.01 over the 9 correlations (Bonferroni); each one is tested
    # on draws thinned to about its effective sample size so they are nearly independent.
    alpha = 0.01 / r.shape[-1]
    for k in range(r.shape[-1]):
        step = max(1, int(np.ceil(chains * draws / ess[k])))
        sample = r[:, ::step, k].ravel()
        pvalue = stats.kstest((sample + 1) / 2, stats.beta(a, a).cdf).pvalue
        assert pvalue > alpha, (k, step, pvalue)
