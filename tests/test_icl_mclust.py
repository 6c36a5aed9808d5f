"""ICL on Old Faithful against mclust's published values, under mclust's settings and ours.

mclust 6.0.0's ``summary(Mclust(faithful))`` prints, for EEE with 3 components
(``tied``), log-likelihood -1126.326, BIC -2314.316 and ICL -2357.824 (mclust's sign:
higher is better). Its EM starts from the hierarchical partition into three groups and
stops when the relative change of the log-likelihood is at most
``emControl()$tol[1] = 1e-5``, about 0.01 log-likelihood units short of the maximum
(-1126.3159); bayesgmm's default rule goes on. Short of the maximum, ICL's
classification term depends on the path EM took: it moves by about 2 between starts
at the same log-likelihood to 0.03. So mclust's ICL is reproduced from mclust's own
start and rule, and a fit run to convergence has the ICL every start reaches.
Deterministic (EM from fixed starts): no false failures.
"""

import warnings

import numpy as np
import pytest

from bayesgmm import EMGaussianMixture
from bayesgmm._em_steps import _should_stop
from bayesgmm.datasets import load_faithful

MCLUST_LOGLIK = -1126.326
MCLUST_BIC = 2314.316
MCLUST_ICL = 2357.824
#: bayesgmm's fully converged fit (tol 1e-10): any start, run to the maximum.
CONVERGED_ICL = 2358.39
#: mclust 6.0.0's start for G = 3, one label (1-3) per row of Old Faithful:
#: ``hclass(hc(faithful, modelName = "VVV", use = "SVD"), 3)`` (groups of 40, 97, 135).
MCLUST_HC_3 = (
    "12323231232132322323221231233333333223213232313232312323323323232133231233232331"
    "33323333212123233323212332323132332323212332112321232123232132333232123323333121"
    "21233323212233333213233123123232313313232312323123232333212323233333333212122332"
    "32333123232333113323332322332123"
)


def _mclust_like(**kwargs):
    return EMGaussianMixture(
        3,
        covariance_type="tied",
        init_params="hc",
        stopping="relative",
        tol=1e-5,
        reg_covar=0.0,
        **kwargs,
    )


def test_relative_rule_is_mclusts():
    """``stopping="relative"``: stop when |change of L| <= tol (1 + |L|), the rate ignored."""
    n, lower_bound = 1000, -5.0  # |L| = 5000: the threshold at tol 1e-5 is 0.05001
    assert _should_stop("relative", 1e-5, n, lower_bound, 0.05 / n, (0.05 / n) / 0.999)
    assert not _should_stop("relative", 1e-5, n, lower_bound, 0.0501 / n, 1.0)
    assert _should_stop("relative", 1e-5, n, lower_bound, -0.01 / n, 1.0)


def test_icl_is_mclusts_from_mclusts_start_and_rule():
    """From mclust's partition, under its rule, EM ends where mclust's does: ICL 2357.824."""
    X = np.asarray(load_faithful(), dtype=float)
    start = np.array([int(c) - 1 for c in MCLUST_HC_3])
    model = _mclust_like()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model._fit(X, partitions=[(None, start)])
    n = X.shape[0]
    assert model.converged_
    assert model.score(X) * n == pytest.approx(MCLUST_LOGLIK, abs=5e-4)
    assert model.bic(X) == pytest.approx(MCLUST_BIC, abs=5e-4)
    assert model.icl(X) == pytest.approx(MCLUST_ICL, abs=0.05)
    # The parameters returned are those the last E-step scored, as mclust's me().
    assert model.lower_bound_ * n == pytest.approx(model.score(X) * n, abs=1e-9)


def test_icl_on_old_faithful_converged_and_at_the_defaults():
    """Run to convergence the ICL is 2358.39 from any start; the defaults stop within 0.5."""
    X = np.asarray(load_faithful(), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own_start = _mclust_like(random_state=0).fit(X)
        converged = EMGaussianMixture(
            3, covariance_type="tied", reg_covar=0.0, tol=1e-10, max_iter=5000, random_state=0
        ).fit(X)
    # bayesgmm's own hierarchical tree is not mclust's (groups of 92, 93, 87): under
    # mclust's rule it stops as short (log-likelihood within 0.05) on another path.
    assert abs(own_start.score(X) * X.shape[0] - MCLUST_LOGLIK) < 0.05
    assert abs(own_start.icl(X) - MCLUST_ICL) > 1.0
    assert converged.icl(X) == pytest.approx(CONVERGED_ICL, abs=0.01)
    default = EMGaussianMixture(3, covariance_type="tied", random_state=0).fit(X)
    assert default.icl(X) == pytest.approx(CONVERGED_ICL, abs=0.5)
