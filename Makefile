# Sagestack: every target installs what it needs into .venv on first use.
SHELL := /bin/bash
PYTHON_BIN ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH ?=
NO_DEPS_PACKAGES := smclarify==0.5 mlflow==3.17.2 sagemaker-mlflow==0.5.0
PYTEST_ARGS ?=
export SAGEMAKER_SUPPRESS_V2_WARNING := 1
export PYTHONHASHSEED := 0

.PHONY: help setup lint test bench console screenshots pipeline quickstart score deploy monitor images images-tag-aws test-docker lock clean clean-state up down status deepracer features infra infra-delete publish-images gate deployments

help:
	@echo "make pipeline   the main job: the credit-risk SageMaker pipeline on the local stack (PIPELINE=, TARGET=, ROWS=)"
	@echo "make deploy     deploy the latest approved credit-risk model package (ENDPOINT=, PACKAGE=)"
	@echo "make gate       CI's evaluation gate on the newest pipeline execution (GATE_OUTPUT=, MIN_AUC=)"
	@echo "make deployments  the endpoint's deployment history (ENDPOINT=, TARGET=)"
	@echo "make monitor    Model Monitor on that endpoint: normal then drifted traffic, violations, drift report"
	@echo "make score      score the test split through the endpoint (features from the online store, Spark transformer)"
	@echo "make quickstart train/serve the XGBoost container directly through the process runtime"
	@echo "make test       lint + the whole test suite"
	@echo "make lint       ruff, mypy, import-linter, cfn-lint, actionlint"
	@echo "make bench      every benchmark (BENCH=<name> for one)"
	@echo "make console    open the console (http://127.0.0.1:4566/console/); make screenshots refreshes docs/img"
	@echo "make setup      create .venv and install the locked dependencies"
	@echo "make features   run the PySpark feature job (FEATURES_OUT=s3://... or a local dir)"
	@echo "make deepracer  train a DeepRacer-style car (REWARD=, TRACK=, ACTIONS=, HYPERPARAMETERS=)"
	@echo "make infra      deploy infra/aws/template.yaml (CloudFormation) to TARGET=local|aws; make infra-delete"
	@echo "make publish-images  push the images to ECR of TARGET, tagged by git commit"
	@echo "make images     build the Docker image of every container (offline); make test-docker runs that tier"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON_BIN) >/dev/null || { echo "error: $(PYTHON_BIN) not found; Sagestack needs Python 3.11" >&2; exit 1; }
	@java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])' || { echo "error: Java 17 or newer not found on PATH; \
	  PySpark 4 needs it (Debian: apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	@echo "==> installing locked dependencies into $(VENV) (first run takes a minute or two)"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@# smclarify 0.5 (the Clarify reference arithmetic) declares s3fs, whose aiobotocore pin fights botocore; mlflow
	@# 3.17 (managed MLflow servers) pins gunicorn<27 and pyarrow<26 it does not need here, and sagemaker-mlflow
	@# requires mlflow: all without deps.
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(NO_DEPS_PACKAGES)
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@export DEBIAN_FRONTEND=noninteractive; $(INSTALL_CHROMIUM)
	@touch $(STAMP)

# The console's browser tests and `make screenshots` drive Debian's headless chromium (docs/console.md): installed
# with apt-get when missing (as root, like debootstrap below), else a message says how.
INSTALL_CHROMIUM = if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
  echo "==> installing chromium and chromium-driver with apt-get (the console's browser tests)"; \
  { apt-get install -y chromium chromium-driver || { apt-get update && apt-get install -y chromium chromium-driver; }; } \
  >/dev/null 2>&1 || echo "chromium could not be installed here (apt-get needs root): the console's browser tests \
need it; apt-get install chromium chromium-driver" >&2; fi

lock: | $(VENV)
	@$(PYTHON_BIN) -m venv .venv-lock && .venv-lock/bin/pip install --quiet --upgrade "pip>=24" \
	  && .venv-lock/bin/pip install --quiet ".[dev]" \
	  && .venv-lock/bin/pip freeze --exclude-editable | grep -v -e '^sagestack' -e '^smclarify' > requirements.lock; \
	  rm -rf .venv-lock; echo "requirements.lock updated"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy containers infra spark_jobs pipelines
	$(VENV)/bin/lint-imports
	$(PY) -m infra.images check
	$(VENV)/bin/cfn-lint infra/aws/template.yaml
	$(VENV)/bin/actionlint

# Three workers on 2 cores (pytest-xdist, whole files per worker; each runs its own stack and SparkSession): many
# tests wait on containers and JVMs they started, so a third worker keeps both cores busy (docs/ci.md). Files go out
# in pytest-xdist's own order (docs/ci.md#scheduling-the-suite).
TEST_WORKERS ?= 3
# SDK v3 (sagemaker 3.x) cannot share a venv with SDK v2: its test tier runs it from .venv-sdk3, a venv layered over
# .venv (a .pth adds .venv's packages after its own) holding only requirements-sdk3.lock (docs/experiments.md#the-sdk).
SDK3_VENV := .venv-sdk3
SDK3_STAMP := $(SDK3_VENV)/.installed
$(SDK3_STAMP): $(STAMP) requirements-sdk3.lock
	@test -x $(SDK3_VENV)/bin/python || $(PYTHON_BIN) -m venv $(SDK3_VENV)
	@$(PY) -c "import site; print(site.getsitepackages()[0])" \
	  > $(SDK3_VENV)/lib/python3.11/site-packages/sagestack-project-venv.pth
	@echo "==> installing SDK v3 into $(SDK3_VENV) (its test tier)"
	@$(SDK3_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-sdk3.lock
	@touch $@

# The project's byte-code, compiled once per run: every job is a new interpreter, and where PYTHONDONTWRITEBYTECODE
# is set (or the job's user may not write the checkout) each one would compile the modules it imports again
# (docs/ci.md#byte-code-compiled-once), as the images' Dockerfiles do at build time.
BYTECODE = $(PY) -m compileall -q -j 0 containers infra pipelines spark_jobs tests benchmarks >/dev/null

test: lint $(SDK3_STAMP)
	@$(BYTECODE)
	$(PY) -m pytest -m "not requires_docker" -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# PNGs of the console's main pages (docs/img/console-*.png) from a stack with a small pipeline run and a package.
screenshots: $(STAMP)
	$(PY) -m tests.console.screenshots docs/img

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH)

PIPELINE ?= credit-risk
TARGET ?= local
pipeline: $(STAMP)
	@$(BYTECODE)
	$(PY) -m pipelines.commands.run_pipeline --pipeline $(PIPELINE) --target $(TARGET) $(if $(ROWS),--rows $(ROWS))

ENDPOINT ?=
PACKAGE ?=
# Deploy the newest Approved (or PACKAGE=<arn|version>) credit-risk model package to ENDPOINT with data capture.
deploy: $(STAMP)
	$(PY) -m pipelines.commands.deploy $(if $(ENDPOINT),--endpoint $(ENDPOINT)) --target $(TARGET) $(if $(PACKAGE),--package $(PACKAGE))

# The evaluation gate after `make pipeline` (CI): exit 1 unless the newest execution passed and registered a package.
# GATE_OUTPUT=<file> appends passed=/execution=/package=/auc= lines (e.g. $$GITHUB_OUTPUT); MIN_AUC= adds a bar.
GATE_OUTPUT ?=
MIN_AUC ?=
gate: $(STAMP)
	$(PY) -m pipelines.commands.gate --pipeline $(PIPELINE) --target $(TARGET) $(if $(GATE_OUTPUT),--output $(GATE_OUTPUT)) \
	  $(if $(MIN_AUC),--min-auc $(MIN_AUC))

# The deployment history of ENDPOINT (every `make deploy` attempt: time, outcome, endpoint config, package).
deployments: $(STAMP)
	$(PY) -m pipelines.commands.deployments $(if $(ENDPOINT),--endpoint $(ENDPOINT)) --target $(TARGET)

# Model Monitor on ENDPOINT: baseline, normal then drifted traffic, two on-demand (NOW) runs, reports/monitor-<ts>/.
monitor: $(STAMP)
	$(PY) -m pipelines.commands.monitor $(if $(ENDPOINT),--endpoint $(ENDPOINT)) --target $(TARGET)

SCORE_INPUT ?=
# Score the test split through the credit-risk endpoint (make deploy) with the Spark endpoint transformer, each row's
# features read from the feature group's online store (SCORE_INPUT=<s3 prefix of online_scoring> to override).
score: up
	eval "$$($(PY) -m infra.cli env)" && $(PY) -m pipelines.commands.score --endpoint credit-risk --target $(TARGET) \
	  $(if $(SCORE_INPUT),--input $(SCORE_INPUT))

# The foundation flow without the stack: train the XGBoost container through the process runtime, serve, score.
quickstart: $(STAMP)
	$(PY) -m infra.quickstart

RUNTIME ?= process
up: $(STAMP)
	@$(BYTECODE)
	SAGESTACK_RUNTIME=$(RUNTIME) $(PY) -m infra.cli up

down: $(STAMP)
	$(PY) -m infra.cli down

console: $(STAMP)
	$(PY) -m infra.cli console

status: $(STAMP)
	$(PY) -m infra.cli status

# Forget the local stack's state (records, S3 objects, job and endpoint files); the stack must be stopped.
clean-state: $(STAMP)
	$(PY) -m infra.cli reset

FEATURES_OUT ?= s3://sagemaker-us-east-1-123456789012/features/credit
# The German credit feature job (PySpark) writes csv/parquet/recordIO channels, a baseline and a manifest.
# The default output is the local stack's default bucket: the stack is started if it is not running.
features: up
	eval "$$($(PY) -m infra.cli env)" && $(PY) -m spark_jobs.features.credit --input data/german_credit.csv \
	  --output $(FEATURES_OUT)

REWARD ?=
TRACK ?=
ACTIONS ?=
HYPERPARAMETERS ?=
deepracer: $(STAMP)
	$(PY) -m containers.rl.local_cli train $(if $(REWARD),--reward $(REWARD)) $(if $(TRACK),--track $(TRACK)) \
	  $(if $(ACTIONS),--actions $(ACTIONS)) $(if $(HYPERPARAMETERS),--hyperparameters $(HYPERPARAMETERS)) \
	  --output-dir .sagestack/deepracer

IMAGES_ARGS ?=
# The offline build makes its OS layer with debootstrap: installed here with apt-get when missing (as root, like
# publish-images' docker-registry), else a message says how; the build needs it only while sagestack/os is not built.
INSTALL_DEBOOTSTRAP = if [[ " $(IMAGES_ARGS) " != *" --online "* ]] && ! command -v debootstrap >/dev/null; then \
  echo "==> installing debootstrap with apt-get (the offline base image is made with it)"; \
  { apt-get install -y debootstrap || { apt-get update && apt-get install -y debootstrap; }; } >/dev/null 2>&1 \
  || echo "debootstrap could not be installed here (apt-get needs root): the offline base needs it; install it, \
or build online with IMAGES_ARGS=--online" >&2; fi

# The Docker tier's publish-images test pushes to Debian's docker-registry on 127.0.0.1 (as `make publish-images` does).
INSTALL_DOCKER_REGISTRY = if ! command -v docker-registry >/dev/null; then \
  echo "==> installing docker-registry with apt-get (the Docker tier's publish-images test)"; \
  { apt-get install -y docker-registry || { apt-get update && apt-get install -y docker-registry; }; } >/dev/null 2>&1 \
  || echo "docker-registry could not be installed here: its test is skipped and listed" >&2; fi

# Docker images of every container (offline: debootstrap base + wheelhouse from requirements.lock; cached).
images: $(STAMP)
	@export DEBIAN_FRONTEND=noninteractive; $(INSTALL_DEBOOTSTRAP)
	$(PY) -m infra.images build $(IMAGES_ARGS)

images-tag-aws: $(STAMP)
	$(PY) -m infra.images tag-aws --region $${AWS_REGION:-us-east-1}

# The Docker tier: installs and starts an engine if it can; only when none can be had here (the engine step exits 3
# and says why) is the tier skipped with exit 0. Any other failure fails it: the engine step, the build and tags of
# the images it uses (base, xgboost, processing, scikit_learn: `make images` builds all), and tests/docker plus the
# control plane's contract tests against a stack on the Docker runtime, where a test skipped for want of the engine or the images
# fails the run (SAGESTACK_REQUIRED_CAPABILITIES, tests/capabilities.py).
# IMAGES_ARGS=--online: python:3.11-slim and the pip index (no debootstrap).
DOCKER_TEST_IMAGES := --only xgboost --only processing --only scikit_learn
DOCKER_CONTRACT_TESTS := tests/integration/test_training_jobs.py tests/integration/test_processing_jobs.py \
  tests/integration/test_transform_jobs.py tests/integration/test_endpoints.py \
  tests/integration/test_capture_and_faults.py \
  tests/integration/test_infra_aws.py::test_publish_images_local_pushes_to_the_registry_and_records_in_ecr
test-docker: $(STAMP)
	@status=0; $(PY) -m infra.images engine || status=$$?; \
	if [ $$status -eq 3 ]; then echo "skipping the Docker tier: no Docker engine can be had on this machine (why: above)"; \
	  exit 0; fi; \
	if [ $$status -ne 0 ]; then echo "error: the Docker engine step failed (exit $$status)" >&2; exit $$status; fi; \
	export DEBIAN_FRONTEND=noninteractive; $(INSTALL_DEBOOTSTRAP); $(INSTALL_DOCKER_REGISTRY); \
	set -ex; \
	$(PY) -m infra.images build $(DOCKER_TEST_IMAGES) $(IMAGES_ARGS); \
	$(PY) -m infra.images tag-aws --region us-east-1 $(DOCKER_TEST_IMAGES); \
	SAGESTACK_TEST_RUNTIME=docker SAGESTACK_REQUIRED_CAPABILITIES=docker,docker-images \
	  $(PY) -m pytest tests/docker $(DOCKER_CONTRACT_TESTS) -q $(PYTEST_ARGS)

# The AWS resources the pipelines need (infra/aws/template.yaml) on TARGET: local = the local stack, aws = the account.
infra: $(STAMP)
	$(PY) -m infra.aws deploy --target $(TARGET)

EMPTY_BUCKET ?=
infra-delete: $(STAMP)
	$(PY) -m infra.aws delete --target $(TARGET) $(if $(EMPTY_BUCKET),--empty-bucket)

# Local: pushes to a registry on 127.0.0.1 (Debian's docker-registry, installed here if missing) and records the
# images in the local stack's ECR; aws: docker login with the ECR token, docker push.
publish-images: $(STAMP)
	@if [ "$(TARGET)" = local ] && ! command -v docker-registry >/dev/null; then \
	  apt-get install -y docker-registry >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y docker-registry) \
	  || echo "docker-registry could not be installed: publish-images will say what to do" >&2; fi
	$(PY) -m infra.aws publish-images --target $(TARGET)

clean:
	rm -rf .sagestack reports .bench $(SDK3_VENV)
