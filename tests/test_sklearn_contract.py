"""scikit-learn's estimator contract: check_estimator, Pipeline, GridSearchCV, cross_val_score,
and scikit-learn's own GaussianMixture test module run against EMGaussianMixture."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_mixture_data
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesgmm import (
    DPGaussianMixture,
    EMGaussianMixture,
    MixtureDiscriminantAnalysis,
    NotFittedError,
)

TESTS = Path(__file__).parent


@parametrize_with_checks(
    [
        EMGaussianMixture(2, random_state=0),
        DPGaussianMixture(3, random_state=0),
        # The default candidates (every covariance model EM fits, and 1 to 5 components
        # per class for MclustDA) make each check slow; two models exercise the same code.
        MixtureDiscriminantAnalysis("EDDA", covariance_types=("full", "tied"), random_state=0),
        MixtureDiscriminantAnalysis(
            n_components=(1, 2), covariance_types=("full", "diag"), random_state=0
        ),
    ]
)
def test_estimators_pass_check_estimator(estimator, check):
    """Every check, no expected failure, for EM, the variational DP and the classifier."""
    check(estimator)


@pytest.fixture(scope="module")
def data():
    X, labels = make_mixture_data(n=300, d=2, k=3, seed=3)
    return X * [1.0, 1000.0] + [0.0, 5e4], labels


def test_em_in_a_pipeline_scores_the_mean_log_likelihood(data):
    X, _ = data
    pipe = make_pipeline(StandardScaler(), EMGaussianMixture(3, random_state=0)).fit(X)
    scaler, model = pipe[0], pipe[-1]
    Z = scaler.transform(X)
    assert pipe.score(X) == pytest.approx(model.score_samples(Z).mean(), rel=1e-12)
    np.testing.assert_array_equal(pipe.predict(X), model.predict(Z))
    again = clone(pipe)
    assert again[-1].get_params() == model.get_params()
    assert not hasattr(again[-1], "params_")


def test_em_grid_search_picks_the_true_number_of_components(data):
    X, _ = data
    search = GridSearchCV(
        EMGaussianMixture(random_state=0),
        {"n_components": [1, 2, 3, 4, 5]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X)
    # Held-out mean log-likelihood per point: three blobs, so each component up to the third
    # gains (K=1 -> 2 by about 2 nats, 2 -> 3 by about 0.5) and more components lose a little.
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["n_components"] == 3
    assert scores[0] + 1.0 < scores[1] < scores[2] - 0.25


def test_em_cross_val_score_is_the_held_out_mean_log_likelihood(data):
    X, _ = data
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(EMGaussianMixture(3, random_state=0), X, cv=folds)
    by_hand = [
        EMGaussianMixture(3, random_state=0).fit(X[train]).score(X[test])
        for train, test in folds.split(X)
    ]
    np.testing.assert_allclose(scores, by_hand, rtol=1e-12)


def test_dp_in_a_pipeline_with_cross_validation(data):
    X, _ = data
    pipe = make_pipeline(StandardScaler(), DPGaussianMixture(6, random_state=0))
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, cv=folds)
    by_hand = []
    for train, test in folds.split(X):
        scaler = StandardScaler().fit(X[train])
        model = DPGaussianMixture(6, random_state=0).fit(scaler.transform(X[train]))
        by_hand.append(model.score(scaler.transform(X[test])))
    np.testing.assert_allclose(scores, by_hand, rtol=1e-12)
    search = GridSearchCV(
        pipe, {"dpgaussianmixture__covariance_type": ["full", "spherical"]}, cv=folds
    )
    search.fit(X)
    # The blobs are anisotropic: full covariances predict held-out points better.
    assert search.best_params_["dpgaussianmixture__covariance_type"] == "full"


def test_em_takes_semi_supervised_labels_through_a_pipeline(data):
    """y stays ignored (a pipeline passes its target to every step); labels are a fit
    parameter, routed to the step by name."""
    X, truth = data
    labels = np.where(np.arange(len(truth)) % 10 == 0, truth, -1)
    pipe = make_pipeline(StandardScaler(), EMGaussianMixture(3, random_state=0))
    pipe.fit(X, emgaussianmixture__labels=labels)
    scaler, model = pipe[0], pipe[-1]
    alone = EMGaussianMixture(3, random_state=0).fit(scaler.transform(X), labels=labels)
    np.testing.assert_allclose(model.means_, alone.means_, rtol=1e-12)
    ignored = clone(pipe).fit(X, truth)
    plain = clone(pipe).fit(X)
    np.testing.assert_array_equal(ignored[-1].means_, plain[-1].means_)


def test_discriminant_analysis_in_a_pipeline_and_grid_search():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    folds = KFold(5, shuffle=True, random_state=0)
    edda = MixtureDiscriminantAnalysis("EDDA", covariance_types="tied")
    pipe = make_pipeline(StandardScaler(), edda)
    scores = cross_val_score(pipe, X, y, cv=folds)
    by_hand = []
    for train, test in folds.split(X):
        scaler = StandardScaler().fit(X[train])
        model = clone(edda).fit(scaler.transform(X[train]), y[train])
        by_hand.append(np.mean(model.predict(scaler.transform(X[test])) == y[test]))
    np.testing.assert_allclose(scores, by_hand, rtol=1e-12)
    search = GridSearchCV(
        pipe,
        {"mixturediscriminantanalysis__covariance_types": [("spherical",), ("full",)]},
        cv=folds,
    ).fit(X, y)
    # Iris's classes are elongated and correlated: full covariances classify better.
    assert search.best_params_["mixturediscriminantanalysis__covariance_types"] == ("full",)
    assert search.best_score_ > 0.95
    assert clone(pipe)[-1].get_params() == pipe[-1].get_params()


def test_not_fitted_error_is_caught_as_scikit_learn_catches_it():
    model = EMGaussianMixture(2)
    for caught in (NotFittedError, SklearnNotFittedError, AttributeError, ValueError):
        with pytest.raises(caught, match="not fitted yet"):
            model.predict(np.zeros((3, 2)))


def test_convergence_warning_is_scikit_learns_too():
    X, _ = make_mixture_data(n=200, d=2, k=2, seed=0)
    with pytest.warns(SklearnConvergenceWarning, match="did not converge"):
        EMGaussianMixture(2, max_iter=1, tol=0, random_state=0).fit(X)


def test_lower_bounds_is_the_trace_scikit_learn_reports(data):
    X, _ = data
    model = EMGaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(model.lower_bounds_, model.log_likelihood_trace_)
    assert model.lower_bounds_[-1] == model.lower_bound_


# scikit-learn's own tests that do not apply, each with the reason. Anything else that fails
# fails this suite; a test listed here that starts passing must be taken off the list.
SKLEARN_TESTS_NOT_APPLICABLE = {
    "test_check_weights": "exact wording of the message for a wrong weights_init",
    "test_check_means": "exact wording of the message for a wrong means_init",
    "test_check_precisions": "exact wording of the message for a wrong precisions_init",
    "test_gaussian_mixture_fit_convergence_warning": (
        "exact wording: the warning is scikit-learn's ConvergenceWarning (checked above) and "
        "says what to change in bayesgmm's words"
    ),
    "test_regularisation": "exact wording of the message for a collapsed component",
    "test_sample": "exact wording of the message for n_samples=0",
    "test_gaussian_mixture_precisions_init": (
        "calls GaussianMixture._set_parameters, a private method of scikit-learn's"
    ),
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters": (
        "mocks sklearn.mixture._gaussian_mixture._estimate_gaussian_parameters, a private helper"
    ),
}


def test_scikit_learns_gaussian_mixture_tests_pass_on_em(tmp_path):
    """Run the installed scikit-learn's test module with EMGaussianMixture standing in."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "sklearn.mixture.tests.test_gaussian_mixture",
            "-p",
            "sklearn_stand_in",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfE",
            f"--rootdir={tmp_path}",
            "-o",
            "addopts=",
            "-o",
            "filterwarnings=",
        ],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    failed = {
        re.sub(r"\[.*", "", name)
        for name in re.findall(r"^(?:FAILED|ERROR) \S*::(\S+)", output, flags=re.MULTILINE)
    }
    assert failed == set(SKLEARN_TESTS_NOT_APPLICABLE), output[-5000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None and int(passed.group(1)) >= 45, output[-2000:]


def test_marginal_model_clones_without_its_fit():
    from bayesgmm import MarginalGaussianMixture

    model = MarginalGaussianMixture(
        3, covariance_type="diag", priors={"weights_concentration": 2.0}
    )
    again = clone(model)
    assert again.get_params() == model.get_params()
    assert again is not model and again.priors is not model.priors


@pytest.mark.sampling
def test_marginal_model_in_a_pipeline(marginal_fit):
    """Same shape as the session's marginal fit, so the compiled model is reused."""
    from bayesgmm import MarginalGaussianMixture

    _, X = marginal_fit
    pipe = make_pipeline(StandardScaler(), MarginalGaussianMixture(3))
    pipe.fit(
        X,
        marginalgaussianmixture__draws=100,
        marginalgaussianmixture__tune=100,
        marginalgaussianmixture__chains=1,
        marginalgaussianmixture__random_state=0,
        marginalgaussianmixture__progressbar=False,
    )
    scaler, model = pipe[0], pipe[-1]
    Z = scaler.transform(X)
    assert pipe.score(X) == pytest.approx(model.score_samples(Z).mean(), rel=1e-12)
    np.testing.assert_array_equal(pipe.predict(X), model.predict_proba(Z).argmax(axis=1))
    assert model.predict_proba(Z).shape == (X.shape[0], 3)
    fresh = clone(pipe)
    assert not hasattr(fresh[-1], "params_")
    with pytest.raises(NotFittedError):
        fresh[-1].predict(X)


def test_feature_names_are_checked_against_the_fit(data):
    import pandas as pd

    X, _ = data
    frame = pd.DataFrame(X, columns=["a", "b"])
    model = EMGaussianMixture(3, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b"])
    np.testing.assert_array_equal(model.predict(frame), model.predict(X))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame.rename(columns={"b": "c"}))
