"""MixtureDiscriminantAnalysis: parity with mclust's EDDA and MclustDA and with scikit-learn's
LDA/QDA, Bayes' rule with given priors, cross-validation, validation and the summary."""

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import multivariate_normal
from sklearn.covariance import EmpiricalCovariance
from sklearn.datasets import load_iris
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)

from bayesgmm import MixtureDiscriminantAnalysis, NotFittedError
from bayesgmm._reports import mclust_name
from bayesgmm.discriminant import all_covariance_types, brier_score

# mclust 6.0.0, MclustDA(iris[, 1:4], iris$Species, modelType = "EDDA"): every model's BIC
# (mclust's sign), from `da$models[[1]]$BIC`. The fits are M-steps on the known classes,
# so they do not depend on starting values.
MCLUST_EDDA_IRIS_BIC = {
    "EII": -894.5341614,
    "VII": -860.1563584,
    "EEI": -809.2048934,
    "VEI": -771.8635402,
    "EVI": -796.1813734,
    "VVI": -738.9807628,
    "EEE": -623.5263450,
    "VEE": -597.0446452,
    "EVE": -611.3987568,
    "VVE": -581.0076685,
    "EEV": -600.6481263,
    "VEV": -555.8023594,
    "EVV": -619.3350072,
    "VVV": -576.2883796,
}


@pytest.fixture(scope="module")
def iris():
    data = load_iris(as_frame=True)
    return data.data, np.asarray(data.target_names)[data.target]


@pytest.fixture(scope="module")
def edda_four(iris):
    X, y = iris
    types = ("spherical", "diag", "tied", "full")
    return MixtureDiscriminantAnalysis("EDDA", covariance_types=types, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def mclustda_iris(iris):
    X, y = iris
    model = MixtureDiscriminantAnalysis(
        covariance_types=("spherical", "diag", "tied", "full"), random_state=0
    )
    return model.fit(X, y)


# Models whose M-step is iterative (Celeux and Govaert 1995; Browne and McNicholas 2014):
# bayesgmm iterates it to convergence and may end higher than mclust (VVE: 0.87 higher).
ITERATIVE_MODELS = {"VEI", "VEE", "EVE", "VVE", "VEV"}


def test_edda_bic_of_every_model_matches_mclust(iris):
    """Every covariance model EM accepts (mclust's 14 where the registry has them) gets
    mclust's EDDA BIC on iris, or a higher one for the iteratively fitted models, and the
    model with the best BIC is chosen. With all 14, that is mclust's vignette result: VEV,
    training error 0.02 and Brier score 0.0127."""
    X, y = iris
    model = MixtureDiscriminantAnalysis("EDDA", random_state=0).fit(X, y)
    table = model.bic_table_
    assert list(table["covariance_type"]) == all_covariance_types()
    for kind, bic in zip(table["covariance_type"], table["bic_mclust"], strict=True):
        expected = MCLUST_EDDA_IRIS_BIC[mclust_name(kind)]
        if mclust_name(kind) in ITERATIVE_MODELS:
            assert bic > expected - 0.05, kind
        else:
            assert bic == pytest.approx(expected, abs=0.05), kind
    chosen = table.loc[table["bic"].idxmin(), "covariance_type"]
    assert model.covariance_types_.tolist() == [chosen] * 3
    assert (
        table["chosen"].sum() == 1
        and table.loc[table["chosen"], "covariance_type"].item() == chosen
    )
    report = model.summary(X, y)
    if mclust_name(chosen) == "VEV":
        assert report.bic == pytest.approx(-555.8024, abs=0.01)
        assert report.log_likelihood == pytest.approx(-187.7097, abs=0.01)
        assert report.n_parameters == 36
        assert report.error == pytest.approx(0.02)
        assert report.brier == pytest.approx(0.0127, abs=1e-4)


def test_edda_on_four_models_matches_mclust_summary(edda_four, iris):
    """mclust 6.0.0, MclustDA(..., modelType = "EDDA", modelNames = c("VII", "VVI", "EEE",
    "VVV")): VVV, log-likelihood -182.9208, df 42, BIC -576.2884, training error 0.02,
    Brier score 0.0116."""
    X, y = iris
    assert edda_four.covariance_types_.tolist() == ["full"] * 3
    assert edda_four.log_likelihood_ == pytest.approx(-182.9208, abs=1e-3)
    assert edda_four.n_parameters_ == 42
    report = edda_four.summary(X, y)
    assert report.bic == pytest.approx(-576.2884, abs=1e-3)
    assert report.error == pytest.approx(0.02)
    assert report.brier == pytest.approx(0.0116, abs=1e-4)
    assert report.model_names == ["VVV"] * 3
    np.testing.assert_array_equal(report.confusion, [[50, 0, 0], [0, 48, 2], [0, 1, 49]])
    text = str(report)
    assert "EDDA model summary:" in text
    assert "Classification error = 0.02" in text


def test_edda_full_gives_quadratic_discriminant_analysis_posteriors(edda_four, iris):
    """EDDA with one full covariance per class is QDA with maximum-likelihood covariances:
    scikit-learn's QDA with the empirical (divide-by-n) covariance, and exactly the scipy
    densities once the regularisation EM adds (1e-6 of each feature's variance) is added."""
    X, y = iris
    qda = QuadraticDiscriminantAnalysis(
        solver="eigen", covariance_estimator=EmpiricalCovariance()
    ).fit(X, y)
    ours = edda_four.predict_proba(X)
    np.testing.assert_allclose(ours, qda.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(edda_four.predict(X), qda.predict(X))
    data = X.to_numpy()
    reg = 1e-6 * data.var(axis=0)
    classes = np.unique(y)
    log_densities = np.column_stack(
        [
            multivariate_normal(
                data[y == c].mean(axis=0), np.cov(data[y == c].T, bias=True) + np.diag(reg)
            ).logpdf(data)
            for c in classes
        ]
    )
    priors = np.array([np.mean(y == c) for c in classes])
    np.testing.assert_allclose(ours, softmax(log_densities + np.log(priors), axis=1), atol=1e-10)


def test_edda_tied_gives_linear_discriminant_analysis_posteriors(iris):
    """EDDA with one shared covariance (mclust's EEE) is LDA: scikit-learn's 'lsqr' LDA uses
    the pooled maximum-likelihood covariance, the M-step of the tied model."""
    X, y = iris
    model = MixtureDiscriminantAnalysis("EDDA", covariance_types="tied").fit(X, y)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), lda.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(model.predict(X), lda.predict(X))


def test_mclustda_iris_errors_in_mclusts_range(mclustda_iris, iris):
    """mclust 6.0.0's vignette: EDDA on iris, training error 0.02 and 10-fold CV error
    0.0267 (se 0.0109), Brier score 0.0208; MclustDA on the four shared models, training
    error 0.02 and CV error 0.0267."""
    X, y = iris
    report = mclustda_iris.summary(X, y)
    assert report.error <= 0.03
    assert report.brier <= 0.02
    cv = mclustda_iris.cross_validate(X, y, n_folds=10, random_state=1)
    assert cv.n_folds == 10
    assert cv.error <= 0.06
    assert 0 < cv.error_se < 0.03
    assert cv.brier <= 0.04
    assert cv.error == pytest.approx(np.mean(cv.predictions != y))
    assert cv.brier == pytest.approx(
        brier_score(cv.probabilities, np.unique(y, return_inverse=True)[1])
    )


def test_mclustda_chooses_each_class_by_its_own_bic(mclustda_iris):
    table = mclustda_iris.bic_table_
    for c, label in enumerate(mclustda_iris.classes_):
        rows = table[table["class"] == label]
        usable = rows[rows["note"].str.len() == 0]
        best = usable.loc[usable["bic"].idxmin()]
        assert mclustda_iris.n_components_[c] == best["n_components"]
        assert mclustda_iris.covariance_types_[c] == best["covariance_type"]
        assert rows["chosen"].sum() == 1


def test_mclustda_finds_two_clusters_inside_a_class():
    """Classes made of two blobs each, alternating along a line (a, b, a, b): a mixture per
    class separates them; one Gaussian per class (EDDA) puts each class's mean between its
    blobs and gets about half of the points wrong."""
    rng = np.random.default_rng(0)
    centres = np.array([[-6.0, 0.0], [-2.0, 0.0], [2.0, 0.0], [6.0, 0.0]])
    X = np.vstack([rng.normal(c, 0.5, (60, 2)) for c in centres])
    y = np.repeat([0, 1, 0, 1], 60)
    mda = MixtureDiscriminantAnalysis(
        n_components=(1, 2, 3), covariance_types=("full",), random_state=0
    ).fit(X, y)
    assert (mda.n_components_ >= 2).all()
    assert mda.score(X, y) > 0.99
    edda = MixtureDiscriminantAnalysis("EDDA", covariance_types=("full",)).fit(X, y)
    assert edda.score(X, y) < 0.75


def test_priors_enter_by_bayes_rule(edda_four, iris):
    X, y = iris
    priors = np.array([0.1, 0.6, 0.3])
    shifted = MixtureDiscriminantAnalysis(
        "EDDA", covariance_types="full", priors=priors * 10, random_state=0
    ).fit(X, y)
    np.testing.assert_allclose(shifted.priors_, priors)
    expected = edda_four.predict_proba(X) * priors / edda_four.priors_
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(shifted.predict_proba(X), expected, atol=1e-12)
    np.testing.assert_allclose(edda_four.priors_, [1 / 3] * 3)


def test_predict_is_the_most_probable_class_and_keeps_label_types(edda_four, iris):
    X, _ = iris
    proba = edda_four.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(edda_four.predict(X), edda_four.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(edda_four.predict_log_proba(X)), proba)
    assert edda_four.classes_.tolist() == ["setosa", "versicolor", "virginica"]


def test_one_class_predicts_that_class():
    X = np.random.default_rng(0).normal(size=(20, 2))
    model = MixtureDiscriminantAnalysis(n_components=(1, 2), covariance_types="diag").fit(
        X, np.full(20, 7)
    )
    assert model.predict(X).tolist() == [7] * 20


def test_brier_score_is_mclusts():
    """mclust's BrierScore: sum of squared differences from the one-hot truth over 2n."""
    z = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    truth = np.array([0, 0, 1])
    expected = ((0.1**2 + 0.1**2) + (0.8**2 + 0.8**2) + (0.5**2 + 0.5**2)) / 6
    assert brier_score(z, truth) == pytest.approx(expected)
    assert brier_score(np.eye(3), np.arange(3)) == 0.0


def test_cross_validation_folds_are_balanced_and_held_out():
    """On classes that never overlap, every held-out row is predicted right; leave-one-out
    uses every row once."""
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(-10, 1, (12, 2)), rng.normal(10, 1, (12, 2))])
    y = np.repeat(["a", "b"], 12)
    model = MixtureDiscriminantAnalysis("EDDA", covariance_types="tied").fit(X, y)
    cv = model.cross_validate(X, y, n_folds=24)
    assert cv.n_folds == 24
    assert cv.error == 0.0 and cv.error_se == 0.0
    assert cv.predictions.tolist() == y.tolist()


def test_validation_names_the_argument(iris):
    X, y = iris
    with pytest.raises(ValueError, match="model_type"):
        MixtureDiscriminantAnalysis("QDA").fit(X, y)
    with pytest.raises(ValueError, match="n_components: expected None or 1 with model_type='EDDA'"):
        MixtureDiscriminantAnalysis("EDDA", n_components=2).fit(X, y)
    with pytest.raises(ValueError, match="covariance_types"):
        MixtureDiscriminantAnalysis(covariance_types=("banana",)).fit(X, y)
    with pytest.raises(ValueError, match="priors: expected 3 non-negative"):
        MixtureDiscriminantAnalysis("EDDA", priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        MixtureDiscriminantAnalysis("EDDA", priors=[-1, 1, 1]).fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type: 'continuous'"):
        MixtureDiscriminantAnalysis("EDDA").fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="y: expected 150 labels"):
        MixtureDiscriminantAnalysis("EDDA").fit(X, y[:-1])
    with pytest.raises(ValueError, match="requires y to be passed"):
        MixtureDiscriminantAnalysis("EDDA").fit(X, None)
    with pytest.raises(NotFittedError):
        MixtureDiscriminantAnalysis().predict(X)
    model = MixtureDiscriminantAnalysis("EDDA", covariance_types="tied").fit(X, y)
    with pytest.raises(ValueError, match="n_folds"):
        model.cross_validate(X, y, n_folds=1)
    with pytest.raises(ValueError, match="y: expected labels among classes_"):
        model.summary(X, np.where(y == "setosa", "rose", y))
    with pytest.raises(ValueError, match="X: expected 4 feature"):
        model.predict(X.to_numpy()[:, :3])
