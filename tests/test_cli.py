import os
import re
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_one_line_error, run
from hypothesis import HealthCheck

import bayesgmm
from bayesgmm import _demo
from bayesgmm import dirichlet_process as dp_module
from bayesgmm import em as em_module
from bayesgmm.datasets import make_mixture

COMMANDS = ("demo", "fit", "select", "compare")
# tmp_path is shared by the examples of one hypothesis test; each overwrites its file.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def mixture():
    X, labels, _ = make_mixture(120, 2, 2, separation=4.0, random_state=4)
    return X, labels


@pytest.fixture
def csv_file(tmp_path, mixture):
    X, _ = mixture
    path = tmp_path / "data.csv"
    pd.DataFrame(X, columns=["x", "y"]).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- help
def test_top_level_help_lists_commands_and_examples(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0 and err == ""
    for command in COMMANDS:
        assert command in out
    assert "examples:" in out and "exit status" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: bayesgmm {command}")
    assert "examples:" in out
    assert f"bayesgmm {command}" in out.split("examples:")[1]


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"bayesgmm {bayesgmm.__version__}"


def test_the_version_has_one_source():
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())
    assert "version" not in config["project"] and config["project"]["dynamic"] == ["version"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bayesgmm.__version__"}


def test_python_dash_m_runs_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "bayesgmm", "fit", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0
    assert "usage: bayesgmm fit" in result.stdout


# -------------------------------------------------------------- fit and load
def test_fit_em_saves_a_model_that_predicts_as_a_direct_fit(capsys, tmp_path, csv_file):
    out_file = tmp_path / "em.json"
    code, out, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--seed",
        3,
        "--covariance-type",
        "diag",
        "--output",
        out_file,
    )
    assert code == 0, err
    assert f"saved to {out_file}" in out
    loaded = bayesgmm.load(out_file)
    frame = pd.read_csv(csv_file)
    direct = em_module.EMGaussianMixture(2, covariance_type="diag", random_state=3).fit(frame)
    assert list(loaded.feature_names_in_) == ["x", "y"]
    assert loaded.covariance_type == "diag"
    np.testing.assert_array_equal(loaded.score_samples(frame), direct.score_samples(frame))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "em.json"]


def test_fit_reads_npy(capsys, tmp_path, mixture):
    X, labels = mixture
    np.save(tmp_path / "data.npy", X)
    code, _, err = run(
        capsys,
        "fit",
        tmp_path / "data.npy",
        "--model",
        "em",
        "--components",
        2,
        "--seed",
        0,
        "--output",
        tmp_path / "m.json",
    )
    assert code == 0, err
    model = bayesgmm.load(tmp_path / "m.json")
    assert not hasattr(model, "feature_names_in_")
    predicted = model.predict(X)
    # Well separated (Dasgupta c = 4): the clustering matches the labels up to naming.
    agreement = max((predicted == labels).mean(), (predicted != labels).mean())
    assert agreement > 0.97


def test_fit_dp_round_trip(capsys, tmp_path, csv_file):
    code, _, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "dp",
        "--components",
        5,
        "--seed",
        1,
        "--output",
        tmp_path / "dp.json",
        "--quiet",
    )
    assert code == 0, err
    loaded = bayesgmm.load(tmp_path / "dp.json")
    assert isinstance(loaded, dp_module.DPGaussianMixture)
    assert loaded.truncation == 5
    frame = pd.read_csv(csv_file)
    direct = dp_module.DPGaussianMixture(5, random_state=1, progressbar=False).fit(frame)
    np.testing.assert_array_equal(loaded.score_samples(frame), direct.score_samples(frame))


def test_existing_output_needs_force(capsys, tmp_path, csv_file):
    target = tmp_path / "m.json"
    target.write_text("keep me")
    args = ("fit", csv_file, "--model", "em", "--components", 1, "--output", target)
    code, out, err = run(capsys, *args)
    assert_one_line_error(code, out, err, 1, "already exists", "--force")
    assert target.read_text() == "keep me"
    code, _, err = run(capsys, *args, "--force")
    assert code == 0, err
    assert bayesgmm.load(target).n_components == 1


# -------------------------------------------------------------------- select
def test_select_on_simulated_csv(capsys, tmp_path, csv_file):
    out_file = tmp_path / "bic.csv"
    code, out, err = run(
        capsys,
        "select",
        csv_file,
        "--max-components",
        4,
        "--covariance-types",
        "full,diag",
        "--seed",
        0,
        "--output",
        out_file,
    )
    assert code == 0, err
    assert "best: 2 component(s)" in out
    table = pd.read_csv(out_file, index_col=0)
    assert set(table["n_components"]) == {1, 2, 3, 4}
    assert set(table["covariance_type"]) == {"full", "diag"}


# ------------------------------------------------------------------- compare
def test_compare_saved_models(capsys, tmp_path, csv_file):
    for k in (1, 2):
        code, _, err = run(
            capsys,
            "fit",
            csv_file,
            "--model",
            "em",
            "--components",
            k,
            "--seed",
            0,
            "--output",
            tmp_path / f"k{k}.json",
        )
        assert code == 0, err
    code, out, err = run(
        capsys,
        "compare",
        tmp_path / "k1.json",
        tmp_path / "k2.json",
        "--data",
        csv_file,
        "--seed",
        0,
        "--output",
        tmp_path / "cmp.csv",
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "cmp.csv", index_col=0)
    assert list(table.index) == ["k2", "k1"]
    assert "k1" in out and "k2" in out


def test_compare_rejects_data_with_other_columns(capsys, tmp_path, csv_file):
    code, _, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--seed",
        0,
        "--output",
        tmp_path / "m.json",
    )
    assert code == 0, err
    other = tmp_path / "other.csv"
    other.write_text("x,y,z\n1,2,3\n4,5,6\n")
    code, out, err = run(capsys, "compare", tmp_path / "m.json", "--data", other)
    assert_one_line_error(code, out, err, 1, "2 column(s)", "has 3")
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(csv_file.read_text().replace("x,y", "a,b", 1))
    code, out, err = run(capsys, "compare", tmp_path / "m.json", "--data", renamed)
    assert_one_line_error(code, out, err, 1, "['x', 'y']", "['a', 'b']")


def test_compare_reports_a_file_that_is_not_a_model(capsys, tmp_path, csv_file):
    code, out, err = run(capsys, "compare", csv_file, "--data", csv_file)
    assert_one_line_error(code, out, err, 1, "not a bayesgmm model file")


# --------------------------------------------------------------- error paths
DATA_ERRORS = [
    ("missing", None, "no such file"),
    ("empty.csv", "", "empty"),
    ("header_only.csv", "x,y\n", "no data rows"),
    ("ragged.csv", "x,y\n1,2\n3,4,5\n", "line 3: expected 2 field(s)"),
    ("text.csv", "x,y\n1,2\n3,abc\n", "line 3, column y: 'abc' is not a number"),
    ("blank.csv", "x,y\n1,2\n,4\n", "line 3, column x: missing value"),
    ("na.csv", "x,y\n1,NA\n3,4\n", "line 2, column y: missing value"),
    ("na_first.csv", "1,NA\n3,4\n", "line 1, column 2: missing value"),
    ("inf.csv", "1,2\n3,inf\n", "not a finite number"),
    ("repeated.csv", "x,x\n1,2\n", "repeated column name"),
    ("binary.csv", b"\xff\xfe\x00\x81", "not UTF-8"),
    ("bad.npy", b"not an npy file", "not a valid .npy file"),
]


@pytest.mark.parametrize(
    ("name", "content", "fragment"), DATA_ERRORS, ids=[e[0] for e in DATA_ERRORS]
)
@pytest.mark.parametrize("command", ["fit", "select"])
def test_bad_data_is_one_line_exit_1(capsys, tmp_path, name, content, fragment, command):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    argv = [command, path]
    if command == "fit":
        argv += ["--model", "em", "--components", 2, "--output", tmp_path / "m.json"]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err, 1, fragment)
    assert not (tmp_path / "m.json").exists()


def test_object_npy_and_nan_npy_are_refused(capsys, tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, out, err = run(capsys, "select", tmp_path / "obj.npy")
    assert_one_line_error(code, out, err, 1, "Python objects")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [2.0, 3.0]]))
    code, out, err = run(capsys, "select", tmp_path / "nan.npy")
    assert_one_line_error(code, out, err, 1, "1 NaN")


def test_unknown_column_lists_the_available_ones(capsys, csv_file, tmp_path):
    code, out, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--columns",
        "x,width",
        "--output",
        tmp_path / "m.json",
    )
    assert_one_line_error(code, out, err, 1, "no column 'width'", "available: x, y")


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "DATA", "--model", "em", "--components", "0", "--output", "m.json"],
        ["fit", "DATA", "--model", "em", "--components", "two", "--output", "m.json"],
        ["fit", "DATA", "--model", "kmeans", "--components", "2", "--output", "m.json"],
        [
            "fit",
            "DATA",
            "--model",
            "em",
            "--components",
            "2",
            "--covariance-type",
            "round",
            "--output",
            "m.json",
        ],
        ["fit", "DATA", "--model", "em", "--components", "2", "--seed", "-1", "--output", "m"],
        ["fit", "DATA", "--model", "em", "--components", "2"],
        ["select", "DATA", "--method", "guess"],
        ["select", "DATA", "--max-components", "-3"],
        ["select", "DATA", "--covariance-types", "full,round"],
        ["compare", "m.json"],
        ["frobnicate"],
        [],
        ["fit", "DATA", "--model", "em", "--components", "2", "--output", "m", "--colour"],
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys, tmp_path, csv_file, argv, monkeypatch):
    argv = [str(csv_file) if a == "DATA" else a for a in argv]
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_output_folder_must_exist(capsys, tmp_path, csv_file):
    code, out, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--output",
        tmp_path / "no" / "m.json",
    )
    assert_one_line_error(code, out, err, 1, "does not exist")


# ------------------------------------------------------- interruption, atomicity
def test_ctrl_c_during_fit_exits_130_and_writes_nothing(capsys, tmp_path, csv_file, monkeypatch):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(em_module.EMGaussianMixture, "fit", interrupted)
    code, out, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--output",
        tmp_path / "m.json",
    )
    assert code == 130
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_no_file(capsys, tmp_path, csv_file, monkeypatch, error):
    import bayesgmm.io as io

    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("m.json"):
            raise error
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", failing_replace)
    code, out, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--output",
        tmp_path / "m.json",
    )
    if isinstance(error, KeyboardInterrupt):
        assert code == 130
    else:
        assert_one_line_error(code, out, err, 1, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


# ---------------------------------------------------------------------- demo
def test_demo_refuses_a_non_empty_folder_without_force(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "demo", "--output", tmp_path)
    assert_one_line_error(code, out, err, 1, "not empty", "--force")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_interrupted_demo_leaves_no_partial_output(capsys, tmp_path, monkeypatch):
    def half_done(folder, **kwargs):
        (folder / "clusters.png").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(_demo, "run_demo", half_done)
    code, _, err = run(capsys, "demo", "--output", tmp_path / "out")
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []
    # With --force into an existing folder, files already there are left as they were.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clusters.png").write_bytes(b"old")
    code, _, _ = run(capsys, "demo", "--output", tmp_path / "out", "--force")
    assert code == 130
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (tmp_path / "out" / "clusters.png").read_bytes() == b"old"


def test_demo_markdown_table_escapes_and_formats():
    table = pd.DataFrame({"elpd": [-1.23456, np.nan], "note": ["a|b", ""]}, index=["m1", "m2"])
    text = _demo.markdown_table(table)
    assert text.splitlines() == [
        "|  | elpd | note |",
        "|---|---|---|",
        "| m1 | -1.235 | a\\|b |",
        "| m2 |  |  |",
    ]


@pytest.mark.slow
@pytest.mark.sampling
def test_demo_runs_end_to_end(capsys, tmp_path):
    out = tmp_path / "demo"
    code, stdout, err = run(capsys, "demo", "--output", out, "--fast", "--quiet")
    assert code == 0, err
    chosen = re.search(r"Chosen number of components \(BIC\): (\d+) \((\w+)\)", stdout)
    assert chosen, stdout
    k, covariance_type = int(chosen.group(1)), chosen.group(2)
    names = {p.name for p in out.iterdir()}
    figures = {
        "clusters.png",
        "membership.png",
        "selection.png",
        "compare.png",
        "dp_weights.png",
        "density.png",
    }
    tables = {"selection.csv", "compare.csv", "membership.csv"}
    assert figures | tables | {"report.md", "em.json", "dp.json"} <= names
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    for name in figures:
        assert f"]({name})" in report
    assert f"**K = {k}**" in report
    em = bayesgmm.load(out / "em.json")
    assert (em.n_components, em.covariance_type) == (k, covariance_type)
    marginal = bayesgmm.load(out / "marginal.nc")
    assert (marginal.n_components, marginal.covariance_type) == (k, covariance_type)
    # Nothing but the output folder: the staging folder is gone.
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]


def test_ctrl_c_swallowed_by_a_library_still_stops_the_command(
    capsys, tmp_path, csv_file, monkeypatch
):
    # nutpie answers Ctrl-C by returning the draws made so far; the command must
    # not save such a truncated fit.
    real_fit = em_module.EMGaussianMixture.fit

    def fit_that_swallows_ctrl_c(self, *args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(em_module.EMGaussianMixture, "fit", fit_that_swallows_ctrl_c)
    handler_before = signal.getsignal(signal.SIGINT)
    code, _, err = run(
        capsys,
        "fit",
        csv_file,
        "--model",
        "em",
        "--components",
        2,
        "--output",
        tmp_path / "m.json",
    )
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]
    assert signal.getsignal(signal.SIGINT) is handler_before


def test_demo_report_shows_what_was_computed():
    from types import SimpleNamespace

    selection = SimpleNamespace(
        table=pd.DataFrame(
            {"n_components": [1, 2, 3], "covariance_type": ["full"] * 3, "bic": [30.0, 10.0, 20.0]}
        )
    )
    compare = pd.DataFrame(
        {
            "rank": [0, 1],
            "elpd": [-10.0, -30.0],
            "se": [1.0, 1.0],
            "elpd_diff": [0.0, -20.0],
            "dse": [0.0, 2.0],
            "weight": [1.0, 0.0],
            "warning": ["", "2 observation(s) with k"],
        },
        index=["A", "B"],
    )
    found = {
        "n": 50,
        "k": 2,
        "covariance_type": "full",
        "selection": selection,
        "compare": compare,
        "figures": {"selection": "selection.png", "compare": "compare.png"},
    }
    report = _demo.report(found, fast=True, seed=7)
    assert "**K = 2** with **full** covariances" in report
    assert "short eruptions after short waits" in report
    assert "](selection.png)" in report and "](compare.png)" in report
    assert "](clusters.png)" not in report  # not drawn, so not linked
    # Rows sorted by BIC, best first.
    rows = [
        line
        for line in report.splitlines()
        if line.startswith("| 2 |") or line.startswith("| 3 |") or line.startswith("| 1 |")
    ]
    assert [r.split("|")[1].strip() for r in rows] == ["2", "3", "1"]
    assert "Best by elpd: **A**. Every other model is more than two standard errors" in report
    assert "- B: 2 observation(s) with k" in report


@pytest.mark.sampling
def test_compare_with_a_saved_marginal_model(capsys, tmp_path, marginal_fit):
    model, X = marginal_fit
    np.savetxt(tmp_path / "data.csv", X, delimiter=",")
    model.save(tmp_path / "nuts.nc")
    em_module.EMGaussianMixture(3, random_state=0).fit(X).save(tmp_path / "em.json")
    code, out, err = run(
        capsys,
        "compare",
        tmp_path / "nuts.nc",
        tmp_path / "em.json",
        "--data",
        tmp_path / "data.csv",
        "--seed",
        0,
        "--output",
        tmp_path / "cmp.csv",
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "cmp.csv", index_col=0)
    assert set(table.index) == {"nuts", "em"}
    assert table.loc["nuts", "criterion"].startswith("psis-loo")
    # The saved data must be the data the NUTS model was fitted on.
    np.savetxt(tmp_path / "other.csv", X[::-1], delimiter=",")
    code, out, err = run(capsys, "compare", tmp_path / "nuts.nc", "--data", tmp_path / "other.csv")
    assert_one_line_error(code, out, err, 1)
