from __future__ import annotations

import json

import numpy as np
import pytest

from containers.kmeans.model import save_centers
from containers.kmeans.serve import KMeansHandler
from containers.toolkit.codecs import decode_label_records, write_recordio
from containers.toolkit.model_server.serving import ServingConfig, create_app

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
ROWS = np.array([[1.0, 0.0], [10.0, 3.0], [0.0, 6.0]])
EXPECTED = [(0.0, 1.0), (1.0, 3.0), (2.0, 4.0)]


@pytest.fixture
def client(tmp_path):
    save_centers(tmp_path, CENTERS)
    handler = KMeansHandler(ServingConfig(model_dir=tmp_path))
    return create_app(handler).test_client()


REQUESTS = {
    "text/csv": b"1,0\n10,3\n0,6\n",
    "application/json": json.dumps({"instances": [{"features": row} for row in ROWS.tolist()]}).encode(),
    "application/jsonlines": b"".join(json.dumps({"features": row}).encode() + b"\n" for row in ROWS.tolist()),
    "application/x-recordio-protobuf": write_recordio(ROWS.astype(np.float32)),
}


def _decode(accept, body):
    if accept == "application/json":
        return [(p["closest_cluster"], p["distance_to_cluster"]) for p in json.loads(body)["predictions"]]
    if accept == "application/jsonlines":
        return [(p["closest_cluster"], p["distance_to_cluster"]) for p in map(json.loads, body.splitlines())]
    if accept == "text/csv":
        return [tuple(map(float, line.split(","))) for line in body.decode().splitlines()]
    records = decode_label_records(body)
    assert all(set(r) == {"closest_cluster", "distance_to_cluster"} for r in records)
    return [(r["closest_cluster"][0], r["distance_to_cluster"][0]) for r in records]


@pytest.mark.parametrize("content_type", list(REQUESTS))
@pytest.mark.parametrize(
    "accept", ["application/json", "application/jsonlines", "text/csv", "application/x-recordio-protobuf"]
)
def test_round_trip_in_every_content_type(client, content_type, accept):
    response = client.post(
        "/invocations", data=REQUESTS[content_type], headers={"Content-Type": content_type, "Accept": accept}
    )
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith(accept)
    assert _decode(accept, response.data) == EXPECTED


def test_default_accept_is_json(client):
    response = client.post("/invocations", data=b"1,0\n", headers={"Content-Type": "text/csv"})
    assert json.loads(response.data) == {"predictions": [{"closest_cluster": 0.0, "distance_to_cluster": 1.0}]}


def test_csv_output_format(client):
    response = client.post("/invocations", data=b"10,3\n", headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.data == b"1.0,3.0\n"


def test_sparse_json_instance(client):
    body = {"instances": [{"data": {"features": {"keys": [1], "shape": [2], "values": [6.0]}}}]}
    response = client.post("/invocations", json=body, headers={"Accept": "application/json"})
    assert json.loads(response.data)["predictions"] == [{"closest_cluster": 2.0, "distance_to_cluster": 4.0}]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        (b"1,2,3\n", "text/csv", "application/json", 400),
        (b"1,nan\n", "text/csv", "application/json", 400),
        (b"1,2\n", "image/png", "application/json", 415),
        (b"1,2\n", "text/csv", "text/html", 406),
    ],
)
def test_bad_requests(client, body, content_type, accept, status):
    response = client.post("/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept})
    assert response.status_code == status


def test_missing_model_is_a_500(tmp_path):
    client = create_app(KMeansHandler(ServingConfig(model_dir=tmp_path))).test_client()
    response = client.get("/ping")
    assert response.status_code == 500
    assert b"Unable to load model" in response.data
