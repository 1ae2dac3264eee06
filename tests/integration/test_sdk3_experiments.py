"""SDK v3 against the stack: ``sagemaker.core.experiments.Run`` in SDK v3's own venv (.venv-sdk3), read back with
boto3 (docs/experiments.md#the-sdk)."""

import os
import subprocess
from pathlib import Path

import pytest

from infra.cli import env_lines, write_sdk_config
from infra.config import StackSettings
from tests.capabilities import SDK3_PYTHON
from tests.integration.conftest import unique

pytestmark = pytest.mark.capability("sagemaker-sdk-v3")
SCRIPT = Path(__file__).with_name("sdk3_run_experiment.py")
BUCKET = "sagemaker-us-east-1-123456789012"


def _sdk_environment(stack, tmp_path):
    settings = StackSettings(data_dir=tmp_path, port=stack.settings.port, region="us-east-1")
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    for line in env_lines(settings, write_sdk_config(settings, BUCKET)):
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def test_an_sdk_v3_run_logs_parameters_metrics_and_a_confusion_matrix(stack, sm, s3, tmp_path):
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    experiment, run_name = unique("sdk3"), "eta-03"
    done = subprocess.run(
        [str(SDK3_PYTHON), str(SCRIPT), experiment, run_name, BUCKET],
        env=_sdk_environment(stack, tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    component = sm.describe_trial_component(TrialComponentName=f"{experiment}-{run_name}")
    assert component["Parameters"]["eta"] == {"NumberValue": 0.3}
    assert component["Parameters"]["objective"] == {"StringValue": "binary:logistic"}
    [auc] = component["Metrics"]
    assert auc["MetricName"] == "auc" and auc["Count"] == 5 and auc["Last"] == pytest.approx(0.9)
    arn = component["TrialComponentArn"]
    produced = sm.list_associations(SourceArn=arn)["AssociationSummaries"]  # the run produced its chart
    assert [a["AssociationType"] for a in produced] == ["Produced"]
    charts = [sm.describe_artifact(ArtifactArn=a["DestinationArn"]) for a in produced]
    assert [c["ArtifactType"] for c in charts] == ["ConfusionMatrix"], charts
    assert charts[0]["Source"]["SourceUri"].startswith(f"s3://{BUCKET}/")
    [summary] = sm.list_trial_components(ExperimentName=experiment)["TrialComponentSummaries"]
    assert summary["TrialComponentName"] == f"{experiment}-{run_name}"
