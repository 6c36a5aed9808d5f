import numpy as np
import pandas as pd
import pytest
from scipy.stats import entropy as scipy_entropy

from bayesgmm.clustering import cluster_uncertainty, coclustering_matrix
from bayesgmm.params import GaussianMixtureParams


class DrawsModel:
    """A stand-in Bayesian model whose membership draws are given directly."""

    def __init__(self, draws):
        self.draws = np.asarray(draws, dtype=float)
        k = self.draws.shape[2]
        self.params_ = GaussianMixtureParams(
            np.full(k, 1 / k), np.zeros((k, 1)), np.ones(k), "spherical"
        )
        self.n_features_in_ = 1

    def membership_draws(self, X, max_draws=None, random_state=None):
        self.random_state = random_state
        return self.draws


def random_draws(rng, n_draws=40, n=15, k=3, concentration=2.0):
    return rng.dirichlet(np.full(k, concentration), size=(n_draws, n))


def test_coclustering_matches_naive_loop():
    rng = np.random.default_rng(0)
    draws = random_draws(rng, n_draws=7, n=9, k=4)
    naive = np.zeros((9, 9))
    for s in range(7):
        for i in range(9):
            for j in range(9):
                naive[i, j] += sum(draws[s, i, k] * draws[s, j, k] for k in range(4)) / 7
    np.testing.assert_allclose(coclustering_matrix(draws), naive, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_coclustering_is_label_invariant(seed):
    rng = np.random.default_rng(seed)
    draws = random_draws(rng)
    permuted = np.stack([d[:, rng.permutation(d.shape[1])] for d in draws])
    assert not np.allclose(permuted, draws)
    matrix = coclustering_matrix(draws)
    np.testing.assert_allclose(coclustering_matrix(permuted), matrix, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-15)
    assert matrix.min() >= 0.0 and matrix.max() <= 1.0


def test_coclustering_of_hard_labels_is_the_same_label_indicator():
    labels = np.array([0, 2, 2, 1, 0])
    one_hot = np.eye(3)[labels]
    expected = (labels[:, None] == labels[None, :]).astype(float)
    np.testing.assert_array_equal(coclustering_matrix(one_hot), expected)


def test_coclustering_rejects_bad_shapes():
    with pytest.raises(ValueError, match="^draws:"):
        coclustering_matrix(np.ones(3))


def test_intervals_are_equal_tailed_quantiles_of_the_top_component():
    rng = np.random.default_rng(1)
    draws = random_draws(rng, n_draws=200, n=12, k=3, concentration=1.0)
    result = cluster_uncertainty(DrawsModel(draws), np.zeros((12, 1)), ci_prob=0.8)
    table = result.table
    mean = draws.mean(axis=0)
    np.testing.assert_array_equal(table["label"], mean.argmax(axis=1))
    rows = np.arange(12)
    top = draws[:, rows, mean.argmax(axis=1)]
    np.testing.assert_allclose(table["probability"], np.median(top, axis=0))
    np.testing.assert_allclose(table["mean"], mean.max(axis=1))
    np.testing.assert_allclose(table["lower"], np.quantile(top, 0.1, axis=0))
    np.testing.assert_allclose(table["upper"], np.quantile(top, 0.9, axis=0))
    np.testing.assert_allclose(table["entropy"], scipy_entropy(mean, axis=1))
    assert result.n_draws == 200 and result.ci_prob == 0.8 and result.ci_kind == "eti"
    np.testing.assert_allclose(result.coclustering, coclustering_matrix(draws))


def test_highest_density_intervals_are_the_shortest_holding_the_mass():
    rng = np.random.default_rng(2)
    draws = random_draws(rng, n_draws=200, n=12, k=3, concentration=0.5)
    result = cluster_uncertainty(DrawsModel(draws), np.zeros((12, 1)), ci_kind="hdi")
    table = result.table
    top = draws[:, np.arange(12), table["label"].to_numpy()]
    eti = cluster_uncertainty(DrawsModel(draws), np.zeros((12, 1))).table
    inside = (top >= table["lower"].to_numpy()) & (top <= table["upper"].to_numpy())
    assert (inside.mean(axis=0) >= 0.94 - 1 / 200).all()
    assert ((table["upper"] - table["lower"]) <= (eti["upper"] - eti["lower"]) + 1e-12).all()
    assert (table["lower"] <= table["probability"]).all()
    assert (table["probability"] <= table["upper"]).all()
    assert result.ci_kind == "hdi"


def test_the_point_lies_inside_its_interval_when_the_mean_does_not():
    # Skewed draws: mostly near 1, a few near 0. The mean falls below the
    # equal-tailed interval; the median reported as the probability cannot.
    n_draws = 100
    top = np.where(np.arange(n_draws) < 2, 0.02, 0.995)
    draws = np.stack([top, 1.0 - top], axis=-1)[:, None, :]
    table = cluster_uncertainty(DrawsModel(draws), np.zeros((1, 1))).table
    assert table["mean"].iloc[0] < table["lower"].iloc[0]
    assert table["lower"].iloc[0] <= table["probability"].iloc[0] <= table["upper"].iloc[0]


def test_deprecated_names_warn_and_mean_the_same():
    draws = random_draws(np.random.default_rng(3), n_draws=50, n=6)
    model = DrawsModel(draws)
    expected = cluster_uncertainty(model, np.zeros((6, 1)), ci_prob=0.8, random_state=4)
    with pytest.warns(FutureWarning, match="hdi_prob is deprecated"):
        old = cluster_uncertainty(model, np.zeros((6, 1)), hdi_prob=0.8)
    pd.testing.assert_frame_equal(old.table, expected.table)
    with pytest.warns(FutureWarning, match="random_seed is deprecated"):
        cluster_uncertainty(model, np.zeros((6, 1)), random_seed=9)
    assert model.random_state == 9
    with pytest.warns(FutureWarning, match="hdi_prob is deprecated"):
        assert old.hdi_prob == 0.8
    with pytest.raises(TypeError, match="pass only ci_prob"):
        cluster_uncertainty(model, np.zeros((6, 1)), ci_prob=0.5, hdi_prob=0.8)


def test_ambiguity_rule():
    n_draws = 100
    grid = np.linspace(0, 1, n_draws)
    zeros = np.zeros(n_draws)
    certain = np.column_stack([0.97 + 0.02 * grid, 0.03 - 0.02 * grid, zeros])
    straddles = np.column_stack([0.3 + 0.6 * grid, 0.7 - 0.6 * grid, zeros])
    separated = np.column_stack([0.7 + 0.05 * grid, 0.2 - 0.05 * grid, 0.1 + zeros])
    three_way = np.column_stack([0.4 + 0.05 * grid, 0.35 - 0.05 * grid, 0.25 + zeros])
    draws = np.stack([certain, straddles, separated, three_way], axis=1)
    table = cluster_uncertainty(DrawsModel(draws), np.zeros((4, 1))).table
    assert table["ambiguous"].tolist() == [False, True, False, True]
    assert table["lower"].iloc[1] < 0.5
    assert table["lower"].iloc[3] < 0.5 < table["lower"].iloc[2]


@pytest.mark.parametrize("seed", range(3))
def test_overlap_condition_implies_lower_below_half(seed):
    draws = random_draws(np.random.default_rng(seed), n_draws=50, n=200, k=3, concentration=1.0)
    table = cluster_uncertainty(DrawsModel(draws), np.zeros((200, 1))).table
    overlap = table["second_upper"] > table["lower"]
    assert overlap.any()
    assert (table["lower"][overlap] < 0.5).all()
    np.testing.assert_array_equal(table["ambiguous"], table["lower"] < 0.5)


def test_point_estimate_intervals_collapse():
    params = GaussianMixtureParams(
        [0.3, 0.3, 0.4], [[-1.0], [0.0], [1.5]], [0.5, 0.5, 0.5], "spherical"
    )

    class PointModel:
        params_ = params
        n_features_in_ = 1

        def predict_proba(self, X):
            return params.predict_proba(X)

    X = np.linspace(-3, 3, 25)[:, None]
    result = cluster_uncertainty(PointModel(), X)
    table = result.table
    assert result.n_draws == 1
    np.testing.assert_array_equal(table["lower"], table["probability"])
    np.testing.assert_array_equal(table["upper"], table["probability"])
    # With one draw, ambiguity reduces to "top probability below one half".
    np.testing.assert_array_equal(table["ambiguous"], table["probability"] < 0.5)
    assert table["ambiguous"].any() and not table["ambiguous"].all()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 2])
def test_bad_ci_prob(bad):
    draws = random_draws(np.random.default_rng(0), n=3)
    with pytest.raises(ValueError, match="^ci_prob:"):
        cluster_uncertainty(DrawsModel(draws), np.zeros((3, 1)), ci_prob=bad)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"ci_kind": "quantile"}, ValueError), ({"ci_prob": 0.4, "ci_kind": "hdi"}, ValueError)],
)
def test_bad_ci_kind(kwargs, error):
    draws = random_draws(np.random.default_rng(0), n=3)
    with pytest.raises(error, match="^ci_(kind|prob):"):
        cluster_uncertainty(DrawsModel(draws), np.zeros((3, 1)), **kwargs)


def test_unfitted_model_is_rejected():
    class Unfitted:
        pass

    with pytest.raises(ValueError, match="not fitted"):
        cluster_uncertainty(Unfitted(), np.zeros((3, 1)))


@pytest.mark.sampling
def test_marginal_model_uncertainty(marginal_fit):
    model, X = marginal_fit
    result = cluster_uncertainty(model, X, max_draws=200, random_state=0)
    table = result.table
    assert 1 < result.n_draws <= 200
    # The probability is the posterior median, which lies inside its interval by
    # construction (the mean of skewed draws need not).
    assert (table["lower"] <= table["probability"] + 1e-12).all()
    assert (table["probability"] <= table["upper"] + 1e-12).all()
    # Posterior mean labels agree with the model's own predict almost everywhere
    # (they can differ only where the mean membership is close to a tie).
    agree = (table["label"].to_numpy() == model.predict(X)).mean()
    assert agree > 0.97
    # Points labelled differently are put together with probability near 0.
    co = result.coclustering
    labels = table["label"].to_numpy()
    certain = (table["lower"] > 0.9).to_numpy()
    across = certain[:, None] & certain[None, :] & (labels[:, None] != labels[None, :])
    assert co[across].max() < 0.1
    within = certain[:, None] & certain[None, :] & (labels[:, None] == labels[None, :])
    assert co[within].min() > 0.8
