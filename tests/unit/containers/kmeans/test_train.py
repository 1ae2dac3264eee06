from __future__ import annotations

import re
import socket

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits

from containers.kmeans.model import MODEL_FILE, load_centers
from containers.kmeans.spec import METRICS
from containers.kmeans.train import train
from containers.toolkit.codecs import write_recordio
from containers.toolkit.entrypoint import run_training
from tests.unit.containers.kmeans.conftest import match_centers
from tests.unit.containers.kmeans.host import csv_bytes, run_container, write_host

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"
HP = {"k": 4, "feature_dim": 5, "mini_batch_size": 500}


def _train(monkeypatch, base, hyperparameters, channels, **kwargs):
    write_host(base, hyperparameters, channels, **kwargs)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    return run_training(train)


def test_csv_channel_recovers_blobs_and_writes_the_artifact(monkeypatch, tmp_path, blobs):
    points, truth = blobs
    code = _train(monkeypatch, tmp_path, HP, {"train": (CSV, {"part-0.csv": csv_bytes(points)})})
    assert code == 0
    assert (tmp_path / "output" / "success").exists()
    assert [p.name for p in (tmp_path / "model").iterdir()] == [MODEL_FILE]
    centers = load_centers(tmp_path / "model")
    assert centers.shape == (4, 5) and centers.dtype == np.float32
    np.testing.assert_allclose(match_centers(centers, truth), truth, atol=0.1)


@pytest.mark.parametrize(
    "extra",
    [
        {"mini_batch_size": 7},  # smaller than K = 40: initialisation gathers more rows
        {"epochs": 3, "half_life_time_size": 1000, "init_method": "kmeans++"},
        {"extra_center_factor": 1, "local_lloyd_num_trials": 1, "local_lloyd_init_method": "random"},
        {"mini_batch_size": 5000},  # one batch holds the whole channel
    ],
)
def test_hyperparameter_variants_still_recover_blobs(monkeypatch, tmp_path, blobs, extra):
    points, truth = blobs
    code = _train(monkeypatch, tmp_path, {**HP, **extra}, {"train": (CSV, {"a.csv": csv_bytes(points)})})
    assert code == 0, (tmp_path / "output" / "failure").read_text()
    if extra.get("extra_center_factor") == 1:  # plain mini-batch k-means from random seeds may merge two blobs
        return
    np.testing.assert_allclose(match_centers(load_centers(tmp_path / "model"), truth), truth, atol=0.15)


def test_csv_with_label_size_parameter(monkeypatch, tmp_path):
    # label_size=1 drops the first column even though the width equals feature_dim
    rows = b"9,0,0\n9,0,1\n9,10,10\n9,10,11\n"
    hp = {"k": 2, "feature_dim": 2, "mini_batch_size": 10}
    assert (
        _train(monkeypatch, tmp_path, {**hp, "feature_dim": 2}, {"train": ("text/csv;label_size=1", {"a.csv": rows})})
        == 0
    )
    centers = np.sort(load_centers(tmp_path / "model")[:, 0])
    np.testing.assert_allclose(centers, [0.0, 10.0])


def test_csv_with_label_column_and_several_files_matches_one_file(monkeypatch, tmp_path, blobs):
    points, truth = blobs
    labels = np.arange(len(points)) % 4
    files = {f"part-{i}.csv": csv_bytes(points[i::3], labels[i::3]) for i in range(3)}
    assert _train(monkeypatch, tmp_path, HP, {"train": (CSV, files)}) == 0
    np.testing.assert_allclose(match_centers(load_centers(tmp_path / "model"), truth), truth, atol=0.1)


def test_recordio_from_the_sdk_writer_trains(monkeypatch, tmp_path, blobs):
    from sagemaker.amazon.common import write_numpy_to_dense_tensor  # the bytes record_set() uploads

    points, truth = blobs
    import io

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, points.astype(np.float32))
    hp = {**HP, "force_dense": "True", "eval_metrics": '["msd", "ssd"]'}
    assert _train(monkeypatch, tmp_path, hp, {"train": (RECORDIO, {"data.pbr": buffer.getvalue()})}) == 0
    np.testing.assert_allclose(match_centers(load_centers(tmp_path / "model"), truth), truth, atol=0.1)


def test_sparse_recordio_trains(monkeypatch, tmp_path, blobs):
    import scipy.sparse as sp

    points, truth = blobs
    payload = write_recordio(sp.csr_matrix(points.astype(np.float32)))
    assert _train(monkeypatch, tmp_path, HP, {"train": (RECORDIO, {"data.pbr": payload})}) == 0
    np.testing.assert_allclose(match_centers(load_centers(tmp_path / "model"), truth), truth, atol=0.1)


def _failure(base):
    return (base / "output" / "failure").read_text()


@pytest.mark.parametrize(
    ("hyperparameters", "files", "content_type", "message"),
    [
        ({"k": 2, "feature_dim": 3}, {"a.csv": b"1,2,3,4,5\n6,7,8,9,10\n"}, CSV, "feature_dim mismatch in .*a.csv"),
        (
            {"k": 5, "feature_dim": 2},
            {"a.csv": b"1,2\n3,4\n5,6\n"},
            CSV,
            r"k=5 is larger than the number of rows \(3\)",
        ),
        ({"k": 2, "feature_dim": 2}, {"a.csv": b"1,2\n3,x\n"}, CSV, r"a.csv, line 2: column 2 has the non-numeric"),
        ({"k": 2, "feature_dim": 2}, {"a.csv": b"1,2\n3,4\n5,nan\n"}, CSV, r"Invalid value nan in .*a.csv, row 3"),
        ({"k": 2, "feature_dim": 2}, {"a.csv": b"1,2\ninf,4\n5,6\n"}, CSV, r"Invalid value inf in .*a.csv, row 2"),
        ({"k": 2, "feature_dim": 2}, {}, CSV, "Channel train is empty"),
        ({"k": 2, "feature_dim": 2}, {"a.csv": b""}, CSV, "Channel train is empty"),
        ({"k": 2, "feature_dim": 2}, {"a.csv": b"1,2\n"}, "application/x-parquet", "content type .* is not supported"),
        ({"k": "x", "feature_dim": 2}, {"a.csv": b"1,2\n"}, CSV, "Hyperparameter k: could not parse"),
    ],
)
def test_bad_input_fails_cleanly(monkeypatch, tmp_path, hyperparameters, files, content_type, message):
    code = _train(monkeypatch, tmp_path, hyperparameters, {"train": (content_type, files)})
    assert code != 0
    assert re.search(message, _failure(tmp_path)), _failure(tmp_path)
    assert not list((tmp_path / "model").iterdir())


def test_sparse_recordio_with_out_of_range_index_fails(monkeypatch, tmp_path):
    import scipy.sparse as sp

    payload = write_recordio(sp.csr_matrix(np.array([[0.0, 0.0, 0.0, 5.0]], dtype=np.float32)))
    code = _train(monkeypatch, tmp_path, {"k": 1, "feature_dim": 2}, {"train": (RECORDIO, {"a.pbr": payload})})
    assert code != 0
    assert "out of range for feature_dim=2" in _failure(tmp_path)
    assert not list((tmp_path / "model").iterdir())


def test_a_host_that_never_joins_fails_the_leader_after_the_connect_wait(monkeypatch, tmp_path):
    monkeypatch.setenv("SAGESTACK_LOCAL_HOSTS", "1")
    monkeypatch.setenv("SAGESTACK_HOSTS_CONNECT_TIMEOUT", "1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("SAGESTACK_RABIT_PORT", str(sock.getsockname()[1]))
    code = _train(
        monkeypatch,
        tmp_path,
        {"k": 1, "feature_dim": 2},
        {"train": (CSV, {"a.csv": b"1,2\n"})},
        hosts=("algo-1", "algo-2"),
    )
    assert code != 0
    assert "PlatformError: host(s) algo-2 did not connect to algo-1 within 1 s" in _failure(tmp_path)
    assert not list((tmp_path / "model").iterdir())


def test_pipe_mode_is_a_clear_error(monkeypatch, tmp_path):
    code = _train(
        monkeypatch, tmp_path, {"k": 1, "feature_dim": 2}, {"train": (CSV, {"a.csv": b"1,2\n"})}, input_mode="Pipe"
    )
    assert code != 0 and "Pipe input mode is not supported" in _failure(tmp_path)


def test_container_cli_prints_the_tunable_metric_lines(tmp_path, blobs):
    points, _ = blobs
    hp = {**HP, "eval_metrics": '["msd", "ssd"]'}
    write_host(
        tmp_path,
        hp,
        {"train": (CSV, {"train.csv": csv_bytes(points)}), "test": (CSV, {"test.csv": csv_bytes(points[:100])})},
    )
    result = run_container("containers.kmeans", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    values = {}
    for line in result.stdout.splitlines():
        for metric in METRICS:
            found = metric.match(line)
            if found is not None:
                values[metric.name] = found
    assert set(values) == {"train:msd", "test:msd", "test:ssd"}
    assert values["test:ssd"] == pytest.approx(values["test:msd"] * 100, rel=1e-9)
    assert 5 * 0.2 < values["train:msd"] < 5 * 0.3  # 5 dims of variance 0.25 around the true centers
    assert "local kmeans attempt #9. Current mean square distance" in result.stdout
    assert (tmp_path / "output" / "success").exists()


def test_container_cli_failure_contract(tmp_path):
    write_host(tmp_path, {"k": 2, "feature_dim": 3}, {"train": (CSV, {"a.csv": b"1,2\n"})})
    result = run_container("containers.kmeans", tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("ClientError: feature_dim mismatch")
    assert not (tmp_path / "model" / MODEL_FILE).exists()


def test_digits_seed_example(monkeypatch, tmp_path):
    digits = load_digits()
    hp = {"k": 10, "feature_dim": 64, "mini_batch_size": 500, "init_method": "kmeans++"}
    payload = csv_bytes(digits.data, digits.target)
    assert _train(monkeypatch, tmp_path, hp, {"train": (CSV, {"digits.csv": payload})}) == 0
    centers = load_centers(tmp_path / "model").astype(np.float64)
    ours = ((digits.data[:, None, :] - centers[None]) ** 2).sum(axis=2).min(axis=1).mean()
    reference = KMeans(10, n_init=1, random_state=0).fit(digits.data).inertia_ / len(digits.data)
    assert ours <= reference * 1.05
