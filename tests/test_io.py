import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bayesgmm
from bayesgmm import dirichlet_process as dp_module
from bayesgmm import em as em_module
from bayesgmm import io
from bayesgmm._validation import NotFittedError
from bayesgmm.datasets import make_mixture
from bayesgmm.io import read_data

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# tmp_path is shared by the examples of one test; each example overwrites its file.
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def data():
    X, _, _ = make_mixture(150, 3, 2, separation=2.5, random_state=0)
    return X


def _assert_predicts_identically(a, b, X, seed=3):
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.score(X) == b.score(X)
    Xa, la = a.sample(20, random_state=seed)
    Xb, lb = b.sample(20, random_state=seed)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(la, lb)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(a.params_, name), getattr(b.params_, name))


def _no_leftovers(folder, keep=()):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


# ------------------------------------------------------------------- EM, JSON
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_round_trip_predicts_exactly(data, tmp_path, covariance_type):
    model = em_module.EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(
        data
    )
    path = io.save(model, tmp_path / "model.json")
    assert path == tmp_path / "model.json"
    loaded = bayesgmm.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    _assert_predicts_identically(model, loaded, data)
    np.testing.assert_array_equal(loaded.reg_covar_, model.reg_covar_)
    assert _no_leftovers(tmp_path, keep={"model.json"})


@pytest.mark.parametrize("scale", ["variance", "absolute"])
def test_em_reg_covar_scale_round_trips(data, tmp_path, scale):
    model = em_module.EMGaussianMixture(2, reg_covar_scale=scale, random_state=0).fit(data)
    model.save(tmp_path / "m.json")
    content = json.loads((tmp_path / "m.json").read_text())
    assert content["state"]["params"]["reg_covar_scale"] == scale
    assert content["state"]["reg_covar"] == model.reg_covar_.tolist()
    loaded = bayesgmm.load(tmp_path / "m.json")
    assert loaded.reg_covar_scale == scale
    np.testing.assert_array_equal(loaded.reg_covar_, model.reg_covar_)


def test_em_file_from_before_reg_covar_scale_loads_as_absolute(data, tmp_path):
    """Files written before reg_covar_scale existed were fitted with an absolute reg_covar."""
    model = em_module.EMGaussianMixture(
        2, reg_covar=1e-5, reg_covar_scale="absolute", random_state=0
    ).fit(data)
    model.save(tmp_path / "old.json")
    content = json.loads((tmp_path / "old.json").read_text())
    del content["state"]["params"]["reg_covar_scale"]
    del content["state"]["reg_covar"]
    (tmp_path / "old.json").write_text(json.dumps(content))
    loaded = bayesgmm.load(tmp_path / "old.json")
    assert loaded.get_params() == model.get_params()
    assert loaded.reg_covar_scale == "absolute"
    np.testing.assert_array_equal(loaded.reg_covar_, np.full(data.shape[1], 1e-5))
    _assert_predicts_identically(model, loaded, data)


def test_em_file_is_the_documented_json(data, tmp_path):
    model = em_module.EMGaussianMixture(2, random_state=1).fit(data)
    model.save(tmp_path / "m.json")
    content = json.loads((tmp_path / "m.json").read_text())
    assert content["format"] == "bayesgmm"
    assert content["version"] == io.VERSION == 1
    assert content["class"] == "EMGaussianMixture"
    assert content["state"]["class"] == "EMGaussianMixture"
    assert content["state"]["params"]["n_components"] == 2
    # Floats are written with repr, so they read back to the identical doubles.
    weights = np.asarray(content["state"]["mixture"]["weights"])
    np.testing.assert_array_equal(weights, model.params_.weights)


def test_em_feature_names_survive(data, tmp_path):
    frame = pd.DataFrame(data, columns=["length", "width"])
    model = em_module.EMGaussianMixture(2, random_state=0).fit(frame)
    model.save(tmp_path / "m.json")
    loaded = bayesgmm.load(tmp_path / "m.json")
    assert list(loaded.feature_names_in_) == ["length", "width"]
    _assert_predicts_identically(model, loaded, frame)


def test_existing_file_is_not_overwritten(data, tmp_path):
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    target = tmp_path / "m.json"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.save(model, target)
    assert target.read_text() == "precious"
    io.save(model, target, overwrite=True)
    assert type(bayesgmm.load(target)) is type(model)
    assert _no_leftovers(tmp_path, keep={"m.json"})


def test_unfitted_model_is_refused(tmp_path):
    with pytest.raises(NotFittedError):
        io.save(em_module.EMGaussianMixture(2), tmp_path / "m.json")
    assert _no_leftovers(tmp_path)


def test_save_rejects_other_objects_and_bad_flags(data, tmp_path):
    with pytest.raises(TypeError, match="model"):
        io.save(object(), tmp_path / "m.json")
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(TypeError, match="overwrite"):
        io.save(model, tmp_path / "m.json", overwrite="yes")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.save(model, tmp_path / "missing" / "m.json")
    with pytest.raises(IsADirectoryError):
        io.save(model, tmp_path)
    assert _no_leftovers(tmp_path)


# --------------------------------------------------------------- atomic writes
@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_failed_write_leaves_no_file(data, tmp_path, monkeypatch, error):
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    real_write_text = type(tmp_path).write_text

    def write_half_then_fail(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise error

    monkeypatch.setattr(type(tmp_path), "write_text", write_half_then_fail)
    with pytest.raises(type(error)):
        io.save(model, tmp_path / "m.json")
    assert _no_leftovers(tmp_path)


def test_failed_replace_keeps_the_old_file(data, tmp_path, monkeypatch):
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    target = tmp_path / "m.json"
    target.write_text("old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.save(model, target, overwrite=True)
    assert target.read_text() == "old"
    assert _no_leftovers(tmp_path, keep={"m.json"})


def test_atomic_path_commits_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("partial")
            assert tmp.parent == tmp_path and tmp != target
            raise RuntimeError("boom")
    assert _no_leftovers(tmp_path)
    with io.atomic_path(target) as tmp:
        tmp.write_text("complete")
    assert target.read_text() == "complete"
    with pytest.raises(FileExistsError):
        with io.atomic_path(target) as tmp:
            pass
    assert target.read_text() == "complete"
    assert _no_leftovers(tmp_path, keep={"out.txt"})


# ---------------------------------------------------------------- bad files
def _write_envelope(path, **changes):
    envelope = {"format": "bayesgmm", "version": 1, "class": "EMGaussianMixture", "state": {}}
    envelope.update(changes)
    path.write_text(json.dumps(envelope))
    return path


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"\x00\x01binary junk", "not a bayesgmm model file"),
        (b"CDF\x01 classic netcdf", "NetCDF-3"),
        (b'{"format": "bayesgmm", "version": 1, "class"', "corrupt"),
        (b'{"hello": "world"}', "not a bayesgmm model file"),
        (b"[1, 2, 3]", "not a bayesgmm model file"),
        (b'{"format": "bayesgmm", "version": "one"}', "not an integer"),
        (b'{"format": "bayesgmm", "version": 1, "class": "KMeans", "state": {}}', "unknown"),
        (b'{"format": "bayesgmm", "version": 1, "class": "EMGaussianMixture"}', "corrupt"),
        (b"\xff\xfe{ not utf-8", "not a bayesgmm model file"),
    ],
)
def test_bad_files_give_a_clear_value_error(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        bayesgmm.load(path)


def test_future_version_asks_for_an_upgrade(tmp_path):
    path = _write_envelope(tmp_path / "future.json", version=io.VERSION + 1)
    with pytest.raises(ValueError, match="upgrade bayesgmm"):
        bayesgmm.load(path)


def test_state_that_cannot_be_rebuilt_is_reported_as_corrupt(data, tmp_path):
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    path = tmp_path / "m.json"
    model.save(path)
    content = json.loads(path.read_text())
    del content["state"]["mixture"]
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="corrupt"):
        bayesgmm.load(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        bayesgmm.load(tmp_path / "nope.json")
    with pytest.raises(IsADirectoryError):
        bayesgmm.load(tmp_path)


def test_state_with_numpy_values_is_written_as_plain_json():
    envelope = io._envelope("EMGaussianMixture", {"a": np.float64(0.1), "b": np.arange(3)})
    assert envelope["state"] == {"a": 0.1, "b": [0, 1, 2]}
    assert type(envelope["state"]["a"]) is float
    with pytest.raises(TypeError, match="state.c"):
        io._envelope("EMGaussianMixture", {"c": object()})


# ------------------------------------------------------------- other models
def test_dp_round_trip_predicts_exactly(data, tmp_path):
    model = dp_module.DPGaussianMixture(5, random_state=0).fit(data)
    path = io.save(model, tmp_path / "dp.json")
    loaded = bayesgmm.load(path)
    assert type(loaded) is type(model)
    _assert_predicts_identically(model, loaded, data)
    np.testing.assert_array_equal(
        loaded.membership_draws(data, max_draws=5, random_state=0),
        model.membership_draws(data, max_draws=5, random_state=0),
    )


@pytest.mark.sampling
def test_marginal_round_trip_through_netcdf(marginal_fit, tmp_path):
    model, X = marginal_fit
    path = io.save(model, tmp_path / "marginal.nc")
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    loaded = bayesgmm.load(path)
    assert type(loaded) is type(model)
    _assert_predicts_identically(model, loaded, X)
    posterior = loaded.idata_["posterior"]
    np.testing.assert_array_equal(
        posterior["means"].values, model.idata_["posterior"]["means"].values
    )
    assert "bayesgmm" not in loaded.idata_.attrs
    np.testing.assert_array_equal(
        loaded.membership_draws(X, max_draws=10, random_state=0),
        model.membership_draws(X, max_draws=10, random_state=0),
    )


def test_saved_file_gets_normal_permissions(data, tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    model = em_module.EMGaussianMixture(2, random_state=0).fit(data)
    path = io.save(model, tmp_path / "m.json")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o640)
    io.save(model, path, overwrite=True)
    assert path.stat().st_mode & 0o777 == 0o640


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes_are_a_value_error(tmp_path, content):
    path = tmp_path / "fuzz.json"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        bayesgmm.load(path)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    version=st.integers(min_value=-5, max_value=5) | st.none() | st.text(max_size=3),
    cls=st.sampled_from(["EMGaussianMixture", "DPGaussianMixture", "Other", ""]),
    state=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)
def test_malformed_envelopes_are_value_errors(tmp_path, version, cls, state):
    path = _write_envelope(tmp_path / "e.json", version=version, **{"class": cls}, state=state)
    with pytest.raises(ValueError):
        bayesgmm.load(path)


def test_foreign_or_corrupt_netcdf_files_are_value_errors(tmp_path):
    engine = io.netcdf_engine()
    import xarray as xr

    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"x": ("draw", np.arange(3.0))})})
    tree.to_netcdf(tmp_path / "foreign.nc", engine=engine)
    with pytest.raises(ValueError, match="not a bayesgmm model"):
        bayesgmm.load(tmp_path / "foreign.nc")
    tree.attrs["bayesgmm"] = '{"format": "bayesgmm", "version": 99, "class": "EMGaussianMixture"}'
    tree.to_netcdf(tmp_path / "future.nc", engine=engine)
    with pytest.raises(ValueError, match="upgrade bayesgmm"):
        bayesgmm.load(tmp_path / "future.nc")
    (tmp_path / "truncated.nc").write_bytes((tmp_path / "future.nc").read_bytes()[:600])
    with pytest.raises(ValueError, match="corrupt"):
        bayesgmm.load(tmp_path / "truncated.nc")


# ------------------------------------------------------------------ data files
def test_read_data_detects_header_and_delimiters(tmp_path):
    (tmp_path / "a.csv").write_text("a;b\n1;2\n3;4.5\n")
    X, names = read_data(tmp_path / "a.csv")
    assert names == ["a", "b"] and X.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    (tmp_path / "b.tsv").write_text("1\t2\n\n3\t-4e1\n")
    X, names = read_data(tmp_path / "b.tsv")
    assert names is None and X.tolist() == [[1.0, 2.0], [3.0, -40.0]]
    (tmp_path / "c.csv").write_text("\ufeffid,x,y\n1,0.5,2\n2,1.5,3\n")
    X, names = read_data(tmp_path / "c.csv", columns="y,x")
    assert names == ["y", "x"] and X.tolist() == [[2.0, 0.5], [3.0, 1.5]]
    np.save(tmp_path / "d.npy", np.arange(6.0).reshape(3, 2))
    X, names = read_data(tmp_path / "d.npy", columns="1")
    assert names is None and X.tolist() == [[1.0], [3.0], [5.0]]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.lists(
        st.lists(
            st.sampled_from(
                ["1", "-2.5", "3e2", "", "NA", "x", "inf", " 4 ", '"5"', "nan", "0.1 ", "1e-300"]
            ),
            min_size=1,
            max_size=3,
        ).map(",".join),
        max_size=5,
    ).map("\n".join)
)
@example(text="x\n1,1")  # a row longer than the header: pandas took the extra field as index
def test_any_csv_is_read_or_refused_with_a_one_line_value_error(tmp_path, text):
    path = tmp_path / "fuzz.csv"
    path.write_text(text)
    try:
        X, names = read_data(path)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
    else:
        assert X.ndim == 2 and np.isfinite(X).all()
        assert names is None or len(names) == X.shape[1]
        # The fast parser (pandas) reads exactly what the field-by-field parser reads.
        checked = io._parse_csv_checked(path, text, ",", names is not None, names, X.shape[1])
        np.testing.assert_array_equal(X, checked)


def test_read_data_refuses_object_arrays_and_bad_columns_naming_the_file(tmp_path):
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=f"^{re.escape(str(objects))}: holds Python objects"):
        read_data(objects)
    (tmp_path / "no_header.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(ValueError, match="no_header.npy: not a valid .npy file"):
        read_data(tmp_path / "no_header.npy")
    (tmp_path / "d.csv").write_text("x,y\n1,2\n3,4\n")
    with pytest.raises(ValueError, match="^columns: expected each column named once"):
        read_data(tmp_path / "d.csv", columns="x,0")
    with pytest.raises(ValueError, match="^columns: expected comma-separated"):
        read_data(tmp_path / "d.csv", columns=" , ")
    with pytest.raises(FileNotFoundError, match="missing.csv: no such file"):
        read_data(tmp_path / "missing.csv")
