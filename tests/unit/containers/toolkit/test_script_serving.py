"""Serving a user's inference script (containers/toolkit/framework/script_serving.py) with the framework defaults,
through the serving app: the functions' order and defaults, content types (415/406), the model's code/ directory, the
code bundle of SAGEMAKER_SUBMIT_DIRECTORY, and the framework image's entry dispatch."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from containers.pytorch.serve import PyTorchHandler
from containers.scikit_learn.serve import ScikitLearnHandler
from containers.toolkit.errors import UserError
from containers.toolkit.framework.framework_codecs import UnsupportedFormatError, decode, encode
from containers.toolkit.framework.framework_entry import framework_main
from containers.toolkit.framework.script_serving import ScriptModeHandler, user_functions
from containers.toolkit.model_server.serving import ServingConfig, create_app

SKLEARN_SCRIPT = textwrap.dedent(
    """
    import os
    import joblib

    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))
    """
)


@pytest.fixture(autouse=True)
def _clean_user_modules(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test imports its own ``inference``/``serve`` module from its own directory."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in ("inference", "serve_script"):
        sys.modules.pop(name, None)


def _model_dir(base: Path, script: str | None, name: str = "inference.py") -> Path:
    model_dir = base / "model"
    model_dir.mkdir(parents=True)
    features = np.random.default_rng(3).normal(size=(8, 2))
    joblib.dump(LinearRegression().fit(features, features @ [1.0, 2.0] + 1), model_dir / "model.joblib")
    if script is not None:
        (model_dir / "code").mkdir()
        (model_dir / "code" / name).write_text(script)
    return model_dir


def _client(handler_class: type[ScriptModeHandler], base: Path, model_dir: Path, **env: str):  # type: ignore[no-untyped-def]
    environ = {"SAGEMAKER_BASE_DIR": str(base), **env}
    config = ServingConfig(model_dir=model_dir, environ=environ, workers=1)
    return create_app(handler_class(config)).test_client()


def test_sklearn_defaults_read_json_csv_npy_and_write_the_accept_type(tmp_path: Path) -> None:
    client = _client(ScikitLearnHandler, tmp_path, _model_dir(tmp_path, SKLEARN_SCRIPT))
    assert client.get("/ping").status_code == 200
    rows = [[1.0, 1.0], [2.0, 0.0]]
    answer = client.post("/invocations", data=json.dumps(rows), content_type="application/json")
    assert answer.status_code == 200 and answer.content_type == "application/json"
    np.testing.assert_allclose(json.loads(answer.data), [4.0, 3.0])
    answer = client.post("/invocations", data="1,1\n2,0\n", content_type="text/csv", headers={"Accept": "text/csv"})
    assert answer.data == b"4.0\n3.0\n" or np.allclose(np.loadtxt(io.BytesIO(answer.data)), [4.0, 3.0])
    npy = io.BytesIO()
    np.save(npy, np.array(rows))
    answer = client.post(
        "/invocations", data=npy.getvalue(), content_type="application/x-npy", headers={"Accept": "application/x-npy"}
    )
    np.testing.assert_allclose(np.load(io.BytesIO(answer.data)), [4.0, 3.0])
    refused = client.post("/invocations", data=b"1 1:2", content_type="text/libsvm")
    assert refused.status_code == 415 and b"text/libsvm is not supported" in refused.data
    refused = client.post("/invocations", data="[[1, 1]]", content_type="application/json", headers={"Accept": "a/b"})
    assert refused.status_code == 406


def test_user_functions_win_and_transform_fn_returns_its_content_type(tmp_path: Path) -> None:
    script = SKLEARN_SCRIPT + textwrap.dedent(
        """
        def transform_fn(model, data, content_type, accept, context):
            assert context is None
            return "rows=" + str(len(data.splitlines())), "text/plain"
        """
    )
    client = _client(ScikitLearnHandler, tmp_path, _model_dir(tmp_path, script))
    answer = client.post("/invocations", data="1,1\n2,0\n", content_type="text/csv")
    assert (answer.status_code, answer.data, answer.content_type) == (200, b"rows=2", "text/plain")


def test_transform_fn_with_input_fn_is_refused() -> None:
    module = type(sys)("conflicting")
    module.transform_fn = lambda *args: b""  # type: ignore[attr-defined]
    module.input_fn = lambda *args: None  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="Cannot use transform_fn implementation with input_fn"):
        user_functions(module, ScikitLearnHandler.defaults_class())


def test_sklearn_without_model_fn_cannot_load(tmp_path: Path) -> None:
    client = _client(
        ScikitLearnHandler, tmp_path, _model_dir(tmp_path, "def predict_fn(data, model):\n    return data\n")
    )
    answer = client.get("/ping")
    assert answer.status_code == 500 and b"Please provide a model_fn implementation" in answer.data


def test_submit_directory_bundle_and_program_name(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "serve_script.py").write_text(SKLEARN_SCRIPT)
    base = tmp_path / "ml"
    client = _client(
        ScikitLearnHandler, base, _model_dir(tmp_path, None),
        SAGEMAKER_PROGRAM="serve_script.py", SAGEMAKER_SUBMIT_DIRECTORY=str(bundle),
    )  # fmt: skip
    assert client.get("/ping").status_code == 200
    assert (base / "code" / "serve_script.py").is_file()  # the bundle was copied into /opt/ml/code


def test_pytorch_default_model_fn_loads_torchscript_and_needs_one_model_file(tmp_path: Path) -> None:
    import torch

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    linear = torch.nn.Linear(2, 1)
    torch.jit.script(linear).save(str(model_dir / "weights.pth"))
    client = _client(PyTorchHandler, tmp_path, model_dir)
    answer = client.post("/invocations", data="[[1.0, 2.0]]", content_type="application/json")
    expected = linear(torch.tensor([[1.0, 2.0]])).detach().numpy().tolist()
    np.testing.assert_allclose(json.loads(answer.data), expected, rtol=1e-6)
    refused = client.post(
        "/invocations", data="[[1.0, 2.0]]", content_type="application/json", headers={"Accept": "x/y"}
    )
    assert refused.status_code == 415  # PyTorch's toolkit answers 415 for an Accept it cannot write
    (model_dir / "other.pt").write_bytes(b"")
    fresh = _client(PyTorchHandler, tmp_path, model_dir)
    assert b"Exactly one .pth or .pt file is required" in fresh.get("/ping").data


def test_codecs_round_trip_and_refuse_other_types() -> None:
    matrix = np.array([[1.5, 2.0], [3.0, 4.25]])
    assert json.loads(encode(matrix, "application/json")) == matrix.tolist()
    assert encode(np.array([1.0, 2.0]), "text/csv") == b"1.0\n2.0\n"
    np.testing.assert_array_equal(decode(encode(matrix, "application/x-npy"), "application/x-npy"), matrix)
    np.testing.assert_array_equal(decode("1.5,2\n3,4.25\n", "text/csv").astype(float), matrix)
    with pytest.raises(UnsupportedFormatError):
        decode(b"", "image/png")
    with pytest.raises(UnsupportedFormatError):
        encode(matrix, "text/html")


def test_framework_entry_runs_other_commands_as_processing_does(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))  # the failure message lands under tmp_path/output

    def no_train(env: object) -> None:
        raise AssertionError("train must not run")

    marker = tmp_path / "ran"
    code = framework_main(no_train, lambda: 9, ["python3", "-c", f"open({str(marker)!r}, 'w').write('x')"])
    assert code == 0 and marker.read_text() == "x"
    assert framework_main(no_train, lambda: 9, ["serve"]) == 9
    # A failing command is an AlgorithmError naming its last error line, as the processing runner reports it.
    failing = ["python3", "-c", "import sys; sys.exit('asked to fail')"]
    assert framework_main(no_train, lambda: 9, failing) == 2
    assert (tmp_path / "output" / "message").read_text().startswith("AlgorithmError: asked to fail, exit code: 1")
