# Two commands a user needs: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test lint format install install-dev install-finbert install-bench bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade pip

# Stamp files make repeated runs skip installing until pyproject.toml changes.
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -e '.[dev]'
	touch $@ $(VENV)/.installed-base

# torch==2.13.0 first: it is the CPU build on this machine's disk; the extra's range accepts it.
$(VENV)/.installed-finbert: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) 'torch==2.13.0'
	$(PIP) install $(PIP_FLAGS) -e '.[finbert]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) -e '.[bench]'
	touch $@

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev
install-finbert: $(VENV)/.installed-finbert
install-bench: $(VENV)/.installed-bench

demo: install
	$(BIN)/btcmlops demo

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) btcmlops-data .pytest_cache build *.egg-info src/*.egg-info
