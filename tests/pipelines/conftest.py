# ruff: noqa: F811
"""Pipeline tests run against the session stack (in-process) through boto3 and the SDK; named graph shapes."""

import json
import time

import pytest

from tests.integration.conftest import (  # noqa: F401  (session fixtures re-exported for this directory)
    ROLE,
    SKLEARN_IMAGE,
    bucket,
    s3,
    sdk_env,
    sm,
    stack,
    stack_url,
    unique,
)

SCRIPT = b"""
import json, os, pathlib, sys, time
out = pathlib.Path('/opt/ml/processing/out'); out.mkdir(parents=True, exist_ok=True)
time.sleep(float(os.environ.get('SLEEP', '0')))
flaky = os.environ.get('FLAKY_MARKER')  # bucket/key in the stack's S3: a job sees only its own /opt/ml and /tmp
if flaky:
    import boto3
    client = boto3.client('s3')
    marker_bucket, marker_key = flaky.split('/', 1)
    if not client.list_objects_v2(Bucket=marker_bucket, Prefix=marker_key).get('KeyCount'):
        client.put_object(Bucket=marker_bucket, Key=marker_key, Body=b'seen')
        print('InternalServerError: flaky platform', file=sys.stderr)
        sys.exit(1)
if os.environ.get('FAIL'):
    print('ClientError: ' + os.environ['FAIL'], file=sys.stderr)
    sys.exit(1)
(out / 'metrics.json').write_text(json.dumps({'metrics': {'auc': {'value': float(os.environ.get('AUC', '0.8'))}}}))
"""


@pytest.fixture(scope="session")
def code_uri(s3, bucket):
    s3.put_object(Bucket=bucket, Key="pipelines/code/step.py", Body=SCRIPT)
    return f"s3://{bucket}/pipelines/code/step.py"


def processing(name, code_uri, bucket, env=None, **extra):
    """A Processing step running the tiny script above; output ``out`` holds ``metrics.json``."""
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "RoleArn": ROLE,
            "AppSpecification": {
                "ImageUri": SKLEARN_IMAGE,
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/step.py"],
            },
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": code_uri,
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "out",
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [f"s3://{bucket}/runs", {"Get": "Execution.PipelineExecutionId"}, name],
                                }
                            },
                            "LocalPath": "/opt/ml/processing/out",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
            "Environment": env or {},
        },
        "PropertyFiles": [{"PropertyFileName": "Metrics", "OutputName": "out", "FilePath": "metrics.json"}],
        **extra,
    }


def definition(steps, parameters=()):
    return json.dumps({"Version": "2020-12-01", "Parameters": list(parameters), "Steps": steps})


def auc_of(step):
    return {
        "Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.Metrics"}, "Path": "metrics.auc.value"}
    }


# --- named shapes -----------------------------------------------------------------------------------------------


@pytest.fixture
def linear(code_uri, bucket):
    return definition(
        [
            processing("A", code_uri, bucket),
            processing("B", code_uri, bucket, DependsOn=["A"]),
            processing("C", code_uri, bucket, env={"AUC": auc_of("B")}),
        ]
    )


@pytest.fixture
def fan_out_fan_in(code_uri, bucket):
    fan = [processing(f"Fan{i}", code_uri, bucket, env={"SLEEP": "1"}, DependsOn=["Source"]) for i in range(3)]
    join = {"Std:Join": {"On": ",", "Values": [auc_of(f"Fan{i}") for i in range(3)]}}
    return definition(
        [processing("Source", code_uri, bucket), *fan, processing("Sink", code_uri, bucket, env={"ALL": join})]
    )


@pytest.fixture
def condition_branches(code_uri, bucket):
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": auc_of("Eval"),
                    "RightValue": {"Get": "Parameters.Threshold"},
                }
            ],
            "IfSteps": [processing("Good", code_uri, bucket)],
            "ElseSteps": [
                {
                    "Name": "TooLow",
                    "Type": "Fail",
                    "Arguments": {
                        "ErrorMessage": {"Std:Join": {"On": " ", "Values": ["AUC", auc_of("Eval"), "below threshold"]}}
                    },
                }
            ],
        },
    }
    return definition(
        [processing("Eval", code_uri, bucket, env={"AUC": {"Get": "Parameters.Auc"}}), gate],
        parameters=[
            {"Name": "Auc", "Type": "Float", "DefaultValue": 0.9},
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.7},
        ],
    )


@pytest.fixture
def failing_branch(code_uri, bucket):
    return definition(
        [
            processing("Root", code_uri, bucket),
            processing("Slow", code_uri, bucket, env={"SLEEP": "2"}, DependsOn=["Root"]),
            processing("Broken", code_uri, bucket, env={"FAIL": "bad input column"}, DependsOn=["Root"]),
            processing("After", code_uri, bucket, DependsOn=["Slow", "Broken"]),
        ]
    )


def create(sm, body, **kwargs):
    name = unique("pl")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=ROLE, **kwargs)
    return name


def run(sm, name, timeout=180, **kwargs):
    arn = sm.start_pipeline_execution(PipelineName=name, **kwargs)["PipelineExecutionArn"]
    return arn, wait(sm, arn, timeout)


def wait(sm, arn, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if described["PipelineExecutionStatus"] not in ("Executing", "Stopping") or time.monotonic() > deadline:
            return described
        time.sleep(0.2)


def steps_of(sm, arn):
    listed = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")
    return {s["StepName"]: s for s in listed["PipelineExecutionSteps"]}


# --- EMR: a PySpark app in the stack's S3 and a long-running cluster (the EMR step and every-step-type tests) ----

EMR_APP = b"""
import json, sys, time
import boto3
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("pipeline-emr-step").getOrCreate()
bucket, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "fail":
    raise RuntimeError("the EMR app found no input for " + key)
if mode == "sleep":
    time.sleep(3600)
total = spark.sparkContext.parallelize(range(100), 4).map(lambda x: x * x).sum()
boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps({"total": total}).encode())
spark.stop()
"""


@pytest.fixture(scope="session")
def emr_app_uri(s3, bucket):
    s3.put_object(Bucket=bucket, Key="pipelines/emr/app.py", Body=EMR_APP)
    return f"s3://{bucket}/pipelines/emr/app.py"


@pytest.fixture(scope="session")
def emr_cluster(stack_url):
    """A kept-alive EMR cluster (one core instance: one Spark worker), terminated after the session."""
    import boto3

    from tests.integration.conftest import REGION

    emr = boto3.client(
        "emr", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    cluster_id = emr.run_job_flow(
        Name=unique("pipeline-cluster"),
        ReleaseLabel="emr-7.5.0",
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1},
                {"InstanceRole": "CORE", "InstanceType": "m5.xlarge", "InstanceCount": 1},
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
    )["JobFlowId"]
    yield cluster_id
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
