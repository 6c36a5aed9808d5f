"""The sparse finite mixture: a posterior over the number of occupied components.

Fast tests check the count of occupied components from membership draws against
exact probabilities and the command line; slow tests sample the sparse mixture by
NUTS on simulated data with known K and on Old Faithful.
"""

import numpy as np
import pytest

from bayesgmm import select_n_components
from bayesgmm import selection as selection_module
from bayesgmm.datasets import load_faithful, make_mixture
from bayesgmm.selection import SPARSE_CONCENTRATION, occupied_counts


def test_occupied_counts_of_certain_memberships():
    p = np.zeros((3, 5, 4))
    p[0, :, 2] = 1.0
    p[1, :, 0] = 1.0
    p[1, 4] = [0.0, 0.0, 0.0, 1.0]
    p[2, np.arange(5), [0, 1, 2, 3, 0]] = 1.0
    assert occupied_counts(p, np.random.default_rng(0)).tolist() == [1, 2, 4]


def test_occupied_counts_match_exact_probabilities():
    """Two points, each in component 0 or 1 with probability 1/2 (component 2 empty).

    P(K+ = 2) = 1/2 exactly. With 4000 draws the frequency has sd 0.0079, so a
    tolerance of 0.04 (5 sd) fails with probability below 1e-6.
    """
    p = np.zeros((4000, 2, 3))
    p[:, :, :2] = 0.5
    counts = occupied_counts(p, np.random.default_rng(1))
    assert set(np.unique(counts)) == {1, 2}
    assert np.mean(counts == 2) == pytest.approx(0.5, abs=0.04)


def test_occupied_counts_match_enumeration():
    """Three points, three components, random probabilities: enumerate the 27 labellings.

    20000 draws give each frequency an sd below 0.0036; a tolerance of 0.02 (5.5 sd)
    fails with probability below 1e-7 per value.
    """
    import itertools

    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(3), size=3)  # (point, component)
    exact = np.zeros(4)
    for labels in itertools.product(range(3), repeat=3):
        exact[len(set(labels))] += np.prod(p[np.arange(3), labels])
    counts = occupied_counts(np.broadcast_to(p, (20000, 3, 3)), rng)
    observed = np.bincount(counts, minlength=4) / counts.size
    np.testing.assert_allclose(observed, exact, atol=0.02)


def test_sparse_is_a_method_and_a_cli_choice(monkeypatch, tmp_path, capsys):
    from bayesgmm import cli

    assert "sparse" in selection_module.METHODS and "sparse" in cli.SELECTION_METHODS
    seen = {}

    def fake_select(X, n_components, **kwargs):
        seen.update(kwargs, n_components=list(n_components))
        raise SystemExit(0)

    monkeypatch.setattr(selection_module, "select_n_components", fake_select)
    path = tmp_path / "x.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(20, 2)), delimiter=",")
    with pytest.raises(SystemExit):
        cli.main(["select", str(path), "--method", "sparse", "--max-components", "4"])
    assert seen["method"] == "sparse" and seen["n_components"] == [1, 2, 3, 4]


def test_sparse_concentration_is_below_one_over_k_max():
    """Malsiner-Walli et al. (2016): e0 well below 1 / K_max empties extra components."""
    assert SPARSE_CONCENTRATION <= 0.01


# ---------------------------------------------------------------------- NUTS
SPARSE_FIT = {"draws": 400, "tune": 600, "chains": 2}


@pytest.mark.slow
@pytest.mark.sampling
@pytest.mark.parametrize("n_components", [2, 3, 4, 5, 6])
def test_sparse_posterior_concentrates_on_the_true_number(n_components):
    X, _, _ = make_mixture(
        60 * n_components, n_components, 2, separation=3.0, random_state=n_components
    )
    result = select_n_components(
        X,
        range(1, n_components + 3),
        method="sparse",
        covariance_types=("full",),
        random_state=0,
        fit_kwargs=SPARSE_FIT,
    )
    table = result.table.set_index("n_components")
    np.testing.assert_allclose(table["probability"].sum(), 1.0, atol=1e-12)
    assert result.best_n_components == n_components
    assert table.loc[n_components, "probability"] > 0.5
    assert "dp_probability" in table.columns and "reliable" in table.columns
    assert type(result.best_model).__name__ == "MarginalGaussianMixture"


@pytest.mark.slow
@pytest.mark.sampling
def test_sparse_on_old_faithful():
    result = select_n_components(
        load_faithful(),
        range(1, 7),
        method="sparse",
        covariance_types=("full",),
        random_state=0,
        fit_kwargs=SPARSE_FIT,
    )
    table = result.table.set_index("n_components")
    # Two groups are plain in the scatter plot; full covariances need no third.
    assert result.best_n_components in (2, 3)
    assert table.loc[[2, 3], "probability"].sum() > 0.8


def test_sparse_refits_once_and_says_how_it_ended(monkeypatch):
    """A failed check triggers one refit with twice the tuning and draws (no NUTS here)."""
    calls = []

    def fake_fit_sparse(X, k_max, covariance_type, concentration, seed, rng, log_lik, kwargs):
        calls.append((kwargs["draws"], kwargs["tune"], concentration))
        counts = np.full((2, 50), 2)
        problems = ["12 divergent transition(s)"] if len(calls) == 1 else []
        return object(), counts, problems

    monkeypatch.setattr(selection_module, "_fit_sparse", fake_fit_sparse)
    X, _, _ = make_mixture(120, 2, 2, separation=4.0, random_state=0)
    result = select_n_components(
        X,
        range(1, 4),
        method="sparse",
        covariance_types=("full",),
        random_state=0,
        fit_kwargs={"draws": 100, "tune": 50},
    )
    assert calls == [(100, 50, SPARSE_CONCENTRATION), (200, 100, SPARSE_CONCENTRATION)]
    table = result.table
    assert table["reliable"].all()
    assert table.loc[0, "note"].startswith("repaired") and "12 divergent" in table.loc[0, "note"]
    assert result.best_n_components == 2
    np.testing.assert_allclose(table["probability"], [0.0, 1.0, 0.0])
