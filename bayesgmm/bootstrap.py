"""Bootstrap inference for EM fits: parameter summaries and the likelihood-ratio test for K.

* :func:`bootstrap_summary`: standard errors and percentile intervals of the
  weights, means and covariances from :meth:`EMGaussianMixture.bootstrap
  <bayesgmm.EMGaussianMixture.bootstrap>` (mclust's ``summary(MclustBootstrap)``).
* :func:`bootstrap_lrt`: the sequential bootstrap likelihood-ratio test of K
  against K + 1 components (McLachlan 1987; mclust's ``mclustBootstrapLRT``).

The replicates of both run vectorised, many EM fits at once
(:mod:`bayesgmm._bootstrap`).

References
----------
McLachlan, G. J. (1987). On bootstrapping the likelihood ratio test statistic
for the number of components in a normal mixture. Applied Statistics 36(3),
318-324. doi:10.2307/2347790
O'Hagan, A., Murphy, T. B., Scrucca, L. and Gormley, I. C. (2019). Investigation
of parameter uncertainty in clustering using a Gaussian mixture model via
jackknife, bootstrap and weighted likelihood bootstrap. Computational Statistics
34, 1779-1813. doi:10.1007/s00180-019-00897-9
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import norm

from bayesgmm._bootstrap import (
    BootstrapWarning,
    Replicates,
    SimulatedData,
    run_replicates,
    split_component,
)
from bayesgmm._gaussian import COVARIANCE_TYPES, DegenerateCovarianceError
from bayesgmm._validation import (
    check_array,
    check_float,
    check_int,
    check_option,
    check_random_state,
    message,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["BootstrapWarning", "bootstrap_lrt", "bootstrap_summary"]


def bootstrap_summary(tree: Any, ci_prob: float = 0.9) -> pd.DataFrame:
    """Tabulate the standard errors and intervals of every parameter of a bootstrap.

    Parameters
    ----------
    tree : xarray.DataTree or EMGaussianMixture
        What :meth:`EMGaussianMixture.bootstrap` returned, or a model that kept one.
    ci_prob : float in (0, 1), default 0.9
        Mass of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per parameter (index ``parameter``, ``component``, ``feature``,
        ``feature_bis``; the covariances' upper triangle), with columns
        ``estimate`` (the fit), ``mean`` (of the replicates), ``se``, ``lower``
        and ``upper``. For the nonparametric, weighted and parametric
        bootstraps ``se`` is the replicates' standard deviation and the interval
        is the percentile interval (quantiles ``(1 -+ ci_prob) / 2``). For the
        jackknife, with S leave-one-out replicates, ``se = (S - 1) / sqrt(S)``
        times their standard deviation (Efron & Stein's jackknife variance
        ``(S - 1) / S sum_s (theta_s - mean)^2``, as mclust computes it) and the
        interval is ``estimate -+ z se`` with ``z`` the normal quantile. The
        attrs say which, and how many replicates were left out.

    Examples
    --------
    >>> from bayesgmm import EMGaussianMixture, bootstrap_summary
    >>> from bayesgmm.datasets import load_faithful
    >>> X = load_faithful()
    >>> model = EMGaussianMixture(2, random_state=0).fit(X)
    >>> tree = model.bootstrap(X, 99, random_state=0)
    >>> table = bootstrap_summary(tree, ci_prob=0.9)
    >>> list(table.columns)
    ['estimate', 'mean', 'se', 'lower', 'upper']
    >>> bool((table["se"] > 0).all())
    True
    """
    import pandas as pd

    from bayesgmm.em import EMGaussianMixture

    if isinstance(tree, EMGaussianMixture):
        tree = tree._kept_bootstrap()
    ci_prob = check_float(
        ci_prob, "ci_prob", minimum=0.0, maximum=1.0, include_minimum=False, include_maximum=False
    )
    method = tree.attrs["bootstrap_method"]
    group, estimate = tree["bootstrap"], tree["estimate"]
    features = [str(f) for f in group["feature"].values]
    d = len(features)
    upper_triangle = np.triu_indices(d)
    rows: list[tuple[Any, ...]] = []
    columns: list[tuple[np.ndarray, float]] = []
    for name in ("weights", "means", "covariances"):
        draws = np.asarray(group[name].values)[0]
        point = np.asarray(estimate[name].values)
        k = point.shape[0]
        for c in range(k):
            if name == "weights":
                rows.append((name, c, "", ""))
                columns.append((draws[:, c], float(point[c])))
            elif name == "means":
                for j in range(d):
                    rows.append((name, c, features[j], ""))
                    columns.append((draws[:, c, j], float(point[c, j])))
            else:
                for a, b in zip(*upper_triangle, strict=True):
                    rows.append((name, c, features[a], features[b]))
                    columns.append((draws[:, c, a, b], float(point[c, a, b])))
    draws = np.stack([c[0] for c in columns], axis=1)
    point = np.array([c[1] for c in columns])
    s = draws.shape[0]
    sd = draws.std(axis=0, ddof=1)
    if method == "jackknife":
        se = sd * (s - 1) / np.sqrt(s)
        z = float(norm.ppf(0.5 + ci_prob / 2))
        lower, upper = point - z * se, point + z * se
        interval = "normal: estimate -+ z se"
    else:
        se = sd
        lower, upper = np.quantile(draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        interval = "percentile"
    index = pd.MultiIndex.from_tuples(
        rows, names=["parameter", "component", "feature", "feature_bis"]
    )
    table = pd.DataFrame(
        {"estimate": point, "mean": draws.mean(axis=0), "se": se, "lower": lower, "upper": upper},
        index=index,
    )
    table.attrs.update(
        {
            "bootstrap_method": method,
            "interval": interval,
            "ci_prob": ci_prob,
            "n_used": int(tree.attrs["n_used"]),
            "n_failed": int(tree.attrs["n_failed"]),
            "n_degenerate": int(tree.attrs["n_degenerate"]),
            "n_not_converged": int(tree.attrs["n_not_converged"]),
        }
    )
    return table


def bootstrap_lrt(
    X: Any,
    covariance_type: str = "full",
    max_components: int | None = None,
    n_boot: int = 999,
    *,
    level: float = 0.05,
    sequential: bool = True,
    n_init: int = 5,
    random_state: Any = None,
    max_iter: int = 1000,
    tol: float = 1e-8,
) -> pd.DataFrame:
    """Sequential bootstrap likelihood-ratio test of K against K + 1 components.

    For K = 1, 2, ...: fit K and K + 1 components by EM, take the observed
    statistic ``LRTS = 2 (log L_{K+1} - log L_K)``, and compare it with its
    distribution under the K-component fit, estimated by the parametric
    bootstrap (McLachlan 1987): ``n_boot`` data sets of n points are simulated
    from the K-component fit, both models are refitted to each by EM started
    from their fits to ``X`` (K + 1 components also from the replicate's own K
    fit with its heaviest component split in two, keeping the more likely
    fit, so that a poor start does not make the statistic of a replicate
    smaller than it is), and the p-value is
    ``(1 + #{b : LRTS_b >= LRTS}) / (B + 1)`` over the B replicates whose two
    fits succeeded. This is mclust's ``mclustBootstrapLRT`` (the regularity
    conditions of the chi-squared approximation fail for mixtures, hence the
    bootstrap). With ``sequential=True`` the tests stop at the first K that is
    not rejected at ``level``, the number of components the test keeps.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    covariance_type : str, default "full"
    max_components : int, optional
        Largest number of components fitted (the last test is
        ``max_components - 1`` against ``max_components``); 9 if None, as mclust.
    n_boot : int, default 999
        Bootstrap replicates per test.
    level : float, default 0.05
        Significance level of each test.
    sequential : bool, default True
        Stop at the first test not rejected (otherwise run every test).
    n_init : int, default 5
        EM fits to ``X`` per number of components, each from its own start;
        the most likely without a degenerate component is kept.
    random_state : None, int or numpy.random.Generator
    max_iter, tol
        EM's limits for the replicates (relative tolerance on the log-likelihood,
        see :meth:`EMGaussianMixture.bootstrap`); the fits to ``X`` use
        ``max_iter`` and ``tol`` on the mean log-likelihood per sample.

    Returns
    -------
    pandas.DataFrame
        One row per test with ``n_components`` (K), ``alternative`` (K + 1),
        ``log_likelihood`` and ``log_likelihood_alternative`` of the fits to
        ``X``, ``statistic`` (the observed LRTS), ``p_value``, ``rejected``
        (``p_value <= level``), ``n_boot``, ``n_failed`` (replicates left
        out because a fit failed, never silently) and ``note`` (why a test
        was not run: every fit of K + 1 components to ``X`` was degenerate,
        so K is kept). ``attrs["n_components"]`` is the number of components
        kept: the first K not rejected (the last alternative if every test is
        rejected).

    Warns
    -----
    BootstrapWarning
        When replicates failed.

    References
    ----------
    McLachlan, G. J. (1987). On bootstrapping the likelihood ratio test
    statistic for the number of components in a normal mixture. Applied
    Statistics 36(3), 318-324. doi:10.2307/2347790

    Examples
    --------
    >>> import numpy as np
    >>> from bayesgmm import bootstrap_lrt
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    >>> tests = bootstrap_lrt(X, "full", max_components=3, n_boot=19, random_state=0)
    >>> tests.attrs["n_components"]
    2
    >>> bool(tests.loc[0, "rejected"])
    True
    """
    import pandas as pd

    from bayesgmm.em import ConvergenceWarning, DegenerateComponentWarning, EMGaussianMixture

    data, _ = check_array(X, min_samples=2)
    n, d = data.shape
    covariance_type = check_option(covariance_type, "covariance_type", COVARIANCE_TYPES)
    largest = (
        9 if max_components is None else check_int(max_components, "max_components", minimum=2)
    )
    if largest > n:
        raise ValueError(message("max_components", f"at most n_samples={n}", largest))
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    level = check_float(
        level, "level", minimum=0.0, maximum=1.0, include_minimum=False, include_maximum=False
    )
    if not isinstance(sequential, (bool, np.bool_)):
        raise TypeError(message("sequential", "a bool", sequential))
    n_init = check_int(n_init, "n_init", minimum=1)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = check_float(tol, "tol", minimum=0.0)
    rng = check_random_state(random_state)
    shift = data.mean(axis=0)

    def fit(k: int) -> Any:
        """Return the most likely of ``n_init`` EM fits without a degenerate component, or None."""
        best = None
        for _ in range(n_init):
            model = EMGaussianMixture(
                k,
                covariance_type=covariance_type,
                max_iter=max_iter,
                tol=tol,
                random_state=int(rng.integers(2**31 - 1)),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", DegenerateComponentWarning)
                try:
                    model.fit(data)
                except DegenerateCovarianceError:
                    continue
            if model.degenerate_components_.size:
                continue
            if best is None or model.lower_bound_ > best.lower_bound_:
                best = model
        return best

    def start(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = model.params_
        return p.weights, p.means - shift, p.covariances

    rows: list[dict[str, Any]] = []
    null = fit(1)
    if null is None:
        raise ValueError(message("X", "data a one-component Gaussian fits", "a degenerate fit"))
    failed_total = 0
    for k in range(1, largest):
        alternative = fit(k + 1)
        if alternative is None:
            rows.append(
                {
                    "n_components": k,
                    "alternative": k + 1,
                    "rejected": False,
                    "n_boot": 0,
                    "n_failed": 0,
                    "note": f"every fit of {k + 1} components is degenerate: not tested",
                }
            )
            break
        ll0 = float(null.score(data)) * n
        ll1 = float(alternative.score(data)) * n
        observed = 2.0 * (ll1 - ll0)
        seeds = rng.integers(0, 2**63 - 1, size=n_boot)
        simulated = SimulatedData(null.params_, shift, n, seeds)
        options = {
            "covariance_type": covariance_type,
            "reg_covar": alternative.reg_covar_,
            "max_iter": max_iter,
            "tol": tol,
        }
        fit0 = run_replicates(simulated, None, start(null), **options)
        # K + 1 components from two starts, the better kept: the fit to X (as
        # mclust) and the replicate's own K-component fit with a component split.
        fit1 = run_replicates(simulated, None, start(alternative), **options)
        split = _split_starts(fit0, covariance_type)
        if split is not None:
            succeeded, split_start = split
            refit = run_replicates(simulated.subset(succeeded), None, split_start, **options)
            previous = np.nan_to_num(fit1.log_likelihood[succeeded], nan=-np.inf)
            better = refit.log_likelihood > previous
            log_lik1 = fit1.log_likelihood.copy()
            log_lik1[succeeded[better]] = refit.log_likelihood[better]
        else:
            log_lik1 = fit1.log_likelihood
        statistics = 2.0 * (log_lik1 - fit0.log_likelihood)
        valid = np.isfinite(statistics)
        n_failed = int((~valid).sum())
        failed_total += n_failed
        p_value = (1.0 + float((statistics[valid] >= observed).sum())) / (valid.sum() + 1.0)
        rows.append(
            {
                "n_components": k,
                "alternative": k + 1,
                "log_likelihood": ll0,
                "log_likelihood_alternative": ll1,
                "statistic": observed,
                "p_value": p_value,
                "rejected": bool(p_value <= level),
                "n_boot": n_boot,
                "n_failed": n_failed,
                "note": "",
            }
        )
        if sequential and p_value > level:
            break
        null = alternative
    columns = [
        "n_components",
        "alternative",
        "log_likelihood",
        "log_likelihood_alternative",
        "statistic",
        "p_value",
        "rejected",
        "n_boot",
        "n_failed",
        "note",
    ]
    table = pd.DataFrame(rows, columns=columns)
    not_rejected = [r["n_components"] for r in rows if not r["rejected"]]
    if not_rejected:
        kept = int(not_rejected[0])
    else:
        kept = int(rows[-1]["alternative"]) if rows else 1
    table.attrs.update({"n_components": kept, "level": level, "covariance_type": covariance_type})
    if failed_total:
        warnings.warn(
            f"{failed_total} bootstrap replicate(s) of the likelihood-ratio test failed (a "
            "covariance was not positive definite) and were left out of the p-values; the "
            "'n_failed' column counts them per test",
            BootstrapWarning,
            stacklevel=2,
        )
    return table


def _split_starts(
    fits: Replicates, covariance_type: str
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Return the replicates whose K-component fit succeeded, and their split starts for K + 1."""
    rows = np.flatnonzero(~fits.failed)
    if rows.size == 0:
        return None
    return rows, split_component(
        fits.weights[rows], fits.means[rows], fits.covariances[rows], covariance_type
    )
