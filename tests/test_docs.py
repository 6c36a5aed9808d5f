"""The documentation site: its sources are consistent, and it builds with warnings as errors."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bayesgmm

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "notebooks" not in p.parts
)
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _load_conf():
    pytest.importorskip(
        "sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'"
    )
    namespace: dict = {"__file__": str(DOCS / "conf.py")}
    exec(compile((DOCS / "conf.py").read_text(), str(DOCS / "conf.py"), "exec"), namespace)
    return namespace


def test_every_public_name_has_a_place_in_the_api_reference():
    conf = _load_conf()
    placed = [name for names in conf["API_PAGES"].values() for name in names]
    assert len(placed) == len(set(placed)), "a name is on two API pages"
    public = set(bayesgmm.__all__) - conf["API_SKIP"]
    assert set(placed) == public
    for page in conf["API_PAGES"]:
        assert (DOCS / f"{page}.md").exists()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_python_examples_in_pages_are_valid_python(page):
    for block in FENCE.findall(page.read_text()):
        ast.parse(block)


def test_user_guide_covers_every_model_and_cites_its_sources():
    guide = {p.stem: p.read_text() for p in (DOCS / "user-guide").glob("*.md")}
    assert {"em", "marginal", "dirichlet-process"} <= set(guide)
    assert "doi.org/10.1111/j.2517-6161.1977.tb01600.x" in guide["em"]  # Dempster et al.
    assert "doi.org/10.1111/1467-9868.00265" in guide["marginal"]  # Stephens 2000
    assert "doi.org/10.1214/06-BA104" in guide["dirichlet-process"]  # Blei and Jordan 2006
    assert "1301.2708" in guide["dirichlet-process"]  # Miller and Harrison 2013


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme"):
        pytest.importorskip(
            module, reason="the docs extra is not installed: pip install -e '.[docs]'"
        )
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-q",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    assert (out / "index.html").exists()
    # The notebooks are rendered with their stored figures.
    rendered = sorted((out / "notebooks").glob("*.html"))
    assert len(rendered) == len(list((DOCS.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for page in rendered:
        assert "<img" in page.read_text()
    # The API reference documents the estimators that exist.
    models = (out / "api" / "models.html").read_text()
    for name in ("GaussianMixtureParams", "EMGaussianMixture"):
        if hasattr(bayesgmm, name):
            assert f"bayesgmm.{name}" in models
