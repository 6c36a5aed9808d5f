"""Constructor-parameter handling shared by the estimators (scikit-learn's conventions).

The constructor of every estimator only stores its arguments; ``get_params``,
``set_params`` and ``__repr__`` read them back from the signature, so adding an
argument needs no change here.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, Self

import numpy as np

from bayesgmm._validation import message

__all__ = ["ParamsMixin"]


class ParamsMixin:
    """``get_params``, ``set_params`` and a scikit-learn style ``__repr__``."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters as a dict (scikit-learn convention).

        Parameters
        ----------
        deep : bool
            Ignored (no nested estimators); kept for scikit-learn compatibility.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; they are validated at the next ``fit``.

        Every name is checked before anything is set, so a call with an unknown
        name changes nothing.

        Returns
        -------
        self
        """
        valid = self._get_param_names()
        for name in params:
            if name not in valid:
                raise ValueError(message("params", f"names among {valid}", f"{name!r}", raw=True))
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """Show the arguments that differ from their defaults; the first one unnamed."""
        parameters = [
            p
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
        ]
        shown = []
        for position, p in enumerate(parameters):
            value = getattr(self, p.name)
            if value is p.default:
                continue
            if (
                isinstance(value, (str, numbers.Number, bool))
                and type(value) is type(p.default)
                and value == p.default
            ):
                continue
            text = repr(value)
            if isinstance(value, np.ndarray) or len(text) > 40:
                text = f"<{type(value).__name__}>"
            shown.append(text if position == 0 else f"{p.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"
