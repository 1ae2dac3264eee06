"""Glue tables as Arrow tables: the Parquet or CSV objects under a table's S3 location, read with its columns.

A table's data is cached until the set of objects under its location changes (a new offline-store file, an upload).
An Iceberg table (``table_type=ICEBERG`` in Glue) is read as Athena reads one: pyiceberg plans the scan of the
current snapshot named by ``metadata_location``, and exactly those data files are read (cached per metadata file).
Hive DDL that Athena accepts for external tables (``CREATE EXTERNAL TABLE``, ``DROP TABLE``) is applied to the
catalog here. See docs/feature-store.md ("Athena locally").
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from infra.control_plane.core.aws_services import S3Access, S3AccessError, S3Location
from infra.control_plane.core.catalogs.glue_catalog import (
    CSV_SERDE,
    GlueAccess,
    GlueColumn,
    GlueTable,
    GlueTableNotFound,
)
from infra.control_plane.core.catalogs.iceberg_catalog import METADATA_LOCATION, GlueIcebergCatalog

logger = logging.getLogger(__name__)

_SCALARS = {
    "string": pa.string(),
    "varchar": pa.string(),
    "char": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("ms"),
    "date": pa.date32(),
}
_CREATE = re.compile(
    r"^\s*CREATE\s+EXTERNAL\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[`\"\w.]+)\s*\((?P<columns>.*?)\)\s*"
    r"(?P<rest>ROW\s+FORMAT.*|STORED\s+AS.*|LOCATION.*)$",
    re.IGNORECASE | re.DOTALL,
)
_DROP = re.compile(r"^\s*DROP\s+TABLE\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>[`\"\w.]+)\s*;?\s*$", re.IGNORECASE)
_LOCATION = re.compile(r"LOCATION\s+'(?P<uri>[^']+)'", re.IGNORECASE)
_SERDE = re.compile(r"SERDE\s+'(?P<serde>[^']+)'", re.IGNORECASE)
_PROPERTY = re.compile(r"[\"'](?P<key>[^\"']+)[\"']\s*=\s*[\"'](?P<value>(?:\\.|[^\"'])*)[\"']")


class TableProblem(Exception):
    """A table cannot be read or defined; ``kind`` is Athena's error name (TABLE_NOT_FOUND, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class _Cached:
    listing: tuple[tuple[str, int], ...]
    table: pa.Table


def arrow_type(glue_type: str) -> pa.DataType:
    text = glue_type.strip().lower()
    if text.startswith("array<") and text.endswith(">"):
        return pa.list_(arrow_type(text[6:-1]))
    if text.startswith(("decimal", "varchar", "char")):
        return pa.float64() if text.startswith("decimal") else pa.string()
    return _SCALARS.get(text, pa.string())


class TableSources:
    def __init__(self, s3: S3Access, glue: GlueAccess, cache_size: int = 16) -> None:
        self._s3 = s3
        self._glue = glue
        self._iceberg = GlueIcebergCatalog(glue, s3)
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def table(self, database: str, name: str) -> GlueTable:
        try:
            return self._glue.get_table(database, name)
        except GlueTableNotFound as exc:
            raise TableProblem("TABLE_NOT_FOUND", f"Table awsdatacatalog.{database}.{name} does not exist") from exc

    def load(self, table: GlueTable) -> pa.Table:
        """The table's rows as Arrow, with exactly the catalog's columns (missing columns are null)."""
        try:
            location = S3Location.parse(table.location)
            listing = self._listing(table, location)
        except S3AccessError as exc:
            raise TableProblem("HIVE_PATH_ALREADY_EXISTS", f"Cannot read {table.location}: {exc}") from exc
        key = (table.database, table.name)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached.listing == listing:
                self._cache.move_to_end(key)
                return cached.table
        loaded = self._read(table, location.bucket, listing)
        with self._lock:
            self._cache[key] = _Cached(listing, loaded)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return loaded

    def _listing(self, table: GlueTable, location: S3Location) -> tuple[tuple[str, int], ...]:
        """The objects to read: under the location, or for an Iceberg table its metadata file (the snapshot)."""
        if table.table_type == "ICEBERG":
            metadata = table.parameters.get(METADATA_LOCATION)
            if not metadata:
                raise TableProblem("ICEBERG_INVALID_METADATA", f"Table {table.name} has no {METADATA_LOCATION}")
            return ((metadata, 0),)
        return tuple((k, s) for k, s in self._s3.list_keys(location) if not _hidden(k))

    def _data_files(self, table: GlueTable, bucket: str, listing: tuple[tuple[str, int], ...]) -> list[S3Location]:
        if table.table_type != "ICEBERG":
            return [S3Location(bucket, key) for key, _ in listing]
        try:
            scan = self._iceberg.load_table((table.database, table.name)).scan()
            tasks = list(scan.plan_files())
        except Exception as exc:  # pyiceberg raises many kinds for missing or bad metadata
            raise TableProblem("ICEBERG_INVALID_METADATA", f"Cannot plan the scan of {table.name}: {exc}") from exc
        if any(task.delete_files for task in tasks):
            raise TableProblem("NOT_SUPPORTED", f"Table {table.name} has Iceberg delete files, which are not read here")
        return [S3Location.parse(task.file.file_path) for task in tasks]

    def _read(self, table: GlueTable, bucket: str, listing: tuple[tuple[str, int], ...]) -> pa.Table:
        schema = pa.schema([pa.field(c.name, arrow_type(c.type)) for c in table.columns])
        parts = []
        for file in self._data_files(table, bucket, listing):
            data = self._s3.get_bytes(file)
            try:
                part = _read_csv(data, table, schema) if table.is_csv else pq.read_table(io.BytesIO(data))
            except (pa.ArrowInvalid, OSError) as exc:
                raise TableProblem("HIVE_BAD_DATA", f"Error reading {file.uri}: {exc}") from exc
            parts.append(_conform(part, schema, file.uri))
        return pa.concat_tables(parts) if parts else schema.empty_table()

    def apply_ddl(self, sql: str, database: str) -> bool:
        """Run ``CREATE EXTERNAL TABLE`` / ``DROP TABLE``; False when ``sql`` is not DDL this engine handles."""
        drop = _DROP.match(sql)
        if drop is not None:
            db, name = _qualified(drop.group("name"), database)
            if not self._glue.drop_table(db, name) and not drop.group("exists"):
                raise TableProblem("TABLE_NOT_FOUND", f"Table awsdatacatalog.{db}.{name} does not exist")
            return True
        create = _CREATE.match(sql.strip().rstrip(";"))
        if create is None:
            return False
        db, name = _qualified(create.group("name"), database)
        if not self._glue.has_database(db):
            raise TableProblem("SCHEMA_NOT_FOUND", f"Schema {db} does not exist")
        rest = create.group("rest")
        location = _LOCATION.search(rest)
        if location is None:
            raise TableProblem("SYNTAX_ERROR", "CREATE EXTERNAL TABLE needs a LOCATION")
        serde = _SERDE.search(rest)
        properties = {m.group("key"): m.group("value") for m in _PROPERTY.finditer(rest)}
        self._glue.put_table(
            GlueTable(
                database=db,
                name=name,
                location=location.group("uri"),
                columns=tuple(_columns(create.group("columns"))),
                serde=serde.group("serde") if serde else CSV_SERDE,
                table_type="EXTERNAL_TABLE",
                serde_parameters=properties,
            )
        )
        return True


def _hidden(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.startswith(("_", ".")) or name.endswith(".metadata")


def _qualified(raw: str, database: str) -> tuple[str, str]:
    parts = [p.strip('`"') for p in raw.split(".")]
    return (parts[-2] if len(parts) > 1 else database), parts[-1].lower()


def _columns(text: str) -> list[GlueColumn]:
    columns = []
    for item in re.split(r",(?![^<]*>)", text):
        words = item.strip().split(None, 1)
        if len(words) != 2:
            raise TableProblem("SYNTAX_ERROR", f"Cannot read the column definition '{item.strip()}'")
        columns.append(GlueColumn(words[0].strip('`"').lower(), words[1].strip().lower()))
    return columns


def _read_csv(data: bytes, table: GlueTable, schema: pa.Schema) -> pa.Table:
    params = table.serde_parameters
    parse = pacsv.ParseOptions(
        delimiter=params.get("separatorChar", params.get("field.delim", ",")),
        quote_char=params.get("quoteChar", '"'),
        escape_char=params.get("escapeChar", "\\").replace("\\\\", "\\") or False,
    )
    read = pacsv.ReadOptions(column_names=schema.names)
    convert = pacsv.ConvertOptions(column_types={f.name: pa.string() for f in schema})
    return pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)


def _conform(part: pa.Table, schema: pa.Schema, uri: str) -> pa.Table:
    by_lower = {name.lower(): name for name in part.column_names}
    arrays = []
    for field in schema:
        source = by_lower.get(field.name.lower())
        if source is None:
            arrays.append(pa.nulls(part.num_rows, field.type))
            continue
        column = part.column(source)
        if pa.types.is_string(column.type) and pa.types.is_timestamp(field.type):
            column = pc.strptime(column, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=True)
        try:
            arrays.append(column if column.type == field.type else column.cast(field.type, safe=False))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:  # e.g. a value the column's type cannot hold
            raise TableProblem(
                "HIVE_BAD_DATA", f"Error parsing column '{field.name}' ({field.type}) of {uri}: {exc}"
            ) from exc
    return pa.Table.from_arrays(arrays, schema=schema)
