PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test

.PHONY: run test lint bench clean

$(BIN)/python:
	@echo "make: creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "make: installing permit-hub and its dependencies into $(VENV) (about a minute the first time)"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@echo "make: starting the demo (hub + simulated source systems); Ctrl-C stops it"
	$(BIN)/hub demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# BENCH_ARGS, e.g. "--only validity,peers --quick" (python -m bench --help lists them).
bench: $(STAMP)
	@test -x $(BIN)/granian -a -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --database-url $(BENCH_DATABASE_URL) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
