"""Robustness across the public API.

Bad input is rejected with a ValueError/TypeError that names the argument, says
what was expected and what was received, and leaves a fitted estimator exactly as
it was; awkward but valid data fit and score finitely; a change of units does not
change the answer; seeds reproduce fits bit for bit; an interrupted fit changes
nothing. Every dataset comes from a seeded generator.
"""

import copy
import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import COVARIANCE_TYPES, make_mixture_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import adjusted_rand_score

import bayesgmm
from bayesgmm import DPGaussianMixture, EMGaussianMixture, _cavi_fit
from bayesgmm import em as em_module
from bayesgmm.params import GaussianMixtureParams

# One error format across the package: "name: expected X, got Y".
ERROR_FORMAT = r"^{name}(\[[^]]+\])?: expected .+, got .+"
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def data():
    X, _ = make_mixture_data(n=150, d=2, k=3, seed=3)
    return X


@pytest.fixture(scope="module")
def fitted_em(data):
    return EMGaussianMixture(3, random_state=0).fit(data)


@pytest.fixture(scope="module")
def fitted_dp(data):
    return DPGaussianMixture(6, random_state=0, progressbar=False).fit(data)


def _dp(**kwargs):
    return DPGaussianMixture(**{"truncation": 6, "progressbar": False, **kwargs})


def _equal(a, b):
    """Exact equality of fitted state, recursively: same arrays (dtype, shape, bits), same values.

    Dataclasses (the DP's posterior state, GaussianMixtureParams) are compared field
    by field, dicts and sequences item by item; anything else must have a value
    equality, or the comparison raises instead of passing unchecked.
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            _equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if hasattr(a, "identical"):  # xarray DataTree / Dataset / DataArray
        return type(a) is type(b) and bool(a.identical(b))
    return type(a) is type(b) and bool(a == b)


def test_equal_sees_a_change_deep_in_the_dp_posterior_state(fitted_dp):
    posterior = fitted_dp._posterior
    assert _equal(posterior, copy.deepcopy(posterior))
    state = copy.deepcopy(posterior.state)
    assert _equal(posterior.state, state)
    changed = dataclasses.replace(state, stick_a=state.stick_a + 1e-12)
    assert not _equal(posterior.state, changed)
    assert not _equal(posterior, dataclasses.replace(posterior, state=changed))
    components = state.components
    name = next(
        f.name
        for f in dataclasses.fields(components)
        if isinstance(getattr(components, f.name), np.ndarray)
    )
    moved = getattr(components, name) + 1.0
    nested = dataclasses.replace(state, components=dataclasses.replace(components, **{name: moved}))
    assert not _equal(posterior.state, nested)
    params = fitted_dp.params_
    assert not _equal(params, dataclasses.replace(params, weights=params.weights[::-1].copy()))


def _unchanged(model, snapshot):
    state = vars(model)
    assert state.keys() == snapshot.keys()
    differing = [k for k in state if not _equal(state[k], snapshot[k])]
    assert differing == []


def _fitted_arrays(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and isinstance(v, np.ndarray)}


# --------------------------------------------------------------------- bad X
BAD_X = {
    "all-NaN row": (np.array([[np.nan, np.nan], [2.0, 3.0], [4.0, 5.0], [0.0, 1.0]]), ValueError),
    "inf": (np.array([[1.0, -np.inf], [2.0, 3.0], [4.0, 5.0], [0.0, 1.0]]), ValueError),
    "1-D": (np.arange(10.0), ValueError),
    "3-D": (np.zeros((4, 2, 2)), ValueError),
    "scalar": (3.0, ValueError),
    "no rows": (np.empty((0, 2)), ValueError),
    "no columns": (np.empty((5, 0)), ValueError),
    "strings": (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), TypeError),
    "objects": (np.array([[1, "x"], [2, 3], [4, 5]], dtype=object), TypeError),
    "complex": (np.ones((5, 2)) + 1j, TypeError),
    "None": (None, TypeError),
    "text frame": (pd.DataFrame({"a": ["1", "2", "3", "4"], "b": [1.0, 2.0, 3.0, 4.0]}), TypeError),
}


@pytest.mark.parametrize("case", list(BAD_X))
@pytest.mark.parametrize("make", [lambda: EMGaussianMixture(2, random_state=0), _dp])
def test_fit_rejects_bad_X(make, case):
    X, error = BAD_X[case]
    model = make()
    before = copy.deepcopy(vars(model))
    with pytest.raises(error, match=ERROR_FORMAT.format(name="X")):
        model.fit(X)
    _unchanged(model, before)


@pytest.mark.parametrize("case", [*BAD_X, "wrong width"])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
@pytest.mark.parametrize("which", ["fitted_em", "fitted_dp"])
def test_prediction_rejects_bad_X_and_changes_nothing(request, which, method, case):
    model = request.getfixturevalue(which)
    X, error = BAD_X[case] if case != "wrong width" else (np.zeros((4, 3)), ValueError)
    before = copy.deepcopy(vars(model))
    with pytest.raises(error, match=ERROR_FORMAT.format(name="X")):
        getattr(model, method)(X)
    _unchanged(model, before)


@st.composite
def _non_finite_X(draw):
    """A small finite array with NaN, +inf or -inf put in at drawn places."""
    n = draw(st.integers(3, 12))
    d = draw(st.integers(1, 3))
    X = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-1e6, 1e6)))
    cells = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, d - 1)), min_size=1))
    for i, j in cells:
        X[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return X


def _missing_value_refusal(X):
    """The message a NaN-accepting method gives ``X``, or None when it accepts it."""
    if np.isinf(X).any():
        return r"^X: expected finite values or NaN for missing entries, got \d+ infinite"
    if np.isnan(X).all(axis=1).any():
        return r"^X: expected at least one observed \(non-NaN\) value in every row"
    return None


@pytest.mark.parametrize("make", [lambda: EMGaussianMixture(2, random_state=0), _dp])
def test_fit_refuses_infinities_and_empty_rows(make):
    @HYPOTHESIS
    @given(X=_non_finite_X())
    def check(X):
        refusal = _missing_value_refusal(X)
        if refusal is None and np.isnan(X).all(axis=0).any():
            refusal = r"^X: expected at least one observed \(non-NaN\) value in every column"
        if refusal is not None:
            with pytest.raises(ValueError, match=refusal):
                make().fit(X)

    check()


@pytest.mark.parametrize("which", ["fitted_em", "fitted_dp"])
def test_predictions_take_nan_as_missing_and_refuse_infinities(request, which):
    model = request.getfixturevalue(which)

    @HYPOTHESIS
    @given(X=_non_finite_X().map(lambda X: np.resize(X, (len(X), 2))))
    def check(X):
        refusal = _missing_value_refusal(X)
        for method in ("predict", "predict_proba", "score_samples", "impute"):
            if refusal is None:
                assert np.isfinite(getattr(model, method)(X)).all()
            else:
                with pytest.raises(ValueError, match=refusal):
                    getattr(model, method)(X)

    check()


def test_fewer_rows_than_components_is_named(data):
    with pytest.raises(ValueError, match=r"^X: expected at least n_components=3 samples, got 2"):
        EMGaussianMixture(3).fit(data[:2])


@pytest.mark.parametrize("which", ["fitted_em", "fitted_dp"])
@pytest.mark.parametrize(
    ("n_samples", "error"),
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("3", TypeError), (None, TypeError)],
)
def test_sample_rejects_bad_sizes(request, which, n_samples, error):
    model = request.getfixturevalue(which)
    with pytest.raises(error, match=ERROR_FORMAT.format(name="n_samples")):
        model.sample(n_samples, random_state=0)


# ------------------------------------------------------ constructor parameters
NOT_A_NUMBER = st.one_of(
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.none(),
    st.booleans(),
    st.just(1 + 2j),
)
BAD_COUNT = st.one_of(
    NOT_A_NUMBER,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(max_value=0),
)
BAD_NONNEGATIVE = st.one_of(
    NOT_A_NUMBER,
    st.just(float("nan")),
    st.just(float("inf")),
    st.floats(max_value=-1e-12),
    st.integers(max_value=-1),
)

EM_PARAMETERS = {
    "n_components": BAD_COUNT,
    "max_iter": st.one_of(NOT_A_NUMBER, st.floats(), st.integers(max_value=-1)),
    "n_init": BAD_COUNT,
    "tol": BAD_NONNEGATIVE,
    "reg_covar": BAD_NONNEGATIVE,
    "reg_covar_scale": st.one_of(
        st.integers(),
        st.none(),
        st.booleans(),
        st.sampled_from(["Variance", "", "relative", "absolute ", "std"]),
    ),
    "covariance_type": st.one_of(st.text(max_size=8).filter(lambda s: s not in COVARIANCE_TYPES)),
    "init_params": st.one_of(st.integers(), st.sampled_from(["KMEANS", "", "kmeans "])),
    "random_state": st.one_of(st.text(min_size=1, max_size=5), st.floats(), st.integers(-9, -1)),
}
DP_PARAMETERS = {
    "truncation": BAD_COUNT,
    "max_iter": BAD_COUNT,
    "n_init": BAD_COUNT,
    "tol": BAD_NONNEGATIVE,
    "covariance_type": st.text(max_size=8).filter(lambda s: s not in COVARIANCE_TYPES),
    "concentration": st.one_of(
        st.text(min_size=1, max_size=5),
        st.floats(max_value=0.0),
        st.just(float("nan")),
        st.tuples(st.floats(max_value=0.0), st.floats(min_value=0.1, max_value=2.0)),
    ),
    "method": st.sampled_from(["nuts", "", "CAVI"]),
}


@pytest.mark.parametrize("name", list(EM_PARAMETERS))
def test_em_bad_parameters_are_named_and_leave_the_fit_alone(fitted_em, data, name):
    @HYPOTHESIS
    @given(value=EM_PARAMETERS[name])
    def check(value):
        model = copy.deepcopy(fitted_em)
        before = copy.deepcopy(vars(model))
        before["_" + name] = None  # set_params changes the argument, and only it
        model.set_params(**{name: value})
        assert model.get_params()[name] is value
        with pytest.raises((ValueError, TypeError), match=ERROR_FORMAT.format(name=name)):
            model.fit(data)
        model.set_params(**{name: before[name]})
        del before["_" + name]
        _unchanged(model, before)

    check()


@pytest.mark.parametrize("name", list(DP_PARAMETERS))
def test_dp_bad_parameters_are_named_and_leave_the_fit_alone(fitted_dp, data, name):
    @HYPOTHESIS
    @given(value=DP_PARAMETERS[name])
    def check(value):
        model = copy.deepcopy(fitted_dp)
        before = copy.deepcopy(vars(model))
        model.set_params(**{name: value})
        with pytest.raises((ValueError, TypeError), match=ERROR_FORMAT.format(name=name)):
            model.fit(data)
        model.set_params(**{name: before[name]})
        _unchanged(model, before)

    check()


OTHER_BAD_CALLS = {
    "priors keys": (lambda X, em, dp: _dp(priors={"beta0": 1.0}).fit(X), ValueError, "priors"),
    "priors type": (lambda X, em, dp: _dp(priors=[1.0]).fit(X), TypeError, "priors"),
    "merge": (lambda X, em, dp: _dp(merge="yes").fit(X), TypeError, "merge"),
    "progressbar": (lambda X, em, dp: _dp(progressbar="no").fit(X), TypeError, "progressbar"),
    "ci_prob range": (lambda X, em, dp: dp.predict_proba(X, ci_prob=2.0), ValueError, "ci_prob"),
    "ci_prob type": (lambda X, em, dp: dp.predict_proba(X, ci_prob="a"), TypeError, "ci_prob"),
    "ci_kind": (
        lambda X, em, dp: dp.predict_proba(X, ci_prob=0.9, ci_kind="x"),
        ValueError,
        "ci_kind",
    ),
    "max_draws": (lambda X, em, dp: dp.membership_draws(X, max_draws=0), ValueError, "max_draws"),
    "n_draws": (lambda X, em, dp: dp.to_datatree(n_draws=0), ValueError, "n_draws"),
    "random_state": (
        lambda X, em, dp: dp.to_datatree(n_draws=5, random_state="a"),
        TypeError,
        "random_state",
    ),
    "warm_start": (
        lambda X, em, dp: EMGaussianMixture(2, warm_start="a").fit(X),
        TypeError,
        "warm_start",
    ),
    "means_init shape": (
        lambda X, em, dp: EMGaussianMixture(2, means_init=np.zeros((3, 2))).fit(X),
        ValueError,
        "means_init",
    ),
    "weights_init NaN": (
        lambda X, em, dp: EMGaussianMixture(2, weights_init=[0.5, np.nan]).fit(X),
        ValueError,
        "weights_init",
    ),
    "precisions_init not PD": (
        lambda X, em, dp: EMGaussianMixture(2, precisions_init=-np.ones((2, 2, 2))).fit(X),
        ValueError,
        "precisions_init",
    ),
    "bic width": (lambda X, em, dp: em.bic(X[:, :1]), ValueError, "X"),
}


@pytest.mark.parametrize("case", list(OTHER_BAD_CALLS))
def test_other_bad_arguments_are_named(fitted_em, fitted_dp, data, case):
    call, error, name = OTHER_BAD_CALLS[case]
    snapshots = [copy.deepcopy(vars(m)) for m in (fitted_em, fitted_dp)]
    with pytest.raises(error, match=ERROR_FORMAT.format(name=name)):
        call(data, fitted_em, fitted_dp)
    _unchanged(fitted_em, snapshots[0])
    _unchanged(fitted_dp, snapshots[1])


def test_unknown_parameter_names_are_refused(fitted_em):
    with pytest.raises(ValueError, match="n_component"):
        copy.deepcopy(fitted_em).set_params(n_component=2)
    with pytest.raises(TypeError):
        EMGaussianMixture(3, "full")  # keyword-only after n_components


# --------------------------------------------------------- GaussianMixtureParams
GOOD = {
    "weights": np.array([0.4, 0.6]),
    "means": np.zeros((2, 2)),
    "covariances": np.stack([np.eye(2), 2 * np.eye(2)]),
    "covariance_type": "full",
}


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("weights", np.array([0.4, np.nan]), ValueError),
        ("weights", np.array([-0.4, 1.4]), ValueError),
        ("weights", np.array([0.4, 0.4]), ValueError),
        ("weights", np.array([0.4, 0.3, 0.3]), ValueError),
        ("weights", np.array(["a", "b"]), TypeError),
        ("weights", ["0.4", "0.6"], TypeError),
        ("weights", [0.4, None], ValueError),
        ("means", np.array([[0.0, np.inf], [0.0, 0.0]]), ValueError),
        ("means", np.zeros(2), ValueError),
        ("means", np.zeros((2, 2)) + 1j, TypeError),
        ("covariances", np.stack([np.eye(2), np.full((2, 2), 1j)]), TypeError),
        ("covariances", np.stack([np.eye(2), [[1.0, 2.0], [0.0, 1.0]]]), ValueError),
        ("covariances", np.eye(2), ValueError),
        ("covariances", np.stack([np.eye(2), np.full((2, 2), np.nan)]), ValueError),
        ("covariance_type", "ful", ValueError),
        ("covariance_type", 3, TypeError),
    ],
)
def test_params_reject_bad_values_by_name(name, value, error):
    kwargs = {**GOOD, name: value}
    with pytest.raises(error, match=ERROR_FORMAT.format(name=name)):
        GaussianMixtureParams(**kwargs)


def test_params_name_the_component_that_is_not_positive_definite():
    kwargs = {**GOOD, "covariances": np.stack([np.eye(2), -np.eye(2)])}
    with pytest.raises(ValueError, match=r"^covariances: component\(s\) \[1\] .*not positive"):
        GaussianMixtureParams(**kwargs)


# ------------------------------------------------------ the analysis layer
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"X": np.array([[1.0, np.nan]] * 10)}, ValueError, "X"),
        ({"X": np.ones((10, 2)) + 1j}, TypeError, "X"),
        ({"n_components": []}, ValueError, "n_components"),
        ({"n_components": [0, 1]}, ValueError, "n_components"),
        ({"n_components": ["2"]}, TypeError, "n_components"),
        ({"n_components": [500]}, ValueError, "n_components"),
        ({"n_components": 2.5}, TypeError, "n_components"),
        ({"method": "aicc"}, ValueError, "method"),
        ({"covariance_types": ("full", "banded")}, ValueError, "covariance_types"),
        ({"covariance_types": ()}, ValueError, "covariance_types"),
        ({"random_state": "seed"}, TypeError, "random_state"),
    ],
)
def test_select_n_components_rejects_bad_input(data, kwargs, error, name):
    call = {"X": data, "n_components": [1, 2], "covariance_types": ("full",), **kwargs}
    X = call.pop("X")
    with pytest.raises(error, match=ERROR_FORMAT.format(name=name)):
        bayesgmm.select_n_components(X, **call)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"X": np.zeros((3, 5))}, ValueError, "X"),
        ({"X": np.array([[np.nan, 1.0]])}, ValueError, "X"),
        ({"ci_prob": 1.5}, ValueError, "ci_prob"),
        ({"ci_prob": 0.0}, ValueError, "ci_prob"),
        ({"ci_prob": "0.9"}, TypeError, "ci_prob"),
        ({"ci_prob": None}, TypeError, "ci_prob"),
        ({"ci_kind": "central"}, ValueError, "ci_kind"),
        ({"max_draws": 0}, ValueError, "max_draws"),
    ],
)
def test_cluster_uncertainty_rejects_bad_input(fitted_dp, data, kwargs, error, name):
    call = {"X": data[:20], **kwargs}
    X = call.pop("X")
    before = copy.deepcopy(vars(fitted_dp))
    with pytest.raises(error, match=ERROR_FORMAT.format(name=name)):
        bayesgmm.cluster_uncertainty(fitted_dp, X, random_state=0, **call)
    _unchanged(fitted_dp, before)


def test_cluster_uncertainty_needs_a_fitted_model(data):
    with pytest.raises(bayesgmm._validation.NotFittedError):
        bayesgmm.cluster_uncertainty(EMGaussianMixture(2), data)


@pytest.mark.parametrize(
    ("function", "kwargs", "error", "name"),
    [
        ("plot_clusters", {"X": np.zeros((5, 3))}, ValueError, "X"),
        ("plot_clusters", {"X": np.array([[np.inf, 0.0]])}, ValueError, "X"),
        ("plot_clusters", {"dims": (0, 5)}, ValueError, "dims"),
        ("plot_clusters", {"dims": (0, 0)}, ValueError, "dims"),
        ("plot_clusters", {"n_std": -1.0}, ValueError, "n_std"),
        ("plot_clusters", {"n_std": "wide"}, TypeError, "n_std"),
        ("plot_clusters", {"ax": "axes"}, TypeError, "ax"),
        ("plot_density", {"grid_size": 1}, ValueError, "grid_size"),
        ("plot_density", {"levels": 0}, ValueError, "levels"),
        ("plot_density", {"levels": "many"}, TypeError, "levels"),
        ("plot_density", {"X": ["a", "b"]}, TypeError, "X"),
        ("plot_membership_uncertainty", {"X": np.ones((4, 2)) + 1j}, TypeError, "X"),
    ],
)
def test_plotting_rejects_bad_input(fitted_em, data, function, kwargs, error, name):
    import matplotlib.pyplot as plt

    call = {"X": data, **kwargs}
    X = call.pop("X")
    fig = plt.figure()
    try:
        with pytest.raises(error, match=ERROR_FORMAT.format(name=name)):
            getattr(bayesgmm.plotting, function)(fitted_em, X, **call)
        assert fig.axes == []  # nothing drawn
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("matrix", "error"),
    [(np.ones((3, 4)), ValueError), (np.full((2, 2), np.nan), ValueError), ("m", TypeError)],
)
def test_plot_coclustering_rejects_bad_matrices(matrix, error):
    import matplotlib.pyplot as plt

    try:
        with pytest.raises(error, match=ERROR_FORMAT.format(name="matrix")):
            bayesgmm.plotting.plot_coclustering(matrix)
    finally:
        plt.close("all")


@pytest.mark.parametrize(
    ("function", "value", "name"),
    [
        ("plot_selection", "result", "result"),
        ("plot_selection", pd.DataFrame({"bic": [1.0]}), "result"),
        ("plot_compare", "table", "table"),
        ("plot_compare", {"elpd": [1.0], "se": [0.1]}, "table"),
    ],
)
def test_plots_of_results_refuse_other_objects(function, value, name):
    import matplotlib.pyplot as plt

    try:
        with pytest.raises(TypeError, match=ERROR_FORMAT.format(name=name)):
            getattr(bayesgmm.plotting, function)(value)
    finally:
        plt.close("all")


@pytest.mark.parametrize("path", [None, 3.5, ["m.json"]])
def test_load_rejects_paths_of_the_wrong_type(path):
    with pytest.raises(TypeError, match=ERROR_FORMAT.format(name="path")):
        bayesgmm.load(path)


@pytest.mark.parametrize(
    ("models", "X", "error", "name"),
    [
        ([("em", None)], None, TypeError, "models"),
        ({}, None, ValueError, "models"),
        ({"em": "not a model"}, None, TypeError, "models"),
        ({"em": EMGaussianMixture(2)}, None, bayesgmm.NotFittedError, None),
        (None, np.zeros((40, 3)), ValueError, r"models\[.em.\]"),
        (None, np.array([[np.nan, 0.0]] * 40), ValueError, "X"),
        (None, np.ones((40, 2)) + 1j, TypeError, "X"),
    ],
)
def test_compare_checks_models_and_X(fitted_em, data, models, X, error, name):
    models = {"em": fitted_em} if models is None else models
    X = data if X is None else X
    match = None if name is None else ERROR_FORMAT.format(name=name)
    with pytest.raises(error, match=match):
        bayesgmm.compare(models, X, random_state=0)


# ------------------------------------------------------ awkward but valid data
def _awkward(name):
    X, _ = make_mixture_data(n=120, d=2, k=3, seed=5)
    return {
        "duplicated rows": np.repeat(X[:6], 20, axis=0),
        "constant column": np.column_stack([X[:, 0], np.full(len(X), 3.0)]),
        "n equals K": X[:3],
        "one feature": X[:, :1],
        "near 1e-9": 1e-9 * X / X.std(),
        "near 1e12": 1e12 * X / X.std(),
        "near 1e12, shifted": X + 1e12,
        "all rows equal": np.ones((10, 2)),
    }[name]


AWKWARD = [
    "duplicated rows",
    "constant column",
    "n equals K",
    "one feature",
    "near 1e-9",
    "near 1e12",
    "near 1e12, shifted",
    "all rows equal",
]
# What a warning on such data must talk about: what happened and what to try.
ADVICE = re.compile(r"refine\(X\)|reg_covar|n_components|scale|Standardise|duplicat", re.IGNORECASE)


def _fit_and_score(model, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X)
        log_density = model.score_samples(X)
        proba = model.predict_proba(X)
    return log_density, proba, caught


@pytest.mark.parametrize("name", AWKWARD)
@pytest.mark.parametrize("n_components", [1, 3])
def test_em_fits_awkward_data_finitely(name, n_components, covariance_type):
    X = _awkward(name)
    model = EMGaussianMixture(n_components, covariance_type=covariance_type, random_state=0)
    log_density, proba, caught = _fit_and_score(model, X)
    assert np.isfinite(log_density).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    for w in caught:
        assert ADVICE.search(str(w.message)), str(w.message)
    if model.degenerate_components_.size:
        assert any(issubclass(w.category, em_module.DegenerateComponentWarning) for w in caught)


@pytest.mark.parametrize("name", AWKWARD)
def test_dp_fits_awkward_data_finitely(name, covariance_type):
    X = _awkward(name)
    model = _dp(covariance_type=covariance_type, random_state=0)
    log_density, proba, caught = _fit_and_score(model, X)
    assert np.isfinite(log_density).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    for w in caught:
        assert ADVICE.search(str(w.message)), str(w.message)


def test_em_warns_when_an_absolute_reg_covar_swamps_data_in_small_units(data):
    X = 1e-4 * data
    absolute = {"reg_covar_scale": "absolute", "random_state": 0}
    with pytest.warns(
        UserWarning, match=r"reg_covar=1e-06 .* reg_covar_scale='variance'.* Standardise X"
    ):
        EMGaussianMixture(3, **absolute).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EMGaussianMixture(3, random_state=0).fit(X)  # relative to the variance: no warning
        EMGaussianMixture(3, reg_covar=1e-14, **absolute).fit(X)
        EMGaussianMixture(3, **absolute).fit(data)


# ------------------------------------------------------------------- units
UNITS = [(1e-4, 1e6), (1e4, -3e7)]
# a * X + b: one scale for every feature, or one per feature (with a reflection), and
# the relative tolerance. A shift b/a ~ 1e10 rounds a * X + b to about 6 digits of X,
# which no fit can undo; with b/a ~ 1e3 the fits agree to about 3e-13 (measured).
EM_UNITS = {
    "1e-4": (1e-4, 0.3, 1e-9),
    "1e4": (1e4, -3e7, 1e-9),
    "per-feature": (np.array([1e-4, -3e3]), np.array([0.2, 5e4]), 1e-9),
    "1e-4, far off": (1e-4, 1e6, 1e-5),
}


@pytest.mark.parametrize("units", list(EM_UNITS))
def test_em_answer_does_not_depend_on_units(data, covariance_type, units):
    """Default EM on ``a * X + b`` is the fit on ``X`` moved to the new units.

    ``reg_covar`` is relative to each feature's variance by default, so the M-step
    commutes with the change of units: the same labels, means ``a * mu + b``,
    covariances ``a_i a_j Sigma_ij``, and a log density lower by ``sum_j log|a_j|``
    at every sample. Measured (max over covariance types, b/a ~ 1e3): log densities
    within 3e-13 relative, means within 3e-13, covariances within 1e-13 relative;
    with b/a = 1e10, 7e-7, 7e-7 and 2e-7 (the rounding of ``a * X + b``).
    """
    a, b, tol = EM_UNITS[units]
    if covariance_type == "spherical" and np.ndim(a):
        pytest.skip("one variance for all features: only a common scale can be invariant")
    d = data.shape[1]
    a_j = np.broadcast_to(a, (d,))
    base = EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(data)
    Z = a * data + b
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no reg_covar warning in tiny or huge units
        moved = EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(Z)
    np.testing.assert_array_equal(moved.predict(Z), base.predict(data))
    np.testing.assert_allclose(
        moved.score_samples(Z) + np.log(np.abs(a_j)).sum(),
        base.score_samples(data),
        rtol=tol,
        atol=tol,
    )
    np.testing.assert_allclose((moved.means_ - b) / a, base.means_, rtol=0, atol=tol)
    outer = np.outer(a_j, a_j)
    unscaled = {
        "full": lambda c: c / outer,
        "tied": lambda c: c / outer,
        "diag": lambda c: c / a_j**2,
        "spherical": lambda c: c / a_j[0] ** 2,
    }[covariance_type](moved.covariances_)
    np.testing.assert_allclose(unscaled, base.covariances_, rtol=tol, atol=tol)
    np.testing.assert_allclose(moved.reg_covar_ / a_j**2, base.reg_covar_, rtol=tol)
    np.testing.assert_allclose(moved.weights_, base.weights_, rtol=tol)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_absolute_reg_covar_merges_clusters_in_small_units(data, covariance_type):
    """Why ``reg_covar_scale="variance"`` is the default.

    scikit-learn's absolute ``reg_covar=1e-6`` is about 1e-6 / 1e-7 = 10 times the
    clusters' variance when the data are in units 1e-4 times smaller: every
    covariance becomes a wide ridge and EM puts all samples in one component,
    with a log-likelihood far below the fit in the original units.
    """
    n, d = data.shape
    X = 1e-4 * data
    base = EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(data)
    with pytest.warns(UserWarning, match="reg_covar_scale='variance'"):
        absolute = EMGaussianMixture(
            3, covariance_type=covariance_type, reg_covar_scale="absolute", random_state=0
        ).fit(X)
    # Measured: two of the three clusters merged (all three with a k-means start alone).
    assert np.unique(absolute.predict(X)).size < 3
    jacobian = d * np.log(1e-4)
    assert absolute.score(X) + jacobian < base.score(data) - 1.0  # measured: 2.7 to 2.9 lower
    relative = EMGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_array_equal(relative.predict(X), base.predict(data))
    np.testing.assert_allclose(relative.score(X) + jacobian, base.score(data), rtol=1e-10)


def test_em_constant_features_still_get_a_positive_regularisation(covariance_type):
    """A constant column has no variance: it gets reg_covar times the others' mean variance."""
    rng = np.random.default_rng(5)
    varying = np.vstack([rng.normal(-3, 1, (60, 2)), rng.normal(3, 0.5, (60, 2))]) * [1.0, 20.0]
    X = np.column_stack([varying[:, 0], np.full(120, 1e12 + 0.1), varying[:, 1]])
    with warnings.catch_warnings():
        # every component sits on the plane x_1 = const: flagged, as in absolute mode
        warnings.simplefilter("ignore", em_module.DegenerateComponentWarning)
        model = EMGaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    variance = varying.var(axis=0)
    if covariance_type == "spherical":
        expected = np.full(3, 1e-6 * variance.sum() / 3)
        np.testing.assert_allclose(model.reg_covar_, expected, rtol=1e-6)
    else:
        expected = 1e-6 * np.array([variance[0], variance.mean(), variance[1]])
        np.testing.assert_allclose(model.reg_covar_, expected, rtol=1e-9)
    assert np.all(model.reg_covar_ > 0)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(model, name)).all(), name
    assert np.isfinite(model.score_samples(X)).all()
    assert sorted(np.bincount(model.predict(X)).tolist()) == [60, 60]


@pytest.mark.parametrize(
    ("value", "expected"), [(0.0, 1e-6), (3.0, 9e-6), (-2e12, 4e18)], ids=["zero", "3", "-2e12"]
)
def test_em_on_all_equal_rows_uses_the_data_magnitude(value, expected):
    """No feature varies: the mean square of the feature means stands in (1 at zero)."""
    X = np.full((10, 2), value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em_module.DegenerateComponentWarning)
        model = EMGaussianMixture(1, random_state=0).fit(X)
    np.testing.assert_allclose(model.reg_covar_, [expected, expected], rtol=1e-12)
    assert np.isfinite(model.score_samples(X)).all()


def test_em_variance_near_underflow_is_no_scale(covariance_type):
    """A variance near 1e-308 (squares underflow) is no unit: reg_covar is used as it is.

    Found by hypothesis: relative to that variance the amount was subnormal and the
    covariance not positive definite.
    """
    X = np.array([[1.95604432e-154], [0.0], [0.0], [0.0], [0.0], [0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em_module.DegenerateComponentWarning)
        model = EMGaussianMixture(1, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_array_equal(model.reg_covar_, [1e-6])
    assert np.isfinite(model.score_samples(X)).all()


@pytest.mark.parametrize(("a", "b"), UNITS)
def test_dp_answer_does_not_depend_on_units(data, covariance_type, a, b):
    """The DP's default priors are scaled to the data, so nothing needs changing."""
    n, d = data.shape
    base = _dp(covariance_type=covariance_type, random_state=0).fit(data)
    Z = a * data + b
    moved = _dp(covariance_type=covariance_type, random_state=0).fit(Z)
    assert adjusted_rand_score(base.predict(data), moved.predict(Z)) == 1.0
    total = moved.score(Z) * n + n * d * np.log(a)
    np.testing.assert_allclose(total, base.score(data) * n, rtol=1e-7, atol=1e-4)


@pytest.mark.slow
@pytest.mark.sampling
def test_marginal_answer_does_not_depend_on_units_and_seeds_reproduce_draws():
    from bayesgmm import MarginalGaussianMixture

    X, _ = make_mixture_data(n=90, d=2, k=2, seed=4)
    a, b = 1e-4, 1e6
    fits = [
        MarginalGaussianMixture(n_components=2, covariance_type="diag").fit(
            Z, draws=200, tune=300, chains=2, random_state=3, progressbar=False
        )
        for Z in (X, a * X + b)
    ]
    assert adjusted_rand_score(fits[0].predict(X), fits[1].predict(a * X + b)) == 1.0
    # The same seed gives the same NUTS draws (the model is compiled once, cached).
    again = MarginalGaussianMixture(n_components=2, covariance_type="diag").fit(
        X, draws=200, tune=300, chains=2, random_state=3, progressbar=False
    )
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(
            again.idata_["posterior"][name].values, fits[0].idata_["posterior"][name].values
        )
    n, d = X.shape
    np.testing.assert_allclose(
        fits[1].score(a * X + b) * n + n * d * np.log(a), fits[0].score(X) * n, rtol=1e-2
    )


# ----------------------------------------------------------- reproducibility
@pytest.mark.parametrize(
    "make",
    [
        lambda seed: EMGaussianMixture(3, n_init=2, random_state=seed),
        lambda seed: _dp(random_state=seed, n_init=2),
    ],
    ids=["em", "dp"],
)
def test_same_seed_gives_bitwise_identical_fits(data, covariance_type, make):
    first = make(7).fit(data)
    second = make(7).fit(data)
    arrays = _fitted_arrays(first)
    assert arrays and arrays.keys() == _fitted_arrays(second).keys()
    for key, value in arrays.items():
        assert _equal(value, getattr(second, key)), key
    assert _equal(first.params_, second.params_)
    np.testing.assert_array_equal(first.sample(50, random_state=1)[0], second.sample(50, 1)[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: EMGaussianMixture(
            3, init_params="random", max_iter=2, n_init=2, random_state=seed
        ),
        lambda seed: _dp(init_params="random", max_iter=2, n_init=2, random_state=seed),
    ],
    ids=["em", "dp"],
)
def test_a_generator_seed_is_not_consumed_twice(data, make):
    """A Generator gives the fit its integer seed gives: one fit draws from one stream, once.

    An integer seed makes a fresh generator every time the estimator turns it into
    one, so code that did so twice in one fit (drawing from the first, then from a
    second) would restart the stream; a Generator passed in would continue it
    instead, and the two fits would differ. Random starts stopped after two
    iterations make the fit depend on every number drawn (checked: another seed
    gives another fit).
    """

    def fit(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # two iterations do not converge
            return make(seed).fit(data)

    by_int = fit(11)
    rng = np.random.default_rng(11)
    by_generator = fit(rng)
    arrays = _fitted_arrays(by_int)
    assert arrays and arrays.keys() == _fitted_arrays(by_generator).keys()
    for key, value in arrays.items():
        assert _equal(value, getattr(by_generator, key)), key
    assert _equal(by_int.params_, by_generator.params_)
    assert not _equal(by_int.params_, fit(12).params_)
    # The fit drew from the generator it was given (the stream moved on).
    assert rng.bit_generator.state != np.random.default_rng(11).bit_generator.state


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: EMGaussianMixture(3, tol=1e-10, max_iter=500, random_state=seed),
        lambda seed: _dp(random_state=seed, tol=1e-10, max_iter=2000),
    ],
    ids=["em", "dp"],
)
def test_different_seeds_agree_on_well_separated_data(make):
    X, labels = make_mixture_data(n=300, d=2, k=3, seed=0, separation=10.0)
    fits = [make(seed).fit(X) for seed in range(3)]
    scores = [fit.score(X) for fit in fits]
    np.testing.assert_allclose(scores, scores[0], rtol=0, atol=1e-6)
    for fit in fits:
        assert adjusted_rand_score(labels, fit.predict(X)) == 1.0


# ------------------------------------------------------------- interruption
def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_em_refit_keeps_the_previous_fit(fitted_em, data, monkeypatch):
    model = copy.deepcopy(fitted_em)
    before = copy.deepcopy(vars(model))
    calls = []
    real_run = em_module._em_steps.run_em

    def run_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # interrupt mid-fit, after one initialisation finished
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(em_module._em_steps, "run_em", run_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(n_init=3).fit(2.0 * data)
    model.set_params(n_init=before["n_init"])
    assert len(calls) == 2
    _unchanged(model, before)


def test_interrupted_dp_refit_keeps_the_previous_fit(fitted_dp, data, monkeypatch):
    model = copy.deepcopy(fitted_dp)
    before = copy.deepcopy(vars(model))
    monkeypatch.setattr(_cavi_fit, "run_cavi", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(2.0 * data)
    _unchanged(model, before)


def test_interrupted_first_fit_leaves_an_unfitted_model(data, monkeypatch):
    model = EMGaussianMixture(3, random_state=0)
    monkeypatch.setattr(em_module._em_steps, "run_em", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(data)
    assert not hasattr(model, "params_")
    with pytest.raises(bayesgmm._validation.NotFittedError):
        model.predict(data)


@pytest.mark.sampling
def test_interrupted_marginal_refit_keeps_the_previous_fit(marginal_fit, monkeypatch):
    fitted, X = marginal_fit
    model = copy.deepcopy(fitted)
    before = copy.deepcopy(vars(model))
    monkeypatch.setattr(type(model), "_sample", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.fit(2.0 * X, draws=10, tune=10, chains=1, random_state=0, progressbar=False)
    _unchanged(model, before)


@pytest.mark.sampling
def test_interrupted_netcdf_write_leaves_no_file(marginal_fit, tmp_path, monkeypatch):
    """test_io covers the JSON writer; this is the marginal model's NetCDF path."""
    from bayesgmm import io

    model, _ = marginal_fit
    target = tmp_path / "m.nc"
    target.write_bytes(b"old")

    def write_some_then_interrupt(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model.idata_), "to_netcdf", write_some_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        io.save(model, tmp_path / "new.nc")
    with pytest.raises(KeyboardInterrupt):
        io.save(model, target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nc"]
    assert target.read_bytes() == b"old"
