"""Writing RecordIO-protobuf: one ``aialgs.data.Record`` per row, byte-identical to the SageMaker SDK writers.

Rows whose encoded size does not vary (float tensors, or integers 0..127) are written in one vectorised step;
others are written row by row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._frames import HEADER, MAGIC, frame, padding
from containers.toolkit.codecs._wire import (
    FLOAT32,
    FLOAT64,
    INT32,
    TENSOR_DTYPES,
    dense_tensor_entry,
    encode_values,
    encode_varint,
    encode_varints,
    map_entry,
    tensor_message,
)

logger = logging.getLogger(__name__)

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def tensor_kind(array: np.ndarray) -> int:
    """The tensor type for a numpy dtype (SDK ``_resolve_type``, widened to every integer and bool dtype)."""
    dtype = array.dtype
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float64:
        return FLOAT64
    if dtype.kind in "iub":
        if array.size and (int(array.min()) < _INT32_MIN or int(array.max()) > _INT32_MAX):
            raise ValueError(f"integer values of dtype {dtype} do not fit an Int32Tensor")
        return INT32
    raise ValueError(f"Unsupported dtype {dtype} on array")


def _fixed_width(array: np.ndarray, kind: int) -> np.ndarray | None:
    """Row-wise encoded bytes as a (rows, width) uint8 array when every row encodes to the same size."""
    rows = array.shape[0]
    if kind == INT32:
        if array.size and (int(array.min()) < 0 or int(array.max()) >= 0x80):
            return None
        return array.astype(np.uint8).reshape(rows, -1)
    return np.ascontiguousarray(array, dtype=TENSOR_DTYPES[kind]).view(np.uint8).reshape(rows, -1)


def _label_matrix(labels: np.ndarray | None, rows: int) -> np.ndarray | None:
    if labels is None:
        return None
    matrix = np.asarray(labels)
    matrix = matrix.reshape(-1, 1) if matrix.ndim == 1 else matrix
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise ValueError(f"labels of shape {np.shape(labels)} do not match {rows} rows")
    return matrix


def _write_dense_fixed(features: np.ndarray, kind: int, labels: np.ndarray | None, label_kind: int) -> bytes | None:
    """All rows in one step, or ``None`` when some row would encode to a different size."""
    feature_bytes = _fixed_width(features, kind)
    label_bytes = _fixed_width(labels, label_kind) if labels is not None else None
    if feature_bytes is None or (labels is not None and label_bytes is None) or feature_bytes.shape[1] == 0:
        return None
    rows = features.shape[0]
    blocks = [(dense_tensor_entry(1, "values", kind, features[0]), feature_bytes)]
    if labels is not None and label_bytes is not None:
        blocks.append((dense_tensor_entry(2, "values", label_kind, labels[0]), label_bytes))
    length = sum(len(entry) for entry, _ in blocks)
    stride = HEADER.size + length + padding(length)
    out = np.zeros((rows, stride), dtype=np.uint8)
    out[:, : HEADER.size] = np.frombuffer(HEADER.pack(MAGIC, length), dtype=np.uint8)
    cursor = HEADER.size
    for entry, values in blocks:
        prefix = len(entry) - values.shape[1]  # the packed values are the last bytes of the entry
        out[:, cursor : cursor + prefix] = np.frombuffer(entry[:prefix], dtype=np.uint8)
        out[:, cursor + prefix : cursor + len(entry)] = values
        cursor += len(entry)
    return out.tobytes()


def _write_dense_rows(features: np.ndarray, kind: int, labels: np.ndarray | None, label_kind: int) -> bytes:
    parts: list[bytes] = []
    for index in range(features.shape[0]):
        payload = dense_tensor_entry(1, "values", kind, features[index])
        if labels is not None:
            payload += dense_tensor_entry(2, "values", label_kind, labels[index])
        parts.append(frame(payload))
    return b"".join(parts)


def _row_slices(blob: bytes, counts: np.ndarray, indptr: np.ndarray) -> list[bytes]:
    """Cut the concatenated encoding of all non-zeros into one byte string per row."""
    ends = np.concatenate(([0], np.cumsum(counts)))[indptr]
    return [blob[ends[i] : ends[i + 1]] for i in range(len(indptr) - 1)]


def _write_sparse(matrix: sp.csr_matrix, labels: np.ndarray | None, label_kind: int) -> bytes:
    kind = tensor_kind(matrix.data)
    rows, columns = matrix.shape
    if kind == INT32:
        value_blob, value_counts = encode_varints(matrix.data)
    else:
        value_blob = np.ascontiguousarray(matrix.data, dtype=TENSOR_DTYPES[kind]).tobytes()
        value_counts = np.full(matrix.data.size, TENSOR_DTYPES[kind].itemsize, dtype=np.int64)
    key_blob, key_counts = encode_varints(matrix.indices.astype(np.int64))
    values = _row_slices(value_blob, value_counts, matrix.indptr)
    keys = _row_slices(key_blob, key_counts, matrix.indptr)
    shape = encode_varint(columns)
    parts: list[bytes] = []
    for index in range(rows):
        payload = map_entry(1, "values", kind, tensor_message(values[index], keys[index], shape))
        if labels is not None:
            payload += dense_tensor_entry(2, "values", label_kind, labels[index])
        parts.append(frame(payload))
    return b"".join(parts)


def write_recordio(features: np.ndarray | sp.spmatrix | sp.sparray, labels: np.ndarray | None = None) -> bytes:
    """Encode a 2-D array or sparse matrix (and optional labels, one value or one vector per row) as RecordIO.

    Dense arrays give dense tensors, sparse matrices give ``keys`` + ``shape=[n_columns]`` tensors. The tensor
    type follows the dtype: float32 → Float32, float64 → Float64, integers → Int32 (features and labels
    independently), as the SDK does.
    """
    if features.ndim != 2:
        raise ValueError("features must be a 2-D array or sparse matrix")
    label_matrix = _label_matrix(labels, features.shape[0])
    label_kind = tensor_kind(label_matrix) if label_matrix is not None else FLOAT32
    if sp.issparse(features):
        matrix = sp.csr_matrix(features)
        if not matrix.has_canonical_format:
            logger.debug("writing a CSR matrix whose indices are not canonical, as stored")
        return _write_sparse(matrix, label_matrix, label_kind)
    array = np.asarray(features)
    kind = tensor_kind(array)
    fixed = _write_dense_fixed(array, kind, label_matrix, label_kind)
    return fixed if fixed is not None else _write_dense_rows(array, kind, label_matrix, label_kind)


def encode_label_records(rows: Sequence[Mapping[str, float | Sequence[float] | np.ndarray]]) -> bytes:
    """Inference responses: one Record per row, each key a float32 tensor under ``label``, empty ``features``."""
    parts: list[bytes] = []
    for row in rows:
        payload = b"".join(
            map_entry(2, key, FLOAT32, tensor_message(encode_values(FLOAT32, np.atleast_1d(np.asarray(value)))))
            for key, value in row.items()
        )
        parts.append(frame(payload))
    return b"".join(parts)
