# trainchain — every set-up step lives here; a fresh clone needs only `make test` / `make demo`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BROWNIE := $(PY) scripts/brownie_launcher.py
VENV_STAMP := $(VENV)/.trainchain-setup
NPM_STAMP := node_modules/.trainchain-setup
BROWNIE_STAMP := $(VENV)/.trainchain-brownie-network
# Debian's chromium for the dapp's browser tests (never a browser download); redone if it vanished.
CHROMIUM_STAMP := $(VENV)/.trainchain-chromium
# anvil (npm) and the venv's tools must be on PATH: brownie's network `cmd` is literally `anvil`.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup setup-parts contracts-cache contracts-build test test-contracts test-contracts-disputes test-contracts-rest test-nodes test-python test-whitepaper demo bench adversarial whitepaper clean

help:
	@echo "make demo         run the whole protocol end to end on a local devnet"
	@echo "make test         run the whole test suite (what CI runs)"
	@echo "make bench        benchmarks -> bench/"
	@echo "make adversarial  adversarial suite -> bench/adversarial.md"
	@echo "make whitepaper   regenerate the whitepaper's figures"

# The venv (pip: torch, brownie) and node_modules (npm: anvil, js-ipfs; ~1,000 packages) are both network-bound
# and independent: fetched side by side (a fresh clone's setup was ~4 min in series, npm alone ~2.5 min).
setup:
	@$(MAKE) --no-print-directory -j4 --output-sync=target setup-parts

setup-parts: $(VENV_STAMP) $(NPM_STAMP) $(BROWNIE_STAMP) $(CHROMIUM_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	# pydantic-settings declares python-dotenv>=0.21 but brownie pins 0.16.0; the
	# parts we use (env + init + TOML/JSON sources) work with 0.16, so no-deps.
	$(PY) -m pip install -q --no-deps pydantic-settings==2.13.1 typing-inspection==0.4.2
	touch $@

$(NPM_STAMP): package.json package-lock.json
	# `npm install`, not `npm ci`: the lock pins every version, but js-ipfs has an optional
	# dependency on a GitHub tarball (unreachable here) that `npm ci`'s sync check rejects.
	npm install --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM_STAMP): $(VENV_STAMP) $(if $(wildcard /usr/bin/chromium),,FORCE)
	test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	touch $@

FORCE:

$(BROWNIE_STAMP): $(VENV_STAMP) scripts/setup_brownie.py
	$(PY) scripts/setup_brownie.py
	touch $@

# Five jobs side by side on CI's 2 cores: the contract suite in two brownie sessions (below), the node suite (node
# processes and anvil), the rest of the Python suite (engine, store, dapp) and the whitepaper's checks (the §5.6
# simulations: pure CPU, ~1 min). With the node and other Python tests in one job that job alone took 12-13 min and
# CI 1,015 s of its 900; the suites need ~22 min of CPU, so two cores cannot do them in much under 11 min.
# The node suite is the longest (node processes waiting on interval-mined blocks, ~7 min alone): the other jobs run
# niced (BATCH: a third of the node job's CPU share when both want it), so the node processes get a core soon after
# they wake and the rest fill the idle time. DURATIONS: each job's slowest tests in CI's log (where its time went).
BATCH := nice -n 5
DURATIONS := --durations=8
# (after the paths for brownie: `brownie test` takes its path as the first argument, else it collects all of tests/)

test: setup
	$(MAKE) --no-print-directory -j5 --output-sync=target test-contracts-disputes test-contracts-rest test-nodes test-python test-whitepaper

test-contracts: setup
	$(BROWNIE) test tests/contracts

# CI splits the contract suite in two brownie sessions (each its own anvil on a free port) over one compile: alone
# it was the last job to finish, ~2 min after the others, with a core idle.
CONTRACT_TESTS := $(sort $(wildcard tests/contracts/test_*.py))
CONTRACT_TESTS_DISPUTES := $(filter tests/contracts/test_disputes%.py tests/contracts/test_watchers.py tests/contracts/test_epochs%.py tests/contracts/test_round_machine.py,$(CONTRACT_TESTS))

contracts-build: setup
	$(BROWNIE) compile

test-contracts-disputes: setup contracts-build
	$(BATCH) $(BROWNIE) test $(CONTRACT_TESTS_DISPUTES) $(DURATIONS)

test-contracts-rest: setup contracts-build
	$(BATCH) $(BROWNIE) test $(filter-out $(CONTRACT_TESTS_DISPUTES),$(CONTRACT_TESTS)) $(DURATIONS)

# The node and Python jobs deploy node.chain.contracts' compiled output (build/trainchain, cached by source hash):
# compiled once before they start, not by both at once (~35 s of CPU each; brownie compiles its own).
contracts-cache: setup
	$(PY) -c "from node.chain.contracts import compile_contracts; compile_contracts()"

# -p no:pytest-brownie: brownie's plugin would load the project and start anvil on 8545
test-nodes: setup contracts-cache
	$(PY) -m pytest -p no:pytest-brownie $(DURATIONS) tests/nodes

test-python: setup contracts-cache
	$(BATCH) $(PY) -m pytest -p no:pytest-brownie $(DURATIONS) tests --ignore=tests/contracts --ignore=tests/adversarial --ignore=tests/whitepaper --ignore=tests/nodes

test-whitepaper: setup
	$(BATCH) $(PY) -m pytest -p no:pytest-brownie $(DURATIONS) tests/whitepaper

demo: setup
	$(VENV)/bin/trainchain demo

bench: setup
	$(PY) -m bench

adversarial: setup
	# -p no:pytest-brownie: brownie's plugin would start anvil on 8545; the suite starts its own
	$(PY) -m pytest -p no:pytest-brownie tests/adversarial

whitepaper: setup
	$(PY) whitepaper/make_figures.py

clean:
	rm -rf build reports .hypothesis $(VENV) node_modules
