"""What a NUTS fit costs outside sampling: the EM start, and what a process builds once.

The default tier checks the start without sampling. The slow tier samples tiny
models (tens of draws, one chain): a second fit of the same shape builds nothing,
and a fit by nutpie imports neither PyMC nor PyTensor (checked in a new process).
"""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_mixture_data

from bayesgmm import _init, _nuts
from bayesgmm.em import EMGaussianMixture
from bayesgmm.marginal import MarginalGaussianMixture, SamplingWarning

ROOT = Path(__file__).resolve().parents[1]


def test_nuts_start_runs_no_hierarchical_agglomeration(monkeypatch):
    """The start is EM from k-means starts, and reaches the default EM's optimum."""
    X, _ = make_mixture_data(n=600, d=2, k=3, seed=3)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    reference = EMGaussianMixture(3, covariance_type="full", reg_covar=1e-4, random_state=0).fit(Z)

    def agglomerate(*args, **kwargs):
        raise AssertionError("the NUTS start grew a hierarchical tree")

    monkeypatch.setattr(_init, "hc_partition", agglomerate)
    start = _nuts.em_start(Z, 3, "full", np.random.default_rng(0))
    mean_log_lik = float(np.mean(start.score_samples(Z)))
    np.testing.assert_allclose(mean_log_lik, reference.score(Z), rtol=0, atol=1e-8)


@pytest.mark.slow
@pytest.mark.sampling
def test_second_fit_of_the_same_shape_builds_nothing(monkeypatch):
    """One build per shape: new data (another number of rows) reuses it; another K does not."""
    builds = []
    compile_model = _nuts._compile

    def counted(spec, sampler, Z, *args):
        builds.append((spec.n_components, sampler))
        return compile_model(spec, sampler, Z, *args)

    monkeypatch.setattr(_nuts, "_compile", counted)
    monkeypatch.setattr(_nuts, "COMPILED", _nuts.CompileCache(maxsize=8))
    fits = []
    for n, k, seed in [(120, 2, 0), (150, 2, 1), (150, 3, 2)]:
        X, _ = make_mixture_data(n=n, d=2, k=k, seed=seed)
        model = MarginalGaussianMixture(k, covariance_type="diag")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)
            model.fit(X, draws=20, tune=20, chains=1, random_state=seed, progressbar=False)
        fits.append(model)
    assert builds == [(2, "nutpie"), (3, "nutpie")]
    assert fits[1].timings_["compile"] == 0.0
    assert fits[2].timings_["compile"] > 0.0
    assert fits[1].idata_["posterior"].sizes["draw"] == 20


@pytest.mark.slow
@pytest.mark.sampling
def test_fit_by_nutpie_imports_neither_pymc_nor_pytensor():
    """A new process fits by nutpie without loading PyMC or PyTensor (seconds each)."""
    code = textwrap.dedent(
        """
        import sys, warnings
        import numpy as np
        from bayesgmm.marginal import MarginalGaussianMixture
        X = np.random.default_rng(0).normal(size=(60, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MarginalGaussianMixture(1, covariance_type="full").fit(
                X, draws=10, tune=10, chains=1, random_state=0, progressbar=False
            )
        print(sorted(m for m in ("pymc", "pytensor", "nutpie") if m in sys.modules))
        """
    )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['nutpie']"
