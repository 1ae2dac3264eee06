"""Protocol-buffers wire format for ``aialgs.data.Record`` (docs/reference/formats.md#record-schema), written by hand
with numpy.

Only what the Record schema needs: varints, length-delimited fields, packed and unpacked repeated scalars.
Decoding records where each value span sits lets :mod:`recordio` decode many same-layout records in one step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

logger = logging.getLogger(__name__)

# Value.oneof field numbers and the numpy dtype of each tensor kind.
FLOAT32, FLOAT64, INT32 = 2, 3, 7
TENSOR_DTYPES: dict[int, np.dtype] = {
    FLOAT32: np.dtype("<f4"),
    FLOAT64: np.dtype("<f8"),
    INT32: np.dtype(np.int32),
}
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
ByteData: TypeAlias = bytes | bytearray | memoryview  # a request body, or a chunk read from a file into a block
_U64_MASK = (1 << 64) - 1


class WireError(ValueError):
    """The bytes are not a valid encoding of the Record message."""


@dataclass
class Tensor:
    """One decoded Float32/Float64/Int32 tensor; ``values_span`` is where its packed values lie in the buffer."""

    kind: int
    values: np.ndarray
    keys: np.ndarray
    shape: np.ndarray
    values_span: tuple[int, int] | None = None
    keys_span: tuple[int, int] | None = None

    @property
    def is_sparse(self) -> bool:
        if self.keys.size:
            return True
        return bool(self.shape.size) and self.values.size == 0 and int(np.prod(self.shape)) > 0


@dataclass
class ParsedRecord:
    features: dict[str, Tensor] = field(default_factory=dict)
    label: dict[str, Tensor] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- decoding


def read_varint(buf: ByteData, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64_MASK, pos
        shift += 7
        if shift >= 70:
            break
    raise WireError(f"truncated or overlong varint before byte {pos}")


def decode_varints(buf: ByteData, start: int, stop: int) -> np.ndarray:
    """All varints in ``buf[start:stop]`` as uint64, vectorised."""
    if stop - start <= 24:
        small: list[int] = []
        pos = start
        while pos < stop:
            value, pos = read_varint(buf, pos, stop)
            small.append(value)
        return np.array(small, dtype=np.uint64)
    raw = np.frombuffer(buf, dtype=np.uint8, count=stop - start, offset=start)
    if not (raw >= 0x80).any():
        return raw.astype(np.uint64)
    if raw[-1] >= 0x80:
        raise WireError(f"truncated packed varint ending at byte {stop}")
    is_last = raw < 0x80
    group = np.concatenate(([0], np.cumsum(is_last)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], is_last[:-1])))
    shifts = (np.arange(raw.size) - starts[group]) * 7
    if shifts.max() >= 64:
        raise WireError(f"overlong varint in packed field ending at byte {stop}")
    parts = (raw & 0x7F).astype(np.uint64) << shifts.astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts)


def _fields(buf: ByteData, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, a, b): for LEN fields ``buf[a:b]``; for varints ``a`` is the value."""
    out: list[tuple[int, int, int, int]] = []
    pos = start
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _VARINT:
            value, pos = read_varint(buf, pos, end)
            out.append((number, wire_type, value, pos))
            continue
        if wire_type == _LEN:
            size, pos = read_varint(buf, pos, end)
            stop = pos + size
        elif wire_type in (_FIXED64, _FIXED32):
            stop = pos + (8 if wire_type == _FIXED64 else 4)
        else:
            raise WireError(f"unsupported wire type {wire_type} for field {number} at byte {pos}")
        if stop > end:
            raise WireError(f"field {number} runs past the end of its message (byte {stop} > {end})")
        out.append((number, wire_type, pos, stop))
        pos = stop
    return out


def _scalar_values(buf: ByteData, kind: int, wire_type: int, a: int, b: int) -> np.ndarray:
    dtype = TENSOR_DTYPES[kind]
    if kind == INT32:
        if wire_type == _VARINT:
            return np.array([a], dtype=np.uint64).view(np.int64).astype(np.int32)
        if wire_type != _LEN:
            raise WireError(f"int32 values with wire type {wire_type}")
        return decode_varints(buf, a, b).view(np.int64).astype(np.int32)
    if wire_type == _LEN and (b - a) % dtype.itemsize:
        raise WireError(f"packed values of {b - a} bytes are not a multiple of {dtype.itemsize}")
    if wire_type not in (_LEN, _FIXED32 if kind == FLOAT32 else _FIXED64):
        raise WireError(f"float values with wire type {wire_type}")
    return np.frombuffer(buf, dtype=dtype, count=(b - a) // dtype.itemsize, offset=a)


def _uint_values(buf: ByteData, wire_type: int, a: int, b: int) -> np.ndarray:
    if wire_type == _VARINT:
        return np.array([a], dtype=np.uint64)
    if wire_type != _LEN:
        raise WireError(f"keys/shape with wire type {wire_type}")
    return decode_varints(buf, a, b)


def _join(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def parse_tensor(buf: ByteData, kind: int, start: int, end: int) -> Tensor:
    values: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    shape: list[np.ndarray] = []
    spans: dict[int, tuple[int, int] | None] = {}
    for number, wire_type, a, b in _fields(buf, start, end):
        if number == 1:
            values.append(_scalar_values(buf, kind, wire_type, a, b))
        elif number == 2:
            keys.append(_uint_values(buf, wire_type, a, b))
        elif number == 3:
            shape.append(_uint_values(buf, wire_type, a, b))
        # a span is only usable when the field is one packed run
        spans[number] = (a, b) if wire_type == _LEN and number not in spans else None
    u64 = np.dtype(np.uint64)
    return Tensor(
        kind,
        _join(values, TENSOR_DTYPES[kind]),
        _join(keys, u64),
        _join(shape, u64),
        spans.get(1),
        spans.get(2),
    )


def _parse_value(buf: ByteData, start: int, end: int) -> Tensor | None:
    tensor: Tensor | None = None
    for number, wire_type, a, b in _fields(buf, start, end):
        if number in TENSOR_DTYPES and wire_type == _LEN:
            tensor = parse_tensor(buf, number, a, b)
    return tensor


def _parse_map_entry(buf: ByteData, start: int, end: int) -> tuple[str, Tensor | None]:
    key = ""
    tensor: Tensor | None = None
    for number, wire_type, a, b in _fields(buf, start, end):
        if number == 1 and wire_type == _LEN:
            key = bytes(buf[a:b]).decode("utf-8", errors="replace")
        elif number == 2 and wire_type == _LEN:
            tensor = _parse_value(buf, a, b)
    return key, tensor


def parse_record(buf: ByteData, start: int, end: int) -> ParsedRecord:
    """Decode one Record from ``buf[start:end]``; ``Bytes`` values and string fields are skipped."""
    record = ParsedRecord()
    for number, wire_type, a, b in _fields(buf, start, end):
        if number in (1, 2) and wire_type == _LEN:
            key, tensor = _parse_map_entry(buf, a, b)
            if tensor is not None:
                (record.features if number == 1 else record.label)[key] = tensor
    return record


# ----------------------------------------------------------------------------------------------- encoding


def encode_varint(value: int) -> bytes:
    value &= _U64_MASK
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_varints(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Varint-encode an integer array; returns the bytes and each value's byte count (vectorised)."""
    unsigned = np.asarray(values).astype(np.int64).view(np.uint64)
    if unsigned.size == 0 or int(unsigned.max()) < 0x80:
        return unsigned.astype(np.uint8).tobytes(), np.ones(unsigned.size, dtype=np.int64)
    bits = np.zeros(unsigned.size, dtype=np.int64)
    remaining = unsigned.copy()
    while remaining.any():
        bits += remaining > 0
        remaining >>= np.uint64(7)
    counts = np.maximum(bits, 1)
    ends = np.cumsum(counts)
    starts = ends - counts
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    for j in range(int(counts.max())):
        present = counts > j
        chunk = (unsigned[present] >> np.uint64(7 * j)) & np.uint64(0x7F)
        more = (counts[present] > j + 1).astype(np.uint64) << np.uint64(7)
        out[starts[present] + j] = (chunk | more).astype(np.uint8)
    return out.tobytes(), counts


def length_delimited(number: int, payload: bytes) -> bytes:
    return encode_varint(number << 3 | _LEN) + encode_varint(len(payload)) + payload


def tensor_message(values: bytes, keys: bytes = b"", shape: bytes = b"") -> bytes:
    """A tensor body from already-encoded packed fields (empty ones are left out, as protobuf does)."""
    parts = [length_delimited(number, body) for number, body in ((1, values), (2, keys), (3, shape)) if body]
    return b"".join(parts)


def encode_values(kind: int, values: np.ndarray) -> bytes:
    if kind == INT32:
        return encode_varints(values)[0]
    return np.ascontiguousarray(values, dtype=TENSOR_DTYPES[kind]).tobytes()


def map_entry(number: int, key: str, kind: int, tensor: bytes) -> bytes:
    """A ``features`` (1) or ``label`` (2) map entry holding ``Value{<kind>: tensor}``."""
    value = length_delimited(kind, tensor)
    return length_delimited(number, length_delimited(1, key.encode("utf-8")) + length_delimited(2, value))


def dense_tensor_entry(number: int, key: str, kind: int, values: Sequence[float] | np.ndarray) -> bytes:
    body = tensor_message(encode_values(kind, np.asarray(values)))
    return map_entry(number, key, kind, body)
