"""Fixtures for the runtime tests: a fake container image and runtimes in both isolation families."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.runtime.api import ContainerImage, IsolationMode
from infra.runtime.process import ProcessRuntime, process_serving
from tests.capabilities import requires_capability
from tests.unit.infra.support import Impostor, LogCollector

FAKE_CONTAINER = Path(__file__).parent / "fixtures" / "fake_container" / "__main__.py"


@pytest.fixture
def fake_image() -> ContainerImage:
    return ContainerImage(uri="sagestack/fake:test", command=(sys.executable, str(FAKE_CONTAINER)))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    """The best isolation this machine offers (namespace when possible)."""
    rt = ProcessRuntime(tmp_path / "data", stop_grace_seconds=0.5)
    yield rt
    rt.shutdown()


@pytest.fixture
def env_runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    rt = ProcessRuntime(tmp_path / "data-env", IsolationMode.ENVIRONMENT, stop_grace_seconds=0.5)
    yield rt
    rt.shutdown()


@pytest.fixture(params=["default", "environment"])
def any_mode_runtime(
    request: pytest.FixtureRequest, runtime: ProcessRuntime, env_runtime: ProcessRuntime
) -> ProcessRuntime:
    """The test runs once with the detected isolation and once with the environment fallback."""
    return runtime if request.param == "default" else env_runtime


@pytest.fixture
def namespaced() -> None:
    requires_capability("mount-namespaces")


@pytest.fixture
def logs() -> LogCollector:
    return LogCollector()


@pytest.fixture
def impostor() -> Iterator[int]:
    """The port of a healthy server held by the test process (not by any container's session)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", process_serving.free_port()), Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
