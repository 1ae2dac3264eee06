"""Shared request builders and waiters for the integration tests."""

import time

from tests.integration.conftest import FAKE_IMAGE, ROLE


def training_request(name, bucket, **overrides):
    request = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": FAKE_IMAGE, "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train"}},
                "ContentType": "text/csv",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "HyperParameters": {"marker": name},
    }
    request.update(overrides)
    return request


def wait_training(sm, name, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] not in ("InProgress", "Stopping") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def wait_endpoint(sm, name, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def wait_status(sm, name, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == wanted:
            return True
        time.sleep(0.05)
    return False


def wait_job(describe, status_key, timeout=120):
    """Poll a Describe* call until the job leaves InProgress/Stopping."""
    deadline = time.monotonic() + timeout
    while True:
        described = describe()
        if described[status_key] not in ("InProgress", "Stopping") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def wait_transform(sm, name, timeout=120):
    return wait_job(lambda: sm.describe_transform_job(TransformJobName=name), "TransformJobStatus", timeout)


def wait_processing(sm, name, timeout=120):
    return wait_job(lambda: sm.describe_processing_job(ProcessingJobName=name), "ProcessingJobStatus", timeout)


def error_code(raised):
    return raised.value.response["Error"]["Code"]


def wait_schedule_execution(monitor, timeout=300):
    """The schedule's last execution summary once it has finished (SDK ``ModelMonitor`` or a subclass)."""
    deadline = time.monotonic() + timeout
    while True:
        summary = monitor.describe_schedule().get("LastMonitoringExecutionSummary") or {}
        if summary.get("MonitoringExecutionStatus") in ("Completed", "CompletedWithViolations", "Failed", "Stopped"):
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"the execution of {monitor.monitoring_schedule_name} did not finish")
        time.sleep(0.5)
