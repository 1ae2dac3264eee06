"""Training channels of the XGBoost algorithm (docs/algorithms/xgboost.md#channels-and-content-types): validation,
discovery, reading into DMatrix objects."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import xgboost as xgb

from containers.toolkit.codecs import CSV, Batch, find_channel_files, parse_media_type, read_files
from containers.toolkit.codecs.files import TRAINING_CONTENT_TYPES
from containers.toolkit.environment import ChannelConfig
from containers.toolkit.errors import UserError
from containers.xgboost.csv_float32 import read_csv_float32

logger = logging.getLogger(__name__)

TRAIN = "train"
VALIDATION = "validation"
CODE = "code"
DEFAULT_CONTENT_TYPE = "text/libsvm"
_ACCEPTED_TEXT = (
    "csv, libsvm, parquet, recordio-protobuf, text/csv, text/libsvm, text/x-libsvm, application/x-parquet, "
    "application/x-recordio-protobuf"
)
_CHANNEL_TITLES = {TRAIN: "training", VALIDATION: "validation"}


@dataclass(frozen=True)
class ChannelData:
    """One channel, checked: its canonical content type and its data files (maybe none)."""

    name: str
    path: Path
    content_type: str
    files: tuple[Path, ...]

    @property
    def has_data(self) -> bool:
        return bool(self.files)


def channel_content_type(channel: ChannelConfig) -> str:
    """The channel's content type, canonical; defaults to text/libsvm; ``label_size`` must be 1 for CSV."""
    raw = channel.content_type or DEFAULT_CONTENT_TYPE
    media = parse_media_type(raw)
    if media.type not in TRAINING_CONTENT_TYPES:
        raise UserError(f"{raw} is not an accepted ContentType: {_ACCEPTED_TEXT}.")
    label_size = media.params.get("label_size")
    if media.type == CSV and label_size is not None and label_size != "1":
        raise UserError(f"label_size in content type {raw} must be 1 for channel {channel.name}, got {label_size}.")
    return media.type


def check_channels(channels: Mapping[str, ChannelConfig]) -> None:
    for name in channels:
        if name not in (TRAIN, VALIDATION, CODE):
            raise UserError(f"Extraneous channel found: {name}")
    if TRAIN not in channels:
        raise UserError(f"Missing required channel: {TRAIN}")
    for name in (TRAIN, VALIDATION):
        channel = channels.get(name)
        if channel is not None and channel.input_mode.lower() == "pipe":
            raise UserError(
                f"Pipe mode is not supported for channel '{name}' (the XGBoost container no longer reads Pipe "
                "mode). Use File or FastFile mode."
            )


def discover(channels: Mapping[str, ChannelConfig]) -> dict[str, ChannelData]:
    """Check the channels and list the data files of ``train`` and (if configured) ``validation``."""
    check_channels(channels)
    found: dict[str, ChannelData] = {}
    for name in (TRAIN, VALIDATION):
        channel = channels.get(name)
        if channel is None:
            continue
        content_type = channel_content_type(channel)
        files = tuple(find_channel_files(channel.path)) if channel.path.is_dir() else ()
        found[name] = ChannelData(name, channel.path, content_type, files)
    return found


def require_data(channel: ChannelData) -> None:
    if not channel.has_data:
        raise UserError(f"No data in {_CHANNEL_TITLES[channel.name]} channel path {channel.path}")


def read_channel(channel: ChannelData, *, csv_weights: bool) -> Batch:
    """All rows of a channel; labels are required; with ``csv_weights`` the CSV's second column is the weight."""
    require_data(channel)
    batch = read_csv_float32(channel.files) if channel.content_type == CSV else None
    if batch is None:
        batch = read_files(list(channel.files), channel.content_type, has_label=True)
    if batch.n_rows == 0:
        raise UserError(f"No data in {_CHANNEL_TITLES[channel.name]} channel path {channel.path}")
    if batch.labels is None or batch.labels.size == 0:
        raise UserError(
            f"Got input data without labels in the {channel.name} channel ({channel.path}). Put the label in the "
            "first column (CSV, Parquet), as the first token (LIBSVM) or in label['values'] (recordIO)."
        )
    labels = batch.labels
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if csv_weights and channel.content_type == CSV:
        return _split_weight(Batch(batch.features, labels, batch.weights), channel)
    return Batch(batch.features, labels, batch.weights)


def _split_weight(batch: Batch, channel: ChannelData) -> Batch:
    if batch.n_columns < 2:
        raise UserError(f"csv_weights=1 needs a weight column after the label in channel {channel.name}.")
    features = batch.features
    if sp.issparse(features):
        weights = np.asarray(sp.csr_matrix(features)[:, [0]].toarray()).ravel()
    else:
        weights = np.asarray(features[:, 0])
    return Batch(features[:, 1:], batch.labels, weights)


def widen(batch: Batch, n_columns: int) -> Batch:
    """Give a sparse batch ``n_columns`` columns (LIBSVM files may stop before the last feature)."""
    if batch.n_columns >= n_columns or not sp.issparse(batch.features):
        return batch
    matrix = sp.csr_matrix(batch.features)
    widened = sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))
    return Batch(widened, batch.labels, batch.weights)


def to_dmatrix(batch: Batch, *, nthread: int | None = None) -> xgb.DMatrix:
    features = batch.features
    if not sp.issparse(features):
        features = np.asarray(features)
    try:
        return xgb.DMatrix(features, label=batch.labels, weight=batch.weights, missing=np.nan, nthread=nthread or -1)
    except (ValueError, xgb.core.XGBoostError) as exc:
        raise UserError(f"Could not build the training matrix: {exc}") from exc
