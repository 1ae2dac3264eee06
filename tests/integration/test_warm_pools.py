"""Managed warm pools (docs/performance.md#warm-pools) through boto3 and the SDK against the stack.

A job with ``keep_alive_period_in_seconds`` leaves its hosts warm; the next matching job takes them over (the
first one's pool turns Reused) and starts on a container process that was running before the job was created, in
a clean ``/opt/ml`` and ``/tmp`` with none of the first job's files or environment.
"""

import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import new_warm_start_pids, training_request, wait_training, warm_start_pids
from tests.integration.test_framework_containers import INSTANCE, SKLEARN_VERSION, rows, upload_train, write_source

SCRIPT = """
import json, os, pathlib, sys

base = pathlib.Path("/opt/ml")
seen = {
    "tmp_leak": pathlib.Path("/tmp/sagestack-leak").exists(),
    "input_leak": (base / "input" / "leak.txt").exists(),
    "env_leak": "SAGESTACK_LEAK" in os.environ,
    "container_pid": os.getppid(),
}
pathlib.Path("/tmp/sagestack-leak").write_text("from " + os.environ["TRAINING_JOB_NAME"])
(base / "input" / "leak.txt").write_text("leak")
(base / "model").mkdir(exist_ok=True)
(base / "model" / "seen.json").write_text(json.dumps(seen))
"""


def _wait_pool(sm, name, wanted, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        status = sm.describe_training_job(TrainingJobName=name).get("WarmPoolStatus", {})
        if status.get("Status") == wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _seen(s3, described):
    import io
    import json
    import tarfile

    bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"][len("s3://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        return json.loads(tar.extractfile("seen.json").read())


def _estimator(session, source):
    from sagemaker.sklearn import SKLearn

    return SKLearn(
        entry_point="train.py",
        source_dir=str(source),
        framework_version=SKLEARN_VERSION,
        instance_type=INSTANCE,
        role=ROLE,
        sagemaker_session=session,
        keep_alive_period_in_seconds=120,
    )


def test_a_matching_job_reuses_the_warm_pool_on_a_clean_prestarted_host(sdk_env, tmp_path):
    session, bucket = sdk_env
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    train = upload_train(bucket, unique("warm"), rows())
    source = write_source(tmp_path / "src", {"train.py": SCRIPT})
    before = warm_start_pids()
    first = _estimator(session, source)
    first.fit({"train": train}, wait=True, logs=False)
    first_name = first.latest_training_job.name
    assert _wait_pool(sm, first_name, "Available")["Status"] == "Available"
    prestarted = new_warm_start_pids(before)
    assert prestarted, "no pre-started warm host process after the first job"

    second = _estimator(session, source)
    second.fit({"train": train}, wait=True, logs=False)
    second_name = second.latest_training_job.name
    described = sm.describe_training_job(TrainingJobName=second_name)
    assert described["TrainingJobStatus"] == "Completed"
    reused = sm.describe_training_job(TrainingJobName=first_name)["WarmPoolStatus"]
    assert reused["Status"] == "Reused" and reused["ReusedByJob"] == second_name
    assert reused["ResourceRetainedBillableTimeInSeconds"] >= 0

    seen_first, seen_second = _seen(s3, sm.describe_training_job(TrainingJobName=first_name)), _seen(s3, described)
    assert seen_first["container_pid"] not in prestarted  # the first job started cold
    assert seen_second["container_pid"] in prestarted  # the second ran on a host pre-started before it existed
    assert not (seen_second["tmp_leak"] or seen_second["input_leak"] or seen_second["env_leak"])
    assert _wait_pool(sm, second_name, "Available")["Status"] == "Available"

    sm.update_training_job(TrainingJobName=second_name, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    ended = _wait_pool(sm, second_name, "Terminated")
    assert ended["Status"] == "Terminated"
    listed = sm.list_training_jobs(WarmPoolStatusEquals="Terminated", MaxResults=100)["TrainingJobSummaries"]
    assert second_name in [job["TrainingJobName"] for job in listed]


def test_a_pool_expires_after_its_keep_alive_period(sm, bucket):
    name = unique("expire")
    request = training_request(name, bucket)
    request["ResourceConfig"] = {**request["ResourceConfig"], "KeepAlivePeriodInSeconds": 1}
    sm.create_training_job(**request)
    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    status = _wait_pool(sm, name, "Terminated")
    assert status["Status"] == "Terminated"
    assert status["ResourceRetainedBillableTimeInSeconds"] >= 1
    assert datetime.now(UTC) > sm.describe_training_job(TrainingJobName=name)["TrainingEndTime"]


def test_a_failed_job_keeps_no_pool_and_other_settings_do_not_match(sm, bucket):
    failed = unique("warmfail")
    request = training_request(failed, bucket, HyperParameters={"fail": "on purpose"})
    request["ResourceConfig"] = {**request["ResourceConfig"], "KeepAlivePeriodInSeconds": 60}
    sm.create_training_job(**request)
    assert wait_training(sm, failed)["TrainingJobStatus"] == "Failed"
    assert _wait_pool(sm, failed, "Terminated")["Status"] == "Terminated"

    donor, other = unique("donor"), unique("other")
    for name, instance_type in ((donor, "ml.m5.large"), (other, "ml.m5.xlarge")):
        request = training_request(name, bucket)
        request["ResourceConfig"] = {
            "InstanceType": instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 1,
            "KeepAlivePeriodInSeconds": 60,
        }
        sm.create_training_job(**request)
        assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    assert _wait_pool(sm, donor, "Available")["Status"] == "Available"  # another instance type: not reused
    sm.update_training_job(TrainingJobName=donor, ResourceConfig={"KeepAlivePeriodInSeconds": 0})
    sm.update_training_job(TrainingJobName=other, ResourceConfig={"KeepAlivePeriodInSeconds": 0})


def test_warm_pool_bad_input(sm, bucket):
    name = unique("badwarm")
    request = training_request(name, bucket)
    request["ResourceConfig"] = {**request["ResourceConfig"], "KeepAlivePeriodInSeconds": 3601}
    with pytest.raises(ClientError) as error:
        sm.create_training_job(**request)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "keepAlivePeriodInSeconds" in error.value.response["Error"]["Message"]

    plain = unique("nowarm")
    sm.create_training_job(**training_request(plain, bucket))
    wait_training(sm, plain)
    assert "WarmPoolStatus" not in sm.describe_training_job(TrainingJobName=plain)
    with pytest.raises(ClientError) as error:
        sm.update_training_job(TrainingJobName=plain, ResourceConfig={"KeepAlivePeriodInSeconds": 60})
    assert error.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as error:
        sm.update_training_job(TrainingJobName=unique("missing"), ResourceConfig={"KeepAlivePeriodInSeconds": 60})
    assert error.value.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound")
