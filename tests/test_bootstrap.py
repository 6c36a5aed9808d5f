"""EM's bootstrap: the replicate engine, the DataTree, summaries, intervals, and mclust's ICL."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesgmm
from bayesgmm import EMGaussianMixture, cli, cluster_uncertainty
from bayesgmm._bootstrap import BootstrapWarning, run_replicates
from bayesgmm._gaussian import COVARIANCE_TYPES
from bayesgmm._validation import NotFittedError
from bayesgmm.bootstrap import bootstrap_summary
from bayesgmm.datasets import load_faithful
from bayesgmm.params import GaussianMixtureParams

# Two well-separated bivariate components with known parameters.
TRUTH = GaussianMixtureParams(
    np.array([0.4, 0.6]),
    np.array([[0.0, 0.0], [4.0, 2.0]]),
    np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.7, -0.2], [-0.2, 1.2]]]),
    "full",
)
N = 400


def simulate(seed, n=N):
    return TRUTH.sample(n, np.random.default_rng(seed))[0]


def fit(X, **kwargs):
    options = {"random_state": 0, "n_init": 3, "tol": 1e-8, "max_iter": 1000}
    options.update(kwargs)
    return EMGaussianMixture(2, means_init=TRUTH.means, **options).fit(X)


def flat(weights, means, covariances):
    """First weight, the means and the upper triangles of the covariances, one row per draw."""
    upper = covariances.reshape(len(covariances), -1)[:, [0, 1, 3, 4, 5, 7]]
    return np.concatenate([weights[:, :1], means.reshape(len(means), -1), upper], axis=1)


@pytest.fixture(scope="module")
def data():
    return simulate(1)


@pytest.fixture(scope="module")
def fitted(data):
    model = fit(data)
    model.bootstrap(data, 200, random_state=0)
    return model


# ----------------------------------------------------------------- the engine
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_row_weights_are_duplicated_rows(covariance_type):
    """A replicate with integer row weights runs EM's iterates on the data with rows repeated.

    Oracle: EMGaussianMixture on ``np.repeat(X, counts)`` from the same start,
    the same absolute reg_covar and exactly five iterations (tol=0) on both sides.
    """
    X = simulate(2, 150)
    rng = np.random.default_rng(3)
    counts = rng.multinomial(150, np.full(150, 1 / 150), size=3).astype(float)
    start = EMGaussianMixture(
        2, covariance_type=covariance_type, max_iter=2, random_state=0, reg_covar_scale="absolute"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X)
    shift = X.mean(axis=0)
    reps = run_replicates(
        X - shift,
        counts,
        (start.weights_, start.means_ - shift, start.covariances_),
        covariance_type=covariance_type,
        reg_covar=np.full(2, 1e-6),
        max_iter=5,
        tol=0.0,
    )
    assert (reps.n_iter == 5).all() and not reps.failed.any()
    for b in range(3):
        repeated = np.repeat(X, counts[b].astype(int), axis=0)
        oracle = EMGaussianMixture(
            2,
            covariance_type=covariance_type,
            tol=0.0,
            max_iter=5,
            reg_covar=1e-6,
            reg_covar_scale="absolute",
            weights_init=start.weights_,
            means_init=start.means_,
            precisions_init=start.precisions_,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oracle.fit(repeated)
        np.testing.assert_allclose(reps.weights[b], oracle.weights_, rtol=1e-9)
        np.testing.assert_allclose(reps.means[b] + shift, oracle.means_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(reps.covariances[b], oracle.covariances_, rtol=1e-8)
        # The log-likelihood is the weighted one of the parameters before the last M-step.
        assert reps.log_likelihood[b] == pytest.approx(oracle.lower_bound_ * len(repeated))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_shared_and_per_replicate_data_agree(covariance_type, data):
    """The parametric path (one data set per replicate) computes what the weighted path does."""
    model = fit(data, covariance_type=covariance_type)
    shift = data.mean(axis=0)
    start = (model.weights_, model.means_ - shift, model.covariances_)
    options = {
        "covariance_type": covariance_type,
        "reg_covar": model.reg_covar_,
        "max_iter": 20,
        "tol": 0.0,
    }
    shared = run_replicates(data - shift, np.ones((2, len(data))), start, **options)
    stacked = run_replicates(np.stack([data - shift] * 2), None, start, **options)
    for name in ("weights", "means", "covariances", "log_likelihood"):
        np.testing.assert_allclose(getattr(shared, name), getattr(stacked, name), rtol=1e-7)


def test_a_failed_replicate_is_counted_and_left_as_nan(data):
    """Weight on only two rows makes a full covariance singular without regularisation."""
    model = fit(data)
    shift = data.mean(axis=0)
    weights = np.ones((3, len(data)))
    weights[1] = 0.0
    weights[1, :2] = 1.0
    reps = run_replicates(
        data - shift,
        weights,
        (model.weights_, model.means_ - shift, model.covariances_),
        covariance_type="full",
        reg_covar=np.zeros(2),
        max_iter=50,
        tol=1e-8,
    )
    assert reps.failed.tolist() == [False, True, False]
    assert np.isnan(reps.means[1]).all() and np.isnan(reps.log_likelihood[1])
    assert np.isfinite(reps.means[[0, 2]]).all()


# ------------------------------------------------------------- the DataTree
def test_datatree_layout_and_arviz_summary(fitted):
    import arviz_stats

    tree = fitted.bootstrap_
    assert tree.attrs["interval_method"] == "bootstrap"
    assert tree.attrs["bootstrap_method"] == "nonparametric"
    group = tree["bootstrap"]
    assert group["weights"].dims == ("chain", "draw", "component")
    assert group["means"].dims == ("chain", "draw", "component", "feature")
    assert group["covariances"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    a = tree.attrs
    assert a["n_used"] + a["n_failed"] + a["n_degenerate"] == a["n_replicates"] == 200
    assert group.sizes["draw"] == a["n_used"]
    assert tree["replicates"].sizes["replicate"] == 200
    table = arviz_stats.summary(tree, group="bootstrap", kind="stats")
    assert len(table) == 2 + 4 + 8  # weights, means, covariances
    # Relabelled to the fit: every replicate's component k is nearest the fit's component k.
    means = group["means"].values[0]
    distance = np.linalg.norm(means[:, :, None] - fitted.means_[None, None], axis=-1)
    assert (distance.argmin(axis=2) == np.arange(2)).all()


def test_refit_discards_the_bootstrap_and_save_load_keeps_it(tmp_path, data):
    model = fit(data)
    model.bootstrap(data, 50, random_state=0)
    path = tmp_path / "em.json"
    model.save(path)
    loaded = bayesgmm.load(path)
    pd.testing.assert_frame_equal(loaded.bootstrap_summary(), model.bootstrap_summary())
    pd.testing.assert_frame_equal(bootstrap_summary(model.bootstrap_), model.bootstrap_summary())
    assert loaded.bootstrap_.attrs == model.bootstrap_.attrs
    model.fit(data)
    assert model.bootstrap_ is None


def test_bootstrap_rejects_bad_input(data):
    model = fit(data)
    with pytest.raises(ValueError, match="method"):
        model.bootstrap(data, 10, method="bayesian")
    with pytest.raises(ValueError, match="n_boot"):
        model.bootstrap(data, 1)
    with pytest.raises(ValueError, match="feature"):
        model.bootstrap(data[:, :1], 10)
    with pytest.raises(NotFittedError):
        EMGaussianMixture(2).bootstrap(data, 10)
    with pytest.raises(ValueError, match="bootstrap"):
        model.bootstrap_summary()


def test_degenerate_replicates_are_counted_and_warned():
    """A cluster of four points: many resamples hold three or fewer distinct ones.

    A full covariance in two dimensions on three distinct points or fewer is
    degenerate; those replicates must be counted and left out, never dropped
    silently.
    """
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0, 1, (60, 2)), rng.normal(10, 0.5, (4, 2))])
    model = EMGaussianMixture(2, random_state=0).fit(X)
    with pytest.warns(BootstrapWarning, match="degenerate component"):
        tree = model.bootstrap(X, 100, random_state=0)
    a = tree.attrs
    assert a["n_degenerate"] > 0
    assert a["n_used"] + a["n_failed"] + a["n_degenerate"] == 100
    status = tree["replicates"]["status"].values
    assert (status == "degenerate").sum() == a["n_degenerate"]
    assert tree["bootstrap"].sizes["draw"] == a["n_used"]


# ------------------------------------------------------------- the summary
def test_jackknife_standard_error_of_one_gaussian_mean_is_the_textbook_one():
    """For K = 1 the jackknife SE of the mean is exactly s / sqrt(n) (Efron & Stein)."""
    X = np.random.default_rng(0).normal(size=(50, 2)) * [1.0, 3.0]
    model = EMGaussianMixture(1).fit(X)
    model.bootstrap(X, method="jackknife")
    table = model.bootstrap_summary()
    se = table.loc["means"]["se"].to_numpy()
    np.testing.assert_allclose(se, X.std(axis=0, ddof=1) / np.sqrt(50), rtol=1e-6)
    assert table.attrs["interval"].startswith("normal")


@pytest.mark.parametrize("method", ["nonparametric", "weighted", "parametric"])
def test_standard_error_of_one_gaussian_mean(method):
    """K = 1: every bootstrap's SE of the mean is sigma_hat / sqrt(n) up to Monte Carlo error.

    With B = 2000 the relative Monte Carlo sd of an SE is about 1.6%; 8% is 5 of them.
    """
    X = np.random.default_rng(1).normal(size=(200, 2)) * [1.0, 3.0]
    model = EMGaussianMixture(1).fit(X)
    model.bootstrap(X, 2000, method=method, random_state=2)
    se = model.bootstrap_summary().loc["means"]["se"].to_numpy()
    np.testing.assert_allclose(se, X.std(axis=0) / np.sqrt(200), rtol=0.08)


@pytest.fixture(scope="module")
def sampling_sd():
    """The true sampling sd of the MLE at n = 400: EM on 2000 data sets simulated from TRUTH."""
    rng = np.random.default_rng(0)
    sims = np.stack([TRUTH.sample(N, rng)[0] for _ in range(2000)])
    reps = run_replicates(
        sims,
        None,
        (TRUTH.weights, TRUTH.means, TRUTH.covariances),
        covariance_type="full",
        reg_covar=np.zeros(2),
        max_iter=1000,
        tol=1e-10,
    )
    return flat(reps.weights, reps.means, reps.covariances).std(axis=0, ddof=1)


@pytest.mark.parametrize(
    ("method", "seed"),
    [("nonparametric", 100), ("weighted", 101), ("parametric", 102), ("jackknife", 103)],
)
def test_bootstrap_standard_errors_match_the_sampling_distribution(method, seed, sampling_sd):
    """Bootstrap SEs from one data set against the sd of the MLE over 2000 simulated ones.

    The SE estimated from one data set of 400 points varies from data set to
    data set by about 5-10% for weights and means (more for covariances, whose
    SEs depend on fourth moments), so each weight and mean SE must be within
    25% and the median ratio over all 11 parameters within 15%.
    """
    X = simulate(seed)
    model = fit(X)
    tree = model.bootstrap(X, 500, method=method, random_state=seed)
    table = model.bootstrap_summary()
    draws = flat(*(tree["bootstrap"][v].values[0] for v in ("weights", "means", "covariances")))
    sd = draws.std(axis=0, ddof=1)
    if method == "jackknife":
        sd *= (len(draws) - 1) / np.sqrt(len(draws))
    np.testing.assert_allclose(table.loc["weights"]["se"].iloc[0], sd[0], rtol=1e-10)
    ratio = sd / sampling_sd
    assert np.all((ratio[:5] > 0.75) & (ratio[:5] < 1.33)), ratio
    assert 0.85 < np.median(ratio) < 1.18, ratio


@pytest.mark.slow
def test_percentile_intervals_cover_the_truth_at_their_level():
    """Coverage of the 90% percentile intervals over 100 independent data sets.

    Each of the 11 parameters is covered in a binomial(100, 0.9) number of
    data sets if the intervals are calibrated (sd 3); pooled over the
    parameters (correlated) the rate must lie in [0.84, 0.95] and each
    parameter's in [0.78, 0.99] (four sds below 0.9).
    """
    truth = flat(TRUTH.weights[None], TRUTH.means[None], TRUTH.covariances[None])[0]
    covered = []
    for seed in range(100):
        X = simulate(1000 + seed)
        model = fit(X)
        model.bootstrap(X, 199, random_state=seed)
        table = model.bootstrap_summary(ci_prob=0.9)
        lower = np.r_[table["lower"].iloc[0], table["lower"].iloc[2:]]
        upper = np.r_[table["upper"].iloc[0], table["upper"].iloc[2:]]
        covered.append((lower <= truth) & (truth <= upper))
    rate = np.mean(covered, axis=0)
    assert 0.84 <= rate.mean() <= 0.95, rate
    assert (rate >= 0.78).all() and (rate <= 0.99).all(), rate


# ------------------------------------------------------- intervals downstream
def test_predict_proba_intervals_have_the_bayesian_models_structure(fitted, data):
    intervals = fitted.predict_proba(data[:30], ci_prob=0.9)
    assert set(intervals.data_vars) == {"mean", "median", "lower", "upper"}
    assert intervals["mean"].dims == ("obs_id", "component")
    assert intervals.attrs["ci_prob"] == 0.9 and intervals.attrs["ci_kind"] == "eti"
    assert intervals.attrs["interval_method"] == "bootstrap"
    lower, median, upper = (intervals[v].values for v in ("lower", "median", "upper"))
    assert np.all(lower <= median) and np.all(median <= upper)
    assert np.any(upper - lower > 1e-3)  # the replicates disagree somewhere
    np.testing.assert_allclose(
        fitted.predict_proba(data[:30]), fitted.params_.predict_proba(data[:30])
    )


def test_predict_proba_intervals_need_a_bootstrap_with_draws(data):
    model = fit(data)
    with pytest.raises(ValueError, match="bootstrap"):
        model.predict_proba(data, ci_prob=0.9)
    model.bootstrap(data, method="jackknife")
    with pytest.raises(ValueError, match="jackknife"):
        model.predict_proba(data, ci_prob=0.9)


def test_cluster_uncertainty_uses_the_replicates(fitted, data):
    result = cluster_uncertainty(fitted, data, ci_prob=0.9)
    assert result.n_draws == fitted.bootstrap_.attrs["n_used"]
    table = result.table
    assert (table["lower"] <= table["probability"]).all()
    assert (table["upper"] - table["lower"]).max() > 1e-3
    plain = cluster_uncertainty(fit(data), data, ci_prob=0.9)
    assert plain.n_draws == 1


def test_plot_clusters_draws_bootstrap_ellipses(fitted, data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesgmm.plotting import plot_clusters

    ax = plot_clusters(fitted, data, n_posterior_draws=10)
    drawn = [p for p in ax.patches if p.get_gid() == "posterior"]
    assert len(drawn) == 10 * 2
    plt.close(ax.figure)


def test_cli_fit_bootstrap(tmp_path, capsys, data):
    path = tmp_path / "data.csv"
    pd.DataFrame(data, columns=["x", "y"]).to_csv(path, index=False)
    output = tmp_path / "em.json"
    code = cli.main(
        ["fit", str(path), "--model", "em", "--components", "2", "--seed", "0"]
        + ["--bootstrap", "30", "--output", str(output)]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert "bootstrap: 30 of 30 replicates used" in out and "se" in out
    assert bayesgmm.load(output).bootstrap_.attrs["n_replicates"] == 30
    code = cli.main(
        ["fit", str(path), "--model", "dp", "--components", "2", "--bootstrap", "30"]
        + ["--output", str(tmp_path / "dp.json")]
    )
    _, err = capsys.readouterr()
    assert code != 0 and "--bootstrap" in err


# ------------------------------------------------------------------ ICL
def test_icl_map_reproduces_mclust_on_old_faithful():
    """mclust's ICL of EEE with 3 components on Old Faithful.

    mclust 6.0.0, ``icl(Mclust(faithful, G = 3, modelNames = "EEE", control =
    emControl(tol = c(1e-12, 1e-12))))`` = -2358.389 (mclust's sign), with
    loglik -1126.3159. mclust's default stopping rule (relative change below
    1e-5) stops early at loglik -1126.326 and reports -2357.824; fully
    converged, bayesgmm and mclust agree to the rounding of reg_covar.
    """
    X = load_faithful()
    model = EMGaussianMixture(
        3, covariance_type="tied", n_init=5, tol=1e-10, max_iter=5000, random_state=0
    ).fit(X)
    assert model.score(X) * len(X) == pytest.approx(-1126.3159, abs=1e-3)
    assert model.icl(X) == pytest.approx(2358.389, abs=0.05)
    assert abs(model.icl(X) - 2357.824) < 0.6  # mclust's default-tolerance value


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_icl_kinds_against_a_naive_computation(covariance_type, data):
    model = fit(data, covariance_type=covariance_type)
    resp = model.predict_proba(data)
    bic = model.bic(data)
    hard = bic - 2 * np.log(resp.max(axis=1)).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = bic - 2 * np.nansum(resp * np.log(resp))
    assert model.icl(data) == pytest.approx(hard, rel=1e-10)
    assert model.icl(data, kind="map") == pytest.approx(hard, rel=1e-10)
    assert model.icl(data, kind="entropy") == pytest.approx(entropy, rel=1e-10)
    assert model.icl(data, kind="map") <= model.icl(data, kind="entropy")
    with pytest.raises(ValueError, match="kind"):
        model.icl(data, kind="soft")


def test_selection_table_carries_bic_and_icl(data):
    from bayesgmm import select_n_components

    result = select_n_components(data, range(1, 4), covariance_types=("full",), random_state=0)
    table = result.table
    assert {"bic", "icl"} <= set(table.columns)
    assert (table["icl"] >= table["bic"]).all()
    one = table["n_components"] == 1  # one component: every point certain, ICL = BIC
    np.testing.assert_allclose(table.loc[one, "icl"], table.loc[one, "bic"])
