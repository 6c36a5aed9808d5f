# %% [markdown]
# # The marginal Bayesian mixture: posteriors, label switching and uncertain memberships
#
# EM gives one set of weights, means and covariances. With a few hundred overlapping
# points, many other sets explain the data almost as well, and the cluster a point
# belongs to depends on which set is right. A Bayesian mixture keeps all of them: it
# puts priors on the parameters and describes what the data say about them by the
# posterior distribution.
#
# `bayesgmm.MarginalGaussianMixture` writes the mixture in PyMC with the cluster labels
# summed out of the likelihood, so the No-U-Turn sampler (NUTS) can explore the
# continuous parameters, and returns the draws as an ArviZ `DataTree`. This notebook:
#
# 1. fits it and looks at the posterior of the weights, means and covariances;
# 2. shows what label switching is, why it breaks per-component summaries, and what
#    relabelling does about it;
# 3. draws the uncertainty of the clusters as ellipses from posterior draws;
# 4. turns the posterior into membership probabilities with credible intervals.
#
# The first fit on a machine compiles the model (20 to 30 seconds on two cores; a few
# seconds in a later session, which reads numba's cache); later fits of the same shape
# in this session reuse it.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import bayesgmm
from bayesgmm import EMGaussianMixture, MarginalGaussianMixture, relabel
from bayesgmm.datasets import make_mixture
from bayesgmm.plotting import plot_clusters, plot_coclustering, plot_membership_uncertainty

FAST = os.environ.get("BAYESGMM_FAST") == "1"  # the test suite runs a quicker version
SEED = 20261122
DRAWS, TUNE, CHAINS = (200, 200, 2) if FAST else (1000, 1000, 4)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6, 4.5)})
if FAST:  # the tests run the code; they do not need the pictures drawn
    plt.switch_backend("agg")

# %% [markdown]
# ## 1. Data, a point estimate, and the posterior
#
# Three groups, 300 points; two of them touch, so some points could belong to either.

# %%
X, labels, truth = make_mixture(300, n_components=3, separation=2.0,
                                weights=[0.45, 0.35, 0.2], random_state=SEED)
em = EMGaussianMixture(n_components=3, n_init=3, random_state=0).fit(X)
ax = plot_clusters(em, X, n_std=(1, 2))
ax.set_title("EM: one estimate")
ax.set_aspect("equal")
plt.show()

# %%
model = MarginalGaussianMixture(n_components=3, covariance_type="full")
model.fit(X, draws=DRAWS, tune=TUNE, chains=CHAINS, random_state=1, progressbar=False)
print({name: round(seconds, 1) for name, seconds in model.timings_.items()}, "seconds")
model.idata_

# %% [markdown]
# `idata_` is an ArviZ `DataTree`. The `posterior` group holds the draws of `weights`,
# `means` and `covariances` (always as full matrices) with named dimensions `chain`,
# `draw`, `component` and `feature`; `log_likelihood` holds
# $\log \sum_k w_k \mathcal{N}(x_i \mid \mu_k, \Sigma_k)$ for every draw and point, which
# is what leave-one-out cross-validation uses.
#
# `summary()` gives posterior means, standard deviations, 89% equal-tailed intervals
# (ArviZ's default) and the convergence diagnostics: R-hat near 1 (the chains agree)
# and a large effective sample size (ESS).

# %%
summary = model.summary()
summary.loc[[name for name in summary.index if not name.startswith("correlations")]].round(3)

# %% [markdown]
# Pictures say more. Each weight has a posterior distribution (its spread shows how
# well 300 points pin down the share of each group), and each mean a cloud of
# plausible positions; the crosses are the EM estimates, the stars the true means.

# %%
post = model.idata_["posterior"]
weights = post["weights"].values.reshape(-1, 3)
means = post["means"].values.reshape(-1, 3, 2)
colors = plt.cm.tab10(np.arange(3))

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for k in range(3):
    axes[0].hist(weights[:, k], bins=40, color=colors[k], alpha=0.7, label=f"component {k}")
axes[0].set(xlabel="weight", ylabel="draws", title="Posterior of the weights")
axes[0].legend()
axes[1].scatter(X[:, 0], X[:, 1], s=6, c="0.75")
for k in range(3):
    axes[1].scatter(means[::4, k, 0], means[::4, k, 1], s=3, color=colors[k], alpha=0.4)
axes[1].scatter(*em.means_.T, marker="x", c="black", s=60, label="EM")
axes[1].scatter(*truth.means.T, marker="*", c="black", s=90, label="truth")
axes[1].set(title="Posterior draws of the means", xlabel="feature 0", ylabel="feature 1")
axes[1].set_aspect("equal")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The covariances are summarised by the component standard deviations and
# correlations, also stored in the posterior:

# %%
stds = post["stds"].values.reshape(-1, 3, 2)
corr = post["correlations"].values.reshape(-1, 3, 2, 2)[:, :, 0, 1]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for k in range(3):
    axes[0].hist(stds[:, k, 0], bins=40, color=colors[k], alpha=0.7)
    axes[1].hist(stds[:, k, 1], bins=40, color=colors[k], alpha=0.7)
    axes[2].hist(corr[:, k], bins=40, color=colors[k], alpha=0.7, label=f"component {k}")
axes[0].set(title="standard deviation, feature 0")
axes[1].set(title="standard deviation, feature 1")
axes[2].set(title="correlation")
axes[2].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Label switching, and what relabelling does
#
# The likelihood does not change if we swap the names of two components, and the
# priors treat all components alike, so the posterior has $3! = 6$ identical copies,
# one per naming. A sampler may start different chains in different copies. The
# draws are all correct, but "component 0" then means one cluster in chain 1 and
# another in chain 2, and per-component averages mix clusters together.
#
# bayesgmm starts every chain from the EM solution, so the chains begin in the same
# naming, and then *relabels* every draw: it finds the permutation of the draw's
# components that best matches a reference (the EM solution, then the mean of the
# relabelled draws, until nothing changes), by solving an assignment problem on the
# Kullback-Leibler divergence between Gaussian components. `permutations_` records
# what it did:

# %%
perms = model.permutations_.reshape(-1, 3)
moved = (perms != np.arange(3)).any(axis=1)
print(f"{moved.mean():.1%} of the draws needed a permutation")

# %% [markdown]
# Started from EM, few or no draws need one. Chains started elsewhere fare worse: from
# PyMC's default initial point, two chains of the textbook model land in different
# namings (the R-hat of the means was 1.83 in our measurements). We can reproduce the
# effect without sampling again: take the relabelled draws, rename the components of
# every chain but the first by a different permutation, and compute R-hat.

# %%
import arviz_stats
import xarray as xr

n_chains = post.sizes["chain"]
rng = np.random.default_rng(SEED)
renames = [np.arange(3)] + [rng.permutation(3) for _ in range(n_chains - 1)]
for c in range(1, n_chains):  # make sure every later chain is really renamed
    while (renames[c] == np.arange(3)).all():
        renames[c] = rng.permutation(3)
chain_perm = np.broadcast_to(np.array(renames)[:, None, :], (n_chains, post.sizes["draw"], 3))

w = post["weights"].values
m = post["means"].values
c = post["covariances"].values
flat = chain_perm.reshape(-1, 3)
w_sw, m_sw, c_sw = relabel.apply_permutations(flat, w.reshape(-1, 3), m.reshape(-1, 3, 2),
                                              c.reshape(-1, 3, 2, 2))


def rhat_of_means(means_flat):
    """Largest R-hat over the coordinates of the component means."""
    da = xr.DataArray(means_flat.reshape(n_chains, -1, 3, 2),
                      dims=("chain", "draw", "component", "feature"))
    return float(arviz_stats.rhat(da).max())


perm_back = relabel.relabel_draws(w_sw, m_sw, c_sw, reference=model.reference_)
w_fix, m_fix, c_fix = relabel.apply_permutations(perm_back, w_sw, m_sw, c_sw)
print(f"R-hat of the means, as sampled and relabelled: {rhat_of_means(m.reshape(-1, 3, 2)):.3f}")
print(f"after renaming the later chains:             {rhat_of_means(m_sw):.3f}")
print(f"after relabelling those again:                {rhat_of_means(m_fix):.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
for ax, (title, values) in zip(axes, [("chains in different namings", m_sw),
                                      ("relabelled", m_fix)], strict=True):
    trace = values.reshape(n_chains, -1, 3, 2)[:, :, 0, 0]
    for chain in range(n_chains):
        ax.plot(trace[chain], lw=0.6, label=f"chain {chain}")
    ax.set(title=f"'component 0', feature 0: {title}", xlabel="draw")
axes[0].set_ylabel("mean")
axes[0].legend(loc="upper right", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Renamed, the chains disagree about what "component 0" is, and R-hat flags it;
# relabelling restores one naming and R-hat returns to about 1. Quantities that do not
# depend on the naming never needed any of this: the mixture density, the pointwise
# log-likelihood (so LOO and WAIC), the posterior predictive density, the sorted
# weights, and the probability that two points share a cluster. Per-component weights,
# means, covariances and membership probabilities do need it. For instance the sorted
# weights are identical before and after renaming:

# %%
same = np.allclose(np.sort(w_sw, axis=1), np.sort(w.reshape(-1, 3), axis=1))
print("sorted weights unchanged by renaming:", same)

# %% [markdown]
# ## 3. Ellipses from posterior draws
#
# `plot_clusters` draws the posterior mean mixture as solid ellipses and, faintly, the
# ellipses of individual posterior draws. Where the faint ellipses fan out, the data
# leave the shape of that cluster uncertain.

# %%
ax = plot_clusters(model, X, n_std=(1, 2), n_posterior_draws=40)
ax.set_title("Posterior mean (solid) and 40 posterior draws (faint), 2 sd")
ax.set_aspect("equal")
plt.show()

# %% [markdown]
# ## 4. Membership probabilities with credible intervals
#
# Every posterior draw gives each point its own membership probabilities
# $p(z_i = k \mid x_i, \theta_s)$. Their posterior mean is what `predict_proba(X)`
# returns (like scikit-learn); with `ci_prob` it also returns an interval per point
# and component, as an `xarray.Dataset`:

# %%
intervals = model.predict_proba(X, ci_prob=0.94)
top = intervals["mean"].values.argmax(axis=1)
rows = np.arange(len(X))
width = (intervals["upper"].values - intervals["lower"].values)[rows, top]
for i in np.argsort(width)[::-1][:5]:
    print(f"point {i:3d}: component {top[i]}, probability "
          f"{intervals['mean'].values[i, top[i]]:.2f} "
          f"[{intervals['lower'].values[i, top[i]]:.2f}, "
          f"{intervals['upper'].values[i, top[i]]:.2f}]")
intervals

# %% [markdown]
# For most points the interval is tight and near one. For points between two clusters
# it is wide: whether such a point belongs to a cluster depends on exactly where that
# cluster's boundary is, which the data do not fix. `plot_membership_uncertainty`
# shows every point's top probability with its interval, sorted; hollow markers are
# points flagged as ambiguous (the interval reaches below one half, or overlaps the
# runner-up's).

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_membership_uncertainty(model, X, ax=axes[0])
report = bayesgmm.cluster_uncertainty(model, X, ci_prob=0.94)
ambiguous = report.table["ambiguous"].to_numpy()
axes[1].scatter(X[~ambiguous, 0], X[~ambiguous, 1], s=8, c=colors[report.table["label"]
                [~ambiguous]])
axes[1].scatter(X[ambiguous, 0], X[ambiguous, 1], s=40, facecolors="none",
                edgecolors="black", label=f"ambiguous ({ambiguous.sum()} points)")
axes[1].set(title="Where the ambiguous points are", xlabel="feature 0", ylabel="feature 1")
axes[1].set_aspect("equal")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The co-clustering matrix $P(z_i = z_j)$, the posterior probability that two points
# share a component, summarises the same uncertainty without naming any component, so
# it needs no relabelling at all. Ordered by label, clusters appear as blocks;
# intermediate values at the edges of the blocks are uncertainty about which points go
# together.

# %%
order = np.lexsort((-report.table["probability"].to_numpy(), report.table["label"].to_numpy()))
ax = plot_coclustering(report.coclustering, order=order)
ax.set_title("Posterior co-clustering probability")
plt.show()

# %% [markdown]
# ## Summary
#
# - `MarginalGaussianMixture` samples the posterior of a Gaussian mixture with the
#   labels summed out; `idata_` holds relabelled draws with named dimensions.
# - Label switching makes per-component summaries meaningless until every draw is
#   relabelled; starting from EM and relabelling by assignment on KL divergence
#   handles it, and label-invariant quantities never need it.
# - Posterior draws turn into uncertainty you can see: fans of ellipses, membership
#   intervals, ambiguous points and co-clustering probabilities.
#
# Next: [the Dirichlet-process mixture](04_dirichlet_process.ipynb), which also
# infers how many components to use.
