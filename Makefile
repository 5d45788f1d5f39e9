# gridledger — the two commands a new user needs are `make run` and `make test`.
# Everything is installed into .venv (Python) and .tools/ (anvil, Hardhat 3 with its Node 22,
# Solara's offline assets).

SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/default
ANVIL := .tools/anvil/bin/anvil
HARDHAT := .tools/hardhat/bin/hardhat-node
SOLARA_CACHE := .tools/solara-assets
export SOLARA_ASSETS_PROXY_CACHE_DIR := $(abspath $(SOLARA_CACHE))
export SOLARA_TELEMETRY_MIXPANEL_ENABLE := False
export GRIDLEDGER_ANVIL := $(abspath $(ANVIL))

.PHONY: run test bench lint format venv deps-test tools clean help

help:
	@echo "make run    - create .venv, install, run the default day, write $(OUT)/ and figures"
	@echo "make test   - install test deps (extras, anvil, chromium, Solara assets), lint, run all tests"
	@echo "make bench  - run benchmarks/, write benchmarks/results/*.json"
	@echo "make lint   - ruff check + ruff format --check"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "no Python >= 3.12 found (see scripts/find-python)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# core install (make run)
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	@touch $@

# everything tests need (Python side)
$(VENV)/.test: $(VENV)/.core
	$(BIN)/pip install -q -c constraints.txt -e '.[viz,dist,test,simbench]'
	@touch $@

venv: $(VENV)/.core

$(ANVIL): scripts/install-anvil
	scripts/install-anvil .tools/anvil

$(HARDHAT): scripts/install-hardhat
	scripts/install-hardhat .tools/hardhat

$(SOLARA_CACHE)/.done: scripts/solara-assets gridledger/viz_server.py $(VENV)/.test
	$(BIN)/python scripts/solara-assets $(SOLARA_CACHE)
	@touch $@

/usr/bin/chromium:
	scripts/install-chromium

tools: $(ANVIL) $(HARDHAT) $(SOLARA_CACHE)/.done /usr/bin/chromium

# results/default is make run's own folder: --force, so that it is rewritten even after a code
# update changed the default scenario (`gridledger run` itself refuses another scenario's folder)
run: $(VENV)/.core
	$(BIN)/gridledger run --out $(OUT) --force

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the `bench` tests (a day of 1-MVLV-semiurb-all, tens of minutes) run with `pytest -m bench`
PYTEST_ARGS ?= -m "not bench"

test: $(VENV)/.test tools lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test $(ANVIL)
	@mkdir -p benchmarks/results
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .tools results .pytest_cache
