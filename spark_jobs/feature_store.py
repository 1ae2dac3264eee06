"""Ingest a Spark DataFrame into a SageMaker feature group at executor parallelism, through boto3 only.

``FeatureStoreManager().ingest_data(input_data_frame, feature_group_arn, target_stores)`` has the shape of
sagemaker-feature-store-pyspark's manager. Each partition is written by its executor:

- to the online store (when targeted) through the runtime API: the stack's bulk path, 2,000 records a call, or
  ``BatchWriteRecord`` (25 records a call) against AWS (``spark_jobs.feature_store_online``), several calls in flight;
- to the offline store (when targeted) as Parquet files written straight to the group's offline store in S3 under
  AWS's layout (``year=/month=/day=/hour=`` of the event time, with ``write_time``, ``api_invocation_time`` and
  ``is_deleted``), as the Scala library does for batch ingestion; with both stores targeted, only the rows the online
  store accepted (so both stores hold the same records, and the offline store holds them at once rather than after
  the minutes AWS's own offline replication takes). For a group with ``TableFormat: Iceberg`` the driver then commits
  the files written as one Iceberg snapshot (``spark_jobs.feature_store_iceberg``).

Rows that cannot be ingested are collected on the driver and raised together (``FeatureStoreIngestionError``).
See docs/feature-store.md ("From Spark").
"""

from __future__ import annotations

import io
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from spark_jobs.config import AwsSettings
from spark_jobs.errors import InputDataError, SparkJobsError
from spark_jobs.feature_store_iceberg import commit_data_files
from spark_jobs.feature_store_online import RecordSender, bulk_available

logger = logging.getLogger(__name__)

ONLINE_STORE, OFFLINE_STORE = "OnlineStore", "OfflineStore"
_ARROW = {"Integral": pa.int64(), "Fractional": pa.float64(), "String": pa.string()}
# What each partition yields: a row per refused record, and a row per data file written (data_file set).
_OUTCOMES = "record_identifier string, error_code string, error_message string, data_file string"


class FeatureStoreIngestionError(SparkJobsError):
    """Some rows were not ingested; ``failures`` holds ``(record identifier, error code, message)`` for each."""

    def __init__(self, what: str, why: str = "", fix: str = "", failures: Sequence[tuple[str, str, str]] = ()) -> None:
        super().__init__(what, why, fix)
        self.failures = list(failures)


@dataclass(frozen=True)
class _Group:
    """What executors need of the feature group (picklable)."""

    name: str
    record_identifier: str
    event_time: str
    event_time_type: str
    types: dict[str, str]
    offline_uri: str | None
    online: bool
    iceberg_table: tuple[str, str] | None  # (database, table) of an Iceberg offline store


@dataclass(frozen=True)
class FeatureStoreManager:
    aws: AwsSettings = field(default_factory=AwsSettings.from_env)
    concurrency: int = 2  # online store calls in flight per partition (bulk, or BatchWriteRecord on AWS)
    bulk: bool | None = None  # the stack's bulk path for the online store; None: used when the endpoint answers it

    def ingest_data(
        self, input_data_frame: DataFrame, feature_group_arn: str, target_stores: Sequence[str] | None = None
    ) -> None:
        """Write every row of ``input_data_frame`` to the feature group's ``target_stores`` (default: all it has)."""
        group = _describe(self.aws, feature_group_arn)
        frame = _prepare(input_data_frame, group)
        targets = _targets(group, target_stores)
        sender = None
        if ONLINE_STORE in targets:
            bulk = bulk_available(self.aws) if self.bulk is None else self.bulk
            sender = RecordSender(self.aws, group.name, group.record_identifier, [ONLINE_STORE], self.concurrency, bulk)
        offline = _OfflineWriter(self.aws, group) if OFFLINE_STORE in targets else None
        outcomes = frame.mapInArrow(_PartitionWriter(group, sender, offline), _OUTCOMES).collect()
        if group.iceberg_table is not None and offline is not None:
            files = [str(r[3]) for r in outcomes if r[3] is not None]
            commit_data_files(self.aws, *group.iceberg_table, files)
        rows = [(str(r[0]), str(r[1]), str(r[2])) for r in outcomes if r[3] is None]
        if rows:
            raise FeatureStoreIngestionError(
                f"{len(rows)} rows were not ingested into feature group {group.name}",
                f"first: {rows[0][1]}: {rows[0][2]}",
                "fix the rows (see .failures) and ingest them again",
                rows,
            )


def _describe(aws: AwsSettings, feature_group_arn: str) -> _Group:
    described = aws.client("sagemaker").describe_feature_group(FeatureGroupName=feature_group_arn)
    if described["FeatureGroupStatus"] != "Created":
        raise InputDataError(
            f"feature group {described['FeatureGroupName']} is {described['FeatureGroupStatus']}",
            "records can be ingested only into a group in Created status",
            "wait until DescribeFeatureGroup reports Created",
        )
    types = {d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]}
    offline = described.get("OfflineStoreConfig")
    catalog = (offline or {}).get("DataCatalogConfig") or {}
    iceberg = (offline or {}).get("TableFormat") == "Iceberg"
    return _Group(
        name=described["FeatureGroupName"],
        record_identifier=described["RecordIdentifierFeatureName"],
        event_time=described["EventTimeFeatureName"],
        event_time_type=types[described["EventTimeFeatureName"]],
        types=types,
        offline_uri=offline["S3StorageConfig"]["ResolvedOutputS3Uri"] if offline else None,
        online=bool((described.get("OnlineStoreConfig") or {}).get("EnableOnlineStore")),
        iceberg_table=(str(catalog["Database"]), str(catalog["TableName"])) if iceberg else None,
    )


def _prepare(frame: DataFrame, group: _Group) -> DataFrame:
    unknown = [c for c in frame.columns if c not in group.types]
    if unknown:
        raise InputDataError(
            f"columns {unknown} are not features of feature group {group.name}",
            f"its features are {sorted(group.types)}",
            "drop or rename those columns, or add the features with UpdateFeatureGroup",
        )
    for required in (group.record_identifier, group.event_time):
        if required not in frame.columns:
            raise InputDataError(f"the DataFrame has no column {required}", "every record needs it", f"add {required}")
    event = frame.schema[group.event_time].dataType
    if isinstance(event, T.TimestampType | T.TimestampNTZType):  # Spark timestamps become the group's event time type
        from pyspark.sql import functions as F

        seconds = F.col(group.event_time).cast("double")
        iso = F.date_format(F.col(group.event_time), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
        frame = frame.withColumn(group.event_time, seconds if group.event_time_type == "Fractional" else iso)
    return frame


def _targets(group: _Group, requested: Sequence[str] | None) -> set[str]:
    available = ({ONLINE_STORE} if group.online else set()) | ({OFFLINE_STORE} if group.offline_uri else set())
    wanted = set(requested or available)
    if not wanted or not wanted <= available:
        raise InputDataError(
            f"target stores {sorted(wanted)} are not all stores of feature group {group.name}",
            f"it has {sorted(available)}",
            "pass target_stores among those",
        )
    return wanted


@dataclass(frozen=True)
class _PartitionWriter:
    """One partition: its rows to the online store (when targeted), then the rows the online store accepted (all
    rows, offline only) to the offline store as Parquet; yields the refused rows."""

    group: _Group
    sender: RecordSender | None
    offline: _OfflineWriter | None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        online = self.sender.open() if self.sender is not None else None
        parts: dict[tuple[int, int, int, int], list[pa.Table]] = defaultdict(list)
        failures: list[tuple[str, str, str]] = []
        try:
            for batch in batches:
                refused = online.send(batch) if online is not None else []
                failures += self._refused(batch, refused)
                if self.offline is not None:
                    accepted = batch if not refused else _without(batch, [index for index, _, _ in refused])
                    if accepted.num_rows:
                        failures += self.offline.add(accepted, parts)
        finally:
            if online is not None:
                online.close()
        files = self.offline.write(parts) if self.offline is not None else []
        yield _outcome_batch(failures, files)

    def _refused(self, batch: pa.RecordBatch, refused: list[tuple[int, str, str]]) -> list[tuple[str, str, str]]:
        if not refused:
            return []
        identifiers = batch.column(self.group.record_identifier).to_pylist()
        return [(str(identifiers[index]), code, message) for index, code, message in refused]


def _without(batch: pa.RecordBatch, indices: list[int]) -> pa.RecordBatch:
    keep = [True] * batch.num_rows
    for index in indices:
        keep[index] = False
    return batch.filter(pa.array(keep))


@dataclass(frozen=True)
class _OfflineWriter:
    aws: AwsSettings
    group: _Group

    def add(self, batch: pa.RecordBatch, parts: dict[tuple[int, int, int, int], list[pa.Table]]) -> list[Any]:
        """Type ``batch`` and file its rows by event-time hour into ``parts``; returns the rows that do not fit."""
        table, hours, failures = self._typed(pa.Table.from_batches([batch]))
        for partition, rows in _split_by_hour(table, hours).items():
            parts[partition].append(rows)
        return failures

    def write(self, parts: dict[tuple[int, int, int, int], list[pa.Table]]) -> list[str]:
        """One Parquet file per event-time hour under the offline store's layout; their ``s3://`` URIs."""
        s3 = self.aws.client("s3")
        bucket, _, prefix = str(self.group.offline_uri)[len("s3://") :].partition("/")
        now = datetime.now(tz=UTC)
        written: list[str] = []
        for (year, month, day, hour), tables in sorted(parts.items()):
            key = f"{prefix}/year={year:04d}/month={month:02d}/day={day:02d}/hour={hour:02d}/"
            key += f"{now:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:16]}.parquet"
            sink = io.BytesIO()
            pq.write_table(pa.concat_tables(tables), sink, compression="snappy")
            s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
            written.append(f"s3://{bucket}/{key}")
        return written

    def _typed(self, table: pa.Table) -> tuple[pa.Table, pa.Array, list[tuple[str, str, str]]]:
        """The table with the group's types and the columns AWS adds; rows that do not fit are dropped."""
        columns: dict[str, pa.Array] = {}
        valid = pa.array([True] * table.num_rows, pa.bool_())
        for name, kind in self.group.types.items():
            if name not in table.column_names:
                columns[name] = pa.nulls(table.num_rows, _ARROW[kind])
                continue
            source = table.column(name).combine_chunks()
            columns[name] = _checked_cast(source, _ARROW[kind])
            valid = pc.and_(valid, pc.or_(pc.is_null(source), pc.is_valid(columns[name])))
        event = columns[self.group.event_time]
        if self.group.event_time_type == "Fractional":
            stamps = pc.cast(pc.cast(pc.multiply(event, 1000.0), pa.int64(), safe=False), pa.timestamp("ms"))
        else:
            stamps = _iso_times(event)
        valid = pc.and_(valid, pc.and_(pc.is_valid(stamps), pc.is_valid(columns[self.group.record_identifier])))
        now = datetime.now(tz=UTC).replace(tzinfo=None)
        columns["write_time"] = pa.array([now] * table.num_rows, pa.timestamp("ms"))
        columns["api_invocation_time"] = columns["write_time"]
        columns["is_deleted"] = pa.array([False] * table.num_rows, pa.bool_())
        bad_rows = table.filter(pc.invert(valid))
        identifiers = bad_rows.column(self.group.record_identifier).to_pylist() if bad_rows.num_rows else []
        failures = [(str(i), "ValidationError", "a value does not fit its feature type") for i in identifiers]
        return pa.table(columns).filter(valid), stamps.filter(valid), failures


def _checked_cast(column: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast, with values that do not convert becoming null (the caller reports them)."""
    if column.type == target:
        return column
    source = (
        column if pa.types.is_string(target) or not pa.types.is_string(column.type) else pc.utf8_trim_whitespace(column)
    )
    try:
        return pc.cast(source, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values: list[Any] = []
    convert = int if pa.types.is_integer(target) else float
    for item in pc.cast(column, pa.string()).to_pylist():
        try:
            values.append(None if item is None else convert(item))
        except ValueError:
            values.append(None)
    return pa.array(values, target)


def _iso_times(event: pa.Array) -> pa.Array:
    values = []
    for item in event.to_pylist():
        try:
            values.append(None if item is None else datetime.fromisoformat(str(item).replace("Z", "+00:00")))
        except ValueError:
            values.append(None)
    return pc.cast(pa.array(values, pa.timestamp("ms", tz="UTC")), pa.timestamp("ms"))


def _split_by_hour(table: pa.Table, stamps: pa.Array) -> dict[tuple[int, int, int, int], pa.Table]:
    """The rows by event-time hour (UTC): sorted once by epoch hour and sliced at each change of hour."""
    if table.num_rows == 0:
        return {}
    millis = pc.cast(pc.cast(stamps, pa.int64()), pa.float64())
    hours = pc.cast(pc.floor(pc.divide(millis, 3_600_000.0)), pa.int64())
    order = pc.sort_indices(hours)
    ordered, runs = table.take(order), pc.run_end_encode(hours.take(order))
    parts, start = {}, 0
    for end, hour in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
        moment = datetime.fromtimestamp(hour * 3600, tz=UTC)
        parts[(moment.year, moment.month, moment.day, moment.hour)] = ordered.slice(start, end - start)
        start = end
    return parts


def _outcome_batch(failures: list[tuple[str, str, str]], files: list[str]) -> pa.RecordBatch:
    identifiers, codes, messages = (
        (list(column) for column in zip(*failures, strict=True)) if failures else ([], [], [])
    )
    nulls: list[str | None] = [None] * len(files)
    return pa.RecordBatch.from_pydict(
        {
            "record_identifier": [*identifiers, *nulls],
            "error_code": [*codes, *nulls],
            "error_message": [*messages, *nulls],
            "data_file": [*([None] * len(failures)), *files],
        },
        schema=pa.schema(
            [(name, pa.string()) for name in ("record_identifier", "error_code", "error_message", "data_file")]
        ),
    )
