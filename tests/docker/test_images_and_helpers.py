"""The rendered Dockerfiles, the loopback-URL rewrite of the relay, and the processing command in Docker."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from infra.images.catalog import IMAGE_SPECS, ImagePaths
from infra.images.dockerfiles import TEMPLATE, render, stale_dockerfiles
from infra.runtime.api import ContainerImage, ProcessingSpec
from infra.runtime.docker.docker_relay import EdgeRelay, RelaySet, loopback_target, relay_environment
from infra.runtime.docker.docker_runtime import processing_command

RUNNER = ("python", "-m", "containers.processing")
XGBOOST_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def test_every_committed_dockerfile_is_its_rendering() -> None:
    assert stale_dockerfiles(ImagePaths.default()) == []


def test_only_algorithm_images_get_train_and_serve_on_path() -> None:
    template = (ImagePaths.default().containers / "docker" / TEMPLATE).read_text()
    rendered = {spec.name: render(spec, template) for spec in IMAGE_SPECS}

    assert "/usr/local/bin/train" in rendered["xgboost"] and "/usr/local/bin/train" not in rendered["clarify"]
    assert "SM_MODEL_DIR=/opt/ml/model" in rendered["xgboost"] and "SM_MODEL_DIR" not in rendered["kmeans"]
    assert not any(re.search(r"@[A-Z_]+@", text) for text in rendered.values())  # every marker replaced
    assert all('ENTRYPOINT ["python", "-m", "containers.' + name + '"]' in text for name, text in rendered.items())


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:4566", ("127.0.0.1", 4566)),
        ("http://localhost:8080/path", ("127.0.0.1", 8080)),
        ("https://s3.amazonaws.com", None),
        ("http://172.18.0.1:4566", None),
    ],
)
def test_loopback_urls_are_recognised(url: str, target: tuple[str, int] | None) -> None:
    assert loopback_target(url) == target


def test_only_loopback_endpoint_variables_are_rewritten_to_the_relay() -> None:
    relays = RelaySet()
    try:
        env = relay_environment(
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
                "AWS_ENDPOINT_URL_S3": "https://s3.example",
                "X": "http://127.0.0.1:1",
            },
            "127.0.0.1",
            relays,
        )
    finally:
        relays.close()
    assert (
        env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and env["AWS_ENDPOINT_URL"] != "http://127.0.0.1:4566"
    )
    assert env["AWS_ENDPOINT_URL_S3"] == "https://s3.example" and env["X"] == "http://127.0.0.1:1"


def _spec(uri: str, command: tuple[str, ...], arguments: list[str]) -> ProcessingSpec:
    return ProcessingSpec("p", ContainerImage(uri=uri, command=command), Path("/tmp/unused"), arguments=arguments)


def test_a_container_entrypoint_overrides_the_entrypoint_of_an_image_without_the_processing_runner() -> None:
    argv = ["python3", "run.py", "--x", "1"]

    assert processing_command(_spec(XGBOOST_URI, RUNNER, argv)) == (["python3"], ["run.py", "--x", "1"])
    assert processing_command(_spec("my/own:image", RUNNER, argv)) == (["python3"], ["run.py", "--x", "1"])
    assert processing_command(_spec(SKLEARN_URI, RUNNER, argv)) == (None, argv)  # its ENTRYPOINT runs the command
    assert processing_command(_spec("my/own:image", (), ["--x"])) == (None, ["--x"])  # arguments only


def _upstream() -> tuple[socket.socket, str]:
    server = socket.create_server(("127.0.0.1", 0))
    return server, f"http://127.0.0.1:{server.getsockname()[1]}"


def _through(url: str) -> socket.socket:
    target = loopback_target(url)
    assert target is not None
    client = socket.create_connection(target)
    client.settimeout(60)  # a guard against hanging forever, not a time limit on the relay
    return client


def test_a_closed_relay_stops_accepting_at_once() -> None:
    upstream, url = _upstream()
    relay = EdgeRelay("127.0.0.1", loopback_target(url))  # type: ignore[arg-type]
    with _through(f"http://127.0.0.1:{relay.address[1]}"), upstream.accept()[0]:
        pass  # one connection piped: the accept loop is certainly waiting in accept() now

    relay.close()

    assert not relay.accepting()
    upstream.close()


def _cut(sock: socket.socket) -> bool:
    """Whether the peer has closed the connection (end of stream or reset)."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


def test_recycling_cuts_the_last_jobs_connections_and_closes_the_relays_it_did_not_use() -> None:
    (first_upstream, first), (second_upstream, second) = _upstream(), _upstream()
    relays = RelaySet()
    try:
        first_relay, second_relay = relays.url_for("127.0.0.1", first), relays.url_for("127.0.0.1", second)
        with _through(first_relay) as client, first_upstream.accept()[0] as piped:
            client.sendall(b"job one")
            assert piped.recv(16) == b"job one"

            relays.recycle()  # job one ends: it used both relays, so both stay, but its connection is cut

            assert _cut(client)
        assert relays.url_for("127.0.0.1", first) == first_relay
        relays.recycle()  # job two used only the first target: the relay of the second goes
        with pytest.raises(OSError):
            _through(second_relay)
        assert relays.url_for("127.0.0.1", first) == first_relay
        with _through(first_relay) as again, first_upstream.accept()[0] as piped_again:
            again.sendall(b"job three")
            assert piped_again.recv(16) == b"job three"
    finally:
        relays.close()
        first_upstream.close()
        second_upstream.close()
