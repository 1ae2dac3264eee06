"""In-process access to the embedded moto Glue Data Catalog: the tables the Feature Store registers, Athena reads."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.backends import get_backend

logger = logging.getLogger(__name__)


class GlueTableNotFound(Exception):
    """The database or table is not in the Data Catalog."""


@dataclass(frozen=True)
class GlueColumn:
    name: str
    type: str


@dataclass(frozen=True)
class GlueTable:
    """What a query engine needs of a catalog table: where its files are, how they are written, its columns."""

    database: str
    name: str
    location: str
    columns: tuple[GlueColumn, ...]
    serde: str  # the SerDe library: Parquet, OpenCSV, ...
    table_type: str  # EXTERNAL_TABLE or ICEBERG
    serde_parameters: Mapping[str, str]
    parameters: Mapping[str, str] = field(default_factory=dict)  # the table's own (metadata_location, ...)

    @property
    def is_csv(self) -> bool:
        return "csv" in self.serde.lower() or "lazysimple" in self.serde.lower()


PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


class GlueAccess:
    """Databases and tables in moto's Glue backend for one account/region (moto's registry, not HTTP)."""

    def __init__(self, account_id: str, region: str) -> None:
        self._account_id = account_id
        self._region = region

    def _backend(self) -> Any:
        return get_backend("glue")[self._account_id][self._region]

    def ensure_database(self, database: str) -> None:
        backend = self._backend()
        if database not in backend.databases:
            backend.create_database(database, {"Name": database})

    def put_table(self, table: GlueTable, parameters: Mapping[str, str] | None = None) -> None:
        """Create the table, or replace its definition (a new version) when it exists."""
        self.ensure_database(table.database)
        table_input = _table_input(table, parameters or {})
        backend = self._backend()
        if table.name in backend.databases[table.database].tables:
            backend.get_table(table.database, table.name).update(table_input)
        else:
            backend.create_table(table.database, table.name, table_input)

    def put_table_input(self, database: str, table_input: Mapping[str, Any]) -> None:
        """Create or replace a table from a Glue ``TableInput`` as given (Iceberg tables: pyiceberg's own layout)."""
        self.ensure_database(database)
        backend = self._backend()
        name = str(table_input["Name"])
        if name in backend.databases[database].tables:
            backend.get_table(database, name).update(dict(table_input))
        else:
            backend.create_table(database, name, dict(table_input))

    def raw_table(self, database: str, name: str) -> dict[str, Any] | None:
        """The table as Glue's GetTable returns it, or None."""
        database_obj = self._backend().databases.get(database)
        table = None if database_obj is None else database_obj.tables.get(name)
        return None if table is None else copy.deepcopy(dict(table.as_dict()))  # callers may change it

    def drop_table(self, database: str, name: str) -> bool:
        backend = self._backend()
        database_obj = backend.databases.get(database)
        if database_obj is None or name not in database_obj.tables:
            return False
        backend.delete_table(database, name)
        return True

    def get_table(self, database: str, name: str) -> GlueTable:
        backend = self._backend()
        database_obj = backend.databases.get(database)
        if database_obj is None:
            raise GlueTableNotFound(f"Database {database} does not exist.")
        # Glue keeps names lower case; Athena matches identifiers case-insensitively.
        table = database_obj.tables.get(name) or database_obj.tables.get(name.lower())
        if table is None:
            raise GlueTableNotFound(f"Table {database}.{name} does not exist.")
        return _from_glue(database, table.name, table.as_dict())

    def has_database(self, database: str) -> bool:
        return database in self._backend().databases


def _table_input(table: GlueTable, parameters: Mapping[str, str]) -> dict[str, Any]:
    csv = table.is_csv
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {**({"table_type": "ICEBERG"} if table.table_type == "ICEBERG" else {}), **parameters},
        "StorageDescriptor": {
            "Columns": [{"Name": c.name, "Type": c.type} for c in table.columns],
            "Location": table.location,
            "InputFormat": TEXT_INPUT if csv else PARQUET_INPUT,
            "OutputFormat": TEXT_OUTPUT if csv else PARQUET_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": table.serde, "Parameters": dict(table.serde_parameters)},
        },
    }


def _from_glue(database: str, name: str, raw: Mapping[str, Any]) -> GlueTable:
    descriptor = raw.get("StorageDescriptor") or {}
    serde = descriptor.get("SerdeInfo") or {}
    columns: Sequence[Mapping[str, str]] = descriptor.get("Columns") or []
    partitions: Sequence[Mapping[str, str]] = raw.get("PartitionKeys") or []
    table_type = str((raw.get("Parameters") or {}).get("table_type", "EXTERNAL_TABLE")).upper()
    return GlueTable(
        database=database,
        name=name,
        location=str(descriptor.get("Location") or ""),
        columns=tuple(GlueColumn(c["Name"], c.get("Type", "string")) for c in [*columns, *partitions]),
        serde=str(serde.get("SerializationLibrary") or PARQUET_SERDE),
        table_type=table_type,
        serde_parameters=dict(serde.get("Parameters") or {}),
        parameters={str(k): str(v) for k, v in (raw.get("Parameters") or {}).items()},
    )
