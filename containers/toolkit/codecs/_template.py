"""Vectorised decoding of many RecordIO records that share one byte layout.

Records written from one matrix (by the SDK or by us) differ only in the bytes of their float values: the first
record is parsed as a template, every other record is checked to equal it byte for byte outside the value spans,
and the values of all records are then read with a single reshape and view. Anything that does not fit returns
``None`` and is decoded record by record instead.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._wire import INT32, TENSOR_DTYPES, Tensor, WireError, parse_record
from containers.toolkit.codecs.batch import Batch, Features
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

VALUES = "values"


def _variable_span(tensor: Tensor, rows: np.ndarray, origin: int) -> tuple[int, int] | None:
    """The span (relative to the row start) whose bytes may differ between records, if any."""
    if tensor.values_span is None or tensor.values.size == 0:
        return None
    start, stop = tensor.values_span[0] - origin, tensor.values_span[1] - origin
    if tensor.kind == INT32:
        # only one-byte varints (0..127) keep the layout fixed; every record must keep them one byte long
        if stop - start != tensor.values.size or (rows[:, start:stop] >= 0x80).any():
            return None
    return start, stop


def _rows_equal_outside(rows: np.ndarray, spans: list[tuple[int, int]]) -> bool:
    cursor = 0
    for start, stop in [*sorted(spans), (rows.shape[1], rows.shape[1])]:
        if start > cursor and not (rows[:, cursor:start] == rows[0, cursor:start]).all():
            return False
        cursor = stop
    return True


def _values(tensor: Tensor, rows: np.ndarray, span: tuple[int, int] | None) -> np.ndarray:
    """(records, values per record) for one tensor."""
    count = rows.shape[0]
    if span is None:
        return np.tile(tensor.values, (count, 1))
    block = np.ascontiguousarray(rows[:, span[0] : span[1]])
    if tensor.kind == INT32:
        return block.astype(np.int32)
    return block.view(TENSOR_DTYPES[tensor.kind]).reshape(count, -1)


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


def _features(tensor: Tensor, values: np.ndarray, record_number: int, source: str) -> Features:
    if not tensor.is_sparse:
        return values
    width = sparse_width(tensor, record_number, source)
    count, nnz = values.shape
    indptr = np.arange(count + 1, dtype=np.int64) * nnz
    indices = np.tile(tensor.keys.astype(np.int64), count)
    return sp.csr_matrix((values.ravel(), indices, indptr), shape=(count, width))


def decode_uniform(buf: bytes, count: int, stride: int, length: int, first: int, source: str) -> Batch | None:
    """Decode ``count`` records of ``stride`` bytes at the start of ``buf``; ``None`` when they do not share a layout.

    ``first`` is the 1-based number of the first record, for messages.
    """
    try:
        template = parse_record(buf, 8, 8 + length)
    except WireError:
        return None
    features = template.features.get(VALUES)
    label = template.label.get(VALUES)
    if features is None or (label is not None and label.is_sparse):
        return None
    rows = np.frombuffer(buf, dtype=np.uint8, count=count * stride).reshape(count, stride)
    feature_span = _variable_span(features, rows, 0)
    label_span = _variable_span(label, rows, 0) if label is not None else None
    spans = [span for span in (feature_span, label_span) if span is not None]
    if not _rows_equal_outside(rows, spans):
        return None
    matrix = _features(features, _values(features, rows, feature_span), first, source)
    labels = None
    if label is not None:
        labels = _values(label, rows, label_span)
        if labels.shape[1] == 1:
            labels = labels[:, 0]
    return Batch(matrix, labels)
