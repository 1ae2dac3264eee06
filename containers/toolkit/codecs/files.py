"""Finding the data files of a channel directory and reading them in order, streamed
(docs/algorithms/xgboost.md#channels-and-content-types)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import scipy.sparse as sp

from containers.toolkit.codecs import content_types as ct
from containers.toolkit.codecs.batch import Batch, concat_batches, empty_batch, rebatch
from containers.toolkit.codecs.recordio import iter_mapped_recordio_pieces, iter_recordio_batches
from containers.toolkit.codecs.tabular import iter_csv_batches, iter_libsvm_batches, iter_parquet_batches
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

HIDDEN_FILE_MESSAGE = "Hidden file found in the data path! Remove that before training."
TRAINING_CONTENT_TYPES = (ct.CSV, ct.LIBSVM, ct.PARQUET, ct.RECORDIO_PROTOBUF)
_READ_ROWS = 65536


def find_channel_files(channel_dir: Path, max_depth: int = 3) -> list[Path]:
    """Every regular file of a channel, sorted by path, in sub-directories up to ``max_depth`` levels deep.

    Deeper files are ignored with a warning; names starting with ``_`` are skipped; a name starting with ``.``
    anywhere is a :class:`UserError`.
    """
    found: list[Path] = []
    for root, dirs, files in os.walk(channel_dir, followlinks=True):
        here = Path(root)
        depth = len(here.relative_to(channel_dir).parts)
        if any(name.startswith(".") for name in [*dirs, *files]):
            raise UserError(HIDDEN_FILE_MESSAGE)
        dirs[:] = sorted(name for name in dirs if not name.startswith("_"))
        if depth > max_depth:
            dirs[:] = []  # no deeper: also stops symlink cycles
            if files:
                logger.warning(
                    "Ignoring %d file(s) in %s: deeper than %d levels in the channel", len(files), here, max_depth
                )
            continue
        found.extend(here / name for name in files if not name.startswith("_") and (here / name).is_file())
    return sorted(found)


def _label_setting(media: ct.MediaType, has_label: bool) -> bool:
    label_size = media.params.get("label_size")
    if label_size is None:
        return has_label
    if label_size not in ("0", "1"):
        raise UserError(f"label_size={label_size} in content type {media} is not supported: use 0 or 1.")
    return label_size == "1"


def _iter_one_file(
    path: Path, media_type: str, batch_rows: int, has_label: bool, *, joined: bool = True
) -> Iterator[Batch]:
    """Batches of at most ``batch_rows`` rows; ``joined=False`` keeps recordIO's decoded chunks apart (no copy) and
    reads the file through ``mmap``."""
    if media_type == ct.CSV:
        yield from iter_csv_batches(path, batch_rows, has_label=has_label)
    elif media_type == ct.LIBSVM:
        yield from iter_libsvm_batches(path, batch_rows, has_label=has_label)
    elif media_type == ct.PARQUET:
        yield from iter_parquet_batches(path, batch_rows, has_label=has_label)
    elif not joined:  # read through mmap: the pieces' values are read-only views of the file's pages
        for batch in iter_mapped_recordio_pieces(path, batch_rows):
            yield batch if has_label else batch._replace(labels=None)
    else:
        with path.open("rb") as stream:
            for batch in iter_recordio_batches(stream, batch_rows, source=str(path)):
                yield batch if has_label else batch._replace(labels=None)


def _checked_widths(pieces: Iterator[tuple[Path, Batch]]) -> Iterator[Batch]:
    """Dense pieces must all have the width of the first one; sparse widths may vary (CSR is widened)."""
    width: int | None = None
    first: Path | None = None
    for path, piece in pieces:
        if width is None:
            width, first = piece.n_columns, path
        elif piece.n_columns != width and not sp.issparse(piece.features):
            raise UserError(
                f"{path} has {piece.n_columns} feature columns but {first} has {width}; all files of a channel "
                "must have the same columns."
            )
        yield piece


def _checked_media(content_type: str) -> ct.MediaType:
    media = ct.parse_media_type(content_type)
    if media.type not in TRAINING_CONTENT_TYPES:
        accepted = "csv, libsvm, parquet, recordio-protobuf, " + ", ".join(TRAINING_CONTENT_TYPES)
        raise UserError(f"{content_type} is not an accepted ContentType: {accepted}.")
    return media


def iter_file_batches(
    paths: Sequence[Path], content_type: str, batch_rows: int, *, has_label: bool = True
) -> Iterator[Batch]:
    """Stream the files in order as batches of exactly ``batch_rows`` rows (the last may be shorter).

    Any training content type (csv, libsvm, parquet, recordio-protobuf, with their aliases). A ``label_size``
    parameter of the content type (0 or 1) overrides ``has_label``. LIBSVM and sparse recordIO batches are CSR
    matrices whose width is the largest index seen so far in the batch's files.
    """
    media = _checked_media(content_type)
    labelled = _label_setting(media, has_label)
    read_rows = max(batch_rows, min(_READ_ROWS, batch_rows * 8))
    pieces = ((path, piece) for path in paths for piece in _iter_one_file(path, media.type, read_rows, labelled))
    return rebatch(_checked_widths(pieces), batch_rows)


def iter_file_pieces(path: Path, content_type: str, max_rows: int, *, has_label: bool = True) -> Iterator[Batch]:
    """One file's rows as the reader produces them, at most ``max_rows`` per batch and never re-cut or joined.

    For consumers whose result does not depend on how rows are batched: no copy to make batches of equal size.
    A recordIO file is read through ``mmap``: its float values are read-only views of the file's pages.
    """
    media = _checked_media(content_type)
    return _iter_one_file(path, media.type, max_rows, _label_setting(media, has_label), joined=False)


def read_files(paths: Sequence[Path], content_type: str, *, has_label: bool = True) -> Batch:
    """All rows of the files as one batch."""
    pieces = list(iter_file_batches(paths, content_type, _READ_ROWS, has_label=has_label))
    if not pieces:
        return empty_batch(has_label=has_label)
    return concat_batches(pieces)
