"""How an executor writes records to a feature group's online store: the stack's bulk path, else BatchWriteRecord.

``RecordSender`` takes an Arrow batch of one partition and returns, per row that was refused, its index, error code
and message. Against the local stack (an ``endpoint_url`` that answers the bulk path) rows go as
``POST /_sagestack/feature-store/ingest`` calls of up to ``BULK_ROWS`` records, signed like every call (SigV4, service
``sagemaker``) and checked by the stack exactly as ``PutRecord`` checks a record; elsewhere (AWS) as
``BatchWriteRecord`` calls of 25 records. Several calls are in flight per partition. See
docs/feature-store.md#bulk-ingestion.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.config import AwsSettings

logger = logging.getLogger(__name__)

BULK_PATH = "/_sagestack/feature-store/ingest"
BULK_ROWS = 2000
BATCH_WRITE_ROWS = 25  # BatchWriteRecord's limit
Failure = tuple[int, str, str]  # (row index in the batch, error code, message)


def bulk_available(aws: AwsSettings) -> bool:
    """True when ``aws`` points at a stack that answers the bulk path (an empty request is refused as invalid)."""
    if not aws.endpoint_url:
        return False
    try:
        status, headers, _ = _BulkClient(aws, 1).post(b"{}")
    except Exception as exc:  # no stack there, or it does not speak the bulk path: use the AWS API
        logger.info("bulk ingest path not available at %s: %s", aws.endpoint_url, exc)
        return False
    return status == 400 and headers.get("x-amzn-errortype") == "ValidationError"


class _BulkClient:
    """Signed POSTs to the bulk path over one pooled HTTP session (what boto3 itself sends requests with)."""

    def __init__(self, aws: AwsSettings, connections: int) -> None:
        import boto3
        from botocore.httpsession import URLLib3Session

        self._session = boto3.Session(region_name=aws.region)
        self._region = self._session.region_name or "us-east-1"
        self._url = str(aws.endpoint_url).rstrip("/") + BULK_PATH
        self._http = URLLib3Session(max_pool_connections=connections)

    def post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=self._url, data=body, headers={"Content-Type": "application/json"})
        credentials = self._session.get_credentials()
        if credentials is not None:
            SigV4Auth(credentials.get_frozen_credentials(), "sagemaker", self._region).add_auth(request)
        response = self._http.send(request.prepare())
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status_code, headers, response.content


@dataclass(frozen=True)
class RecordSender:
    """Picklable: built on the driver, used in executors (``open`` makes the clients there)."""

    aws: AwsSettings
    group: str
    record_identifier: str
    targets: list[str]
    concurrency: int
    bulk: bool

    def open(self) -> _OpenSender:
        return _OpenSender(self)


class _OpenSender:
    def __init__(self, spec: RecordSender) -> None:
        self._spec = spec
        self._pool = ThreadPoolExecutor(max_workers=spec.concurrency)
        if spec.bulk:
            self._bulk: _BulkClient | None = _BulkClient(spec.aws, spec.concurrency)
            self._client = None
        else:
            self._bulk = None
            self._client = spec.aws.client(
                "sagemaker-featurestore-runtime",
                max_pool_connections=spec.concurrency,
                retries={"total_max_attempts": 3, "mode": "standard"},
            )

    def close(self) -> None:
        self._pool.shutdown()

    def send(self, batch: pa.RecordBatch) -> list[Failure]:
        """Write every row of ``batch``; the refused ones come back with their index in the batch."""
        names = batch.schema.names
        rows = list(zip(*[_texts(column) for column in batch.columns], strict=True))
        step = BULK_ROWS if self._bulk is not None else BATCH_WRITE_ROWS
        starts = range(0, len(rows), step)
        write = self._send_bulk if self._bulk is not None else self._send_batch
        failures: list[Failure] = []
        for found in self._pool.map(lambda start: write(names, rows[start : start + step], start), starts):
            failures.extend(found)
        return failures

    def _send_bulk(self, names: list[str], rows: Sequence[tuple[Any, ...]], offset: int) -> list[Failure]:
        assert self._bulk is not None
        document = {"FeatureGroupName": self._spec.group, "TargetStores": self._spec.targets}
        body = json.dumps({**document, "FeatureNames": names, "Records": rows}).encode()
        try:
            status, headers, content = self._bulk.post(body)
            answer = json.loads(content)
        except Exception as exc:  # the whole call failed: every record in it failed
            return [(offset + i, type(exc).__name__, str(exc)) for i in range(len(rows))]
        if status != 200:
            code = headers.get("x-amzn-errortype", f"HTTP{status}")
            return [(offset + i, code, str(answer.get("message", ""))) for i in range(len(rows))]
        return [(offset + int(e["Index"]), e["ErrorCode"], e["ErrorMessage"]) for e in answer["Errors"]]

    def _send_batch(self, names: list[str], rows: Sequence[tuple[Any, ...]], offset: int) -> list[Failure]:
        records = [
            [_feature(name, value) for name, value in zip(names, row, strict=True) if value is not None] for row in rows
        ]
        entries = [
            {"FeatureGroupName": self._spec.group, "Record": r, "TargetStores": self._spec.targets} for r in records
        ]
        try:
            answer = self._client.batch_write_record(Entries=entries)  # type: ignore[union-attr]
        except Exception as exc:  # the whole call failed: every record in it failed
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            return [(offset + i, str(code), str(exc)) for i in range(len(rows))]
        failures = []
        for error in answer.get("Errors", []):  # each error echoes its entry: find its row
            index = next((i for i, e in enumerate(entries) if e["Record"] == error["Entry"]["Record"]), 0)
            failures.append((offset + index, error["ErrorCode"], error["ErrorMessage"]))
        return failures


def _feature(name: str, value: str | list[str]) -> dict[str, Any]:
    if isinstance(value, list):
        return {"FeatureName": name, "ValueAsStringList": value}
    return {"FeatureName": name, "ValueAsString": value}


def _texts(column: pa.Array) -> list[Any]:
    """A column's values as the API's text (numbers in shortest round-trip form, ISO-8601 UTC times); null stays."""
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [None if v is None else [_text(item) for item in v] for v in column.to_pylist()]
    if pa.types.is_timestamp(kind) or pa.types.is_boolean(kind):
        return [None if v is None else _text(v) for v in column.to_pylist()]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return list(column.to_pylist())
    return list(pc.cast(column, pa.string()).to_pylist())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return str(value)
