"""RecordIO-protobuf (``application/x-recordio-protobuf``, spec §3): read and write ``aialgs.data.Record`` streams.

Features live under ``features["values"]`` and labels under ``label["values"]``, as Float32, Float64 or Int32
tensors, dense or sparse (``keys`` + ``shape``). Output is byte-identical to the SageMaker SDK writers
``write_numpy_to_dense_tensor`` / ``write_spmatrix_to_sparse_tensor``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._frames import Frames, split_frames
from containers.toolkit.codecs._template import VALUES, decode_uniform, sparse_width
from containers.toolkit.codecs._wire import ParsedRecord, Tensor, WireError, parse_record
from containers.toolkit.codecs._writer import encode_label_records, write_recordio
from containers.toolkit.codecs.batch import Batch, concat_batches, empty_batch, rebatch
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "decode_label_records",
    "encode_label_records",
    "iter_recordio_batches",
    "iter_records",
    "read_recordio",
    "write_recordio",
]

CHUNK_BYTES = 8 << 20


# ----------------------------------------------------------------------------------------------- framing


def _iter_chunks(stream: BinaryIO, source: str, chunk_bytes: int) -> Iterator[tuple[bytes, Frames, int]]:
    """(buffer, frames in it, number of records before it), reading ``stream`` with bounded memory."""
    pending = b""
    base = 0
    seen = 0
    while True:
        data = stream.read(chunk_bytes)
        final = not data
        buf = pending + data if pending else data
        if not buf:
            return
        frames = split_frames(buf, final=final, source=source, base=base)
        if frames.count:
            yield buf, frames, seen
            seen += frames.count
        pending = buf[frames.consumed :]
        base += frames.consumed
        if final:
            return


def _as_stream(data: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    return data


def iter_records(stream: BinaryIO, *, source: str = "<stream>") -> Iterator[bytes]:
    """Yield the payload of every RecordIO record in ``stream``."""
    for buf, frames, _ in _iter_chunks(stream, source, CHUNK_BYTES):
        for index in range(frames.uniform):
            start = index * frames.stride + 8
            yield buf[start : start + frames.payload_length]
        for start, length in zip(frames.starts, frames.lengths, strict=True):
            yield buf[start : start + length]


# ----------------------------------------------------------------------------------------------- assembly


def _parse(buf: bytes, start: int, length: int, number: int, source: str) -> ParsedRecord:
    try:
        return parse_record(buf, start, start + length)
    except WireError as exc:
        raise UserError(f"Record {number} in {source} is not a valid aialgs.data.Record: {exc}") from exc


def _sparse_rows(rows: list[tuple[int, Tensor]], source: str) -> sp.csr_matrix:
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    width = 0
    for number, tensor in rows:
        if tensor.is_sparse:
            width = max(width, sparse_width(tensor, number, source))
            keys = tensor.keys
        else:
            width = max(width, tensor.values.size)
            keys = np.arange(tensor.values.size, dtype=np.uint64)
        indices.append(keys.astype(np.int64))
        data.append(tensor.values)
        indptr.append(indptr[-1] + tensor.values.size)
    values = np.concatenate(data) if data else np.empty(0)
    return sp.csr_matrix((values, np.concatenate(indices), np.array(indptr)), shape=(len(rows), width))


def _dense_rows(rows: list[tuple[int, Tensor]], source: str) -> np.ndarray:
    width = rows[0][1].values.size
    for number, tensor in rows:
        if tensor.values.size != width:
            raise UserError(
                f"Record {number} in {source} has {tensor.values.size} features; earlier records have {width}."
            )
    return np.vstack([tensor.values for _, tensor in rows])


def _label_values(number: int, tensor: Tensor, source: str) -> np.ndarray:
    if not tensor.is_sparse:
        return tensor.values
    dense = np.zeros(sparse_width(tensor, number, source), dtype=tensor.values.dtype)
    dense[tensor.keys.astype(np.int64)] = tensor.values
    return dense


def _labels(labelled: list[tuple[int, Tensor | None]], source: str) -> np.ndarray | None:
    missing = [number for number, tensor in labelled if tensor is None]
    if len(missing) == len(labelled):
        return None
    if missing:
        raise UserError(f"Record {missing[0]} in {source} has no label while other records have one.")
    values = [_label_values(number, tensor, source) for number, tensor in labelled if tensor is not None]
    sizes = {value.size for value in values}
    if len(sizes) > 1:
        raise UserError(f"Records in {source} have labels of different sizes: {sorted(sizes)}.")
    stacked = np.vstack(values)
    return stacked[:, 0] if stacked.shape[1] == 1 else stacked


def records_to_batch(records: list[tuple[int, ParsedRecord]], source: str) -> Batch:
    """Assemble parsed records into a batch; a record without ``features["values"]`` is skipped (as XGBoost does)."""
    rows = [(number, record) for number, record in records if VALUES in record.features]
    if not rows:
        return empty_batch()
    tensors = [(number, record.features[VALUES]) for number, record in rows]
    if any(tensor.is_sparse for _, tensor in tensors):
        features: np.ndarray | sp.csr_matrix = _sparse_rows(tensors, source)
    else:
        features = _dense_rows(tensors, source)
    labels = _labels([(number, record.label.get(VALUES)) for number, record in rows], source)
    return Batch(features, labels)


def _decode_frames(buf: bytes, frames: Frames, seen: int, source: str) -> Batch:
    parts: list[Batch] = []
    if frames.uniform:
        fast = decode_uniform(buf, frames.uniform, frames.stride, frames.payload_length, seen + 1, source)
        if fast is None:
            starts = [index * frames.stride + 8 for index in range(frames.uniform)]
            lengths = [frames.payload_length] * frames.uniform
            records = [
                (seen + 1 + index, _parse(buf, start, length, seen + 1 + index, source))
                for index, (start, length) in enumerate(zip(starts, lengths, strict=True))
            ]
            fast = records_to_batch(records, source)
        parts.append(fast)
    first = seen + frames.uniform + 1
    if frames.starts:
        records = [
            (first + index, _parse(buf, start, length, first + index, source))
            for index, (start, length) in enumerate(zip(frames.starts, frames.lengths, strict=True))
        ]
        parts.append(records_to_batch(records, source))
    return concat_batches([part for part in parts if part.n_rows] or parts)


# ----------------------------------------------------------------------------------------------- public API


def iter_recordio_batches(
    stream: BinaryIO, batch_rows: int, *, source: str = "<stream>", chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Batch]:
    """Stream ``stream`` as batches of exactly ``batch_rows`` rows (the last may be shorter)."""
    pieces = (
        _decode_frames(buf, frames, seen, source) for buf, frames, seen in _iter_chunks(stream, source, chunk_bytes)
    )
    return rebatch(pieces, batch_rows)


def read_recordio(data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<request>") -> Batch:
    """Read a whole RecordIO-protobuf body or stream into one batch."""
    if isinstance(data, bytes | bytearray | memoryview):
        buf = bytes(data)
        frames = split_frames(buf, final=True, source=source)
        return _decode_frames(buf, frames, 0, source) if frames.count else empty_batch()
    pieces = [
        _decode_frames(buf, frames, seen, source) for buf, frames, seen in _iter_chunks(data, source, CHUNK_BYTES)
    ]
    return concat_batches([piece for piece in pieces if piece.n_rows]) if pieces else empty_batch()


def decode_label_records(
    data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<response>"
) -> list[dict[str, list[float]]]:
    """The ``label`` map of every record, e.g. ``[{"closest_cluster": [1.0], "distance_to_cluster": [3.0]}]``."""
    out: list[dict[str, list[float]]] = []
    for number, payload in enumerate(iter_records(_as_stream(data), source=source), start=1):
        record = _parse(payload, 0, len(payload), number, source)
        out.append({key: tensor.values.astype(np.float64).tolist() for key, tensor in record.label.items()})
    return out
