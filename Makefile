# Two commands a user needs: `make demo` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test test-fast lint format install install-dev install-finbert install-ci install-bench bench-drift bench-detectors bench-smoke clean

# The tests run in two worker processes (pytest-xdist, from the dev extra), one per core.
# Whole files go to one worker (loadfile), so a module's expensive fixtures (a trained home, a
# served dashboard, Chromium) are built once, not once per worker. Files are handed out in
# collection order: xdist's default, most tests first, leaves the one-test end-to-end files
# (up to a minute each) for last, when the other worker has nothing left to do.
# `make test PYTEST_XDIST=` runs serially.
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder

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

# torch==2.13.0 named beside the extra: it is the CPU build on this machine's disk (the extra's
# range accepts it), and one pip resolve is quicker than two.
$(VENV)/.installed-finbert: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) 'torch==2.13.0' -e '.[finbert]'
	touch $@ $(VENV)/.installed-base

# CI's install: the dev and finbert extras in one pip resolve and one editable build (a fresh
# venv here: 45-61 s, against 49-76 s for install-dev then install-finbert). Not --no-compile,
# though byte-compiling is half of that: where PYTHONDONTWRITEBYTECODE is set, every process
# would compile its imports again (~4 s more for each server or CLI process the tests start).
$(VENV)/.installed-ci: pyproject.toml | $(BIN)/python
	$(PIP) install $(PIP_FLAGS) 'torch==2.13.0' -e '.[dev,finbert]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed-finbert $(VENV)/.installed-base

# Evidently, River and NannyML, for the drift benchmarks' comparisons only, live in their own
# virtualenv: they need pandas < 3, which this project does not pin. bench/drift.py finds it
# through BTCMLOPS_EVIDENTLY_PYTHON (set by `make bench-drift`), bench/detectors.py through
# BTCMLOPS_BENCH_PYTHON (set by `make bench-detectors`).
# The stamp follows the Makefile, so a changed pin reaches an existing .venv-bench.
.venv-bench/bin/python:
	$(PYTHON) -m venv .venv-bench

.venv-bench/.installed-bench: Makefile | .venv-bench/bin/python
	.venv-bench/bin/python -m pip install $(PIP_FLAGS) "evidently==0.7.23" \
	  "river==0.26.1" "nannyml==0.13.1" "pandas<3" pyarrow
	touch $@

install: $(VENV)/.installed-base
install-dev: $(VENV)/.installed-dev
install-finbert: $(VENV)/.installed-finbert
install-ci: $(VENV)/.installed-ci
install-bench: .venv-bench/.installed-bench

bench-drift: install .venv-bench/.installed-bench
	BTCMLOPS_EVIDENTLY_PYTHON=.venv-bench/bin/python $(BIN)/python bench/drift.py

# The detector benchmark (docs/drift.md): one core, as the numbers in the docs were measured.
bench-detectors: install .venv-bench/.installed-bench
	OMP_NUM_THREADS=1 BTCMLOPS_BENCH_PYTHON=.venv-bench/bin/python $(BIN)/python bench/detectors.py

# Short runs of the serving benchmarks, as CI runs them after the tests: they print their
# numbers and fail when a returned prediction id is missing from the store or stored twice.
# PostgreSQL too when BTCMLOPS_TEST_POSTGRES_URL is set (a scratch schema, dropped after).
bench-smoke: install-dev
	$(BIN)/python bench/load.py --quick --workers 1 2
	$(BIN)/python bench/logging_cost.py --quick
	if [ -n "$$BTCMLOPS_TEST_POSTGRES_URL" ]; then \
	  $(BIN)/python bench/load.py --quick --workers 1 2 --database-url "$$BTCMLOPS_TEST_POSTGRES_URL" && \
	  $(BIN)/python bench/logging_cost.py --quick --database-url "$$BTCMLOPS_TEST_POSTGRES_URL"; \
	fi

demo: install
	$(BIN)/btcmlops demo --fresh

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_XDIST)

# The edit-test loop: everything but the tests marked e2e (real server processes), browser
# (Chromium) or slow (statistical repetitions, long replays, anything over a few seconds);
# `make test` runs those too.
test-fast: install-dev
	$(BIN)/python -m pytest $(PYTEST_XDIST) -m "not slow and not browser and not e2e"

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .venv-bench btcmlops-data .pytest_cache build *.egg-info src/*.egg-info
