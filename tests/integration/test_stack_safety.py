"""Issue 17 beyond the edge: what a job can touch, quotas, gzip bombs, idempotency tokens, leaks, job credentials.

One test per finding, through boto3 against the in-process stack (docs/security.md).
"""

import gzip
import io
import json
import os
import stat
import sys
import tarfile
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.config import ServiceQuotas, StackSettings
from infra.control_plane.server import LocalStack
from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE, unique
from tests.integration.helpers import error_code, training_request, wait_training

# Finding 1: a job's view of the machine.


def test_a_job_writes_only_its_opt_ml_and_its_tmp(sm, bucket):
    outside = Path(__file__).with_name(f"written-by-a-job-{uuid.uuid4().hex[:8]}")
    script = (
        f"echo pwned > {outside} 2>/dev/null; "
        "echo ok > /opt/ml/model/ok.txt && echo ok > /tmp/scratch.txt && test -w /dev/null"
    )
    name = unique("isolated")
    request = training_request(name, bucket)
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["sh", "-c", script]
    try:
        sm.create_training_job(**request)
        described = wait_training(sm, name)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        assert not outside.exists(), "a job wrote outside its /opt/ml and /tmp"
    finally:
        outside.unlink(missing_ok=True)


def _log_lines(logs, name):
    group = "/aws/sagemaker/TrainingJobs"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
        lines += [event["message"] for event in events["events"]]
    return lines


@pytest.mark.capability("unprivileged-containers")
def test_a_job_runs_as_an_unprivileged_user_and_its_outputs_are_uploaded(stack, sm, s3, logs, bucket):
    outside = Path(__file__).with_name(f"written-by-a-job-{uuid.uuid4().hex[:8]}")
    targets = [str(outside), "/opt/written-by-a-job", "/etc/written-by-a-job", "/written-by-a-job"]
    data_dir = str(stack.settings.data_dir)
    script = (
        'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; ls "$1" >/dev/null 2>&1 && echo READ; shift; '
        'for t in "$@"; do (echo x > "$t") 2>/dev/null && echo "WROTE $t"; done; '
        "echo ok > /opt/ml/model/ok.txt && echo ok > /tmp/x && chmod 600 /opt/ml/model/ok.txt"
    )
    name = unique("unprivileged")
    request = training_request(name, bucket)
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["sh", "-c", script, "job"]
    request["AlgorithmSpecification"]["ContainerArguments"] = [data_dir, *targets]
    try:
        sm.create_training_job(**request)
        described = wait_training(sm, name)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        assert not outside.exists()
    finally:
        outside.unlink(missing_ok=True)
    lines = _log_lines(logs, name)
    [identity] = [line for line in lines if line.startswith("uid=")]
    uid, gid, groups = (field.split("=")[1] for field in identity.split(" ", 2))
    assert int(uid) != 0 and int(gid) != 0 and "0" not in groups.split(), identity
    assert not [line for line in lines if line.startswith(("WROTE", "READ"))]
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700  # other jobs' data and the S3 store stay private
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"].split("/", 3)[3]
    body = s3.get_object(Bucket=bucket, Key=artifact)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        assert archive.extractfile("ok.txt").read() == b"ok\n"  # a 0600 file of the job's user: the stack read it


# Finding 2: quotas answered at Create.


def test_instance_counts_beyond_the_quota_are_refused_at_create(sm, bucket):
    request = training_request(unique("huge"), bucket)
    request["ResourceConfig"]["InstanceCount"] = 2147483648
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**request)
    assert error_code(raised) == "ResourceLimitExceeded"
    assert "SAGESTACK_MAX_INSTANCES_PER_JOB" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sm.describe_training_job(TrainingJobName=request["TrainingJobName"])
    assert error_code(raised) == "ValidationException"  # nothing was created

    model = unique("quota-model")
    sm.create_model(ModelName=model, PrimaryContainer={"Image": FAKE_IMAGE}, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 2**63}
    with pytest.raises(ClientError) as raised:
        sm.create_endpoint_config(EndpointConfigName=unique("quota-config"), ProductionVariants=[variant])
    assert error_code(raised) == "ResourceLimitExceeded"

    with pytest.raises(ClientError) as raised:
        sm.create_processing_job(
            ProcessingJobName=unique("huge"),
            RoleArn=ROLE,
            AppSpecification={"ImageUri": FAKE_IMAGE},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 100, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
        )
    assert error_code(raised) == "ResourceLimitExceeded"
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(
            TransformJobName=unique("huge"),
            ModelName=model,
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/d"}}},
            TransformOutput={"S3OutputPath": f"s3://{bucket}/out"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 2**40},
        )
    assert error_code(raised) == "ResourceLimitExceeded"


@pytest.fixture(scope="module")
def small_quota_stack(tmp_path_factory):
    fake = str(Path(__file__).with_name("fake_container.py"))
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp("small-quotas"),
        port=0,
        region=REGION,
        extra_images={FAKE_IMAGE: (sys.executable, fake)},
        quotas=ServiceQuotas(running_instances=3, endpoints=2, concurrent_jobs=1),
    )
    stack = LocalStack(settings)
    stack.start()
    yield stack
    stack.stop()


def test_endpoints_jobs_and_their_instances_are_capped_at_create(small_quota_stack, bucket):
    def client(service):
        return boto3.client(
            service,
            endpoint_url=small_quota_stack.url,
            region_name=REGION,
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )

    sm, s3 = client("sagemaker"), client("s3")
    s3.create_bucket(Bucket="quota-jobs")
    s3.put_object(Bucket="quota-jobs", Key="data/train/x.csv", Body=b"1,2\n")
    sm.create_model(ModelName="capped", PrimaryContainer={"Image": FAKE_IMAGE}, ExecutionRoleArn=ROLE)
    variant = {"VariantName": "v", "ModelName": "capped", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}
    sm.create_endpoint_config(EndpointConfigName="two", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="first", EndpointConfigName="two")
    try:
        with pytest.raises(ClientError) as raised:  # 2 running + 2 asked > 3
            sm.create_endpoint(EndpointName="second", EndpointConfigName="two")
        assert error_code(raised) == "ResourceLimitExceeded"
        assert "SAGESTACK_MAX_RUNNING_INSTANCES" in raised.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as raised:
            sm.create_transform_job(
                TransformJobName="capped",
                ModelName="capped",
                TransformInput={
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://quota-jobs/d"}}
                },
                TransformOutput={"S3OutputPath": "s3://quota-jobs/out"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 2},
            )
        assert error_code(raised) == "ResourceLimitExceeded"
        request = training_request("slow", "quota-jobs")
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["sleep", "30"]
        sm.create_training_job(**request)
        with pytest.raises(ClientError) as raised:  # one in-progress training job at a time
            sm.create_training_job(**training_request("second", "quota-jobs"))
        assert error_code(raised) == "ResourceLimitExceeded"
        assert "SAGESTACK_MAX_CONCURRENT_JOBS" in raised.value.response["Error"]["Message"]
        sm.stop_training_job(TrainingJobName="slow")
        assert wait_training(sm, "slow")["TrainingJobStatus"] == "Stopped"  # its instance is freed
        sm.create_endpoint_config(EndpointConfigName="one", ProductionVariants=[{**variant, "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="second", EndpointConfigName="one")
        with pytest.raises(ClientError) as raised:
            sm.create_endpoint(EndpointName="third", EndpointConfigName="one")
        assert error_code(raised) == "ResourceLimitExceeded"
        assert "SAGESTACK_MAX_ENDPOINTS" in raised.value.response["Error"]["Message"]
    finally:
        for endpoint in ("first", "second"):
            try:
                sm.delete_endpoint(EndpointName=endpoint)
            except ClientError:
                pass


# Finding 3: a gzip bomb in File mode.


def test_a_gzip_bomb_fails_the_job_once_it_outgrows_the_volume(sm, s3, bucket):
    member = gzip.compress(bytes(1024 * 1024), compresslevel=9)  # 1 MiB of zeros in about 1 KiB
    s3.put_object(Bucket=bucket, Key="bomb/data.csv.gz", Body=member * 1100)  # 1,100 MiB once decompressed
    name = unique("bomb")
    request = training_request(
        name,
        bucket,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "CompressionType": "Gzip",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/bomb/"}},
            }
        ],
    )
    sm.create_training_job(**request)  # VolumeSizeInGB is 1
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("ClientError:") and "VolumeSizeInGB (1 GB)" in reason
    assert f"s3://{bucket}/bomb/data.csv.gz" in reason


# Finding 7: idempotency tokens.


def _definition(step_name):
    return json.dumps(
        {"Version": "2020-12-01", "Steps": [{"Name": step_name, "Type": "Fail", "Arguments": {"ErrorMessage": "x"}}]}
    )


def test_a_reused_client_request_token_with_other_parameters_is_a_conflict(sm):
    token = uuid.uuid4().hex
    first = sm.create_pipeline(
        PipelineName=unique("tok"), PipelineDefinition=_definition("a"), RoleArn=ROLE, ClientRequestToken=token
    )
    with pytest.raises(ClientError) as raised:
        sm.create_pipeline(
            PipelineName=unique("tok"), PipelineDefinition=_definition("b"), RoleArn=ROLE, ClientRequestToken=token
        )
    assert error_code(raised) == "ConflictException"
    name = first["PipelineArn"].rsplit("/", 1)[1]
    again = sm.create_pipeline(
        PipelineName=name, PipelineDefinition=_definition("a"), RoleArn=ROLE, ClientRequestToken=token
    )
    assert again["PipelineArn"] == first["PipelineArn"]


# Finding 8: no host paths in answers, invalid characters refused at Create.


def test_keys_that_clash_as_file_and_folder_name_the_keys_not_host_paths(stack, sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="clash/a", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="clash/a/b.csv", Body=b"1,2\n")
    name = unique("clash")
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/clash/"}},
    }
    sm.create_training_job(**training_request(name, bucket, InputDataConfig=[channel]))
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("ClientError:"), reason
    assert f"s3://{bucket}/clash/a " in reason and f"s3://{bucket}/clash/a/b.csv" in reason
    assert str(stack.settings.data_dir) not in reason and "Errno" not in reason


def test_a_nul_character_is_refused_at_create(sm, bucket):
    with pytest.raises(ClientError) as raised:
        sm.create_processing_job(
            ProcessingJobName=unique("nul"),
            RoleArn=ROLE,
            AppSpecification={"ImageUri": FAKE_IMAGE},
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
            ProcessingInputs=[
                {
                    "InputName": "in",
                    "S3Input": {
                        "S3Uri": f"s3://{bucket}/data/train",
                        "LocalPath": "/opt/ml/processing/in\x00put",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
        )
    assert error_code(raised) == "ValidationException"
    assert "NUL" in raised.value.response["Error"]["Message"]


# The edge's open point: jobs' credentials with authentication on.

KEY_ID, SECRET = "AKIDSAFETYTEST", "safety-secret"


@pytest.fixture(scope="module")
def signed_stack(tmp_path_factory):
    fake = str(Path(__file__).with_name("fake_container.py"))
    settings = StackSettings(
        data_dir=tmp_path_factory.mktemp("signed-jobs"),
        port=0,
        region=REGION,
        require_auth=True,
        access_keys={KEY_ID: SECRET},
        extra_images={FAKE_IMAGE: (sys.executable, fake)},
    )
    stack = LocalStack(settings)
    stack.start()
    yield stack
    stack.stop()


def test_jobs_get_a_per_start_key_and_no_fixed_key_is_accepted(signed_stack):
    def client(service, key_id=KEY_ID, secret=SECRET):
        return boto3.client(
            service,
            endpoint_url=signed_stack.url,
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    sm, s3 = client("sagemaker"), client("s3")
    s3.create_bucket(Bucket="signed-jobs")
    s3.put_object(Bucket="signed-jobs", Key="data/train/x.csv", Body=b"1,2\n")
    name = unique("keyed")
    request = training_request(name, "signed-jobs")
    call_the_stack = "import boto3; boto3.client('s3').put_object(Bucket='signed-jobs', Key='from-job', Body=b'hi')"
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = [sys.executable, "-c", call_the_stack]
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert s3.get_object(Bucket="signed-jobs", Key="from-job")["Body"].read() == b"hi"
    assert signed_stack.settings.job_credentials.key_id != "sagestack"
    with pytest.raises(ClientError) as raised:
        client("sagemaker", "sagestack", "sagestack").list_models()
    assert error_code(raised) == "UnrecognizedClientException"
