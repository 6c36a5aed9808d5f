"""``bayesgmm predict MODEL DATA --output CSV``, end to end through :func:`bayesgmm.cli.main`.

The written table is compared with the saved model's own ``predict`` and
``predict_proba``; errors follow the command line's conventions (one line on
stderr, exit 1 for data and runtime errors, 2 for usage errors, 130 when
interrupted) and never leave a file behind.
"""

import inspect
import os

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run

import bayesgmm
from bayesgmm import em as em_module
from bayesgmm.datasets import make_mixture


@pytest.fixture(scope="module")
def mixture():
    X, labels, _ = make_mixture(120, 2, 2, separation=4.0, random_state=4)
    return X, labels


@pytest.fixture
def files(tmp_path, mixture):
    """A CSV with named columns and an EM model fitted on them, saved."""
    X, _ = mixture
    data = tmp_path / "data.csv"
    frame = pd.DataFrame(X, columns=["x", "y"])
    frame.to_csv(data, index=False)
    model = em_module.EMGaussianMixture(2, random_state=0).fit(frame)
    model.save(tmp_path / "em.json")
    return tmp_path, data, frame


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_help_has_examples(capsys):
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0
    assert out.startswith("usage: bayesgmm predict")
    assert "bayesgmm predict" in out.split("examples:")[1]
    code, out, _ = run(capsys, "--help")
    assert "predict" in out


def test_em_labels_and_probabilities_match_the_model(capsys, files):
    folder, data, frame = files
    code, out, err = run(capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv")
    assert code == 0, err
    assert "written to" in out
    table = pd.read_csv(folder / "p.csv")
    assert list(table.columns) == ["label", "proba_0", "proba_1"]
    model = bayesgmm.load(folder / "em.json")
    np.testing.assert_array_equal(table["label"], model.predict(frame))
    np.testing.assert_allclose(
        table[["proba_0", "proba_1"]], model.predict_proba(frame), rtol=1e-12
    )


def test_columns_choose_the_features(capsys, files, mixture):
    folder, _, frame = files
    wide = frame.assign(extra=np.arange(len(frame)))[["extra", "y", "x"]]
    wide.to_csv(folder / "wide.csv", index=False)
    code, _, err = run(
        capsys,
        "predict",
        folder / "em.json",
        folder / "wide.csv",
        "--columns",
        "x,y",
        "--output",
        folder / "p.csv",
    )
    assert code == 0, err
    expected = bayesgmm.load(folder / "em.json").predict(frame)
    np.testing.assert_array_equal(pd.read_csv(folder / "p.csv")["label"], expected)
    # Without --columns the file has three columns: refused with a hint.
    code, out, err = run(
        capsys, "predict", folder / "em.json", folder / "wide.csv", "--output", folder / "q.csv"
    )
    assert_one_line_error(code, out, err, 1, "fitted on 2 column(s)", "--columns")
    # The right number of columns but other names: refused as well.
    frame.rename(columns={"x": "a"}).to_csv(folder / "renamed.csv", index=False)
    code, out, err = run(
        capsys, "predict", folder / "em.json", folder / "renamed.csv", "--output", folder / "q.csv"
    )
    assert_one_line_error(code, out, err, 1, "fitted on columns ['x', 'y']")
    assert not (folder / "q.csv").exists()


def test_dp_writes_credible_intervals(capsys, files):
    folder, data, frame = files
    model = bayesgmm.DPGaussianMixture(4, random_state=0).fit(frame)
    model.save(folder / "dp.json")
    code, out, err = run(
        capsys,
        "predict",
        folder / "dp.json",
        data,
        "--output",
        folder / "p.csv",
        "--ci-prob",
        0.8,
        "--ci-kind",
        "hdi",
    )
    assert code == 0, err
    assert "hdi intervals of probability 0.8" in out
    table = pd.read_csv(folder / "p.csv")
    expected = bayesgmm.load(folder / "dp.json").predict_proba(frame, ci_prob=0.8, ci_kind="hdi")
    n_components = expected.sizes["component"]
    assert table.shape == (len(frame), 1 + 4 * n_components)
    for k in range(n_components):
        np.testing.assert_allclose(table[f"proba_{k}"], expected["mean"][:, k], rtol=1e-12)
        for part in ("median", "lower", "upper"):
            np.testing.assert_allclose(table[f"proba_{k}_{part}"], expected[part][:, k], rtol=1e-12)
        assert (table[f"proba_{k}_lower"] <= table[f"proba_{k}_upper"]).all()
    np.testing.assert_array_equal(table["label"], expected["mean"].values.argmax(axis=1))


def test_em_has_no_intervals_to_write(capsys, files):
    folder, data, _ = files
    code, out, err = run(
        capsys,
        "predict",
        folder / "em.json",
        data,
        "--output",
        folder / "p.csv",
        "--ci-prob",
        0.9,
    )
    em_predict_proba = inspect.signature(em_module.EMGaussianMixture.predict_proba)
    if "ci_prob" in em_predict_proba.parameters:
        # EM with a bootstrap accepts ci_prob; a model saved without one refuses it by name.
        assert_one_line_error(code, out, err, 1, "ci_prob")
    else:
        assert_one_line_error(code, out, err, 2, "--ci-prob", "EMGaussianMixture")
    assert listing(folder) == ["data.csv", "em.json"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--ci-prob", "1.5"],
        ["--ci-prob", "0"],
        ["--ci-prob", "often"],
        ["--ci-kind", "eti"],
        ["--ci-prob", "0.4", "--ci-kind", "hdi"],
        ["--ci-kind", "widest", "--ci-prob", "0.9"],
        ["--colour"],
    ],
)
def test_usage_errors_exit_2_and_write_nothing(capsys, files, extra):
    folder, data, _ = files
    code, out, err = run(
        capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv", *extra
    )
    assert_one_line_error(code, out, err, 2)
    assert listing(folder) == ["data.csv", "em.json"]


def test_missing_output_is_a_usage_error(capsys, files):
    folder, data, _ = files
    code, out, err = run(capsys, "predict", folder / "em.json", data)
    assert_one_line_error(code, out, err, 2, "--output")


def test_data_and_model_errors_exit_1(capsys, files):
    folder, data, _ = files
    out_csv = folder / "p.csv"
    code, out, err = run(capsys, "predict", folder / "none.json", data, "--output", out_csv)
    assert_one_line_error(code, out, err, 1, "none.json: no such file")
    code, out, err = run(
        capsys, "predict", folder / "em.json", folder / "x.csv", "--output", out_csv
    )
    assert_one_line_error(code, out, err, 1, "x.csv")
    (folder / "notes.json").write_text('{"hello": 1}')
    code, out, err = run(capsys, "predict", folder / "notes.json", data, "--output", out_csv)
    assert_one_line_error(code, out, err, 1, "notes.json")
    (folder / "nan.csv").write_text("x,y\n1,2\n3,NA\n")
    code, out, err = run(
        capsys, "predict", folder / "em.json", folder / "nan.csv", "--output", out_csv
    )
    assert_one_line_error(code, out, err, 1, "nan.csv")
    assert not out_csv.exists()


def test_existing_output_needs_force(capsys, files):
    folder, data, _ = files
    (folder / "p.csv").write_text("keep me\n")
    code, out, err = run(capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv")
    assert_one_line_error(code, out, err, 1, "already exists", "--force")
    assert (folder / "p.csv").read_text() == "keep me\n"
    code, _, err = run(
        capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv", "--force"
    )
    assert code == 0, err
    assert pd.read_csv(folder / "p.csv").shape == (120, 3)


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_no_file(capsys, files, monkeypatch, error):
    import bayesgmm.io as io

    folder, data, _ = files
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("p.csv"):
            raise error
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", failing_replace)
    code, out, err = run(capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv")
    if isinstance(error, KeyboardInterrupt):
        assert code == 130
    else:
        assert_one_line_error(code, out, err, 1, "No space left on device")
    assert listing(folder) == ["data.csv", "em.json"]


def test_ctrl_c_while_predicting_exits_130_and_writes_nothing(capsys, files, monkeypatch):
    folder, data, _ = files

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(em_module.EMGaussianMixture, "predict_proba", interrupted)
    code, _, err = run(capsys, "predict", folder / "em.json", data, "--output", folder / "p.csv")
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err
    assert listing(folder) == ["data.csv", "em.json"]


@pytest.mark.sampling
def test_marginal_model_writes_intervals(capsys, tmp_path, marginal_fit):
    model, X = marginal_fit
    np.savetxt(tmp_path / "data.csv", X[:40], delimiter=",")
    model.save(tmp_path / "nuts.nc")
    code, _, err = run(
        capsys,
        "predict",
        tmp_path / "nuts.nc",
        tmp_path / "data.csv",
        "--output",
        tmp_path / "p.csv",
        "--ci-prob",
        0.9,
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "p.csv")
    expected = model.predict_proba(X[:40], ci_prob=0.9)
    for k in range(3):
        np.testing.assert_allclose(table[f"proba_{k}_lower"], expected["lower"][:, k], atol=1e-12)
    np.testing.assert_array_equal(table["label"], model.predict(X[:40]))
