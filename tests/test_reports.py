"""mclust-style reports: EMGaussianMixture.summary, SelectionResult.summary, mclust's model
names and the BIC plot's names, markers and colours."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from bayesgmm import EMGaussianMixture, plotting
from bayesgmm._reports import BIC_PLOT_STYLE, MCLUST_DESCRIPTIONS, mclust_name
from bayesgmm.selection import SelectionResult


@pytest.fixture(scope="module")
def iris():
    return load_iris(as_frame=True).data


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(
    ("covariance_type", "k", "log_likelihood", "bic", "icl", "sizes"),
    [
        # mclust 6.0.0, Mclust(iris[, 1:4], G = 3, modelNames = "EEE",
        # control = emControl(tol = 1e-12)): EM run to convergence (mclust's default
        # tolerance stops at -256.3547, BIC -632.9647, ICL -637.8401).
        ("tied", 3, -256.354, -632.9633, -637.7945, [49, 50, 51]),
        # mclust 6.0.0, Mclust(iris[, 1:4], G = 2, modelNames = "VVV").
        ("full", 2, -214.3547, -574.0178, -574.0191, [50, 100]),
    ],
)
def test_summary_matches_mclust_on_iris(iris, covariance_type, k, log_likelihood, bic, icl, sizes):
    model = EMGaussianMixture(
        k, covariance_type=covariance_type, tol=1e-10, max_iter=2000, random_state=0
    ).fit(iris)
    report = model.summary(iris)
    assert report.log_likelihood == pytest.approx(log_likelihood, abs=2e-3)
    assert report.bic == pytest.approx(bic, abs=5e-3)
    assert report.icl == pytest.approx(icl, abs=5e-3)
    assert report.bic == pytest.approx(-model.bic(iris), rel=1e-12)
    assert report.n_parameters == model.params_.n_parameters()
    assert report.n_samples == 150
    assert sorted(report.cluster_sizes.tolist()) == sizes


def test_summary_prints_mclusts_layout(iris):
    model = EMGaussianMixture(3, covariance_type="tied", random_state=0).fit(iris)
    text = str(model.summary(iris))
    assert repr(model.summary(iris)) == text
    lines = text.splitlines()
    assert lines[1] == "Gaussian finite mixture model fitted by EM algorithm "
    assert set(lines[0]) == {"-"} and len(lines[0]) == len(lines[1]) - 1
    header = " ".join(text.split())
    assert (
        "EMGaussianMixture EEE (ellipsoidal, equal volume, shape and orientation) model "
        "with 3 components [covariance_type='tied']:" in header
    )
    table = lines[lines.index("Clustering table:") + 1 :]
    assert table[0].split() == ["0", "1", "2"]
    assert sum(int(c) for c in table[1].split()) == 150
    row = lines[[i for i, line in enumerate(lines) if "log-likelihood" in line][0]]
    assert row.split() == ["log-likelihood", "n", "df", "BIC", "ICL"]
    assert "Means:" not in text
    detailed = str(model.summary(iris, parameters=True))
    for part in ("Mixing probabilities:", "Means:", "Variances:", "[,,2]", "petal width (cm)"):
        assert part in detailed


def test_summary_icl_uses_the_map_classification():
    """mclust's ICL adds 2 sum_i log max_k r_ik to its BIC: equal to the BIC when every
    point is certain, lower when some are not."""
    rng = np.random.default_rng(0)
    far = np.vstack([rng.normal(-20, 1, (50, 1)), rng.normal(20, 1, (50, 1))])
    report = EMGaussianMixture(2, random_state=0).fit(far).summary(far)
    assert report.icl == pytest.approx(report.bic, abs=1e-8)
    assert report.model_name == "V"
    near = np.vstack([rng.normal(-1, 1, (50, 1)), rng.normal(1, 1, (50, 1))])
    model = EMGaussianMixture(2, random_state=0).fit(near)
    report = model.summary(near)
    expected = report.bic + 2 * np.log(model.predict_proba(near).max(axis=1)).sum()
    assert report.icl == pytest.approx(expected, rel=1e-12)
    assert report.icl < report.bic - 1


def test_summary_checks_its_arguments(iris):
    model = EMGaussianMixture(2, random_state=0).fit(iris)
    with pytest.raises(ValueError, match="X: expected 4 feature"):
        model.summary(iris.to_numpy()[:, :2])
    with pytest.raises(TypeError, match="parameters: expected a bool"):
        model.summary(iris, parameters="yes")


@pytest.mark.parametrize(
    ("covariance_type", "d", "k", "name"),
    [
        ("full", 4, 3, "VVV"),
        ("tied", 4, 3, "EEE"),
        ("diag", 4, 3, "VVI"),
        ("spherical", 4, 3, "VII"),
        ("full", 4, 1, "XXX"),
        ("diag", 4, 1, "XXI"),
        ("spherical", 4, 1, "XII"),
        ("tied", 1, 2, "E"),
        ("full", 1, 2, "V"),
        ("full", 1, 1, "X"),
        ("VEV", 4, 2, "VEV"),
        ("EVI", 3, 1, "XXI"),
        ("mystery", 4, 2, "mystery"),
    ],
)
def test_mclust_names(covariance_type, d, k, name):
    assert mclust_name(covariance_type, d, k) == name
    assert name in MCLUST_DESCRIPTIONS or name == "mystery"


def selection_table():
    """A BIC table by hand: a degenerate fit (inf) and a failed one (NaN) are never listed."""
    return pd.DataFrame(
        {
            "n_components": [1, 2, 3, 1, 2, 3],
            "covariance_type": ["full"] * 3 + ["tied"] * 3,
            "bic": [600.0, 574.0, np.inf, 620.0, 580.0, np.nan],
            "bic_mclust": [-600.0, -574.0, -550.0, -620.0, -580.0, np.nan],
        }
    )


def test_selection_summary_lists_the_three_best_in_mclusts_sign():
    result = SelectionResult(selection_table(), 2, "full", None, "bic", "bic", "BIC")
    report = result.summary()
    assert report.table["model"].tolist() == ["VVV,2", "EEE,2", "VVV,1"]
    np.testing.assert_allclose(report.table["value"], [-574.0, -580.0, -600.0])
    np.testing.assert_allclose(report.table["difference"], [0.0, -6.0, -26.0])
    lines = str(report).splitlines()
    assert lines[0] == "Best BIC values:"
    assert lines[1].split() == ["VVV,2", "EEE,2", "VVV,1"]
    assert lines[2].split() == ["BIC", "-574", "-580", "-600"]
    assert lines[3].split() == ["BIC", "diff", "0", "-6", "-26"]
    assert result.summary(n_best=1).table["model"].tolist() == ["VVV,2"]


def test_selection_summary_of_a_real_selection(iris):
    from bayesgmm import select_n_components

    result = select_n_components(
        iris, range(1, 4), covariance_types=("full", "tied"), random_state=0, n_init=1
    )
    report = result.summary()
    best = result.table.loc[result.table["bic"].idxmin()]
    assert report.table["covariance_type"].iloc[0] == best["covariance_type"]
    assert report.table["value"].iloc[0] == pytest.approx(-best["bic"])
    assert report.table["value"].iloc[0] == pytest.approx(best["bic_mclust"])
    assert (np.diff(report.table["value"]) <= 0).all()


def test_selection_summary_for_loo_is_the_elpd():
    table = pd.DataFrame(
        {
            "n_components": [1, 2, 3],
            "covariance_type": ["diag"] * 3,
            "elpd": [-500.0, -420.0, -421.0],
        }
    )
    result = SelectionResult(table, 2, "diag", None, "loo", "elpd", "elpd")
    report = result.summary()
    assert report.table["model"].tolist() == ["VVI,2", "VVI,3", "VVI,1"]
    assert str(report).startswith("Best elpd values:")


def test_plot_selection_draws_mclusts_names_markers_and_colours():
    result = SelectionResult(selection_table(), 2, "full", None, "bic", "bic", "BIC")
    ax = plotting.plot_selection(result, criterion="bic_mclust")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"VVV (full)", "EEE (tied)"}
    vvv, eee = lines["VVV (full)"], lines["EEE (tied)"]
    assert vvv.get_color() == BIC_PLOT_STYLE["VVV"][2] == "#CC0000"
    assert vvv.get_marker() == "s" and vvv.get_markerfacecolor() == "none"  # R's pch 0
    assert eee.get_marker() == "s" and eee.get_markerfacecolor() == "#597DC3"  # pch 15
    np.testing.assert_allclose(vvv.get_ydata(), [-600.0, -574.0, -550.0])
    assert "mclust's sign" in ax.get_ylabel()
    assert len(plotting.plot_selection(result).get_lines()[0].get_ydata()) == 2  # inf dropped
    with pytest.raises(ValueError, match="criterion: expected a column of the table"):
        plotting.plot_selection(result, criterion="banana")


def test_every_mclust_model_has_a_distinct_plot_style():
    styles = {
        (str(m), f, c)
        for m, f, c in (
            BIC_PLOT_STYLE[n] for n in MCLUST_DESCRIPTIONS if len(n) == 3 and "X" not in n
        )
    }
    assert len(styles) == 14
