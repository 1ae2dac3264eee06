"""The managed servers' app takes only the ``log_batch`` bodies MLflow's parsing surely accepts (docs/experiments.md).

Every body ``plain_points`` takes must parse through MLflow's own path (protobuf's JSON parsing into ``LogBatch``, then
``Metric.from_proto``) to the very same points; every body it leaves goes to MLflow's handler.
"""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
from google.protobuf.json_format import ParseDict, ParseError
from mlflow.entities import Metric
from mlflow.protos.service_pb2 import LogBatch
from mlflow.utils.proto_json_utils import message_to_json

from infra.control_plane.mlflow_servers import mlflow_process
from infra.control_plane.mlflow_servers.server_app import plain_points

RUN = "0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000_000


def _client_body(metrics: list[Metric]) -> dict:
    """What MLflow's REST client posts for ``log_batch`` (RestStore.log_batch)."""
    message = LogBatch(metrics=[m.to_proto() for m in metrics], params=[], tags=[], run_id=RUN)
    return json.loads(message_to_json(message))


def _as_mlflow_parses(body: dict) -> list[tuple]:
    parsed = ParseDict(body, LogBatch())
    return [(m.key, m.value, m.timestamp, m.step) for m in map(Metric.from_proto, parsed.metrics)]


def _comparable(points):
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in point) for point in points]


def test_the_clients_bodies_are_taken_as_mlflow_parses_them():
    metrics = [Metric("loss", 1.0 / (s + 1), T0 + s, s) for s in range(100)]
    metrics += [Metric("loss", math.nan, T0, 0), Metric("gain", math.inf, T0, -1), Metric("gain", -math.inf, T0, 2)]
    metrics += [Metric("train/acc 1:a", 0.0, 0, 0), Metric("n", 3, T0, 2**63 - 1)]
    body = _client_body(metrics)
    assert body["metrics"][100]["value"] == "NaN"  # protobuf's JSON spelling, which the app reads as MLflow does
    taken = plain_points(body)
    assert taken is not None and taken[0] == RUN
    assert _comparable(taken[1]) == _comparable(_as_mlflow_parses(body))


def _with(metric_fields: dict | None = None, **body_fields) -> dict:
    metric = {"key": "loss", "value": 0.5, "timestamp": T0, "step": 1} | (metric_fields or {})
    return {"run_id": RUN, "metrics": [metric]} | body_fields


@pytest.mark.parametrize(
    "body",
    [
        _with(params=[{"key": "eta", "value": "0.3"}]),
        _with(tags=[{"key": "team", "value": "risk"}]),
        _with(runId=RUN),  # the JSON name: MLflow refuses a body that spells a field both ways
        _with(run_id="a-b"),
        _with(metrics=[]),
        _with(metrics=[{"key": "loss", "value": 0.5, "timestamp": T0, "step": 1}] * 1001),
        _with({"model_id": "m-1"}),
        _with({"value": "1.5"}),  # a number as a string: protobuf parses it, MLflow's handler is left to
        _with({"value": "nan"}),  # refused by protobuf
        _with({"value": math.nan}),  # a bare NaN literal: refused by protobuf
        _with({"value": math.inf}),
        _with({"value": True}),
        _with({"value": None}),
        _with({"value": 10**30}),
        _with({"timestamp": -1}),
        _with({"timestamp": float(T0)}),
        _with({"step": 2**63}),
        _with({"key": "bad|key"}),
        _with({"key": "../escape"}),
        _with({"key": "é"}),
        [_with()],
        "{}",
    ],
)
def test_any_other_body_is_left_to_mlflows_handler(body):
    assert plain_points(body) is None


def test_a_missing_step_is_left_to_mlflow():
    body = _with()
    del body["metrics"][0]["step"]
    assert plain_points(body) is None


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_bare_non_finite_literals_are_errors_of_mlflows_parsing(value):
    """Why the app leaves them: protobuf's parse refuses them, so MLflow answers an error."""
    with pytest.raises(ParseError):
        ParseDict(_with({"value": value}), LogBatch())


_WORKER_PROBE = """
import json, os
from importlib.metadata import entry_points
from infra.control_plane.mlflow_servers.store_entry_point import BACKEND_STORE_VARIABLE, built_store

[point] = [p for p in entry_points(group="mlflow.app") if p.name == "sagestack"]  # what --app-name finds
client = point.load()().test_client()
experiment = client.post("/api/2.0/mlflow/experiments/create", json={"name": "probe"}).json["experiment_id"]
run_id = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}).json["run"]["info"]["run_id"]
store = built_store(os.environ[BACKEND_STORE_VARIABLE])
taken = []
log_plain_points = store.log_plain_points
store.log_plain_points = lambda *batch: taken.append(len(batch[1])) or log_plain_points(*batch)
plain = {"run_id": run_id, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 5, "step": s} for s in range(3)]}
answers = [client.post("/api/2.0/mlflow/runs/log-batch", json=plain)]
answers.append(client.post("/api/2.0/mlflow/runs/log-batch", json=plain | {"params": [{"key": "a", "value": "1"}]}))
history = client.get(f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss").json["metrics"]
print(json.dumps([[a.status_code, a.get_data(as_text=True)] for a in answers] + [taken, len(history)]))
"""


def test_the_server_worker_answers_a_plain_batch_through_its_backend_store(probe_launch, tmp_path):
    """What the server's gunicorn worker runs: the app of the ``mlflow.app`` entry point, with the environment the
    stack and ``mlflow server`` give it; a plain batch goes through the bulk store, one with params through MLflow."""
    launch = probe_launch
    env = mlflow_process.server_environment(launch) | {  # what ``mlflow server`` adds for its worker
        "_MLFLOW_SERVER_FILE_STORE": mlflow_process.backend_store_uri(launch),
        "_MLFLOW_SERVER_ARTIFACT_ROOT": "s3://bucket/runs",
    }
    done = subprocess.run([sys.executable, "-c", _WORKER_PROBE], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [[200, "{}"], [200, "{}"], [3], 3]


def test_the_server_process_sends_no_usage_events_and_runs_no_job_consumers(probe_launch):
    """The stack is offline: MLflow's telemetry is off in the server's environment, as is its job execution."""
    env = mlflow_process.server_environment(probe_launch)
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["HOME"] == str(probe_launch.server_dir)


def test_a_server_whose_port_another_process_answers_on_is_not_taken_as_ready(probe_launch, impostor):
    launch = dataclasses.replace(probe_launch, port=impostor, startup_timeout_seconds=60)
    process = mlflow_process.MlflowServerProcess(launch)

    with pytest.raises(mlflow_process.MlflowPortTakenError, match=f"another process listens on port {impostor}"):
        process.wait_ready()
    assert not process.is_alive()
