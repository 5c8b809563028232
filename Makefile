# lockgate: two commands on a fresh machine.
#   make test   create .venv, install everything, lint (ruff check and format, mypy, import
#               layers, dead code), run the whole suite
#   make demo   run the demo on an embedded default (SQLite, simulated site, private broker)
#   make bench  run every benchmark (bounded) and print one table: figure, target, met

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all venv lint test test-fast demo bench schemas clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check gateway drivers simulators tests bench
	$(BIN)/ruff format --check gateway drivers simulators tests bench
	$(BIN)/mypy --strict gateway drivers simulators
	$(BIN)/lint-imports
	$(BIN)/vulture

test: lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/lockgate demo

bench: $(STAMP)
	$(BIN)/python bench/summary.py

schemas: $(STAMP)
	$(BIN)/lockgate schemas export

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis demo
