"""The documentation site: its sources are consistent, its examples run, and it builds.

The Python examples of every page and of the README run top to bottom in one
namespace per page, in a fresh working folder. A page whose examples fit a
MarginalGaussianMixture (compile and sample a PyMC model) runs whole in the slow
tier; in the default tier its examples run up to the first that samples.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import bayesgmm
from bayesgmm.datasets import make_mixture

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "notebooks" not in p.parts
)
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _name(page):
    return str(page.relative_to(ROOT))


def _blocks(page):
    return FENCE.findall(page.read_text())


def _samples(block):
    return "MarginalGaussianMixture(" in block and ".fit(" in block


def _large_data_files(folder):
    """Write the ``big.zarr`` that large-data.md reads (more rows than its NUTS subsample)."""
    dask_array = pytest.importorskip("dask.array", reason="the dask extra is not installed")
    pytest.importorskip("zarr", reason="the dask extra is not installed")
    X, _, _ = make_mixture(25_000, 4, 2, separation=3.0, random_state=0)
    dask_array.from_array(X, chunks=5_000).to_zarr(str(folder / "big.zarr"))


# Files a page's examples read, made in the working folder before they run.
SETUP = {"docs/how-to/large-data.md": _large_data_files}
EXAMPLES = [p for p in [*PAGES, ROOT / "README.md"] if _blocks(p)]
SAMPLING = [p for p in EXAMPLES if any(_samples(b) for b in _blocks(p))]
PREFIXES = [p for p in EXAMPLES if not _samples(_blocks(p)[0])]


def _run(page, blocks, folder, monkeypatch):
    monkeypatch.chdir(folder)
    if _name(page) in SETUP:
        SETUP[_name(page)](folder)
    namespace = {"__name__": "__docs__"}
    try:
        for number, block in enumerate(blocks, 1):
            exec(compile(block, f"{_name(page)}, example {number}", "exec"), namespace)
    finally:
        plt.close("all")


@pytest.mark.parametrize("page", PREFIXES, ids=[_name(p) for p in PREFIXES])
def test_examples_run_up_to_the_first_that_samples(page, tmp_path, monkeypatch):
    blocks = _blocks(page)
    first = next((i for i, block in enumerate(blocks) if _samples(block)), len(blocks))
    _run(page, blocks[:first], tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.sampling
@pytest.mark.parametrize("page", SAMPLING, ids=[_name(p) for p in SAMPLING])
def test_examples_run(page, tmp_path, monkeypatch):
    _run(page, _blocks(page), tmp_path, monkeypatch)


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
