"""The ``mlflow.app`` entry point of a managed server: MLflow's own Flask app, a plain ``log_batch`` answered early.

See docs/experiments.md#managed-mlflow. ``mlflow server --app-name sagestack`` serves the app this factory returns:
MLflow's Flask app itself (``mlflow.server.app``: every route, MLflow's security and workspace hooks, its error
answers), with one more ``before_request`` hook, run after MLflow's own. The hook takes a ``runs/log-batch`` call whose
JSON body is a plain batch of metrics - the body MLflow's client sends, with every field of a type and value that
MLflow's parsing and validation accept for sure - and writes it through the server's store
(``BulkMetricSqlAlchemyStore.log_plain_points``), skipping MLflow's JSON-to-protobuf parse and the entity objects,
most of the server's time per call once the store's own share was cut. It answers what MLflow's handler answers
(``{}``). Anything else - params or tags, another field, a string where MLflow parses one, a run that is missing or
not active, a store not yet built - is left to MLflow's handler, which parses, validates and answers as always.
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any

from infra.control_plane.mlflow_servers.bulk_metric_store import Point, is_plain_point, is_plain_run_id
from infra.control_plane.mlflow_servers.store_entry_point import BACKEND_STORE_VARIABLE, built_store

if TYPE_CHECKING:
    from flask import Flask, Response

logger = logging.getLogger(__name__)

_LOG_BATCH_PATHS = frozenset({"/api/2.0/mlflow/runs/log-batch", "/ajax-api/2.0/mlflow/runs/log-batch"})
_BODY_FIELDS = frozenset({"run_id", "metrics", "params", "tags"})
_METRIC_FIELDS = frozenset({"key", "value", "timestamp", "step"})
_MAX_METRICS = 1000  # MLflow's limit of metrics per batch
# The spellings of non-finite values that protobuf's JSON parsing reads for a double (MLflow's client sends them);
# a bare NaN or Infinity literal is a parse error there, so such a body goes to MLflow's handler.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ANSWER = "{}"  # MLflow's answer to a log_batch: the empty LogBatch.Response as JSON


def create_app() -> Flask:
    """MLflow's Flask app with the plain ``log_batch`` hook for the server's backend store (gunicorn calls this once
    in its worker; without the stack's variable, MLflow's app as it is)."""
    from mlflow.server import app

    store_uri = os.environ.get(BACKEND_STORE_VARIABLE)
    hooks = app.before_request_funcs.get(None, [])
    if store_uri and not any(isinstance(hook, PlainLogBatch) for hook in hooks):
        app.before_request(PlainLogBatch(store_uri))
    return app


def plain_points(body: Any) -> tuple[str, list[Point]] | None:
    """(run id, points) of a ``log_batch`` JSON body that holds only a plain batch of metrics, else None."""
    if type(body) is not dict or not body.keys() <= _BODY_FIELDS:
        return None
    run_id, metrics = body.get("run_id"), body.get("metrics")
    if body.get("params", []) != [] or body.get("tags", []) != [] or not is_plain_run_id(run_id):
        return None
    if type(metrics) is not list or not 0 < len(metrics) <= _MAX_METRICS:
        return None
    plain_keys: set[str] = set()
    points: list[Point] = []
    for metric in metrics:
        if type(metric) is not dict or metric.keys() != _METRIC_FIELDS:
            return None
        key, value, timestamp, step = metric["key"], metric["value"], metric["timestamp"], metric["step"]
        if type(value) is str:
            value = _NON_FINITE.get(value, value)
        elif type(value) is float and not math.isfinite(value):
            return None
        if not is_plain_point(key, value, timestamp, step, plain_keys):
            return None
        points.append((key, value, timestamp, step))
    return str(run_id), points


class PlainLogBatch:
    """The ``before_request`` hook: answers a plain ``log_batch`` itself; None lets Flask run MLflow's handler."""

    def __init__(self, store_uri: str) -> None:
        self.store_uri = store_uri

    def __call__(self) -> Response | None:
        from flask import Response, request
        from mlflow.exceptions import MlflowException

        if request.method != "POST" or request.path not in _LOG_BATCH_PATHS:
            return None
        # MLflow's content-type check, as its handler makes it; any other type gets MLflow's error.
        if (request.content_type or "").split(";")[0] != "application/json":
            return None
        store = built_store(self.store_uri)  # None until MLflow's handlers built it: they answer meanwhile
        batch = plain_points(request.get_json(force=True, silent=True))  # cached: MLflow's handler reads it again
        if store is None or batch is None:
            return None
        try:
            if not store.log_plain_points(*batch):
                return None  # a run missing or not active: MLflow's handler answers its error
        except MlflowException as error:  # as MLflow's handlers answer one
            return Response(error.serialize_as_json(), status=error.get_http_status_code(), mimetype="application/json")
        return Response(_ANSWER, mimetype="application/json")
