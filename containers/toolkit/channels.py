"""Dense training channels for the built-in-style algorithms (K-Means, PCA): checked float64 batches, streamed.

Files are read one after another through the toolkit codecs, so memory holds a few batches, never the channel.
Each batch is checked: the ``feature_dim`` / ``label_size`` rule for CSV (with no ``label_size``, rows of
``feature_dim + 1`` columns drop the first one, a label), the width of recordIO features (sparse rows are
densified; the SDK sends ``force_dense=True`` anyway), and finite values. Errors name the file and the row.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

from containers.toolkit.codecs.batch import Features, densify
from containers.toolkit.codecs.content_types import CSV, RECORDIO_PROTOBUF, parse_media_type
from containers.toolkit.codecs.files import find_channel_files, iter_file_batches, iter_file_pieces
from containers.toolkit.environment import ChannelConfig, TrainingEnvironment
from containers.toolkit.errors import UserError
from containers.toolkit.threads import start_background

logger = logging.getLogger(__name__)

SUPPORTED = (CSV, RECORDIO_PROTOBUF)
READ_AHEAD_PIECES = 1  # CSV pieces parsed ahead of the consumer: one more block (16 MB of text) in memory
_Item = TypeVar("_Item")
DEFAULT_CONTENT_TYPE = RECORDIO_PROTOBUF  # what the SDK's record_set() writes
TRAIN = "train"
TEST = "test"


@dataclass(frozen=True)
class DenseChannel:
    """One channel's files, content type and the expected number of features."""

    name: str
    files: tuple[Path, ...]
    content_type: str
    feature_dim: int
    may_be_empty: bool = False  # one host's share of a multi-host channel: emptiness is judged over all hosts

    @classmethod
    def open(cls, config: ChannelConfig, feature_dim: int, *, may_be_empty: bool = False) -> DenseChannel:
        """Check the input mode, content type and files of a channel (before any training)."""
        if config.input_mode == "Pipe":
            raise UserError(
                f"Channel {config.name}: Pipe input mode is not supported by this container; use File or "
                "FastFile (data is streamed from the files in bounded memory either way)."
            )
        content_type = config.content_type or DEFAULT_CONTENT_TYPE
        if parse_media_type(content_type).type not in SUPPORTED:
            raise UserError(
                f"Channel {config.name}: content type {content_type} is not supported; use text/csv or "
                "application/x-recordio-protobuf."
            )
        if not config.path.is_dir():
            raise UserError(f"Channel {config.name}: data directory {config.path} does not exist.")
        files = tuple(find_channel_files(config.path))
        if not files and not may_be_empty:
            raise UserError(f"Channel {config.name} is empty: no data files in {config.path}.")
        return cls(config.name, files, content_type, feature_dim, may_be_empty)

    @property
    def media_type(self) -> str:
        return parse_media_type(self.content_type).type

    def batches(self, batch_rows: int, *, exact: bool = True, as_float64: bool = True) -> Iterator[np.ndarray]:
        """Every row of every file, in order, as checked C-contiguous float64 batches of ``batch_rows`` rows.

        With ``exact=False`` batches hold *at most* ``batch_rows`` rows, as the file reader delivers them (no
        copying to re-cut them), for algorithms whose result does not depend on the batching. With
        ``as_float64=False`` dense float32 rows (recordIO Float32 tensors) stay float32, for a consumer that
        converts them in its own first pass.
        """
        for path, first_row, features in self.unchecked_batches(batch_rows, exact=exact, as_float64=as_float64):
            check_finite(features, path, first_row)
            yield features

    def unchecked_batches(
        self, batch_rows: int, *, exact: bool = True, as_float64: bool = True
    ) -> Iterator[tuple[Path, int, np.ndarray]]:
        """As :meth:`batches`, but not checked for NaN and infinite values, each with its file and the 0-based
        number of its first row in the file: for a consumer that notices non-finite values in its own pass and
        then calls :func:`check_finite` on the batch for the error naming the row."""
        csv_label_column = self.media_type == CSV and "label_size" not in parse_media_type(self.content_type).params
        rows = 0
        for path in self.files:
            row = 0
            if exact:
                pieces = iter_file_batches([path], self.content_type, batch_rows, has_label=False)
            else:
                pieces = iter_file_pieces(path, self.content_type, batch_rows, has_label=False)
            if self.media_type == CSV:  # Arrow parses without the GIL: the next piece while this one is used
                pieces = read_ahead(pieces, READ_AHEAD_PIECES)
            for batch in pieces:
                features = dense_features(
                    batch.features, self.feature_dim, path, csv_label_column=csv_label_column, as_float64=as_float64
                )
                yield path, row, features
                row += features.shape[0]
            rows += row
        if rows == 0 and not self.may_be_empty:
            raise UserError(f"Channel {self.name} is empty: its {len(self.files)} file(s) hold no rows.")


def dense_features(
    features: Features, feature_dim: int, path: Path, *, csv_label_column: bool, as_float64: bool = True
) -> np.ndarray:
    """A batch as float64 ``(rows, feature_dim)``; ``csv_label_column`` allows (and drops) one leading column.
    With ``as_float64=False`` a dense float32 batch is returned as it is."""
    width = int(features.shape[1])
    if sp.issparse(features):
        if width > feature_dim:
            raise UserError(
                f"feature_dim mismatch in {path}: a sparse record has a feature index {width - 1}, out of range "
                f"for feature_dim={feature_dim}."
            )
        return densify(features, feature_dim)
    if width == feature_dim:
        if not as_float64 and features.dtype == np.float32:
            return features
        return densify(features, feature_dim)
    if csv_label_column and width == feature_dim + 1:
        return densify(features[:, 1:], feature_dim)  # the first column is a label (docs/algorithms/kmeans.md#data)
    raise UserError(
        f"feature_dim mismatch in {path}: rows have {width} columns, but feature_dim={feature_dim} "
        f"(CSV rows may have feature_dim or feature_dim+1 columns, the first then being a label)."
    )


def check_finite(features: np.ndarray, path: Path, first_row: int) -> None:
    """Raise UserError naming the file and the 1-based row of the first NaN or infinite value."""
    with np.errstate(over="ignore", invalid="ignore"):
        # one pass, no boolean temporary: any NaN/inf makes the sum non-finite (numpy, not a BLAS call: waking the
        # BLAS threads for a reduction costs more than it saves on a busy machine)
        total = features.sum()
    if np.isfinite(total):
        return
    finite = np.isfinite(features)
    if finite.all():
        return  # the sum overflowed: every value is finite
    row, column = np.argwhere(~finite)[0]
    raise UserError(
        f"Invalid value {float(features[row, column])} in {path}, row {first_row + int(row) + 1}, feature "
        f"{int(column) + 1}: NaN, infinite and missing values are not supported."
    )


def host_share(channel: DenseChannel, config: ChannelConfig, hosts: Sequence[str], current: str) -> DenseChannel:
    """The files this host reads in a job of several hosts (docs/algorithms/kmeans.md#distributed-training).

    ``ShardedByS3Key``: the host's own shard, all of it. ``FullyReplicated``: every host holds every file, so the
    hosts split them, host ``i`` of ``n`` reading files ``i, i + n, ...`` of the sorted list; together they read the
    channel once, as one host would. A host may get no file: whether the channel is empty is judged over all hosts.
    """
    if len(hosts) == 1:
        return channel
    files = channel.files
    if config.s3_distribution_type != "ShardedByS3Key":
        index = sorted(hosts).index(current)
        files = files[index :: len(hosts)]
    return DenseChannel(channel.name, files, channel.content_type, channel.feature_dim, may_be_empty=True)


def open_train_and_test(env: TrainingEnvironment, feature_dim: int) -> tuple[DenseChannel, DenseChannel | None]:
    """This host's share of the required ``train`` channel and of the optional ``test`` channel, both checked before
    training starts (with one host: the whole channels)."""
    hosts, current = env.resource.hosts, env.resource.current_host
    shards = len(hosts) > 1
    train_config = env.channel(TRAIN)
    if train_config is None:
        raise UserError(f"Channel {TRAIN} is required (optional: {TEST}).")
    train = host_share(DenseChannel.open(train_config, feature_dim, may_be_empty=shards), train_config, hosts, current)
    test_config = env.channel(TEST)
    if test_config is None:
        return train, None
    test = DenseChannel.open(test_config, feature_dim, may_be_empty=shards)
    return train, host_share(test, test_config, hosts, current)


class ReplayableBatches:
    """A channel read several times (epochs, then scoring): the first pass keeps its batches while they fit in
    ``budget_bytes``, and later passes replay them instead of decoding the files again. A channel larger than the
    budget is simply streamed again each time, so memory stays bounded by the budget."""

    def __init__(self, channel: DenseChannel, batch_rows: int, budget_bytes: int) -> None:
        self.channel = channel
        self.batch_rows = batch_rows
        self.budget_bytes = budget_bytes
        self._cache: list[np.ndarray] | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._cache is not None:
            yield from self._cache
            return
        kept: list[np.ndarray] | None = []
        size = 0
        for batch in self.channel.batches(self.batch_rows):
            if kept is not None:
                size += batch.nbytes
                if size <= self.budget_bytes:
                    kept.append(batch.copy())  # a batch may be a view that keeps a larger decoded block alive
                else:
                    kept = None  # too large: the next passes stream the files again
            yield batch
        if kept is not None:
            logger.info("channel %s (%d bytes decoded) is kept in memory for the next passes", self.channel.name, size)
        self._cache = kept


def read_ahead(items: Iterator[_Item], depth: int) -> Iterator[_Item]:
    """``items`` produced by a background thread at most ``depth`` ahead of the consumer, in order; an exception
    raised while producing is raised here, at its place in the sequence. Memory holds at most ``depth + 1`` items
    more than the consumer does. If the consumer stops early the producer stops after the item in hand."""
    slots: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((True, done))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))

    start_background(produce, "channel-read-ahead", stop.set)
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is done:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
