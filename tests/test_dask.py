"""Dask input gives the same statistics and fits as in memory (2-worker LocalCluster)."""

import functools

import numpy as np
import pytest

from bayesgmm import _chunks
from bayesgmm import _gaussian as g

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = np.concatenate([rng.normal(size=(1500, 3)), rng.normal(size=(1500, 3)) * 0.5 + 4])
    return rng.permutation(X)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_statistics_over_chunks_equal_in_memory(client, data, covariance_type):
    means = np.array([[0.0, 0, 0], [4, 4, 4]])
    chol = g.compute_precision_cholesky(
        np.stack([np.eye(3), 0.25 * np.eye(3)])
        if covariance_type == "full"
        else np.array([[1.0] * 3, [0.25] * 3]),
        covariance_type,
    )
    shift = data.mean(axis=0)
    eta, const = g.natural_parameters(means - shift, chol, covariance_type)
    func = functools.partial(
        g.e_step_statistics,
        log_weights=np.log([0.5, 0.5]),
        eta=eta,
        const=const,
        covariance_type=covariance_type,
    )
    expected = func(data - shift)
    got = _chunks.map_reduce(func, da.from_array(data, chunks=(700, 3)), shift=shift)
    assert got.n_samples == expected.n_samples
    np.testing.assert_allclose(got.log_normalizer, expected.log_normalizer, rtol=1e-12)
    np.testing.assert_allclose(got.sum_xx, expected.sum_xx, rtol=1e-11)
    np.testing.assert_allclose(
        _chunks.column_means(da.from_array(data, chunks=700)), shift, rtol=1e-12
    )


def test_non_finite_chunk_is_a_clear_error(client, data):
    bad = data.copy()
    bad[2900, 1] = np.nan
    with pytest.raises(ValueError, match="^X: expected finite values"):
        _chunks.map_reduce(lambda b: b.sum(axis=0), da.from_array(bad, chunks=700))


def test_sample_rows_is_reproducible(data):
    X = da.from_array(data, chunks=500)
    a = _chunks.sample_rows(X, 100, np.random.default_rng(1))
    b = _chunks.sample_rows(data, 100, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def _inits(covariance_type):
    from bayesgmm import EMGaussianMixture

    start = EMGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    start.fit(np.random.default_rng(3).normal(size=(200, 3)) * 2 + 1)
    return dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_em_on_dask_equals_in_memory_fit(client, data, covariance_type):
    from bayesgmm import EMGaussianMixture

    kwargs = dict(covariance_type=covariance_type, max_iter=30, tol=0.0, **_inits(covariance_type))
    with pytest.warns(UserWarning, match="did not converge"):
        memory = EMGaussianMixture(2, **kwargs).fit(data)
    with pytest.warns(UserWarning, match="did not converge"):
        lazy = EMGaussianMixture(2, **kwargs).fit(da.from_array(data, chunks=(400, 3)))
    np.testing.assert_allclose(lazy.lower_bound_, memory.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(lazy.log_likelihood_trace_, memory.log_likelihood_trace_, rtol=1e-10)
    np.testing.assert_allclose(lazy.means_, memory.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lazy.covariances_, memory.covariances_, rtol=1e-9, atol=1e-9)


def test_em_on_dask_default_start_and_lazy_predictions(client, data):
    from bayesgmm import EMGaussianMixture

    X = da.from_array(data, chunks=(500, 3))
    model = EMGaussianMixture(2, random_state=0).fit(X)
    reference = EMGaussianMixture(2, random_state=0).fit(data)
    np.testing.assert_allclose(model.lower_bound_, reference.lower_bound_, rtol=1e-6)
    proba = model.predict_proba(X)
    dens = model.score_samples(X)
    labels = model.predict(X)
    assert isinstance(proba, da.Array) and isinstance(dens, da.Array)
    np.testing.assert_allclose(proba.compute(), model.predict_proba(data), rtol=1e-12)
    np.testing.assert_allclose(dens.compute(), model.score_samples(data), rtol=1e-12)
    np.testing.assert_array_equal(labels.compute(), model.predict(data))
    np.testing.assert_allclose(model.score(X), model.score(data), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_em_on_dask_scales_reg_covar_like_in_memory(client, data, covariance_type):
    """reg_covar relative to each feature's variance: the variance comes from a chunked pass.

    The features are in very different units, the first so small that an absolute
    reg_covar=1e-6 would swamp it; Dask and in-memory fits add the same amounts and
    find the same clusters.
    """
    from bayesgmm import EMGaussianMixture

    X = data * [1e-4, 1.0, 1e3] + [5.0, 0.0, -2e3]
    kwargs = dict(covariance_type=covariance_type, random_state=0)
    memory = EMGaussianMixture(2, **kwargs).fit(X)
    lazy = EMGaussianMixture(2, **kwargs).fit(da.from_array(X, chunks=(400, 3)))
    variance = X.var(axis=0)
    expected = variance.mean() if covariance_type == "spherical" else variance
    np.testing.assert_allclose(lazy.reg_covar_, np.broadcast_to(1e-6 * expected, (3,)), rtol=1e-10)
    np.testing.assert_allclose(lazy.reg_covar_, memory.reg_covar_, rtol=1e-10)
    # The same clusters, up to the order of the components: the Dask fit starts from a
    # sample of the rows, so it may number them the other way round.
    order_lazy, order_memory = np.argsort(lazy.means_[:, 1]), np.argsort(memory.means_[:, 1])
    relabel = np.empty(2, dtype=int)
    relabel[order_lazy] = order_memory
    np.testing.assert_array_equal(relabel[lazy.predict(X)], memory.predict(X))
    assert np.unique(lazy.predict(X)).size == 2
    np.testing.assert_allclose(lazy.lower_bound_, memory.lower_bound_, rtol=1e-8)
    np.testing.assert_allclose(
        lazy.means_[order_lazy], memory.means_[order_memory], rtol=1e-8, atol=1e-12
    )


def test_em_on_dask_rejects_bad_input(client):
    from bayesgmm import EMGaussianMixture

    with pytest.raises(ValueError, match="^X: expected a 2-D array"):
        EMGaussianMixture(2).fit(da.zeros((10, 2, 2), chunks=5))
    with pytest.raises(TypeError, match="^X: expected an array of real numbers"):
        EMGaussianMixture(2).fit(da.zeros((10, 2), dtype=complex, chunks=5))
    bad = np.random.default_rng(0).normal(size=(100, 2))
    bad[50, 0] = np.inf
    with pytest.raises(ValueError, match="^X: expected finite values"):
        EMGaussianMixture(2, random_state=0).fit(da.from_array(bad, chunks=20))
