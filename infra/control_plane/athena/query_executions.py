"""Athena query executions: StartQueryExecution runs the SQL in the background, results land in S3 as CSV.

States as on Athena: QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED. A failed query carries Athena's reason
(``SYNTAX_ERROR: line 1:1: ...``, ``TABLE_NOT_FOUND: ...``) in ``StateChangeReason`` and ``AthenaError``.
StartQueryExecution waits up to ``start_grace_seconds`` so a small query is already finished when it answers.
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from infra.control_plane.athena.query_engine import QueryEngine, QueryFailed, QueryResult
from infra.control_plane.athena.result_files import render_csv, render_value
from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.durable.record_journal import RESTART_REASON
from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.core.store import DurableMap

logger = logging.getLogger(__name__)
_USER_ERROR, _SYSTEM_ERROR = 2, 1
_MAX_RESULTS = 1000


class InvalidRequestException(ServiceError):
    code = "InvalidRequestException"

    def to_body(self) -> dict[str, object]:
        return {"__type": self.code, "Message": self.message, "AthenaErrorCode": "INVALID_INPUT"}


class QueryState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass
class StoredResult:
    """A finished query's result as GetQueryResults pages it: values already rendered as Athena prints them."""

    columns: list[tuple[str, str]]  # (name, Athena type)
    rows: list[list[str | None]]  # None is SQL NULL
    statement_type: str  # DML or DDL

    @classmethod
    def of(cls, result: QueryResult) -> StoredResult:
        rows = [[None if v is None else render_value(v) for v in row] for row in result.rows]
        return cls(list(result.columns), rows, result.statement_type)


@dataclass
class QueryExecution:
    id: str
    query: str
    database: str
    catalog: str
    output_location: str
    work_group: str
    submitted: datetime = field(default_factory=utcnow)
    state: QueryState = QueryState.QUEUED
    completed: datetime | None = None
    reason: str | None = None
    error_category: int | None = None
    result: StoredResult | None = None

    def to_api(self) -> dict[str, Any]:
        statement = self.result.statement_type if self.result is not None else "DML"
        status: dict[str, Any] = {
            "State": self.state,
            "SubmissionDateTime": self.submitted,
            "CompletionDateTime": self.completed,
            "StateChangeReason": self.reason,
        }
        if self.state is QueryState.FAILED:
            status["AthenaError"] = {
                "ErrorCategory": self.error_category,
                "ErrorType": 1000 if self.error_category == _USER_ERROR else 401,
                "Retryable": False,
                "ErrorMessage": self.reason,
            }
        elapsed = int(((self.completed or utcnow()) - self.submitted).total_seconds() * 1000)
        return {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": statement,
            "ResultConfiguration": {"OutputLocation": self.result_location},
            "QueryExecutionContext": {"Database": self.database, "Catalog": self.catalog},
            "Status": status,
            "Statistics": {"EngineExecutionTimeInMillis": elapsed, "TotalExecutionTimeInMillis": elapsed},
            "WorkGroup": self.work_group,
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"},
        }

    @property
    def result_location(self) -> str:
        suffix = "txt" if self.result is not None and self.result.statement_type == "DDL" else "csv"
        return f"{self.output_location.rstrip('/')}/{self.id}.{suffix}"


class QueryExecutions:
    def __init__(
        self,
        s3: S3Access,
        engine: QueryEngine,
        before_query: Callable[[], object],
        workers: int = 2,
        start_grace_seconds: float = 2.0,
    ) -> None:
        self._s3 = s3
        self._engine = engine
        self._before_query = before_query  # the offline store's buffers are written first: queries see every record
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="athena")
        self._grace = start_grace_seconds
        # Durable under the backend's record binding (docs/local-stack.md, "What persists").
        self._executions: MutableMapping[str, QueryExecution] = DurableMap("athena-query-execution", QueryExecution)
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def recover_after_restart(self) -> None:
        """A query that was queued or running when the stack stopped ends FAILED with the restart reason."""
        for query_id in list(self._executions):
            execution = self._executions[query_id]
            if execution.state in (QueryState.QUEUED, QueryState.RUNNING):
                execution.state, execution.completed = QueryState.FAILED, utcnow()
                execution.reason, execution.error_category = f"GENERIC_INTERNAL_ERROR: {RESTART_REASON}", _SYSTEM_ERROR
                self._executions[query_id] = execution

    def start_query_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        if not output:
            raise InvalidRequestException(
                "No output location provided. An output location is required either through the Workgroup result "
                "configuration setting or as an API input."
            )
        try:
            S3Location.parse(str(output))
        except S3AccessError as exc:
            raise InvalidRequestException(f"The output location {output} is not a valid S3 URI.") from exc
        context = params.get("QueryExecutionContext") or {}
        execution = QueryExecution(
            id=str(uuid.uuid4()),
            query=str(params["QueryString"]),
            database=str(context.get("Database") or "default"),
            catalog=str(context.get("Catalog") or "AwsDataCatalog"),
            output_location=str(output),
            work_group=str(params.get("WorkGroup") or "primary"),
        )
        with self._lock:
            self._executions[execution.id] = execution
            future = self._pool.submit(self._run, execution)
            self._futures[execution.id] = future
        try:
            future.result(timeout=self._grace)
        except FutureTimeout:
            pass
        return {"QueryExecutionId": execution.id}

    def get_query_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {"QueryExecution": self._get(str(params["QueryExecutionId"])).to_api()}

    def batch_get_query_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        for query_id in params["QueryExecutionIds"]:
            execution = self._executions.get(query_id)
            if execution is None:
                missing.append({"QueryExecutionId": query_id, "ErrorCode": "INVALID_INPUT"})
            else:
                found.append(execution.to_api())
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def list_query_executions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        group = params.get("WorkGroup") or "primary"
        with self._lock:
            ids = [e.id for e in sorted(self._executions.values(), key=lambda e: e.submitted, reverse=True)]
            ids = [i for i in ids if self._executions[i].work_group == group]
        start, size = _offset(params.get("NextToken")), int(params.get("MaxResults") or 50)
        page = ids[start : start + size]
        return {"QueryExecutionIds": page, "NextToken": _token(start + size) if start + size < len(ids) else None}

    def stop_query_execution(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._get(str(params["QueryExecutionId"]))
        future = self._futures.get(execution.id)
        if execution.state in (QueryState.QUEUED, QueryState.RUNNING) and future is not None and future.cancel():
            execution.state, execution.completed = QueryState.CANCELLED, utcnow()
            execution.reason = "Query was cancelled by the user"
            self._executions[execution.id] = execution
        return {}

    def get_query_results(self, params: Mapping[str, Any]) -> dict[str, Any]:
        execution = self._get(str(params["QueryExecutionId"]))
        if execution.state in (QueryState.QUEUED, QueryState.RUNNING):
            raise InvalidRequestException(f"Query has not yet finished. Current state: {execution.state.value}")
        if execution.state is not QueryState.SUCCEEDED or execution.result is None:
            raise InvalidRequestException(
                f"Query did not finish successfully. Final query state: {execution.state.value}\n{execution.reason}"
            )
        result = execution.result
        header = [{"Data": [{"VarCharValue": name} for name, _ in result.columns]}] if result.columns else []
        rows = header + [{"Data": [_datum(v) for v in row]} for row in result.rows]
        start = _offset(params.get("NextToken"))
        size = min(int(params.get("MaxResults") or _MAX_RESULTS), _MAX_RESULTS)
        more = start + size < len(rows)
        columns = [
            {"Name": n, "Label": n, "Type": t, "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar"}
            for n, t in result.columns
        ]
        return {
            "UpdateCount": 0,
            "ResultSet": {"Rows": rows[start : start + size], "ResultSetMetadata": {"ColumnInfo": columns}},
            "NextToken": _token(start + size) if more else None,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _get(self, query_id: str) -> QueryExecution:
        execution = self._executions.get(query_id)
        if execution is None:
            raise InvalidRequestException(f"QueryExecution {query_id} was not found")
        return execution

    def _run(self, execution: QueryExecution) -> None:
        execution.state = QueryState.RUNNING
        try:
            self._before_query()
            result = self._engine.run(execution.query, execution.database)
            self._write_result(execution, result)
        except QueryFailed as exc:
            execution.reason, execution.error_category = f"{exc.kind}: {exc.message}", _USER_ERROR
            execution.state = QueryState.FAILED
        except Exception as exc:
            logger.exception("Athena query %s failed", execution.id)
            execution.reason, execution.error_category = f"GENERIC_INTERNAL_ERROR: {exc}", _SYSTEM_ERROR
            execution.state = QueryState.FAILED
        else:
            execution.result, execution.state = StoredResult.of(result), QueryState.SUCCEEDED
        execution.completed = utcnow()
        self._executions[execution.id] = execution  # its final state stored at once

    def _write_result(self, execution: QueryExecution, result: QueryResult) -> None:
        suffix = "txt" if result.statement_type == "DDL" else "csv"
        location = S3Location.parse(f"{execution.output_location.rstrip('/')}/{execution.id}.{suffix}")
        try:
            self._s3.put_bytes(location, render_csv(result) if suffix == "csv" else b"")
        except S3AccessError as exc:
            raise QueryFailed("PERMISSION_DENIED", f"Cannot write the query results to {location.uri}: {exc}") from exc


def _datum(value: str | None) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": value}


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode("ascii")).decode().removeprefix("offset:")))
    except (ValueError, UnicodeError) as exc:
        raise InvalidRequestException(f"Invalid NextToken: {token}") from exc
