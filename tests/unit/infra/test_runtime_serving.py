from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest

from infra.runtime.api import ContainerImage, ServingSpec
from infra.runtime.errors import ServingPortTakenError, ServingStartupError
from infra.runtime.process import ProcessRuntime, process_runtime, process_serving
from infra.runtime.process.process_serving import ListenerOwner, ProcessServingContainer
from tests.unit.infra.support import pid_gone


def serving_spec(image: ContainerImage, tmp_path: Path, **environment: str) -> ServingSpec:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.txt").write_text("the model")
    return ServingSpec(
        name="variant-1",
        image=image,
        work_dir=tmp_path / "serve",
        model_dir=model,
        environment=environment,
        startup_timeout_seconds=30,
    )


def invoke(container: ProcessServingContainer, body: bytes) -> dict[str, str]:
    request = urllib.request.Request(
        f"{container.url}/invocations", data=body, headers={"Content-Type": "text/csv"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        payload: dict[str, str] = json.loads(response.read())
        return payload


def test_serving_starts_answers_ping_and_invocations_then_stops(
    any_mode_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    container = any_mode_runtime.start_serving(serving_spec(fake_image, tmp_path))

    assert container.url.startswith("http://127.0.0.1:")
    assert container.is_alive()
    with urllib.request.urlopen(f"{container.url}/ping", timeout=5) as response:
        assert response.status == 200
    assert invoke(container, b"1,2,3") == {"model": "the model", "echo": "1,2,3"}

    container.stop()

    assert not container.is_alive()
    assert pid_gone(container.pid)


def test_serving_that_exits_at_startup_raises_with_its_last_log_lines(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    with pytest.raises(ServingStartupError) as caught:
        runtime.start_serving(serving_spec(fake_image, tmp_path, FAKE_SERVE_FAIL="1"))

    assert "cannot load model" in str(caught.value)
    assert "exited" in str(caught.value)


def test_shutdown_stops_serving_containers(runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path) -> None:
    container = runtime.start_serving(serving_spec(fake_image, tmp_path))

    runtime.shutdown()

    assert not container.is_alive()


def post_over(connection: socket.socket, body: bytes) -> tuple[str, dict[str, str]]:
    """POST ``body`` to /invocations on ``connection``; the X-Fake-Via header and the JSON answer."""
    connection.setblocking(True)
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nConnection: close\r\n"
    connection.sendall(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    connection.close()
    head_bytes, _, payload = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.") and " 200 " in lines[0], lines[0]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return headers["x-fake-via"], json.loads(payload)


def test_a_served_container_is_reached_over_its_own_unix_socket(
    any_mode_runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    container = any_mode_runtime.start_serving(serving_spec(fake_image, tmp_path))

    connection = container.connect_unix()
    assert connection is not None
    assert post_over(connection, b"7,8") == ("unix", {"model": "the model", "echo": "7,8"})
    socket_file = (tmp_path / "serve" / "serve.sock").lstat()
    assert stat.S_ISSOCK(socket_file.st_mode) and stat.S_IMODE(socket_file.st_mode) == 0o600
    container.stop()
    with pytest.raises(OSError):
        container.connect_unix()


def test_a_server_without_the_unix_socket_is_reached_over_tcp(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    container = runtime.start_serving(serving_spec(fake_image, tmp_path, FAKE_SERVE_UNIX="none"))

    assert container.connect_unix() is None
    assert invoke(container, b"1") == {"model": "the model", "echo": "1"}


def test_a_link_in_place_of_the_socket_is_never_followed(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    """A job that puts a link at the socket's path (to any socket of the machine) is reached over TCP."""
    container = runtime.start_serving(serving_spec(fake_image, tmp_path, FAKE_SERVE_UNIX="link"))

    assert (tmp_path / "serve" / "serve.sock").is_symlink()
    assert container.connect_unix() is None
    assert invoke(container, b"2") == {"model": "the model", "echo": "2"}


def test_the_socket_is_resolved_once_a_path_swapped_later_is_not_followed(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path
) -> None:
    container = runtime.start_serving(serving_spec(fake_image, tmp_path))
    decoy_path = tmp_path / "decoy.sock"
    decoy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    decoy.bind(str(decoy_path))
    decoy.listen()
    decoy.setblocking(False)
    path = tmp_path / "serve" / "serve.sock"
    os.unlink(path)
    os.symlink(decoy_path, path)

    connection = container.connect_unix()

    assert connection is not None
    assert post_over(connection, b"3") == ("unix", {"model": "the model", "echo": "3"})
    with pytest.raises(BlockingIOError):
        decoy.accept()
    decoy.close()


def test_listener_ports_are_picked_below_the_kernels_ephemeral_range_and_are_free() -> None:
    """No outgoing connection can take a port from below the ephemeral range between its pick and its bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    picked = {process_serving.free_port() for _ in range(20)}
    assert all(low - 24576 <= port < low for port in picked)
    assert len(picked) > 1  # random, so two stacks starting together do not agree
    pair = process_serving.free_port_pair()
    assert low - 24576 <= pair < low
    for port in (pair, pair + 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_another_server_answers_on_is_not_taken_for_the_container(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, impostor: int, monkeypatch, caplog
) -> None:
    """Two stacks can pick the same port a moment apart: the one that binds second must not take the other's
    answers to /ping for its own container's (every invocation would reach the other server)."""
    picks = iter([impostor])
    monkeypatch.setattr(process_runtime, "free_port", lambda: next(picks, None) or process_serving.free_port())

    container = runtime.start_serving(serving_spec(fake_image, tmp_path, FAKE_SERVE_UNIX="none"))

    assert container.port != impostor
    assert invoke(container, b"4") == {"model": "the model", "echo": "4"}
    assert f"another process listens on its port {impostor}: starting it again on another port" in caplog.text


def test_a_container_whose_every_port_is_taken_fails_to_start_with_the_reason(
    runtime: ProcessRuntime, fake_image: ContainerImage, tmp_path: Path, impostor: int, monkeypatch
) -> None:
    monkeypatch.setattr(process_runtime, "free_port", lambda: impostor)

    with pytest.raises(ServingPortTakenError) as caught:
        runtime.start_serving(serving_spec(fake_image, tmp_path))

    assert f"serving container variant-1: another process listens on its port {impostor}" in str(caught.value)


def test_the_listener_of_a_port_is_told_apart_by_session(impostor: int) -> None:
    assert process_serving.listener_owner(impostor, os.getsid(0)) is ListenerOwner.SESSION
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert process_serving.listener_owner(impostor, other.pid) is ListenerOwner.OTHER
    finally:
        other.kill()
        other.wait()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening
        assert process_serving.listener_owner(unused.getsockname()[1], os.getsid(0)) is ListenerOwner.UNKNOWN
