"""The multi-model server contract of the shared serving app (docs/containers.md#multi-model-serving): with
``SAGEMAKER_MULTI_MODEL=true`` models are loaded, listed, invoked and unloaded by name, as AWS's containers do."""

from __future__ import annotations

import json
from pathlib import Path

from containers.toolkit.model_server.serving import ServingConfig, create_app
from tests.unit.containers.toolkit.test_serving import EchoHandler


def _models(base: Path, **prefixes: str) -> None:
    for name, prefix in prefixes.items():
        directory = base / "models" / name / "model"
        directory.mkdir(parents=True)
        (directory / "model.txt").write_text(prefix)


def _client(base: Path):
    config = ServingConfig(model_dir=base / "model", multi_model=True, environ={"SAGEMAKER_BASE_DIR": str(base)})
    return create_app(EchoHandler(config)).test_client()


def _load(client, name: str) -> int:
    body = json.dumps({"model_name": name, "url": f"/opt/ml/models/{name}/model"})
    return client.post("/models", data=body, content_type="application/json").status_code


def test_models_are_loaded_invoked_and_unloaded_by_name(tmp_path):
    _models(tmp_path, a="A:", b="B:")
    client = _client(tmp_path)
    assert client.get("/ping").status_code == 200  # healthy with no model (there is no /opt/ml/model)
    assert _load(client, "a") == 200 and _load(client, "b") == 200
    assert _load(client, "a") == 409
    listed = client.get("/models").get_json()["models"]
    assert listed == [
        {"modelName": "a", "modelUrl": "/opt/ml/models/a/model"},
        {"modelName": "b", "modelUrl": "/opt/ml/models/b/model"},
    ]
    answer = client.post("/models/b/invoke", data=b"1,2", content_type="text/csv")
    assert (answer.status_code, answer.data) == (200, b"B:1,2")
    assert client.post("/models/a/invoke", data=b"x", content_type="text/csv").data == b"A:x"
    assert client.delete("/models/a").status_code == 200
    assert client.post("/models/a/invoke", data=b"x", content_type="text/csv").status_code == 404
    assert client.delete("/models/a").status_code == 404
    assert client.get("/models/b").get_json() == [{"modelName": "b", "modelUrl": "/opt/ml/models/b/model"}]


def test_a_missing_directory_or_bad_request_is_refused(tmp_path):
    client = _client(tmp_path)
    assert _load(client, "absent") == 404
    assert client.post("/models", data=b"{}", content_type="application/json").status_code == 400
    assert client.post("/models/absent/invoke", data=b"x", content_type="text/csv").status_code == 404
