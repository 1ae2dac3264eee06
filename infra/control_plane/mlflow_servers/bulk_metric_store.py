"""MLflow's SQL tracking store, with a bulk ``log_batch`` for a plain batch of metrics.

See docs/experiments.md#managed-mlflow. A managed server's ``mlflow server`` builds this store for its ``sqlite``
backend store through MLflow's tracking-store plugin entry point (``store_entry_point``). MLflow's own ``log_batch``
builds an ORM object per metric, flushes them through the unit of work and runs the run lookup, the inserts and the
latest-metric update in two sessions: most of the server's time per 100-metric call. Here a batch of metrics only,
whose every field passes a strict one-pass check (a subset of what MLflow accepts), is written in one transaction
with SQLAlchemy Core: one multi-row ``INSERT`` of the ``metrics`` rows that skips rows already logged (MLflow's
duplicate rule: the row's whole primary key), then one read and one write of ``latest_metrics`` per metric key, with
MLflow's rule for the latest value (greatest step, then timestamp, then value; the first of equals stays). The rows
are those MLflow's own store writes (NaN as 0 with ``is_nan``, infinities as the largest float). Anything else -
params, tags, model metrics, a run that is missing or not active, any field the check does not recognise - goes to
MLflow's own ``log_batch``, which validates it and raises MLflow's errors.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

from mlflow.entities import LifecycleStage, Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.utils.validation import path_not_unique, validate_param_and_metric_name
from sqlalchemy import ClauseElement, Connection, CursorResult, Dialect, and_, bindparam, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.compiler import SQLCompiler

logger = logging.getLogger(__name__)

_MAX_METRICS = 1000  # MLflow's limit of metrics per batch
_MAX_KEY_LENGTH = 250  # the metrics table's key column
_MAX_RUN_ID_LENGTH = 32  # the runs table's run_uuid column
_INT64 = (-(2**63), 2**63 - 1)

_METRICS = SqlMetric.__table__
_LATEST = SqlLatestMetric.__table__
_RUNS = SqlRun.__table__

ROW_COLUMNS = ("key", "value", "timestamp", "step", "is_nan", "run_uuid")  # of a ``metrics`` row, in this order
MetricRow = tuple[str, float, int, int, bool, str]
Point = tuple[str, float, int, int]  # key, value, timestamp, step
_LATEST_VALUES = ("value", "timestamp", "step", "is_nan")


def _is_int64(number: object, minimum: int = _INT64[0]) -> bool:
    return type(number) is int and minimum <= number <= _INT64[1]


def _is_plain_value(value: object) -> bool:
    return type(value) is float or _is_int64(value)


def _is_plain_key(key: object) -> bool:
    return (
        type(key) is str
        and 0 < len(key) <= _MAX_KEY_LENGTH
        and key.isascii()
        and bool(validate_param_and_metric_name(key))
        and not path_not_unique(key)
    )


def is_plain_point(key: object, value: object, timestamp: object, step: object, plain_keys: set[str]) -> bool:
    """Whether MLflow's validation accepts this metric point for sure (``plain_keys``: the keys already found plain,
    a batch has few)."""
    if key not in plain_keys:
        if not _is_plain_key(key):
            return False
        plain_keys.add(key)  # type: ignore[arg-type]  # a str: _is_plain_key checked it
    return _is_plain_value(value) and _is_int64(timestamp, minimum=0) and _is_int64(step)


def _is_plain_metric(metric: Metric, plain_keys: set[str]) -> bool:
    """Whether MLflow's validation accepts ``metric`` for sure and its own store would log it as a plain run metric."""
    return (
        is_plain_point(metric.key, metric.value, metric.timestamp, metric.step, plain_keys)
        and metric.model_id is None
        and metric.dataset_name is None
        and metric.dataset_digest is None
    )


def is_plain_run_id(run_id: object) -> bool:
    return type(run_id) is str and 0 < len(run_id) <= _MAX_RUN_ID_LENGTH and run_id.isascii() and run_id.isalnum()


def is_plain_metric_batch(
    run_id: object, metrics: Sequence[Metric], params: Sequence[Any], tags: Sequence[Any]
) -> bool:
    """Whether ``log_batch`` can take the bulk path: metrics only, each of them plain, for a well-formed run id."""
    plain_keys: set[str] = set()
    return (
        is_plain_run_id(run_id)
        and not params
        and not tags
        and 0 < len(metrics) <= _MAX_METRICS
        and all(_is_plain_metric(metric, plain_keys) for metric in metrics)
    )


def _stored_value(value: float) -> tuple[float, bool]:
    """The value column and ``is_nan`` of a metric value, as MLflow's store writes them."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (1.7976931348623157e308 if value > 0 else -1.7976931348623157e308), False
    return float(value), False


def metric_rows(run_id: str, points: Iterable[Point]) -> list[MetricRow]:
    """The ``metrics`` rows (``ROW_COLUMNS``) of a batch of (key, value, timestamp, step) points, in order, each
    distinct row once (MLflow's duplicate rule: the row's whole primary key)."""
    rows: dict[MetricRow, None] = {}
    for key, raw_value, timestamp, step in points:
        value, is_nan = _stored_value(raw_value)
        rows[(key, value, timestamp, step, is_nan, run_id)] = None  # a repeated row keeps its first place
    return list(rows)


def _recency(row: MetricRow) -> tuple[int, int, float]:
    return row[3], row[2], row[1]  # step, timestamp, value


def latest_rows(rows: Iterable[MetricRow]) -> dict[str, MetricRow]:
    """Per key, the batch's latest row: strictly greater (step, timestamp, value) wins, the first of equals stays."""
    latest: dict[str, MetricRow] = {}
    for row in rows:
        current = latest.get(row[0])
        if current is None or _recency(row) > _recency(current):
            latest[row[0]] = row
    return latest


class _Compiled:
    """One statement compiled once from MLflow's tables: its SQL and the names of its parameters in order. The
    driver binds them as they are (SQLAlchemy's statement building, cache-key lookup and per-row processing cost
    more than the statements themselves)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"not a SQL statement: {statement!r}")
        self.sql = str(compiled)
        self.order = tuple(compiled.positiontup or ())

    def run(self, connection: Connection, values: dict[str, Any]) -> CursorResult[Any]:
        return connection.exec_driver_sql(self.sql, tuple(values[name] for name in self.order))


class _Statements:
    def __init__(self, dialect: Dialect) -> None:
        by_run_and_key = and_(_LATEST.c.run_uuid == bindparam("run_uuid"), _LATEST.c.key == bindparam("key"))
        stage = select(_RUNS.c.lifecycle_stage).where(_RUNS.c.run_uuid == bindparam("run_uuid"))
        self.stage = _Compiled(stage, dialect)
        # Skips rows already logged: MLflow's duplicate rule is the row's whole primary key.
        self.insert_metrics = _Compiled(
            sqlite_insert(_METRICS).values({name: bindparam(name) for name in ROW_COLUMNS}).on_conflict_do_nothing(),
            dialect,
        )
        if self.insert_metrics.order != ROW_COLUMNS:
            raise TypeError(f"the metrics insert binds {self.insert_metrics.order}, not {ROW_COLUMNS}")
        self.read_latest = _Compiled(
            select(_LATEST.c.step, _LATEST.c.timestamp, _LATEST.c.value).where(by_run_and_key), dialect
        )
        self.insert_latest = _Compiled(_LATEST.insert().values({c.name: bindparam(c.name) for c in _LATEST.c}), dialect)
        self.rewrite_latest = _Compiled(
            update(_LATEST)
            .where(by_run_and_key)
            .values({name: bindparam(f"new_{name}") for name in ("value", "timestamp", "step", "is_nan")}),
            dialect,
        )

    def run_is_active(self, connection: Connection, run_id: str) -> bool:
        return self.stage.run(connection, {"run_uuid": run_id}).scalar_one_or_none() == LifecycleStage.ACTIVE

    def insert_rows(self, connection: Connection, rows: list[MetricRow]) -> None:
        connection.exec_driver_sql(self.insert_metrics.sql, rows)  # tuples in the insert's order

    def update_latest(self, connection: Connection, candidates: dict[str, MetricRow]) -> None:
        for row in candidates.values():
            values = dict(zip(ROW_COLUMNS, row, strict=True))
            stored = self.read_latest.run(connection, values).one_or_none()
            if stored is None:
                self.insert_latest.run(connection, values)
            elif _recency(row) > tuple(stored):
                self.rewrite_latest.run(connection, values | {f"new_{name}": values[name] for name in _LATEST_VALUES})


class BulkMetricSqlAlchemyStore(SqlAlchemyStore):
    """MLflow's ``SqlAlchemyStore`` whose ``log_batch`` writes a plain batch of metrics in one bulk transaction."""

    def __init__(self, db_uri: str, default_artifact_root: str) -> None:
        super().__init__(db_uri, default_artifact_root)
        self._statements = _Statements(self.engine.dialect) if self.engine.dialect.name == "sqlite" else None

    def log_batch(self, run_id: str, metrics: list[Metric], params: list[Any], tags: list[Any]) -> None:
        if self._statements is None or not is_plain_metric_batch(run_id, metrics, params, tags):
            super().log_batch(run_id, metrics, params, tags)
        elif not self.log_plain_points(run_id, [(m.key, m.value, m.timestamp, m.step) for m in metrics]):
            super().log_batch(run_id, metrics, params, tags)  # MLflow's error for a missing or inactive run

    def log_plain_points(self, run_id: str, points: Iterable[Point]) -> bool:
        """Writes points that passed the plain check (``is_plain_point``) and the latest values in one transaction;
        False (nothing written) if the run is not active or the database is not SQLite."""
        statements = self._statements
        if statements is None:
            return False
        rows = metric_rows(run_id, points)
        try:
            with self.engine.connect() as connection:
                if not statements.run_is_active(connection, run_id):
                    return False
                # The insert takes SQLite's write lock first: the latest values read after it are current.
                statements.insert_rows(connection, rows)
                statements.update_latest(connection, latest_rows(rows))
                connection.commit()
        except SQLAlchemyError as error:
            logger.warning("log_batch of %d metrics failed: %s", len(rows), type(error).__name__)
            raise MlflowException(f"Failed to log the batch: {type(error).__name__}", INTERNAL_ERROR) from error
        return True
