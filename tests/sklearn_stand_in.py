"""pytest plugin: EMGaussianMixture stands in for scikit-learn's GaussianMixture.

Loaded with ``-p sklearn_stand_in`` by ``test_sklearn_contract.py`` to run the
test module of the *installed* scikit-learn (``sklearn/mixture/tests/
test_gaussian_mixture.py``) against bayesgmm. The stand-in uses scikit-learn's
regularisation (``reg_covar_scale="absolute"``) and stopping rule
(``stopping="change"``), scikit-learn's defaults for the other arguments.
"""

from typing import Any

from bayesgmm import EMGaussianMixture


class GaussianMixture(EMGaussianMixture):
    """EMGaussianMixture with scikit-learn's semantics, under scikit-learn's name."""

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        super().__init__(
            n_components,
            covariance_type=covariance_type,
            tol=tol,
            reg_covar=reg_covar,
            reg_covar_scale="absolute",
            stopping="change",
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            weights_init=weights_init,
            means_init=means_init,
            precisions_init=precisions_init,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            verbose_interval=verbose_interval,
        )


def pytest_configure(config: Any) -> None:
    import sklearn.mixture.tests.test_gaussian_mixture as module

    module.GaussianMixture = GaussianMixture
