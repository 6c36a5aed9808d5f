"""bayesgmm: Gaussian mixture models done the Bayesian way.

Public names load lazily, so ``import bayesgmm`` and the EM and variational
models need only NumPy and SciPy; PyMC and ArviZ load when a Bayesian model or
a comparison is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "GaussianMixtureParams": "bayesgmm.params",
    "NotFittedError": "bayesgmm._validation",
    "ApproximationWarning": "bayesgmm._vi_diagnostics",
    "DegenerateCovarianceError": "bayesgmm._gaussian",
    "EMGaussianMixture": "bayesgmm.em",
    "ConjugatePrior": "bayesgmm.em",
    "MarginalGaussianMixture": "bayesgmm.marginal",
    "DPGaussianMixture": "bayesgmm.dirichlet_process",
    "MixtureDiscriminantAnalysis": "bayesgmm.discriminant",
    "compare": "bayesgmm.comparison",
    "waic": "bayesgmm.comparison",
    "select_n_components": "bayesgmm.selection",
    "cluster_uncertainty": "bayesgmm.clustering",
    "load": "bayesgmm.io",
    "bootstrap_lrt": "bayesgmm.bootstrap",
    "bootstrap_summary": "bayesgmm.bootstrap",
    "BootstrapWarning": "bayesgmm.bootstrap",
}
_SUBMODULES = ("datasets", "plotting", "relabel", "io")

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])

if TYPE_CHECKING:  # pragma: no cover
    from bayesgmm._gaussian import DegenerateCovarianceError as DegenerateCovarianceError
    from bayesgmm._validation import NotFittedError as NotFittedError
    from bayesgmm.params import GaussianMixtureParams as GaussianMixtureParams


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"bayesgmm.{name}")
    raise AttributeError(f"module 'bayesgmm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
