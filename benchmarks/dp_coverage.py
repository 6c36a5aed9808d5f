"""Does the Dirichlet-process mixture's uncertainty cover the truth, or flag itself where not?

Part 1 (coverage): 16 data sets of n = 400 points in d = 2 from a known K = 3
mixture (``make_mixture(400, 3, 2, random_state=seed)``, seeds 0-15, Dasgupta
separation 2). On each, ``DPGaussianMixture(20, random_state=0)`` is fitted; the
true components are matched to the DP's by their means (Hungarian assignment);
the 90% equal-tailed intervals of the 3 weights and 6 mean coordinates of the
matched components (9 scalars per set) are checked against the truth:

* before the repair: 1000 plain draws of the variational posterior q;
* the fit's ``pareto_k_`` and whether it flags itself (ApproximationWarning:
  ``pareto_k_`` above ArviZ's threshold, 0.67 for 1000 draws);
* after the repair: the draws ``to_datatree`` gives (PSIS-resampled where k is
  below the threshold), and for the flagged fits ``dp.refine(X)`` (NUTS on the
  finite mixture of the occupied components, started from the fit).

Part 2 (``--cases``): ``pareto_k_`` on Old Faithful and on the overlap case of
``bench_dp.py`` (n = 10,000, d = 2, K = 4, separation 1), the importance-sampling
ESS, and what ``refine`` gives there (R-hat, bulk ESS, divergences, and the
widths of the 90% intervals of the means against the variational ones).

Run from the repository root (about 10 minutes on two cores, most of it NUTS)::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/dp_coverage.py            # both parts
    PYTHONPATH=$PWD .venv/bin/python benchmarks/dp_coverage.py --no-refine
    PYTHONPATH=$PWD .venv/bin/python benchmarks/dp_coverage.py --cases-only

Coverage is reported per scalar, pooled over sets; the 9 scalars of one set are
correlated, so the binomial standard error printed beside it is a lower bound.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment

from bayesgmm import ApproximationWarning, DPGaussianMixture
from bayesgmm.datasets import load_faithful, make_mixture

CI_PROB = 0.9
N_SETS = 16
N_DRAWS = 1000


def matched(means: np.ndarray, truth_means: np.ndarray) -> np.ndarray:
    """Fitted component matched to each true component (nearest means); -1 for none.

    A fit with fewer components than the truth (a refined DP that merged two
    clusters) leaves some true components unmatched: they count as not covered.
    """
    cost = np.linalg.norm(truth_means[:, None, :] - means[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    order = np.full(len(truth_means), -1)
    order[rows] = cols
    return order


def covered(weights: np.ndarray, means: np.ndarray, truth, order: np.ndarray) -> np.ndarray:
    """Whether each true weight and mean coordinate lies in its 90% equal-tailed interval.

    ``weights`` (S, K') and ``means`` (S, K', d) are posterior draws; ``order``
    maps the true components to the fitted ones (-1: unmatched, not covered).
    """
    tail = (1.0 - CI_PROB) / 2.0
    found = order >= 0
    safe = np.where(found, order, 0)
    values = np.concatenate([weights[:, safe], means[:, safe].reshape(len(means), -1)], axis=1)
    truth_values = np.concatenate([truth.weights, truth.means.ravel()])
    lower, upper = np.quantile(values, [tail, 1.0 - tail], axis=0)
    inside = (lower <= truth_values) & (truth_values <= upper)
    d = truth.means.shape[1]
    return inside & np.concatenate([found, np.repeat(found, d)])


def tree_draws(tree) -> tuple[np.ndarray, np.ndarray]:
    post = tree["posterior"]
    w = np.asarray(post["weights"].values)
    m = np.asarray(post["means"].values)
    return w.reshape(-1, w.shape[-1]), m.reshape((-1,) + m.shape[-2:])


def fit_dp(X: np.ndarray) -> tuple[DPGaussianMixture, bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ApproximationWarning)
        dp = DPGaussianMixture(20, random_state=0).fit(X)
        dp._approximation_check()  # made on first need; here, with the fit
    flagged = any(issubclass(w.category, ApproximationWarning) for w in caught)
    return dp, flagged


def q_draws(dp: DPGaussianMixture) -> tuple[np.ndarray, np.ndarray]:
    """Plain draws of the variational posterior q (the intervals before the repair)."""
    draws = dp._posterior.draws(N_DRAWS, np.random.default_rng(1))
    return np.exp(draws.log_weights), draws.means + dp._center


def refined_draws(dp: DPGaussianMixture, X: np.ndarray, seed: int):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nuts = dp.refine(X, random_state=seed)
    problems = [str(w.message)[:80] for w in caught if "Sampling" in w.category.__name__]
    return nuts, problems


def coverage_study(refine: bool) -> None:
    print(f"Part 1: {N_SETS} data sets, n=400, d=2, K=3; {CI_PROB:.0%} equal-tailed intervals")
    print(
        f"{'seed':>4} {'k':>6} {'flag':>5} {'method':>8} {'K_occ':>5} {'ESS':>6} "
        f"{'cov q':>6} {'cov after':>9}  note"
    )
    rows = []
    for seed in range(N_SETS):
        X, _, truth = make_mixture(400, 3, 2, random_state=seed)
        dp, flagged = fit_dp(X)
        ess = dp._importance.ess
        w_q, m_q = q_draws(dp)
        order = matched(dp.means_, truth.means)
        before = covered(w_q, m_q, truth, order)
        note = ""
        after = None
        method = dp.interval_method_
        if not flagged:
            w_a, m_a = tree_draws(dp.to_datatree(n_draws=N_DRAWS, random_state=seed))
            after = covered(w_a, m_a, truth, order)
        elif refine:
            start = time.perf_counter()
            nuts, problems = refined_draws(dp, X, seed)
            w_a, m_a = tree_draws(nuts.to_datatree())
            after = covered(w_a, m_a, truth, matched(nuts.params_.means, truth.means))
            method = nuts.interval_method_
            note = f"NUTS {time.perf_counter() - start:.0f} s" + (
                f"; {len(problems)} sampling warning(s)" if problems else ""
            )
        rows.append((flagged, before, after, dp.effective_n_components_ == truth.n_components))
        print(
            f"{seed:4d} {dp.pareto_k_:6.2f} {flagged!s:>5} {method:>8} "
            f"{dp.effective_n_components_:5d} {ess:6.0f} {before.mean():6.2f} "
            f"{'-' if after is None else f'{after.mean():.2f}':>9}  {note}",
            flush=True,
        )

    def pooled(values: list[np.ndarray]) -> str:
        if not values:
            return "no sets"
        flat = np.concatenate(values)
        se = np.sqrt(CI_PROB * (1 - CI_PROB) / flat.size)
        return f"{flat.mean():.3f} of {flat.size} scalars (binomial SE >= {se:.3f})"

    flags = [r[0] for r in rows]
    print(f"\nflagged itself (ApproximationWarning): {sum(flags)} of {len(rows)} sets")
    print(f"coverage before the repair, all sets:        {pooled([r[1] for r in rows])}")
    print(
        f"coverage before the repair, unflagged sets:  {pooled([r[1] for r in rows if not r[0]])}"
    )
    print(f"coverage before the repair, flagged sets:    {pooled([r[1] for r in rows if r[0]])}")
    print(
        "coverage after, unflagged sets (VI+PSIS):   "
        f"{pooled([r[2] for r in rows if not r[0] and r[2] is not None])}"
    )
    if refine:
        print(
            "coverage after, flagged sets (refine, NUTS): "
            f"{pooled([r[2] for r in rows if r[0] and r[2] is not None])}"
        )
        print(f"coverage after the repair, all sets:         {pooled([r[2] for r in rows])}")
        print(
            "coverage after the repair, sets where the DP occupies the true number of "
            f"components: {pooled([r[2] for r in rows if r[3]])}"
        )


def interval_widths(means: np.ndarray) -> np.ndarray:
    tail = (1.0 - CI_PROB) / 2.0
    lower, upper = np.quantile(means.reshape(len(means), -1), [tail, 1.0 - tail], axis=0)
    return upper - lower


def cases(refine: bool) -> None:
    print("\nPart 2: pareto_k_ before and after the repair")
    X_big, _, _ = make_mixture(10_000, 4, 2, separation=1.0, random_state=0)
    X_big = X_big[np.random.default_rng(0).permutation(len(X_big))]
    for name, X in [
        ("Old Faithful (n=272)", load_faithful()),
        ("bench_dp overlap (n=10,000)", X_big),
    ]:
        start = time.perf_counter()
        dp, flagged = fit_dp(X)
        seconds = time.perf_counter() - start
        check = dp._importance
        print(
            f"{name}: fit + check {seconds:.1f} s; pareto_k_ {dp.pareto_k_:.2f} "
            f"(threshold {check.good_k:.2f}), flagged {flagged}, importance ESS "
            f"{check.ess:.0f} of 1000, interval_method_ {dp.interval_method_}, "
            f"occupied {dp.effective_n_components_}",
            flush=True,
        )
        if not (refine and flagged):
            continue
        start = time.perf_counter()
        nuts, problems = refined_draws(dp, X, 0)
        seconds = time.perf_counter() - start
        import arviz_stats

        post = nuts.idata_["posterior"].to_dataset()[["weights", "means"]]
        rhat = float(arviz_stats.rhat(post).to_array().max())
        ess_bulk = float(arviz_stats.ess(post, method="bulk").to_array().min())
        stats = nuts.idata_["sample_stats"]
        divergences = int(stats["diverging"].sum()) if "diverging" in stats else -1
        w_n, m_n = tree_draws(nuts.to_datatree())
        # refine starts every chain from the occupied components, in order, and the
        # draws are relabelled to that start: NUTS component j is occupied component j.
        w_q, m_q = q_draws(dp)
        occupied = np.flatnonzero(dp.expected_counts_ >= 1.0)
        ratio = interval_widths(m_q[:, occupied]) / interval_widths(m_n)
        print(
            f"  refine (NUTS, K={nuts.n_components}): {seconds:.0f} s, max R-hat {rhat:.3f}, "
            f"min bulk ESS {ess_bulk:.0f}, divergences {divergences}, "
            f"{len(problems)} sampling warning(s); width of the 90% intervals of the means, "
            f"VI / NUTS: median {np.median(ratio):.2f} (range {ratio.min():.2f}-{ratio.max():.2f})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-refine", action="store_true", help="skip NUTS (refine)")
    parser.add_argument("--cases-only", action="store_true", help="only part 2")
    args = parser.parse_args()
    if not args.cases_only:
        coverage_study(not args.no_refine)
    cases(not args.no_refine)


if __name__ == "__main__":
    main()
