# The two commands of the quick start: `make start` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: start test lint check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.runtime

## start: install Staffer into .venv and run it (creates ~/.staffer on first run)
start: $(VENV)/.runtime
	$(BIN)/staffer start

## test: install dev tools and test dependencies, then lint, type-check and run the suite
## (against SQLite and a throwaway PostgreSQL server from scripts/postgres-test-server.sh)
test: $(VENV)/.dev
	bash scripts/install-test-deps.sh
	$(MAKE) --no-print-directory check
	env $$([ -n "$${STAFFER_TEST_POSTGRES_URL:-}" ] || bash scripts/postgres-test-server.sh || true) \
	  $(BIN)/pytest

check: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python -m bench.turn_overhead
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.gateway
	$(BIN)/python -m bench.runs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
