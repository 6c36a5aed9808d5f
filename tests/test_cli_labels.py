"""Data files with a text column (R's iris as CSV): only the chosen columns are parsed, and
`bayesgmm fit --labels COLUMN` fits EM semi-supervised from a column of known classes."""

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run
from sklearn.datasets import load_iris

import bayesgmm
from bayesgmm import EMGaussianMixture
from bayesgmm.io import read_data, read_labelled_data

MEASUREMENTS = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]


@pytest.fixture
def iris_csv(tmp_path):
    """iris as R's write.csv(iris) writes it: four measurements and a quoted Species."""
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=MEASUREMENTS)
    frame["Species"] = np.asarray(data.target_names)[data.target]
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False, quoting=2)  # csv.QUOTE_NONNUMERIC
    return path, frame


def test_a_text_column_left_out_is_never_parsed(iris_csv):
    path, frame = iris_csv
    by_position, names = read_data(path, columns="0,1,2,3")
    np.testing.assert_array_equal(by_position, frame[MEASUREMENTS].to_numpy())
    assert names == MEASUREMENTS
    by_name, names = read_data(path, columns="Petal.Width,Sepal.Length")
    np.testing.assert_array_equal(by_name, frame[["Petal.Width", "Sepal.Length"]].to_numpy())
    assert names == ["Petal.Width", "Sepal.Length"]
    with pytest.raises(ValueError, match=r"line 2, column Species: 'setosa' is not a number"):
        read_data(path)
    with pytest.raises(ValueError, match=r"column Species: 'setosa' is not a number"):
        read_data(path, columns="Species,0")


def test_select_runs_on_iris_with_columns(capsys, iris_csv, tmp_path):
    path, _ = iris_csv
    code, out, err = run(
        capsys, "select", path, "--columns", "0,1,2,3", "--max-components", 2, "--seed", 0
    )
    assert code == 0, err
    assert "best: 2 component(s)" in out


def test_read_labelled_data_takes_the_other_columns_and_missing_labels():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/d.csv"
        with open(path, "w") as f:
            f.write("a,kind,b\n1,x,2\n3,NA,4\n5,,6\n7,y,8\n")
        X, names, labels = read_labelled_data(path, "kind")
        assert X.tolist() == [[1, 2], [3, 4], [5, 6], [7, 8]]
        assert names == ["a", "b"] and labels.tolist() == ["x", None, None, "y"]
        X, names, labels = read_labelled_data(path, "1", columns="b")
        assert X.tolist() == [[2], [4], [6], [8]] and names == ["b"]
        with pytest.raises(ValueError, match="columns: expected data columns other than"):
            read_labelled_data(path, "kind", columns="a,kind")
        np.save(f"{folder}/d.npy", np.array([[1.0, 0.0], [2.0, np.nan], [3.0, 1.0]]))
        X, names, labels = read_labelled_data(f"{folder}/d.npy", "1")
        assert X.tolist() == [[1.0], [2.0], [3.0]] and labels.tolist() == ["0", None, "1"]


def test_fit_with_labels_is_the_semi_supervised_fit(capsys, iris_csv, tmp_path):
    path, frame = iris_csv
    rows = np.arange(len(frame))
    frame.loc[rows % 10 != 0, "Species"] = None  # written as empty cells: unknown
    frame.to_csv(path, index=False)
    out_file = tmp_path / "ssc.json"
    code, out, err = run(
        capsys,
        "fit",
        path,
        "--model",
        "em",
        "--components",
        3,
        "--labels",
        "Species",
        "--seed",
        1,
        "--output",
        out_file,
    )
    assert code == 0, err
    assert "15 labelled row(s); components 0 = setosa, 1 = versicolor, 2 = virginica" in out
    loaded = bayesgmm.load(out_file)
    assert list(loaded.feature_names_in_) == MEASUREMENTS
    codes = {"setosa": 0, "versicolor": 1, "virginica": 2}
    labels = np.array([codes.get(s, -1) for s in frame["Species"].fillna("")])
    direct = EMGaussianMixture(3, random_state=1).fit(frame[MEASUREMENTS], labels=labels)
    np.testing.assert_allclose(loaded.means_, direct.means_, rtol=1e-12)
    truth = np.repeat([0, 1, 2], 50)
    assert np.mean(loaded.predict(frame[MEASUREMENTS]) == truth) > 0.9


@pytest.mark.parametrize(
    ("extra", "code", "fragment"),
    [
        (["--model", "dp", "--components", 3], 2, "--labels: semi-supervised fitting is for"),
        (["--model", "em", "--components", 2], 2, "--labels: 3 classes but --components 2"),
        (["--model", "em", "--components", 3, "--labels", "Colour"], 1, "no column 'Colour'"),
    ],
)
def test_fit_with_labels_refuses_with_one_line(capsys, iris_csv, tmp_path, extra, code, fragment):
    path, _ = iris_csv
    argv = ["fit", path, "--output", tmp_path / "m.json"] + extra
    if "--labels" not in extra:
        argv += ["--labels", "Species"]
    status, out, err = run(capsys, *argv)
    assert status == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesgmm: error: ") and fragment in lines[0]
    assert not (tmp_path / "m.json").exists()
