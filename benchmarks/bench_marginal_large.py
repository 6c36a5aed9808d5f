"""The marginal model on large n: full-data NUTS, NUTS on a subsample, Laplace, minibatch ADVI.

Data are simulated from a mixture with known, well-separated components (``--d``
features, ``--k`` components, unit-scale anisotropic covariances, means at least
5 apart). For each ``--n`` the methods in ``--methods`` fit the same data:

``nuts``     full-data NUTS, ``MarginalGaussianMixture.fit`` (only for n up to
             ``--nuts-max-n``: its cost grows linearly with n);
``sub``      NUTS on ``--subsample`` rows drawn at random, ``fit(subsample=m)``
             (an exact posterior for m rows: wider by about sqrt(n / m));
``laplace``  ``fit(method="laplace")``: the normal approximation at the mode;
``advi``     minibatch mean-field ADVI as PyMC documents it: the model with a
             ``pm.Minibatch`` of ``--batch`` rows and ``total_size=n``,
             ``pm.fit(method="advi")`` with PyMC's default optimiser
             (adagrad_window, learning rate 1e-3), started at the EM solution with
             initial sd 1/sqrt(n) (PyMC's default, 0.69, starts far off at large n);
``advi_t``, ``fullrank_t``
             the same minibatch objective, mean-field and full-rank, with a tuned
             optimiser: Adam whose steps are measured in the approximation's own
             standard deviations (so the step size means the same at every n),
             learning rate ``--lr``, and the parameters averaged over the second
             half of the iterations (Polyak-Ruppert).

Reported per method (one row each): wall time in seconds (compile included;
NUTS's numba compile is cached on disk between runs); ``err_truth`` and
``err_ref``, the root mean square over scalars of (posterior mean - truth) and
(posterior mean - reference posterior mean), in units of the reference posterior
sd; ``sd_ratio``, the posterior sd over the reference's (median, and min-max over
scalars); ``cover``, the share of true values inside the 94% equal-tailed
intervals; ``check``, each method's own diagnostic (NUTS: max R-hat; Laplace:
Pareto k of the importance ratios; ADVI: the change of the mean ELBO between the
last two quarters of the iterations, in standard errors). The scalars are the
weights, means, log standard deviations and correlations of every component
(components matched to the truth by relabelling). The reference is full-data
NUTS where it ran at that n, and otherwise Laplace's method (its agreement with
NUTS is measured at the smaller n of the same run).

Run: ``.venv/bin/python benchmarks/bench_marginal_large.py [--d 3 --k 3]
[--n 1e4 --n 1e5 --n 1e6] [--methods nuts,sub,laplace,advi,advi_t,fullrank_t]
[--subsample 10000] [--nuts-max-n 1e5]``. Each n runs in this one process; on two
shared cores n = 1e6 takes a few minutes without NUTS, and full-data NUTS on
1e5 rows takes minutes per case.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import OrderedDict

import numpy as np

METHODS = ("nuts", "sub", "laplace", "advi", "advi_t", "fullrank_t")


def make_truth(d, k, seed):
    from bayesgmm.params import GaussianMixtureParams

    rng = np.random.default_rng(seed)
    while True:
        means = rng.normal(scale=4.0, size=(k, d))
        gaps = np.linalg.norm(means[:, None] - means[None], axis=-1) + 99 * np.eye(k)
        if gaps.min() > 5:
            break
    A = rng.normal(size=(k, d, d)) * 0.4 + np.eye(d)
    weights = np.sort(rng.dirichlet(np.full(k, 8.0)))[::-1]
    return GaussianMixtureParams(weights, means, A @ np.swapaxes(A, 1, 2), "full")


def scalars(w, m, c, truth):
    """Draws (S, K), (S, K, d), (S, K, d, d) -> (S, p) scalars, components matched to truth."""
    from bayesgmm import relabel

    perm = relabel.relabel_draws(w, m, c, truth)
    w, m, c = (relabel.apply_permutations(perm, a) for a in (w, m, c))
    d = m.shape[-1]
    sd = np.sqrt(np.diagonal(c, axis1=-2, axis2=-1))
    upper = np.triu_indices(d, 1)
    corr = (c / (sd[..., :, None] * sd[..., None, :]))[..., upper[0], upper[1]]
    s = len(w)
    return np.concatenate(
        [w.reshape(s, -1), m.reshape(s, -1), np.log(sd).reshape(s, -1), corr.reshape(s, -1)], 1
    )


def from_model(model, truth):
    post = model.idata_["posterior"]
    arrays = [np.asarray(post[v].values) for v in ("weights", "means", "covariances")]
    s = arrays[0].shape[0] * arrays[0].shape[1]
    return scalars(*(a.reshape((s,) + a.shape[2:]) for a in arrays), truth)


def run_nuts(X, k, truth, args, subsample=None):
    import arviz_stats

    from bayesgmm import MarginalGaussianMixture

    model = MarginalGaussianMixture(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(
            X,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            random_state=args.seed,
            progressbar=False,
            subsample=subsample,
            log_likelihood=False,
        )
    post = model.idata_["posterior"].to_dataset()[["weights", "means"]]
    rhat = float(arviz_stats.rhat(post).to_array().max())
    return from_model(model, truth), f"R-hat {rhat:.3f}"


def run_laplace(X, k, truth, args):
    from bayesgmm import MarginalGaussianMixture

    model = MarginalGaussianMixture(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, method="laplace", draws=2000, random_state=args.seed, log_likelihood=False)
    attrs = model.idata_["laplace"].attrs
    return from_model(model, truth), (
        f"k {attrs['pareto_k']:.2f}, {attrs['gradient_evaluations']} grads"
    )


def scaled_adam(approx, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam with steps in units of q's sd: mu by lr * sd, log-scale entries by lr."""
    import pytensor
    import pytensor.tensor as pt

    group = approx.groups[0]
    std = group.std

    def optimiser(grads, params):
        t_prev = pytensor.shared(np.float64(0.0))
        t = t_prev + 1
        updates = OrderedDict()
        for param, grad in zip(params, grads, strict=True):
            if param.name == "mu":
                scale = std
            elif param.name == "rho":
                scale = 1.0
            else:  # L_tril: rho-scale diagonal, off-diagonal in units of its row's sd
                rows, cols = group.tril_indices
                diagonal = pt.softplus(param[np.flatnonzero(rows == cols)])
                scale = pt.where(rows == cols, 1.0, diagonal[rows])
            value = param.get_value()
            m_prev = pytensor.shared(np.zeros_like(value), shape=param.type.shape)
            v_prev = pytensor.shared(np.zeros_like(value), shape=param.type.shape)
            m = beta1 * m_prev + (1 - beta1) * grad
            v = beta2 * v_prev + (1 - beta2) * grad**2
            step = (m / (1 - beta1**t)) / (pt.sqrt(v / (1 - beta2**t)) + eps)
            updates[m_prev] = m
            updates[v_prev] = v
            updates[param] = param - learning_rate * scale * step
        updates[t_prev] = t
        return updates

    return optimiser


def run_advi(X, k, truth, args, method):
    import pymc as pm
    import pytensor

    from bayesgmm._marginal_model import (
        build_pymc_model,
        check_priors,
        covariances_from_draws,
        free_values,
    )
    from bayesgmm._nuts import em_start, one_blas_thread

    n, d = X.shape
    loc, scale = X.mean(0), X.std(0)
    Z = (X - loc) / scale
    start = em_start(Z, k, "full", np.random.default_rng(args.seed))
    model = build_pymc_model(
        Z, k, "full", check_priors(None), list(range(d)), batch_size=min(args.batch, n)
    )
    values = free_values(start, d)
    sigma0 = 1.0 / np.sqrt(n)
    full_rank = method == "fullrank_t"
    with model:
        if full_rank:
            inference = pm.FullRankADVI(start=values, random_seed=args.seed)
        else:
            names = [v.name for v in model.value_vars]
            inference = pm.ADVI(
                start=values, start_sigma=dict.fromkeys(names, sigma0), random_seed=args.seed
            )
    approx = inference.approx
    approx.scale_cost_to_minibatch = False  # the loss is -ELBO for all n rows
    group = approx.groups[0]
    if full_rank:
        rows, cols = group.tril_indices
        group.params_dict["L_tril"].set_value(np.where(rows == cols, np.log(np.expm1(sigma0)), 0.0))
    if method == "advi":
        optimiser = pm.adagrad_window(learning_rate=1e-3)
    else:
        optimiser = scaled_adam(approx, pytensor.shared(np.float64(args.lr)))
    step = inference.objective.step_function(score=True, obj_optimizer=optimiser)
    iters = args.iters
    half = iters // 2
    loss = np.empty(iters)
    params = approx.params
    total = [np.zeros_like(p.get_value()) for p in params]
    with one_blas_thread():
        for i in range(iters):
            loss[i] = step()
            if method != "advi" and i >= half:
                for acc, p in zip(total, params, strict=True):
                    acc += p.get_value(borrow=True)
    if method != "advi":
        for acc, p in zip(total, params, strict=True):
            p.set_value(acc / (iters - half))
    elbo = -loss
    q3, q4 = elbo[half : half + iters // 4], elbo[half + iters // 4 :]
    z = (q4.mean() - q3.mean()) / np.sqrt(q3.var() / len(q3) + q4.var() / len(q4))
    trace = approx.sample(1000, random_seed=args.seed, return_inferencedata=False)
    raw = {name: np.asarray(trace.get_values(name)) for name in ("weights", "means", "stds")}
    raw["corr_chol"] = np.asarray(trace.get_values("corr_chol"))
    w = raw["weights"]
    m = loc + scale * raw["means"]
    c = covariances_from_draws(raw, "full", k, d) * np.outer(scale, scale)
    return scalars(w, m, c, truth), f"ELBO drift {z:+.1f} se"


def summarise(S, ref, true):
    mean, sd = S.mean(0), S.std(0)
    ref_sd = ref.std(0)
    lo, hi = np.quantile(S, [0.03, 0.97], axis=0)
    ratio = sd / ref_sd
    return {
        "err_truth": float(np.sqrt(np.mean(((mean - true) / ref_sd) ** 2))),
        "err_ref": float(np.sqrt(np.mean(((mean - ref.mean(0)) / ref_sd) ** 2))),
        "sd_med": float(np.median(ratio)),
        "sd_min": float(ratio.min()),
        "sd_max": float(ratio.max()),
        "cover": float(np.mean((lo <= true) & (true <= hi))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--n", type=float, action="append", help="rows (repeatable)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--subsample", type=int, default=10_000)
    parser.add_argument("--nuts-max-n", type=float, default=1e5)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--iters", type=int, default=20_000)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose among {', '.join(METHODS)}")
    sizes = [int(n) for n in (args.n or [1e4, 1e5, 1e6])]

    truth = make_truth(args.d, args.k, args.seed)
    true = scalars(truth.weights[None], truth.means[None], truth.full_covariances()[None], truth)[0]
    header = (
        f"{'n':>9} {'method':>11} {'wall_s':>8} {'err_truth':>9} {'err_ref':>8} "
        f"{'sd_ratio (min-max)':>20} {'cover':>6} {'ref':>8}  check"
    )
    print(f"d = {args.d}, K = {args.k}, {len(true)} scalars; seed {args.seed}")
    print(header, flush=True)
    for n in sizes:
        X, _ = truth.sample(n, np.random.default_rng(args.seed + 1))
        results = {}
        for method in methods:
            if method == "nuts" and n > args.nuts_max_n:
                continue
            if method == "sub" and n <= args.subsample:
                continue
            t0 = time.perf_counter()
            if method == "nuts":
                S, check = run_nuts(X, args.k, truth, args)
            elif method == "sub":
                S, check = run_nuts(X, args.k, truth, args, subsample=args.subsample)
            elif method == "laplace":
                S, check = run_laplace(X, args.k, truth, args)
            else:
                S, check = run_advi(X, args.k, truth, args, method)
            results[method] = (S, time.perf_counter() - t0, check)
        ref_name = "nuts" if "nuts" in results else "laplace" if "laplace" in results else None
        if ref_name is None:
            ref_name = next(iter(results))
        ref = results[ref_name][0]
        for method, (S, wall, check) in results.items():
            r = summarise(S, ref, true)
            label = method if method != "sub" else f"sub{args.subsample}"
            spread = f"{r['sd_med']:.2f} ({r['sd_min']:.2f}-{r['sd_max']:.2f})"
            print(
                f"{n:>9.0e} {label:>11} {wall:8.1f} {r['err_truth']:9.2f} {r['err_ref']:8.2f} "
                f"{spread:>20} {r['cover']:6.2f} {ref_name:>8}  {check}",
                flush=True,
            )


if __name__ == "__main__":
    main()
