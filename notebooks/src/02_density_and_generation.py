# %% [markdown]
# # Density estimation and generating new data
#
# A Gaussian mixture is not only a clustering method. With enough components it can
# approximate almost any smooth density, and since it is a generative model, a fitted
# mixture can draw new points that look like the data. In this use the components have
# no meaning of their own: they are building blocks, and the question "how many
# clusters are there?" is replaced by "how many components describe the density
# well?".
#
# This notebook:
#
# 1. fits two interleaved half-moons with many components and draws the density;
# 2. chooses the number of components with AIC and BIC, and sees why they disagree;
# 3. samples new points from the fit;
# 4. does the same for images: handwritten digits, compressed by principal components,
#    modelled by a mixture and sampled to produce new digits.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from bayesgmm import EMGaussianMixture
from bayesgmm.datasets import make_moons
from bayesgmm.plotting import plot_density

FAST = os.environ.get("BAYESGMM_FAST") == "1"  # the test suite runs a quicker version
SEED = 20261122
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6, 4.5)})
if FAST:  # the tests run the code; they do not need the pictures drawn
    plt.switch_backend("agg")

# %% [markdown]
# ## 1. Two moons
#
# The two half-circles are clusters that no single Gaussian describes. A mixture with
# two components cuts them badly; one with many small components tiles them.

# %%
X, moon = make_moons(300, noise=0.07, random_state=SEED)
few = EMGaussianMixture(n_components=2, random_state=0).fit(X)
many = EMGaussianMixture(n_components=16, random_state=0).fit(X)

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True, sharey=True)
for ax, model in zip(axes, [few, many], strict=True):
    plot_density(model, X, ax=ax, levels=12)
    ax.scatter(*model.means_.T, marker="x", c="tab:red", s=30)
    ax.set_title(f"{model.n_components} components: mean log-likelihood {model.score(X):.2f}")
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# `bayesgmm.plotting.plot_density` draws contours of the fitted density over the data.
# With sixteen components it follows the moons closely (the red crosses are the
# component means). But more components always fit the training data better, so
# the training likelihood cannot tell us when to stop.
#
# ## 2. How many components: AIC and BIC
#
# Both criteria trade the fit against the number of free parameters $p$:
# $\mathrm{AIC} = -2\hat\ell + 2p$ and $\mathrm{BIC} = -2\hat\ell + p\log n$, lower is better.
# BIC's penalty grows with the sample size, so it prefers fewer components; AIC aims at
# predicting new data and accepts more.

# %%
ks = np.arange(1, 9 if FAST else 21)
n_init = 1 if FAST else 3
fits = [EMGaussianMixture(n_components=k, n_init=n_init, random_state=0).fit(X) for k in ks]
aic = np.array([f.aic(X) for f in fits])
bic = np.array([f.bic(X) for f in fits])

fig, ax = plt.subplots()
ax.plot(ks, aic, "o-", label=f"AIC (best K = {ks[aic.argmin()]})")
ax.plot(ks, bic, "s-", label=f"BIC (best K = {ks[bic.argmin()]})")
ax.set_xticks(ks[::2] if len(ks) > 12 else ks)
ax.set(xlabel="number of components K", ylabel="criterion (lower is better)",
       title="Information criteria for the moons")
ax.legend()
plt.show()

# %% [markdown]
# The two curves fall steeply for the first few components, then flatten. AIC keeps
# rewarding extra components for longer than BIC does. Neither criterion is "right":
# BIC estimates which $K$ is most probable if the data really were a finite Gaussian
# mixture (they are not), AIC which $K$ predicts new points best. For density
# estimation, AIC's choice, or held-out likelihood as in part 4, is the relevant one.
#
# ## 3. Sampling new points
#
# `sample(n, random_state=...)` draws from the fitted density: pick a component by its
# weight, then a point from its Gaussian. It returns the points and the components
# they came from.

# %%
best = fits[aic.argmin()]
new_points, new_components = best.sample(300, random_state=SEED)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True, sharey=True)
axes[0].scatter(X[:, 0], X[:, 1], s=6, c=moon, cmap="coolwarm")
axes[0].set_title("the data")
axes[1].scatter(new_points[:, 0], new_points[:, 1], s=6, c=new_components, cmap="tab20")
axes[1].set_title(f"300 new points from the {best.n_components}-component fit")
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()

# %% [markdown]
# The new points follow the two moons, coloured here by the component that produced
# them: each moon is several Gaussians glued together. They are not copies of the
# data; they are new draws from the same estimated density.
#
# ## 4. Generating handwritten digits
#
# The same idea works for images. The digits data set has 1797 greyscale images of
# handwritten digits, 8 by 8 pixels, so 64 features. It ships inside scikit-learn
# (`sklearn.datasets.load_digits` reads it from the installed package, no download),
# which is a test dependency of bayesgmm, not a runtime one: install the `test` extra to
# run this part.
#
# Sixty-four correlated dimensions are many for a full-covariance mixture, so we first
# compress them with principal component analysis (here straight from NumPy's singular
# value decomposition), keeping enough components for 95% of the variance, model the
# compressed points, and map samples back to pixels.

# %%
from sklearn.datasets import load_digits

digits = load_digits()
pixels = digits.data
print("images:", pixels.shape)

fig, axes = plt.subplots(4, 12, figsize=(9, 3.2), subplot_kw={"xticks": [], "yticks": []})
for ax, image in zip(axes.flat, pixels, strict=False):
    ax.imshow(image.reshape(8, 8), cmap="binary", interpolation="nearest")
fig.suptitle("Digits from the data set")
plt.show()

# %%
center = pixels.mean(axis=0)
_, singular_values, components = np.linalg.svd(pixels - center, full_matrices=False)
explained = np.cumsum(singular_values**2) / np.sum(singular_values**2)
n_keep = int(np.searchsorted(explained, 0.95) + 1)
basis = components[:n_keep]  # (n_keep, 64), orthonormal rows
scores = (pixels - center) @ basis.T
print(f"{n_keep} principal components keep {explained[n_keep - 1]:.1%} of the variance")

# %% [markdown]
# How many mixture components? Here we let held-out data decide: fit on a random 75%
# of the images and compare the mean log-likelihood of the other 25%. Too few
# components blur the digits together; too many memorise the training images and
# assign low density to new ones.
#
# A full covariance in 29 dimensions has 435 free parameters, so a component needs
# a few dozen images before its covariance is estimated at all. EM flags components
# that sit on fewer points than that in `degenerate_components_` (and warns; we count
# them instead of printing the warnings). They are a symptom of too many components.

# %%
import warnings

from bayesgmm.em import DegenerateComponentWarning

rng = np.random.default_rng(SEED)
is_train = rng.random(len(scores)) < 0.75
candidates = [5, 15] if FAST else [3, 5, 10, 15, 20, 30, 40]
held_out = {}
for k in candidates:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        model = EMGaussianMixture(n_components=k, covariance_type="full", reg_covar=1e-3,
                                  random_state=0).fit(scores[is_train])
    held_out[k] = model.score(scores[~is_train])
    print(f"K = {k:3d}: held-out mean log-likelihood {held_out[k]:8.2f}, "
          f"{len(model.degenerate_components_):2d} degenerate components")
best_k = max(held_out, key=held_out.get)
print("best K on held-out data:", best_k)

# %%
fig, ax = plt.subplots()
ax.plot(list(held_out), list(held_out.values()), "o-")
ax.set(xscale="log", xlabel="number of components K", ylabel="held-out mean log-likelihood",
       title="Choosing K for the digits by held-out likelihood")
plt.show()

# %% [markdown]
# Refit on all images with the chosen number of components and sample new ones. Each
# sample is a point in the compressed space; multiplying by the principal directions
# and adding the mean image turns it back into 64 pixels.

# %%
digit_model = EMGaussianMixture(n_components=best_k, covariance_type="full",
                                reg_covar=1e-3, random_state=0).fit(scores)
new_scores, _ = digit_model.sample(48, random_state=SEED)
new_pixels = new_scores @ basis + center

fig, axes = plt.subplots(4, 12, figsize=(9, 3.2), subplot_kw={"xticks": [], "yticks": []})
for ax, image in zip(axes.flat, new_pixels, strict=True):
    ax.imshow(image.reshape(8, 8).clip(0, 16), cmap="binary", interpolation="nearest")
fig.suptitle(f"New digits sampled from a {best_k}-component mixture")
plt.show()

# %% [markdown]
# The samples come out grouped by the component that produced them, and each component
# has specialised in one or two kinds of digit. Most samples are recognisable digits
# that are not in the data set: the mixture has
# learnt a density over images, and sampling it produces new ones. Some are blurry or
# ambiguous; they come from the tails of components or from components that straddle
# two digits.
#
# ## Summary
#
# - With many components a Gaussian mixture is a flexible density estimator; its
#   components are building blocks, not clusters.
# - AIC, BIC and held-out likelihood answer different questions; for density
#   estimation, predictive criteria (AIC, held-out or cross-validated likelihood) are
#   the relevant ones.
# - `sample` turns a fitted mixture into a generator of new data, also in a compressed
#   space such as principal components.
#
# Next: [the marginal Bayesian model](03_marginal_bayesian.ipynb), which adds
# uncertainty about the parameters themselves.
