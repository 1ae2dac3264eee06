"""RecordIO-protobuf (``application/x-recordio-protobuf``): a vectorised dense writer and a small Record reader.

Writer: every dense float32 row has the same protobuf layout, so one header is built once and the rows are laid out
with numpy (no per-row Python). Reader: enough of ``aialgs.data.Record`` to read inference answers (``label`` map of
float32/float64/int32 tensors), one Record per row. Framing: little-endian magic ``0xCED7230A``, uint32 length,
payload, zero padding to 4 bytes (docs/reference/formats.md#framing).

This duplicates a small part of ``containers.toolkit.codecs`` on purpose: ``spark_jobs`` must not import
``containers`` (layering), and a shared codec would need its own distribution package (see docs/spark.md).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from spark_jobs.errors import InputDataError

MAGIC = 0xCED7230A
_KEY = b"values"
_TENSOR_FIELDS: dict[int, np.dtype[Any]] = {2: np.dtype("<f4"), 3: np.dtype("<f8"), 7: np.dtype("int32")}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _len_field(tag: int, payload_len: int) -> bytes:
    return bytes([tag]) + _varint(payload_len)


def _map_entry_prefix(value_payload_len: int) -> bytes:
    """``{"values": Value{float32_tensor{values: <n floats>}}}`` up to (not including) the packed floats."""
    tensor_prefix = _len_field(0x0A, value_payload_len)  # Float32Tensor.values, packed
    tensor_len = len(tensor_prefix) + value_payload_len
    value_prefix = _len_field(0x12, tensor_len)  # Value.float32_tensor (field 2)
    value_len = len(value_prefix) + tensor_len
    entry = _len_field(0x0A, len(_KEY)) + _KEY + _len_field(0x12, value_len)  # key=1, value=2
    return entry + value_prefix + tensor_prefix


def _field_prefix(tag: int, float_count: int) -> bytes:
    entry = _map_entry_prefix(4 * float_count)
    return _len_field(tag, len(entry) + 4 * float_count) + entry


def encode_dense(features: np.ndarray, labels: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Frame one Record per row of the ``(n, d)`` matrix (and optional ``(n,)`` labels), all float32.

    Returns the concatenated bytes and ``offsets`` (``n + 1`` row boundaries), so callers can cut requests or files
    at row boundaries without re-encoding.
    """
    matrix = np.ascontiguousarray(features, dtype="<f4")
    if matrix.ndim != 2:
        raise InputDataError(f"recordIO needs a 2-D feature matrix, got shape {matrix.shape}", fix="pass (rows, cols)")
    rows, cols = matrix.shape
    feature_prefix = _field_prefix(0x0A, cols)  # Record.features (field 1)
    label_prefix = _field_prefix(0x12, 1) if labels is not None else b""  # Record.label (field 2)
    payload_len = len(feature_prefix) + 4 * cols + (len(label_prefix) + 4 if labels is not None else 0)
    pad = (-payload_len) % 4
    header = struct.pack("<II", MAGIC, payload_len)
    width = 8 + payload_len + pad
    out = np.zeros((rows, width), dtype=np.uint8)
    pos = _put(out, 0, np.frombuffer(header + feature_prefix, dtype=np.uint8))
    out[:, pos : pos + 4 * cols] = matrix.view(np.uint8).reshape(rows, 4 * cols)
    pos += 4 * cols
    if labels is not None:
        pos = _put(out, pos, np.frombuffer(label_prefix, dtype=np.uint8))
        label_col = np.ascontiguousarray(np.asarray(labels, dtype="<f4").reshape(rows, 1))
        out[:, pos : pos + 4] = label_col.view(np.uint8).reshape(rows, 4)
    return out.tobytes(), np.arange(rows + 1, dtype=np.int64) * width


def _put(out: np.ndarray, pos: int, constant: np.ndarray) -> int:
    out[:, pos : pos + constant.size] = constant
    return pos + constant.size


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """``(field_number, start, end)`` of each length-delimited field in ``buf[start:end]``; others are skipped."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _read_varint(buf, pos)
            out.append((number, pos, pos + length))
            pos += length
        elif wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {pos}")
    return out


def _tensor_values(buf: bytes, kind: int, start: int, end: int) -> np.ndarray:
    for number, a, b in _fields(buf, start, end):
        if number != 1:
            continue
        if kind == 7:
            values, pos = [], a
            while pos < b:
                value, pos = _read_varint(buf, pos)
                values.append(value - (1 << 64) if value >= 1 << 63 else value)
            return np.asarray(values, dtype=np.float64)
        return np.frombuffer(buf[a:b], dtype=_TENSOR_FIELDS[kind]).astype(np.float64)
    return np.empty(0, dtype=np.float64)


def _map_entry(buf: bytes, start: int, end: int) -> tuple[str, np.ndarray]:
    key, values = "", np.empty(0, dtype=np.float64)
    for number, a, b in _fields(buf, start, end):
        if number == 1:
            key = buf[a:b].decode("utf-8")
        elif number == 2:
            for kind, ta, tb in _fields(buf, a, b):
                if kind in _TENSOR_FIELDS:
                    values = _tensor_values(buf, kind, ta, tb)
    return key, values


def read_records(body: bytes) -> list[dict[str, dict[str, np.ndarray]]]:
    """Decode a RecordIO-protobuf body into ``[{"features": {...}, "label": {...}}, ...]`` (values as float64)."""
    records: list[dict[str, dict[str, np.ndarray]]] = []
    pos = 0
    while pos + 8 <= len(body):
        magic, length = struct.unpack_from("<II", body, pos)
        if magic != MAGIC:
            raise ValueError(f"invalid RecordIO magic 0x{magic:08x} at byte {pos}")
        length &= (1 << 29) - 1
        start, end = pos + 8, pos + 8 + length
        record: dict[str, dict[str, np.ndarray]] = {"features": {}, "label": {}}
        for number, a, b in _fields(body, start, end):
            if number in (1, 2):
                key, values = _map_entry(body, a, b)
                record["features" if number == 1 else "label"][key] = values
        records.append(record)
        pos = end + (-length) % 4
    return records
