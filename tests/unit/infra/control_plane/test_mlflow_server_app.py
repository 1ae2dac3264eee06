"""The managed servers' app takes only the ``log_batch`` bodies MLflow's parsing surely accepts (docs/experiments.md).

Every body ``plain_points`` takes must parse through MLflow's own path (protobuf's JSON parsing into ``LogBatch``, then
``Metric.from_proto``) to the very same points; every body it leaves goes to MLflow's handler.
"""

import json
import math

import pytest
from google.protobuf.json_format import ParseDict, ParseError
from mlflow.entities import Metric
from mlflow.protos.service_pb2 import LogBatch
from mlflow.utils.proto_json_utils import message_to_json

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
