"""A durable stack (issue 18): state survives `serve` restarts and kill -9, through boto3 against a subprocess."""

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, ROLE
from tests.integration.helpers import training_request, wait_endpoint, wait_training

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
BUCKET = "durable-tests"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedStack:
    """``python -m infra.cli serve`` on a free port and a given data directory."""

    def __init__(self, data_dir, **env):
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SAGESTACK_DATA_DIR": str(data_dir),
            "SAGESTACK_PORT": str(self.port),
            "SAGESTACK_EXTRA_IMAGES": json.dumps({FAKE_IMAGE: [sys.executable, str(HERE / "fake_container.py")]}),
            **env,
        }
        self.env.pop("SAGESTACK_TEST_ENDPOINT", None)
        self.log = open(data_dir.parent / f"{data_dir.name}-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the stack exited with {self.process.returncode}")
            time.sleep(0.1)

    def _healthy(self):
        try:
            with urllib.request.urlopen(f"{self.url}/_sagestack/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def client(self, service):
        return boto3.client(
            service, endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()
        self.log.close()

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)  # the stack and what it started in its session (kill -9)
        self.process.wait()
        self.log.close()


def _pipeline_definition(sleep="0"):
    arguments = training_request("unused", BUCKET, HyperParameters={"sleep": sleep})
    arguments.pop("TrainingJobName")
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [],
            "Steps": [{"Name": "Train", "Type": "Training", "Arguments": arguments}],
        }
    )


def _wait(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.expensive
def test_every_resource_kind_survives_a_restart(tmp_path):
    stack = ServedStack(tmp_path / "state")
    try:
        s3, sm, smr = stack.client("s3"), stack.client("sagemaker"), stack.client("sagemaker-runtime")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part.csv", Body=b"1,0.5\n", ContentType="text/csv")
        sm.create_training_job(**training_request("durable-train", BUCKET, Tags=[{"Key": "team", "Value": "a"}]))
        trained = wait_training(sm, "durable-train")
        assert trained["TrainingJobStatus"] == "Completed"
        container = {"Image": FAKE_IMAGE, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]}
        sm.create_model(ModelName="durable-model", ExecutionRoleArn=ROLE, PrimaryContainer=container)
        sm.create_endpoint_config(
            EndpointConfigName="durable-config",
            ProductionVariants=[
                {
                    "VariantName": "main",
                    "ModelName": "durable-model",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sm.create_endpoint(EndpointName="durable-endpoint", EndpointConfigName="durable-config")
        assert wait_endpoint(sm, "durable-endpoint")["EndpointStatus"] == "InService"
        sm.create_model_package_group(ModelPackageGroupName="durable-group")
        package = sm.create_model_package(
            ModelPackageGroupName="durable-group",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        sm.create_pipeline(PipelineName="durable-pipeline", PipelineDefinition=_pipeline_definition(), RoleArn=ROLE)
        execution = sm.start_pipeline_execution(PipelineName="durable-pipeline")["PipelineExecutionArn"]
        _wait(
            lambda: (
                sm.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"] == "Succeeded"
            )
        )
        before = sm.describe_training_job(TrainingJobName="durable-train")
    finally:
        stack.stop()

    stack = ServedStack(tmp_path / "state")
    try:
        s3, sm, smr = stack.client("s3"), stack.client("sagemaker"), stack.client("sagemaker-runtime")
        got = s3.get_object(Bucket=BUCKET, Key="data/train/part.csv")
        assert got["Body"].read() == b"1,0.5\n" and got["ContentType"] == "text/csv"
        after = sm.describe_training_job(TrainingJobName="durable-train")
        for key in (
            "TrainingJobStatus",
            "ModelArtifacts",
            "HyperParameters",
            "CreationTime",
            "TrainingEndTime",
            "SecondaryStatusTransitions",
            "FinalMetricDataList",
        ):
            assert after.get(key) == before.get(key), key
        assert sm.list_tags(ResourceArn=after["TrainingJobArn"])["Tags"] == [{"Key": "team", "Value": "a"}]
        assert sm.describe_model(ModelName="durable-model")["PrimaryContainer"]["Image"] == FAKE_IMAGE
        assert (
            sm.describe_endpoint_config(EndpointConfigName="durable-config")["ProductionVariants"][0]["VariantName"]
            == "main"
        )
        assert wait_endpoint(sm, "durable-endpoint")["EndpointStatus"] == "InService"
        answer = smr.invoke_endpoint(EndpointName="durable-endpoint", Body=b"1,2", ContentType="text/csv")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert sm.describe_model_package(ModelPackageName=package)["ModelPackageGroupName"] == "durable-group"
        assert sm.describe_pipeline(PipelineName="durable-pipeline")["PipelineName"] == "durable-pipeline"
        executions = sm.list_pipeline_executions(PipelineName="durable-pipeline")["PipelineExecutionSummaries"]
        assert [e["PipelineExecutionArn"] for e in executions] == [execution]
        steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=execution)["PipelineExecutionSteps"]
        assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("Train", "Succeeded")]
    finally:
        stack.stop()


@pytest.mark.expensive
def test_running_work_ends_failed_after_a_kill_and_retry_resumes(tmp_path):
    stack = ServedStack(tmp_path / "state")
    try:
        s3, sm = stack.client("s3"), stack.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/part.csv", Body=b"1,0.5\n")
        sm.create_training_job(**training_request("long-train", BUCKET, HyperParameters={"sleep": "600"}))
        sm.create_pipeline(PipelineName="long-pipeline", PipelineDefinition=_pipeline_definition("600"), RoleArn=ROLE)
        execution = sm.start_pipeline_execution(PipelineName="long-pipeline")["PipelineExecutionArn"]
        _wait(lambda: sm.list_pipeline_execution_steps(PipelineExecutionArn=execution)["PipelineExecutionSteps"])
        time.sleep(1.0)  # past one state flush
    finally:
        stack.kill()

    stack = ServedStack(tmp_path / "state", SAGESTACK_PERSISTENCE="1")
    try:
        sm = stack.client("sagemaker")
        job = sm.describe_training_job(TrainingJobName="long-train")
        assert job["TrainingJobStatus"] == "Failed"
        assert "stopped while this was running" in job["FailureReason"]
        described = sm.describe_pipeline_execution(PipelineExecutionArn=execution)
        assert described["PipelineExecutionStatus"] == "Failed"
        assert "stopped while this was running" in described["FailureReason"]
        sm.update_pipeline(PipelineName="long-pipeline", PipelineDefinition=_pipeline_definition("0"))
        sm.retry_pipeline_execution(
            PipelineExecutionArn=execution, ClientRequestToken="retry-after-restart-" + "0" * 20
        )
        assert sm.describe_pipeline_execution(PipelineExecutionArn=execution)["PipelineExecutionStatus"] == "Executing"
        sm.stop_pipeline_execution(PipelineExecutionArn=execution, ClientRequestToken="stop-after-retry-" + "0" * 20)
    finally:
        stack.stop()


@pytest.mark.expensive
def test_kill_9_at_random_points_never_leaves_unreadable_state(tmp_path):
    data_dir = tmp_path / "state"
    written: dict[str, bytes] = {}
    rng = random.Random(18)
    for round_number in range(3):
        stack = ServedStack(data_dir)
        s3, sm = stack.client("s3"), stack.client("sagemaker")
        if round_number == 0:
            s3.create_bucket(Bucket=BUCKET)
            time.sleep(1.5)  # past one S3 mirror sync: a change younger than that may be lost to a kill -9
        stop = threading.Event()

        def writer(s3=s3, sm=sm, round_number=round_number, stop=stop):
            n = 0
            while not stop.is_set():
                key = f"r{round_number}/obj-{n}"
                body = os.urandom(rng.randint(1, 300_000))
                try:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                    sm.create_model(
                        ModelName=f"crash-{round_number}-{n}",
                        ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": FAKE_IMAGE},
                    )
                except Exception:
                    return
                written[key] = body
                n += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.5, 2.5))
        stack.kill()
        stop.set()
        thread.join()

        stack = ServedStack(data_dir)
        try:
            s3, sm = stack.client("s3"), stack.client("sagemaker")
            listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
            for item in listed:
                body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                assert body == written[item["Key"]], item["Key"]  # an object is whole or absent
            models = sm.list_models(MaxResults=100)["Models"]
            for model in models:
                assert sm.describe_model(ModelName=model["ModelName"])["PrimaryContainer"]["Image"] == FAKE_IMAGE
        finally:
            stack.stop()
    connection = sqlite3.connect(data_dir / "state" / "sagestack.db")
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()


def test_a_newer_state_schema_is_refused_untouched(tmp_path):
    data_dir = tmp_path / "state"
    (data_dir / "state").mkdir(parents=True)
    db = data_dir / "state" / "sagestack.db"
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    connection.execute("INSERT INTO schema_version VALUES (999)")
    connection.commit()
    connection.close()
    before = db.read_bytes()
    with pytest.raises(RuntimeError):
        ServedStack(data_dir)
    log = next(tmp_path.glob("state-*.log")).read_text()
    assert "written by a newer Sagestack" in log
    assert db.read_bytes() == before


def test_an_older_state_schema_is_migrated(tmp_path, monkeypatch):
    from infra.control_plane.core.durable import state_database

    data_dir = tmp_path / "state"
    first = state_database.StateDatabase(data_dir)
    first.close()
    monkeypatch.setattr(state_database, "SCHEMA_VERSION", state_database.SCHEMA_VERSION + 1)
    ran = []
    monkeypatch.setitem(state_database.MIGRATIONS, state_database.SCHEMA_VERSION - 1, lambda conn: ran.append(1))
    second = state_database.StateDatabase(data_dir)
    try:
        assert ran == [1] and second.version == state_database.SCHEMA_VERSION
    finally:
        second.close()


def test_persistence_off_keeps_nothing(tmp_path):
    stack = ServedStack(tmp_path / "state", SAGESTACK_PERSISTENCE="0")
    try:
        stack.client("sagemaker").create_model_package_group(ModelPackageGroupName="gone")
    finally:
        stack.stop()
    assert not (tmp_path / "state" / "state").exists()
    stack = ServedStack(tmp_path / "state", SAGESTACK_PERSISTENCE="0")
    try:
        with pytest.raises(ClientError):
            stack.client("sagemaker").describe_model_package_group(ModelPackageGroupName="gone")
    finally:
        stack.stop()


def test_reset_forgets_the_state(tmp_path):
    stack = ServedStack(tmp_path / "state")
    try:
        stack.client("sagemaker").create_model_package_group(ModelPackageGroupName="forgotten")
    finally:
        stack.stop()
    cli = [sys.executable, "-m", "infra.cli", "--data-dir", str(tmp_path / "state"), "reset"]
    subprocess.run(cli, check=True, cwd=ROOT, capture_output=True)
    stack = ServedStack(tmp_path / "state")
    try:
        with pytest.raises(ClientError):
            stack.client("sagemaker").describe_model_package_group(ModelPackageGroupName="forgotten")
    finally:
        stack.stop()


def _lambda_zip():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'echo': event}\n")
    return buffer.getvalue()


def _create_moto_and_room_resources(stack):
    iam, logs, cw, ecr = stack.client("iam"), stack.client("logs"), stack.client("cloudwatch"), stack.client("ecr")
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    policy_arn = iam.create_policy(PolicyName="durable-policy", PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    iam.create_role(RoleName="durable-role", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="durable-role", PolicyArn=policy_arn)
    logs.create_log_group(logGroupName="/durable/group")
    logs.create_log_stream(logGroupName="/durable/group", logStreamName="s1")
    now = int(time.time() * 1000)
    events = [{"timestamp": now, "message": "first"}, {"timestamp": now + 1, "message": "second"}]
    logs.put_log_events(logGroupName="/durable/group", logStreamName="s1", logEvents=events)
    cw.put_metric_data(Namespace="Durable", MetricData=[{"MetricName": "m", "Value": 2.5}])
    ecr.create_repository(repositoryName="durable-repo")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    ecr.put_image(repositoryName="durable-repo", imageManifest=json.dumps(manifest), imageTag="v1")

    s3, sm, lam, athena = stack.client("s3"), stack.client("sagemaker"), stack.client("lambda"), stack.client("athena")
    s3.create_bucket(Bucket=BUCKET)
    sm.create_feature_group(
        FeatureGroupName="durable-features",
        RecordIdentifierFeatureName="id",
        EventTimeFeatureName="t",
        FeatureDefinitions=[
            {"FeatureName": "id", "FeatureType": "String"},
            {"FeatureName": "t", "FeatureType": "String"},
        ],
        OnlineStoreConfig={"EnableOnlineStore": True},
    )
    layer = lam.publish_layer_version(LayerName="durable-layer", Content={"ZipFile": _lambda_zip()})
    lam.create_function(
        FunctionName="durable-fn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": _lambda_zip()},
        Layers=[layer["LayerVersionArn"]],
    )
    query = athena.start_query_execution(
        QueryString="SELECT 1 AS one", ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena/"}
    )["QueryExecutionId"]
    _wait(
        lambda: athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    )
    _wait(lambda: sm.describe_feature_group(FeatureGroupName="durable-features")["FeatureGroupStatus"] == "Created")
    return policy_arn, query


def _assert_moto_and_room_resources(stack, policy_arn, query, messages):
    iam, logs, cw, ecr = stack.client("iam"), stack.client("logs"), stack.client("cloudwatch"), stack.client("ecr")
    attached = iam.list_attached_role_policies(RoleName="durable-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy_arn]
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["PolicyName"] == "durable-policy"
    got = logs.get_log_events(logGroupName="/durable/group", logStreamName="s1", startFromHead=True)
    assert [e["message"] for e in got["events"]] == messages
    metrics = cw.list_metrics(Namespace="Durable")["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["m"]
    images = ecr.describe_images(repositoryName="durable-repo")["imageDetails"]
    assert [d.get("imageTags") for d in images] == [["v1"]]

    sm, lam, athena = stack.client("sagemaker"), stack.client("lambda"), stack.client("athena")
    group = sm.describe_feature_group(FeatureGroupName="durable-features")
    assert group["FeatureGroupStatus"] == "Created" and len(group["FeatureDefinitions"]) == 2
    result = lam.invoke(FunctionName="durable-fn", Payload=b'{"x": 1}')
    assert json.loads(result["Payload"].read()) == {"echo": {"x": 1}}
    assert lam.get_layer_version(LayerName="durable-layer", VersionNumber=1)["Version"] == 1
    assert athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]["State"] == "SUCCEEDED"
    rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"]["Rows"]
    assert rows == [{"Data": [{"VarCharValue": "one"}]}, {"Data": [{"VarCharValue": "1"}]}]


def test_moto_services_and_newer_rooms_survive_a_restart_and_a_kill(tmp_path):
    data_dir = tmp_path / "state"
    stack = ServedStack(data_dir)
    try:
        policy_arn, query = _create_moto_and_room_resources(stack)
    finally:
        stack.stop()
    stack = ServedStack(data_dir)
    try:
        _assert_moto_and_room_resources(stack, policy_arn, query, ["first", "second"])
        logs = stack.client("logs")
        logs.put_log_events(
            logGroupName="/durable/group",
            logStreamName="s1",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": "third"}],
        )
        database = data_dir / "state" / "sagestack.db"

        def third_stored():
            with sqlite3.connect(database) as connection:
                return connection.execute("SELECT 1 FROM log_events WHERE message = 'third'").fetchone()

        _wait(third_stored)
    finally:
        stack.kill()
    stack = ServedStack(data_dir)
    try:
        _assert_moto_and_room_resources(stack, policy_arn, query, ["first", "second", "third"])
    finally:
        stack.stop()
