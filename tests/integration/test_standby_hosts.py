"""The process runtime's standby hosts (docs/performance.md#warm-pools) through boto3 against the stack.

A training job without a warm pool leaves a pre-started, pre-imported host set for the next job like it (same
image, instance count and type, import-time environment). The next such job runs on a process that was started
before it was created, in a clean ``/opt/ml`` and ``/tmp``, with its own environment and hyperparameters only; and
nothing of a warm pool shows in the API.
"""

import io
import json
import os
import random
import signal
import tarfile

import psutil
import pytest

from tests.integration.conftest import ROLE, SKLEARN_IMAGE, XGBOOST_IMAGE, unique
from tests.integration.helpers import (
    is_warm_start,
    new_warm_start_pids,
    source_archive,
    wait_training,
    warm_start_pids,
)
from tests.integration.test_durable_stack import ServedStack, _wait
from tests.integration.test_stack_lifecycle import _recorded, _still_running

SCRIPT = """
import json, os, pathlib

base = pathlib.Path("/opt/ml")
seen = {
    "tmp_leak": pathlib.Path("/tmp/sagestack-leak").exists(),
    "input_leak": (base / "input" / "leak.txt").exists(),
    "model_leak": (base / "model" / "leak.txt").exists(),
    "mark": os.environ.get("SAGESTACK_MARK"),
    "first_only": os.environ.get("SAGESTACK_FIRST_ONLY"),
    "hyperparameters": json.loads((base / "input" / "config" / "hyperparameters.json").read_text()),
    "job": os.environ.get("TRAINING_JOB_NAME"),
    "container_pid": os.getppid(),
}
pathlib.Path("/tmp/sagestack-leak").write_text("from " + os.environ["TRAINING_JOB_NAME"])
(base / "input" / "leak.txt").write_text("leak")
(base / "model").mkdir(exist_ok=True)
(base / "model" / "leak.txt").write_text("leak")
(base / "model" / "seen.json").write_text(json.dumps(seen))
"""


def _upload_source(s3, bucket, prefix):
    archive = source_archive("train.py", SCRIPT.encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/source/sourcedir.tar.gz", Body=archive)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/train.csv", Body=b"1,0.5\n0,0.1\n")
    return f"s3://{bucket}/{prefix}/source/sourcedir.tar.gz"


def _request(name, bucket, prefix, source, environment, marker):
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(source),
            "marker": json.dumps(marker),
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/{prefix}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "Environment": environment,
    }


def _seen(s3, described):
    bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"][len("s3://") :].split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        member = tar.extractfile("seen.json")
        assert member is not None
        return json.loads(member.read())


def test_the_next_job_like_it_runs_on_a_clean_standby_host_and_no_warm_pool_shows(sm, s3, bucket):
    prefix = unique("standby")
    source = _upload_source(s3, bucket, prefix)
    # An import-time variable of these jobs only: their standby set is theirs, whatever ran before.
    seed = str(random.randrange(1, 2**31))
    first, second = unique("standby-1"), unique("standby-2")
    before = warm_start_pids()

    first_env = {"PYTHONHASHSEED": seed, "SAGESTACK_MARK": "first", "SAGESTACK_FIRST_ONLY": "yes"}
    sm.create_training_job(**_request(first, bucket, prefix, source, first_env, "one"))
    assert wait_training(sm, first)["TrainingJobStatus"] == "Completed"
    prestarted = new_warm_start_pids(before)
    assert prestarted, "no standby host was pre-started after the first job"

    second_env = {"PYTHONHASHSEED": seed, "SAGESTACK_MARK": "second"}
    sm.create_training_job(**_request(second, bucket, prefix, source, second_env, "two"))
    described = wait_training(sm, second)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")

    seen_first, seen_second = _seen(s3, sm.describe_training_job(TrainingJobName=first)), _seen(s3, described)
    assert seen_first["container_pid"] not in prestarted
    assert seen_second["container_pid"] in prestarted  # a host pre-started before the job was created
    assert not (seen_second["tmp_leak"] or seen_second["input_leak"] or seen_second["model_leak"])
    assert (seen_second["mark"], seen_second["first_only"], seen_second["job"]) == ("second", None, second)
    assert json.loads(seen_second["hyperparameters"]["marker"]) == "two"
    assert json.loads(seen_first["hyperparameters"]["marker"]) == "one"
    for name in (first, second):  # a standby host is no warm pool
        job = sm.describe_training_job(TrainingJobName=name)
        assert "WarmPoolStatus" not in job and "KeepAlivePeriodInSeconds" not in job["ResourceConfig"]


def _recorded_warm_starts(data_dir):
    """Whether the stack's ledger records processes and each runs the warm-start entry (``ps`` shows it)."""
    recorded = _still_running(_recorded(data_dir))
    pids = {pid for pid, _ in recorded}
    warm = {process.pid for process in psutil.process_iter() if process.pid in pids and is_warm_start(process)}
    return bool(recorded) and warm == pids


@pytest.mark.parametrize("end", ["stop", "kill -9"])
def test_the_stacks_end_ends_its_standby_hosts_and_the_ledger_recorded_them(tmp_path, end):
    stack = ServedStack(tmp_path / "state", SAGESTACK_PERSISTENCE="0", SAGESTACK_STANDBY_IDLE_SECONDS="600")
    try:
        s3, sm = stack.client("s3"), stack.client("sagemaker")
        s3.create_bucket(Bucket="standby")
        s3.put_object(Bucket="standby", Key="train/train.csv", Body=b"1,0.5\n0,0.1\n1,0.7\n0,0.2\n")
        request = _request("xgb-standby", "standby", "x", "unused", {}, "unused")
        request["AlgorithmSpecification"]["TrainingImage"] = XGBOOST_IMAGE
        request["HyperParameters"] = {"num_round": "2", "objective": "binary:logistic"}
        request["InputDataConfig"] = [
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://standby/train"}},
            }
        ]
        sm.create_training_job(**request)
        assert wait_training(sm, "xgb-standby")["TrainingJobStatus"] == "Completed"
        # the ledger then records the standby host alone, once the job's own process is gone
        _wait(lambda: _recorded_warm_starts(stack.data_dir), timeout=60)
        standby = _recorded(stack.data_dir)
        assert len(standby) == 1 and _still_running(standby) == standby
    finally:
        if end == "stop":
            stack.stop()
        else:  # the stack alone: its containers lead sessions of their own and die with it (parent-death signal)
            os.kill(stack.process.pid, signal.SIGKILL)
            stack.process.wait()
            stack.log.close()
    if end == "stop":
        assert not _still_running(standby)  # stop returns once the stack has exited
        assert not _recorded(stack.data_dir)
    else:
        _wait(lambda: not _still_running(standby), timeout=30)
