"""Processing jobs through boto3: the scikit-learn image runs the user's script in the project's Python env."""

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, ROLE, SKLEARN_IMAGE, XGBOOST_IMAGE, unique
from tests.integration.helpers import error_code, wait_processing

SCRIPT = b"""
import json, os, sys
from pathlib import Path
import pandas as pd
import sklearn

frame = pd.read_csv("/opt/ml/processing/input/data/rows.csv", header=None)
config = json.loads(Path("/opt/ml/config/processingjobconfig.json").read_text())
out = Path("/opt/ml/processing/output/result")
out.mkdir(parents=True, exist_ok=True)
(out / "summary.json").write_text(json.dumps({
    "rows": len(frame), "sum": float(frame[0].sum()), "args": sys.argv[1:], "env": os.environ.get("MARKER"),
    "job": config["ProcessingJobName"], "sklearn": sklearn.__version__,
}))
print("processed", len(frame), "rows")
if "--fail" in sys.argv:
    raise SystemExit("asked to fail")
if "--raise" in sys.argv:  # a log record after the traceback, as clients closing at exit write
    import atexit, logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    atexit.register(lambda: logging.getLogger("botocore.configprovider").info("Found endpoint for athena"))
    raise RuntimeError("Failed to execute query 13c9")
"""


@pytest.fixture(scope="module")
def code(s3, bucket):
    s3.put_object(Bucket=bucket, Key="proc/code/run.py", Body=SCRIPT)
    s3.put_object(Bucket=bucket, Key="proc/data/rows.csv", Body=b"1,2\n3,4\n5,6\n")
    return f"s3://{bucket}/proc"


def _request(name, code, image=SKLEARN_IMAGE, arguments=(), **overrides):
    request = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {
            "ImageUri": image,
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/run.py"],
            "ContainerArguments": list(arguments) or ["--x", "1"],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"{code}/code/run.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"{code}/data",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "result",
                    "S3Output": {
                        "S3Uri": f"{code}/out/{name}",
                        "LocalPath": "/opt/ml/processing/output/result",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "Environment": {"MARKER": "m1"},
    }
    request.update(overrides)
    return request


def _keys(s3, bucket, prefix):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


@pytest.mark.parametrize("image", [SKLEARN_IMAGE, XGBOOST_IMAGE])
def test_script_runs_and_outputs_are_uploaded(sm, s3, logs, bucket, code, image):
    import json

    name = unique("proc")
    sm.create_processing_job(**_request(name, code, image))
    described = wait_processing(sm, name)
    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    summary = json.loads(s3.get_object(Bucket=bucket, Key=f"proc/out/{name}/summary.json")["Body"].read())
    assert summary["rows"] == 3 and summary["sum"] == 9.0 and summary["args"] == ["--x", "1"]
    assert summary["env"] == "m1" and summary["job"] == name
    assert "FailureReason" not in described and "ProcessingStartTime" in described
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=f"{name}/")
    [stream] = streams["logStreams"]
    assert stream["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=stream["logStreamName"])
    assert any("processed 3 rows" in e["message"] for e in events["events"])


def test_failing_script_fails_the_job_with_its_message_and_uploads_nothing(sm, s3, bucket, code):
    name = unique("proc-fail")
    sm.create_processing_job(**_request(name, code, arguments=["--fail"]))
    described = wait_processing(sm, name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("AlgorithmError: asked to fail")
    assert described["ExitMessage"] == described["FailureReason"]
    assert _keys(s3, bucket, f"proc/out/{name}/") == []
    summaries = sm.list_processing_jobs(NameContains=name, StatusEquals="Failed")["ProcessingJobSummaries"]
    assert [s["ProcessingJobName"] for s in summaries] == [name]


def test_the_failure_reason_is_the_exception_not_a_log_record_written_after_it(sm, code):
    name = unique("proc-raise")
    sm.create_processing_job(**_request(name, code, arguments=["--raise"]))
    described = wait_processing(sm, name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: RuntimeError: Failed to execute query 13c9, exit code: 1"


def test_unknown_image_fails_naming_the_image(sm, code):
    name = unique("proc-img")
    sm.create_processing_job(**_request(name, code, image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"))
    described = wait_processing(sm, name)
    assert described["ProcessingJobStatus"] == "Failed"
    assert "mine:1" in described["FailureReason"]


def test_stop_processing_job_stops_the_container(sm, code):
    name = unique("proc-stop")
    request = _request(name, code, image=FAKE_IMAGE)
    request["AppSpecification"] = {"ImageUri": FAKE_IMAGE, "ContainerEntrypoint": ["sleep", "60"]}
    sm.create_processing_job(**request)
    sm.stop_processing_job(ProcessingJobName=name)
    described = wait_processing(sm, name)
    assert described["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as raised:
        sm.stop_processing_job(ProcessingJobName=name)
    assert error_code(raised) == "ValidationException"


def test_processing_job_errors(sm, code):
    name = unique("proc-dup")
    sm.create_processing_job(**_request(name, code))
    with pytest.raises(ClientError) as raised:
        sm.create_processing_job(**_request(name, code))
    assert error_code(raised) == "ResourceInUse"
    bad = _request(unique("proc-bad"), code)
    bad["ProcessingInputs"][0]["S3Input"]["LocalPath"] = "/tmp/elsewhere"
    with pytest.raises(ClientError) as raised:
        sm.create_processing_job(**bad)
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.describe_processing_job(ProcessingJobName="no-such-processing-job")
    assert error_code(raised) == "ValidationException"
    wait_processing(sm, name)
