"""Automatic model registration: MLflow registered model versions become SageMaker Model Registry packages.

As on AWS with ``AutomaticModelRegistration`` (docs/experiments.md#automatic-model-registration): a model version
registered in a tracking server's MLflow model registry (``mlflow.register_model``, ``log_model(...,
registered_model_name=...)``, ``MlflowClient.create_model_version``, the UI) appears in the SageMaker Model Registry
as a model package version in the group ``<registered model name>-<suffix>``, the suffix being the first six hex
digits of the SHA-256 of the tracking server's name. The stack watches the registry of every running server that has
the setting on (one MLflow REST search per server and round) and registers once each ``READY`` version created since
the setting was last turned on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Protocol

from infra.control_plane.core.errors import ServiceError, ValidationException
from infra.control_plane.core.store import DurableMap
from infra.control_plane.mlflow_servers.tracking_server_records import RUNNING_STATUSES, TrackingServer

logger = logging.getLogger(__name__)

SYNC_SECONDS = 2.0  # how long a newly registered version takes, at most, to appear in the Model Registry
_PAGE = 200  # MLflow's model-versions/search page size
_REQUEST_SECONDS = 30.0


class ModelRegistryTarget(Protocol):
    """The SageMaker Model Registry operations the sync calls (the registry family, wired by the composition root)."""

    def create_model_package_group(self, params: Mapping[str, Any]) -> dict[str, Any]: ...

    def create_model_package(self, params: Mapping[str, Any]) -> dict[str, Any]: ...


def model_package_group_name(registered_model: str, server_name: str) -> str:
    """AWS's name for the group of an MLflow registered model: ``<name>-<first six of sha256(server name)>``."""
    return f"{registered_model}-{hashlib.sha256(server_name.encode()).hexdigest()[:6]}"


def _versions(server: TrackingServer) -> Iterator[dict[str, Any]]:
    """Every model version of the server's registry, page by page (MLflow's REST ``model-versions/search``)."""
    token = ""
    while True:
        query = {"max_results": str(_PAGE), **({"page_token": token} if token else {})}
        url = f"{server.url}/api/2.0/mlflow/model-versions/search?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=_REQUEST_SECONDS) as answer:
            page = json.loads(answer.read() or b"{}")
        yield from page.get("model_versions") or []
        token = str(page.get("next_page_token") or "")
        if not token:
            return


def _package_request(server: TrackingServer, version: Mapping[str, Any], group: str) -> dict[str, Any]:
    name, number = str(version["name"]), str(version["version"])
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"MLflow registered model {name}, version {number} (tracking server {server.name})",
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": {
            "MlflowTrackingServerArn": server.arn,
            "MlflowRegisteredModelName": name,
            "MlflowModelVersion": number,
            **({"MlflowRunId": str(version["run_id"])} if version.get("run_id") else {}),
        },
    }
    source = version.get("storage_location") or version.get("source")
    if source:
        request["SourceUri"] = str(source)
    return request


def _registration_order(version: Mapping[str, Any]) -> tuple[int, str, int]:
    number = str(version.get("version") or "0")
    return int(version.get("creation_timestamp") or 0), str(version.get("name")), int(number) if number.isdigit() else 0


class ModelRegistrationSync:
    """Registers the new model versions of the servers that have ``AutomaticModelRegistration`` on."""

    def __init__(self, servers: Callable[[], Iterable[TrackingServer]], target: ModelRegistryTarget) -> None:
        self._servers = servers
        self._target = target
        # "<server ARN> <model name> <version>" -> its model package's ARN: each version is registered once.
        self.registered: MutableMapping[str, str] = DurableMap("mlflow-model-registrations", str)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mlflow-model-registration", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=SYNC_SECONDS * 5)

    def forget(self, server_arn: str) -> None:
        """A deleted server's versions: a new server of the same name starts its registry again at version 1."""
        for key in [k for k in self.registered if k.startswith(server_arn + " ")]:
            self.registered.pop(key, None)

    def _loop(self) -> None:
        while not self._stopping.wait(SYNC_SECONDS):
            self.sync_once()

    def sync_once(self) -> None:
        for server in list(self._servers()):
            if server.automatic_model_registration and server.status in RUNNING_STATUSES and server.port:
                try:
                    self._sync_server(server)
                except (OSError, ValueError, urllib.error.URLError) as exc:  # restarting or busy: next round
                    logger.debug("model registry of tracking server %s not read: %s", server.name, exc)

    def _sync_server(self, server: TrackingServer) -> None:
        # MLflow answers newest first; registered oldest first, package versions follow the MLflow versions.
        since = server.automatic_model_registration_since
        since_ms = int(since.timestamp() * 1000) if since is not None else 0
        for version in sorted(_versions(server), key=_registration_order):
            key = f"{server.arn} {version.get('name')} {version.get('version')}"
            if version.get("status", "READY") != "READY" or key in self.registered:
                continue
            if int(version.get("creation_timestamp") or 0) < since_ms:
                continue  # registered while the setting was off: only new versions are registered, as on AWS
            try:
                self.registered[key] = self._register(server, version)
            except ServiceError as exc:  # e.g. a name the Model Registry refuses: logged, not retried forever
                logger.warning("MLflow model version %s not registered in the Model Registry: %s", key, exc.message)
                self.registered[key] = ""

    def _register(self, server: TrackingServer, version: Mapping[str, Any]) -> str:
        group = model_package_group_name(str(version["name"]), server.name)
        try:
            self._target.create_model_package_group(
                {
                    "ModelPackageGroupName": group,
                    "ModelPackageGroupDescription": f"MLflow registered model {version['name']} "
                    f"(tracking server {server.name})",
                }
            )
        except ValidationException as exc:
            if "already exists" not in exc.message:
                raise
        answer = self._target.create_model_package(_package_request(server, version, group))
        logger.info("MLflow model %s version %s registered as %s", version["name"], version["version"], group)
        return str(answer["ModelPackageArn"])
