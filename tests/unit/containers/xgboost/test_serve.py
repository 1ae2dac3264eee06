"""Inference through the serving app (Flask test client) and one real gunicorn server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
import xgboost as xgb

from containers.toolkit.codecs import decode_label_records, write_recordio
from containers.toolkit.model_server.serving import ServingConfig, create_app
from containers.xgboost.callbacks import save_booster
from containers.xgboost.serve import XGBoostHandler

from .conftest import REPO, container_env

RNG = np.random.default_rng(1)
X = RNG.normal(size=(120, 4))
Y_BINARY = (X[:, 0] - X[:, 2] > 0).astype(float)
ROWS = X[:3]


def _model_dir(tmp_path, params, labels=Y_BINARY, rounds=5, name="xgboost-model"):
    booster = xgb.train({"seed": 0, **params}, xgb.DMatrix(X, label=labels), num_boost_round=rounds)
    directory = tmp_path / "model"
    save_booster(booster, directory / name)
    return directory, booster


def _client(model_dir, **environ):
    config = ServingConfig(
        model_dir=model_dir,
        environ=environ,
        batch=environ.get("SAGEMAKER_BATCH", "").lower() == "true",
        default_accept=environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
        max_content_length=int(environ.get("MAX_CONTENT_LENGTH", 6 * 1024 * 1024)),
    )
    return create_app(XGBoostHandler(config)).test_client()


def _csv_body(rows):
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


def _short(values):
    return [str(np.float32(v)) for v in values]


@pytest.fixture
def binary(tmp_path):
    return _model_dir(tmp_path, {"objective": "binary:logistic"})


def test_csv_in_csv_out_one_prediction_per_line(binary):
    model_dir, booster = binary
    response = _client(model_dir).post("/invocations", data=_csv_body(ROWS), content_type="text/csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    expected = booster.inplace_predict(ROWS)
    assert response.data.decode() == "".join(f"{v}\n" for v in _short(expected))


@pytest.mark.parametrize("content_type", ["text/csv", "text/libsvm", "application/x-recordio-protobuf"])
@pytest.mark.parametrize(
    "accept", ["text/csv", "application/json", "application/jsonlines", "application/x-recordio-protobuf"]
)
def test_round_trip_in_every_content_type(binary, content_type, accept):
    model_dir, booster = binary
    body = {
        "text/csv": lambda: _csv_body(ROWS),
        "text/libsvm": lambda: "\n".join(
            "0 " + " ".join(f"{i}:{float(v)!r}" for i, v in enumerate(row)) for row in ROWS
        ).encode(),
        "application/x-recordio-protobuf": lambda: write_recordio(ROWS.astype(np.float32)),
    }[content_type]()
    response = _client(model_dir).post(
        "/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept}
    )
    assert response.status_code == 200, response.data
    expected = booster.inplace_predict(ROWS.astype(np.float32))
    if accept == "text/csv":
        got = [float(line) for line in response.data.decode().splitlines()]
    elif accept == "application/json":
        got = [item["score"] for item in json.loads(response.data)["predictions"]]
    elif accept == "application/jsonlines":
        got = [json.loads(line)["score"] for line in response.data.decode().splitlines()]
    else:
        got = [record["score"][0] for record in decode_label_records(response.data)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_json_response_shape(binary):
    model_dir, booster = binary
    response = _client(model_dir).post(
        "/invocations", data=_csv_body(ROWS[:1]), headers={"Content-Type": "text/csv", "Accept": "application/json"}
    )
    value = float(str(booster.inplace_predict(ROWS[:1])[0]))
    assert json.loads(response.data) == {"predictions": [{"score": value}]}


def test_multi_output_csv_is_one_row_per_prediction(tmp_path):
    labels = np.digitize(X[:, 0], [-0.5, 0.5]).astype(float)
    model_dir, booster = _model_dir(tmp_path, {"objective": "multi:softprob", "num_class": 3}, labels)
    response = _client(model_dir).post("/invocations", data=_csv_body(ROWS), content_type="text/csv")
    lines = response.data.decode().splitlines()
    assert len(lines) == 3
    np.testing.assert_allclose(
        [[float(c) for c in line.split(",")] for line in lines], booster.inplace_predict(ROWS), rtol=1e-6
    )


def test_batch_mode_writes_one_value_per_line_for_every_accept(binary):
    model_dir, booster = binary
    response = _client(model_dir, SAGEMAKER_BATCH="true").post(
        "/invocations", data=_csv_body(ROWS), headers={"Content-Type": "text/csv", "Accept": "application/json"}
    )
    assert response.data.decode() == "\n".join(_short(booster.inplace_predict(ROWS))) + "\n"


def test_selectable_inference_output(binary):
    model_dir, booster = binary
    client = _client(model_dir, SAGEMAKER_INFERENCE_OUTPUT="predicted_label,probability,probabilities,predicted_score")
    p = float(str(booster.inplace_predict(ROWS[:1])[0]))
    response = client.post(
        "/invocations", data=_csv_body(ROWS[:1]), headers={"Content-Type": "text/csv", "Accept": "application/json"}
    )
    row = json.loads(response.data.decode().replace("NaN", "null"))["predictions"][0]
    assert row["predicted_label"] == float(int(p > 0.5))
    assert row["probability"] == pytest.approx(p)
    assert row["probabilities"] == pytest.approx([1 - p, p])
    assert row["predicted_score"] is None  # NaN: not a regression objective

    csv_response = client.post("/invocations", data=_csv_body(ROWS[:1]), content_type="text/csv")
    cells = csv_response.data.decode().split(",")
    assert cells[0] == str(float(int(p > 0.5)))
    assert csv_response.data.decode().count('"[') == 1


def test_unknown_inference_output_key_fails_to_load(binary):
    response = _client(binary[0], SAGEMAKER_INFERENCE_OUTPUT="bogus").get("/ping")
    assert response.status_code == 500
    assert b"bogus" in response.data


def test_negotiation_and_limits(binary):
    model_dir, _ = binary
    client = _client(model_dir, MAX_CONTENT_LENGTH="64")
    unsupported = client.post("/invocations", data=b"[1,2]", content_type="application/json")
    assert unsupported.status_code == 415
    assert unsupported.data.decode().strip() == "Content-type application/json is not supported."
    not_acceptable = client.post(
        "/invocations", data=b"1,2,3,4", headers={"Content-Type": "text/csv", "Accept": "text/html"}
    )
    assert not_acceptable.status_code == 406
    too_large = client.post("/invocations", data=b"1," * 100, content_type="text/csv")
    assert too_large.status_code == 413
    assert client.post("/invocations", data=b"", content_type="text/csv").status_code == 204
    label_size = client.post("/invocations", data=b"1,2,3,4", content_type="text/csv;label_size=2")
    assert label_size.status_code == 415


def test_feature_count_mismatch_is_a_400(binary):
    response = _client(binary[0]).post("/invocations", data=b"1,2,3", content_type="text/csv")
    assert response.status_code == 400
    assert "3" in response.data.decode() and "4" in response.data.decode()


def test_default_accept_comes_from_the_environment(binary):
    client = _client(binary[0], SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/jsonlines")
    response = client.post(
        "/invocations", data=_csv_body(ROWS[:1]), headers={"Content-Type": "text/csv", "Accept": "*/*"}
    )
    assert response.headers["Content-Type"].startswith("application/jsonlines")
    assert list(json.loads(response.data)) == ["score"]


def test_best_iteration_is_used(tmp_path):
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=Y_BINARY), num_boost_round=6)
    booster.set_attr(best_iteration="1")
    save_booster(booster, tmp_path / "model" / "xgboost-model")
    response = _client(tmp_path / "model").post("/invocations", data=_csv_body(ROWS), content_type="text/csv")
    expected = booster.inplace_predict(ROWS, iteration_range=(0, 2))
    np.testing.assert_allclose([float(v) for v in response.data.decode().split()], expected, rtol=1e-6)


def test_kfold_ensemble_is_averaged(tmp_path):
    directory = tmp_path / "model"
    boosters = []
    for index, depth in enumerate((2, 4)):
        booster = xgb.train({"objective": "binary:logistic", "max_depth": depth}, xgb.DMatrix(X, label=Y_BINARY), 3)
        save_booster(booster, directory / f"xgboost-model-{index}")
        boosters.append(booster)
    response = _client(directory).post("/invocations", data=_csv_body(ROWS), content_type="text/csv")
    expected = np.mean([b.inplace_predict(ROWS) for b in boosters], axis=0)
    np.testing.assert_allclose([float(v) for v in response.data.decode().split()], expected, rtol=1e-6)


def test_execution_parameters(binary):
    response = _client(binary[0]).get("/execution-parameters")
    assert json.loads(response.data)["BatchStrategy"] == "MULTI_RECORD"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_server_serves_and_stops_on_sigterm(tmp_path, binary):
    _, booster = binary
    port = _free_port()
    env = container_env(tmp_path, SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MODEL_SERVER_WORKERS="1")
    os.makedirs(tmp_path / "model", exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "containers.xgboost", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600  # a hang guard only: a loaded machine may take long to start gunicorn
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=30).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert process.poll() is None, f"the server exited with code {process.returncode}"
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        response = requests.post(
            f"{url}/invocations", data=_csv_body(ROWS[:1]), headers={"Content-Type": "text/csv"}, timeout=10
        )
        assert response.status_code == 200
        assert response.text == str(booster.inplace_predict(ROWS[:1])[0]) + "\n"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_the_model_archive_beside_the_extracted_model_is_not_loaded(tmp_path):
    from containers.xgboost.serve import model_files

    (tmp_path / "model.tar.gz").write_bytes(b"\x1f\x8b archive")
    (tmp_path / "xgboost-model").write_bytes(b"model")
    assert [p.name for p in model_files(tmp_path, ensemble=True)] == ["xgboost-model"]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/octet-stream"}])
def test_a_request_without_a_content_type_is_read_as_csv_as_aws_reads_it(binary, headers):
    model_dir, booster = binary
    response = _client(model_dir).post("/invocations", data=_csv_body(ROWS[:2]), headers=headers)

    assert response.status_code == 200, response.data
    expected = booster.inplace_predict(ROWS[:2]).astype(np.float32)
    assert response.data.decode() == "".join(str(value) + "\n" for value in expected)


def test_a_pickled_model_of_an_old_image_is_served(tmp_path, binary):
    import pickle

    _, booster = binary
    model_dir = tmp_path / "pickled"
    model_dir.mkdir()
    (model_dir / "xgboost-model").write_bytes(pickle.dumps(booster, protocol=3))

    response = _client(model_dir).post("/invocations", data=_csv_body(ROWS[:1]), content_type="text/csv")
    assert response.data.decode() == str(np.float32(booster.inplace_predict(ROWS[:1])[0])) + "\n"
