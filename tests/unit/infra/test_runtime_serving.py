from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from infra.runtime.api import ContainerImage, ServingSpec
from infra.runtime.errors import ServingStartupError
from infra.runtime.process import ProcessRuntime
from infra.runtime.process.process_serving import ProcessServingContainer
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
