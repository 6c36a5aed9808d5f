"""`bayesgmm fit --weights COLUMN`: frequency weights from a column of the data file."""

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run
from conftest import make_mixture_data

import bayesgmm
from bayesgmm.io import read_data, read_weight_column


@pytest.fixture
def counts_csv(tmp_path):
    """Two features, a count per row (zeros included) and a text label column."""
    X, labels = make_mixture_data(n=90, d=2, k=2, seed=8)
    counts = np.random.default_rng(9).integers(0, 4, size=len(X))
    frame = pd.DataFrame({"x": X[:, 0], "count": counts, "y": X[:, 1]})
    frame["kind"] = np.where(labels == 0, "a", "b")
    path = tmp_path / "counts.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_read_weight_column_gives_the_weights_and_the_other_columns(counts_csv):
    path, frame = counts_csv
    weights, columns = read_weight_column(path, "count", exclude=("kind",))
    np.testing.assert_array_equal(weights, frame["count"].to_numpy(float))
    assert columns == "0,2"
    X, names = read_data(path, columns)
    assert names == ["x", "y"]
    np.testing.assert_array_equal(X, frame[["x", "y"]].to_numpy())
    assert read_weight_column(path, "1", columns="y,x")[1] == "2,0"
    with pytest.raises(ValueError, match="^columns: expected data columns other than weights"):
        read_weight_column(path, "count", columns="x,count")


def test_fit_with_weights_equals_the_fit_to_repeated_rows(capsys, counts_csv, tmp_path):
    path, frame = counts_csv
    code, out, err = run(
        capsys,
        "fit",
        path,
        "--model",
        "em",
        "--components",
        2,
        "--weights",
        "count",
        "--columns",
        "x,y",
        "--seed",
        0,
        "--output",
        tmp_path / "em.json",
    )
    assert code == 0, err
    assert "rows weighted by column count" in out
    assert "per unit of weight" in out
    model = bayesgmm.load(tmp_path / "em.json")
    counts = frame["count"].to_numpy()
    repeated = np.repeat(frame[["x", "y"]].to_numpy(), counts, axis=0)
    reference = bayesgmm.EMGaussianMixture(2, random_state=0).fit(
        frame[["x", "y"]].to_numpy(), sample_weight=counts
    )
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    assert model.score(repeated) == pytest.approx(reference.score(repeated), rel=1e-12)


def test_fit_with_weights_and_labels_takes_the_other_columns(capsys, counts_csv, tmp_path):
    path, _ = counts_csv
    code, _, err = run(
        capsys,
        "fit",
        path,
        "--model",
        "em",
        "--components",
        2,
        "--weights",
        "count",
        "--labels",
        "kind",
        "--output",
        tmp_path / "ssc.json",
    )
    assert code == 0, err
    assert bayesgmm.load(tmp_path / "ssc.json").n_features_in_ == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [(-1.0, "--weights: expected"), (np.nan, "line 5, column count: missing value")],
)
def test_bad_weights_fail_with_one_line_naming_weights(
    capsys, counts_csv, tmp_path, values, expected
):
    path, frame = counts_csv
    bad = frame.copy()
    bad.loc[3, "count"] = values
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    output = tmp_path / "em.json"
    code, out, err = run(
        capsys,
        "fit",
        bad_path,
        "--model",
        "em",
        "--components",
        2,
        "--weights",
        "count",
        "--columns",
        "x,y",
        "--output",
        output,
    )
    assert_one_line_error(code, out, err, 1, expected)
    assert not output.exists()


def test_weights_with_bootstrap_or_a_missing_column_are_refused(capsys, counts_csv, tmp_path):
    path, _ = counts_csv
    common = ["fit", path, "--model", "em", "--components", 2, "--output", tmp_path / "m.json"]
    code, out, err = run(capsys, *common, "--weights", "count", "--bootstrap", 5)
    assert_one_line_error(code, out, err, 2, "--bootstrap", "--weights")
    code, out, err = run(capsys, *common, "--weights", "nope", "--columns", "x,y")
    assert_one_line_error(code, out, err, 1, "no column 'nope'")
