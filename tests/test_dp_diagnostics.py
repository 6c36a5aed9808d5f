"""The DP's approximation checked (Pareto k of p / q), repaired (PSIS, refine) and labelled."""

import warnings

import matplotlib
import numpy as np
import pytest
from scipy import stats
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import bayesgmm  # noqa: E402
from bayesgmm import (  # noqa: E402
    ApproximationWarning,
    DPGaussianMixture,
    GaussianMixtureParams,
    MarginalGaussianMixture,
    cluster_uncertainty,
    plotting,
)
from bayesgmm import _vi_diagnostics as vd  # noqa: E402
from bayesgmm._intervals import credible_interval  # noqa: E402
from bayesgmm.comparison import pareto_k_threshold  # noqa: E402
from bayesgmm.datasets import make_mixture  # noqa: E402


def _fit(X, truncation, **kwargs):
    """Fit and check quietly; return the model and whether it warned about its approximation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApproximationWarning)
        model = DPGaussianMixture(truncation, random_state=0, **kwargs).fit(X)
        model._approximation_check()  # made when first needed
    return model, any(issubclass(w.category, ApproximationWarning) for w in caught)


@pytest.fixture(scope="module")
def two_clusters():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-4, 1, (300, 2)), rng.normal(4, 1, (300, 2))])


@pytest.fixture(scope="module")
def reliable(two_clusters):
    """Two separated clusters, truncation 3 with diagonal covariances: k about 0.5."""
    model, warned = _fit(two_clusters, 3, covariance_type="diag")
    assert not warned and model.interval_method_ == "VI+PSIS"
    return model


@pytest.fixture(scope="module")
def flagged(two_clusters):
    """The same data with five components: the spare ones push k above the threshold."""
    model, warned = _fit(two_clusters, 5)
    assert warned and model.interval_method_ == "VI"
    return model


# ------------------------------------------------------------------ the check
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_log_likelihood_sums_match_scipy(two_clusters, covariance_type):
    model, _ = _fit(two_clusters[::4], 3, covariance_type=covariance_type)
    draws = model._posterior.draws(7, np.random.default_rng(1))
    data = two_clusters[::4] - model._center
    covs = draws.full_covariances()
    expected = [
        logsumexp(
            [
                draws.log_weights[s, k]
                + stats.multivariate_normal(draws.means[s, k], covs[s, k]).logpdf(data)
                for k in range(draws.log_weights.shape[1])
            ],
            axis=0,
        ).sum()
        for s in range(7)
    ]
    np.testing.assert_allclose(vd.log_likelihood_sums(draws, data), expected, rtol=1e-10)


def test_pareto_k_is_arviz_psis_of_the_pool(flagged, two_clusters):
    """Recompute k from the pool's seed with a naive log joint density and ArviZ's PSIS."""
    from arviz_stats.base import array_stats

    check = flagged._importance
    pool = flagged._posterior.draws(vd.POOL_SIZE, np.random.default_rng(check.seed))
    data = two_clusters - flagged._center
    covs = pool.full_covariances()
    log_lik = np.array(
        [
            logsumexp(
                [
                    pool.log_weights[s, k]
                    + stats.multivariate_normal(pool.means[s, k], covs[s, k]).logpdf(data)
                    for k in range(5)
                ],
                axis=0,
            ).sum()
            for s in range(vd.POOL_SIZE)
        ]
    )
    log_ratio = log_lik + pool.log_prior - pool.log_q
    log_weights, k_hat = array_stats.psislw(-log_ratio)
    assert flagged.pareto_k_ == pytest.approx(float(k_hat), abs=1e-8)
    np.testing.assert_allclose(check.log_weights, log_weights, atol=1e-8)
    assert check.good_k == pareto_k_threshold(vd.POOL_SIZE) == pytest.approx(2 / 3)
    assert flagged.pareto_k_ > check.good_k


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_an_exact_posterior_gives_minus_infinite_k(covariance_type):
    """One component is conjugate: q is the posterior, the ratios are constant, no warning."""
    X = np.random.default_rng(0).normal(size=(200, 2))
    model, warned = _fit(X, 1, covariance_type=covariance_type)
    assert model.pareto_k_ == -np.inf and not warned
    assert model.interval_method_ == "VI+PSIS"
    np.testing.assert_allclose(model._importance.ess, vd.POOL_SIZE)


def test_the_warning_says_what_to_do(two_clusters):
    with pytest.warns(ApproximationWarning, match=r"Pareto k \d\.\d\d .* call refine\(X\)"):
        DPGaussianMixture(5, random_state=0).fit(two_clusters).to_datatree(n_draws=5)
    assert bayesgmm.ApproximationWarning is ApproximationWarning
    assert issubclass(ApproximationWarning, UserWarning)


@pytest.mark.parametrize(
    "first_interval",
    [
        lambda model, X: model.to_datatree(n_draws=5),
        lambda model, X: model.predict_proba(X, ci_prob=0.9),
        lambda model, X: cluster_uncertainty(model, X),
        lambda model, X: model.pareto_k_,
    ],
    ids=["to_datatree", "predict_proba", "cluster_uncertainty", "pareto_k_"],
)
def test_the_check_is_made_and_warns_once_with_the_first_interval(
    flagged, two_clusters, first_interval
):
    """fit and point estimates skip the check; the first interval makes it and warns, once."""
    model = DPGaussianMixture(5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximationWarning)
        model.fit(two_clusters)
        model.predict(two_clusters)
        model.predict_proba(two_clusters)
        model.score_samples(two_clusters)
    assert model._importance is None
    with pytest.warns(ApproximationWarning) as record:
        first_interval(model, two_clusters[::10])
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller
    # seeded at fit: the same k and weights as the fixture's check, whenever it is made
    assert model.pareto_k_ == flagged.pareto_k_
    np.testing.assert_array_equal(model._importance.log_weights, flagged._importance.log_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ApproximationWarning)
        model.to_datatree(n_draws=5)
        assert model.interval_method_ == "VI"


def test_a_model_saved_before_its_check_makes_the_same_check(flagged, two_clusters, tmp_path):
    model = DPGaussianMixture(5, random_state=0).fit(two_clusters)
    model.save(tmp_path / "dp.json")
    assert model._importance is None  # saving an in-memory fit keeps the check pending
    loaded = bayesgmm.load(tmp_path / "dp.json")
    with pytest.warns(ApproximationWarning):
        assert loaded.pareto_k_ == flagged.pareto_k_


def test_pareto_k_is_deterministic_and_survives_saving(flagged, two_clusters, tmp_path):
    again, _ = _fit(two_clusters, 5)
    assert again.pareto_k_ == flagged.pareto_k_
    path = tmp_path / "dp.json"
    flagged.save(path)
    loaded = bayesgmm.load(path)
    assert loaded.pareto_k_ == flagged.pareto_k_
    assert loaded.interval_method_ == flagged.interval_method_


# ------------------------------------------------------------------ the repair
def test_resample_takes_each_draw_its_share():
    rng = np.random.default_rng(3)
    log_w = np.log(rng.dirichlet(np.full(50, 0.3)))
    picks = vd.resample(log_w, 400, np.random.default_rng(4))
    counts = np.bincount(picks, minlength=50)
    expected = 400 * np.exp(log_w)
    # systematic resampling: every count is its expectation rounded down or up
    assert np.all(counts >= np.floor(expected) - 1e-9) and np.all(counts <= np.ceil(expected))
    assert counts.sum() == 400


def test_reliable_fit_reweights_its_interval_draws(reliable, two_clusters):
    check = reliable._importance
    assert reliable.pareto_k_ <= check.good_k and check.ess < vd.POOL_SIZE
    tree = reliable.to_datatree(n_draws=2000, random_state=0)
    assert tree.attrs["interval_method"] == "VI+PSIS"
    assert tree["posterior"].attrs["interval_method"] == "VI+PSIS"
    assert tree.attrs["pareto_k"] == reliable.pareto_k_
    # every draw is one of the pool's, and the draws' mean is the weighted mean of the pool
    pool = reliable._posterior.draws(vd.POOL_SIZE, np.random.default_rng(check.seed))
    pool_weights = np.exp(pool.log_weights)
    tree_weights = tree["posterior"]["weights"].values[0]
    assert np.isin(tree_weights[:, 0], pool_weights[:, 0]).all()
    weighted = np.exp(check.log_weights) @ pool_weights
    np.testing.assert_allclose(tree_weights.mean(axis=0), weighted, atol=2e-3)
    # log_q is the reweighted approximation's: log p - log q is constant but for the
    # smoothed tail (about 9% of the pool, more of the resampled draws), where it moves
    # by a small fraction of the raw log ratios' range
    raw = (
        vd.log_likelihood_sums(pool, two_clusters - reliable._center) + pool.log_prior - pool.log_q
    )
    stats_ = tree["sample_stats"]
    gap = (stats_["log_p"] - stats_["log_q"]).values.ravel()
    assert np.mean(np.abs(gap - np.median(gap)) < 1e-6) > 0.5
    # the draws follow the weights, not q: their mean log p is the weighted mean of the
    # pool's (0.67 above its plain mean here, with sd 4.2; systematic resampling of 2000
    # draws misses the weighted mean by a few hundredths)
    log_p = raw + pool.log_q
    tree_mean = stats_["log_p"].values.mean()
    assert abs(tree_mean - np.exp(check.log_weights) @ log_p) < 0.2
    assert tree_mean - log_p.mean() > 0.4
    assert np.ptp(gap) < 0.1 * np.ptp(raw)


def test_flagged_fit_keeps_draws_from_q(flagged):
    tree = flagged.to_datatree(n_draws=50, random_state=0)
    assert tree.attrs["interval_method"] == "VI"
    assert tree.attrs["pareto_k"] > tree.attrs["good_k"]
    gap = (tree["sample_stats"]["log_p"] - tree["sample_stats"]["log_q"]).values.ravel()
    assert np.ptp(gap) > 1.0  # the raw importance ratios, not a reweighted sample


def test_start_must_match_the_model():
    X = np.random.default_rng(0).normal(size=(50, 2))
    wrong = GaussianMixtureParams(np.ones(3) / 3, np.zeros((3, 2)), np.ones(3), "spherical")
    with pytest.raises(ValueError, match="^start: expected a mixture of 2 components"):
        MarginalGaussianMixture(2, covariance_type="spherical").fit(X, start=wrong)
    with pytest.raises(TypeError, match="^start: expected None or a GaussianMixtureParams"):
        MarginalGaussianMixture(2).fit(X, start={"means": np.zeros((2, 2))})


# ------------------------------------------------------- intervals and points
class _SkewedModel:
    """A fitted model whose membership draws are piled up near 1 (mean below the median)."""

    params_ = True
    interval_method_ = "VI"

    def __init__(self, draws):
        self._draws = draws

    def membership_draws(self, X, max_draws=None, random_state=None):
        return self._draws


def test_reported_points_lie_in_their_intervals_on_skewed_draws():
    rng = np.random.default_rng(0)
    # 97% of the draws just below 1, 3% spread over (0, 0.5): the mean drops below the median
    tail = rng.uniform(size=(400, 30)) < 0.03
    top = np.where(tail, rng.uniform(0.0, 0.5, (400, 30)), 1.0 - rng.beta(1.0, 1000.0, (400, 30)))
    draws = np.stack([top, 1.0 - top], axis=2)
    mean = draws.mean(axis=0)
    _, lower, upper = credible_interval(draws, 0.9, "eti")
    # the skew is real: the mean falls outside its own equal-tailed interval somewhere
    assert np.any((mean < lower) | (mean > upper))
    result = cluster_uncertainty(_SkewedModel(draws), np.zeros((30, 2)), ci_prob=0.9)
    table = result.table
    assert np.all(
        (table["lower"] <= table["probability"]) & (table["probability"] <= table["upper"])
    )
    np.testing.assert_allclose(table["probability"], np.median(draws[:, :, 0], axis=0))
    assert np.any(table["mean"] < table["lower"])
    assert result.interval_method == "VI"
    for kind in ("eti", "hdi"):
        median, lower, upper = credible_interval(draws, 0.9, kind)
        assert np.all((lower <= median) & (median <= upper))


def test_predict_proba_intervals_contain_their_median(flagged, two_clusters):
    ds = flagged.predict_proba(two_clusters[::10], ci_prob=0.9)
    assert ds.attrs["interval_method"] == "VI"
    assert np.all((ds["lower"] <= ds["median"]) & (ds["median"] <= ds["upper"]))


# ------------------------------------------------------------------ labels
def test_results_and_plots_say_how_their_intervals_were_made(reliable, two_clusters):
    X = two_clusters[::10]
    assert reliable.predict_proba(X, ci_prob=0.9).attrs["interval_method"] == "VI+PSIS"
    result = cluster_uncertainty(reliable, X, random_state=0)
    assert result.interval_method == "VI+PSIS"
    ax = plotting.plot_membership_uncertainty(reliable, X, random_state=0)
    assert "VI+PSIS" in ax.get_ylabel()
    ax = plotting.plot_dp_weights(reliable, n_draws=100)
    assert any("VI+PSIS" in t.get_text() for t in ax.get_legend().get_texts())
    ax = plotting.plot_clusters(reliable, X, n_posterior_draws=3)
    assert "VI+PSIS draws" in ax.get_title()
    plt.close("all")


def test_point_estimates_have_no_interval_method(two_clusters):
    from bayesgmm import EMGaussianMixture

    em = EMGaussianMixture(2, random_state=0).fit(two_clusters)
    assert cluster_uncertainty(em, two_clusters).interval_method is None


# ------------------------------------------------------------------ refine (NUTS)
@pytest.mark.slow
@pytest.mark.sampling
def test_refine_samples_the_occupied_components_from_the_fit(flagged, two_clusters):
    nuts = flagged.refine(two_clusters, draws=300, tune=300, chains=2, random_state=0)
    occupied = np.flatnonzero(flagged.expected_counts_ >= 1)
    assert nuts.n_components == occupied.size == 2
    assert nuts.interval_method_ == "NUTS"
    assert nuts.to_datatree() is nuts.idata_
    assert nuts.to_datatree().attrs["interval_method"] == "NUTS"
    # the chains start at (and are relabelled to) the variational solution
    np.testing.assert_allclose(nuts.reference_.means, flagged.means_[occupied], rtol=1e-10)
    ds = nuts.predict_proba(two_clusters[::20], ci_prob=0.9)
    assert ds.attrs["interval_method"] == "NUTS"
    assert cluster_uncertainty(nuts, two_clusters[::20]).interval_method == "NUTS"


# ------------------------------------------------------------------ coverage
@pytest.mark.slow
def test_the_dp_covers_the_truth_or_flags_itself():
    """16 sets (n = 400, d = 2, K = 3): 90% intervals of weights and means of unflagged fits.

    Over the unflagged fits, the 9 scalars per set (3 weights, 6 mean coordinates)
    must be covered at no less than 0.9 - 3 SE, SE = sqrt(2 * 0.09 / m) for m
    scalars (a design effect of 2 for the correlated scalars of one set). With
    calibrated intervals the false-failure probability is about 0.2% (normal
    approximation). Fits that do not flag themselves while covering less
    (plain q covers about 0.76 here) fail it: with no flag at all, the bound
    for 144 scalars is 0.79.
    """
    tail = 0.05
    unflagged = []
    for seed in range(16):
        X, _, truth = make_mixture(400, 3, 2, random_state=seed)
        model, warned = _fit(X, 20)
        assert warned == (model.pareto_k_ > model._importance.good_k)
        if warned:
            continue
        tree = model.to_datatree(n_draws=1000, random_state=seed)
        w = tree["posterior"]["weights"].values[0]
        m = tree["posterior"]["means"].values[0]
        cost = np.linalg.norm(truth.means[:, None] - model.means_[None], axis=2)
        rows, cols = linear_sum_assignment(cost)
        order = cols[np.argsort(rows)]
        values = np.concatenate([w[:, order], m[:, order].reshape(len(m), -1)], axis=1)
        lower, upper = np.quantile(values, [tail, 1 - tail], axis=0)
        true_values = np.concatenate([truth.weights, truth.means.ravel()])
        unflagged.append((lower <= true_values) & (true_values <= upper))
    if unflagged:
        hits = np.concatenate(unflagged)
        bound = 0.9 - 3 * np.sqrt(2 * 0.09 / hits.size)
        assert hits.mean() >= bound, (hits.mean(), bound, len(unflagged))


def test_demo_report_says_how_the_dp_intervals_were_made(flagged, two_clusters):
    from bayesgmm import _demo

    uncertainty = cluster_uncertainty(flagged, two_clusters[::10], random_state=0)
    found = {
        "n": 60,
        "k": 2,
        "covariance_type": "full",
        "dp": flagged,
        "uncertainty": uncertainty,
        "figures": {"dp_weights": "dp_weights.png"},
    }
    report = _demo.report(found, fast=True, seed=0)
    assert "intervals from VI draws" in report
    assert f"is {flagged.pareto_k_:.2f}, above ArviZ's threshold" in report
    assert "`dp.refine(X)`" in report


# ------------------------------------------------------ refine's number of components
@pytest.fixture(scope="module")
def merged():
    """make_mixture(400, 3, 2, random_state=11): the DP occupies 2 components for 3 clusters."""
    X, _, truth = make_mixture(400, 3, 2, random_state=11)
    model = DPGaussianMixture(20, random_state=0).fit(X)
    assert model.effective_n_components_ == 2
    return X, truth, model


def _matched_distances(means, truth_means):
    cost = np.linalg.norm(truth_means[:, None] - means[None], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols]


def test_refine_start_splits_what_the_dp_merged(merged):
    """BIC over K_DP - 1 .. K_DP + 2 recovers the third cluster that the DP merged away."""
    X, truth, model = merged
    start = model._refine_start(X, "bic", np.random.default_rng(0))
    assert start.n_components == 3
    # every true mean has a start mean near it (the true means are 2 to 3 apart)
    assert np.all(_matched_distances(start.means, truth.means) < 0.3)
    # the DP's own components leave a true mean far from both of theirs
    nearest = np.linalg.norm(truth.means[:, None] - model.means_[None, :2], axis=2).min(axis=1)
    assert nearest.max() > 1.0
    dp_start = model._refine_start(X, "dp", np.random.default_rng(0))
    assert dp_start.n_components == 2
    np.testing.assert_allclose(dp_start.means, model.means_[:2], rtol=1e-12)
    assert model._refine_start(X, 2, np.random.default_rng(0)).n_components == 2
    assert model._refine_start(X, 4, np.random.default_rng(0)).n_components == 4


def test_refine_keeps_the_dp_start_when_bic_agrees(flagged, two_clusters):
    start = flagged._refine_start(two_clusters, "bic", np.random.default_rng(0))
    occupied = np.flatnonzero(flagged.expected_counts_ >= 1)
    np.testing.assert_allclose(start.means, flagged.means_[occupied], rtol=1e-12)


@pytest.mark.parametrize(
    ("value", "error"),
    [("aic", ValueError), (0, ValueError), (2.5, TypeError), (None, TypeError)],
)
def test_refine_rejects_a_bad_number_of_components(merged, value, error):
    X, _, model = merged
    with pytest.raises(error, match="^n_components: expected"):
        model.refine(X, n_components=value)


@pytest.mark.slow
@pytest.mark.sampling
def test_refine_samples_the_clusters_the_dp_merged(merged):
    X, truth, model = merged
    with pytest.warns(UserWarning, match=r"^refine: sampling 3 components, not the DP's 2"):
        nuts = model.refine(X, draws=100, tune=100, chains=1, random_state=0)
    assert nuts.n_components == 3
    assert np.all(_matched_distances(nuts.params_.means, truth.means) < 0.3)
