"""RecordIO-protobuf (``application/x-recordio-protobuf``, docs/reference/formats.md#recordio-protobuf): read and write
``aialgs.data.Record`` streams.

Features live under ``features["values"]`` and labels under ``label["values"]``, as Float32, Float64 or Int32
tensors, dense or sparse (``keys`` + ``shape``). Output is byte-identical to the SageMaker SDK writers
``write_numpy_to_dense_tensor`` / ``write_spmatrix_to_sparse_tensor``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._assemble import decode_buffer, parse
from containers.toolkit.codecs._buffers import MappedFile, NotMappableError, read_block_after
from containers.toolkit.codecs._frames import Frames, split_frames
from containers.toolkit.codecs._wire import ByteData
from containers.toolkit.codecs._writer import encode_label_records, write_recordio
from containers.toolkit.codecs.batch import Batch, concat_batches, empty_batch, rebatch, slice_batch
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "decode_label_records",
    "encode_label_records",
    "iter_mapped_recordio_pieces",
    "iter_recordio_batches",
    "iter_recordio_pieces",
    "iter_records",
    "read_recordio",
    "write_recordio",
]

CHUNK_BYTES = 8 << 20
FIRST_WINDOW_BYTES = 1 << 20  # a mapped file's first chunk; the next ones double up to CHUNK_BYTES
TAIL_WINDOW_BYTES = 2 << 20  # a mapped file's chunks in its last TAIL_CHUNKS * CHUNK_BYTES
TAIL_CHUNKS = 2


# ----------------------------------------------------------------------------------------------- framing


def _iter_chunks(stream: BinaryIO, source: str, chunk_bytes: int) -> Iterator[tuple[ByteData, Frames, int]]:
    """(buffer, frames in it, number of records before it), reading ``stream`` with bounded memory."""
    pending: ByteData = bytearray()
    base = 0
    seen = 0
    while True:
        buf = read_block_after(stream, pending, chunk_bytes)
        final = len(buf) == len(pending)
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


def _iter_mapped_chunks(mapped: MappedFile, chunk_bytes: int) -> Iterator[tuple[ByteData, Frames, int]]:
    """As :func:`_iter_chunks`, on a mapped file: each chunk is a window of the mapping (a record cut by a chunk's
    end starts the next window; a record longer than a chunk widens the window until it fits). The first window
    is at most ``FIRST_WINDOW_BYTES``, the next ones double up to ``chunk_bytes``, and the file's last
    ``TAIL_CHUNKS`` chunks are read in windows of at most
    ``TAIL_WINDOW_BYTES``: a consumer that deals the pieces to several threads starts them at once and they finish
    together (docs/algorithms/pca.md#algorithm)."""
    with mapped:
        yield from _mapped_windows(mapped, chunk_bytes)


def _mapped_windows(mapped: MappedFile, chunk_bytes: int) -> Iterator[tuple[ByteData, Frames, int]]:
    source = str(mapped.path)
    start = 0
    seen = 0
    width = min(chunk_bytes, FIRST_WINDOW_BYTES)
    while start < mapped.size:
        stop = min(start + width, mapped.size)
        final = stop == mapped.size
        buf = mapped.window(start, stop)
        frames = split_frames(buf, final=final, source=source, base=start)
        if frames.count:
            yield buf, frames, seen
            seen += frames.count
        if final:
            return
        start += frames.consumed
        width = _next_width(width, chunk_bytes, frames.consumed > 0, mapped.size - start)


def _next_width(width: int, chunk_bytes: int, progressed: bool, remaining: int) -> int:
    """The next window's size: one more chunk when no record fitted, twice the last up to a chunk, small in the
    file's last chunks."""
    if not progressed:
        return width + chunk_bytes
    return min(chunk_bytes, 2 * width) if remaining > TAIL_CHUNKS * chunk_bytes else min(chunk_bytes, TAIL_WINDOW_BYTES)


def _as_stream(data: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data))
    return data


def iter_records(stream: BinaryIO, *, source: str = "<stream>") -> Iterator[bytes]:
    """Yield the payload of every RecordIO record in ``stream``."""
    for buf, frames, _ in _iter_chunks(stream, source, CHUNK_BYTES):
        view = memoryview(buf)
        for index in range(frames.uniform):
            start = index * frames.stride + 8
            yield view[start : start + frames.payload_length].tobytes()
        for start, length in zip(frames.starts, frames.lengths, strict=True):
            yield view[start : start + length].tobytes()


# ----------------------------------------------------------------------------------------------- decoding


def _decoded(chunks: Iterator[tuple[ByteData, Frames, int]], source: str) -> Iterator[Batch]:
    """Decode every chunk; dense records must all have as many features as the first one."""
    width: int | None = None
    for buf, frames, seen in chunks:
        piece = decode_buffer(buf, frames, seen, source)
        if piece.n_rows == 0:
            continue
        if width is None:
            width = -1 if sp.issparse(piece.features) else piece.n_columns
        elif width >= 0 and not sp.issparse(piece.features) and piece.n_columns != width:
            raise UserError(
                f"Record {seen + 1} in {source} has {piece.n_columns} features; earlier records have {width}."
            )
        yield piece


def _cut(pieces: Iterator[Batch], max_rows: int) -> Iterator[Batch]:
    """Each piece as it is, or sliced (views) into batches of at most ``max_rows`` rows."""
    if max_rows <= 0:
        raise ValueError(f"max_rows must be positive, got {max_rows}")
    for piece in pieces:
        for start in range(0, piece.n_rows, max_rows):
            yield piece if piece.n_rows <= max_rows else slice_batch(piece, start, start + max_rows)


# ----------------------------------------------------------------------------------------------- public API


def iter_recordio_batches(
    stream: BinaryIO, batch_rows: int, *, source: str = "<stream>", chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Batch]:
    """Stream ``stream`` as batches of exactly ``batch_rows`` rows (the last may be shorter)."""
    return rebatch(_decoded(_iter_chunks(stream, source, chunk_bytes), source), batch_rows)


def iter_recordio_pieces(
    stream: BinaryIO, max_rows: int, *, source: str = "<stream>", chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Batch]:
    """Stream ``stream`` as the decoder produces it: batches of at most ``max_rows`` rows, never joined.

    For consumers whose result does not depend on the batching: no copy to make batches of equal size.
    """
    return _cut(_decoded(_iter_chunks(stream, source, chunk_bytes), source), max_rows)


def iter_mapped_recordio_pieces(path: Path, max_rows: int, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch]:
    """As :func:`iter_recordio_pieces`, for a file read through ``mmap`` (:class:`MappedFile`): dense float values
    are read-only views of the mapping, nothing is copied before the consumer's own pass. A file that cannot be
    mapped (a file system without ``mmap``) is read into chunks instead."""
    try:
        mapped = MappedFile(path)
    except NotMappableError as exc:
        logger.info("%s cannot be mapped (%s): it is read instead", path, exc)
        with path.open("rb") as stream:
            yield from iter_recordio_pieces(stream, max_rows, source=str(path), chunk_bytes=chunk_bytes)
        return
    yield from _cut(_decoded(_iter_mapped_chunks(mapped, chunk_bytes), str(path)), max_rows)


def read_recordio(data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<request>") -> Batch:
    """Read a whole RecordIO-protobuf body or stream into one batch."""
    if isinstance(data, bytes | bytearray | memoryview):
        buf = bytes(data)
        chunks: Iterator[tuple[ByteData, Frames, int]] = iter([(buf, split_frames(buf, final=True, source=source), 0)])
    else:
        chunks = _iter_chunks(data, source, CHUNK_BYTES)
    pieces = list(_decoded(chunks, source))
    return concat_batches(pieces) if pieces else empty_batch()


def decode_label_records(
    data: bytes | bytearray | memoryview | BinaryIO, *, source: str = "<response>"
) -> list[dict[str, list[float]]]:
    """The ``label`` map of every record, e.g. ``[{"closest_cluster": [1.0], "distance_to_cluster": [3.0]}]``."""
    out: list[dict[str, list[float]]] = []
    for number, payload in enumerate(iter_records(_as_stream(data), source=source), start=1):
        record = parse(payload, 0, len(payload), number, source)
        out.append({key: tensor.values.astype(np.float64).tolist() for key, tensor in record.label.items()})
    return out
