"""The offline store: records buffered per group, written to S3 as Parquet under AWS's layout, a Glue table per group.

Layout (docs/feature-store.md): ``<ResolvedOutputS3Uri>/year=YYYY/month=MM/day=DD/hour=HH/<write time>_<id>.parquet``
partitioned by each record's event time, with the columns AWS adds (``write_time``, ``api_invocation_time``,
``is_deleted``). A group's buffer is written when it holds ``max_rows`` records, every ``flush_seconds``, before an
Athena query reads the store, and when the stack stops. A group with ``TableFormat: Iceberg`` gets the same files,
committed to its Iceberg table (``iceberg_store.py``): one snapshot per write.
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from infra.control_plane.core.aws_services import S3Access, S3Location
from infra.control_plane.core.catalogs.glue_catalog import PARQUET_SERDE, GlueAccess, GlueColumn, GlueTable
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.feature_store.feature_groups import FeatureGroup
from infra.control_plane.feature_store.feature_types import FeatureSpec
from infra.control_plane.feature_store.iceberg_store import IcebergOfflineTables

logger = logging.getLogger(__name__)

# The columns the offline store adds to every record, with their Glue types.
ADDED_COLUMNS = (
    GlueColumn("write_time", "timestamp"),
    GlueColumn("api_invocation_time", "timestamp"),
    GlueColumn("is_deleted", "boolean"),
)
_TIMESTAMP = pa.timestamp("ms")


@dataclass(frozen=True)
class OfflineRow:
    values: dict[str, Any]  # typed feature values by name
    event_time: datetime
    api_invocation_time: datetime
    is_deleted: bool = False


@dataclass
class _Buffer:
    group: FeatureGroup
    rows: list[OfflineRow] = field(default_factory=list)


def arrow_schema(features: list[FeatureSpec]) -> pa.Schema:
    fields = [pa.field(s.name, s.arrow_type) for s in features]
    fields += [pa.field("write_time", _TIMESTAMP), pa.field("api_invocation_time", _TIMESTAMP)]
    return pa.schema([*fields, pa.field("is_deleted", pa.bool_())])


def glue_table(group: FeatureGroup) -> GlueTable:
    assert group.offline_config is not None  # only groups with an offline store have a table
    catalog = group.offline_config["DataCatalogConfig"]
    columns = tuple(GlueColumn(s.name, s.glue_type) for s in group.features) + ADDED_COLUMNS
    return GlueTable(
        database=str(catalog["Database"]),
        name=str(catalog["TableName"]),
        location=str(group.offline_location),
        columns=columns,
        serde=PARQUET_SERDE,
        table_type="EXTERNAL_TABLE",
        serde_parameters={},
    )


def is_iceberg(group: FeatureGroup) -> bool:
    return group.offline_config is not None and group.offline_config.get("TableFormat") == "Iceberg"


def _identifier(group: FeatureGroup) -> tuple[str, str]:
    assert group.offline_config is not None
    catalog = group.offline_config["DataCatalogConfig"]
    return str(catalog["Database"]), str(catalog["TableName"])


class OfflineStoreWriter:
    def __init__(
        self,
        s3: S3Access,
        glue: GlueAccess,
        iceberg: IcebergOfflineTables,
        max_rows: int = 50_000,
        flush_seconds: float = 5.0,
    ) -> None:
        self._s3 = s3
        self._glue = glue
        self._iceberg = iceberg
        self._max_rows = max_rows
        self._flush_seconds = flush_seconds
        self._buffers: dict[str, _Buffer] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: files of one group are written in order
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, group: FeatureGroup) -> None:
        """Create (or update, after features were added) the group's Glue table, or its Iceberg table."""
        if group.offline_config is None:
            return
        if is_iceberg(group):
            self._iceberg.ensure(_identifier(group), str(group.offline_location), arrow_schema(group.features))
            return
        if group.offline_config.get("DisableGlueTableCreation"):
            return
        self._glue.put_table(glue_table(group), {"classification": "parquet"})

    def append(self, group: FeatureGroup, rows: list[OfflineRow]) -> None:
        with self._lock:
            buffer = self._buffers.setdefault(group.name, _Buffer(group))
            buffer.group = group
            buffer.rows.extend(rows)
            full = len(buffer.rows) >= self._max_rows
        self._start_timer()
        if full:
            self.flush(group.name)

    def flush(self, group_name: str | None = None) -> int:
        """Write what is buffered (for one group, or all); returns the number of records written."""
        with self._write_lock:
            with self._lock:
                names = [group_name] if group_name is not None else list(self._buffers)
                taken = [self._buffers.pop(n) for n in names if n in self._buffers]
            return sum(self._write(buffer) for buffer in taken)

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _start_timer(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="offline-store-flush", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:
                logger.exception("offline store flush failed")

    def _write(self, buffer: _Buffer) -> int:
        if not buffer.rows:
            return 0
        written_at = utcnow()
        base = S3Location.parse(str(buffer.group.offline_location))
        by_hour: dict[tuple[int, int, int, int], list[OfflineRow]] = defaultdict(list)
        for row in buffer.rows:
            moment = row.event_time.astimezone(UTC)
            by_hour[(moment.year, moment.month, moment.day, moment.hour)].append(row)
        schema = arrow_schema(buffer.group.features)
        written = []
        for (year, month, day, hour), rows in sorted(by_hour.items()):
            partition = f"year={year:04d}/month={month:02d}/day={day:02d}/hour={hour:02d}"
            name = f"{written_at:%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:16]}.parquet"
            data = _parquet(rows, schema, written_at)
            target = base.child(partition, name)
            self._s3.put_bytes(target, data)
            written.append(target.uri)
        if is_iceberg(buffer.group):
            self._iceberg.commit(_identifier(buffer.group), written)
        logger.debug("offline store: %d records of %s written", len(buffer.rows), buffer.group.name)
        return len(buffer.rows)


def _parquet(rows: list[OfflineRow], schema: pa.Schema, written_at: datetime) -> bytes:
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    stamp = written_at.astimezone(UTC).replace(tzinfo=None)
    for row in rows:
        for name in schema.names[:-3]:
            columns[name].append(row.values.get(name))
        columns["write_time"].append(stamp)
        columns["api_invocation_time"].append(row.api_invocation_time.astimezone(UTC).replace(tzinfo=None))
        columns["is_deleted"].append(row.is_deleted)
    table = pa.Table.from_pydict(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()
