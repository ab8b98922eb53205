# `make demo` and `make test` bootstrap everything themselves: only Python 3.11+ and the package registries needed.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Dagster's dbt assets read this manifest instead of parsing the project on every load
MANIFEST := dbt/target/manifest.json
DBT_FILES := dbt/dbt_project.yml dbt/profiles.yml $(shell find dbt/models dbt/macros dbt/tests -type f 2>/dev/null)

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml replica/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required (python3.11 or newer on PATH)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ./replica -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

$(MANIFEST): $(STAMP) $(DBT_FILES)
	$(BIN)/foundation dbt prepare

demo: install $(MANIFEST)
	$(BIN)/python -m jaffle_replica.demo

# CI: the dbt project's sources.yml must be what the sources generate, then the whole suite
test: install $(MANIFEST)
	$(BIN)/foundation dbt sources --check
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/jaffle.py

clean:
	rm -rf $(VENV) foundation.duckdb .dagster_home dbt/target dbt/logs
