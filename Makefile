# Two commands do all set-up on a fresh machine:
#   make run    build the environment, generate sample extracts, run the warehouse on DuckDB
#   make test   build the environment and run the whole test suite
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
SCALE  ?= 0.05
SEED   ?= 42
EXTRACTS ?= data/extracts

.PHONY: run test bench lint lint-all lock clean

SAMPLE := scale $(SCALE) seed $(SEED)

# The pinned dependencies (hashes checked), then this project itself, editable and without
# dependencies: the `orchestrate` command (pyproject.toml). make's own targets run
# `python -m orchestrate`, the code of the checkout they are in.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The sample is generated again when SCALE or SEED changes (the folder says which it is
# in .sample); the sample's warehouse is then started afresh. A folder of extracts that
# make did not generate is used as it is.
run: $(VENV)/.installed
	@if [ ! -e $(EXTRACTS) ] || { [ -e $(EXTRACTS)/.sample ] && [ "$$(cat $(EXTRACTS)/.sample)" != "$(SAMPLE)" ]; }; then \
	  if [ -e $(EXTRACTS)/.sample ]; then \
	    echo "sample $$(cat $(EXTRACTS)/.sample) -> $(SAMPLE): generating it again, with a new warehouse"; \
	    rm -rf $(EXTRACTS); [ -n "$$DBT_DUCKDB_PATH" ] || rm -f data/warehouse.duckdb data/warehouse.duckdb.wal; \
	  fi; \
	  $(PY) -m orchestrate generate --out $(EXTRACTS) --scale $(SCALE) --seed $(SEED) && echo "$(SAMPLE)" > $(EXTRACTS)/.sample; \
	fi
	$(PY) -m orchestrate run --extracts $(EXTRACTS)

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) -m orchestrate bench --scale $(or $(BENCH_SCALE),1)

# sqlfluff, file:line findings: `make lint` the models changed since main (LINT_BASE=...),
# `make lint-all` every model. Works before any run (an in-memory DuckDB, profiles.yml `lint`).
lint: $(VENV)/.installed
	$(PY) -m orchestrate lint

lint-all: $(VENV)/.installed
	$(PY) -m orchestrate lint --all

# Regenerate requirements.lock from pyproject.toml: the runtime dependencies and the test
# and lint extras (needs network access to PyPI).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra test --extra lint --group build --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements.lock

clean:
	rm -rf data target logs reports
