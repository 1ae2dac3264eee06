"""Response deserializers: an InvokeEndpoint answer for ``n`` rows -> ``n`` values per output column.

Each deserializer declares its output columns (name and type: ``double`` or ``array``), so the Spark schema is known
before any request. Every deserializer checks that it got exactly one prediction per row.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pyspark.sql.types import ArrayType, DataType, DoubleType

from spark_jobs.recordio_protobuf import read_records

SPARK_TYPES: dict[str, DataType] = {"double": DoubleType(), "array": ArrayType(DoubleType())}


class ResponseCountError(ValueError):
    """The endpoint answered with a different number of predictions than rows sent."""


def _check(count: int, rows: int, what: str) -> None:
    if count != rows:
        raise ResponseCountError(f"{what}: got {count} predictions for {rows} rows")


def to_arrow(values: list[Any] | np.ndarray, kind: str) -> pa.Array:
    if kind == "double":
        return pa.array(np.asarray(values, dtype=np.float64))
    return pa.array([np.asarray(v, dtype=np.float64).ravel() for v in values], type=pa.list_(pa.float64()))


class ResponseDeserializer:
    """Base class. ``fields`` maps output column -> ``double`` | ``array``; ``accept`` is sent as ``Accept``."""

    accept: ClassVar[str] = "*/*"

    def __init__(self, fields: dict[str, str]) -> None:
        unknown = {k: v for k, v in fields.items() if v not in SPARK_TYPES}
        if unknown:
            raise ValueError(f"unknown output kinds {unknown}; use 'double' or 'array'")
        self.fields = dict(fields)

    def deserialize(self, body: bytes, rows: int) -> list[pa.Array]:
        raise NotImplementedError


class XGBoostCSVDeserializer(ResponseDeserializer):
    """XGBoost ``text/csv``: one line per row (comma-separated when multi-output), or the old single
    comma-joined line. ``width`` > 1 gives an ``array`` column."""

    accept = "text/csv"

    def __init__(self, column: str = "prediction", width: int = 1) -> None:
        super().__init__({column: "double" if width == 1 else "array"})
        self.column, self.width = column, width

    def deserialize(self, body: bytes, rows: int) -> list[pa.Array]:
        lines = body.decode("utf-8").strip().split("\n") if body.strip() else []
        if self.width == 1 and len(lines) == 1 and rows > 1:
            lines = lines[0].split(",")  # pre-2020 images and the MMS path: ",".join(preds)
        _check(len(lines), rows, "XGBoost CSV response")
        if self.width == 1:
            return [to_arrow(np.asarray(lines, dtype=np.float64), "double")]
        matrix = [np.asarray(line.strip('[]"').split(","), dtype=np.float64) for line in lines]
        return [to_arrow(matrix, "array")]


class JSONDeserializer(ResponseDeserializer):
    """Generic ``application/json``: ``{root: [{key: value, ...}, ...]}``, one object per row."""

    accept = "application/json"

    def __init__(self, fields: dict[str, str], root: str = "predictions") -> None:
        super().__init__(fields)
        self.root = root

    def deserialize(self, body: bytes, rows: int) -> list[pa.Array]:
        items = json.loads(body)[self.root]
        _check(len(items), rows, f"JSON response ({self.root!r})")
        return [to_arrow([item[name] for item in items], kind) for name, kind in self.fields.items()]


class RecordIOProtobufDeserializer(ResponseDeserializer):
    """Generic ``application/x-recordio-protobuf``: one Record per row, outputs in ``label[<key>]``."""

    accept = "application/x-recordio-protobuf"

    def deserialize(self, body: bytes, rows: int) -> list[pa.Array]:
        records = read_records(body)
        _check(len(records), rows, "recordIO-protobuf response")
        out = []
        for name, kind in self.fields.items():
            values = [record["label"][name] for record in records]
            out.append(to_arrow([v[0] for v in values] if kind == "double" else values, kind))
        return out


def xgboost_json(column: str = "score", kind: str = "double") -> JSONDeserializer:
    return JSONDeserializer({column: kind})


def kmeans_json() -> JSONDeserializer:
    return JSONDeserializer({"closest_cluster": "double", "distance_to_cluster": "double"})


def kmeans_protobuf() -> RecordIOProtobufDeserializer:
    return RecordIOProtobufDeserializer({"closest_cluster": "double", "distance_to_cluster": "double"})


def pca_json() -> JSONDeserializer:
    return JSONDeserializer({"projection": "array"}, root="projections")


def pca_protobuf() -> RecordIOProtobufDeserializer:
    return RecordIOProtobufDeserializer({"projection": "array"})
