"""DPGaussianMixture on Dask arrays equals the in-memory fit (2-worker LocalCluster)."""

import json

import numpy as np
import pytest
from conftest import COVARIANCE_TYPES

from bayesgmm import _cavi_fit, dirichlet_process
from bayesgmm.dirichlet_process import DPGaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

# Rounding differs only in the order of the sums over rows (blocks, then a tree of
# blocks), about 1e-16 relative per iteration; 1e-10 leaves room for a few hundred
# iterations of that, and a different merge or step decision would be far larger.
RTOL = 1e-10
CHUNK = 250


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
    # three overlapping clusters: T = 10 k-means starts leave duplicates to merge
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(c, 1.0, (400, 2)) for c in (-3.0, 0.0, 3.0)])
    return rng.permutation(X) + np.array([50.0, -20.0])


@pytest.fixture(scope="module")
def fits(client, data):
    """In-memory and Dask fits from the same start, for every covariance type.

    n = 1200 is below the 5000-row k-means sample, so both start from k-means
    on all rows with the same generator.
    """
    out = {}
    for kind in COVARIANCE_TYPES:
        memory = DPGaussianMixture(10, covariance_type=kind, random_state=1).fit(data)
        chunked = DPGaussianMixture(10, covariance_type=kind, random_state=1).fit(
            da.from_array(data, chunks=(CHUNK, 2))
        )
        out[kind] = (memory, chunked)
    return out


def _relative(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_dask_fit_equals_in_memory_fit(fits, covariance_type):
    memory, chunked = fits[covariance_type]
    trace = chunked.elbo_trace_
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    assert chunked.elbo_ == trace[-1]
    # same decisions: iterations, merges, convergence
    assert memory.n_merges_ > 0
    assert chunked.n_merges_ == memory.n_merges_
    assert chunked.n_iter_ == memory.n_iter_
    assert chunked.converged_ == memory.converged_
    assert trace.shape == memory.elbo_trace_.shape
    assert abs(chunked.elbo_ - memory.elbo_) <= RTOL * abs(memory.elbo_)
    assert _relative(trace, memory.elbo_trace_) <= RTOL
    assert _relative(chunked.means_, memory.means_) <= RTOL
    assert _relative(chunked.covariances_, memory.covariances_) <= RTOL
    assert _relative(chunked.weights_, memory.weights_) <= RTOL
    np.testing.assert_allclose(chunked.expected_counts_, memory.expected_counts_, atol=1e-8)
    assert chunked.effective_n_components_ == memory.effective_n_components_
    assert chunked.n_samples_ == memory.n_samples_ == 1200
    assert chunked.n_features_in_ == 2


def test_merge_quantities_summed_over_blocks_equal_the_responsibility_matrix(fits, data):
    """Overlaps R'R and merge entropy changes from row blocks equal those from (n, T) R."""
    memory, _ = fits["full"]
    state, kind = memory._posterior.state, "full"
    centred = data - memory._center
    in_memory = _cavi_fit.InMemoryRows(centred, kind, 10)
    in_memory.resp = np.empty((data.shape[0], 10))
    chunked = _cavi_fit.ChunkedRows(
        da.from_array(data, chunks=(CHUNK, 2)), memory._center, kind, 10
    )
    expected_stats = in_memory.e_step(state)
    stats = chunked.e_step(state)  # without the overlap: overlap() makes one more pass
    np.testing.assert_allclose(stats.sum_xx, expected_stats.sum_xx, rtol=1e-12, atol=1e-9)
    active = np.arange(4)
    np.testing.assert_allclose(
        chunked.overlap(active), in_memory.overlap(active), rtol=1e-12, atol=1e-12
    )
    pairs = [(0, 1), (0, 2), (1, 3), (2, 3)]
    expected = in_memory.entropy_changes(pairs)
    assert np.all(expected <= 1e-9)  # merging never adds entropy
    np.testing.assert_allclose(chunked.entropy_changes(pairs), expected, rtol=1e-10, atol=1e-9)


def test_only_small_summaries_leave_the_workers(client, data, monkeypatch):
    """Every reduced result is at most T x T or T x d x d: no (n, T) responsibilities."""
    sizes = []
    original = _cavi_fit.map_reduce

    def recording(func, X, **kwargs):
        result = original(func, X, **kwargs)
        parts = (
            [result.stats, result.overlap]
            if isinstance(result, _cavi_fit._BlockSummary)
            else [result]
        )
        for part in parts:
            if isinstance(part, _cavi_fit.SufficientStatistics):
                sizes.extend(a.size for a in (part.nk, part.sum_x, part.sum_xx))
            elif part is not None:
                sizes.append(np.asarray(part).size)
        return result

    monkeypatch.setattr(_cavi_fit, "map_reduce", recording)
    DPGaussianMixture(10, max_iter=5, random_state=0).fit(da.from_array(data, chunks=(CHUNK, 2)))
    assert sizes and max(sizes) <= max(10 * 10, 10 * 2 * 2) < data.shape[0]


def test_predictions_are_lazy_and_equal(fits, data):
    _, model = fits["full"]
    X = da.from_array(data, chunks=(300, 2))
    proba = model.predict_proba(X)
    score = model.score_samples(X)
    labels = model.predict(X)
    for lazy in (proba, score, labels):
        assert isinstance(lazy, da.Array)
    assert proba.shape == (1200, 10) and score.shape == (1200,)
    np.testing.assert_allclose(proba.compute(), model.predict_proba(data), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(score.compute(), model.score_samples(data), rtol=1e-12)
    np.testing.assert_array_equal(labels.compute(), model.predict(data))
    assert model.score(X) == pytest.approx(model.score(data), rel=1e-12)
    with pytest.raises(ValueError, match="^X: expected 2 feature"):
        model.predict_proba(da.from_array(np.ones((10, 3)), chunks=5))


def test_lazy_tasks_do_not_carry_the_training_data(fits, data):
    cloudpickle = pytest.importorskip("cloudpickle")
    for model in fits["full"]:
        graph = model.score_samples(da.from_array(data[:10], chunks=5)).__dask_graph__()
        assert len(cloudpickle.dumps(dict(graph))) < data.nbytes / 2
        assert model._X_train is not None  # the model itself keeps its data


def test_random_start_on_dask(client, data):
    model = DPGaussianMixture(10, init_params="random", max_iter=40, random_state=2).fit(
        da.from_array(data, chunks=(CHUNK, 2))
    )
    trace = model.elbo_trace_
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))
    assert model.expected_counts_.sum() == pytest.approx(1200.0, rel=1e-12)


def test_pointwise_results_compute_the_dask_data(fits, data, monkeypatch):
    memory, chunked = fits["diag"]
    assert chunked._X_train is not data and isinstance(chunked._X_train, da.Array)
    tree = chunked.to_datatree(n_draws=20, random_state=0)
    np.testing.assert_array_equal(tree["observed_data"]["obs"].values, data)
    reference = memory.to_datatree(n_draws=20, random_state=0)
    # same seed and (to rounding) the same q: the same draws and log-likelihoods
    np.testing.assert_allclose(
        tree["log_likelihood"]["obs"].values,
        reference["log_likelihood"]["obs"].values,
        rtol=1e-8,
    )
    assert chunked.n_occupied_distribution(n_draws=20).sum() == pytest.approx(1.0)
    monkeypatch.setattr(dirichlet_process, "_POINTWISE_MAX_BYTES", 1000)
    with pytest.raises(ValueError, match="^to_datatree: expected per-observation results"):
        chunked.to_datatree(n_draws=20)
    with pytest.raises(ValueError, match="^n_occupied_distribution: expected per-observation"):
        chunked.n_occupied_distribution(n_draws=20)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto:UserWarning")
def test_compare_with_subsampled_loo_on_a_dask_fit(fits, data):
    """compare() reads to_datatree(), which computes the Dask data when it fits in memory."""
    from bayesgmm import compare

    _, chunked = fits["full"]
    table = compare(
        {"dp": chunked},
        data,
        n_draws=100,
        subsample_threshold=500,
        subsample_size=200,
        random_state=0,
    )
    assert "subsampled (200 of 1200)" in table.loc["dp", "criterion"]
    assert np.isfinite(table.loc["dp", "elpd"])


def test_save_of_a_dask_fit_stores_no_data(fits, data, tmp_path):
    import bayesgmm

    _, chunked = fits["spherical"]
    path = tmp_path / "dp.json"
    chunked.save(path)
    state = json.loads(path.read_text())
    assert state["state"]["X_train"] is None
    # the approximation check, which needs the data, was made before saving them away
    assert state["state"]["importance"] is not None and state["state"]["pool_seed"] is None
    loaded = bayesgmm.load(path)
    assert loaded.n_samples_ == 1200
    assert loaded.pareto_k_ == chunked.pareto_k_
    np.testing.assert_array_equal(loaded.predict_proba(data), chunked.predict_proba(data))
    np.testing.assert_array_equal(loaded.score_samples(data), chunked.score_samples(data))
    with pytest.raises(ValueError, match="^to_datatree: expected a model that holds"):
        loaded.to_datatree(n_draws=10)


def test_dask_input_errors(client, data):
    with pytest.raises(ValueError, match="^method: expected 'cavi' for Dask input"):
        DPGaussianMixture(5, method="advi").fit(da.from_array(data, chunks=(CHUNK, 2)))
    bad = data.copy()
    bad[1100, 0] = np.nan
    with pytest.raises(ValueError, match="^X: expected finite values"):
        DPGaussianMixture(5).fit(da.from_array(bad, chunks=(CHUNK, 2)))
    with pytest.raises(ValueError, match="^X: expected at least 2 samples"):
        DPGaussianMixture(5).fit(da.from_array(data[:1], chunks=1))
