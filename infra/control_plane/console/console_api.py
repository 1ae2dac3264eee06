"""The console's only way to the state: the operations a user calls, through the stack's own fronts.

Pages read with the same List/Describe operations boto3 would send (SageMaker through the dispatcher; BatchGetMetrics
and GetRecord through the sagemaker-metrics and Feature Store runtime fronts), and actions are the same
Start/Stop/Retry/Update calls, so the console never holds a second copy of the state and never bypasses validation.
Reports and logs are read where the stack keeps them: S3 objects, CloudWatch Logs events and metric data
(docs/console.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from moto.backends import get_backend

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.resource_helpers import arn_for
from infra.control_plane.experiments.sagemaker_metrics import MetricsFront
from infra.control_plane.feature_store.featurestore_runtime import FeatureStoreRuntimeFront, RuntimeRequest
from infra.control_plane.sagemaker_backend import SageMakerBackend
from infra.control_plane.sagemaker_dispatcher import SageMakerDispatcher

MAX_LOG_EVENTS = 500
MAX_SCANNED_LOG_EVENTS = 20000  # a metric or reward series is read from at most this many log events
MAX_REPORT_BYTES = 8 * 1024 * 1024  # a report file larger than this is not read into a page
MAX_METRIC_POINTS = 1000


@dataclass
class ConsoleApiError(Exception):
    """An error answer (e.g. ``ResourceNotFound``), shown on the page that asked."""

    status: int
    code: str
    message: str


class ConsoleApi:
    """Calls the stack's operations for one account/region and reads its S3 objects, logs and metric data."""

    def __init__(
        self, dispatcher: SageMakerDispatcher, backend: Callable[[], SageMakerBackend], account_id: str, region: str
    ) -> None:
        self._dispatcher = dispatcher
        self._backend = backend
        self._metrics = MetricsFront(lambda account, region: backend())
        self._features = FeatureStoreRuntimeFront(lambda account, region: backend().feature_store.feature_records)
        self._s3 = S3Access(account_id)
        self.account_id = account_id
        self.region = region

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        body = json.dumps(params).encode()
        status, answer = self._dispatcher.handle(operation, body, self.account_id, self.region)
        if status != 200:
            raise _error(status, answer)
        return answer

    def list_all(self, operation: str, key: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
        """Follow ``NextToken`` until ``limit`` items (the console's lists are bounded)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while len(items) < limit:
            page = self.call(operation, **params, **({"NextToken": token} if token else {}))
            items.extend(page.get(key) or [])
            token = page.get("NextToken")
            if not token:
                break
        return items[:limit]

    def batch_get_metrics(self, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``BatchGetMetrics`` (sagemaker-metrics) as the SDK sends it."""
        body = json.dumps({"MetricQueries": queries}).encode()
        status, _, answer = self._metrics.handle("/BatchGetMetrics", body, self.account_id, self.region)
        loaded = json.loads(answer)
        if status != 200:
            raise _error(status, loaded)
        return list(loaded.get("MetricQueryResults") or [])

    def get_record(self, group: str, identifier: str) -> dict[str, Any]:
        """``GetRecord`` (Feature Store runtime): the record's features, or ``{}`` when there is none."""
        request = RuntimeRequest(
            "GET",
            f"/FeatureGroup/{quote(group, safe='')}",
            urlencode({"RecordIdentifierValueAsString": identifier}),
            b"",
            self.account_id,
            self.region,
        )
        reply = self._features.handle(request)
        loaded = json.loads(reply.body or b"{}")
        if reply.status != 200:
            raise _error(reply.status, loaded)
        return dict(loaded)

    def log_events(self, group: str, stream_prefix: str, limit: int = MAX_LOG_EVENTS) -> list[tuple[str, int, str]]:
        """The last ``limit`` ``(stream, epoch millis, message)`` events of the streams starting with the prefix."""
        return self._backend().logs.read(group, stream_prefix, limit)

    def metric_data(self, namespace: str, metric: str, dimensions: Mapping[str, str]) -> list[tuple[float, float]]:
        """``(epoch seconds, value)`` of the CloudWatch data points with these dimensions (the last 1,000)."""
        return self.metric_family(namespace, metric, dimensions).get(metric, [])

    def metric_family(
        self, namespace: str, prefix: str, dimensions: Mapping[str, str]
    ) -> dict[str, list[tuple[float, float]]]:
        """Every CloudWatch metric whose name starts with ``prefix``, with these dimensions: name -> its last 1,000
        ``(epoch seconds, value)`` points."""
        wanted = dict(dimensions)
        backend = get_backend("cloudwatch")[self.account_id][self.region]
        found: dict[str, list[tuple[float, float]]] = {}
        for datum in list(backend.get_all_metrics()):
            if datum.namespace != namespace or not str(datum.name).startswith(prefix):
                continue
            present = {str(d.name): str(d.value) for d in datum.dimensions}
            if any(present.get(key) != value for key, value in wanted.items()):
                continue
            value = getattr(datum, "value", None)
            if isinstance(value, int | float) and isinstance(datum.timestamp, datetime):
                found.setdefault(str(datum.name), []).append((datum.timestamp.timestamp(), float(value)))
        return {name: sorted(points)[-MAX_METRIC_POINTS:] for name, points in sorted(found.items())}

    def s3_keys(self, uri: str, limit: int = 1000) -> list[tuple[str, int]]:
        """``(s3 uri, size)`` of the objects under a prefix (``[]`` when the bucket is missing), the last ``limit``."""
        try:
            location = S3Location.parse(uri)
            keys = self._s3.list_keys(location)
        except S3AccessError:
            return []
        return [(f"s3://{location.bucket}/{key}", size) for key, size in keys[-limit:]]

    def s3_bytes(self, uri: str, max_bytes: int = MAX_REPORT_BYTES) -> bytes | None:
        """An object's bytes, or None when it is missing or larger than ``max_bytes``."""
        try:
            location = S3Location.parse(uri)
            sizes = dict(self._s3.list_keys(location))
            if sizes.get(location.key, max_bytes + 1) > max_bytes:
                return None
            return self._s3.get_bytes(location)
        except S3AccessError:
            return None

    def s3_json(self, uri: str) -> Any:
        """A JSON report from S3, or None when it is missing, too large or not JSON."""
        data = self.s3_bytes(uri)
        if data is None:
            return None
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None

    def execution_arn(self, pipeline: str, execution_id: str) -> str:
        return f"{arn_for('pipeline', pipeline, self.account_id, self.region)}/execution/{execution_id}"


def _error(status: int, answer: Mapping[str, Any]) -> ConsoleApiError:
    code = str(answer.get("__type") or "Error")
    return ConsoleApiError(status, code, str(answer.get("message") or answer.get("Message") or code))
