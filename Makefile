# Telemetra: `make run` starts it on SQLite with a demo tenant; `make test` runs every test.
# Each step says what it does; the data lives outside the project (`telemetra info`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install install-test clean

$(BIN)/python:
	@echo "==> creating a Python environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "==> python3-venv is missing; installing it (Debian)"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	@echo "==> upgrading pip"
	@$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	@echo "==> installing Telemetra and its dependencies (about a minute the first time)"
	@$(BIN)/pip install -q -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	@echo "==> installing what the tests need"
	@$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	@echo "==> starting Telemetra (Ctrl-C stops it); the console: http://$(HOST):$(PORT)/console/"
	@$(BIN)/telemetra serve --demo --simulate 5 --host $(HOST) --port $(PORT)

# Lint, format, layers and types first: a minute, and the suite does not run on code that fails them.
lint: install-test
	$(BIN)/ruff check telemetra tests bench
	$(BIN)/ruff format --check telemetra tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium (installed here when missing; never a browser download).
test: lint
	scripts/ensure-services.sh
	scripts/ensure-tools.sh
	scripts/ensure-chromium.sh
	$(BIN)/pytest -q

# Removes what `make` built, never data: the database and its keys file live in the data folder
# (`telemetra info` names it), and deleting them is left to a person.
clean:
	rm -rf $(VENV)
