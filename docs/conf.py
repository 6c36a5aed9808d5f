"""Sphinx configuration for the bayesgmm documentation.

Build with ``make docs`` (or ``python -m sphinx -W --keep-going -b html docs docs/_build/html``).
Warnings are errors, so every page, docstring and notebook must render cleanly.

The API reference is written from ``bayesgmm.__all__`` at build time (see ``API_PAGES``
and :func:`_api_section`): every public name must be placed on one of the API pages,
so a name added to the package without documentation breaks the build, and so does a
name that fails to import.

The notebooks live in ``notebooks/`` at the repository root and are stored executed, so
myst-nb renders their outputs without running them (``nb_execution_mode = "off"``).
Sphinx only reads files inside ``docs/``, so every build first copies them to
``docs/notebooks/`` (ignored by git); a symbolic link would not do, because Sphinx
resolves links between documents through the link's target, outside the source tree.
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import bayesgmm  # noqa: E402

logger = logging.getLogger("bayesgmm.docs")

project = "bayesgmm"
author = "bayesgmm developers"
copyright = "2026, bayesgmm developers"
version = release = bayesgmm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

# MyST: $...$ and $$...$$ maths, ::: fences, definition lists.
myst_enable_extensions = ["amsmath", "dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks are stored executed; the docs build never runs them.
nb_execution_mode = "off"
nb_merge_streams = True

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]


def _copy_notebooks() -> None:
    """Mirror ``../notebooks/*.ipynb`` into ``docs/notebooks/``, keeping unchanged copies."""
    source_dir, target_dir = DOCS.parent / "notebooks", DOCS / "notebooks"
    target_dir.mkdir(exist_ok=True)
    sources = {path.name: path for path in source_dir.glob("*.ipynb")}
    for stale in target_dir.glob("*.ipynb"):
        if stale.name not in sources:
            stale.unlink()
    for name, path in sources.items():
        target = target_dir / name
        if not target.exists() or target.read_bytes() != path.read_bytes():
            shutil.copy2(path, target)


# autodoc / numpydoc: numpydoc writes the Parameters/Returns tables; members are
# listed by autodoc once (numpydoc's own member tables would repeat them).
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

html_theme = "pydata_sphinx_theme"
html_title = f"bayesgmm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_last_updated_fmt = None

# ---------------------------------------------------------------- API reference
# Which public names (``bayesgmm.__all__``) go on which API page, in order.
API_PAGES: dict[str, list[str]] = {
    "api/models": [
        "EMGaussianMixture",
        "ConjugatePrior",
        "MarginalGaussianMixture",
        "DPGaussianMixture",
        "MixtureDiscriminantAnalysis",
        "GaussianMixtureParams",
    ],
    "api/analysis": [
        "compare",
        "waic",
        "select_n_components",
        "cluster_uncertainty",
        "bootstrap_summary",
        "bootstrap_lrt",
    ],
    "api/modules": ["datasets", "plotting", "relabel", "io", "load"],
    "api/errors": [
        "NotFittedError",
        "DegenerateCovarianceError",
        "ApproximationWarning",
        "BootstrapWarning",
    ],
}
# Not documented as objects: plain data.
API_SKIP = {"__version__"}


def _api_section(name: str) -> str:
    """reStructuredText documenting one public name ('' if it cannot be imported)."""
    try:
        obj = getattr(bayesgmm, name)
    except Exception as exc:  # a warning, so a broken module breaks the build (-W)
        logger.warning("bayesgmm.%s cannot be imported for the API reference: %r", name, exc)
        return ""
    if inspect.ismodule(obj):
        return f".. automodule:: {obj.__name__}\n   :members:\n\n"
    if inspect.isclass(obj):
        extra = "   :show-inheritance:\n" if issubclass(obj, BaseException) else ""
        members = "   :no-members:\n" if issubclass(obj, BaseException) else ""
        return f".. autoclass:: bayesgmm.{name}\n{members}{extra}\n"
    return f".. autofunction:: bayesgmm.{name}\n\n"


def _check_api_pages() -> None:
    placed = [name for names in API_PAGES.values() for name in names]
    public = [name for name in bayesgmm.__all__ if name not in API_SKIP]
    unplaced = sorted(set(public) - set(placed))
    if unplaced:
        logger.warning("public names missing from docs/conf.py API_PAGES: %s", unplaced)
    unknown = sorted(set(placed) - set(public))
    if unknown:
        logger.warning("API_PAGES lists names that are not in bayesgmm.__all__: %s", unknown)


def _inject_api(app: Any, docname: str, source: list[str]) -> None:
    """Append the generated reference to the API pages as they are read."""
    names = API_PAGES.get(docname)
    if names is None:
        return
    body = "".join(_api_section(name) for name in names)
    source[0] += "\n```{eval-rst}\n" + body + "```\n"


def setup(app: Any) -> dict[str, Any]:
    _copy_notebooks()  # before Sphinx looks for source files
    _check_api_pages()
    app.connect("source-read", _inject_api)
    return {"parallel_read_safe": True}


# Importing the plotting module must never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")
