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

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
	touch $@

run: $(VENV)/.installed
	@test -d $(EXTRACTS) || $(PY) -m orchestrate generate --out $(EXTRACTS) --scale $(SCALE) --seed $(SEED)
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

# Regenerate requirements.lock from requirements.in (needs network access to PyPI).
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile requirements.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o requirements.lock

clean:
	rm -rf data target logs reports
