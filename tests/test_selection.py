import numpy as np
import pytest

from bayesgmm.datasets import make_mixture
from bayesgmm.selection import SelectionResult, select_n_components


@pytest.mark.parametrize("n_components", range(2, 7))
def test_bic_picks_the_true_number_of_components(n_components):
    # Moderate overlap: Dasgupta separation 2 (the closest pair of components is
    # 2 sqrt(d lambda_max) apart; about 3% of points mislabelled by the true mixture).
    chosen = []
    for seed in range(5):
        X, _, _ = make_mixture(
            300 * n_components, n_components, 2, separation=2.0, random_state=seed
        )
        result = select_n_components(
            X, range(1, n_components + 2), covariance_types=("full",), random_state=seed
        )
        chosen.append(result.best_n_components)
    assert chosen == [n_components] * 5


@pytest.fixture(scope="module")
def three_blobs():
    X, _, _ = make_mixture(600, 3, 2, separation=2.5, random_state=7)
    return X


@pytest.mark.parametrize("method", ["bic", "aic", "icl"])
def test_em_criteria_table(three_blobs, method):
    X = three_blobs
    n = X.shape[0]
    types = ("full", "tied", "diag", "spherical")
    result = select_n_components(
        X, range(1, 6), method=method, covariance_types=types, random_state=0
    )
    assert isinstance(result, SelectionResult)
    table = result.table
    assert len(table) == 5 * 4
    assert set(zip(table["n_components"], table["covariance_type"], strict=True)) == {
        (k, c) for k in range(1, 6) for c in types
    }
    for column in (method, "bic", "bic_mclust", "log_likelihood", "n_parameters", "note"):
        assert column in table.columns
    # mclust's BIC is the same number with the sign flipped: 2 log L - n_par log n.
    expected = 2 * table["log_likelihood"] - table["n_parameters"] * np.log(n)
    np.testing.assert_allclose(table["bic_mclust"], expected, rtol=1e-12)
    np.testing.assert_allclose(table["bic_mclust"], -table["bic"], rtol=1e-10)
    if method == "aic":
        np.testing.assert_allclose(
            table["aic"], -2 * table["log_likelihood"] + 2 * table["n_parameters"]
        )
    if method == "icl":
        assert (table["icl"] >= table["bic"] - 1e-9).all()  # ICL = BIC + 2 * entropy >= BIC
    best = table[method].idxmin()
    assert result.best_n_components == table.loc[best, "n_components"]
    assert result.best_covariance_type == table.loc[best, "covariance_type"]
    assert result.best_model.n_components == result.best_n_components
    assert result.best_model.covariance_type == result.best_covariance_type
    assert result.best_n_components == 3


def test_degenerate_fits_are_left_out_with_a_note():
    rng = np.random.default_rng(0)
    # Thirty copies of one point: a component placed on them collapses.
    X = np.vstack([rng.normal(size=(200, 2)), np.tile([[8.0, 8.0]], (30, 1))])
    result = select_n_components(X, range(1, 4), covariance_types=("full",), random_state=0)
    table = result.table
    left_out = table["note"].str.contains("left out|failed")
    assert left_out.any()
    chosen = table[
        (table["n_components"] == result.best_n_components)
        & (table["covariance_type"] == result.best_covariance_type)
    ]
    assert not chosen["note"].str.contains("left out|failed").iloc[0]


def test_reproducible(three_blobs):
    a = select_n_components(three_blobs, range(1, 4), covariance_types=("diag",), random_state=3)
    b = select_n_components(three_blobs, range(1, 4), covariance_types=("diag",), random_state=3)
    np.testing.assert_array_equal(a.table["bic"], b.table["bic"])


def test_plot_draws_one_curve_per_covariance_type(three_blobs):
    import matplotlib.pyplot as plt

    result = select_n_components(
        three_blobs, range(1, 5), covariance_types=("full", "diag"), random_state=0
    )
    ax = result.plot()
    try:
        curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 4]
        assert len(curves) == 2
        assert ax.get_xlabel() == "number of components"
        assert "BIC" in ax.get_ylabel()
        assert len(ax.containers) == 0  # no standard errors, no error bars
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"method": "bayes"}, ValueError, "method"),
        ({"method": 3}, TypeError, "method"),
        ({"n_components": [0, 1]}, ValueError, "n_components"),
        ({"n_components": 3}, TypeError, "n_components"),
        ({"n_components": [1.5]}, TypeError, "n_components"),
        ({"n_components": []}, ValueError, "n_components"),
        ({"covariance_types": ("full", "banana")}, ValueError, "covariance_types"),
        ({"covariance_types": ()}, ValueError, "covariance_types"),
        ({"n_init": 0}, ValueError, "n_init"),
        ({"fit_kwargs": [1]}, TypeError, "fit_kwargs"),
        ({"method": "loo", "fit_kwargs": {"log_likelihood": False}}, ValueError, "fit_kwargs"),
        ({"method": "loo", "fit_kwargs": {"log_likelihood": "auto"}}, ValueError, "fit_kwargs"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(error, match=f"^{name}:"):
        select_n_components(X, **{"n_components": range(1, 3), **kwargs})


def test_more_components_than_samples():
    with pytest.raises(ValueError, match="^n_components:"):
        select_n_components(np.zeros((5, 1)) + np.arange(5)[:, None], range(1, 7))


def test_bad_data():
    with pytest.raises(ValueError, match="^X:"):
        select_n_components(np.array([[np.nan, 1.0], [0.0, 1.0]]), range(1, 2))


@pytest.mark.slow
@pytest.mark.sampling
@pytest.mark.parametrize(
    "n_components",
    [
        2,
        3,
        4,
        5,
        pytest.param(
            6,
            marks=pytest.mark.xfail(
                strict=True,
                reason="issue 15: the K = 6 fit has one Pareto k above 0.7 (of 600 rows) and is "
                "kept out of the choice, so K = 7 is chosen; a fit should not be dropped for "
                "one influential point",
            ),
        ),
    ],
)
def test_loo_picks_the_true_number_of_components(n_components):
    X, _, _ = make_mixture(100 * n_components, n_components, 2, separation=2.5, random_state=1)
    result = select_n_components(
        X,
        range(1, n_components + 2),
        method="loo",
        covariance_types=("full",),
        random_state=1,
        fit_kwargs={"draws": 300, "tune": 300, "chains": 4},
    )
    table = result.table
    for column in ("elpd", "se", "elpd_diff", "dse", "indistinguishable", "note"):
        assert column in table.columns
    assert result.best_n_components == n_components
    ax = result.plot()
    assert len(ax.containers) == 1  # error bars from the standard errors


def test_dp_posterior_of_the_number_of_occupied_components(three_blobs):
    result = select_n_components(
        three_blobs, range(1, 9), method="dp", covariance_types=("full", "diag"), random_state=0
    )
    table = result.table
    assert len(table) == 2 * 8
    assert set(table.columns) >= {"n_components", "covariance_type", "probability", "elbo"}
    for _, rows in table.groupby("covariance_type"):
        # Truncation 8: every posterior draw occupies between 1 and 8 components.
        np.testing.assert_allclose(rows["probability"].sum(), 1.0, atol=1e-12)
    assert result.best_n_components == 3
    assert type(result.best_model).__name__ == "DPGaussianMixture"
    best_elbo = table.groupby("covariance_type")["elbo"].first().idxmax()
    assert result.best_covariance_type == best_elbo
    ax = result.plot()
    assert len([line for line in ax.get_lines() if len(line.get_xdata()) == 8]) == 2


def test_one_standard_error_rule_prefers_the_simplest_model_within_one_se():
    import pandas as pd

    from bayesgmm.selection import one_standard_error_rule

    table = pd.DataFrame(
        {
            "n_components": [1, 2, 3, 4, 2],
            "covariance_type": ["full", "full", "full", "full", "spherical"],
            "n_parameters": [5, 11, 17, 23, 7],
            "elpd_diff": [-60.0, -3.0, 0.0, -0.5, -9.0],
            "dse": [10.0, 3.5, 0.0, 1.0, 4.0],
        }
    )
    best, within = one_standard_error_rule(table)
    assert within.tolist() == [False, True, True, True, False]
    assert best == 1  # K=2 full: within one SE of K=3 and with fewer parameters
    table.loc[1, ["elpd_diff", "dse"]] = [-6.0, 2.0]  # now K=2 is more than one SE worse
    best, within = one_standard_error_rule(table)
    assert best == 2 and within.tolist() == [False, False, True, True, False]
    # A difference below 4 is small whatever its SE (a nearly empty extra component
    # predicts like the smaller model, so its dse is tiny): the simpler model stays in.
    table.loc[1, ["elpd_diff", "dse"]] = [-3.0, 0.5]
    best, within = one_standard_error_rule(table)
    assert best == 1 and within.tolist() == [False, True, True, True, False]


def test_dataframe_input_keeps_feature_names(three_blobs):
    import pandas as pd

    frame = pd.DataFrame(three_blobs, columns=["a", "b"])
    result = select_n_components(frame, range(2, 4), covariance_types=("full",), random_state=0)
    assert list(result.best_model.feature_names_in_) == ["a", "b"]
    reference = select_n_components(
        three_blobs, range(2, 4), covariance_types=("full",), random_state=0
    )
    np.testing.assert_allclose(result.table["bic"], reference.table["bic"], rtol=1e-12)


def test_loo_asks_every_fit_for_the_pointwise_log_likelihood(monkeypatch):
    """fit leaves the log-likelihood out on large data by default; LOO cannot."""
    from bayesgmm.marginal import MarginalGaussianMixture

    seen = []

    def fake_fit(self, X, **kwargs):
        seen.append(kwargs)
        raise RuntimeError("stop after the first fit")

    monkeypatch.setattr(MarginalGaussianMixture, "fit", fake_fit)
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(RuntimeError, match="stop after"):
        select_n_components(X, [1, 2], method="loo", fit_kwargs={"draws": 10})
    assert seen[0]["log_likelihood"] is True and seen[0]["draws"] == 10
