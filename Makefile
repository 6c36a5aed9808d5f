# The two commands a newcomer runs: `make demo` and `make test`. Both set themselves up from nothing.
# `make demo` installs only bayesgmm and its dependencies; `make test` adds the test, dask and docs
# extras on top, so the first command is the quick one.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint typecheck bench docs clean

$(PY):
	@set -e; interp=$$(./scripts/find-python.sh); \
	echo "Creating $(VENV) with $$interp"; "$$interp" -m venv "$(VENV)"; \
	"$(PY)" -m pip install --quiet --upgrade pip

$(DEMO_STAMP): $(PY) pyproject.toml Makefile
	"$(PY)" -m pip install --quiet -e .
	touch "$(DEMO_STAMP)"

$(TEST_STAMP): $(DEMO_STAMP)
	"$(PY)" -m pip install --quiet -e ".[test,dask,docs]"
	touch "$(TEST_STAMP)"

demo: $(DEMO_STAMP)
	$(VENV)/bin/bayesgmm demo --output demo-output --force

# The default suite: lint, types, and every test not marked slow (about 3 minutes of tests on two
# cores, plus the installation on a fresh clone).
test: $(TEST_STAMP) lint typecheck
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Statistical recovery tests, examples that sample, the whole demo and the docs build: run by CI
# after `make test`. No test marked slow (pytest's exit status 5) is not a failure.
test-slow: $(TEST_STAMP)
	@status=0; $(PY) -m pytest -m slow $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "slow tier: no slow tests collected"; status=0; fi; \
	exit "$$status"

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check bayesgmm tests benchmarks
	$(VENV)/bin/ruff format --check bayesgmm

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

bench: $(TEST_STAMP)
	$(PY) benchmarks/bench_em.py

docs: $(TEST_STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) demo-output docs/_build .pytest_cache .mypy_cache .ruff_cache
