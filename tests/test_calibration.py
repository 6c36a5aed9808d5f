"""Simulation-based calibration of NUTS, reduced: the slow tier's check that the posterior is right.

The machinery is ``benchmarks/calibration.py`` (truths from the model's own prior with
``loc=0, scale=1``, data simulated from them, one NUTS fit per replication, the
truth relabelled by the rule that relabelled the draws, ranks among 100 thinned
draws turned into PIT values). Here: 100 replications, diagonal covariances,
K = 2, d = 2, n = 100, one compiled model reused (a few minutes on two cores).

False alarm. If NUTS samples the exact posterior, each of the 10 scalars' PIT values
are 100 independent uniforms, and ArviZ's ``pot_c`` uniformity test rejects one at
level a with probability a; the test fails when the smallest p-value times 10 is
below 0.001 (Bonferroni): probability at most 0.001. It also fails when fewer than
80% of the 1000 truths (100 fits x 10 scalars) lie in their central 90% intervals:
if the 10 scalars of a fit always covered together (the most dependent case, 100
independent Bernoulli(0.9)), that has probability binom.cdf(79, 100, 0.9) = 0.0008.
So a calibrated sampler fails with probability below 0.002, whatever the seed; the
seeds are fixed, so the result is reproducible.

Power, measured once by breaking the fit on purpose: fitting every data set twice
over (the likelihood counted twice, every posterior sd too small by sqrt(2)) gave a
Bonferroni p-value of 0.0012 and a 90% coverage of 0.765, so the test failed (on
the coverage). Fitting with the prior's scale halved (``scale=0.5``) went unnoticed
(p = 0.21, coverage 0.88): at n = 100 the data overwhelm that prior, and SBC only
sees errors that change the posterior.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"
LEVEL = 0.001


def _calibration_module():
    spec = importlib.util.spec_from_file_location("bayesgmm_calibration", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def calibration():
    return _calibration_module()


def test_truth_is_relabelled_by_the_rule_of_the_draws(calibration):
    """A truth given in another order comes back in the reference's order."""
    reference = (
        np.array([0.3, 0.7]),
        np.array([[0.0, 0.0], [5.0, 5.0]]),
        np.stack([np.eye(2), 2.0 * np.eye(2)]),
    )
    swapped = {
        "weights": reference[0][::-1],
        "means": reference[1][::-1] + 0.1,
        "covariances": reference[2][::-1],
    }
    out = calibration.relabel_truth(swapped, reference)
    np.testing.assert_array_equal(out["weights"], reference[0])
    np.testing.assert_allclose(out["means"], reference[1] + 0.1)


@pytest.mark.slow
def test_prior_draws_follow_the_model_prior(calibration):
    """The truths are the model's prior: seeded per replication, and with its moments."""
    setting = calibration.Setting("nuts", "diag", 2, 100, 400)
    first = calibration.draw_truth(setting, 3)
    again = calibration.draw_truth(setting, 3)
    np.testing.assert_array_equal(first["means"], again["means"])
    draws = [calibration.draw_truth(setting, r) for r in range(400)]
    means = np.array([d["means"] for d in draws]).ravel()
    sds = np.sqrt(np.array([np.diagonal(d["covariances"], axis1=-2, axis2=-1) for d in draws]))
    # means ~ N(0, 2^2): 1600 draws, sd of the sample sd about 2 / sqrt(3200) = 0.035.
    assert np.std(means) == pytest.approx(2.0, abs=0.2)
    # stds ~ InverseGamma(3, 1): median 1 / (median of Gamma(3, 1)) = 0.374; the sample
    # median of 1600 draws has sd about 0.008 (the mean's is larger: heavy right tail).
    assert np.median(sds) == pytest.approx(stats.invgamma(3.0, scale=1.0).median(), abs=0.04)


@pytest.mark.slow
@pytest.mark.sampling
def test_nuts_ranks_are_uniform(calibration, tmp_path):
    setting = calibration.Setting("nuts", "diag", 2, 100, 100)
    rows = calibration.run_setting(setting, tmp_path, verbose=False)
    summary = calibration.summarize(rows)
    assert summary["replications"] == 100
    assert summary["p_bonferroni"] >= LEVEL, (
        f"SBC rejects uniformity: p = {summary['p_bonferroni']:.2g} (Bonferroni) at "
        f"{summary['worst_scalar']}; per scalar {summary['p_values']}"
    )
    # False alarm below 0.0008 (module docstring).
    assert summary["coverage90"] >= 0.8, f"90% intervals cover {summary['coverage90']:.3f}"
