"""Every public name has a numpydoc docstring with Parameters, Returns and a runnable example."""

import doctest
import importlib
import inspect

import numpy as np
import pytest

import bayesgmm

PUBLIC_MODULES = ["datasets", "plotting", "io", "relabel"]


def _public_objects():
    seen = []
    for name in bayesgmm.__all__:
        if name.startswith("_") or name in PUBLIC_MODULES:
            continue
        seen.append((name, getattr(bayesgmm, name)))
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(f"bayesgmm.{module_name}")
        for name in getattr(module, "__all__", []):
            seen.append((f"{module_name}.{name}", getattr(module, name)))
    return seen


def _samples(obj):
    """Whether the object's examples fit a MarginalGaussianMixture (compile and sample PyMC)."""
    code = "".join(e.source for e in doctest.DocTestParser().get_examples(obj.__doc__ or ""))
    return "MarginalGaussianMixture" in code and ".fit(" in code


PUBLIC = _public_objects()
CALLABLES = [(n, o) for n, o in PUBLIC if inspect.isfunction(o) or inspect.isclass(o)]
EXCEPTIONS = {n for n, o in CALLABLES if inspect.isclass(o) and issubclass(o, BaseException)}
# Every public callable but the exceptions has an example (checked below); those that
# sample a PyMC model run in the slow tier.
EXAMPLES = [
    pytest.param(n, o, id=n, marks=[pytest.mark.slow, pytest.mark.sampling] if _samples(o) else [])
    for n, o in CALLABLES
    if n not in EXCEPTIONS
]


def test_all_names_resolve():
    assert len(PUBLIC) >= 10
    for name in bayesgmm.__all__:
        getattr(bayesgmm, name)


@pytest.mark.parametrize(("name", "obj"), CALLABLES, ids=[n for n, _ in CALLABLES])
def test_docstring_has_sections_and_example(name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    if name in EXCEPTIONS:
        return
    if inspect.isclass(obj):
        assert "Parameters" in doc or "Attributes" in doc, f"{name}: no Parameters section"
    else:
        params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        if params:
            assert "Parameters\n----------" in doc, f"{name}: no Parameters section"
        assert "Returns\n-------" in doc or "Yields\n------" in doc, f"{name}: no Returns section"
    assert "Examples\n--------" in doc and ">>>" in doc, f"{name}: no runnable example"


@pytest.mark.parametrize(("name", "obj"), EXAMPLES)
def test_docstring_examples_run(name, obj, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, name, globs={"np": np, "bayesgmm": bayesgmm})
    assert sum(len(test.examples) for test in tests) > 0, f"{name}: no example ran"
    for test in tests:
        result = runner.run(test)
        assert result.failed == 0, f"{name}: {result.failed} docstring example(s) failed"
