"""Turning the records of one buffer into a batch: same-length groups vectorised, the rest record by record.

Records are grouped by payload length, each group is decoded from a template (:mod:`_template`), and the rows
are put back in stream order. Rules (after XGBoost's reader, docs/reference/formats.md#semantics): a record without
``features["values"]`` is skipped; any sparse record makes the result CSR; labels are all present or all absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs._frames import Frames
from containers.toolkit.codecs._template import VALUES, decode_group, sparse_width
from containers.toolkit.codecs._wire import ByteData, ParsedRecord, Tensor, WireError, parse_record
from containers.toolkit.codecs.batch import Batch, concat_batches, empty_batch
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

_MIN_GROUP = 4
Part = tuple[np.ndarray, Batch]  # record numbers of the rows, and the rows


def parse(buf: ByteData, start: int, length: int, number: int, source: str) -> ParsedRecord:
    try:
        return parse_record(buf, start, start + length)
    except WireError as exc:
        raise UserError(f"Record {number} in {source} is not a valid aialgs.data.Record: {exc}") from exc


# ----------------------------------------------------------------------------------------------- one by one


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


def records_to_part(records: list[tuple[int, ParsedRecord]], source: str) -> Part:
    """Assemble parsed records; those without ``features["values"]`` are skipped."""
    rows = [(number, record) for number, record in records if VALUES in record.features]
    if not rows:
        return np.empty(0, dtype=np.int64), empty_batch()
    tensors = [(number, record.features[VALUES]) for number, record in rows]
    if any(tensor.is_sparse for _, tensor in tensors):
        features: np.ndarray | sp.csr_matrix = _sparse_rows(tensors, source)
    else:
        features = _dense_rows(tensors, source)
    labels = _labels([(number, record.label.get(VALUES)) for number, record in rows], source)
    return np.array([number for number, _ in rows], dtype=np.int64), Batch(features, labels)


# ----------------------------------------------------------------------------------------------- reassembly


def _check_parts(parts: list[Part], source: str) -> None:
    """Labels all present or all absent, dense widths equal, label shapes equal; errors name a record."""
    labelled = [part for part in parts if part[1].labels is not None]
    if labelled and len(labelled) != len(parts):
        unlabelled = min(int(numbers.min()) for numbers, batch in parts if batch.labels is None)
        raise UserError(f"Record {unlabelled} in {source} has no label while other records have one.")
    label_shapes = {batch.labels.shape[1:] for _, batch in labelled if batch.labels is not None}
    if len(label_shapes) > 1:
        raise UserError(f"Records in {source} have labels of different sizes.")
    dense = [(numbers, batch) for numbers, batch in parts if not sp.issparse(batch.features)]
    if not dense:
        return
    _, reference = min(dense, key=lambda part: int(part[0].min()))
    for numbers, batch in dense:
        if batch.n_columns != reference.n_columns:
            raise UserError(
                f"Record {int(numbers.min())} in {source} has {batch.n_columns} features; earlier records have "
                f"{reference.n_columns}."
            )


def _in_order(parts: list[Part], source: str) -> Batch:
    parts = [part for part in parts if part[1].n_rows]
    if not parts:
        return empty_batch()
    _check_parts(parts, source)
    batch = concat_batches([part[1] for part in parts])
    numbers = np.concatenate([part[0] for part in parts])
    if numbers.size > 1 and bool((np.diff(numbers) < 0).any()):
        order = np.argsort(numbers, kind="stable")
        labels = None if batch.labels is None else batch.labels[order]
        batch = batch._replace(features=batch.features[order], labels=labels)
    return batch


def _length_groups(lengths: np.ndarray, frames: Frames) -> Iterator[tuple[int, np.ndarray]]:
    """(payload length, indices of the records of that length); one group without sorting when all are uniform."""
    if not frames.starts:
        yield frames.payload_length, np.arange(lengths.size)
        return
    distinct, inverse = np.unique(lengths, return_inverse=True)
    for group, length in enumerate(distinct):
        yield int(length), np.flatnonzero(inverse == group)


def decode_buffer(buf: ByteData, frames: Frames, seen: int, source: str) -> Batch:
    """All records of ``buf`` located by ``frames``; ``seen`` records came before it in the stream."""
    uniform_starts = np.arange(frames.uniform, dtype=np.int64) * frames.stride + 8
    starts = np.concatenate([uniform_starts, np.array(frames.starts, dtype=np.int64)])
    lengths = np.concatenate(
        [np.full(frames.uniform, frames.payload_length, dtype=np.int64), np.array(frames.lengths, dtype=np.int64)]
    )
    numbers = seen + 1 + np.arange(starts.size, dtype=np.int64)
    if starts.size < _MIN_GROUP:  # a small request body: no grouping
        records = [
            (seen + 1 + i, parse(buf, int(starts[i]), int(lengths[i]), seen + 1 + i, source))
            for i in range(starts.size)
        ]
        return records_to_part(records, source)[1]
    parts: list[Part] = []
    leftover = np.ones(starts.size, dtype=bool)
    for length, members in _length_groups(lengths, frames):
        if members.size < _MIN_GROUP:
            continue
        decoded = decode_group(buf, starts[members], int(length), numbers[members], source)
        if decoded is not None:
            matched, batch = decoded
            parts.append((numbers[members[matched]], batch))
            leftover[members[matched]] = False
    rest = np.flatnonzero(leftover)
    if rest.size:
        records = [
            (int(numbers[i]), parse(buf, int(starts[i]), int(lengths[i]), int(numbers[i]), source)) for i in rest
        ]
        parts.append(records_to_part(records, source))
    return _in_order(parts, source)
