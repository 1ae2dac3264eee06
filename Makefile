# Sagestack: every target installs what it needs into .venv on first use.
SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH ?=
NO_DEPS_PACKAGES := smclarify==0.5
PYTEST_ARGS ?=
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
export PYTHONHASHSEED := 0

.PHONY: help setup lint test bench pipeline lock clean up down status deepracer

help:
	@echo "make pipeline   run the main job (train XGBoost on German credit, serve, score, report AUC)"
	@echo "make test       lint + the whole test suite"
	@echo "make lint       ruff, mypy, import-linter"
	@echo "make bench      every benchmark (BENCH=<name> for one)"
	@echo "make setup      create .venv and install the locked dependencies"
	@echo "make deepracer  train a DeepRacer-style car (REWARD=, TRACK=, ACTIONS=, HYPERPARAMETERS=)"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON_BIN) >/dev/null || { echo "error: $(PYTHON_BIN) not found; Sagestack needs Python 3.11" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	@echo "==> installing locked dependencies into $(VENV) (first run takes a minute or two)"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# smclarify 0.5 (the Clarify reference arithmetic) declares s3fs, whose aiobotocore pin fights botocore: no deps.
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(NO_DEPS_PACKAGES)
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

lock: | $(VENV)
	@$(PYTHON_BIN) -m venv .venv-lock && .venv-lock/bin/pip install --quiet --upgrade "pip>=24" \
	  && .venv-lock/bin/pip install --quiet ".[dev]" \
	  && .venv-lock/bin/pip freeze --exclude-editable | grep -v -e '^sagestack' -e '^smclarify' > requirements.lock; \
	  rm -rf .venv-lock; echo "requirements.lock updated"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy containers infra
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH)

pipeline: $(STAMP)
	$(PY) -m infra.quickstart

up: $(STAMP)
	$(PY) -m infra.cli up

down: $(STAMP)
	$(PY) -m infra.cli down

status: $(STAMP)
	$(PY) -m infra.cli status

REWARD ?=
TRACK ?=
ACTIONS ?=
HYPERPARAMETERS ?=
deepracer: $(STAMP)
	$(PY) -m containers.rl.cli train $(if $(REWARD),--reward $(REWARD)) $(if $(TRACK),--track $(TRACK)) \
	  $(if $(ACTIONS),--actions $(ACTIONS)) $(if $(HYPERPARAMETERS),--hyperparameters $(HYPERPARAMETERS)) \
	  --output-dir .sagestack/deepracer

clean:
	rm -rf .sagestack reports .bench
