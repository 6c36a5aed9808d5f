"""Shared fixtures. Data come from seeded generators, never the global random state."""

import matplotlib
import numpy as np
import pytest
from hypothesis import settings

matplotlib.use("Agg")

# Property-based tests draw the same examples on every run, so a CI result is
# reproducible; `pytest --hypothesis-profile=explore` searches new examples.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile("default")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_mixture_data(n=600, d=2, k=3, *, seed=0, separation=6.0):
    """Well-separated anisotropic Gaussian blobs with known labels."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=separation, size=(k, d))
    X = np.empty((n, d))
    labels = rng.integers(0, k, size=n)
    for j in range(k):
        A = rng.normal(size=(d, d)) * 0.6 + np.eye(d)
        idx = labels == j
        X[idx] = means[j] + rng.standard_normal((idx.sum(), d)) @ A.T
    return X, labels


@pytest.fixture(scope="session")
def blobs():
    return make_mixture_data()


@pytest.fixture(params=COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


# ---------------------------------------------------------------------------
# marginal_fit: the one sampled MarginalGaussianMixture shared by every test that
# needs a fitted Bayesian marginal model (owned by the marginal-model helper;
# append-only section). Compiled and sampled once per test session.
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def marginal_fit():
    from bayesgmm.marginal import MarginalGaussianMixture

    X, _ = make_mixture_data(n=300, d=2, k=3, seed=1)
    model = MarginalGaussianMixture(n_components=3, covariance_type="full").fit(
        X, draws=300, tune=300, chains=2, random_state=1, progressbar=False
    )
    return model, X


# laplace_fit: the one MarginalGaussianMixture fitted by Laplace's method, shared by
# the tests of that method (owned by the marginal-model helper). Its compiled log
# density and gradient (a few seconds) are cached for refits of the same shape.
@pytest.fixture(scope="session")
def laplace_fit():
    from bayesgmm.marginal import MarginalGaussianMixture

    X, labels = make_mixture_data(n=3000, d=2, k=3, seed=5)
    model = MarginalGaussianMixture(n_components=3, covariance_type="full").fit(
        X, method="laplace", random_state=2
    )
    return model, X, labels


# marginal_missing_fit: the one MarginalGaussianMixture fitted by NUTS on data with
# 20% of entries missing completely at random (n=300, d=3, K=2), shared by the slow
# tests of tests/test_marginal_missing.py (owned by the marginal-model helper).
@pytest.fixture(scope="session")
def marginal_missing_fit():
    from bayesgmm.marginal import MarginalGaussianMixture

    rng = np.random.default_rng(18)
    truth = np.array([[-2.0, 0.0, 1.0], [2.0, 1.0, -1.0]])
    labels = rng.integers(0, 2, size=300)
    mixing = np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    X = truth[labels] + rng.standard_normal((300, 3)) @ mixing
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < 0.2] = np.nan
    empty = np.isnan(X_missing).all(axis=1)
    X_missing[empty, 0] = X[empty, 0]
    model = MarginalGaussianMixture(n_components=2, covariance_type="full").fit(
        X_missing, draws=500, tune=500, chains=2, random_state=3, progressbar=False
    )
    return model, X_missing, X, truth
