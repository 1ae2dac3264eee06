"""The exact command sequence of each workflow in ``.github/workflows/``, run against the session stack.

Every ``run:`` step runs verbatim (``workflow_runner.py``); what differs from GitHub is only the environment:

* ``TARGET=local`` (main.yml sets ``TARGET: aws`` for the whole workflow; make's ``TARGET ?= local`` reads it);
* the session stack's endpoint and SDK config (``AWS_ENDPOINT_URL``, ``SAGEMAKER_USER_CONFIG_OVERRIDE``), so
  ``make`` targets use this stack instead of starting one; ``SAGESTACK_DATA_DIR`` is a temporary directory;
* main.yml's runs get the pull request's small data (``ROWS=500``): its pipeline is then a cache hit of the
  pull-request run (same definition), which keeps the suite fast while every command still runs;
* ``uses:`` steps are emulated: checkout (this checkout), setup-python/setup-java (checked: Python 3.11, a Java),
  upload-artifact (the path must hold files), and aws-actions/configure-aws-credentials, replaced by the local
  stack's STS: ``AssumeRoleWithWebIdentity`` for ``role-to-assume`` with a GitHub-shaped token, whose temporary
  credentials every later step of the job uses (checked with ``GetCallerIdentity``).

Not run here, on purpose (``PR_NOT_RUN``): the pull-request workflow's ``make lint`` and ``make test``: they are
what this suite itself is (``make test`` runs lint and then pytest, this test included).

The pull-request workflow's ``make pipeline ROWS=500`` is the suite's one run of the credit-risk pipeline: everything
that run must have done is asserted on it (``credit_risk_run_checks.py``; docs/ci.md, "Test tiers").
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from pipelines.library.deployment.deployment_history import DeploymentHistory
from tests.ci.credit_risk_run_checks import assert_cached_rerun_fails_at_the_gate, assert_pipeline_run
from tests.ci.workflow_runner import ROOT, Context, WorkflowRunner, clean_environment

pytestmark = pytest.mark.expensive

WORKFLOWS = ROOT / ".github" / "workflows"
PR_NOT_RUN = frozenset({"make lint", "make test"})
SMALL_DATA = {"ROWS": "500"}  # the pull-request workflow's own switch (`make pipeline ROWS=500`)
STACK_ENV = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
REGION = "us-east-1"
GITHUB_OIDC = "token.actions.githubusercontent.com"


@pytest.fixture
def ci_env(sdk_env, stack_url, tmp_path):
    """The environment of every step: this process's, minus AWS settings, plus the session stack's."""
    if subprocess.run(["make", "-q", "setup"], cwd=ROOT, capture_output=True, check=False).returncode != 0:
        pytest.fail(".venv is older than pyproject.toml/requirements.lock: run `make setup` (make test does)")
    env = clean_environment()
    env.update({key: os.environ[key] for key in STACK_ENV if key in os.environ})
    env.update({key: value for key, value in os.environ.items() if key.startswith("SAGEMAKER_")})
    env.update(SAGESTACK_DATA_DIR=str(tmp_path / "sagestack"), SAGESTACK_PORT=stack_url.rsplit(":", 1)[1])
    return env


@pytest.fixture
def ci_role(stack_url):
    """The role the workflows assume (as `make infra` would create it): trusted by GitHub's OIDC provider."""
    iam = boto3.client("iam", endpoint_url=stack_url, region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    name = f"sagestack-ci-{uuid.uuid4().hex[:8]}"
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _github_token(subject):
    claims = {"iss": f"https://{GITHUB_OIDC}", "aud": "sts.amazonaws.com", "sub": subject}
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.signature"


def _actions(stack_url, uploads):
    def checkout(inputs, ctx):
        assert (ROOT / ".git").exists()

    def setup_python(inputs, ctx):
        assert inputs["python-version"] == "3.11" and sys.version_info[:2] == (3, 11)

    def setup_java(inputs, ctx):
        assert int(inputs["java-version"]) >= 17
        assert subprocess.run(["java", "-version"], capture_output=True, check=False).returncode == 0

    def upload(inputs, ctx):
        files = [p for p in (ROOT / inputs["path"]).rglob("*") if p.is_file()]
        assert files or inputs.get("if-no-files-found") != "error", f"nothing to upload at {inputs['path']}"
        uploads.append((inputs["name"], inputs["path"]))

    def assume_role(inputs, ctx: Context):
        assert inputs["role-to-assume"], "vars.AWS_ROLE_ARN is not set"
        sts = boto3.client("sts", endpoint_url=stack_url, region_name=inputs["aws-region"])
        credentials = sts.assume_role_with_web_identity(
            RoleArn=inputs["role-to-assume"],
            RoleSessionName=inputs["role-session-name"],
            WebIdentityToken=_github_token("repo:sagestack/sagestack:ref:refs/heads/main"),
        )["Credentials"]
        ctx.env.update(
            AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
            AWS_SESSION_TOKEN=credentials["SessionToken"],
            AWS_REGION=inputs["aws-region"],
            AWS_DEFAULT_REGION=inputs["aws-region"],
        )
        who = boto3.client(
            "sts",
            endpoint_url=stack_url,
            region_name=inputs["aws-region"],
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        ).get_caller_identity()
        role_name = inputs["role-to-assume"].rsplit("/", 1)[-1]
        assert who["Arn"].endswith(f":assumed-role/{role_name}/{inputs['role-session-name']}")

    return {
        "actions/checkout": checkout,
        "actions/setup-python": setup_python,
        "actions/setup-java": setup_java,
        "actions/upload-artifact": upload,
        "aws-actions/configure-aws-credentials": assume_role,
    }


def _log(job):
    return "\n".join(f"--- {s.name} [{s.status}]\n{s.output[-3000:]}" for s in job.steps)


def _report_of(step):
    """The report folder `make pipeline` printed (removed after the test: it is written into the checkout)."""
    match = re.search(r"report: (\S+)", step.output)
    assert match, step.output[-2000:]
    return Path(match.group(1)).parent


def test_pull_request_workflow_sequence_on_the_local_stack(ci_env, stack_url, sdk_env, tmp_path, capsys):
    """pr.yml's sequence; its `make pipeline ROWS=500` is the suite's one run of the credit-risk pipeline, checked in
    full (credit_risk_run_checks.py), then re-run in-process from the cache with a gate that cannot pass."""
    uploads = []
    runner = WorkflowRunner(
        WORKFLOWS / "pr.yml", ci_env, _actions(stack_url, uploads), PR_NOT_RUN, overrides={"TARGET": "local"}
    )
    (job,) = runner.run().values()
    assert job.status == "success", _log(job)
    assert [s.command for s in job.steps if s.status == "not-run"] == ["make lint", "make test"]
    (pipeline,) = [s for s in job.steps if (s.command or "").startswith("make pipeline")]
    folder = _report_of(pipeline)
    try:
        assert "**Succeeded**" in (folder / "report.md").read_text()
        assert folder.parent == ROOT / "reports" and uploads == [("pipeline-report", "reports/")]
        _, bucket = sdk_env
        small = boto3.client("s3").get_object(Bucket=bucket, Key="credit-risk/input/german_credit-first-500.csv")
        assert len(small["Body"].read().decode().splitlines()) == 501  # the header and 500 rows
        assert_pipeline_run(pipeline.output, folder)
        assert_cached_rerun_fails_at_the_gate(pipeline.output, tmp_path / "reports", capsys)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_main_workflow_sequence_gates_then_deploys(ci_env, ci_role, stack_url, sdk_env):
    variables = {"AWS_ROLE_ARN": ci_role, "AWS_REGION": REGION}
    sm = boto3.client("sagemaker")
    history = DeploymentHistory(boto3.client("s3"), sdk_env[1])
    before = history.records("credit-risk")

    def run(**overrides):
        runner = WorkflowRunner(
            WORKFLOWS / "main.yml",
            ci_env,
            _actions(stack_url, []),
            variables=variables,
            overrides={"TARGET": "local", **SMALL_DATA, **overrides},
        )
        return runner.run()

    folders = []
    try:
        # a failed gate: the train job fails at the gate, the production job never starts
        failed = run(MIN_AUC="0.999")
        folders.append(_report_of(failed["train"].step("Credit-risk pipeline on SageMaker")))
        assert failed["train"].status == "failure" and failed["deploy"].status == "skipped", _log(failed["train"])
        gate = failed["train"].step("Evaluation gate")
        assert gate.status == "failure" and "below --min-auc 0.999" in gate.output
        assert gate.outputs["passed"] == "false" and history.records("credit-risk") == before  # nothing deployed

        # the gate passes: the deploy job deploys exactly the gated package, then shows the history
        passed = run()
        folders.append(_report_of(passed["train"].step("Credit-risk pipeline on SageMaker")))
        assert passed["train"].status == "success", _log(passed["train"])
        assert passed["deploy"].status == "success", _log(passed["deploy"])
        package = passed["train"].outputs["package"]
        assert package.startswith("arn:aws:sagemaker:") and "/credit-risk/" in package
        live = sm.describe_endpoint(EndpointName="credit-risk")
        config = sm.describe_endpoint_config(EndpointConfigName=live["EndpointConfigName"])
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]}
        assert live["EndpointStatus"] == "InService" and tags["ModelPackageArn"] == package
        shown = passed["deploy"].step("Deployment history").output
        assert f"* {history.records('credit-risk')[-1].started[:10]}" in shown
        assert live["EndpointConfigName"] in shown and "Succeeded" in shown
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        if "credit-risk" in [e["EndpointName"] for e in sm.list_endpoints(NameContains="credit-risk")["Endpoints"]]:
            sm.delete_endpoint(EndpointName="credit-risk")  # frees its serving process for the rest of the suite
