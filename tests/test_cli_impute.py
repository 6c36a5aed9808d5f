"""``bayesgmm impute MODEL DATA --output CSV``, end to end through :func:`bayesgmm.cli.main`.

The written file is compared with the saved model's own ``impute``; errors follow
the command line's conventions (one line on stderr, exit 1 for data errors) and
never leave a file behind.
"""

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run

import bayesgmm
from bayesgmm import em as em_module
from bayesgmm.datasets import make_mixture


@pytest.fixture(scope="module")
def mixture():
    X, _, _ = make_mixture(150, 2, 3, separation=4.0, random_state=4)
    return X


@pytest.fixture
def files(tmp_path, mixture):
    """An EM model fitted on complete named columns, and a CSV with holes spelt three ways."""
    frame = pd.DataFrame(mixture, columns=["x", "y", "z"])
    em_module.EMGaussianMixture(2, random_state=0).fit(frame).save(tmp_path / "em.json")
    cells = [[repr(float(v)) for v in row] for row in mixture[:20]]
    cells[0][0] = ""
    cells[1][1:] = ["NA", "NaN"]
    cells[2][2] = "nan"
    lines = ["x,y,z"] + [",".join(row) for row in cells]
    data = tmp_path / "holes.csv"
    data.write_text("\n".join(lines) + "\n")
    return tmp_path, data


def test_help_has_examples(capsys):
    code, out, _ = run(capsys, "impute", "--help")
    assert code == 0
    assert out.startswith("usage: bayesgmm impute")
    assert "bayesgmm impute" in out.split("examples:")[1]
    code, out, _ = run(capsys, "--help")
    assert "impute" in out


def test_missing_cells_are_filled_as_the_model_imputes(capsys, files, mixture):
    folder, data = files
    code, out, err = run(capsys, "impute", folder / "em.json", data, "--output", folder / "f.csv")
    assert code == 0, err
    assert "4 missing value(s) in 3 of the 20 row(s)" in out
    filled = pd.read_csv(folder / "f.csv")
    assert list(filled.columns) == ["x", "y", "z"]
    assert not filled.isna().any().any()
    holes = np.array(mixture[:20])
    holes[0, 0] = holes[1, 1] = holes[1, 2] = holes[2, 2] = np.nan
    expected = bayesgmm.load(folder / "em.json").impute(holes)
    np.testing.assert_array_equal(filled.to_numpy(), expected)
    observed = ~np.isnan(holes)
    np.testing.assert_array_equal(filled.to_numpy()[observed], mixture[:20][observed])


def test_headerless_npy_gives_a_headerless_csv(capsys, files, mixture):
    folder, _ = files
    holes = np.array(mixture[:10])
    holes[3, 1] = np.nan
    np.save(folder / "holes.npy", holes)
    code, _, err = run(
        capsys, "impute", folder / "em.json", folder / "holes.npy", "--output", folder / "f.csv"
    )
    assert code == 0, err
    written = np.loadtxt(folder / "f.csv", delimiter=",")
    assert written.shape == (10, 3) and np.isfinite(written).all()


def test_a_row_without_values_is_refused_and_nothing_written(capsys, files):
    folder, data = files
    with open(data, "a") as f:
        f.write(",,\n")
    code, out, err = run(capsys, "impute", folder / "em.json", data, "--output", folder / "f.csv")
    assert_one_line_error(code, out, err, 1, str(data), "entirely NaN", "20")
    assert not (folder / "f.csv").exists()


def test_an_existing_output_needs_force(capsys, files):
    folder, data = files
    (folder / "f.csv").write_text("keep me")
    code, out, err = run(capsys, "impute", folder / "em.json", data, "--output", folder / "f.csv")
    assert_one_line_error(code, out, err, 1, "--force")
    assert (folder / "f.csv").read_text() == "keep me"
    code, _, err = run(
        capsys, "impute", folder / "em.json", data, "--output", folder / "f.csv", "--force"
    )
    assert code == 0, err
