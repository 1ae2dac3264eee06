"""ModelBiasMonitor and ModelExplainabilityMonitor through the SDK v2, unchanged, on German credit (200 rows):
suggest_baseline (a Clarify job), an endpoint with data capture, a NOW schedule over the traffic, list_executions
and the latest violations, CloudWatch metrics, and a monitored endpoint whose capture holds only the traffic (the
Clarify jobs call shadow endpoints). Polling waits, no time assertions.
"""

import io
import json
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, unique
from tests.integration.helpers import wait_schedule_execution

pytestmark = pytest.mark.expensive

DATA = Path(__file__).resolve().parents[2] / "data" / "german_credit.csv"
ROWS = 200
LABEL = "risk"


@pytest.fixture(scope="module")
def credit(s3, bucket):
    frame = pd.read_csv(DATA).head(ROWS)
    frame["sex"] = (frame["sex"] == "female").astype(int)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("category").cat.codes
    key = "monitor-bias/credit/data.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=frame.to_csv(index=False).encode())
    return frame, f"s3://{bucket}/{key}"


@pytest.fixture(scope="module")
def model_data(s3, bucket, credit, tmp_path_factory):
    import xgboost

    frame, _ = credit
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0},
        xgboost.DMatrix(frame.drop(columns=[LABEL]).values, label=frame[LABEL].values),
        num_boost_round=10,
    )
    path = tmp_path_factory.mktemp("model") / "xgboost-model"
    booster.save_model(str(path))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(path, arcname="xgboost-model")
    s3.put_object(Bucket=bucket, Key="monitor-bias/model/model.tar.gz", Body=archive.getvalue())
    return f"s3://{bucket}/monitor-bias/model/model.tar.gz"


def _deploy(session, bucket, model_data):
    from sagemaker.model import Model
    from sagemaker.model_monitor import DataCaptureConfig
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    name = unique("bias-mon")
    model = Model(image_uri=XGBOOST_IMAGE, model_data=model_data, role=ROLE, sagemaker_session=session, name=name)
    model.deploy(
        1,
        "ml.m5.large",
        endpoint_name=name,
        data_capture_config=DataCaptureConfig(
            enable_capture=True, sampling_percentage=100, destination_s3_uri=f"s3://{bucket}/monitor-bias/capture"
        ),
    )
    return Predictor(name, sagemaker_session=session, serializer=CSVSerializer()), name


def _clarify_configs(credit, output, model_name):
    from sagemaker import clarify

    frame, uri = credit
    data = clarify.DataConfig(
        s3_data_input_path=uri, s3_output_path=output, label=LABEL, headers=list(frame.columns), dataset_type="text/csv"
    )
    model = clarify.ModelConfig(
        model_name=model_name, instance_type="ml.m5.large", instance_count=1, accept_type="text/csv"
    )
    return data, model


def _captured_records(s3, bucket, predictor, name, row):
    """Every capture record of endpoint ``name``, once a marker request sent now is in S3 (captures are written in
    order, so every earlier record is then there too)."""
    marker = f"{name}-capture-marker"
    predictor.predict(row, inference_id=marker)
    deadline = time.monotonic() + 120
    while True:
        records = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"monitor-bias/capture/{name}/"):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                records += [json.loads(line) for line in body.splitlines() if line.strip()]
        if any(r["eventMetadata"].get("inferenceId") == marker for r in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"the marker request to {name} was never captured")
        time.sleep(0.3)


def _metric_names(stack_url, namespace, endpoint):
    import boto3

    cloudwatch = boto3.client(
        "cloudwatch", endpoint_url=stack_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    metrics = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    mine = [m for m in metrics if {"Name": "Endpoint", "Value": endpoint} in m["Dimensions"]]
    return cloudwatch, mine


def test_model_bias_monitor_flags_a_facet_that_drifted(sdk_env, stack_url, s3, credit, model_data):
    from sagemaker import clarify
    from sagemaker.model_monitor import CronExpressionGenerator, EndpointInput, ModelBiasMonitor
    from sagemaker.s3 import S3Downloader, S3Uploader

    session, bucket = sdk_env
    frame, _ = credit
    predictor, name = _deploy(session, bucket, model_data)
    monitor = ModelBiasMonitor(role=ROLE, max_runtime_in_seconds=600, sagemaker_session=session)
    try:
        data, model = _clarify_configs(credit, f"s3://{bucket}/monitor-bias/{name}/baseline", name)
        bias = clarify.BiasConfig(label_values_or_threshold=[1], facet_name="sex", facet_values_or_threshold=[1])
        monitor.suggest_baseline(
            data_config=data,
            bias_config=bias,
            model_config=model,
            model_predicted_label_config=clarify.ModelPredictedLabelConfig(probability_threshold=0.5),
            wait=True,
            logs=False,
        )
        baseline = monitor.suggested_constraints().body_dict
        (baseline_ci,) = [
            m["value"]
            for m in baseline["pre_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
            if m["name"] == "CI"
        ]

        # traffic: every man but only ten women, so class imbalance (CI) on sex is far worse than in the baseline
        traffic = pd.concat([frame[frame["sex"] == 0], frame[frame["sex"] == 1].head(10)])
        truth = []
        for index, row in traffic.iterrows():
            inference_id = f"{name}-{index}"
            predictor.predict(row.drop(LABEL).tolist(), inference_id=inference_id)
            record = {"groundTruthData": {"data": str(row[LABEL]), "encoding": "CSV"}, "eventVersion": "0"}
            truth.append(json.dumps({**record, "eventMetadata": {"eventId": inference_id}}))
        truth_uri = f"s3://{bucket}/monitor-bias/{name}/ground-truth"
        S3Uploader.upload_string_as_file_body(
            "\n".join(truth), f"{truth_uri}/{datetime.now(UTC):%Y/%m/%d/%H}/truth.jsonl", sagemaker_session=session
        )
        monitor.create_monitoring_schedule(
            endpoint_input=EndpointInput(endpoint_name=name, destination="/opt/ml/processing/input/endpoint"),
            ground_truth_input=truth_uri,
            output_s3_uri=f"s3://{bucket}/monitor-bias/{name}/reports",
            schedule_cron_expression=CronExpressionGenerator.now(),
            data_analysis_start_time="-PT1H",
            data_analysis_end_time="-PT0H",
        )
        summary = wait_schedule_execution(monitor)
        assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations", summary.get("FailureReason")
        assert summary["MonitoringType"] == "ModelBias"
        [execution] = monitor.list_executions()
        assert execution.describe()["ProcessingJobStatus"] == "Completed"

        violations = monitor.latest_monitoring_constraint_violations().body_dict["violations"]
        assert {"facet": "sex", "facet_value": "1", "metric_name": "CI"} in [
            {k: v[k] for k in ("facet", "facet_value", "metric_name")} for v in violations
        ]
        assert {v["constraint_check_type"] for v in violations} == {"bias_drift_check"}
        output = execution.output.destination
        analysis = json.loads(S3Downloader.read_file(f"{output}/analysis.json", sagemaker_session=session))
        (ci,) = [
            m["value"]
            for m in analysis["pre_training_bias_metrics"]["facets"]["sex"][0]["metrics"]
            if m["name"] == "CI"
        ]
        assert ci == pytest.approx((len(traffic) - 20) / len(traffic))
        assert abs(ci) > abs(baseline_ci)
        assert analysis["post_training_bias_metrics"]["facets"]["sex"][0]["metrics"]

        cloudwatch, metrics = _metric_names(stack_url, "aws/sagemaker/Endpoints/bias-metrics", name)
        ci_metric = next(m for m in metrics if m["MetricName"] == "bias_metric_CI")
        stages = {d["Value"] for m in metrics for d in m["Dimensions"] if d["Name"] == "BiasStage"}
        assert stages == {"Pre-training", "Post-training"}
        points = cloudwatch.get_metric_statistics(
            Namespace="aws/sagemaker/Endpoints/bias-metrics",
            MetricName="bias_metric_CI",
            Dimensions=ci_metric["Dimensions"],
            StartTime=datetime(2000, 1, 1),
            EndTime=datetime(2100, 1, 1),
            Period=86400,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert points[0]["Maximum"] == pytest.approx(ci)
        records = _captured_records(s3, bucket, predictor, name, traffic.iloc[0].drop(LABEL).tolist())
        assert len(records) == len(traffic) + 1
    finally:
        if monitor.monitoring_schedule_name:
            monitor.delete_monitoring_schedule()
        predictor.delete_endpoint()


def test_model_explainability_monitor_flags_attribution_drift(sdk_env, stack_url, s3, credit, model_data):
    from sagemaker import clarify
    from sagemaker.model_monitor import CronExpressionGenerator, ModelExplainabilityMonitor
    from sagemaker.s3 import S3Downloader

    session, bucket = sdk_env
    frame, _ = credit
    features = frame.drop(columns=[LABEL])
    background = features.median().round().astype(int)
    predictor, name = _deploy(session, bucket, model_data)
    monitor = ModelExplainabilityMonitor(role=ROLE, max_runtime_in_seconds=600, sagemaker_session=session)
    try:
        data, model = _clarify_configs(credit, f"s3://{bucket}/monitor-bias/{name}/baseline", name)
        shap = clarify.SHAPConfig(baseline=[background.tolist()], num_samples=32, agg_method="mean_abs", seed=0)
        monitor.suggest_baseline(
            data_config=data, explainability_config=shap, model_config=model, wait=True, logs=False
        )
        attributions = monitor.suggested_constraints().body_dict["explanations"]["kernel_shap"]["label0"]
        top = sorted(attributions["global_shap_values"], key=attributions["global_shap_values"].get, reverse=True)[:5]

        # traffic: the five most important features pinned to the SHAP background, so they explain nothing any more
        drifted = features.head(60).copy()
        drifted[top] = background[top].values
        for _, row in drifted.iterrows():
            predictor.predict(row.tolist())
        monitor.create_monitoring_schedule(
            endpoint_input=name,
            output_s3_uri=f"s3://{bucket}/monitor-bias/{name}/reports",
            schedule_cron_expression=CronExpressionGenerator.now(),
            data_analysis_start_time="-PT1H",
            data_analysis_end_time="-PT0H",
        )
        summary = wait_schedule_execution(monitor)
        assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations", summary.get("FailureReason")
        assert summary["MonitoringType"] == "ModelExplainability"
        [execution] = monitor.list_executions()
        [violation] = monitor.latest_monitoring_constraint_violations().body_dict["violations"]
        assert violation["label"] == "label0"
        assert violation["metric_name"] == "shap"
        assert violation["constraint_check_type"] == "feature_attribution_drift_check"
        analysis = json.loads(
            S3Downloader.read_file(f"{execution.output.destination}/analysis.json", sagemaker_session=session)
        )
        current = analysis["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
        assert set(current) == set(features.columns)
        assert all(current[feature] == pytest.approx(0.0, abs=1e-9) for feature in top)

        _, metrics = _metric_names(stack_url, "aws/sagemaker/Endpoints/explainability-metrics", name)
        assert {m["MetricName"] for m in metrics} == {f"feature_{f}" for f in features.columns} | {"ExpectedValue"}

        # the SHAP job called a shadow endpoint of the model: the monitored endpoint captured the traffic and the marker
        records = _captured_records(s3, bucket, predictor, name, drifted.iloc[0].tolist())
        assert len(records) == len(drifted) + 1
        assert {r["captureData"]["endpointInput"]["data"].count("\n") for r in records} == {0}
    finally:
        if monitor.monitoring_schedule_name:
            monitor.delete_monitoring_schedule()
        predictor.delete_endpoint()
