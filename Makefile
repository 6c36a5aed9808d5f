# The two commands a newcomer runs: `make demo` and `make test`. Both set themselves up from nothing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint typecheck bench docs clean

$(STAMP): pyproject.toml Makefile
	@set -e; interp=$$(./scripts/find-python.sh); \
	if [ ! -x "$(PY)" ]; then echo "Creating $(VENV) with $$interp"; "$$interp" -m venv "$(VENV)"; fi; \
	"$(PY)" -m pip install --quiet --upgrade pip; \
	"$(PY)" -m pip install --quiet -e ".[test,dask,docs]"; \
	touch "$(STAMP)"

demo: $(STAMP)
	$(VENV)/bin/bayesgmm demo --output demo-output --force

# The default suite: lint, types, and every test not marked slow (about a quarter of an hour on two cores).
test: $(STAMP) lint typecheck
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Statistical recovery tests, whole-demo and docs builds: run by CI after `make test` when time allows.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check bayesgmm tests benchmarks
	$(VENV)/bin/ruff format --check bayesgmm

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_em.py

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo-output docs/_build .pytest_cache .mypy_cache .ruff_cache
