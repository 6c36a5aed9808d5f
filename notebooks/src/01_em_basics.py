# %% [markdown]
# # EM basics: soft clusters, covariance shapes and where k-means goes wrong
#
# A Gaussian mixture describes data as if every point had been drawn in two steps:
# first pick one of $K$ groups at random (group $k$ with probability $w_k$), then draw
# the point from that group's Gaussian, $\mathcal{N}(\mu_k, \Sigma_k)$. Fitting the
# mixture means recovering the weights, means and covariances; clustering means asking,
# for each point, which group it probably came from.
#
# This notebook fits mixtures by expectation-maximisation with
# `bayesgmm.EMGaussianMixture`, which has scikit-learn's `GaussianMixture` interface.
# It covers:
#
# 1. fitting and predicting on simulated blobs whose true parameters we know;
# 2. soft assignments: `predict_proba`, and drawing points by how certain they are;
# 3. the four covariance types and what their ellipses look like;
# 4. long, thin clusters, where k-means fails and a full-covariance mixture does not.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import bayesgmm
from bayesgmm import EMGaussianMixture
from bayesgmm.datasets import make_mixture, make_stretched_blobs

FAST = os.environ.get("BAYESGMM_FAST") == "1"  # the test suite runs a quicker version
SEED = 20261122
N_INIT = 1 if FAST else 3  # EM restarts where a fit is sensitive to its start
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6, 4.5), "axes.grid": False})
print("bayesgmm", bayesgmm.__version__)

# %% [markdown]
# ## 1. Blobs with known parameters
#
# `bayesgmm.datasets.make_mixture` draws points from a random mixture and returns the
# mixture itself, so we can check what EM recovers. Its `separation` controls the
# overlap: at 1.5, the closest two components touch, and a few points between them are
# genuinely ambiguous.

# %%
X, true_labels, truth = make_mixture(
    400, n_components=4, separation=1.5, weights=[0.35, 0.3, 0.2, 0.15], random_state=SEED
)
fig, ax = plt.subplots()
ax.scatter(X[:, 0], X[:, 1], c=true_labels, cmap="tab10", vmax=9, s=12)
ax.set(title="400 points from four Gaussians (colour: true component)", xlabel="$x_1$",
       ylabel="$x_2$")
ax.set_aspect("equal")
plt.show()

# %% [markdown]
# Fitting follows scikit-learn: the constructor stores the settings, `fit` estimates,
# and the learnt parameters end in an underscore. Every fitted model in bayesgmm also
# has `params_`, the same parameters as one `GaussianMixtureParams` object.

# %%
em = EMGaussianMixture(n_components=4, covariance_type="full", random_state=0).fit(X)
print("converged:", em.converged_, "after", em.n_iter_, "iterations")
print("mean log-likelihood per point:", round(em.score(X), 4))
em.params_

# %% [markdown]
# Component numbers are arbitrary: EM's component 0 need not be the simulation's
# component 0. To compare, match every fitted component to the true one with the
# closest mean, then line up the weights.

# %%
distance = np.linalg.norm(em.means_[:, None, :] - truth.means[None, :, :], axis=-1)
match = distance.argmin(axis=1)
for k in np.argsort(match):
    print(f"true component {match[k]}: weight {truth.weights[match[k]]:.2f}, "
          f"fitted {em.weights_[k]:.2f}; mean error {distance[k, match[k]]:.2f}")
print("adjusted Rand index against the truth:", round(adjusted_rand_score(true_labels,
                                                                          em.predict(X)), 3))

# %% [markdown]
# ## 2. Soft assignments
#
# `predict` returns one label per point, but the model says more than that:
# `predict_proba` gives, for every point, the probability that it came from each
# component (the *responsibilities* of the E-step). Most rows are close to one-hot;
# points between two components split their probability.

# %%
proba = em.predict_proba(X)
certainty = proba.max(axis=1)
order = np.argsort(certainty)
np.set_printoptions(precision=3, suppress=True)
print("the five least certain points:\n", proba[order[:5]])
print("share of points with top probability above 0.95:", round((certainty > 0.95).mean(), 3))

# %% [markdown]
# A picture makes the uncertain points visible: draw each point with an area
# proportional to how sure the model is of its label, and mark those below 0.8.

# %%
fig, ax = plt.subplots()
ax.scatter(X[:, 0], X[:, 1], c=em.predict(X), cmap="tab10", vmax=9, s=40 * certainty**4,
           alpha=0.8)
unsure = certainty < 0.8
ax.scatter(X[unsure, 0], X[unsure, 1], s=80, facecolors="none", edgecolors="black",
           linewidths=0.8, label=f"top probability < 0.8 ({unsure.sum()} points)")
ax.set(title="Point size: certainty of the label", xlabel="$x_1$", ylabel="$x_2$")
ax.set_aspect("equal")
ax.legend(loc="best")
plt.show()

# %% [markdown]
# ## 3. Ellipses, and the four covariance types
#
# A covariance matrix is easiest to read as an ellipse: its axes point along the
# eigenvectors, and the half-length along each is $\sqrt{\lambda}$ times the number of
# standard deviations. For a two-dimensional Gaussian, the ellipse at $r$ standard
# deviations holds a fraction $1 - e^{-r^2/2}$ of the mass: 39% at one, 86% at two and
# 99% at three.
#
# The helper below draws them from any `GaussianMixtureParams` (the plotting module
# `bayesgmm.plotting` has a ready-made `plot_clusters` that does the same and more).

# %%
from matplotlib.patches import Ellipse


def draw_ellipses(ax, params, n_std=(1, 2), color="black"):
    """Draw n_std-sigma ellipses of every component, thicker for heavier components."""
    for k, cov in enumerate(params.full_covariances()):
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(eigenvectors[1, -1], eigenvectors[0, -1]))
        for r in n_std:
            width, height = 2 * r * np.sqrt(eigenvalues[::-1])
            ax.add_patch(Ellipse(params.means[k], width, height, angle=angle, fill=False,
                                 color=color, lw=0.5 + 4 * params.weights[k], alpha=0.8))


fig, ax = plt.subplots()
ax.scatter(X[:, 0], X[:, 1], c=em.predict(X), cmap="tab10", vmax=9, s=8)
draw_ellipses(ax, em.params_)
ax.set(title="EM fit, one and two standard deviations", xlabel="$x_1$", ylabel="$x_2$")
ax.set_aspect("equal")
plt.show()

# %% [markdown]
# `covariance_type` constrains the shapes, trading flexibility for fewer parameters:
#
# | type | every component | free covariance parameters ($K$ components, $d$ features) |
# |---|---|---|
# | `full` | its own ellipse, any orientation | $K d (d+1) / 2$ |
# | `tied` | the same ellipse, shifted | $d (d+1) / 2$ |
# | `diag` | its own ellipse, axes parallel to the coordinates | $K d$ |
# | `spherical` | its own circle | $K$ |
#
# The same data under each constraint, with the Bayesian information criterion (BIC,
# lower is better) in the title. Since the simulated components are tilted ellipses of
# different sizes, `full` should win.

# %%
fig, axes = plt.subplots(2, 2, figsize=(9, 8), sharex=True, sharey=True)
for ax, kind in zip(axes.flat, ["full", "tied", "diag", "spherical"], strict=True):
    fit = EMGaussianMixture(n_components=4, covariance_type=kind, random_state=0).fit(X)
    ax.scatter(X[:, 0], X[:, 1], c=fit.predict(X), cmap="tab10", vmax=9, s=6)
    draw_ellipses(ax, fit.params_, n_std=(2,))
    ax.set_title(f"{kind}: {fit.params_.n_parameters()} parameters, BIC {fit.bic(X):.0f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Stretched clusters: where k-means fails
#
# k-means assigns every point to the nearest centre, which amounts to a mixture of
# identical circles with hard assignments. When the clusters are long and thin and lie
# side by side, the nearest centre is often in the *neighbouring* cluster.
# `make_stretched_blobs` makes exactly that: three parallel ellipses six times longer
# than they are wide.

# %%
Xs, stretched_labels = make_stretched_blobs(450, n_components=3, stretch=6.0,
                                            random_state=SEED)
kmeans = KMeans(n_clusters=3, n_init=10, random_state=0).fit(Xs)
em_full = EMGaussianMixture(n_components=3, covariance_type="full", n_init=N_INIT,
                            random_state=0).fit(Xs)
em_spherical = EMGaussianMixture(n_components=3, covariance_type="spherical", n_init=N_INIT,
                                 random_state=0).fit(Xs)

fits = [("k-means", kmeans.labels_, None), ("EM, spherical", em_spherical.predict(Xs),
        em_spherical.params_), ("EM, full", em_full.predict(Xs), em_full.params_)]
fig, axes = plt.subplots(1, 3, figsize=(12, 4.5), sharex=True, sharey=True)
for ax, (name, labels, params) in zip(axes, fits, strict=True):
    ax.scatter(Xs[:, 0], Xs[:, 1], c=labels, cmap="tab10", vmax=9, s=6)
    if params is not None:
        draw_ellipses(ax, params, n_std=(2,))
    ax.set_title(f"{name}: ARI {adjusted_rand_score(stretched_labels, labels):.2f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# The spherical mixture makes the same mistake as k-means: it can only describe round
# clusters, so it cuts the ellipses across. The full-covariance mixture learns the
# common elongation and recovers the three clusters (an adjusted Rand index of 1 is a
# perfect match, 0 is chance).
#
# Here the clusters share one shape, so `tied` would do too, with fewer parameters;
# BIC agrees:

# %%
for kind in ["full", "tied", "diag", "spherical"]:
    fit = EMGaussianMixture(n_components=3, covariance_type=kind, n_init=N_INIT,
                            random_state=0).fit(Xs)
    print(f"{kind:>9}: BIC {fit.bic(Xs):8.1f}   ARI "
          f"{adjusted_rand_score(stretched_labels, fit.predict(Xs)):.2f}")

# %% [markdown]
# ## Summary
#
# - `EMGaussianMixture` fits a mixture by maximum likelihood with scikit-learn's
#   interface; `params_` holds the result in the form all bayesgmm models share.
# - `predict_proba` says how sure the model is of each label; boundary points matter
#   and are easy to show.
# - The covariance type is a modelling choice; BIC helps choose it.
# - A mixture with full or tied covariances handles elongated clusters that defeat
#   k-means.
#
# Next: [density estimation and generating new data](02_density_and_generation.ipynb).
