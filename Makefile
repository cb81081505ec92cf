# Telemetra: `make run` starts it on SQLite with a demo tenant; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-test clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing; installing it (Debian)"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/telemetra serve --demo --simulate 5 --host $(HOST) --port $(PORT)

# Lint, format, layers and types first: a minute, and the suite does not run on code that fails them.
lint: install-test
	$(BIN)/ruff check telemetra tests bench
	$(BIN)/ruff format --check telemetra tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	scripts/ensure-services.sh
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) telemetra.db telemetra.db-wal telemetra.db-shm telemetra.db.keys
