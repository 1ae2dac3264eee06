"""A fast path for CSV training channels: the files parsed straight into one float32 matrix.

XGBoost keeps every feature, label and weight as float32, so the container parses CSV cells to float32 directly
(pyarrow, all its threads, one call per file; each number is rounded once) instead of going through float64
pieces that are joined and converted again. This halves the memory of the
matrix and skips two full copies.

The fast path only takes files pyarrow reads cleanly. Anything else (a non-numeric cell, rows of different widths,
stray spaces, files of different widths, no rows at all) returns ``None`` and the caller reads the channel with the
shared codecs, which accept what they accept and name the offending line, exactly as before. Lines whose cells are
all empty are skipped, as the codecs skip them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from containers.toolkit.codecs import Batch
from containers.toolkit.codecs.tabular import sniff_delimiter
from containers.toolkit.threads import start_background

logger = logging.getLogger(__name__)

_FIRST_LINE_BYTES = 1 << 20  # enough for the first line of any sane CSV; longer lines take the codec path


_prefetched: dict[tuple[Path, ...], Future[Batch | None]] = {}


class _NotFast(Exception):
    """The file needs the codec path."""


def prefetch_csv_float32(paths: Sequence[Path]) -> None:
    """Start :func:`read_csv_float32` of ``paths`` in a background thread; the next call with the same paths takes
    its result (or its exception). Started before XGBoost and SciPy are imported, the parse (pyarrow, which does not
    hold the GIL) overlaps that start-up. Call it only when the files will be read
    (docs/algorithms/xgboost.md#training)."""
    key = tuple(paths)
    if key in _prefetched:
        return
    future: Future[Batch | None] = Future()

    def read() -> None:
        try:
            future.set_result(_read_files(key))
        except BaseException as exc:  # handed to the reader, raised there
            future.set_exception(exc)

    _prefetched[key] = future
    start_background(read, "csv-prefetch")


def read_csv_float32(paths: Sequence[Path]) -> Batch | None:
    """All rows of the CSV files as float32 (label first), or None when the codec path must read them."""
    future = _prefetched.pop(tuple(paths), None)
    if future is not None:
        return future.result()
    return _read_files(paths)


def _read_files(paths: Sequence[Path]) -> Batch | None:
    matrices: list[np.ndarray] = []
    try:
        for path in paths:
            matrix = _read_file(path)
            if matrix.shape[0]:
                matrices.append(matrix)
    except _NotFast as exc:
        logger.debug("CSV fast path not taken: %s", exc)
        return None
    if not matrices or len({matrix.shape[1] for matrix in matrices}) != 1 or matrices[0].shape[1] < 1:
        return None
    matrix = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
    return Batch(matrix[:, 1:], matrix[:, 0])


def _first_line(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(_FIRST_LINE_BYTES)
    if not head:
        return ""
    end = min((i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0), default=-1)
    if end < 0 and len(head) == _FIRST_LINE_BYTES:
        return None
    try:
        return (head[:end] if end >= 0 else head).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _read_file(path: Path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first = _first_line(path)
    if first is None or not first.strip():
        if first == "" and path.stat().st_size == 0:
            return np.empty((0, 0), dtype=np.float32)
        raise _NotFast(f"{path}: the first line is empty or too long")
    first = first.strip()  # as the codecs see it
    separator = sniff_delimiter(first)
    names = [f"f{number}" for number in range(len(first.split(separator)))]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=separator),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float32())),
        )
        matrix = np.asarray(table.to_tensor(null_to_nan=True, row_major=True))
    except (pa.ArrowException, ValueError) as exc:
        raise _NotFast(f"{path}: {exc}") from exc
    return _drop_blank_rows(matrix)


def _drop_blank_rows(matrix: np.ndarray) -> np.ndarray:
    candidates = np.flatnonzero(np.isnan(matrix[:, 0]))  # a blank row has a missing first cell: cheap filter first
    if candidates.size == 0:
        return matrix
    blank = candidates[np.isnan(matrix[candidates]).all(axis=1)]
    return np.delete(matrix, blank, axis=0) if blank.size else matrix
