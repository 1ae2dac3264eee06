from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from containers.toolkit.channels import DenseChannel, check_finite, dense_features, host_share
from containers.toolkit.codecs import CSV, RECORDIO_PROTOBUF, write_recordio
from containers.toolkit.environment import ChannelConfig
from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import (
    BUILTIN_HIDDEN_KEYS,
    HyperparameterSpec,
    IntegerHyperparameter,
    config_from_values,
)


def _channel(tmp_path, files, content_type=CSV, feature_dim=2, input_mode="File"):
    directory = tmp_path / "train"
    directory.mkdir()
    for name, payload in files.items():
        (directory / name).write_bytes(payload)
    return DenseChannel.open(ChannelConfig("train", directory, content_type, input_mode), feature_dim)


def test_csv_batches_span_files_in_order(tmp_path):
    channel = _channel(tmp_path, {"a.csv": b"1,2\n3,4\n5,6\n", "b.csv": b"7,8\n"})
    batches = list(channel.batches(2))
    assert [batch.shape for batch in batches] == [(2, 2), (1, 2), (1, 2)]  # batches do not cross files
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(1, 9, dtype=np.float64).reshape(4, 2))
    assert all(batch.dtype == np.float64 and batch.flags.c_contiguous for batch in batches)


def test_csv_leading_label_is_dropped_unless_label_size_is_given(tmp_path):
    channel = _channel(tmp_path, {"a.csv": b"9,1,2\n9,3,4\n"})
    np.testing.assert_array_equal(next(channel.batches(10)), [[1.0, 2.0], [3.0, 4.0]])
    explicit = DenseChannel("train", channel.files, "text/csv;label_size=0", 2)
    with pytest.raises(UserError, match=r"feature_dim mismatch in .*a.csv: rows have 3 columns"):
        list(explicit.batches(10))


def test_recordio_sparse_rows_are_densified(tmp_path):
    rows = sp.csr_matrix(np.array([[0.0, 1.5], [2.0, 0.0]]))
    channel = _channel(tmp_path, {"a.pbr": write_recordio(rows)}, RECORDIO_PROTOBUF, feature_dim=3)
    np.testing.assert_array_equal(next(channel.batches(10)), [[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])


def test_sparse_index_beyond_feature_dim_names_the_file(tmp_path):
    with pytest.raises(UserError, match=r"feature_dim mismatch in .*x.pbr: a sparse record has a feature index 3"):
        dense_features(sp.csr_matrix(np.ones((1, 4))), 2, tmp_path / "x.pbr", csv_label_column=False)


@pytest.mark.parametrize(
    ("files", "content_type", "input_mode", "message"),
    [
        ({"a.csv": b"1,2\n"}, CSV, "Pipe", "Pipe input mode is not supported"),
        ({"a.csv": b"1,2\n"}, "application/x-parquet", "File", "content type .* is not supported"),
        ({}, CSV, "File", "Channel train is empty: no data files"),
    ],
)
def test_open_refuses_unusable_channels(tmp_path, files, content_type, input_mode, message):
    with pytest.raises(UserError, match=message):
        _channel(tmp_path, files, content_type, input_mode=input_mode)


def test_channel_without_rows_fails_when_read(tmp_path):
    channel = _channel(tmp_path, {"a.csv": b"\n\n"})
    with pytest.raises(UserError, match=r"Channel train is empty: its 1 file\(s\) hold no rows"):
        list(channel.batches(10))


def test_check_finite_names_row_and_feature(tmp_path):
    features = np.array([[1.0, 2.0], [3.0, np.inf]])
    with pytest.raises(UserError, match=r"Invalid value inf in .*f.csv, row 12, feature 2"):
        check_finite(features, tmp_path / "f.csv", 10)


@pytest.mark.filterwarnings("error")  # nor does the overflowing sum leak a RuntimeWarning
def test_check_finite_accepts_values_whose_sum_overflows(tmp_path):
    huge = np.full((2, 2), 1e308)
    assert check_finite(huge, tmp_path / "f.csv", 0) is None  # every value is finite: accepted
    huge[1, 0] = np.nan  # the sum is not finite either way: now the value itself is named
    with pytest.raises(UserError, match=r"Invalid value nan in .*f.csv, row 2, feature 1"):
        check_finite(huge, tmp_path / "f.csv", 0)


def test_host_share_splits_replicated_files_and_keeps_shards(tmp_path):
    files = {f"{name}.csv": b"1,2\n" for name in "abcde"}
    channel = _channel(tmp_path, files)
    hosts = ("algo-1", "algo-2")
    replicated = ChannelConfig("train", channel.files[0].parent, CSV, s3_distribution_type="FullyReplicated")
    shares = [host_share(channel, replicated, hosts, host) for host in hosts]
    assert [[path.name for path in share.files] for share in shares] == [
        ["a.csv", "c.csv", "e.csv"],
        ["b.csv", "d.csv"],
    ]
    assert all(share.may_be_empty for share in shares)
    sharded = ChannelConfig("train", channel.files[0].parent, CSV, s3_distribution_type="ShardedByS3Key")
    assert host_share(channel, sharded, hosts, "algo-2").files == channel.files
    assert host_share(channel, replicated, ("algo-1",), "algo-1") is channel


def test_an_empty_share_reads_no_rows_without_an_error(tmp_path):
    empty = tmp_path / "train"
    empty.mkdir()
    share = DenseChannel.open(ChannelConfig("train", empty, CSV), 2, may_be_empty=True)
    assert share.files == () and list(share.batches(10)) == []
    with pytest.raises(UserError, match="Channel train is empty"):
        DenseChannel.open(ChannelConfig("train", empty, CSV), 2)


@dataclass(frozen=True)
class _Config:
    size: int
    depth: int = 3


def test_config_from_values_skips_unknown_values_and_applies_overrides():
    spec = HyperparameterSpec(
        parameters=(IntegerHyperparameter("size", required=True), IntegerHyperparameter("epochs", default=1)),
        ignored=BUILTIN_HIDDEN_KEYS,
    )
    values = spec.validate({"size": "4", "_kvstore": "dist_sync", "_tuning_objective_metric": "x"})
    assert config_from_values(_Config, values) == _Config(4)
    assert config_from_values(_Config, values, depth=7) == _Config(4, 7)


def test_replayable_batches_read_files_once_within_budget(tmp_path, monkeypatch):
    from containers.toolkit.channels import ReplayableBatches

    channel = _channel(tmp_path, {"a.csv": b"1,2\n3,4\n5,6\n"})
    reads = []
    original = DenseChannel.batches
    monkeypatch.setattr(DenseChannel, "batches", lambda self, rows: reads.append(rows) or original(self, rows))
    kept = ReplayableBatches(channel, 2, budget_bytes=1 << 20)
    first, second = [b.tolist() for b in kept], [b.tolist() for b in kept]
    assert first == second and len(reads) == 1
    streamed = ReplayableBatches(channel, 2, budget_bytes=8)
    assert [b.tolist() for b in streamed] == [b.tolist() for b in streamed] == first
    assert len(reads) == 3
