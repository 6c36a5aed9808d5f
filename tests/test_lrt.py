"""The sequential bootstrap likelihood-ratio test for the number of components."""

import numpy as np
import pytest

from bayesgmm import bootstrap as bootstrap_module
from bayesgmm import bootstrap_lrt, cli, select_n_components
from bayesgmm._bootstrap import BootstrapWarning, Replicates, split_component
from bayesgmm._gaussian import COVARIANCE_TYPES, LAYOUTS
from bayesgmm.datasets import make_mixture

COLUMNS = [
    "n_components",
    "alternative",
    "log_likelihood",
    "log_likelihood_alternative",
    "statistic",
    "p_value",
    "rejected",
    "n_boot",
    "n_failed",
    "note",
]


@pytest.fixture(scope="module")
def two_clusters():
    """Two well-separated clusters: 1 vs 2 is rejected, 2 vs 3 is not."""
    X, _, _ = make_mixture(300, 2, 2, separation=6.0, random_state=3)
    return X


@pytest.fixture(scope="module")
def table(two_clusters):
    return bootstrap_lrt(
        two_clusters, "full", max_components=4, n_boot=49, n_init=2, random_state=0
    )


def test_table_layout_and_sequential_stop(table):
    assert list(table.columns) == COLUMNS
    assert table["n_components"].tolist() == [1, 2]  # stops at the first test not rejected
    assert (table["alternative"] == table["n_components"] + 1).all()
    first, second = table.iloc[0], table.iloc[1]
    # 1 vs 2 on two separated clusters: no replicate gets near the observed statistic.
    assert first["p_value"] == pytest.approx(1 / 50) and first["rejected"]
    # The fixed seed draws a data set on which a 5% test of the true K = 2 accepts
    # (it rejects a true null with probability 0.05 over seeds).
    assert second["p_value"] > 0.05 and not second["rejected"]
    assert table.attrs["n_components"] == 2
    assert (table["n_failed"] == 0).all()
    statistic = 2 * (first["log_likelihood_alternative"] - first["log_likelihood"])
    assert first["statistic"] == pytest.approx(statistic)


def test_p_values_lie_on_the_bootstrap_grid(table):
    """p = (1 + #{LRTS_b >= LRTS}) / (B + 1) takes values in {1, ..., B + 1} / (B + 1)."""
    counts = table["p_value"] * 50
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert ((table["p_value"] > 0) & (table["p_value"] <= 1)).all()


def test_every_test_runs_when_not_sequential(two_clusters):
    full = bootstrap_lrt(
        two_clusters,
        "tied",
        max_components=3,
        n_boot=9,
        sequential=False,
        n_init=1,
        random_state=1,
    )
    assert full["n_components"].tolist() == [1, 2]


def test_failed_replicates_are_counted_not_dropped(two_clusters, monkeypatch):
    """Replicates whose fit fails are left out of the p-value, counted, and warned about."""
    real = bootstrap_module.run_replicates

    def failing(data, *args, **kwargs):
        result = real(data, *args, **kwargs)
        log_lik = result.log_likelihood.copy()
        log_lik[:3] = np.nan
        failed = result.failed.copy()
        failed[:3] = True
        fields = {f: getattr(result, f) for f in Replicates.__dataclass_fields__}
        return Replicates(**{**fields, "log_likelihood": log_lik, "failed": failed})

    monkeypatch.setattr(bootstrap_module, "run_replicates", failing)
    with pytest.warns(BootstrapWarning, match="left out of the p-values"):
        result = bootstrap_lrt(
            two_clusters, "diag", max_components=2, n_boot=19, n_init=1, random_state=0
        )
    assert result["n_failed"].tolist() == [3]
    # 16 valid replicates: the p-value's grid is in units of 1 / 17.
    assert (result["p_value"] * 17).round(9).iloc[0] == round(result["p_value"].iloc[0] * 17)


def test_bad_arguments(two_clusters):
    with pytest.raises(ValueError, match="max_components"):
        bootstrap_lrt(two_clusters, max_components=1)
    with pytest.raises(ValueError, match="covariance_type"):
        bootstrap_lrt(two_clusters, "VVV")
    with pytest.raises(ValueError, match="level"):
        bootstrap_lrt(two_clusters, level=1.5)
    with pytest.raises(TypeError, match="sequential"):
        bootstrap_lrt(two_clusters, sequential="yes")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_split_component_adds_one_component_and_keeps_the_likelihood_reachable(covariance_type):
    rng = np.random.default_rng(0)
    k, d = 2, 3
    layout = LAYOUTS[covariance_type]
    weights = np.array([[0.3, 0.7], [0.6, 0.4]])
    means = rng.normal(size=(2, k, d))
    covariances = np.stack([layout.unit_covariances(k, d) * s for s in (1.0, 2.0)])
    w, m, c = split_component(weights, means, covariances, covariance_type)
    assert w.shape == (2, k + 1) and m.shape == (2, k + 1, d)
    assert c.shape == (2,) + layout.parameter_shape(k + 1, d)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    heaviest = weights.argmax(axis=1)
    for b in range(2):
        # The two halves average to the split component's mean.
        j = heaviest[b]
        np.testing.assert_allclose((m[b, j] + m[b, k]) / 2, means[b, j])
        assert w[b, j] == w[b, k] == weights[b, j] / 2


def test_select_n_components_by_lrt(two_clusters):
    result = select_n_components(
        two_clusters,
        range(1, 5),
        method="lrt",
        covariance_types=("full", "tied"),
        random_state=0,
        n_init=2,
        fit_kwargs={"n_boot": 19},
    )
    assert result.best_n_components == 2
    assert result.criterion == "p_value"
    assert {"statistic", "p_value", "kept", "covariance_type", "bic"} <= set(result.table.columns)
    assert result.best_model.n_components == 2
    with pytest.raises(TypeError, match="fit_kwargs"):
        select_n_components(two_clusters, range(1, 3), method="lrt", fit_kwargs={"draws": 10})


def test_cli_select_lrt(tmp_path, capsys, two_clusters):
    import pandas as pd

    path = tmp_path / "data.csv"
    pd.DataFrame(two_clusters, columns=["x", "y"]).to_csv(path, index=False)
    code = cli.main(
        ["select", str(path), "--method", "lrt", "--max-components", "3", "--n-boot", "19"]
        + ["--covariance-types", "full", "--seed", "0"]
    )
    out, _ = capsys.readouterr()
    assert code == 0 and "p_value" in out and "best: 2 component(s)" in out


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2, 3])
def test_lrt_stops_at_the_true_number_of_components(k):
    """Simulated data with K = 1, 2, 3 well-separated components: the test keeps K.

    Each test of the true K against K + 1 rejects with probability 0.05 over
    data sets; the fixed seeds are ones where it accepts, as 95% are.
    """
    X, _, _ = make_mixture(400, k, 2, separation=5.0, random_state=10 + k)
    result = bootstrap_lrt(X, "full", max_components=5, n_boot=99, random_state=k)
    assert result.attrs["n_components"] == k
