# %% [markdown]
# # The Dirichlet-process mixture: letting the data choose how many components
#
# A finite mixture needs its number of components $K$ up front. A Dirichlet-process
# (DP) mixture does not: its prior allows infinitely many components, of which the data
# switch on as many as they need. `bayesgmm.DPGaussianMixture` fits a truncated version
# of it by coordinate-ascent variational inference (CAVI), deterministic and fast.
#
# This notebook:
#
# 1. shows what the stick-breaking prior says about the weights;
# 2. fits a DP mixture and reads off how many components it uses;
# 3. looks at the posterior of the number of *occupied* components;
# 4. checks how good the variational approximation is, with the Pareto $\hat k$
#    diagnostic, and repairs it where it is not good enough;
# 5. compares it with scikit-learn's `BayesianGaussianMixture`;
# 6. shows that the posterior number of clusters does not settle on the truth as the
#    data grow, which is a property of the DP prior itself (Miller & Harrison, 2013).

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from arviz_stats import loo_approximate_posterior

from bayesgmm import DPGaussianMixture, EMGaussianMixture
from bayesgmm.datasets import make_mixture
from bayesgmm.plotting import plot_clusters, plot_dp_weights

FAST = os.environ.get("BAYESGMM_FAST") == "1"  # the test suite runs a quicker version
SEED = 20261122
N_DRAWS = 200 if FAST else 1000  # draws from the variational posterior
N_NUTS, N_CHAINS = (200, 2) if FAST else (1000, 4)  # NUTS draws per chain, chains
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6, 4.5)})
if FAST:  # the tests run the code; they do not need the pictures drawn
    plt.switch_backend("agg")

# %% [markdown]
# ## 1. Stick-breaking
#
# The DP prior on the weights can be simulated by breaking a stick of length one:
# break off a fraction $v_1 \sim \mathrm{Beta}(1, \alpha)$ as the first weight, then the
# same fraction $v_2$ of what is left as the second, and so on:
# $w_k = v_k \prod_{j<k}(1 - v_j)$. The concentration $\alpha$ sets how many pieces
# carry most of the stick. A few draws for three values:

# %%
rng = np.random.default_rng(SEED)


def stick_breaking(alpha, n_pieces, rng):
    """One draw of the first n_pieces stick-breaking weights."""
    v = rng.beta(1.0, alpha, size=n_pieces)
    return v * np.concatenate([[1.0], np.cumprod(1.0 - v)[:-1]])


fig, axes = plt.subplots(3, 4, figsize=(11, 6), sharex=True, sharey=True)
for row, alpha in zip(axes, [0.5, 2.0, 10.0], strict=True):
    for ax in row:
        ax.bar(np.arange(20), stick_breaking(alpha, 20, rng), color="tab:blue")
    row[0].set_ylabel(f"alpha = {alpha}")
for ax in axes[-1]:
    ax.set_xlabel("component")
fig.suptitle("Weights drawn from the stick-breaking prior")
fig.tight_layout()
plt.show()

# %% [markdown]
# With $\alpha = 0.5$ one or two pieces take nearly everything; with $\alpha = 10$ the
# mass spreads over many. A priori the expected number of clusters among $n$ points
# grows like $\alpha \log n$. bayesgmm puts a Gamma(1, 1) prior on $\alpha$ and learns it,
# so the data also decide how concentrated the weights should be.
#
# ## 2. Fitting a DP mixture
#
# Four overlapping Gaussians, 1000 points. The truncation (`truncation=20`) is an upper
# bound on the number of components, not a guess.

# %%
X, labels, truth = make_mixture(1000, n_components=4, separation=1.5, random_state=SEED)
X_new, _ = truth.sample(2000, np.random.default_rng(SEED + 1))  # held out, same mixture

start = time.perf_counter()
dp = DPGaussianMixture(truncation=20, random_state=0).fit(X)
dp_seconds = time.perf_counter() - start
print(f"fitted in {dp_seconds:.2f} s, {dp.n_iter_} iterations, converged: {dp.converged_}")
print("components used (expected count of at least one point):", dp.effective_n_components_)
print("merge moves accepted:", dp.n_merges_)
print("posterior mean of alpha:", round(dp.concentration_, 3))

# %% [markdown]
# The components come sorted by weight. `plot_dp_weights` shows the posterior mean
# weights with 94% intervals from the variational posterior; the dashed line is
# $1/n$, the weight of a single point.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_dp_weights(dp, ax=axes[0])
axes[0].set_yscale("log")
axes[0].set_title("DP weights (log scale)")
plot_clusters(dp, X, ax=axes[1], n_std=(1, 2), n_posterior_draws=20)
axes[1].set_title("Components in use, with draws from the posterior")
fig.tight_layout()
plt.show()

# %% [markdown]
# A few components carry the data; the rest have fallen back to their prior, with
# weights many orders of magnitude below one point (the dashed line). With four
# overlapping groups, the fit may also merge the two closest into one wider component:
# compare the ellipses with the data, and the count printed above with the truth
# (four). The faint ellipses on the right are draws from the variational posterior:
# it is narrow, because 1000 points pin the parameters down well (and because a
# mean-field approximation is narrower than the true posterior, see section 4).
#
# CAVI increases the evidence lower bound (ELBO) at every step; `elbo_trace_` records
# it. Most of the climb happens in the first few iterations, while merge moves join
# the components that the k-means start put on the same cluster (`n_merges_` above
# counts them).

# %%
fig, ax = plt.subplots()
ax.plot(np.arange(1, len(dp.elbo_trace_) + 1), dp.elbo_trace_)
ax.set(xlabel="iteration", ylabel="ELBO", title="The ELBO never decreases")
ax.set_xscale("log")
plt.show()

# %% [markdown]
# ## 3. How many clusters? The posterior of occupied components
#
# "Components with appreciable weight" is a summary of the weights. A more direct
# question: in a draw of the parameters and of every point's label, how many
# components hold at least one point? `n_occupied_distribution` answers it by drawing
# parameters from the variational posterior and labels from $p(z_i \mid x_i, \theta)$.

# %%
occupied = dp.n_occupied_distribution(n_draws=N_DRAWS, random_state=0)
print(occupied.round(3))

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar(occupied.index, occupied.values, color="tab:blue")
ax.axvline(truth.n_components, color="black", linestyle="--", label="true number")
ax.set(xlabel="occupied components", ylabel="posterior probability",
       xticks=occupied.index)
ax.legend()
plt.show()

# %% [markdown]
# Most of the mass sits on one number, but not all: in some draws a stray point or two
# occupies one more component. Section 6 shows that this extra mass does not go away
# with more data.
#
# ## 4. How good is the approximation? Pareto $\hat k$, and the repair
#
# Variational inference replaces the posterior $p(\theta \mid X)$ by the closest
# factorised distribution $q(\theta)$, and says nothing by itself about how close that
# is. Yao et al. (2018) proposed a check: draw $\theta_s \sim q$, compute the
# importance ratios $p(\theta_s, X) / q(\theta_s)$, and fit a generalised Pareto
# distribution to their largest values (Pareto smoothed importance sampling, PSIS). Its
# shape $\hat k$ measures how heavy the tail of the ratios is. Below ArviZ's threshold
# $\min(1 - 1/\log_{10} S, 0.7)$ for $S$ draws (0.67 for 1000) the smoothed ratios turn
# the draws of $q$ into a sample of the posterior; above it, $q$ misses parts of the
# posterior badly enough that no reweighting of its draws will fix it.
#
# `fit` runs this check on 1000 draws of $q$ and stores $\hat k$ as `pareto_k_`. When
# $\hat k$ is below the threshold, every interval the model reports is computed from the
# reweighted draws (`interval_method_ == "VI+PSIS"`); above it, `fit` issues an
# `ApproximationWarning` (the fits of section 6 print it), and the intervals are those
# of $q$ itself (`"VI"`). Every DataTree and interval says which.

# %%
tree = dp.to_datatree(n_draws=N_DRAWS, random_state=0)
print(f"pareto_k_ = {dp.pareto_k_:.2f}; ArviZ's threshold for 1000 draws: "
      f"{tree.attrs['good_k']:.2f}")
print("intervals made from:", dp.interval_method_, "| DataTree says:",
      tree.attrs["interval_method"])

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # ArviZ warns about every high k
    loo_dp = loo_approximate_posterior(tree, tree["sample_stats"]["log_p"],
                                       tree["sample_stats"]["log_q"], pointwise=True)
k_points = loo_dp.pareto_k.values
print(f"LOO with the approximation correction: elpd {loo_dp.elpd:.1f} (SE {loo_dp.se:.1f}); "
      f"{(k_points > loo_dp.good_k).mean():.0%} of points have k above {loo_dp.good_k:.2f}")

# %% [markdown]
# Here $\hat k$ is just below the threshold: the fit did not warn, and its intervals come
# from the reweighted draws. But a $\hat k$ this close to the threshold leaves few
# effective draws, and reweighting cannot put draws where $q$ has none. Mean-field VI
# for mixtures is too narrow: its factorised $q$ cannot represent the correlations
# between the weights, the concentration and the component parameters, and it leaves
# the spare components at their prior where the exact posterior draws them towards the
# data. The point estimates (the weights, means and covariances in `params_`) are still
# good, as the held-out comparison below shows; the *widths* of the intervals, and the
# LOO estimate built from the draws, are the question (to compare models, use exact
# cross-validation, [notebook 5](05_compare_and_choose_k.ipynb)).
#
# `refine(X)` answers it: it samples, by NUTS, the finite mixture of the components the
# DP occupies, every chain started from the variational solution, and returns a fitted
# `MarginalGaussianMixture` with the same interface (`predict_proba(X, ci_prob=...)`,
# `to_datatree()`, `cluster_uncertainty`, the plots), whose intervals say `"NUTS"`. It is
# the repair where $\hat k$ is above the threshold, and the check where it is close.

# %%
nuts = dp.refine(X, draws=N_NUTS, tune=N_NUTS, chains=N_CHAINS, random_state=0)
print(f"refined: {nuts.n_components} components, intervals from {nuts.interval_method_}")

occupied = np.flatnonzero(dp.expected_counts_ >= 1)  # refine's components, in this order
vi_means = tree["posterior"]["means"].values[0][:, occupied]
nuts_means = nuts.to_datatree()["posterior"]["means"].stack(
    sample=("chain", "draw")).transpose("sample", ...).values
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for j, ax in enumerate(axes):
    for offset, draws, name in [(-0.15, vi_means, dp.interval_method_),
                                (0.15, nuts_means, nuts.interval_method_)]:
        lower, median, upper = np.quantile(draws[:, :, j], [0.05, 0.5, 0.95], axis=0)
        position = np.arange(occupied.size) + offset
        ax.errorbar(position, median, yerr=[median - lower, upper - median], fmt="o",
                    capsize=3, label=f"{name}: median and 90% interval")
    ax.set(xlabel="component", ylabel=f"mean of feature {j}", xticks=np.arange(occupied.size))
axes[0].legend(fontsize="small")
fig.suptitle("90% intervals of the component means: variational against NUTS")
fig.tight_layout()
plt.show()
widths = [np.subtract(*np.quantile(d, [0.95, 0.05], axis=0)) for d in (vi_means, nuts_means)]
print("width of the 90% intervals of the means, VI / NUTS:",
      np.round(widths[0] / widths[1], 2).ravel())

# %% [markdown]
# Even reweighted, the variational intervals of most means are narrower than NUTS's (the
# ratios printed above), so they claim more certainty about where the components sit
# than the data give; for the third component NUTS also puts the median elsewhere. A
# $\hat k$ just below the threshold is no guarantee. `benchmarks/dp_coverage.py`
# measures the cost on 16 simulated data sets with a known truth (see the user guide's
# page on the DP): with truncation 20 every fit flags itself (median $\hat k$ 1.07), the
# plain variational 90% intervals of the weights and means cover the truth 76% of the
# time, and the refined ones 91% where the DP found the right number of components.
#
# ## 5. Against scikit-learn's `BayesianGaussianMixture`
#
# scikit-learn fits the same kind of model (a truncated DP with conjugate priors) by
# CAVI too, started from k-means with all components in use, and without merge moves.
# Same data, same truncation; we measure wall time, the number of components with
# weight above 1%, agreement with the true labels (adjusted Rand index), and the mean
# log density of 2000 fresh points from the true mixture. EM with the true $K$ is the
# reference.

# %%
from sklearn.mixture import BayesianGaussianMixture

sk_max_iter = 10 if FAST else 1000
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # a ConvergenceWarning when max_iter is capped
    sk = BayesianGaussianMixture(n_components=20, weight_concentration_prior_type=
                                 "dirichlet_process", max_iter=sk_max_iter,
                                 random_state=0).fit(X)
sk_seconds = time.perf_counter() - start
em = EMGaussianMixture(n_components=4, random_state=0).fit(X)

rows = {
    "bayesgmm DP (CAVI + merges)": (dp_seconds, dp.n_iter_, True, dp.weights_, dp),
    "scikit-learn BayesianGaussianMixture": (sk_seconds, sk.n_iter_, sk.converged_,
                                             sk.weights_, sk),
    "EM with the true K (reference)": (np.nan, em.n_iter_, em.converged_, em.weights_, em),
}
table = pd.DataFrame.from_dict(
    {name: {"seconds": secs, "iterations": iters, "converged": conv,
            "components above 1%": int((w > 0.01).sum()),
            "ARI": adjusted_rand_score(labels, model.predict(X)),
            "held-out mean log density": model.score(X_new)}
     for name, (secs, iters, conv, w, model) in rows.items()},
    orient="index",
)
print(f"held-out mean log density of the true mixture: {truth.score_samples(X_new).mean():.3f}")
table.round(3)

# %% [markdown]
# Read the rows against the reference: the number of components used, the agreement
# with the true labels, and the held-out density, which for all three should be close
# to the true mixture's own (printed above the table). A fit that merges two of the
# overlapping groups loses on the adjusted Rand index much more than on held-out
# density, because one wider Gaussian describes two overlapping ones nearly as well.
# The large difference is time: without merge moves, redundant components empty out
# only slowly, so scikit-learn needs many more iterations to converge.
#
# ## 6. The number of clusters does not converge
#
# Miller & Harrison (2013) proved that when data come from a finite mixture, the DP
# mixture's posterior of the number of clusters does *not* concentrate on the true
# number as $n$ grows: it keeps a non-vanishing probability of extra, tiny clusters.
# The DP is a good density estimator, but not a consistent estimator of $K$.
#
# A small experiment: three well-separated clusters, increasing $n$, and the
# probability that more than three components are occupied.

# %%
_, _, three = make_mixture(10, n_components=3, separation=3.0, random_state=7)
sizes = [100, 400] if FAST else [100, 400, 1600, 6400, 25600]
extra = {}
for n in sizes:
    Xn, _ = three.sample(n, np.random.default_rng(n))
    fit = DPGaussianMixture(truncation=20, random_state=0).fit(Xn)
    distribution = fit.n_occupied_distribution(n_draws=N_DRAWS, random_state=0)
    extra[n] = distribution[distribution.index > 3].sum()
    print(f"n = {n:5d}: P(more than 3 occupied) = {extra[n]:.3f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(list(extra), list(extra.values()), "o-")
ax.set(xscale="log", ylim=(0, max(0.2, 1.2 * max(extra.values()))),
       xlabel="number of points n", ylabel="P(more than 3 clusters)",
       title="Extra clusters do not go away")
plt.show()

# %% [markdown]
# The probability of extra clusters stays at several percent (4% to 9% here) from 100 to
# 25,600 points instead of decaying towards zero (with 1000 posterior draws, each estimate is
# uncertain by about one percentage point). (This is the variational posterior, but the
# theorem is about the exact one.) When the number of clusters is itself the question,
# compare finite mixtures with different $K$ by cross-validation
# ([notebook 5](05_compare_and_choose_k.ipynb)), or use a prior on $K$ directly (a
# mixture of finite mixtures).
#
# ## Summary
#
# - `DPGaussianMixture(truncation=T)` fits a DP mixture in about the time of a few EM
#   runs and switches off the components it does not need.
# - `n_occupied_distribution` gives the posterior of the number of occupied components.
# - `pareto_k_`, the Pareto $\hat k$ of $p/q$, says whether the variational posterior can
#   be trusted beyond its point estimate; below ArviZ's threshold the intervals are
#   reweighted by PSIS, above it the fit warns, and for mixtures it usually is above.
# - `refine(X)` samples the occupied components by NUTS from the variational fit: the
#   route to intervals that can be trusted, with the same interface.
# - The DP's number of clusters is an upper-bound summary, not a consistent estimate.
#
# References: Blei & Jordan (2006), doi:10.1214/06-BA104; Hughes & Sudderth (2013),
# NeurIPS 26; Miller & Harrison (2013), arXiv:1301.2708; Yao, Vehtari, Simpson & Gelman
# (2018), ICML, arXiv:1802.02538.
