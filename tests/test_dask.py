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
