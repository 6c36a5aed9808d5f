"""Build the tutorial notebooks from their percent-format sources and execute them.

Each notebook ``notebooks/NN_name.ipynb`` is generated from ``notebooks/src/NN_name.py``,
a plain Python script in the "percent" format that Jupytext, VS Code and Spyder read:

* ``# %%`` starts a code cell;
* ``# %% [markdown]`` starts a Markdown cell whose lines are comments (``# text``).

The script is the source of truth (it diffs and reviews like code); the notebook is
rebuilt from it, executed top to bottom in a fresh kernel running this interpreter, and
stored with its outputs so that the documentation renders it without running it.

Usage::

    python notebooks/build.py            # rebuild and execute every notebook
    python notebooks/build.py 01 03      # only the notebooks whose names start so
    python notebooks/build.py --check    # only check that sources and notebooks agree

The stored notebooks are executed in full mode. The tests execute them again with
``BAYESGMM_FAST=1``, which every notebook reads to use fewer draws and iterations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
MARKDOWN_MARKER = "# %% [markdown]"
CODE_MARKER = "# %%"
#: Seconds one cell may run before the execution is abandoned.
CELL_TIMEOUT = 1800


def _markdown_line(line: str) -> str:
    if line.startswith("# "):
        return line[2:]
    if line.rstrip() in ("#", ""):
        return ""
    raise ValueError(f"markdown line is not a comment: {line!r}")


def parse_percent(text: str) -> list[tuple[str, str]]:
    """Split a percent-format script into ``(cell_type, source)`` pairs.

    Lines before the first marker are ignored (a licence or a shebang, say); blank
    lines at the start and end of every cell are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(MARKDOWN_MARKER):
            cells.append(("markdown", []))
        elif line.startswith(CODE_MARKER):
            cells.append(("code", []))
        elif cells:
            kind, lines = cells[-1]
            lines.append(_markdown_line(line) if kind == "markdown" else line)
    out = []
    for kind, lines in cells:
        source = "\n".join(lines).strip("\n")
        if source:
            out.append((kind, source))
    return out


def notebook_from_source(path: Path) -> nbformat.NotebookNode:
    """Build a new, unexecuted notebook from the percent-format script at ``path``."""
    nb = nbformat.v4.new_notebook()
    for kind, source in parse_percent(path.read_text(encoding="utf-8")):
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["bayesgmm"] = {"source": f"src/{path.name}"}
    # Deterministic cell ids, so that rebuilding an unchanged source gives the same file.
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{index:03d}"
    return nb


def execute(nb: nbformat.NotebookNode, *, fast: bool, timeout: int = CELL_TIMEOUT) -> None:
    """Run ``nb`` in place in a fresh kernel, from ``notebooks/``, failing on any error."""
    from nbclient import NotebookClient

    previous = os.environ.get("BAYESGMM_FAST")
    os.environ["BAYESGMM_FAST"] = "1" if fast else "0"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(HERE)}},
            record_timing=False,
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("BAYESGMM_FAST", None)
        else:
            os.environ["BAYESGMM_FAST"] = previous


def stored_path(source: Path) -> Path:
    """Return where the executed notebook built from ``source`` is stored."""
    return HERE / f"{source.stem}.ipynb"


def check(sources: list[Path]) -> list[str]:
    """List the problems that make a stored notebook disagree with its source (empty if none)."""
    problems = []
    for source in sources:
        target = stored_path(source)
        if not target.exists():
            problems.append(f"{target.name}: missing; run python notebooks/build.py")
            continue
        stored = nbformat.read(target, as_version=4)
        fresh = notebook_from_source(source)
        if [(c.cell_type, c.source) for c in stored.cells] != [
            (c.cell_type, c.source) for c in fresh.cells
        ]:
            problems.append(f"{target.name}: out of date with src/{source.name}; rebuild it")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="prefixes of the notebooks to build")
    parser.add_argument("--check", action="store_true", help="only compare with the sources")
    parser.add_argument("--fast", action="store_true", help="execute with BAYESGMM_FAST=1")
    args = parser.parse_args(argv)
    sources = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if args.names:
        sources = [s for s in sources if any(s.stem.startswith(n) for n in args.names)]
    if args.check:
        problems = check(sources)
        print("\n".join(problems) or f"{len(sources)} notebook(s) agree with their sources")
        return 1 if problems else 0
    for source in sources:
        start = time.perf_counter()
        nb = notebook_from_source(source)
        execute(nb, fast=args.fast)
        nb.metadata["bayesgmm"]["fast"] = args.fast
        nbformat.validate(nb)
        nbformat.write(nb, stored_path(source))
        print(f"{stored_path(source).name}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
