"""LOO selection of K: checked fits, unscorable fits, Monte Carlo error, the choice rule.

The fast tests drive the selection with synthetic log-likelihoods (no sampling);
the slow test runs NUTS on Old Faithful for three seeds.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesgmm import select_n_components
from bayesgmm import selection as selection_module
from bayesgmm.comparison import loo_mcse, psis_loo, repeated_draws
from bayesgmm.datasets import load_faithful
from bayesgmm.selection import indistinguishable_rule


def _tree(log_lik: np.ndarray, d: int = 2, k: int = 1, sd: float = 1.0) -> xr.DataTree:
    """A fit's DataTree: posterior (with covariances) and pointwise log-likelihood."""
    chains, draws, _ = log_lik.shape
    dims = ("chain", "draw")
    covariances = np.broadcast_to(sd**2 * np.eye(d), (chains, draws, k, d, d)).copy()
    # A posterior variable that moves exactly when the log-likelihood does.
    mu = log_lik[:, :, 0]
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {
                    "mu": (dims, mu),
                    "covariances": (dims + ("component", "feature", "feature_bis"), covariances),
                }
            ),
            "log_likelihood": xr.Dataset({"obs": (dims + ("obs_id",), log_lik)}),
        }
    )


def _stuck_log_lik(rng: np.random.Generator) -> np.ndarray:
    """Four chains; the last one never moves and gives every point its lowest likelihood."""
    log_lik = rng.normal(-1.0, 0.1, size=(4, 100, 30))
    log_lik[3] = -3.0
    return log_lik


class _FakeFit:
    """What _fit_nuts_checked returns: a model with idata_, and its problems."""

    def __init__(self, tree: xr.DataTree) -> None:
        self.idata_ = tree


# ---------------------------------------------------------------- degenerate columns
def test_a_stuck_chain_is_reported_not_raised():
    rng = np.random.default_rng(0)
    tree = _tree(_stuck_log_lik(rng))
    import arviz_stats

    with pytest.raises(ValueError, match="All tail values are the same"):
        arviz_stats.loo(tree, pointwise=True, var_name="obs")
    result, reason = psis_loo(tree)
    assert result is None
    assert "PSIS-LOO impossible" in reason and "chain(s) [3]" in reason
    np.testing.assert_allclose(repeated_draws(tree["log_likelihood"]["obs"]), [0, 0, 0, 1])


def test_loo_mcse_matches_the_spread_over_repeated_draws():
    """Oracle: the sd of elpd over independent posterior samples of the same model.

    Draws are independent (r_eff = 1) from ll_si = -1 + 0.5 e_s + 0.3 u_si, so that
    the points share the error of every draw (the sum of independent pointwise
    variances gives a quarter of the true error here). 80 replicates estimate the sd
    with a relative error of about 8 %, so a tolerance of 35 % fails with
    probability about 1e-5 if the formula is right.
    """
    import arviz_stats

    rng = np.random.default_rng(1)
    elpds, mcses = [], []
    for _ in range(80):
        shared = rng.normal(size=(1, 300, 1))
        log_lik = -1.0 + 0.5 * shared + 0.3 * rng.normal(size=(1, 300, 25))
        tree = _tree(log_lik)
        result = arviz_stats.loo(tree, pointwise=True, var_name="obs", reff=1.0)
        elpds.append(result.elpd)
        mcses.append(loo_mcse(result, tree["log_likelihood"]["obs"]))
    spread = np.std(elpds, ddof=1)
    assert np.mean(mcses) == pytest.approx(spread, rel=0.35)


def test_loo_mcse_grows_with_autocorrelation():
    """The same draws, each repeated 4 times in a row: a quarter of the information."""
    import arviz_stats

    rng = np.random.default_rng(2)
    log_lik = -1.0 + 0.4 * rng.normal(size=(2, 250, 20))
    sticky = np.repeat(log_lik[:, ::4], 4, axis=1)[:, :248]
    base, slow = (_tree(a) for a in (log_lik[:, :248], sticky))
    values = []
    for tree in (base, slow):
        result = arviz_stats.loo(tree, pointwise=True, var_name="obs")
        values.append(loo_mcse(result, tree["log_likelihood"]["obs"]))
    assert values[1] > 1.5 * values[0]


# ------------------------------------------------------------------ the choice rule
def _table(diff, dse, mcse=None):
    table = pd.DataFrame(
        {
            "n_components": [1, 2, 3, 4, 5],
            "n_parameters": [5, 11, 17, 23, 29],
            "elpd_diff": diff,
            "dse": dse,
        }
    )
    if mcse is not None:
        table["mcse_diff"] = mcse
    return table


def test_rule_chooses_the_simplest_model_the_data_cannot_tell_from_the_best():
    """Within max(2 dse, 4) of the best: K=2 (-14 against 2 * 5) is out, K=3 to 5 in."""
    table = _table([-150.0, -14.0, -3.0, 0.0, -1.0], [15.0, 5.0, 1.5, 0.0, 2.0])
    best, same, undecided = indistinguishable_rule(table)
    assert same.tolist() == [False, False, True, True, True]
    assert best == 2 and not undecided.any()
    # Within two standard errors (-9 against 2 * 5): the data cannot tell K=2 apart.
    table.loc[1, "elpd_diff"] = -9.0
    best, same, _ = indistinguishable_rule(table)
    assert best == 1 and same[1]


def test_rule_leaves_out_rows_without_a_difference():
    """An unreliable fit (NaN difference) is never chosen, however simple."""
    table = _table([np.nan, -2.0, 0.0, np.nan, -1.0], [np.nan, 2.0, 0.0, np.nan, 1.0])
    best, same, _ = indistinguishable_rule(table)
    assert same.tolist() == [False, True, True, False, True]
    assert best == 1
    with pytest.raises(ValueError, match="^table:"):
        indistinguishable_rule(_table([np.nan] * 5, [np.nan] * 5))


def test_rule_flags_a_decision_within_monte_carlo_error_and_keeps_the_simpler_model():
    # K=2: margin -13 + 2 * 5 = -3; with an MCSE of the difference of 2 (noise 4) undecided.
    table = _table([-150.0, -13.0, -3.0, 0.0, -1.0], [15.0, 5.0, 1.5, 0.0, 2.0])
    table["mcse_diff"] = [0.1, 2.0, 0.2, 0.0, 0.3]
    best, same, undecided = indistinguishable_rule(table)
    assert undecided.tolist() == [False, True, False, False, False]
    assert best == 1 and same[1]
    # With a precise estimate of the same difference it is decided, and K=2 is out.
    table["mcse_diff"] = [0.1, 1.0, 0.2, 0.0, 0.3]
    best, same, undecided = indistinguishable_rule(table)
    assert not undecided.any() and best == 2


# ----------------------------------------------------- the selection, without NUTS
def _synthetic_fits(rng, n=60):
    """Log-likelihoods of K=1..3 with elpd per point -2.0, -1.5 and -1.49."""
    levels = {1: -2.0, 2: -1.5, 3: -1.49}
    point = rng.normal(0.0, 0.3, size=n)  # shared by the models: paired differences
    return {k: level + point + 0.05 * rng.normal(size=(4, 200, n)) for k, level in levels.items()}


def test_selection_reports_unscorable_and_unreliable_fits_and_repairs(monkeypatch):
    rng = np.random.default_rng(3)
    log_liks = _synthetic_fits(rng)
    calls = []

    def fake_fit(X, resolution, k, covariance_type, seed, kwargs):
        calls.append((k, kwargs.get("draws"), kwargs.get("tune")))
        attempt = sum(1 for c in calls if c[0] == k)
        if k == 3:  # a stuck chain every time: cannot be scored
            return _FakeFit(_tree(_stuck_log_lik(rng))), []
        if k == 2 and attempt == 1:  # fails its first check, passes after the repair
            return _FakeFit(_tree(log_liks[k])), ["max R-hat 1.200 > 1.01"]
        return _FakeFit(_tree(log_liks[k])), []

    monkeypatch.setattr(selection_module, "_fit_nuts_checked", fake_fit)
    X = rng.normal(size=(60, 2))
    result = select_n_components(
        X,
        [1, 2, 3],
        method="loo",
        covariance_types=("full",),
        random_state=0,
        fit_kwargs={"draws": 200, "tune": 100},
    )
    table = result.table
    assert table["eligible"].tolist() == [True, True, False]
    assert table.loc[2, "note"].startswith("not scored: PSIS-LOO impossible")
    assert "repaired" in table.loc[1, "note"] and "R-hat" in table.loc[1, "note"]
    assert np.isnan(table.loc[2, "elpd_diff"]) and not table.loc[2, "indistinguishable"]
    # The repair doubled the tuning and the draws; K=3 was tried twice too.
    assert (2, 400, 200) in calls and [c[0] for c in calls].count(3) == 2
    assert result.best_n_components == 2
    for column in ("weight", "weight_pseudo_bma_plus"):
        np.testing.assert_allclose(table[column].sum(), 1.0, atol=1e-6)


def test_selection_marks_a_fit_that_fails_twice_unreliable(monkeypatch):
    rng = np.random.default_rng(4)
    log_liks = _synthetic_fits(rng)

    def fake_fit(X, resolution, k, covariance_type, seed, kwargs):
        problems = ["chain(s) [1] sit in a different mode from the others"] if k == 3 else []
        return _FakeFit(_tree(log_liks[k])), problems

    monkeypatch.setattr(selection_module, "_fit_nuts_checked", fake_fit)
    result = select_n_components(
        rng.normal(size=(60, 2)),
        [1, 2, 3],
        method="loo",
        covariance_types=("full",),
        random_state=0,
        fit_kwargs={"draws": 200},
    )
    table = result.table
    assert not table.loc[2, "eligible"]
    assert table.loc[2, "note"].count("different mode") == 2  # first try, then the repair
    assert table.loc[2, "note"].startswith("unreliable")
    assert np.isfinite(table.loc[2, "elpd"])  # scored, shown, not ranked
    assert result.best_n_components == 2


def test_collapsed_component_is_detected():
    """A component narrower than half the data's resolution sits on tied values."""
    X = np.array([[1.0, 0.0], [1.0, 0.5], [2.0, 1.0], [3.0, 1.5]])
    resolution = selection_module._resolution(X)
    np.testing.assert_allclose(resolution, [1.0, 0.5])
    log_lik = np.random.default_rng(5).normal(size=(2, 50, 4))
    assert (
        selection_module._collapsed_components(_FakeFit(_tree(log_lik, sd=0.6)), resolution) == ""
    )
    tree = _tree(log_lik, sd=0.6)
    covariances = tree["posterior"]["covariances"].values.copy()
    covariances[1, :, 0, 0, 0] = 1e-8  # chain 1: feature 0 collapsed
    tree["posterior"] = (
        tree["posterior"]
        .to_dataset()
        .assign(covariances=(tree["posterior"]["covariances"].dims, covariances))
    )
    assert "chain(s) [1]" in selection_module._collapsed_components(_FakeFit(tree), resolution)


# ---------------------------------------------------------------- Old Faithful, NUTS
#: Sampler settings of the slow Old Faithful test.
FAITHFUL_FIT = {"draws": 500, "tune": 500, "chains": 4}


@pytest.mark.slow
@pytest.mark.sampling
def test_loo_choice_on_old_faithful_does_not_depend_on_the_seed():
    """The same K for random_state 0, 1 and 2, and every fit behind it checked.

    False failures: not measured beyond the runs made while writing it (these three
    seeds twice, and the same settings once more with K up to 5: K = 2 every time,
    with K = 3 and 4 failing their checks every time). K = 2 is chosen whenever its
    own fit passes (it did in all 7 runs) and K = 1 is out (elpd 150 lower); if a
    K = 3 or 4 fit passed, K = 2 would stay within two standard errors of it by
    margins of about 3 and 1.6 elpd against a Monte Carlo error of the difference
    near 0.5. A rough bound is therefore a few per cent, from that last margin;
    about 15 minutes on two busy cores.
    """
    X = load_faithful()
    choices = []
    for seed in (0, 1, 2):
        result = select_n_components(
            X,
            range(1, 5),
            method="loo",
            covariance_types=("full",),
            random_state=seed,
            fit_kwargs=FAITHFUL_FIT,
        )
        table = result.table
        chosen = table.loc[table["n_components"] == result.best_n_components].iloc[0]
        assert chosen["eligible"] and chosen["indistinguishable"]
        # No fit is ranked without passing its checks, and each failure says why.
        failed = table["note"].str.contains("unreliable|not scored")
        assert (table["eligible"] == ~failed).all()
        assert table.loc[~table["eligible"], "elpd_diff"].isna().all()
        choices.append(result.best_n_components)
    assert len(set(choices)) == 1, choices
