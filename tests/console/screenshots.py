"""``make screenshots``: PNGs of the console's main pages (docs/img/console-*.png) from a fresh in-process stack with a
small pipeline run, a training job, registered model packages, an endpoint with data capture and a monitoring
execution, an experiment, a feature group and a short DeepRacer run, taken in headless chromium."""

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

from infra.config import StackSettings
from infra.control_plane.server import LocalStack
from tests.console.conftest import chromium_driver
from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE
from tests.integration.feature_store_helpers import create_group, record
from tests.integration.helpers import training_request, wait_training
from tests.integration.test_monitoring import (
    _definition,
    _deploy_with_capture,
    _invoke,
    _make_baseline,
    _now_schedule,
    _rows,
    _wait_execution,
)
from tests.integration.test_rl_deepracer import DEFAULTS, TINY, channel, rl_job_request
from tests.pipelines.conftest import SCRIPT, auc_of, definition, processing, wait

BUCKET = "sagestack-console"
RMSE = [{"Name": "validation:rmse", "Regex": r"validation-rmse:([0-9.]+)"}]


def _clients(url):
    names = ("s3", "sagemaker", "sagemaker-runtime", "sagemaker-metrics", "sagemaker-featurestore-runtime")
    return {
        name: boto3.client(name, endpoint_url=url, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        for name in names
    }


def _populate(clients):
    s3, sm = clients["s3"], clients["sagemaker"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/step.py", Body=SCRIPT)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-1.csv", Body=b"1,0.5\n0,0.1\n")
    code = f"s3://{BUCKET}/code/step.py"
    body = definition(
        [
            processing("Preprocess", code, BUCKET),
            processing("Train", code, BUCKET, env={"AUC": "0.91"}, DependsOn=["Preprocess"]),
            processing("Baseline", code, BUCKET, DependsOn=["Preprocess"]),
            processing("Evaluate", code, BUCKET, env={"AUC": auc_of("Train")}, DependsOn=["Baseline"]),
        ]
    )
    with_parameters = json.loads(body)
    with_parameters["Parameters"] = [{"Name": "AucThreshold", "Type": "Float", "DefaultValue": 0.7}]
    body = json.dumps(with_parameters)
    sm.create_pipeline(PipelineName="credit-risk-demo", PipelineDefinition=body, RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName="credit-risk-demo")["PipelineExecutionArn"]
    wait(sm, arn)
    spec = {"TrainingImage": FAKE_IMAGE, "TrainingInputMode": "File", "MetricDefinitions": RMSE}
    sm.create_training_job(**training_request("xgboost-demo-train", BUCKET, AlgorithmSpecification=spec))
    wait_training(sm, "xgboost-demo-train")
    sm.create_model_package_group(
        ModelPackageGroupName="credit-risk", ModelPackageGroupDescription="credit-risk models"
    )
    for status in ("Approved", "PendingManualApproval"):
        sm.create_model_package(
            ModelPackageGroupName="credit-risk",
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": FAKE_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
    return arn.rsplit("/", 1)[-1]


def _baseline(sm, s3):
    """A data-quality baseline made by the analyzer, as the monitoring tests make it."""
    return _make_baseline(sm, s3, BUCKET, "credit-risk-baseline")


def _monitoring(clients):
    """An endpoint with data capture, shifted traffic and one monitoring execution with drift."""
    sm = clients["sagemaker"]
    endpoint = _deploy_with_capture(sm, BUCKET)
    _invoke(clients["sagemaker-runtime"], endpoint, _rows(60, shift=4.0, missing=0.3, seed=7))
    schedule = _now_schedule(sm, _definition(sm, BUCKET, endpoint, _baseline(sm, clients["s3"])))
    execution = _wait_execution(sm, schedule)
    return endpoint, schedule, execution["ProcessingJobArn"].rsplit("/", 1)[-1]


def _experiment_and_features(clients):
    sm = clients["sagemaker"]
    sm.create_experiment(ExperimentName="credit-risk-lr")
    sm.create_trial(TrialName="credit-risk-lr-trial", ExperimentName="credit-risk-lr")
    start = datetime.now(UTC) - timedelta(minutes=5)
    for lr in (0.05, 0.1, 0.3):
        name = f"lr-{int(lr * 100):03d}"
        sm.create_trial_component(TrialComponentName=name, Parameters={"lr": {"NumberValue": lr}})
        sm.associate_trial_component(TrialComponentName=name, TrialName="credit-risk-lr-trial")
        points = [
            {
                "MetricName": "loss",
                "Timestamp": start + timedelta(seconds=step),
                "Step": step,
                "Value": 1 / (1 + lr * step),
            }
            for step in range(20)
        ]
        for first in range(0, len(points), 10):  # BatchPutMetrics takes 10 points a request
            clients["sagemaker-metrics"].batch_put_metrics(
                TrialComponentName=name, MetricData=points[first : first + 10]
            )
    group = create_group(sm, BUCKET, offline=False)
    runtime = clients["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=group, Record=record("c-42", time.time(), age=51, segment="gold"))
    return group


def _deepracer(clients):
    s3, prefix = clients["s3"], "rl/custom_files"
    for name in ("reward_function.py", "model_metadata.json"):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=(DEFAULTS / name).read_bytes())
    hyperparameters = {"num_episodes_between_training": 4, "batch_size": 64, "lr": 0.0003, "observation_type": "vector"}
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/hyperparameters.json", Body=json.dumps(hyperparameters).encode())
    request = rl_job_request("deepracer-demo", BUCKET, [channel("custom_files", f"s3://{BUCKET}/{prefix}")], TINY)
    clients["sagemaker"].create_training_job(**request)
    wait_training(clients["sagemaker"], "deepracer-demo", timeout=900)


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fake = str(Path(__file__).parents[1] / "integration" / "fake_container.py")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = StackSettings(
            data_dir=Path(data_dir),
            port=0,
            region=REGION,
            extra_images={FAKE_IMAGE: (sys.executable, fake)},
            capture_flush_seconds=0.3,
        )
        stack = LocalStack(settings)
        url = stack.start()
        driver = chromium_driver(1280, 800)
        try:
            clients = _clients(url)
            execution = _populate(clients)
            endpoint, schedule, monitoring_job = _monitoring(clients)
            group = _experiment_and_features(clients)
            _deepracer(clients)
            pages = {
                "pipelines": "/console/pipelines",
                "pipeline": "/console/pipelines/credit-risk-demo",
                "execution": f"/console/pipelines/credit-risk-demo/executions/{execution}",
                "step": f"/console/pipelines/credit-risk-demo/executions/{execution}/steps/Train",
                "jobs": "/console/jobs/processing",
                "training-job": "/console/jobs/training/xgboost-demo-train",
                "models": "/console/models/credit-risk",
                "endpoint": f"/console/endpoints/{endpoint}",
                "drift": f"/console/monitoring/{schedule}/executions/{monitoring_job}",
                "experiment": "/console/experiments/credit-risk-lr",
                "feature-group": f"/console/features/{group}?record=c-42",
                "deepracer": "/console/deepracer/deepracer-demo",
            }
            scroll_to = {"drift": "drift-charts", "deepracer": "track", "endpoint": "captures"}
            for name, path in pages.items():
                driver.get(url + path)
                if name in scroll_to:
                    driver.execute_script(f"document.getElementById('{scroll_to[name]}')?.scrollIntoView()")
                time.sleep(0.3)  # fonts and layout settle before the shot
                driver.save_screenshot(str(out / f"console-{name}.png"))
                print(out / f"console-{name}.png")
        finally:
            driver.quit()
            stack.stop()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img")
