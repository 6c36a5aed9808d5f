"""The tutorial notebooks: in step with their sources, stored executed, and runnable.

Every notebook is executed top to bottom in a fresh kernel in fast mode
(``BAYESGMM_FAST=1``: fewer draws and iterations). Notebooks that compile and sample a
PyMC model are marked ``slow`` and ``sampling``; the EM and variational ones run in the
default suite.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in)
import nbclient  # noqa: F401
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Notebooks that compile and sample a PyMC model (minutes on two cores).
SAMPLING = {"03_marginal_bayesian", "04_dirichlet_process", "05_compare_and_choose_k"}
EXPECTED = {
    "01_em_basics",
    "02_density_and_generation",
    "03_marginal_bayesian",
    "04_dirichlet_process",
    "05_compare_and_choose_k",
}


def _load_build():
    spec = importlib.util.spec_from_file_location("_notebook_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))


def _params(marks_for_sampling):
    out = []
    for source in SOURCES:
        marks = marks_for_sampling if source.stem in SAMPLING else ()
        out.append(pytest.param(source, id=source.stem, marks=marks))
    return out


def test_every_tutorial_has_a_source():
    assert {s.stem for s in SOURCES} >= EXPECTED


def test_percent_format_parser():
    text = "# header ignored\n# %% [markdown]\n# # Title\n#\n# text\n# %%\nx = 1\n\n\n# %%\n"
    assert build.parse_percent(text) == [("markdown", "# Title\n\ntext"), ("code", "x = 1")]
    with pytest.raises(ValueError, match="not a comment"):
        build.parse_percent("# %% [markdown]\nplain text\n")


@pytest.mark.parametrize("source", _params(()))
def test_stored_notebook_matches_its_source(source):
    assert build.check([source]) == []


@pytest.mark.parametrize("source", _params(()))
def test_stored_notebook_is_executed_in_full_mode(source):
    nb = nbformat.read(build.stored_path(source), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["bayesgmm"]["fast"] is False
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    # Executed once, top to bottom, in one kernel.
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Traceback" in o.text]
    # Pictures where people would rather look than read.
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3


@pytest.mark.parametrize("source", _params((pytest.mark.slow, pytest.mark.sampling)))
def test_notebook_runs_top_to_bottom_in_fast_mode(source):
    nb = build.notebook_from_source(source)
    build.execute(nb, fast=True, timeout=600)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
