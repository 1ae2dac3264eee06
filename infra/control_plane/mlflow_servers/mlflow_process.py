"""One ``mlflow server`` child process: SQLite backend store in the stack's data directory, artifacts in the stack's S3.

Started like a container process (:class:`~infra.runtime.process.host_process.HostProcess`): its own process group,
the parent-death signal (it dies with the stack, even of kill -9), SIGTERM then SIGKILL on stop
(docs/experiments.md#managed-mlflow).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.control_plane.mlflow_servers import gunicorn_settings
from infra.control_plane.mlflow_servers.store_entry_point import BACKEND_STORE_VARIABLE
from infra.runtime.api import LogLine
from infra.runtime.process.host_process import HostProcess
from infra.runtime.process.process_serving import ListenerOwner, listener_owner

logger = logging.getLogger(__name__)

_HEALTH_POLL_SECONDS = 0.2
_STOP_GRACE_SECONDS = 10.0
_PASSED_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE")
_PROJECT_ROOT = Path(gunicorn_settings.__file__).resolve().parents[3]  # holds the infra package
# Holds the distribution metadata whose ``mlflow.tracking_store`` entry point gives the server's ``sqlite`` scheme the
# stack's store (bulk_metric_store) and whose ``mlflow.app`` entry point is the server's app (server_app); on the
# servers' PYTHONPATH only, so no other process's sqlite URIs change.
_APP_NAME = "sagestack"
_STORE_PLUGIN_PATH = Path(gunicorn_settings.__file__).resolve().parent / "store_plugin"


class MlflowStartError(Exception):
    """The server process exited or did not answer its health check in time."""


class MlflowPortTakenError(MlflowStartError):
    """Another process listens on the server's port (what answers its health check is not the server)."""


@dataclass(frozen=True)
class MlflowLaunch:
    """What one start of a tracking server needs; ``stack_env`` holds the stack's URL, region and job credentials."""

    name: str
    server_dir: Path  # holds mlflow.db (the backend store) and the process's working files
    artifacts_destination: str  # s3://bucket/prefix in the stack's S3
    port: int
    stack_env: dict[str, str]
    startup_timeout_seconds: float


def installed_mlflow_version() -> str:
    """The version of the ``mlflow`` package the servers run (``0.0.0`` when it is not installed: Create fails)."""
    try:
        return importlib.metadata.version("mlflow")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def port_is_free(port: int) -> bool:
    """Whether the server could listen on ``port``: as uvicorn binds (``SO_REUSEADDR``), a port whose last
    connections are in TIME_WAIT is free, one another program listens on is not."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def backend_store_uri(launch: MlflowLaunch) -> str:
    return f"sqlite:///{launch.server_dir / 'mlflow.db'}"


def _argv(launch: MlflowLaunch) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri(launch),
        # New experiments store their artifacts at s3://... as on AWS (clients write to the stack's S3 themselves,
        # which the sagemaker-mlflow plugin needs); mlflow-artifacts:/ locations are served through the server.
        "--default-artifact-root",
        launch.artifacts_destination,
        "--artifacts-destination",
        launch.artifacts_destination,
        "--host",
        "127.0.0.1",
        "--port",
        str(launch.port),
        "--workers",
        "1",
        # MLflow's app with the stack's plain log_batch hook, by the app entry point of store_plugin/ (server_app).
        "--app-name",
        _APP_NAME,
        # gunicorn runs MLflow's Flask app itself (no ASGI bridge), with the settings of the stack's own module:
        # threads, kept-alive connections, and the SQLite store in WAL mode (docs/experiments.md#managed-mlflow).
        "--gunicorn-opts",
        f"-c python:{gunicorn_settings.__name__}",
    ]


def server_environment(launch: MlflowLaunch) -> dict[str, str]:
    """The environment of the server process: nothing of the stack's own but what it needs."""
    env = {key: os.environ[key] for key in _PASSED_ENVIRONMENT if key in os.environ}
    env.update(launch.stack_env)
    env["HOME"] = str(launch.server_dir)  # nothing of the server lands in the user's home
    # The settings module and the tracking store of this very stack, not another checkout's.
    env["PYTHONPATH"] = os.pathsep.join((str(_PROJECT_ROOT), str(_STORE_PLUGIN_PATH)))
    env["MLFLOW_S3_ENDPOINT_URL"] = launch.stack_env["AWS_ENDPOINT_URL"]
    env[BACKEND_STORE_VARIABLE] = backend_store_uri(launch)  # the one store the app's log_batch hook writes to
    # MLflow 3's job execution (gateway and GenAI jobs) starts a job runner and huey consumers in sessions of their
    # own, which a stopped server's process group would not take with it; tracking does not use them.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # the stack is offline: MLflow would try to send usage events
    return env


class MlflowServerProcess:
    """A started ``mlflow server``; :meth:`wait_ready` blocks until it answers ``/health``."""

    def __init__(self, launch: MlflowLaunch) -> None:
        self.launch = launch
        launch.server_dir.mkdir(parents=True, exist_ok=True)
        self._process = HostProcess(
            f"mlflow-{launch.name}",
            _argv(launch),
            server_environment(launch),
            launch.server_dir,
            on_log=self._log,
            tail_lines=40,
        )

    def _log(self, line: LogLine) -> None:
        logger.debug("mlflow server %s: %s", self.launch.name, line.text)

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.launch.startup_timeout_seconds
        url = f"http://127.0.0.1:{self.launch.port}/health"
        while time.monotonic() < deadline:
            if not self._process.is_alive():
                self._process.wait()
                tail = " | ".join(self._process.last_lines()[-5:])
                raise MlflowStartError(f"mlflow server exited with code {self._process.exit_code}: {tail}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    healthy = answer.status == 200
            except (urllib.error.URLError, OSError):
                healthy = False
            if healthy:
                self._refuse_a_foreign_listener()
                return
            time.sleep(_HEALTH_POLL_SECONDS)
        self.stop()
        raise MlflowStartError(f"mlflow server did not answer within {self.launch.startup_timeout_seconds:.0f} s")

    def _refuse_a_foreign_listener(self) -> None:
        """Another stack's server, on a port picked at the same moment, answers ``/health`` too."""
        if listener_owner(self.launch.port, self._process.pid) is ListenerOwner.OTHER:
            self.stop()
            raise MlflowPortTakenError(
                f"tracking server {self.launch.name}: another process listens on port {self.launch.port}"
            )

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period; returns once nothing of it runs."""
        self._process.terminate(_STOP_GRACE_SECONDS)
        self._process.wait()
