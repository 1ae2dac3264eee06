"""Request serializers: a float feature matrix -> row-addressable bytes that can be cut into requests.

Every serializer returns ``EncodedRows``: one buffer plus ``n + 1`` row offsets, so the transformer can cut a batch
into requests by rows and bytes without re-encoding. A request body is ``prefix + rows + suffix``; serializers whose
rows need a separator (JSON) end every row with it and the last one is trimmed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from spark_jobs.errors import InputDataError
from spark_jobs.recordio_protobuf import encode_dense


@dataclass(frozen=True)
class EncodedRows:
    buffer: bytes
    offsets: np.ndarray  # int64, n + 1 entries

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1


class RequestSerializer:
    """Base class: subclasses set ``content_type`` and implement ``encode``."""

    content_type: ClassVar[str] = "application/octet-stream"
    prefix: ClassVar[bytes] = b""
    suffix: ClassVar[bytes] = b""
    separator: ClassVar[bytes] = b""  # trailing bytes of every row, dropped after the last row of a request
    supports_missing: ClassVar[bool] = True

    def encode(self, features: np.ndarray) -> EncodedRows:
        raise NotImplementedError

    def body(self, rows: EncodedRows, start: int, stop: int) -> bytes:
        end = int(rows.offsets[stop]) - len(self.separator)
        return self.prefix + rows.buffer[int(rows.offsets[start]) : end] + self.suffix

    def request_overhead(self) -> int:
        return len(self.prefix) + len(self.suffix) - len(self.separator)


def _line_offsets(buffer: bytes, rows: int) -> np.ndarray:
    ends = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == ord("\n")) + 1
    if len(ends) != rows:
        raise AssertionError(f"serializer produced {len(ends)} lines for {rows} rows")
    return np.concatenate([[0], ends]).astype(np.int64)


class CSVSerializer(RequestSerializer):
    """``text/csv``: one line per row, no header, no label; shortest round-trip floats (Arrow's writer)."""

    content_type = "text/csv"

    def encode(self, features: np.ndarray) -> EncodedRows:
        columns = [pa.array(features[:, i]) for i in range(features.shape[1])]
        batch = pa.RecordBatch.from_arrays(columns, names=[f"f{i}" for i in range(features.shape[1])])
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(batch, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        buffer = bytes(sink.getvalue())
        return EncodedRows(buffer, _line_offsets(buffer, features.shape[0]))


class LibSVMSerializer(RequestSerializer):
    """``text/libsvm``: ``0 i:v ...`` per row with 1-based indices of the non-zero values (zeros are implicit).

    1-based like sagemaker-spark's LibSVM row serializer and Spark's ``libsvm`` writer: it pairs with a model trained
    on 1-based LIBSVM rows. The container keeps indices as written, so a model trained on CSV (0-based columns)
    wants :class:`CSVSerializer` instead.
    """

    content_type = "text/libsvm"
    supports_missing = False

    def encode(self, features: np.ndarray) -> EncodedRows:
        lines = []
        for row in features:
            nonzero = np.flatnonzero(row)
            tokens = " ".join(f"{i + 1}:{row[i]!r}" for i in nonzero.tolist())
            lines.append(f"0 {tokens}\n" if tokens else "0\n")
        buffer = "".join(lines).encode()
        return EncodedRows(buffer, _line_offsets(buffer, features.shape[0]))


class RecordIOProtobufSerializer(RequestSerializer):
    """``application/x-recordio-protobuf``: one dense float32 Record per row (K-Means, PCA, XGBoost)."""

    content_type = "application/x-recordio-protobuf"

    def encode(self, features: np.ndarray) -> EncodedRows:
        buffer, offsets = encode_dense(features)
        return EncodedRows(buffer, offsets)


class JSONSerializer(RequestSerializer):
    """``application/json``: ``{"instances": [{"features": [...]}, ...]}`` (K-Means/PCA request form)."""

    content_type = "application/json"
    prefix = b'{"instances":['
    suffix = b"]}"
    separator = b","
    supports_missing = False

    def encode(self, features: np.ndarray) -> EncodedRows:
        pieces = [('{"features":' + json.dumps(row) + "},").encode() for row in features.tolist()]
        sizes = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return EncodedRows(b"".join(pieces), offsets)


SERIALIZERS: dict[str, type[RequestSerializer]] = {
    "csv": CSVSerializer,
    "libsvm": LibSVMSerializer,
    "recordio": RecordIOProtobufSerializer,
    "json": JSONSerializer,
}


def serializer_for(name: str) -> RequestSerializer:
    if name not in SERIALIZERS:
        raise InputDataError(f"unknown serializer {name!r}", fix=f"use one of {sorted(SERIALIZERS)} or an instance")
    return SERIALIZERS[name]()
