"""Model Monitor through the SageMaker SDK v2, unchanged: deploy with DataCaptureConfig, suggest_baseline (a
processing job on the analyzer), a NOW schedule over a window, list_executions and the latest statistics and
violations; ModelQualityMonitor with ground truth in S3. Tiny data, polling waits, no time assertions.
"""

import json
import random
import time
from datetime import UTC, datetime

import pytest

from tests.integration.conftest import FAKE_IMAGE, ROLE, unique
from tests.integration.helpers import wait_schedule_execution

pytestmark = pytest.mark.expensive


def _deploy(session, bucket, capture_options):
    from sagemaker.model import Model
    from sagemaker.model_monitor import DataCaptureConfig
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    name = unique("sdk-mon")
    Model(image_uri=FAKE_IMAGE, role=ROLE, sagemaker_session=session).deploy(
        1,
        "ml.m5.large",
        endpoint_name=name,
        data_capture_config=DataCaptureConfig(
            enable_capture=True,
            sampling_percentage=100,
            destination_s3_uri=f"s3://{bucket}/sdk-monitor/capture",
            capture_options=capture_options,
        ),
    )
    return Predictor(name, sagemaker_session=session, serializer=CSVSerializer())


def _latest_done(monitor, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        executions = monitor.list_executions()
        if executions:
            status = executions[-1].describe()["ProcessingJobStatus"]
            if status not in ("InProgress", "Stopping"):
                return executions
        if time.monotonic() > deadline:
            raise AssertionError(f"no finished execution for {monitor.monitoring_schedule_name}")
        time.sleep(0.5)


def test_default_model_monitor_baseline_now_schedule_and_violations(sdk_env, tmp_path):
    from sagemaker.model_monitor import CronExpressionGenerator, DefaultModelMonitor
    from sagemaker.model_monitor.dataset_format import DatasetFormat

    session, bucket = sdk_env
    rnd = random.Random(1)
    baseline = tmp_path / "baseline.csv"
    baseline.write_text(
        "\n".join(f"{rnd.gauss(50, 5):.3f},{rnd.randint(1, 4)}" for _ in range(300)) + "\n", encoding="utf-8"
    )
    predictor = _deploy(session, bucket, ["REQUEST"])
    monitor = DefaultModelMonitor(
        role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", max_runtime_in_seconds=600, sagemaker_session=session
    )
    try:
        monitor.suggest_baseline(
            baseline_dataset=str(baseline),
            dataset_format=DatasetFormat.csv(header=False),
            output_s3_uri=f"s3://{bucket}/sdk-monitor/baseline",
            wait=True,
            logs=False,
        )
        statistics = monitor.baseline_statistics().body_dict
        assert statistics["dataset"]["item_count"] == 300
        assert [f["name"] for f in statistics["features"]] == ["_c0", "_c1"]
        constraints = monitor.suggested_constraints().body_dict
        assert {f["name"]: f["inferred_type"] for f in constraints["features"]} == {
            "_c0": "Fractional",
            "_c1": "Integral",
        }

        for _ in range(40):  # drifted: _c0 shifted by 6 standard deviations, _c1 a value never seen (9)
            predictor.predict(f"{rnd.gauss(80, 5):.3f},9")
        monitor.create_monitoring_schedule(
            endpoint_input=predictor.endpoint_name,
            output_s3_uri=f"s3://{bucket}/sdk-monitor/reports",
            schedule_cron_expression=CronExpressionGenerator.now(),
            data_analysis_start_time="-PT1H",
            data_analysis_end_time="-PT0H",
            enable_cloudwatch_metrics=True,
        )
        summary = wait_schedule_execution(monitor)
        assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations", summary.get("FailureReason")
        executions = _latest_done(monitor)
        assert len(executions) == 1
        assert executions[-1].describe()["ProcessingJobStatus"] == "Completed"

        latest = monitor.latest_monitoring_statistics().body_dict
        assert latest["dataset"]["item_count"] == 40
        violations = monitor.latest_monitoring_constraint_violations().body_dict["violations"]
        checks = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
        assert ("_c0", "baseline_drift_check") in checks
        assert ("_c1", "categorical_values_check") in checks or ("_c1", "baseline_drift_check") in checks
        described = monitor.describe_schedule()
        assert described["MonitoringScheduleStatus"] == "Scheduled"
        assert described["MonitoringType"] == "DataQuality"
    finally:
        if monitor.monitoring_schedule_name:
            monitor.delete_monitoring_schedule()
        predictor.delete_endpoint()


def test_model_quality_monitor_with_ground_truth_in_s3(sdk_env, tmp_path):
    from sagemaker.model_monitor import CronExpressionGenerator, EndpointInput, ModelQualityMonitor
    from sagemaker.model_monitor.dataset_format import DatasetFormat
    from sagemaker.s3 import S3Uploader

    session, bucket = sdk_env
    baseline = tmp_path / "validation_with_predictions.csv"
    baseline.write_text(
        "prediction,label\n" + "".join(f"{5 + i % 7},{5 + i % 7}\n" for i in range(60)), encoding="utf-8"
    )
    predictor = _deploy(session, bucket, ["REQUEST", "RESPONSE"])
    monitor = ModelQualityMonitor(
        role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", max_runtime_in_seconds=600, sagemaker_session=session
    )
    try:
        monitor.suggest_baseline(
            baseline_dataset=str(baseline),
            dataset_format=DatasetFormat.csv(header=True),
            problem_type="Regression",
            inference_attribute="prediction",
            ground_truth_attribute="label",
            output_s3_uri=f"s3://{bucket}/sdk-monitor/mq-baseline",
            wait=True,
            logs=False,
        )
        constraints = monitor.suggested_constraints().body_dict
        assert constraints["regression_constraints"]["mae"]["comparison_operator"] == "GreaterThanThreshold"

        # the fake model answers {"size": <body length>}; the ground truth is that length plus 2
        ground_truth = []
        for i in range(30):
            inference_id = f"{predictor.endpoint_name}-{i}"
            body = "y" * (5 + i % 7)
            predictor.predict(body, inference_id=inference_id)
            record = {"groundTruthData": {"data": str(len(body) + 2), "encoding": "CSV"}}
            ground_truth.append(json.dumps({**record, "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"}))
        truth_uri = f"s3://{bucket}/sdk-monitor/ground-truth/{predictor.endpoint_name}"
        S3Uploader.upload_string_as_file_body(
            "\n".join(ground_truth),
            f"{truth_uri}/{datetime.now(UTC):%Y/%m/%d/%H}/truth.jsonl",
            sagemaker_session=session,
        )
        monitor.create_monitoring_schedule(
            endpoint_input=EndpointInput(
                endpoint_name=predictor.endpoint_name,
                destination="/opt/ml/processing/input_data",
                inference_attribute="size",
            ),
            ground_truth_input=truth_uri,
            problem_type="Regression",
            output_s3_uri=f"s3://{bucket}/sdk-monitor/mq-reports",
            schedule_cron_expression=CronExpressionGenerator.now(),
            data_analysis_start_time="-PT1H",
            data_analysis_end_time="-PT0H",
        )
        summary = wait_schedule_execution(monitor)
        assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations", summary.get("FailureReason")
        assert summary["MonitoringType"] == "ModelQuality"
        [execution] = _latest_done(monitor)
        statistics = execution.statistics().body_dict
        assert statistics["regression_metrics"]["mae"]["value"] == pytest.approx(2.0)
        violations = execution.constraint_violations().body_dict["violations"]
        assert {v["metric_name"] for v in violations} >= {"mae", "rmse"}
    finally:
        if monitor.monitoring_schedule_name:
            monitor.delete_monitoring_schedule()
        predictor.delete_endpoint()
