"""EM, prediction and imputation on data with missing entries (NaN).

Oracles: the complete-data path (the same numbers when nothing is missing), the
observed-data log-likelihood (never decreases), a mixture marginalised by hand
over the observed features, and recovery against EM on mean-imputed data.
"""

import numpy as np
import pytest

from bayesgmm import EMGaussianMixture, GaussianMixtureParams, _em_steps
from bayesgmm._gaussian import sample_mixture

TRUE_WEIGHTS = np.array([0.3, 0.3, 0.4])
TRUE_MEANS = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, 4.0, 0.0, 0.0], [0.0, 4.0, 4.0, -3.0]])


def _truth(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 4, 4))
    covariances = 0.3 * A @ A.transpose(0, 2, 1) + np.eye(4)
    return rng, covariances


def _mcar(X, fraction, rng):
    """Remove entries completely at random, keeping at least one per row."""
    holes = rng.random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    out = X.copy()
    out[holes] = np.nan
    return out


@pytest.fixture(scope="module")
def incomplete():
    """n=2000, d=4, K=3 with 20% of entries missing completely at random (seed 0)."""
    rng, covariances = _truth()
    X, labels = sample_mixture(2000, TRUE_WEIGHTS, TRUE_MEANS, covariances, rng)
    return X, _mcar(X, 0.2, rng), covariances


@pytest.fixture(scope="module")
def fitted(incomplete):
    """EM on the data with NaN, and EM on the same data with column means filled in."""
    _, X_missing, _ = incomplete
    mean_imputed = np.where(np.isnan(X_missing), np.nanmean(X_missing, axis=0), X_missing)
    aware = EMGaussianMixture(3, init_params="kmeans", random_state=0).fit(X_missing)
    naive = EMGaussianMixture(3, init_params="kmeans", random_state=0).fit(mean_imputed)
    return aware, naive


def _matched(means, reference):
    """Reorder fitted components to the reference's (nearest mean, K=3)."""
    from itertools import permutations

    best = min(permutations(range(3)), key=lambda p: np.abs(means[list(p)] - reference).sum())
    return list(best)


def test_complete_data_take_the_complete_path_unchanged(blobs):
    X = blobs[0] if isinstance(blobs, tuple) else blobs
    model = EMGaussianMixture(3, random_state=0).fit(X)
    p = model.params_
    np.testing.assert_array_equal(model.score_samples(X), p.score_samples(X))
    np.testing.assert_array_equal(model.predict_proba(X), p.predict_proba(X))
    np.testing.assert_array_equal(model.impute(X), X)
    # The row source of the missing-value path, given complete rows, adds nothing.
    Xc = X - X.mean(axis=0)
    state = _em_steps.state_from_responsibilities(
        Xc, model.predict_proba(X), "full", np.full(X.shape[1], 1e-6)
    )
    plain = _em_steps.e_step(Xc, state, "full", _em_steps.Pool())
    split = _em_steps.e_step(_em_steps.MissingRows.split(Xc), state, "full", _em_steps.Pool())
    np.testing.assert_array_equal(split.sum_xx, plain.sum_xx)
    assert split.log_normalizer == plain.log_normalizer


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_observed_data_log_likelihood_never_decreases(incomplete, covariance_type):
    _, X, _ = incomplete
    model = EMGaussianMixture(
        3,
        covariance_type=covariance_type,
        init_params="random",
        max_iter=40,
        tol=0.0,
        random_state=1,
    )
    with pytest.warns(Warning):  # tol=0 asks for every iteration: a ConvergenceWarning
        model.fit(X[:600])
    trace = model.log_likelihood_trace_
    assert trace.size == 40
    assert np.all(np.diff(trace) >= -1e-12 * np.abs(trace[1:]))
    assert trace[-1] > trace[0]


def test_lower_bound_is_the_observed_data_log_likelihood(incomplete, fitted):
    _, X, _ = incomplete
    model = fitted[0]
    # The last lower bound is the observed-data log-likelihood before the last
    # M-step, which cannot lower it; at convergence the gain is tiny.
    gain = model.score(X) - model.lower_bound_
    assert 0.0 <= gain < 1e-4


def test_recovery_beats_em_on_mean_imputed_data(incomplete, fitted):
    """Seed 0: NaN-aware EM's parameters are closer to the truth than EM on mean-imputed data.

    Measured largest absolute errors (seed 0): means 0.088 against 1.55, covariance
    entries 0.25 against 2.83; the test asks for a factor of 2 in both. Seeds 1-4 of
    the same design gave factors of at least 6 (means) and 2.7 (covariances), and
    imputation RMSE ratios of 0.72-0.76 against the 0.85 asked below.
    """
    _, _, covariances = incomplete
    aware, naive = fitted
    errors = {}
    for name, model in {"aware": aware, "naive": naive}.items():
        order = _matched(model.means_, TRUE_MEANS)
        errors[name] = (
            np.abs(model.means_[order] - TRUE_MEANS).max(),
            np.abs(model.covariances_[order] - covariances).max(),
        )
    assert errors["aware"][0] < errors["naive"][0] / 2
    assert errors["aware"][1] < errors["naive"][1] / 2
    assert errors["aware"][0] < 0.25  # about 5 standard errors of a mean at n = 2000


def test_imputation_beats_column_means(incomplete, fitted):
    X, X_missing, _ = incomplete
    model = fitted[0]
    filled = model.impute(X_missing)
    missing = np.isnan(X_missing)
    np.testing.assert_array_equal(filled[~missing], X_missing[~missing])
    column_means = np.broadcast_to(np.nanmean(X_missing, axis=0), X.shape)
    rmse = np.sqrt(np.mean((filled[missing] - X[missing]) ** 2))
    baseline = np.sqrt(np.mean((column_means[missing] - X[missing]) ** 2))
    assert rmse < 0.85 * baseline  # measured (seed 0): 1.67 against 2.35


def test_predictions_on_rows_with_nan_equal_a_mixture_marginalised_by_hand(incomplete, fitted):
    _, X, _ = incomplete
    model = fitted[0]
    rows = X[:300]
    proba = model.predict_proba(rows)
    score = model.score_samples(rows)
    full = model.params_.full_covariances()
    for pattern in np.unique(~np.isnan(rows), axis=0):
        which = (~np.isnan(rows) == pattern).all(axis=1)
        marginal = GaussianMixtureParams(
            model.weights_, model.means_[:, pattern], full[:, pattern][:, :, pattern], "full"
        )
        np.testing.assert_allclose(
            proba[which], marginal.predict_proba(rows[which][:, pattern]), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            score[which], marginal.score_samples(rows[which][:, pattern]), rtol=1e-11
        )
    np.testing.assert_array_equal(model.predict(rows), proba.argmax(axis=1))


def test_impute_keeps_a_dataframe():
    pd = pytest.importorskip("pandas")
    rng, covariances = _truth()
    X, _ = sample_mixture(300, TRUE_WEIGHTS, TRUE_MEANS, covariances, rng)
    frame = pd.DataFrame(_mcar(X, 0.1, rng), columns=list("abcd"), index=np.arange(300) + 10)
    model = EMGaussianMixture(3, random_state=0).fit(frame)
    filled = model.impute(frame)
    assert isinstance(filled, pd.DataFrame)
    assert list(filled.columns) == list("abcd") and filled.index[0] == 10
    assert not filled.isna().any().any()


def test_what_missing_values_cannot_stand_for_is_refused():
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[[4, 7]] = np.nan
    with pytest.raises(ValueError, match=r"X: expected at least one observed .* at indices 4, 7"):
        EMGaussianMixture(2).fit(X)
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"X: .* column\(s\) 1 entirely NaN"):
        EMGaussianMixture(2).fit(X)
    X[:, 1] = np.inf
    with pytest.raises(ValueError, match="X: expected finite values or NaN"):
        EMGaussianMixture(2).fit(X)
    X[:, 1] = np.random.default_rng(1).normal(size=20)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="labels: expected None when X has missing values"):
        EMGaussianMixture(2).fit(X, labels=np.r_[0, 1, -np.ones(18, dtype=int)])
    model = EMGaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="at indices 1"):
        model.predict(np.array([[0.0, 1.0, 2.0], [np.nan] * 3]))


def test_dask_input_with_nan_is_refused_clearly():
    da = pytest.importorskip("dask.array")
    X = np.random.default_rng(0).normal(size=(40, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X: .*in-memory"):
        EMGaussianMixture(2, random_state=0).fit(da.from_array(X, chunks=10))


def test_information_criteria_use_the_observed_data_likelihood(incomplete, fitted):
    _, X, _ = incomplete
    model = fitted[0]
    log_likelihood = model.score_samples(X).sum()
    n_parameters = model.params_.n_parameters()
    assert model.bic(X) == pytest.approx(
        -2 * log_likelihood + n_parameters * np.log(X.shape[0]), rel=1e-12
    )
    assert model.aic(X) == pytest.approx(-2 * log_likelihood + 2 * n_parameters, rel=1e-12)
