"""Managed MLflow through boto3: a real ``mlflow server`` per tracking server, an MLflow client logging to it."""

import hashlib
import http.client
import json
import logging
import socket
import sqlite3
import time
from contextlib import closing
from urllib.parse import urlsplit

import mlflow
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from infra.cli import env_lines
from infra.config import StackSettings
from tests.integration.conftest import unique

ROLE_ARN = "arn:aws:iam::123456789012:role/mlflow"


@pytest.fixture
def mlflow_env(monkeypatch, stack_url):
    """What a user's shell has after `eval $(sagestack env)`: clients write artifacts to the stack's S3 themselves."""
    for key, value in {
        "MLFLOW_S3_ENDPOINT_URL": stack_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def _code(raised):
    return raised.value.response["Error"]["Code"]


def _wait_status(sm, name, wanted, seconds=180):
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        status = sm.describe_mlflow_tracking_server(TrackingServerName=name)["TrackingServerStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            return seen
        if status.endswith("Failed"):
            break
        time.sleep(0.2)
    raise AssertionError(f"{name} went {seen}, never {wanted}")


@pytest.fixture(scope="module")
def artifacts_bucket(s3):
    name = "mlflow-artifacts-tests"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def tracking_server(sm, artifacts_bucket):
    name = unique("mlflow")
    arn = sm.create_mlflow_tracking_server(
        TrackingServerName=name, ArtifactStoreUri=f"s3://{artifacts_bucket}/runs", RoleArn=ROLE_ARN
    )["TrackingServerArn"]
    assert arn.endswith(f":mlflow-tracking-server/{name}")
    assert _wait_status(sm, name, "Created")[0] in ("Creating", "Created")
    yield name
    sm.delete_mlflow_tracking_server(TrackingServerName=name)
    deadline = time.monotonic() + 60
    while name in [s["TrackingServerName"] for s in sm.list_mlflow_tracking_servers()["TrackingServerSummaries"]]:
        assert time.monotonic() < deadline, "the deleted server is still listed"
        time.sleep(0.2)


def _log_run(tracking_uri, experiment, steps):
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(experiment)
    run = client.create_run(experiment_id, run_name="eta-03")
    metrics = [mlflow.entities.Metric("auc", 0.5 + step / 100, int(time.time() * 1000), step) for step in range(steps)]
    params = [mlflow.entities.Param("eta", "0.3")]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.log_text(run.info.run_id, "hello from the stack", "notes/readme.txt")
    client.set_terminated(run.info.run_id)
    return client, run.info.run_id


def test_mlflow_client_logs_to_the_managed_server_and_reads_back(sm, s3, tracking_server, artifacts_bucket, mlflow_env):
    described = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)
    assert described["IsActive"] == "Active"
    assert described["MlflowVersion"] == mlflow.__version__
    client, run_id = _log_run(described["TrackingServerUrl"], unique("exp"), steps=20)
    run = client.get_run(run_id)
    assert run.data.params == {"eta": "0.3"}
    assert run.data.metrics["auc"] == pytest.approx(0.69)
    assert [m.step for m in client.get_metric_history(run_id, "auc")] == list(range(20))
    assert client.download_artifacts(run_id, "notes/readme.txt")  # read back through the server
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=artifacts_bucket, Prefix="runs/")["Contents"]]
    assert any(k.endswith(f"{run_id}/artifacts/notes/readme.txt") for k in keys)  # the stack's S3 holds it
    url = sm.create_presigned_mlflow_tracking_server_url(TrackingServerName=tracking_server)["AuthorizedUrl"]
    assert url.startswith(described["TrackingServerUrl"])


def test_stop_and_start_keep_the_runs(sm, tracking_server, mlflow_env):
    url = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerUrl"]
    _, run_id = _log_run(url, unique("exp"), steps=3)
    with pytest.raises(ClientError) as raised:
        sm.start_mlflow_tracking_server(TrackingServerName=tracking_server)  # it runs already
    assert _code(raised) == "ConflictException"
    sm.stop_mlflow_tracking_server(TrackingServerName=tracking_server)
    assert _wait_status(sm, tracking_server, "Stopped")[0] in ("Stopping", "Stopped")
    assert sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["IsActive"] == "Inactive"
    with pytest.raises(ClientError) as raised:
        sm.stop_mlflow_tracking_server(TrackingServerName=tracking_server)
    assert _code(raised) == "ConflictException"
    with socket.socket() as holder:  # another program takes the server's port while it is stopped
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # its old connections may be in TIME_WAIT
        holder.bind(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        holder.listen()
        sm.start_mlflow_tracking_server(TrackingServerName=tracking_server)
        assert _wait_status(sm, tracking_server, "Created")[0] in ("Starting", "Created")
    moved = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerUrl"]
    assert moved != url
    assert mlflow.MlflowClient(tracking_uri=moved).get_run(run_id).data.metrics["auc"] == pytest.approx(0.52)


def test_list_and_bad_input(sm, tracking_server, artifacts_bucket):
    listed = sm.list_mlflow_tracking_servers(SortBy="Name", SortOrder="Ascending")["TrackingServerSummaries"]
    assert tracking_server in [s["TrackingServerName"] for s in listed]
    for call in (
        sm.describe_mlflow_tracking_server,
        sm.start_mlflow_tracking_server,
        sm.stop_mlflow_tracking_server,
        sm.delete_mlflow_tracking_server,
        sm.create_presigned_mlflow_tracking_server_url,
    ):
        with pytest.raises(ClientError) as raised:
            call(TrackingServerName="no-such-server")
        assert _code(raised) == "ResourceNotFound"
    with pytest.raises(ClientError) as raised:
        sm.create_mlflow_tracking_server(
            TrackingServerName=tracking_server, ArtifactStoreUri=f"s3://{artifacts_bucket}/x", RoleArn=ROLE_ARN
        )
    assert _code(raised) == "ValidationException"
    assert "already exists" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sm.create_mlflow_tracking_server(
            TrackingServerName=unique("m"), ArtifactStoreUri="s3://no-such-bucket-here/x", RoleArn=ROLE_ARN
        )
    assert _code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.create_mlflow_tracking_server(
            TrackingServerName=unique("m"),
            ArtifactStoreUri=f"s3://{artifacts_bucket}/x",
            RoleArn=ROLE_ARN,
            MlflowVersion="1.30.0",
        )
    assert _code(raised) == "ValidationException"


def test_the_sagemaker_mlflow_plugin_logs_through_the_stack_by_arn(sm, stack_url, tracking_server, mlflow_env):
    described = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)
    arn = described["TrackingServerArn"]
    mlflow_env.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", stack_url)  # instead of <region>.experiments.sagemaker.aws
    mlflow_env.setenv("MLFLOW_TRACKING_URI", arn)  # the plugin signs for, and routes by, the current tracking URI
    client = mlflow.MlflowClient(tracking_uri=arn)
    experiment_id = client.create_experiment(unique("by-arn"))
    run = client.create_run(experiment_id)
    client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", 0.25, 0, 0)])
    client.log_text(run.info.run_id, "via the plugin", "notes.txt")
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.25}
    plain = mlflow.MlflowClient(tracking_uri=described["TrackingServerUrl"])
    assert plain.get_run(run.info.run_id).info.artifact_uri.startswith("s3://")
    gone = arn.replace(tracking_server, "gone")
    mlflow_env.setenv("MLFLOW_TRACKING_URI", gone)
    with pytest.raises(mlflow.exceptions.MlflowException, match="does not exist"):
        mlflow.MlflowClient(tracking_uri=gone).get_experiment(experiment_id)


def test_by_arn_after_sagestack_env_logs_without_header_warnings(sm, stack, tracking_server, monkeypatch, caplog):
    """`sagestack env` points the sagemaker-mlflow plugin at the stack; with the ARN as tracking URI, as on AWS, the
    plugin's header provider finds its ARN (no 'Encountered unexpected error during resolving request headers')."""
    settings = StackSettings(data_dir=stack.settings.data_dir, port=stack.settings.port, region="us-east-1")
    for line in env_lines(settings, stack.settings.data_dir / "sdk-config.yaml"):
        key, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(key, value)
    arn = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerArn"]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(arn)
    try:
        with caplog.at_level(logging.WARNING, logger="mlflow.tracking.request_header.registry"):
            client = mlflow.MlflowClient()
            run = client.create_run(client.create_experiment(unique("env")))
            client.log_batch(
                run.info.run_id, metrics=[mlflow.entities.Metric("loss", 0.5, 0, step) for step in range(5)]
            )
            assert len(client.get_metric_history(run.info.run_id, "loss")) == 5
    finally:
        mlflow.set_tracking_uri(previous)
    assert not [r for r in caplog.records if "resolving request headers" in r.getMessage()]


def test_metric_batches_through_the_server_are_the_rows_mlflows_own_store_writes(sm, stack, tracking_server, tmp_path):
    """The server's bulk log_batch (docs/experiments.md#managed-mlflow): the same batches logged through the server
    and into MLflow's stock SQLite store in this process read back alike, through the server and from its mlflow.db
    by MLflow's stock store; a bad batch gets MLflow's error."""
    url = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerUrl"]
    batches = [
        [Metric("loss", 1.0 / (step + 1), 1_000 + step, step) for step in range(start, start + 100)]
        for start in range(0, 300, 100)
    ]
    batches.append([Metric("loss", 0.5, 1_000, 3), Metric("acc", float("nan"), 7, 1), Metric("acc", 0.9, 7, 1)])
    batches.append([Metric("loss", 0.5, 1_000, 3), Metric("acc", float("inf"), 7, 1), Metric("lr", 3, 2, 0)])
    seen = []
    for client in (MlflowClient(tracking_uri=url), MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'stock.db'}")):
        run_id = client.create_run(client.create_experiment(unique("bulk"))).info.run_id
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
        with pytest.raises(mlflow.exceptions.MlflowException) as raised:
            client.log_batch(run_id, metrics=[Metric("bad|name", 1.0, 0, 0)])
        assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
        seen.append((run_id, _metrics_of(client, run_id)))
    (server_run, through_server), (_, in_stock_store) = seen
    assert repr(through_server) == repr(in_stock_store)  # repr: NaN equals NaN
    assert len(through_server[1]["loss"]) == 301 and through_server[0]["acc"] == 1.7976931348623157e308
    [database] = (stack.settings.data_dir / "mlflow-tracking-servers").glob(f"*/*/{tracking_server}/mlflow.db")
    assert repr(_metrics_of(SqlAlchemyStore(f"sqlite:///{database}", str(tmp_path)), server_run)) == repr(
        in_stock_store
    )


def _post_log_batch(url, body, content_type="application/json"):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        data = body if isinstance(body, str) else json.dumps(body)
        connection.request("POST", "/api/2.0/mlflow/runs/log-batch", data, {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_log_batch_bodies_the_servers_app_leaves_get_mlflows_own_answers(sm, tracking_server):
    """The servers' app answers a plain batch of metrics itself (docs/experiments.md#managed-mlflow); every other
    body, run or content type is MLflow's handler's to parse, log or refuse."""
    url = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerUrl"]
    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment(unique("bodies"))
    run_id, deleted = (client.create_run(experiment).info.run_id for _ in range(2))
    client.delete_run(deleted)

    def plain(run, value=0.25):
        return {"run_id": run, "metrics": [{"key": "p", "value": value, "timestamp": 5, "step": 1}]}

    assert _post_log_batch(url, plain(run_id)) == (200, {})
    assert _post_log_batch(url, plain(run_id, "Infinity")) == (200, {})
    string_value = {"run_id": run_id, "metrics": [{"key": "s", "value": "1.5", "timestamp": 5, "step": 0}]}
    assert _post_log_batch(url, string_value) == (200, {})  # protobuf parses a number in a string: MLflow logs it
    refused = [
        _post_log_batch(url, plain(run_id), content_type="text/plain"),
        _post_log_batch(url, plain(deleted)),
        _post_log_batch(url, plain("0" * 32)),
    ]
    assert [(status, answer["error_code"]) for status, answer in refused] == [
        (400, "INVALID_PARAMETER_VALUE"),
        (400, "INVALID_PARAMETER_VALUE"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
    ]
    largest = 1.7976931348623157e308  # how MLflow's SQL store keeps an infinity
    assert client.get_run(run_id).data.metrics == {"p": largest, "s": 1.5}
    assert [m.value for m in client.get_metric_history(run_id, "p")] == [0.25, largest]
    assert client.get_run(deleted).data.metrics == {}


def _metrics_of(client, run_id):
    """A run's latest metric values and each metric's history, in a comparable order."""
    latest = dict(sorted(client.get_run(run_id).data.metrics.items()))
    history = {
        key: sorted((m.step, m.timestamp, repr(m.value)) for m in client.get_metric_history(run_id, key))
        for key in latest
    }
    return latest, history


def _signed_headers(stack_url, path, arn):
    request = AWSRequest("GET", stack_url + path, headers={"x-mlflow-sm-tracking-server-arn": arn})
    SigV4Auth(Credentials("test", "test"), "sagemaker-mlflow", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_tracking_calls_by_arn_share_kept_alive_connections(sm, stack, stack_url, tracking_server):
    """The edge keeps a plugin's connection between tracking calls and relays them over kept connections to the
    server, whose SQLite store runs in WAL mode."""
    arn = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerArn"]
    path = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    parts = urlsplit(stack_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        sockets = set()
        for _ in range(3):
            connection.request("GET", path, headers=_signed_headers(stack_url, path, arn))
            response = connection.getresponse()
            assert json.loads(response.read())["experiment"]["name"] == "Default"
            assert response.getheader("Connection") is None  # kept open for the next call
            sockets.add(id(connection.sock))
        assert len(sockets) == 1
        gone = arn.replace(tracking_server, "gone")
        connection.request("GET", path, headers=_signed_headers(stack_url, path, gone))
        assert connection.getresponse().read() and connection.sock is not None  # an error keeps it too
    finally:
        connection.close()
    [database] = (stack.settings.data_dir / "mlflow-tracking-servers").glob(f"*/*/{tracking_server}/mlflow.db")
    with closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _packages_of(sm, group):
    try:
        return sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    except ClientError:
        return []


def test_automatic_model_registration_puts_registered_versions_in_the_model_registry(
    sm, tracking_server, artifacts_bucket, mlflow_env
):
    described = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)
    assert described["AutomaticModelRegistration"] is False
    model = unique("credit")
    group = f"{model}-{hashlib.sha256(tracking_server.encode()).hexdigest()[:6]}"  # AWS's group name
    client = mlflow.MlflowClient(tracking_uri=described["TrackingServerUrl"])
    run = client.create_run(client.create_experiment(unique("registry")))
    client.create_registered_model(model)
    source = f"s3://{artifacts_bucket}/runs/{run.info.run_id}/artifacts/model"
    client.create_model_version(model, source=source, run_id=run.info.run_id)

    sm.update_mlflow_tracking_server(TrackingServerName=tracking_server, AutomaticModelRegistration=True)
    _wait_status(sm, tracking_server, "Updated")
    described = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)
    assert described["AutomaticModelRegistration"] is True
    client = mlflow.MlflowClient(tracking_uri=described["TrackingServerUrl"])
    client.create_model_version(model, source=source, run_id=run.info.run_id)  # version 2, while it is on
    client.create_model_version(model, source=source, run_id=run.info.run_id)  # version 3
    deadline = time.monotonic() + 120
    while len(packages := _packages_of(sm, group)) < 2:
        assert time.monotonic() < deadline, f"{group} has {packages}"
        time.sleep(0.5)
    time.sleep(4)  # two more sync rounds: version 1, registered while the setting was off, stays out
    packages = _packages_of(sm, group)
    assert sorted(p["ModelPackageVersion"] for p in packages) == [1, 2]
    assert sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupStatus"] == "Completed"
    first, latest = (
        sm.describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in sorted(packages, key=lambda p: p["ModelPackageVersion"])
    )
    assert first["CustomerMetadataProperties"]["MlflowModelVersion"] == "2"
    assert first["SourceUri"] == source
    assert latest["ModelApprovalStatus"] == "PendingManualApproval"
    assert latest["CustomerMetadataProperties"]["MlflowRegisteredModelName"] == model
    assert latest["CustomerMetadataProperties"]["MlflowModelVersion"] == "3"
    assert latest["CustomerMetadataProperties"]["MlflowTrackingServerArn"] == described["TrackingServerArn"]

    sm.update_mlflow_tracking_server(TrackingServerName=tracking_server, AutomaticModelRegistration=False)
    _wait_status(sm, tracking_server, "Updated")
    url = sm.describe_mlflow_tracking_server(TrackingServerName=tracking_server)["TrackingServerUrl"]
    mlflow.MlflowClient(tracking_uri=url).create_model_version(model, source=source, run_id=run.info.run_id)
    time.sleep(6)  # three sync rounds: version 4 stays out of the Model Registry
    assert len(_packages_of(sm, group)) == 2
