from __future__ import annotations

import io
import json
import re
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from containers.pca.algorithm import ScatterAccumulator, SketchAccumulator, flip_signs
from containers.pca.model import MODEL_FILE, load_model, save_model
from containers.pca.serve import PCAHandler
from containers.pca.spec import METRICS, parse_hyperparameters
from containers.pca.train import TRAIN_TIME_LOG, train
from containers.toolkit.codecs import decode_label_records, write_recordio
from containers.toolkit.entrypoint import run_training
from containers.toolkit.errors import UserError
from containers.toolkit.model_server.serving import ServingConfig, create_app
from tests.unit.containers.kmeans.host import csv_bytes, run_container, write_host

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """600 x 12 rows with a decaying spectrum and a large mean (to exercise the centered accumulation)."""
    rng = np.random.default_rng(7)
    scales = np.geomspace(10, 0.1, 12)
    return rng.normal(size=(600, 12)) * scales @ np.linalg.qr(rng.normal(size=(12, 12)))[0] + 1000.0


def _accumulate(accumulator, data, rows):
    for start in range(0, len(data), rows):
        accumulator.add(data[start : start + rows])
    return accumulator


# ------------------------------------------------------------------------------------------------ hyperparameters


def test_hyperparameter_defaults():
    config = parse_hyperparameters({"feature_dim": "50", "num_components": "3", "mini_batch_size": "100"})
    assert (config.algorithm_mode, config.subtract_mean, config.extra_components) == ("regular", True, -1)
    assert config.sketch_size == 3 + 10
    sdk_style = {"feature_dim": "50", "num_components": "20", "mini_batch_size": "500", "subtract_mean": "False"}
    assert parse_hyperparameters({**sdk_style, "_kvstore": "local"}).sketch_size == 40
    assert parse_hyperparameters({**sdk_style, "extra_components": "5"}).sketch_size == 25
    assert parse_hyperparameters(sdk_style).subtract_mean is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"feature_dim": "2", "num_components": "3", "mini_batch_size": "1"}, "larger than feature_dim=2"),
        ({"feature_dim": "2", "num_components": "1"}, "Missing required hyperparameter: mini_batch_size"),
        (
            {"feature_dim": "2", "num_components": "1", "mini_batch_size": "1", "algorithm_mode": "fast"},
            "algorithm_mode",
        ),
        ({"feature_dim": "2", "num_components": "1", "mini_batch_size": "1", "extra_components": "-2"}, "extra_comp"),
    ],
)
def test_bad_hyperparameters(raw, message):
    with pytest.raises(UserError, match=message):
        parse_hyperparameters(raw)


# ------------------------------------------------------------------------------------------------ algorithm


def test_regular_mode_equals_sklearn(data):
    components = _accumulate(ScatterAccumulator(12), data, 50).solve(4, subtract_mean=True)
    reference = PCA(4, svd_solver="full").fit(data)
    np.testing.assert_allclose(components.s[::-1], reference.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(components.explained_variance[::-1], reference.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(components.v[:, ::-1].T), np.abs(reference.components_), atol=1e-9)
    np.testing.assert_allclose(components.v[:, ::-1].T, flip_signs(reference.components_.T).T, atol=1e-9)
    np.testing.assert_allclose(components.mean, reference.mean_, rtol=1e-12)
    assert np.all(np.diff(components.s) > 0)  # ascending, like the AWS artifact


@pytest.mark.parametrize("rows", [1, 7, 600])
def test_regular_mode_does_not_depend_on_batching(data, rows):
    reference = _accumulate(ScatterAccumulator(12), data, 600).solve(4, subtract_mean=True)
    streamed = _accumulate(ScatterAccumulator(12), data, rows).solve(4, subtract_mean=True)
    np.testing.assert_allclose(streamed.s, reference.s, rtol=1e-9)
    np.testing.assert_allclose(streamed.v, reference.v, atol=1e-9)


def test_without_mean_subtraction_equals_svd_of_raw_rows(data):
    components = _accumulate(ScatterAccumulator(12), data, 64).solve(2, subtract_mean=False)
    _, singular, vt = np.linalg.svd(data, full_matrices=False)
    np.testing.assert_allclose(components.s[::-1], singular[:2], rtol=1e-10)
    np.testing.assert_allclose(np.abs(components.v[:, ::-1].T), np.abs(vt[:2]), atol=1e-8)
    assert not components.mean.any()


def _float32_rows(kind: str) -> np.ndarray:
    """20000 x 40 float32 rows in no random order: a decaying spectrum with a drifting mean (at several offsets and
    scales), or small counts (values on a coarse grid: float32 products of them would round with a bias)."""
    rng = np.random.default_rng(5)
    if kind == "counts":
        return rng.poisson(np.geomspace(20, 0.5, 40), size=(20000, 40)).astype(np.float32)
    offset, scale = {"drift": (0.0, 1.0), "offset 1e4": (1e4, 1.0), "tiny": (0.0, 1e-21), "huge": (0.0, 1e17)}[kind]
    signal = rng.normal(size=(20000, 40)) * np.geomspace(10, 0.1, 40) @ np.linalg.qr(rng.normal(size=(40, 40)))[0]
    return ((signal + np.linspace(0.0, 5.0, 20000)[:, None]) * scale + offset).astype(np.float32)


@pytest.mark.parametrize("kind", ["drift", "offset 1e4", "counts", "tiny", "huge"])
def test_float32_rows_equal_sklearn_on_their_float64_copy(kind):
    rows = _float32_rows(kind)
    components = _accumulate(ScatterAccumulator(40), rows, 7000).solve(10, subtract_mean=True)
    reference = PCA(10, svd_solver="full").fit(rows.astype(np.float64))
    np.testing.assert_allclose(components.explained_variance[::-1], reference.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(components.mean, reference.mean_, rtol=1e-9, atol=1e-9 * np.abs(reference.mean_).max())
    cosines = np.abs(np.sum(components.v[:, ::-1] * reference.components_.T, axis=0))
    assert cosines.min() > 1 - 1e-9


def test_accumulators_report_non_finite_rows(data):
    bad = data.copy()
    bad[3, 2] = np.nan
    for accumulator in (ScatterAccumulator(12), SketchAccumulator(12, 4, np.random.default_rng(0))):
        assert accumulator.add(data[:100])
        assert not accumulator.add(bad)
    assert not ScatterAccumulator(12).add(np.where(bad > 1000, np.float32(np.inf), bad).astype(np.float32))


def test_randomized_mode_is_close_on_a_decaying_spectrum(data):
    sketch = _accumulate(SketchAccumulator(12, 8, np.random.default_rng(0)), data, 50).solve(3, subtract_mean=True)
    reference = PCA(3, svd_solver="full").fit(data)
    np.testing.assert_allclose(sketch.s[::-1], reference.singular_values_, rtol=1e-2)
    cosines = np.abs(np.sum(sketch.v[:, ::-1] * reference.components_.T, axis=0))
    assert cosines.min() > 0.999


def test_randomized_mode_with_full_sketch_is_exact(data):
    sketch = _accumulate(SketchAccumulator(12, 12, np.random.default_rng(0)), data, 33).solve(4, subtract_mean=True)
    reference = PCA(4, svd_solver="full").fit(data)
    np.testing.assert_allclose(sketch.s[::-1], reference.singular_values_, rtol=1e-8)


# ------------------------------------------------------------------------------------------------ training


def _train(monkeypatch, base, hyperparameters, channels):
    write_host(base, hyperparameters, channels)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
    return run_training(train)


def test_training_over_several_csv_files_matches_sklearn(monkeypatch, tmp_path, data):
    files = {f"part-{i}.csv": csv_bytes(data[i * 200 : (i + 1) * 200]) for i in range(3)}
    hp = {"feature_dim": 12, "num_components": 3, "mini_batch_size": 64}
    assert _train(monkeypatch, tmp_path, hp, {"train": (CSV, files)}) == 0
    model = load_model(tmp_path / "model")
    reference = PCA(3, svd_solver="full").fit(data)
    np.testing.assert_allclose(model.s[::-1], reference.singular_values_, rtol=1e-6)
    np.testing.assert_allclose(np.abs(model.v[:, ::-1].T), np.abs(reference.components_), atol=1e-6)
    np.testing.assert_allclose(model.mean.ravel(), reference.mean_, rtol=1e-6)


def test_sdk_recordio_bytes_train(monkeypatch, tmp_path, data):
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, data.astype(np.float32), np.zeros(len(data), dtype=np.float32))
    hp = {"feature_dim": 12, "num_components": 2, "mini_batch_size": 100, "algorithm_mode": "randomized"}
    assert _train(monkeypatch, tmp_path, hp, {"train": (RECORDIO, {"train.pbr": buffer.getvalue()})}) == 0
    reference = PCA(2).fit(data.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(load_model(tmp_path / "model").s[::-1], reference.singular_values_, rtol=1e-2)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.csv": b"1,2,3,4\n"}, "feature_dim mismatch in .*a.csv"),
        ({"a.csv": b"1,2\n3,\n"}, r"Invalid value nan in .*a.csv, row 2, feature 2"),
        ({"a.csv": b"1,2\nfoo,3\n"}, r"a.csv, line 2: column 1 has the non-numeric value 'foo'"),
        ({"a.csv": b"1e200,1\n-1e200,2\n"}, r"Values in .*a.csv are too large"),
        ({}, "Channel train is empty"),
    ],
)
@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_bad_input_fails_without_a_model(monkeypatch, tmp_path, files, message, mode):
    hp = {"feature_dim": 2, "num_components": 1, "mini_batch_size": 10, "algorithm_mode": mode}
    assert _train(monkeypatch, tmp_path, hp, {"train": (CSV, files)}) != 0
    assert re.search(message, (tmp_path / "output" / "failure").read_text())
    assert not list((tmp_path / "model").iterdir())


def test_a_nan_in_a_later_piece_of_a_float32_recordio_channel_is_named(monkeypatch, tmp_path):
    rows = np.ones((70000, 2), dtype=np.float32) + np.arange(70000, dtype=np.float32)[:, None] % 7
    rows[68000, 1] = np.nan  # the second piece the reader delivers (65536 rows each at feature_dim=2)
    hp = {"feature_dim": 2, "num_components": 1, "mini_batch_size": 10}
    assert _train(monkeypatch, tmp_path, hp, {"train": (RECORDIO, {"train.pbr": write_recordio(rows)})}) != 0
    failure = (tmp_path / "output" / "failure").read_text()
    assert re.search(r"Invalid value nan in .*train.pbr, row 68001, feature 2", failure)


def test_a_truncated_recordio_file_fails_with_its_offset(monkeypatch, tmp_path):
    body = write_recordio(np.ones((100, 2), dtype=np.float32))  # decoded while the workers accumulate
    hp = {"feature_dim": 2, "num_components": 1, "mini_batch_size": 10}
    assert _train(monkeypatch, tmp_path, hp, {"train": (RECORDIO, {"train.pbr": body[:-5]})}) != 0
    assert re.search(
        r"Truncated RecordIO record at offset \d+ in .*train.pbr", (tmp_path / "output" / "failure").read_text()
    )
    assert not list((tmp_path / "model").iterdir())


def test_container_cli_with_a_test_channel(tmp_path, data):
    hp = {"feature_dim": 12, "num_components": 12, "mini_batch_size": 100}
    write_host(
        tmp_path, hp, {"train": (CSV, {"t.csv": csv_bytes(data)}), "test": (CSV, {"t.csv": csv_bytes(data[:50])})}
    )
    started = time.perf_counter()
    result = run_container("containers.pca", tmp_path)
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stdout + result.stderr
    values = [METRICS[0].match(line) for line in result.stdout.splitlines()]
    found = [value for value in values if value is not None]
    assert found and found[0] == pytest.approx(0.0, abs=1e-6)  # all 12 components: nothing is lost
    assert (tmp_path / "model" / MODEL_FILE).exists()
    # the job's own time (what pca_quality_speed compares), logged once the model is written
    lines = result.stdout.splitlines()
    pattern = re.escape(TRAIN_TIME_LOG).replace(re.escape("%.4f"), r"(\d+\.\d+)")
    timed = [index for index, line in enumerate(lines) if re.search(pattern, line)]
    saved = [index for index, line in enumerate(lines) if "saved 12 components" in line]
    assert len(timed) == 1 and saved and saved[0] < timed[0]
    assert 0 < float(re.search(pattern, lines[timed[0]]).group(1)) < wall


def test_digits_seed_example(monkeypatch, tmp_path):
    digits = load_digits()
    hp = {"feature_dim": 64, "num_components": 10, "mini_batch_size": 500}
    assert _train(monkeypatch, tmp_path, hp, {"train": (CSV, {"d.csv": csv_bytes(digits.data, digits.target)})}) == 0
    model = load_model(tmp_path / "model")
    reference = PCA(10).fit(digits.data)
    np.testing.assert_allclose(model.s[::-1], reference.singular_values_, rtol=1e-5)
    projected = model.project(digits.data)[:, ::-1]
    np.testing.assert_allclose(np.abs(projected), np.abs(reference.transform(digits.data)), atol=1e-3)


# ------------------------------------------------------------------------------------------------ serving


@pytest.fixture
def client(tmp_path):
    v = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    save_model(tmp_path, mean=np.array([1.0, 1.0, 1.0]), s=np.array([1.0, 2.0]), v=v)
    return create_app(PCAHandler(ServingConfig(model_dir=tmp_path))).test_client()


ROWS = np.array([[2.0, 3.0, 9.0], [1.0, 1.0, 1.0]])
EXPECTED = [[1.0, 2.0], [0.0, 0.0]]
REQUESTS = {
    "text/csv": b"2,3,9\n1,1,1\n",
    "application/json": json.dumps(
        {"instances": [{"data": {"features": {"values": r}}} for r in ROWS.tolist()]}
    ).encode(),
    "application/jsonlines": b"".join(json.dumps({"features": r}).encode() + b"\n" for r in ROWS.tolist()),
    "application/x-recordio-protobuf": write_recordio(ROWS.astype(np.float32)),
}


def _projections(accept, body):
    if accept == "application/json":
        return [p["projection"] for p in json.loads(body)["projections"]]
    if accept == "application/jsonlines":
        return [json.loads(line)["projection"] for line in body.splitlines()]
    if accept == "text/csv":
        return [[float(x) for x in line.split(",")] for line in body.decode().splitlines()]
    return [record["projection"] for record in decode_label_records(body)]


@pytest.mark.parametrize("content_type", list(REQUESTS))
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv", RECORDIO])
def test_serving_round_trip(client, content_type, accept):
    response = client.post(
        "/invocations", data=REQUESTS[content_type], headers={"Content-Type": content_type, "Accept": accept}
    )
    assert response.status_code == 200, response.data
    assert _projections(accept, response.data) == EXPECTED


def test_serving_json_shape_and_errors(client):
    response = client.post("/invocations", data=b"2,3,9\n", headers={"Content-Type": "text/csv"})
    assert json.loads(response.data) == {"projections": [{"projection": [1.0, 2.0]}]}
    assert client.post("/invocations", data=b"1,2\n", headers={"Content-Type": "text/csv"}).status_code == 400
