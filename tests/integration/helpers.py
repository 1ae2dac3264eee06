"""Shared request builders and waiters for the integration tests."""

import io
import tarfile
import time

import psutil

from tests.integration.conftest import FAKE_IMAGE, ROLE, unique


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


def deploy_endpoint(sm, image, model_data, prefix):
    """A model, a one-instance endpoint config and an InService endpoint for ``image`` + ``model_data``."""
    model, config, endpoint = unique(f"{prefix}-model"), unique(f"{prefix}-cfg"), unique(f"{prefix}-ep")
    sm.create_model(
        ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataUrl": model_data}
    )
    variant = {"VariantName": "v", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    described = wait_endpoint(sm, endpoint)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    return model, endpoint


def line_transform(sm, s3, bucket, model, prefix, body, content_type, **output):
    """A batch transform of ``body`` (one object, split by line) with ``output`` added to TransformOutput; the
    output object's text."""
    s3.put_object(Bucket=bucket, Key=f"{prefix}/transform-in/rows", Body=body)
    name = unique("line-tj")
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}/transform-in"}},
            "ContentType": content_type,
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/{prefix}/transform-out", **output},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    described = wait_transform(sm, name)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    return s3.get_object(Bucket=bucket, Key=f"{prefix}/transform-out/rows.out")["Body"].read().decode()


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
        time.sleep(0.1)


def source_archive(name: str, content: bytes) -> bytes:
    """A ``sourcedir.tar.gz`` holding one file, as the SDK uploads a script's source directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def warm_start_pids():
    """Processes of this test process's stack running the warm-start entry, as ``ps`` shows them: pre-started hosts
    waiting for a job (other test workers' stacks pre-start hosts of their own at the same time)."""
    return {process.pid for process in psutil.Process().children(recursive=True) if is_warm_start(process)}


def new_warm_start_pids(before, timeout=60):
    """The stack's warm-start processes not in ``before``, once there is one (hosts are pre-started in the
    background after the job that leaves them ends)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = warm_start_pids() - before
        if pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def is_warm_start(process):
    try:
        return "containers.toolkit.warm_start" in process.cmdline()
    except psutil.Error:
        return False
