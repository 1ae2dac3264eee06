"""Model Monitor on the stack: job definitions, schedules (cron and NOW), executions as analyzer processing jobs,
their outputs, statuses and CloudWatch metrics. Raw boto3; tiny data; every wait polls, nothing asserts on time.
"""

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, ROLE, SKLEARN_IMAGE, unique
from tests.integration.helpers import error_code, wait_endpoint, wait_processing

ANALYZER = "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
TERMINAL = ("Completed", "CompletedWithViolations", "Failed", "Stopped")


def _deploy_with_capture(sm, bucket, modes=("Input",)):
    model = unique("mon-model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": FAKE_IMAGE})
    config = unique("mon-cfg")
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/monitoring/capture",
            "CaptureOptions": [{"CaptureMode": mode} for mode in modes],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        },
    )
    name = unique("mon-ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name


def _rows(count, shift=0.0, missing=0.0, seed=0):
    rnd = random.Random(seed)
    rows = []
    for _ in range(count):
        first = "" if rnd.random() < missing else f"{rnd.gauss(10.0 + shift, 1.0):.4f}"
        rows.append(f"{first},{rnd.choice(['a', 'b', 'c'])}")
    return rows


def _make_baseline(sm, s3, bucket, name):
    """A data quality baseline (statistics.json + constraints.json) made by the analyzer from 300 CSV rows."""
    s3.put_object(Bucket=bucket, Key="monitoring/baseline-data/data.csv", Body="\n".join(_rows(300)).encode())
    output = f"s3://{bucket}/monitoring/baseline/{name}"
    local = "/opt/ml/processing/input/baseline_dataset_input"
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": ANALYZER},
        ProcessingInputs=[
            {
                "InputName": "baseline_dataset_input",
                "S3Input": {
                    "S3Uri": f"s3://{bucket}/monitoring/baseline-data",
                    "LocalPath": local,
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "monitoring_output",
                    "S3Output": {"S3Uri": output, "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 1}
        },
        Environment={
            "dataset_format": json.dumps({"csv": {"header": False}}),
            "dataset_source": local,
            "output_path": "/opt/ml/processing/output",
            "publish_cloudwatch_metrics": "Disabled",
        },
    )
    described = wait_processing(sm, name, timeout=300)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    return {"job": name, "statistics": f"{output}/statistics.json", "constraints": f"{output}/constraints.json"}


@pytest.fixture(scope="module")
def baseline(sm, s3, bucket):
    return _make_baseline(sm, s3, bucket, unique("mon-baseline"))


@pytest.fixture(scope="module")
def endpoint(sm, bucket):
    name = _deploy_with_capture(sm, bucket)
    yield name
    sm.delete_endpoint(EndpointName=name)


def _definition(sm, bucket, endpoint_name, baseline, **overrides):
    name = unique("dq-def")
    request = {
        "JobDefinitionName": name,
        "DataQualityBaselineConfig": {
            "ConstraintsResource": {"S3Uri": baseline["constraints"]},
            "StatisticsResource": {"S3Uri": baseline["statistics"]},
        },
        "DataQualityAppSpecification": {"ImageUri": ANALYZER},
        "DataQualityJobInput": {
            "EndpointInput": {"EndpointName": endpoint_name, "LocalPath": "/opt/ml/processing/input/endpoint"}
        },
        "DataQualityJobOutputConfig": {
            "MonitoringOutputs": [
                {
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/monitoring/reports",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    }
                }
            ]
        },
        "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 1}},
        "RoleArn": ROLE,
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    request.update(overrides)
    sm.create_data_quality_job_definition(**request)
    return name


def _now_schedule(sm, definition, start="-PT1H", end="-PT0H", kind="DataQuality"):
    name = unique("sched")
    sm.create_monitoring_schedule(
        MonitoringScheduleName=name,
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": start, "DataAnalysisEndTime": end},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": kind,
        },
    )
    return name


def _wait_execution(sm, schedule, count=1, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        summaries = sm.list_monitoring_executions(MonitoringScheduleName=schedule)["MonitoringExecutionSummaries"]
        done = [s for s in summaries if s["MonitoringExecutionStatus"] in TERMINAL]
        if len(done) >= count or time.monotonic() > deadline:
            assert len(done) >= count, summaries
            return done[0]
        time.sleep(0.2)


def _invoke(smr, endpoint_name, rows):
    for row in rows:
        smr.invoke_endpoint(EndpointName=endpoint_name, Body=row.encode(), ContentType="text/csv")


def _json(s3, uri):
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _output_uri(sm, execution):
    job = sm.describe_processing_job(ProcessingJobName=execution["ProcessingJobArn"].rsplit("/", 1)[1])
    return job, job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]


def test_now_schedule_runs_the_analyzer_on_the_window_and_reports_drift(sm, smr, s3, bucket, baseline, stack_url):
    endpoint_name = _deploy_with_capture(sm, bucket)
    try:
        _invoke(smr, endpoint_name, _rows(60, shift=4.0, missing=0.3, seed=7))
        definition = _definition(sm, bucket, endpoint_name, baseline)
        schedule = _now_schedule(sm, definition)
        described = sm.describe_monitoring_schedule(MonitoringScheduleName=schedule)
        assert described["MonitoringScheduleStatus"] == "Scheduled" and described["MonitoringType"] == "DataQuality"
        assert described["EndpointName"] == endpoint_name
        execution = _wait_execution(sm, schedule)
        assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")
        assert execution["MonitoringJobDefinitionName"] == definition and execution["EndpointName"] == endpoint_name

        job, output = _output_uri(sm, execution)
        scheduled = execution["ScheduledTime"].astimezone(UTC)
        assert output == (f"s3://{bucket}/monitoring/reports/{endpoint_name}/{schedule}/{scheduled:%Y/%m/%d/%H}"), (
            "outputs are laid out as <S3Uri>/<endpoint>/<schedule>/yyyy/mm/dd/hh"
        )
        env = job["Environment"]
        assert env["sagemaker_endpoint_name"] == endpoint_name and env["sagemaker_monitoring_schedule_name"] == schedule
        assert env["dataset_source"] == "/opt/ml/processing/input/endpoint" and env["start_time"] < env["end_time"]
        assert env["baseline_constraints"] == "/opt/ml/processing/baseline/constraints/constraints.json"
        assert json.loads(env["dataset_format"]) == {
            "sagemakerCaptureJson": {"captureIndexNames": ["endpointInput", "endpointOutput"]}
        }
        capture_inputs = [i for i in job["ProcessingInputs"] if i["InputName"].startswith("endpoint_input")]
        assert capture_inputs and all(
            i["S3Input"]["LocalPath"].startswith(f"/opt/ml/processing/input/endpoint/{endpoint_name}/AllTraffic/")
            for i in capture_inputs
        )
        assert job["ExitMessage"].startswith("CompletedWithViolations")

        violations = _json(s3, f"{output}/constraint_violations.json")["violations"]
        checks = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
        assert ("_c0", "baseline_drift_check") in checks and ("_c0", "completeness_check") in checks
        statistics = _json(s3, f"{output}/statistics.json")
        assert statistics["dataset"]["item_count"] == 60

        summary = sm.describe_monitoring_schedule(MonitoringScheduleName=schedule)["LastMonitoringExecutionSummary"]
        assert summary["MonitoringExecutionStatus"] == "CompletedWithViolations"
        assert summary["ProcessingJobArn"] == execution["ProcessingJobArn"]

        import boto3

        cloudwatch = boto3.client("cloudwatch", endpoint_url=stack_url, region_name="us-east-1")
        stats = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="feature_baseline_drift__c0",
            Dimensions=[
                {"Name": "Endpoint", "Value": endpoint_name},
                {"Name": "MonitoringSchedule", "Value": schedule},
            ],
            StartTime=datetime.now(UTC) - timedelta(hours=3),
            EndTime=datetime.now(UTC) + timedelta(hours=1),
            Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]
        assert stats and max(p["Maximum"] for p in stats) > 0.5
    finally:
        sm.delete_endpoint(EndpointName=endpoint_name)


def test_an_empty_window_completes_with_a_no_data_message(sm, bucket, baseline, endpoint):
    definition = _definition(sm, bucket, endpoint, baseline)
    schedule = _now_schedule(sm, definition, start="-PT23H", end="-PT22H")
    execution = _wait_execution(sm, schedule)
    assert execution["MonitoringExecutionStatus"] == "Completed", execution.get("FailureReason")
    job, _ = _output_uri(sm, execution)
    assert "no data to analyze" in job["ExitMessage"]


def test_a_missing_baseline_fails_the_execution_with_its_reason(sm, bucket, baseline, endpoint):
    broken = {**baseline, "constraints": f"s3://{bucket}/monitoring/nowhere/constraints.json"}
    definition = _definition(sm, bucket, endpoint, broken)
    schedule = _now_schedule(sm, definition)
    execution = _wait_execution(sm, schedule)
    assert execution["MonitoringExecutionStatus"] == "Failed"
    assert "nowhere/constraints.json" in execution["FailureReason"]
    assert "ProcessingJobArn" not in execution


def test_cron_schedule_fires_when_the_clock_reaches_its_hour(stack, sm, smr, s3, bucket, baseline, endpoint):
    schedules = stack.backend().monitoring_schedules
    _invoke(smr, endpoint, _rows(20, seed=3))
    definition = _definition(sm, bucket, endpoint, baseline)
    name = unique("hourly")
    sm.create_monitoring_schedule(
        MonitoringScheduleName=name,
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": "DataQuality",
        },
    )
    assert sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"] == []
    top = (schedules.clock.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    assert schedules.tick(at=top - timedelta(seconds=1)) == []  # not due yet

    sm.stop_monitoring_schedule(MonitoringScheduleName=name)
    assert [e for e in schedules.tick(at=top + timedelta(seconds=5)) if e.schedule_name == name] == []
    sm.start_monitoring_schedule(MonitoringScheduleName=name)
    assert sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleStatus"] == "Scheduled"

    fired = [e for e in schedules.tick(at=top + timedelta(seconds=5)) if e.schedule_name == name]
    assert [e.scheduled_time for e in fired] == [top]
    execution = _wait_execution(sm, name)
    assert execution["MonitoringExecutionStatus"] == "Completed", execution.get("FailureReason")
    assert execution["ScheduledTime"].astimezone(UTC) == top
    job, output = _output_uri(sm, execution)
    assert job["Environment"]["start_time"] == f"{top - timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
    assert job["Environment"]["end_time"] == f"{top:%Y-%m-%dT%H:%M:%SZ}"
    assert output.endswith(f"/{endpoint}/{name}/{top:%Y/%m/%d/%H}")
    assert _json(s3, f"{output}/statistics.json")["dataset"]["item_count"] >= 20
    # the next fire time is the following hour: ticking again at the same moment starts nothing
    assert [e for e in schedules.tick(at=top + timedelta(seconds=6)) if e.schedule_name == name] == []
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)


def test_schedule_and_definition_api(sm, bucket, baseline, endpoint):
    definition = _definition(sm, bucket, endpoint, baseline)
    described = sm.describe_data_quality_job_definition(JobDefinitionName=definition)
    assert described["JobDefinitionArn"].endswith(f"data-quality-job-definition/{definition}")
    assert described["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == endpoint
    listed = sm.list_data_quality_job_definitions(EndpointName=endpoint, NameContains=definition)
    assert [d["MonitoringJobDefinitionName"] for d in listed["JobDefinitionSummaries"]] == [definition]

    def create(name, **schedule_config):
        sm.create_monitoring_schedule(
            MonitoringScheduleName=name,
            MonitoringScheduleConfig={
                "ScheduleConfig": schedule_config,
                "MonitoringJobDefinitionName": definition,
                "MonitoringType": "DataQuality",
            },
        )

    for bad in (
        {"ScheduleExpression": "cron(0 12 * * ? *)"},
        {"ScheduleExpression": "rate(1 hour)"},
        {"ScheduleExpression": "NOW"},
        {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT1H", "DataAnalysisEndTime": "PT1H"},
        {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-P2D", "DataAnalysisEndTime": "-PT0H"},
        {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT1H", "DataAnalysisEndTime": "-PT2H"},
        {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "yesterday", "DataAnalysisEndTime": "-PT0H"},
    ):
        with pytest.raises(ClientError) as raised:
            create(unique("bad"), **bad)
        assert error_code(raised) == "ValidationException", bad

    name = unique("daily")
    create(name, ScheduleExpression="cron(0 5 ? * * *)")
    with pytest.raises(ClientError) as raised:
        create(name, ScheduleExpression="cron(0 5 ? * * *)")
    assert error_code(raised) == "ResourceInUse"
    listed = sm.list_monitoring_schedules(EndpointName=endpoint, NameContains=name)["MonitoringScheduleSummaries"]
    assert [(s["MonitoringScheduleName"], s["MonitoringJobDefinitionName"]) for s in listed] == [(name, definition)]
    sm.update_monitoring_schedule(
        MonitoringScheduleName=name,
        MonitoringScheduleConfig={
            "ScheduleConfig": {"ScheduleExpression": "cron(0 0/6 ? * * *)"},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": "DataQuality",
        },
    )
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 0/6 ? * * *)"
    assert "LastMonitoringExecutionSummary" not in described
    sm.stop_monitoring_schedule(MonitoringScheduleName=name)
    assert sm.describe_monitoring_schedule(MonitoringScheduleName=name)["MonitoringScheduleStatus"] == "Stopped"
    assert [
        s["MonitoringScheduleName"]
        for s in sm.list_monitoring_schedules(StatusEquals="Stopped")["MonitoringScheduleSummaries"]
    ] == [name]

    with pytest.raises(ClientError) as raised:
        sm.delete_data_quality_job_definition(JobDefinitionName=definition)
    assert error_code(raised) == "ResourceInUse"
    sm.delete_monitoring_schedule(MonitoringScheduleName=name)
    with pytest.raises(ClientError) as raised:
        sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert error_code(raised) == "ResourceNotFound"
    sm.delete_data_quality_job_definition(JobDefinitionName=definition)
    with pytest.raises(ClientError) as raised:
        sm.describe_data_quality_job_definition(JobDefinitionName=definition)
    assert error_code(raised) == "ResourceNotFound"


def test_schedule_for_an_unknown_endpoint_is_refused(sm, bucket, baseline):
    definition = _definition(sm, bucket, "no-such-endpoint-anywhere", baseline)
    with pytest.raises(ClientError) as raised:
        _now_schedule(sm, definition)
    assert error_code(raised) == "ValidationException"
    assert "no-such-endpoint-anywhere" in raised.value.response["Error"]["Message"]


def test_inline_job_definition_runs_too(sm, smr, bucket, baseline, endpoint):
    _invoke(smr, endpoint, _rows(10, seed=11))
    name = unique("inline")
    sm.create_monitoring_schedule(
        MonitoringScheduleName=name,
        MonitoringScheduleConfig={
            "ScheduleConfig": {
                "ScheduleExpression": "NOW",
                "DataAnalysisStartTime": "-PT1H",
                "DataAnalysisEndTime": "-PT0H",
            },
            "MonitoringJobDefinition": {
                "BaselineConfig": {
                    "ConstraintsResource": {"S3Uri": baseline["constraints"]},
                    "StatisticsResource": {"S3Uri": baseline["statistics"]},
                },
                "MonitoringInputs": [
                    {"EndpointInput": {"EndpointName": endpoint, "LocalPath": "/opt/ml/processing/input/endpoint"}}
                ],
                "MonitoringOutputConfig": {
                    "MonitoringOutputs": [
                        {
                            "S3Output": {
                                "S3Uri": f"s3://{bucket}/monitoring/inline",
                                "LocalPath": "/opt/ml/processing/output",
                            }
                        }
                    ]
                },
                "MonitoringResources": {
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
                },
                "MonitoringAppSpecification": {"ImageUri": ANALYZER},
                "Environment": {"publish_cloudwatch_metrics": "Disabled"},
                "RoleArn": ROLE,
            },
        },
    )
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringType"] == "DataQuality" and described["EndpointName"] == endpoint
    execution = _wait_execution(sm, name)
    assert execution["MonitoringExecutionStatus"] in ("Completed", "CompletedWithViolations"), execution
    assert "MonitoringJobDefinitionName" not in execution
    job, _ = _output_uri(sm, execution)
    assert job["Environment"]["publish_cloudwatch_metrics"] == "Disabled"


def test_byoc_image_metrics_are_forwarded_and_its_violations_set_the_status(sm, s3, bucket, stack_url, endpoint):
    script = (
        "import json, os, pathlib\n"
        "base = pathlib.Path(os.environ.get('SAGEMAKER_BASE_DIR', '/opt/ml'))\n"
        "out = base / 'processing' / 'output'\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'constraint_violations.json').write_text(json.dumps({'violations': [\n"
        "  {'feature_name': 'x', 'constraint_check_type': 'custom', 'description': 'too many x'}]}))\n"
        "metrics = base / 'output' / 'metrics' / 'cloudwatch'\n"
        "metrics.mkdir(parents=True, exist_ok=True)\n"
        "(metrics / 'custom.jsonl').write_text(json.dumps({'MetricName': 'custom_metric', 'Value': 42.0,\n"
        "  'Timestamp': os.environ['end_time'], 'Namespace': 'byoc/metrics',\n"
        "  'Dimensions': [{'Name': 'Endpoint', 'Value': os.environ['sagemaker_endpoint_name']}]}) + '\\n')\n"
    )
    s3.put_object(Bucket=bucket, Key="monitoring/byoc/byoc.py", Body=script.encode())
    # the script is staged as the post-analytics script; the entrypoint runs it (under SAGEMAKER_BASE_DIR if set)
    run = (
        "import os,runpy;p=os.environ['post_analytics_processor_script'];"
        "runpy.run_path(p.replace('/opt/ml',os.environ.get('SAGEMAKER_BASE_DIR','/opt/ml'),1))"
    )
    definition = unique("byoc")
    sm.create_data_quality_job_definition(
        JobDefinitionName=definition,
        DataQualityAppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "-c", run],
            "PostAnalyticsProcessorSourceUri": f"s3://{bucket}/monitoring/byoc/byoc.py",
        },
        DataQualityJobInput={
            "EndpointInput": {"EndpointName": endpoint, "LocalPath": "/opt/ml/processing/input/endpoint"}
        },
        DataQualityJobOutputConfig={
            "MonitoringOutputs": [
                {"S3Output": {"S3Uri": f"s3://{bucket}/monitoring/byoc", "LocalPath": "/opt/ml/processing/output"}}
            ]
        },
        DataQualityBaselineConfig={"ConstraintsResource": {"S3Uri": f"s3://{bucket}/data/train/part-1.csv"}},
        JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        RoleArn=ROLE,
    )
    schedule = _now_schedule(sm, definition)
    execution = _wait_execution(sm, schedule)
    assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")

    import boto3

    cloudwatch = boto3.client("cloudwatch", endpoint_url=stack_url, region_name="us-east-1")
    points = cloudwatch.get_metric_statistics(
        Namespace="byoc/metrics",
        MetricName="custom_metric",
        Dimensions=[{"Name": "Endpoint", "Value": endpoint}],
        StartTime=datetime.now(UTC) - timedelta(hours=3),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=3600,
        Statistics=["Maximum", "SampleCount"],
    )["Datapoints"]
    assert [(p["Maximum"], p["SampleCount"]) for p in points] == [(42.0, 1.0)]


def test_model_quality_merges_ground_truth_by_inference_id(sm, smr, s3, bucket):
    endpoint_name = _deploy_with_capture(sm, bucket, modes=("Input", "Output"))
    try:
        # the fake model answers {"size": <request length>}; the "truth" is that length, off by one for one in four
        ids = [f"mq-{endpoint_name}-{i}" for i in range(40)]
        truths = []
        for i, inference_id in enumerate(ids):
            body = "x" * (5 + i % 7)
            smr.invoke_endpoint(
                EndpointName=endpoint_name, Body=body.encode(), ContentType="text/csv", InferenceId=inference_id
            )
            truths.append(len(body) + (1 if i % 4 == 0 else 0))
        now = datetime.now(UTC)
        lines = [
            json.dumps(
                {
                    "groundTruthData": {"data": str(t), "encoding": "CSV"},
                    "eventMetadata": {"eventId": i},
                    "eventVersion": "0",
                }
            )
            for i, t in zip(ids, truths, strict=True)
        ]
        key = f"monitoring/ground-truth/{endpoint_name}/{now:%Y/%m/%d/%H}/labels.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
        constraints = {
            "version": 0.0,
            "regression_constraints": {"mae": {"threshold": 0.1, "comparison_operator": "GreaterThanThreshold"}},
        }
        s3.put_object(Bucket=bucket, Key="monitoring/mq/constraints.json", Body=json.dumps(constraints).encode())
        definition = unique("mq-def")
        sm.create_model_quality_job_definition(
            JobDefinitionName=definition,
            ModelQualityBaselineConfig={
                "ConstraintsResource": {"S3Uri": f"s3://{bucket}/monitoring/mq/constraints.json"}
            },
            ModelQualityAppSpecification={"ImageUri": ANALYZER, "ProblemType": "Regression"},
            ModelQualityJobInput={
                "EndpointInput": {
                    "EndpointName": endpoint_name,
                    "LocalPath": "/opt/ml/processing/input/endpoint",
                    "InferenceAttribute": "size",
                },
                "GroundTruthS3Input": {"S3Uri": f"s3://{bucket}/monitoring/ground-truth/{endpoint_name}"},
            },
            ModelQualityJobOutputConfig={
                "MonitoringOutputs": [
                    {
                        "S3Output": {
                            "S3Uri": f"s3://{bucket}/monitoring/mq-out",
                            "LocalPath": "/opt/ml/processing/output",
                        }
                    }
                ]
            },
            JobResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
            RoleArn=ROLE,
        )
        schedule = _now_schedule(sm, definition, kind="ModelQuality")
        execution = _wait_execution(sm, schedule)
        assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations", execution.get("FailureReason")
        assert execution["MonitoringType"] == "ModelQuality"
        job, output = _output_uri(sm, execution)
        assert (
            job["Environment"]["analysis_type"] == "MODEL_QUALITY"
            and job["Environment"]["problem_type"] == "Regression"
        )
        statistics = _json(s3, f"{output}/statistics.json")
        assert statistics["dataset"]["item_count"] == 40
        assert statistics["regression_metrics"]["mae"]["value"] == pytest.approx(10 / 40)
        [violation] = _json(s3, f"{output}/constraint_violations.json")["violations"]
        assert violation["metric_name"] == "mae"
    finally:
        sm.delete_endpoint(EndpointName=endpoint_name)


def test_bias_and_explainability_definitions_are_stored_and_a_bad_config_fails_clearly(sm, bucket, endpoint):
    common = {
        "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
        "RoleArn": ROLE,
    }
    output = {
        "MonitoringOutputs": [
            {"S3Output": {"S3Uri": f"s3://{bucket}/mon/bias", "LocalPath": "/opt/ml/processing/output"}}
        ]
    }
    endpoint_input = {
        "EndpointName": endpoint,
        "LocalPath": "/opt/ml/processing/input/endpoint",
        "FeaturesAttribute": "features",
    }
    bias = unique("bias")
    sm.create_model_bias_job_definition(
        JobDefinitionName=bias,
        ModelBiasAppSpecification={
            "ImageUri": "205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
            "ConfigUri": f"s3://{bucket}/mon/analysis_config.json",
        },
        ModelBiasJobInput={"EndpointInput": endpoint_input, "GroundTruthS3Input": {"S3Uri": f"s3://{bucket}/mon/gt"}},
        ModelBiasJobOutputConfig=output,
        **common,
    )
    explain = unique("explain")
    sm.create_model_explainability_job_definition(
        JobDefinitionName=explain,
        ModelExplainabilityAppSpecification={
            "ImageUri": "205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0",
            "ConfigUri": f"s3://{bucket}/mon/analysis_config.json",
        },
        ModelExplainabilityJobInput={"EndpointInput": endpoint_input},
        ModelExplainabilityJobOutputConfig=output,
        **common,
    )
    assert sm.describe_model_bias_job_definition(JobDefinitionName=bias)["ModelBiasJobInput"]["GroundTruthS3Input"]
    assert [
        d["MonitoringJobDefinitionName"]
        for d in sm.list_model_explainability_job_definitions(NameContains=explain)["JobDefinitionSummaries"]
    ] == [explain]
    with pytest.raises(ClientError) as raised:
        sm.create_model_explainability_job_definition(
            JobDefinitionName=unique("explain"),
            ModelExplainabilityAppSpecification={"ImageUri": "x", "ConfigUri": f"s3://{bucket}/c.json"},
            ModelExplainabilityJobInput={"EndpointInput": {**endpoint_input, "LocalPath": "/tmp/elsewhere"}},
            ModelExplainabilityJobOutputConfig=output,
            **common,
        )
    assert error_code(raised) == "ValidationException"
    schedule = _now_schedule(sm, bias, kind="ModelBias")
    execution = _wait_execution(sm, schedule)
    assert execution["MonitoringExecutionStatus"] == "Failed"
    # The bias execution runs Clarify now: an analysis config that is not in S3 fails it with a reason naming it.
    assert "ConfigUri" in execution["FailureReason"] and "cannot be read" in execution["FailureReason"]
