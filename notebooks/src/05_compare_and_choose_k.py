# %% [markdown]
# # Comparing models and choosing K on real data
#
# How many clusters are in a data set? The question sounds like it has one answer,
# but the methods that answer it measure different things:
#
# - **BIC** approximates how probable each $K$ is if the data really were a Gaussian
#   mixture: it rewards describing the *density* well, with a penalty per parameter.
# - **ICL** adds the entropy of the soft classification to BIC: it rewards
#   *well-separated* clusters and penalises components that overlap.
# - **LOO** (leave-one-out cross-validation of the Bayesian model) estimates how well
#   each model *predicts* a new point.
# - **The Dirichlet process** reports how many components a flexible model *uses*.
#
# On real data they need not agree, and the disagreements are informative. This
# notebook applies all four to the eruptions of the Old Faithful geyser.

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

import bayesgmm
from bayesgmm import DPGaussianMixture, EMGaussianMixture, MarginalGaussianMixture
from bayesgmm.datasets import load_faithful
from bayesgmm.plotting import plot_clusters, plot_compare, plot_selection

FAST = os.environ.get("BAYESGMM_FAST") == "1"  # the test suite runs a quicker version
SEED = 20261122
DRAWS, TUNE, CHAINS = (200, 200, 2) if FAST else (1000, 1000, 4)
LOO_KS = range(1, 4) if FAST else range(1, 5)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6, 4.5)})
if FAST:  # the tests run the code; they do not need the pictures drawn
    plt.switch_backend("agg")

# %% [markdown]
# ## The data
#
# `bayesgmm.datasets.load_faithful` returns 272 eruptions of Old Faithful (Yellowstone,
# August 1985): how long each eruption lasted and how long the wait until the next
# one was, both in minutes (R's `datasets::faithful`; Azzalini & Bowman, 1990). It is
# shipped with the package.

# %%
faithful = load_faithful(as_frame=True)
X = faithful.to_numpy()
print(faithful.describe().round(2))

fig, ax = plt.subplots()
ax.scatter(faithful["eruptions"], faithful["waiting"], s=10)
ax.set(xlabel="eruption duration (min)", ylabel="waiting time to next eruption (min)",
       title="Old Faithful: 272 eruptions")
plt.show()

# %% [markdown]
# Two groups are obvious: short eruptions after short waits, long after long. Whether
# the long group is one Gaussian or more is less obvious.
#
# ## BIC and ICL over K and covariance types
#
# `select_n_components` fits EM for every $K$ and covariance type (five restarts each)
# and ranks them. Both criteria are on scikit-learn's scale: lower is better.

# %%
bic = bayesgmm.select_n_components(X, range(1, 7), method="bic", random_state=0)
icl = bayesgmm.select_n_components(X, range(1, 7), method="icl", random_state=0)
print(f"BIC chooses K = {bic.best_n_components} ({bic.best_covariance_type})")
print(f"ICL chooses K = {icl.best_n_components} ({icl.best_covariance_type})")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
plot_selection(bic, ax=axes[0])
axes[0].set_title("BIC")
plot_selection(icl, ax=axes[1])
axes[1].set_title("ICL")
fig.tight_layout()
plt.show()

# %%
bic.table.sort_values("bic").head(8).round(1)

# %% [markdown]
# Look at the two choices side by side. BIC's extra components describe the *shape*
# of the groups (the long-eruption group is not quite one ellipse); ICL counts
# separated *clusters*, and components that overlap cost it the entropy of the
# uncertain assignments.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True, sharey=True)
for ax, (name, result) in zip(axes, [("BIC", bic), ("ICL", icl)], strict=True):
    plot_clusters(result.best_model, X, ax=ax, n_std=(1, 2))
    ax.set_title(f"{name}: K = {result.best_n_components}, {result.best_covariance_type}")
    ax.set(xlabel="eruptions (min)", ylabel="waiting (min)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The Dirichlet process
#
# One DP mixture with a truncation of 10 components, and the posterior of the number
# of occupied components:

# %%
dp = DPGaussianMixture(truncation=10, random_state=0).fit(X)
occupied = dp.n_occupied_distribution(n_draws=1000, random_state=0)
print("components with at least one expected point:", dp.effective_n_components_)
print(occupied.round(3))

# %% [markdown]
# ## LOO with the marginal Bayesian model
#
# For each $K$, fit `MarginalGaussianMixture` by NUTS and estimate the expected log
# predictive density (elpd) by Pareto-smoothed importance sampling LOO. Differences in
# elpd come with standard errors, and the rule used here takes the simplest model the
# data cannot tell from the best: an elpd difference within two standard errors of
# that difference, or below 4 whatever its standard error (an extra, nearly empty
# component predicts almost like the smaller model, which makes the standard error of
# their difference tiny and unreliable); the `indistinguishable` column marks that set.
# Every NUTS fit is checked first (divergences, R-hat, ESS, chains in different modes,
# components collapsing onto tied values); a fit that fails twice is shown but not
# ranked, with the reason in `note`. When the decision is within the Monte Carlo error
# of the differences, the fits concerned are redrawn with twice the draws.
# Each $K$ compiles its own model, so this is the slow part (minutes).

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # sampler diagnostics are in the table
    # R-hat of a quantity that is constant by construction (a correlation matrix's
    # diagonal) divides zero by zero inside ArviZ; it is harmless.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="arviz_stats")
    loo = bayesgmm.select_n_components(
        X, LOO_KS, method="loo", covariance_types=("full",), random_state=0,
        fit_kwargs={"draws": DRAWS, "tune": TUNE, "chains": CHAINS, "progressbar": False},
    )
print(f"LOO (simplest indistinguishable K) chooses K = {loo.best_n_components}")
ax = plot_selection(loo)
ax.set_title("PSIS-LOO elpd of the marginal model")
plt.show()
loo.table.round(2)

# %% [markdown]
# What does the extra flexibility buy? The chosen marginal model, with ellipses from
# posterior draws, and how far $K = 2$ is behind it in units of the standard error of
# the difference:

# %%
ax = plot_clusters(loo.best_model, X, n_std=(1, 2), n_posterior_draws=30)
ax.set(title=f"Marginal model, K = {loo.best_n_components}", xlabel="eruptions (min)",
       ylabel="waiting (min)")
plt.show()
print("posterior mean weights:", np.round(loo.best_model.params_.weights, 3))
two = loo.table.set_index("n_components").loc[2]
print(f"K = 2 is {-two['elpd_diff']:.1f} nats of elpd behind the best, "
      f"{-two['elpd_diff'] / two['dse']:.1f} standard errors of the difference")

# %% [markdown]
# Look at where the extra components go before calling them clusters. Components with
# small weights that sit inside an existing group, or spread thinly between the
# groups, improve the density a little; they are not new kinds of eruption. The faint
# ellipses of the posterior draws show how loosely the data determine such components.

# %% [markdown]
# ## All the models in one comparison
#
# `bayesgmm.compare` puts models fitted in different ways on one scale, the elpd of the
# same 272 points: exact 10-fold cross-validation for EM, PSIS-LOO for the NUTS fits,
# and PSIS-LOO with the approximation correction for the variational DP, or exact
# 10-fold cross-validation of the DP too when the Pareto $\hat k$ of its approximation
# are high (the `criterion` column says which). The table is
# sorted best first, with differences from the best model and their standard errors
# (`dse`), stacking weights, and Pareto $\hat k$ warnings.

# %%
candidates = {
    f"EM K={bic.best_n_components} ({bic.best_covariance_type})": bic.best_model,
    f"EM K={icl.best_n_components} ({icl.best_covariance_type})": icl.best_model,
    f"marginal K={loo.best_n_components}": loo.best_model,
    "DP": dp,
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    table = bayesgmm.compare(candidates, X, random_state=0)
table

# %%
ax = plot_compare(table)
ax.set_title("Expected log predictive density, best first")
plt.show()

# %% [markdown]
# ## When they disagree, and what to report
#
# The summary of the four answers:

# %%
answers = {
    "BIC (EM)": bic.best_n_components,
    "ICL (EM)": icl.best_n_components,
    "LOO, one-SE rule (NUTS)": loo.best_n_components,
    "DP, most probable number occupied": int(occupied.idxmax()),
}
for method, k in answers.items():
    print(f"{method:>36}: K = {k}")

# %% [markdown]
# How to read them:
#
# - **ICL's answer is the number of clusters** in the everyday sense: groups that are
#   well apart. On Old Faithful that is two, short and long eruptions.
# - **BIC's answer is the number of Gaussians** needed to describe the density. When it
#   exceeds ICL's, as here, some cluster is not Gaussian-shaped and takes more than one
#   component to describe: the long-eruption group is denser towards its short end.
#   That is a statement about shape, not the discovery of a new kind of eruption.
# - **LOO measures prediction, with a standard error.** Models with more components
#   predict new eruptions a little better, which agrees with BIC about the shape. But
#   read `elpd_diff` against `dse`: differences of one or two standard errors are
#   weak evidence, and a flat stretch of the LOO curve means the data cannot tell
#   those $K$ apart. The `indistinguishable` column shows that set and the rule takes
#   its simplest member; the table shows how firm that number is.
# - **The DP's count is an upper-bound summary**, here mostly two occupied components.
#   DP posteriors put mass on extra small clusters however much data there is (Miller
#   & Harrison, 2013). In the comparison table its elpd comes from exact 10-fold
#   cross-validation rather than PSIS: the Pareto $\hat k$ of its mean-field
#   approximation is above the limit for every point (q is narrower than the
#   posterior), so importance sampling could not correct it, while refitting the DP
#   ten times takes seconds.
#
# So a good report says: two clearly separated groups of eruptions (ICL, DP); a
# long-eruption group whose shape takes more than one Gaussian to describe well (BIC,
# LOO), with the size of that improvement and its uncertainty; and, for the points
# between groups, the membership uncertainty from the Bayesian model
# ([notebook 3](03_marginal_bayesian.ipynb)).
#
# References: Schwarz (1978), doi:10.1214/aos/1176344136; Biernacki, Celeux & Govaert
# (2000), doi:10.1109/34.865189; Vehtari, Gelman & Gabry (2017),
# doi:10.1007/s11222-016-9696-4; Miller & Harrison (2013), arXiv:1301.2708; Azzalini &
# Bowman (1990), doi:10.2307/2347385.
