"""Writing a DataFrame as a SageMaker training channel: one file per Spark partition, written by the executors.

Formats: ``csv`` (no header, columns in DataFrame order, so the label must come first), ``parquet`` and
``recordio`` (RecordIO-protobuf, dense float32, the first column as the label when ``label_first``). Nothing is
collected to the driver except one small row per partition (its file name, rows and bytes) for the manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql.types import LongType, NumericType, StringType, StructField, StructType

from spark_jobs.errors import InputDataError
from spark_jobs.recordio_protobuf import encode_dense
from spark_jobs.storage import Destination, staging_file

logger = logging.getLogger(__name__)

EXTENSIONS = {"csv": "csv", "parquet": "parquet", "recordio": "pbr"}
CONTENT_TYPES = {"csv": "text/csv", "parquet": "application/x-parquet", "recordio": "application/x-recordio-protobuf"}
_PART_SCHEMA = StructType(
    [StructField("part", StringType()), StructField("rows", LongType()), StructField("bytes", LongType())]
)


@dataclass(frozen=True)
class ChannelPart:
    part: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class ChannelInfo:
    """What one channel write produced (it goes into the job manifest)."""

    uri: str
    format: str
    content_type: str
    rows: int
    parts: tuple[ChannelPart, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "uri": self.uri,
            "format": self.format,
            "content_type": self.content_type,
            "rows": self.rows,
            "files": [{"name": p.part, "rows": p.rows, "bytes": p.bytes} for p in self.parts],
        }


def check_numeric(df: DataFrame, what: str) -> None:
    """Every column must be numeric (the channel formats carry numbers only)."""
    bad = [
        f"{f.name} ({f.dataType.simpleString()})" for f in df.schema.fields if not isinstance(f.dataType, NumericType)
    ]
    if bad:
        raise InputDataError(
            f"{what}: non-numeric columns {', '.join(bad)}",
            why="CSV/recordIO training channels carry numbers only",
            fix="encode categoricals first (spark_jobs.features) or drop those columns",
        )


@dataclass(frozen=True)
class ChannelSpec:
    """One output of a channel write: which rows (``where`` column value), which columns, which format, where."""

    name: str
    destination: Destination
    fmt: str
    columns: tuple[str, ...]
    where: str | None = None
    label_first: bool = True
    header: bool = False

    def __post_init__(self) -> None:
        if self.fmt not in EXTENSIONS:
            raise InputDataError(f"unknown channel format {self.fmt!r}", fix=f"use one of {sorted(EXTENSIONS)}")


def write_channel(df: DataFrame, destination: Destination, fmt: str, *, label_first: bool = True) -> ChannelInfo:
    """Write every column of ``df`` under ``destination`` as ``part-NNNNN.<ext>`` files, one per partition."""
    spec = ChannelSpec("data", destination, fmt, tuple(df.columns), label_first=label_first)
    return write_channels(df, [spec], route_column=None)["data"]


def write_channels(df: DataFrame, specs: list[ChannelSpec], route_column: str | None) -> dict[str, ChannelInfo]:
    """Write several channels in ONE pass over ``df``: each partition routes its rows (by ``route_column``) to
    one staged file per spec, and uploads them when the partition ends."""
    for spec in specs:
        missing = [c for c in spec.columns if c not in df.columns]
        if missing:
            raise InputDataError(f"channel {spec.name}: missing columns {missing}", fix=f"available: {df.columns}")
        if spec.fmt != "parquet":
            check_numeric(df.select(*spec.columns), f"channel {spec.name} ({spec.destination.uri})")
        spec.destination.clear()
    rows = df.mapInArrow(_partition_writer(specs, route_column), _PART_SCHEMA).collect()
    infos = {}
    for spec in specs:
        mine = [r for r in rows if r["part"].startswith(spec.name + "/")]
        parts = tuple(
            sorted((ChannelPart(r["part"].split("/", 1)[1], r["rows"], r["bytes"]) for r in mine), key=lambda p: p.part)
        )
        infos[spec.name] = ChannelInfo(
            spec.destination.uri, spec.fmt, CONTENT_TYPES[spec.fmt], sum(p.rows for p in parts), parts
        )
        logger.info(
            "wrote %s channel %s: %d rows in %d files",
            spec.fmt,
            spec.destination.uri,
            infos[spec.name].rows,
            len(parts),
        )
    return infos


PartitionWriter = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


class _StagedPart:
    """One part file being written on an executor."""

    def __init__(self, spec: ChannelSpec) -> None:
        self.spec = spec
        self.path = staging_file("." + EXTENSIONS[spec.fmt])
        self.rows = 0
        self._sink = self.path.open("wb")
        self._parquet: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        if self.spec.fmt == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._sink, batch.schema)
            self._parquet.write_batch(batch)
        else:
            self._sink.write(_encode_batch(self.spec, batch, header=self.spec.header and self.rows == 0))
        self.rows += batch.num_rows

    def finish(self, name: str) -> tuple[str, int, int] | None:
        if self._parquet is not None:
            self._parquet.close()
        self._sink.close()
        try:
            if not self.rows:
                return None
            size = self.path.stat().st_size
            self.spec.destination.child(name).put_file(self.path)
            return f"{self.spec.name}/{name}", self.rows, size
        finally:
            self.path.unlink(missing_ok=True)


def _partition_writer(specs: list[ChannelSpec], route_column: str | None) -> PartitionWriter:
    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        partition = context.partitionId() if context else 0
        staged = [_StagedPart(spec) for spec in specs]
        try:
            for batch in batches:
                for part in staged:
                    part.write(_select(batch, part.spec, route_column))
            results = [part.finish(f"part-{partition:05d}.{EXTENSIONS[part.spec.fmt]}") for part in staged]
        finally:
            for part in staged:
                part.path.unlink(missing_ok=True)
        done = [r for r in results if r is not None]
        if done:
            names, counts, sizes = zip(*done, strict=True)
            yield pa.RecordBatch.from_pydict(
                {"part": list(names), "rows": list(counts), "bytes": list(sizes)}, schema=_arrow_schema()
            )

    return write


def _select(batch: pa.RecordBatch, spec: ChannelSpec, route_column: str | None) -> pa.RecordBatch:
    if route_column is not None and spec.where is not None:
        batch = batch.filter(pc.equal(batch.column(route_column), spec.where))
    return batch.select(list(spec.columns))


def _arrow_schema() -> pa.Schema:
    return pa.schema([("part", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64())])


def _encode_batch(spec: ChannelSpec, batch: pa.RecordBatch, header: bool) -> bytes:
    if spec.fmt == "csv":
        buffer = pa.BufferOutputStream()
        pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=header, quoting_style="needed"))
        return bytes(buffer.getvalue())
    matrix = batch_matrix(batch)
    if spec.label_first:
        body, _ = encode_dense(matrix[:, 1:], matrix[:, 0])
    else:
        body, _ = encode_dense(matrix)
    return body


def batch_matrix(batch: pa.RecordBatch, columns: list[str] | None = None) -> np.ndarray:
    """The (rows, cols) float64 matrix of the named (default: all) numeric columns; nulls become NaN."""
    names = columns if columns is not None else batch.schema.names
    arrays = [batch.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False) for name in names]
    if not arrays:
        return np.empty((batch.num_rows, 0))
    return np.column_stack(arrays)
