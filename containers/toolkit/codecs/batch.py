"""The row batch every reader yields, and helpers to join and re-cut batches."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import NamedTuple, TypeAlias

import numpy as np
import scipy.sparse as sp

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

Features: TypeAlias = np.ndarray | sp.csr_matrix


class Batch(NamedTuple):
    """Rows of features (dense 2-D array or CSR matrix), their labels and optional instance weights.

    ``labels`` is ``None`` when the data carries no label; otherwise a 1-D array (one value per row) or a 2-D array
    (several label values per row, recordIO only). ``weights`` is set only by the LIBSVM ``label:weight`` form.
    """

    features: Features
    labels: np.ndarray | None
    weights: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.features.shape[1])


def empty_batch(n_columns: int = 0, *, has_label: bool = False) -> Batch:
    labels = np.empty(0, dtype=np.float64) if has_label else None
    return Batch(np.empty((0, n_columns), dtype=np.float64), labels)


def _widen(matrix: sp.csr_matrix, n_columns: int) -> sp.csr_matrix:
    if matrix.shape[1] == n_columns:
        return matrix
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))


def _concat_features(parts: list[Features]) -> Features:
    if not any(sp.issparse(part) for part in parts):
        widths = {part.shape[1] for part in parts if part.shape[0]}
        if len(widths) > 1:
            raise UserError(f"Rows have different numbers of features: {sorted(widths)}.")
        return np.concatenate([part for part in parts if part.shape[0]] or parts[:1], axis=0)
    width = max(part.shape[1] for part in parts)
    sparse_parts = [_widen(sp.csr_matrix(part), width) for part in parts]
    return sp.csr_matrix(sp.vstack(sparse_parts, format="csr"))


def _concat_optional(parts: list[np.ndarray | None], what: str) -> np.ndarray | None:
    present = [part is not None for part in parts]
    if not any(present):
        return None
    if not all(present):
        raise UserError(f"Some files or records have {what} and others do not.")
    return np.concatenate([part for part in parts if part is not None], axis=0)


def concat_batches(batches: list[Batch]) -> Batch:
    """Join batches row-wise; dense and sparse parts together give a CSR matrix as wide as the widest part."""
    if not batches:
        return empty_batch()
    if len(batches) == 1:
        return batches[0]
    features = _concat_features([batch.features for batch in batches])
    labels = _concat_optional([batch.labels for batch in batches], "labels")
    weights = _concat_optional([batch.weights for batch in batches], "weights")
    return Batch(features, labels, weights)


def slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    features = batch.features[start:stop]
    labels = None if batch.labels is None else batch.labels[start:stop]
    weights = None if batch.weights is None else batch.weights[start:stop]
    return Batch(features, labels, weights)


def rebatch(pieces: Iterable[Batch], batch_rows: int) -> Iterator[Batch]:
    """Re-cut a stream of batches of any size into batches of exactly ``batch_rows`` rows (the last may be short).

    Only a batch that straddles two pieces is copied (joined); the others are views of their piece.
    """
    if batch_rows <= 0:
        raise ValueError(f"batch_rows must be positive, got {batch_rows}")
    pending: list[Batch] = []
    pending_rows = 0
    for piece in pieces:
        if piece.n_rows == 0:
            continue
        start = 0
        if pending:
            needed = batch_rows - pending_rows
            if piece.n_rows < needed:
                pending.append(piece)
                pending_rows += piece.n_rows
                continue
            yield concat_batches([*pending, slice_batch(piece, 0, needed)])
            start = needed
        while piece.n_rows - start >= batch_rows:
            yield slice_batch(piece, start, start + batch_rows)
            start += batch_rows
        pending = [slice_batch(piece, start, piece.n_rows)] if start < piece.n_rows else []
        pending_rows = piece.n_rows - start
    if pending_rows:
        yield concat_batches(pending)


def densify(features: Features, n_columns: int) -> np.ndarray:
    """Features as a C-contiguous float64 ``(rows, n_columns)`` array; CSR input narrower than that is zero-padded.

    The caller checks the width first: dense input must already have ``n_columns`` columns, sparse input at most.
    """
    if not sp.issparse(features):
        return np.ascontiguousarray(features, dtype=np.float64)
    dense = np.zeros((features.shape[0], n_columns), dtype=np.float64)
    dense[:, : features.shape[1]] = sp.csr_matrix(features).toarray()
    return dense
