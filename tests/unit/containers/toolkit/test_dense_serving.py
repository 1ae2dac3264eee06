from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from containers.toolkit.codecs import CSV, JSON, decode_dense_request
from containers.toolkit.codecs.inference import RowValue
from containers.toolkit.errors import BadRequestError
from containers.toolkit.model_server.dense_serving import DenseInferenceHandler
from containers.toolkit.model_server.serving import ServingConfig, create_app


class _SumHandler(DenseInferenceHandler):
    json_root: ClassVar[str] = "sums"

    def load_model(self, model_dir: Path) -> int:
        return int((model_dir / "model_algo-1").read_text())

    def predict_rows(self, features: np.ndarray) -> Sequence[Mapping[str, RowValue]]:
        return [{"sum": float(total)} for total in features.sum(axis=1)]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"1,2,3\n", CSV, "Records have 3 features; the model expects feature_dim=2"),
        (b"1,nan\n", CSV, "NaN, infinite or missing values"),
        (b'{"instances": [{"data": {"features": {"keys": [5], "shape": [6], "values": [1]}}}]}', JSON, "index 5"),
    ],
)
def test_decode_dense_request_errors(body, content_type, message):
    with pytest.raises(BadRequestError, match=message):
        decode_dense_request(body, content_type, 2)


def test_decode_dense_request_pads_sparse_rows():
    body = b'{"instances": [{"data": {"features": {"keys": [0], "shape": [1], "values": [4]}}}]}'
    np.testing.assert_array_equal(decode_dense_request(body, JSON, 3), [[4.0, 0.0, 0.0]])


def test_handler_answers_and_maps_errors(tmp_path):
    (tmp_path / "model_algo-1").write_text("2")
    client = create_app(_SumHandler(ServingConfig(model_dir=tmp_path))).test_client()
    ok = client.post("/invocations", data=b"1,2\n3,4\n", headers={"Content-Type": CSV})
    assert ok.status_code == 200 and ok.get_json() == {"sums": [{"sum": 3.0}, {"sum": 7.0}]}
    bad = client.post("/invocations", data=b"1\n", headers={"Content-Type": CSV})
    assert bad.status_code == 400 and b"feature_dim=2" in bad.data


def test_missing_model_is_a_500(tmp_path):
    client = create_app(_SumHandler(ServingConfig(model_dir=tmp_path))).test_client()
    response = client.post("/invocations", data=b"1,2\n", headers={"Content-Type": CSV})
    assert response.status_code == 500 and b"Unable to load model" in response.data
