import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage
from matplotlib.patches import Ellipse, Rectangle

from bayesgmm import dirichlet_process as dp_module
from bayesgmm import em, plotting
from bayesgmm.clustering import cluster_uncertainty
from bayesgmm.selection import SelectionResult

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plotting functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    return np.vstack([c + rng.normal(size=(60, 2)) for c in centres])


@pytest.fixture(scope="module")
def em_model(data):
    return em.EMGaussianMixture(3, random_state=0).fit(data)


@pytest.fixture(scope="module")
def dp_model(data):
    return dp_module.DPGaussianMixture(8, random_state=0).fit(data)


def ellipses(ax, gid=None):
    return [p for p in ax.patches if isinstance(p, Ellipse) and p.get_gid() == gid]


def test_plot_clusters_point_estimate(em_model, data):
    ax = plotting.plot_clusters(em_model, data)
    assert len(ellipses(ax)) == 3 * 3  # three components, 1, 2 and 3 sigma
    assert ellipses(ax, "posterior") == []
    assert ax.get_xlabel() == "feature 0" and ax.get_ylabel() == "feature 1"
    points = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    alpha = points.get_facecolors()[:, 3]
    expected = np.clip(em_model.predict_proba(data).max(axis=1), 0.15, 1.0)
    np.testing.assert_allclose(alpha, expected)
    # Ellipse axes: 2 * n_std * sqrt(eigenvalues of the covariance).
    largest = max(ellipses(ax), key=lambda e: e.width * e.height)
    eig = max(np.linalg.eigvalsh(c).max() for c in em_model.params_.full_covariances())
    assert max(largest.width, largest.height) <= 2 * 3 * np.sqrt(eig) + 1e-9


def test_plot_clusters_draws_posterior_ellipses(dp_model, data):
    ax = plotting.plot_clusters(dp_model, data, n_std=(1, 2), n_posterior_draws=12)
    shown = int((dp_model.params_.weights >= 0.005).sum())
    assert 3 <= shown < dp_model.params_.n_components
    assert len(ellipses(ax)) == 2 * shown
    assert len(ellipses(ax, "posterior")) == 12 * shown
    assert all(e.get_alpha() < 0.5 for e in ellipses(ax, "posterior"))


def test_plot_clusters_uses_feature_names_and_given_axes(data):
    frame = pd.DataFrame(data, columns=["length", "width"])
    model = em.EMGaussianMixture(3, random_state=0).fit(frame)
    fig, ax = plt.subplots()
    out = plotting.plot_clusters(model, frame, ax=ax, n_std=(2,))
    assert out is ax
    assert ax.get_xlabel() == "length" and ax.get_ylabel() == "width"
    assert len(ellipses(ax)) == 3


def test_plot_clusters_bad_input(em_model, data):
    with pytest.raises(ValueError, match="^dims:"):
        plotting.plot_clusters(em_model, data, dims=(0, 0))
    with pytest.raises(ValueError, match="^n_std:"):
        plotting.plot_clusters(em_model, data, n_std=(1, -2))
    with pytest.raises(ValueError, match="^X:"):
        plotting.plot_clusters(em_model, data[:, :1])
    one_d = em.EMGaussianMixture(2, random_state=0).fit(data[:, :1])
    with pytest.raises(ValueError, match="^X:"):
        plotting.plot_clusters(one_d, data[:, :1])


def test_plot_membership_uncertainty(dp_model, data):
    ax = plotting.plot_membership_uncertainty(dp_model, data, random_state=0)
    assert len(ax.containers) == 1  # one set of error bars
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in points) == data.shape[0]
    table = cluster_uncertainty(dp_model, data, random_state=0).table
    hollow = points[1]
    assert len(hollow.get_offsets()) == int(table["ambiguous"].sum())
    assert "membership probability" in ax.get_ylabel()
    assert any(np.allclose(line.get_ydata(), 0.5) for line in ax.get_lines())
    # The points are the medians, each inside its error bar.
    shown = np.sort(np.concatenate([c.get_offsets()[:, 1] for c in points]))
    np.testing.assert_allclose(shown, np.sort(table["probability"]))
    assert (table["lower"] <= table["probability"]).all()
    assert (table["probability"] <= table["upper"]).all()


def test_plot_membership_uncertainty_takes_the_deprecated_names(dp_model, data):
    with pytest.warns(FutureWarning, match="hdi_prob is deprecated"):
        ax = plotting.plot_membership_uncertainty(dp_model, data, hdi_prob=0.8, random_state=0)
    assert "80% equal-tailed interval" in ax.get_ylabel()
    with pytest.warns(FutureWarning, match="random_seed is deprecated"):
        plotting.plot_membership_uncertainty(dp_model, data, random_seed=0)


def test_plot_selection_error_bars_where_there_are_standard_errors():
    table = pd.DataFrame(
        {
            "n_components": [1, 2, 3, 1, 2, 3],
            "covariance_type": ["full"] * 3 + ["diag"] * 3,
            "elpd": [-500.0, -420.0, -421.0, -510.0, -430.0, -428.0],
            "se": [10.0, 9.0, 9.5, 10.0, 9.0, 9.0],
        }
    )
    result = SelectionResult(table, 2, "full", None, "loo", "elpd", "elpd (PSIS-LOO)")
    ax = plotting.plot_selection(result)
    assert len(ax.containers) == 2  # one error-bar container per covariance type
    assert ax.get_ylabel() == "elpd (PSIS-LOO)"
    legend = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert legend == ["VVI (diag)", "VVV (full)", "chosen"]


def test_plot_compare(em_model, data):
    from bayesgmm.comparison import compare

    models = {"K=2": em.EMGaussianMixture(2, random_state=0).fit(data), "K=3": em_model}
    table = compare(models, data, k_folds=4, random_state=0)
    ax = plotting.plot_compare(table)
    assert len(ax.containers) == 2  # elpd +- SE, difference +- dSE
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    assert "elpd" in ax.get_xlabel()
    with pytest.raises(ValueError, match="^table:"):
        plotting.plot_compare(pd.DataFrame({"x": [1.0]}))


def test_plot_dp_weights(dp_model):
    ax = plotting.plot_dp_weights(dp_model, n_draws=200)
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == dp_model.weights_.size
    np.testing.assert_allclose([b.get_height() for b in bars], dp_model.weights_)
    assert len(ax.containers) >= 1 and ax.get_ylabel() == "weight"
    # The dashed reference line: one point's worth of weight, 1 / n.
    assert any(np.allclose(line.get_ydata(), 1 / 180) for line in ax.get_lines())


def test_plot_coclustering_orders_blocks():
    labels = np.array([0, 1, 0, 1, 2, 0, 2, 1])
    matrix = (labels[:, None] == labels[None, :]).astype(float)
    ax = plotting.plot_coclustering(matrix)
    images = [a for a in ax.get_images() if isinstance(a, AxesImage)]
    assert len(images) == 1
    shown = images[0].get_array()
    # After reordering, points of one cluster are contiguous: the shown matrix is block diagonal.
    changes = np.count_nonzero(np.diff(shown[0]) != 0) + np.count_nonzero(np.diff(shown[-1]) != 0)
    assert changes <= 2
    assert len(ax.figure.axes) == 2  # the heatmap and its colour bar
    with pytest.raises(ValueError, match="^matrix:"):
        plotting.plot_coclustering(np.ones((2, 3)))
    with pytest.raises(ValueError, match="^order:"):
        plotting.plot_coclustering(matrix, order=[0, 0, 1, 2, 3, 4, 5, 6])


def test_plot_density(em_model, data):
    ax = plotting.plot_density(em_model, data, levels=6, grid_size=40)
    contours = [c for c in ax.collections if not isinstance(c, PathCollection)]
    assert len(contours) == 1 and len(contours[0].levels) >= 5
    one_d = em.EMGaussianMixture(2, random_state=0).fit(data[:, :1])
    ax = plotting.plot_density(one_d, data[:, :1], grid_size=50)
    curve = ax.get_lines()[0]
    x, y = curve.get_xdata(), curve.get_ydata()
    assert 0.9 < np.trapezoid(y, x) < 1.01  # most of the density lies over the data range


def test_plot_density_more_than_two_features():
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(-3, 1, (80, 3)), rng.normal(3, 1, (80, 3))])
    model = em.EMGaussianMixture(2, random_state=0).fit(X)
    ax = plotting.plot_density(model, X, dims=(2, 0), grid_size=30)
    assert ax.get_xlabel() == "feature 2" and ax.get_ylabel() == "feature 0"


@pytest.mark.sampling
def test_plot_clusters_marginal_model(marginal_fit):
    model, X = marginal_fit
    ax = plotting.plot_clusters(model, X, n_posterior_draws=10)
    assert len(ellipses(ax)) == 3 * 3
    assert len(ellipses(ax, "posterior")) == 10 * 3
