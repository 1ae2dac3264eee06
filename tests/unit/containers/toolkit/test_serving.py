"""Contract tests: the shared serving app (serving.py, docs/reference/container-contract.md#serving)."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import requests

from containers.toolkit.codecs.content_types import MediaType
from containers.toolkit.errors import ToolkitError, UserError
from containers.toolkit.model_server.serving import InferenceHandler, ServingConfig, create_app, load_factory
from tests.unit.containers.toolkit.conftest import PYTHON, REPO_ROOT, subprocess_env


class EchoHandler(InferenceHandler):
    """A tiny model: ``model.txt`` holds a prefix that is echoed before the body."""

    content_types = ("text/csv", "application/json")
    accepts = ("text/csv", "application/json")
    default_accept = "text/csv"

    def __init__(self, config: ServingConfig) -> None:
        super().__init__(config)
        self.loads = 0
        self.calls: list[tuple[bytes, MediaType, str]] = []
        self.prefix = ""

    def load(self, model_dir: Path) -> None:
        self.loads += 1
        self.prefix = (model_dir / "model.txt").read_text()

    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> bytes:
        self.calls.append((body, content_type, accept))
        if body == b"bad":
            raise UserError("Unable to evaluate payload provided: row 1 has 2 columns, expected 3")
        if body == b"crash":
            raise RuntimeError("kaput")
        return self.prefix.encode() + body


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "model.txt").write_text("p:")
    return directory


def _handler(model_dir: Path, **settings: object) -> EchoHandler:
    return EchoHandler(ServingConfig(model_dir=model_dir, **settings))  # type: ignore[arg-type]


def _client(handler: InferenceHandler):
    return create_app(handler).test_client()


def test_ping_is_200_with_an_empty_body_and_loads_the_model_once(model_dir: Path) -> None:
    handler = _handler(model_dir)
    client = _client(handler)
    for _ in range(2):
        response = client.get("/ping")
        assert response.status_code == 200
        assert response.data == b""
    assert handler.loads == 1


def test_model_load_failure_is_500_unable_to_load_model(tmp_path: Path) -> None:
    handler = _handler(tmp_path / "empty")
    client = _client(handler)
    response = client.get("/ping")
    assert response.status_code == 500
    assert response.text.startswith("Unable to load model: ")
    response = client.post("/invocations", data=b"1,2", headers={"Content-Type": "text/csv"})
    assert response.status_code == 500
    assert "Unable to load model" in response.text
    assert handler.calls == []


def test_execution_parameters(model_dir: Path) -> None:
    response = _client(_handler(model_dir, workers=3)).get("/execution-parameters")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_invocation_round_trip_with_default_accept(model_dir: Path) -> None:
    handler = _handler(model_dir)
    response = _client(handler).post("/invocations", data=b"1,2,3", headers={"Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 200
    assert response.data == b"p:1,2,3"
    assert response.headers["Content-Type"] == "text/csv"
    body, media, accept = handler.calls[0]
    assert (body, media.type, dict(media.params), accept) == (b"1,2,3", "text/csv", {"charset": "utf-8"}, "text/csv")


@pytest.mark.parametrize(
    ("accept", "configured", "expected"),
    [
        (None, None, "text/csv"),
        ("*/*", None, "text/csv"),
        ("*/*", "application/json", "application/json"),
        ("application/json", None, "application/json"),
        ("application/x-parquet;q=1, application/json;q=0.5", None, "application/json"),
    ],
)
def test_accept_negotiation(model_dir: Path, accept, configured, expected) -> None:
    handler = _handler(model_dir, default_accept=configured)
    headers = {"Content-Type": "csv"}
    if accept is not None:
        headers["Accept"] = accept
    response = _client(handler).post("/invocations", data=b"1", headers=headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == expected
    assert handler.calls[0][1].type == "text/csv"  # the "csv" alias is canonicalised


def test_unsupported_content_type_is_415_before_compute(model_dir: Path) -> None:
    handler = _handler(model_dir)
    client = _client(handler)
    response = client.post("/invocations", data=b"xx", headers={"Content-Type": "image/png"})
    assert response.status_code == 415
    assert response.text == "Content-type image/png is not supported.\n"
    response = client.post("/invocations", data=b"xx")
    assert response.status_code == 415
    assert response.text.startswith("Content-Type header is required; supported: text/csv, application/json")
    assert handler.calls == [] and handler.loads == 0


def test_unsupported_accept_is_406_before_compute(model_dir: Path) -> None:
    handler = _handler(model_dir)
    response = _client(handler).post(
        "/invocations", data=b"1,2", headers={"Content-Type": "text/csv", "Accept": "application/x-parquet"}
    )
    assert response.status_code == 406
    assert response.text.startswith("Accept type application/x-parquet is not supported.")
    assert "text/csv, application/json" in response.text
    assert handler.calls == [] and handler.loads == 0


def test_payload_over_the_limit_is_413(model_dir: Path) -> None:
    handler = _handler(model_dir, max_content_length=10)
    client = _client(handler)
    response = client.post("/invocations", data=b"x" * 11, headers={"Content-Type": "text/csv"})
    assert response.status_code == 413
    assert "exceeds the limit of 10 bytes (MAX_CONTENT_LENGTH)" in response.text
    assert client.post("/invocations", data=b"x" * 10, headers={"Content-Type": "text/csv"}).status_code == 200
    assert len(handler.calls) == 1


def test_empty_body_is_204_without_compute(model_dir: Path) -> None:
    handler = _handler(model_dir)
    response = _client(handler).post("/invocations", data=b"", headers={"Content-Type": "text/csv"})
    assert response.status_code == 204
    assert response.data == b""
    assert handler.calls == []


def test_custom_attributes_are_echoed(model_dir: Path) -> None:
    response = _client(_handler(model_dir)).post(
        "/invocations",
        data=b"1",
        headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "trace=abc,x=1"},
    )
    assert response.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=abc,x=1"
    plain = _client(_handler(model_dir)).post("/invocations", data=b"1", headers={"Content-Type": "text/csv"})
    assert "X-Amzn-SageMaker-Custom-Attributes" not in plain.headers


def test_user_error_in_predict_is_400_and_unexpected_is_500(model_dir: Path) -> None:
    client = _client(_handler(model_dir))
    bad = client.post("/invocations", data=b"bad", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400
    assert bad.text == "Unable to evaluate payload provided: row 1 has 2 columns, expected 3\n"
    crash = client.post("/invocations", data=b"crash", headers={"Content-Type": "text/csv"})
    assert crash.status_code == 500
    assert crash.text == "Internal server error: RuntimeError: kaput\n"
    assert client.get("/nope").status_code == 404
    assert client.get("/invocations").status_code == 405


def test_serving_config_from_env(tmp_path: Path) -> None:
    config = ServingConfig.from_env(
        {
            "SAGEMAKER_BASE_DIR": str(tmp_path),
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "MAX_CONTENT_LENGTH": "1024",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
            "SAGEMAKER_BATCH": "true",
        }
    )
    assert config.model_dir == tmp_path / "model"
    assert (config.address, config.port, config.workers, config.timeout_seconds) == ("127.0.0.1", 9090, 2, 30)
    assert (config.max_content_length, config.default_accept, config.batch) == (1024, "application/json", True)
    defaults = ServingConfig.from_env({})
    assert (defaults.port, defaults.max_content_length, defaults.default_accept) == (8080, 6291456, None)
    with pytest.raises(ToolkitError, match="SAGEMAKER_BIND_TO_PORT='http' is not an integer"):
        ServingConfig.from_env({"SAGEMAKER_BIND_TO_PORT": "http"})


def test_load_factory() -> None:
    assert load_factory("tests.unit.containers.toolkit.test_serving:EchoHandler") is EchoHandler
    with pytest.raises(ToolkitError, match="is not callable"):
        load_factory("tests.unit.containers.toolkit.test_serving:REPO_ROOT_TEXT")


REPO_ROOT_TEXT = str(REPO_ROOT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    process.kill()
    out, err = process.communicate()
    pytest.fail(f"server never became ready: rc={process.returncode} {out!r} {err!r}")


def test_gunicorn_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.txt").write_text("g:")
    port = _free_port()
    env = subprocess_env(
        SAGEMAKER_BASE_DIR=str(tmp_path), SAGEMAKER_BIND_TO_PORT=str(port), SAGEMAKER_MODEL_SERVER_WORKERS="1"
    )
    process = _serve_echo(env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ping", process)
        response = requests.post(
            f"http://127.0.0.1:{port}/invocations", data=b"4,5", headers={"Content-Type": "text/csv"}, timeout=10
        )
        assert (response.status_code, response.content) == (200, b"g:4,5")
        wrong = requests.post(
            f"http://127.0.0.1:{port}/invocations", data=b"4", headers={"Content-Type": "image/png"}, timeout=10
        )
        assert wrong.status_code == 415
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"Listening at: http://127.0.0.1:{port}".encode() in err


def test_gunicorn_serve_also_listens_on_the_unix_socket_asked_for_mode_0600(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.txt").write_text("u:")
    port, path = _free_port(), tmp_path / "serve.sock"
    env = subprocess_env(
        SAGEMAKER_BASE_DIR=str(tmp_path),
        SAGEMAKER_BIND_TO_PORT=str(port),
        SAGEMAKER_MODEL_SERVER_WORKERS="1",
        SAGESTACK_BIND_TO_UNIX_SOCKET=str(path),
    )
    process = _serve_echo(env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ping", process)
        assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.lstat().st_mode) == 0o600
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.connect(str(path))
            unix.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n")
            unix.sendall(b"Connection: close\r\n\r\n6,7")
            answer = b""
            while chunk := unix.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nu:6,7")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"Listening at: http://127.0.0.1:{port}".encode() in err
    assert f"unix:{path}".encode() in err
    assert not path.exists()  # gunicorn removes its socket when it stops


def _serve_echo(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The toolkit's gunicorn ``serve`` of ``EchoHandler`` in a new process with ``env``."""
    code = "import sys; from containers.toolkit.model_server.serving import serve; sys.exit(serve(sys.argv[1]))"
    return subprocess.Popen(
        [PYTHON, "-c", code, "tests.unit.containers.toolkit.test_serving:EchoHandler"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
