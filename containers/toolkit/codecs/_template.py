"""Vectorised decoding of many RecordIO records that share one byte layout.

Records written from one matrix (by the SDK or by us) of the same payload length nearly always share their
layout: they differ only in the bytes of their values (and of their sparse keys). The first record of a group
is parsed as a template; every record that equals it byte for byte outside those spans (and whose varint spans
hold the same number of varints) is decoded in one step with numpy. The records that do not match are reported
back and decoded one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._wire import (
    INT32,
    TENSOR_DTYPES,
    ByteData,
    Tensor,
    WireError,
    decode_varints,
    parse_record,
)
from containers.toolkit.codecs.batch import Batch, Features
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

VALUES = "values"


@dataclass(frozen=True)
class _Span:
    start: int
    stop: int
    varints: int  # 0 for fixed-width floats, else how many varints the span holds


def _spans(tensor: Tensor, origin: int) -> tuple[_Span | None, _Span | None]:
    """Variable spans (relative to the payload start) of a tensor's values and keys."""
    values = keys = None
    if tensor.values_span is not None and tensor.values.size:
        start, stop = tensor.values_span
        values = _Span(start - origin, stop - origin, tensor.values.size if tensor.kind == INT32 else 0)
    if tensor.keys_span is not None and tensor.keys.size:
        start, stop = tensor.keys_span
        keys = _Span(start - origin, stop - origin, tensor.keys.size)
    return values, keys


def _matching_rows(rows: np.ndarray, spans: list[_Span]) -> np.ndarray:
    """Boolean mask of the rows equal to row 0 outside ``spans`` and with whole varints inside them."""
    match = np.ones(rows.shape[0], dtype=bool)
    cursor = 0
    ordered = sorted(spans, key=lambda span: span.start)
    for span in [*ordered, _Span(rows.shape[1], rows.shape[1], 0)]:
        if span.start > cursor:
            match &= (rows[:, cursor : span.start] == rows[0, cursor : span.start]).all(axis=1)
        cursor = span.stop
    for span in ordered:
        if span.varints:
            block = rows[:, span.start : span.stop]
            match &= ((block < 0x80).sum(axis=1) == span.varints) & (block[:, -1] < 0x80)
    return match


def _values(
    rows: np.ndarray, tensor: Tensor, span: _Span | None, count: int, keys: bool = False, in_place: bool = False
) -> np.ndarray:
    """(records, items per record) of a tensor's values (or keys) for matching rows; with ``in_place`` packed
    floats are a (read-only) view of the buffer when aligned, else a copy."""
    template = tensor.keys if keys else tensor.values
    if span is None:
        return np.tile(template, (count, 1))
    window = rows[:, span.start : span.stop]
    dtype = TENSOR_DTYPES[tensor.kind]
    if in_place and not span.varints and _aligned(window, dtype.itemsize):
        return window.view(dtype)  # packed floats read in place: no copy (the rows keep the chunk alive)
    block = np.ascontiguousarray(window)
    if span.varints:
        decoded = decode_varints(block.tobytes(), 0, block.size).reshape(count, span.varints)
        return decoded if keys else decoded.view(np.int64).astype(np.int32)
    return block.view(dtype).reshape(count, -1)


def _aligned(window: np.ndarray, itemsize: int) -> bool:
    """Whether a ``(records, bytes)`` window can be viewed as ``itemsize``-byte numbers in place, aligned."""
    address = window.__array_interface__["data"][0]
    return window.ndim == 2 and window.shape[0] > 0 and address % itemsize == 0 and window.strides[0] % itemsize == 0


def sparse_width(tensor: Tensor, record_number: int, source: str) -> int:
    """Column count of a sparse tensor; keys must be below it when ``shape`` is given."""
    if tensor.keys.size != tensor.values.size:
        raise UserError(
            f"Record {record_number} in {source}: sparse tensor has {tensor.keys.size} keys "
            f"but {tensor.values.size} values."
        )
    if tensor.shape.size:
        width = int(np.prod(tensor.shape.astype(np.float64)))
        if tensor.keys.size and int(tensor.keys.max()) >= width:
            raise UserError(
                f"Record {record_number} in {source}: sparse key {int(tensor.keys.max())} is out of range "
                f"for shape {tensor.shape.tolist()}."
            )
        return width
    return int(tensor.keys.max()) + 1 if tensor.keys.size else 0


def _sparse(tensor: Tensor, values: np.ndarray, keys: np.ndarray, numbers: np.ndarray, source: str) -> Features:
    count, nnz = values.shape
    width = sparse_width(tensor, int(numbers[0]), source)
    if keys.size and tensor.shape.size:
        beyond = keys.max(axis=1) >= width
        if beyond.any():
            row = int(np.argmax(beyond))
            raise UserError(
                f"Record {int(numbers[row])} in {source}: sparse key {int(keys[row].max())} is out of range "
                f"for shape {tensor.shape.tolist()}."
            )
    elif keys.size:
        width = int(keys.max()) + 1
    indptr = np.arange(count + 1, dtype=np.int64) * nnz
    return sp.csr_matrix((values.ravel(), keys.astype(np.int64).ravel(), indptr), shape=(count, width))


def _gather(buf: ByteData, starts: np.ndarray, length: int) -> np.ndarray:
    """The payloads at ``starts`` as a (records, length) uint8 array; a view when they are evenly spaced."""
    data = np.frombuffer(buf, dtype=np.uint8)
    if starts.size > 1:
        stride = int(starts[1] - starts[0])
        if stride >= length and bool((np.diff(starts) == stride).all()):
            return np.lib.stride_tricks.as_strided(
                data[int(starts[0]) :], shape=(starts.size, length), strides=(stride, 1), writeable=False
            )
    return np.lib.stride_tricks.sliding_window_view(data, length)[starts]


def decode_group(
    buf: ByteData, starts: np.ndarray, length: int, numbers: np.ndarray, source: str
) -> tuple[np.ndarray, Batch] | None:
    """Decode the records whose payloads (all ``length`` bytes) start at ``starts``.

    Returns the mask of the records decoded here and their batch, or ``None`` when the template does not suit
    (then every record is left to the record-by-record path). ``numbers`` are 1-based record numbers.
    """
    first = int(starts[0])
    try:
        template = parse_record(buf, first, first + length)
    except WireError:
        return None
    features = template.features.get(VALUES)
    label = template.label.get(VALUES)
    if features is None or (label is not None and label.is_sparse):
        return None
    rows = _gather(buf, starts, length)
    value_span, key_span = _spans(features, first)
    label_span = _spans(label, first)[0] if label is not None else None
    spans = [span for span in (value_span, key_span, label_span) if span is not None]
    match = _matching_rows(rows, spans)
    rows = rows[match] if not match.all() else rows
    count = rows.shape[0]
    # a chunk read from a file is viewed in place; a request body's values are copied (callers may write to them)
    in_place = not isinstance(buf, bytes)
    values = _values(rows, features, value_span, count, in_place=in_place)
    if features.is_sparse:
        keys = _values(rows, features, key_span, count, keys=True)
        matrix = _sparse(features, values, keys, numbers[match], source)
    else:
        matrix = values
    labels = None
    if label is not None:
        labels = _values(rows, label, label_span, count, in_place=in_place)
        labels = labels[:, 0] if labels.shape[1] == 1 else labels
    return match, Batch(matrix, labels)
