# Two commands: `make run` (embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(PY) -m server run

test: $(DEVSTAMP)
	$(PY) -m ruff check protocol storage server clients loadtest tests
	$(PY) -m ruff format --check protocol storage server clients loadtest tests
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(DEVSTAMP)
	$(PY) -m ruff check protocol storage server clients loadtest tests

format: $(DEVSTAMP)
	$(PY) -m ruff format protocol storage server clients loadtest tests
	$(PY) -m ruff check --fix protocol storage server clients loadtest tests

typecheck: $(DEVSTAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m loadtest ack --clients 50 --messages 20000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
