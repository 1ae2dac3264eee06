"""The managed MLflow API: Create/Describe/List/Start/Stop/Update/DeleteMlflowTrackingServer and presigned URLs.

Each tracking server is a real ``mlflow server`` child process (:mod:`.mlflow_process`); Create, Start, Stop, Update
and Delete answer at once and move the status in the background as AWS does (Creating -> Created, Stopping ->
Stopped, Starting -> Created, Updating -> Updated, Deleting -> gone) (docs/experiments.md#managed-mlflow).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.control_plane.core.aws_services import S3Location
from infra.control_plane.core.errors import (
    ConflictException,
    ResourceLimitExceeded,
    ResourceNotFound,
    ValidationException,
)
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import arn_for, tags_from, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.mlflow_servers.mlflow_process import (
    MlflowLaunch,
    MlflowPortTakenError,
    MlflowServerProcess,
    MlflowStartError,
    port_is_free,
)
from infra.control_plane.mlflow_servers.model_registration import ModelRegistrationSync, ModelRegistryTarget
from infra.control_plane.mlflow_servers.tracking_server_records import (
    RUNNING_STATUSES,
    TRANSITIONAL_STATUSES,
    TrackingServer,
    TrackingServerStatus,
)
from infra.runtime.process.process_serving import free_port, with_port_retries

logger = logging.getLogger(__name__)

Status = TrackingServerStatus
MAX_TRACKING_SERVERS = 5  # tracking servers that exist at once in one account/region (each is a ~200 MB process)
_LIST_SPEC: ListSpec[TrackingServer] = ListSpec(
    name=lambda s: s.name, creation_time=lambda s: s.creation_time, status=lambda s: s.status.value
)


@dataclass(frozen=True)
class MlflowHosting:
    """Where a family's servers live and what they get: a folder per server, the stack's URL and job credentials."""

    work_root: Path
    stack_env: dict[str, str]
    startup_timeout_seconds: float
    mlflow_version: str
    bucket_exists: Callable[[str], bool]


def _not_found(name: str) -> ResourceNotFound:
    return ResourceNotFound(f"Tracking server with name {name} not found.")


class MlflowTrackingServers:
    def __init__(
        self, account_id: str, region: str, hosting: MlflowHosting, model_registry: ModelRegistryTarget
    ) -> None:
        self.account_id, self.region, self._hosting = account_id, region, hosting
        self.store: Store[TrackingServer] = Store("mlflow-tracking-server", _not_found, TrackingServer)
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("mlflow-tracking-server-tags", list)
        self._lock = threading.Lock()
        self.model_registration = ModelRegistrationSync(self.store.values, model_registry)
        self.model_registration.start()

    # --- the API ---------------------------------------------------------------------------------------------
    def create_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TrackingServerName"])
        server = TrackingServer(
            name=name,
            arn=arn_for("mlflow-tracking-server", name, self.account_id, self.region),
            artifact_store_uri=self._artifact_store(str(params["ArtifactStoreUri"])),
            role_arn=str(params["RoleArn"]),
            mlflow_version=self._version(params.get("MlflowVersion")),
            size=str(params.get("TrackingServerSize") or "Small"),
            weekly_maintenance_window_start=params.get("WeeklyMaintenanceWindowStart"),
            s3_bucket_owner_account_id=params.get("S3BucketOwnerAccountId"),
            s3_bucket_owner_verification=params.get("S3BucketOwnerVerification"),
        )
        server.set_automatic_model_registration(bool(params.get("AutomaticModelRegistration", False)))
        with self._lock:
            if len(self.store.values()) >= MAX_TRACKING_SERVERS:
                raise ResourceLimitExceeded(
                    f"The account-level service limit 'Maximum number of tracking servers' is "
                    f"{MAX_TRACKING_SERVERS} servers, with current utilization of {MAX_TRACKING_SERVERS} servers."
                )
            self.store.add(name, server, _already_exists)
        self.tags[server.arn] = tags_from(params)
        self._in_background(server, Status.CREATED, Status.CREATE_FAILED)
        return {"TrackingServerArn": server.arn}

    def describe_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.store.get_or_raise(str(params["TrackingServerName"])).to_api()

    def list_mlflow_tracking_servers(self, params: Mapping[str, Any]) -> dict[str, Any]:
        servers = [
            s
            for s in self.store.values()
            if params.get("TrackingServerStatus") in (None, s.status.value)
            and params.get("MlflowVersion") in (None, s.mlflow_version)
        ]
        page, token = paginate(servers, params, _LIST_SPEC)
        return {"TrackingServerSummaries": [s.summary() for s in page], "NextToken": token}

    def start_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        server = self.store.get_or_raise(str(params["TrackingServerName"]))
        with server.lock:
            if server.status not in (Status.STOPPED, Status.START_FAILED, Status.CREATE_FAILED):
                raise ConflictException(
                    f"Tracking server {server.name} cannot be started while its status is {server.status.value}."
                )
            server.set_status(Status.STARTING)
        self.store.changed(server.name)
        self._in_background(server, Status.CREATED, Status.START_FAILED)
        return {"TrackingServerArn": server.arn}

    def stop_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        server = self.store.get_or_raise(str(params["TrackingServerName"]))
        with server.lock:
            if server.status not in RUNNING_STATUSES:
                raise ConflictException(
                    f"Tracking server {server.name} cannot be stopped while its status is {server.status.value}."
                )
            server.set_status(Status.STOPPING)
        self.store.changed(server.name)
        threading.Thread(target=self._stop, args=(server,), name=f"mlflow-stop-{server.name}", daemon=True).start()
        return {"TrackingServerArn": server.arn}

    def update_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        server = self.store.get_or_raise(str(params["TrackingServerName"]))
        artifacts = params.get("ArtifactStoreUri")
        checked = self._artifact_store(str(artifacts)) if artifacts else None
        with server.lock:
            if server.status in TRANSITIONAL_STATUSES:
                raise ConflictException(
                    f"Tracking server {server.name} cannot be updated while its status is {server.status.value}."
                )
            _apply_update(server, params, checked)
            running = server.status in RUNNING_STATUSES
            if running:
                server.set_status(Status.UPDATING)
        self.store.changed(server.name)
        if running:  # the process is started again so it writes to the new artifact store
            self._in_background(server, Status.UPDATED, Status.UPDATE_FAILED, restart=True)
        return {"TrackingServerArn": server.arn}

    def delete_mlflow_tracking_server(self, params: Mapping[str, Any]) -> dict[str, Any]:
        server = self.store.get_or_raise(str(params["TrackingServerName"]))
        with server.lock:
            if server.status in TRANSITIONAL_STATUSES:
                raise ConflictException(
                    f"Tracking server {server.name} cannot be deleted while its status is {server.status.value}."
                )
            server.set_status(Status.DELETING)
        self.store.changed(server.name)
        threading.Thread(target=self._delete, args=(server,), name=f"mlflow-delete-{server.name}", daemon=True).start()
        return {"TrackingServerArn": server.arn}

    def create_presigned_mlflow_tracking_server_url(self, params: Mapping[str, Any]) -> dict[str, Any]:
        server = self.store.get_or_raise(str(params["TrackingServerName"]))
        if server.status not in RUNNING_STATUSES:
            raise ValidationException(
                f"Tracking server {server.name} is not running (status {server.status.value}); start it first."
            )
        return {"AuthorizedUrl": server.url + "/"}

    # --- stack start and stop --------------------------------------------------------------------------------
    def recover_after_restart(self) -> None:
        """Bring back what ran before the stack stopped; finish what was stopping or being deleted."""
        for server in self.store.values():
            if server.status == Status.DELETING:
                self._delete(server)
            elif server.status == Status.STOPPING:
                server.set_status(Status.STOPPED)
                self.store.changed(server.name)
            elif server.status in RUNNING_STATUSES or server.status in TRANSITIONAL_STATUSES:
                server.set_status(Status.STARTING)
                self.store.changed(server.name)
                self._in_background(server, Status.CREATED, Status.START_FAILED)

    def close(self) -> None:
        """Stack stop: end every server process (their SQLite stores stay in the data directory)."""
        self.model_registration.stop()
        for server in self.store.values():
            process = server.process
            if process is not None:
                process.stop()
                server.process = None

    # --- background work -------------------------------------------------------------------------------------
    def _in_background(
        self, server: TrackingServer, success: Status, failure: Status, *, restart: bool = False
    ) -> None:
        def run() -> None:
            if restart and server.process is not None:
                server.process.stop()
                server.process = None
            self._bring_up(server, success, failure)

        threading.Thread(target=run, name=f"mlflow-start-{server.name}", daemon=True).start()

    def _bring_up(self, server: TrackingServer, success: Status, failure: Status) -> None:
        if not server.port or not port_is_free(server.port):
            if server.port:
                logger.warning("port %s of tracking server %s is in use: it moves", server.port, server.name)
            server.port = free_port()
        try:
            process = self._start_process(server)
        except (MlflowStartError, OSError) as exc:
            logger.warning("tracking server %s did not start: %s", server.name, exc)
            with server.lock:
                server.failure_reason = str(exc)
                server.set_status(failure)
        else:
            with server.lock:
                server.process, server.failure_reason = process, None
                server.set_status(success)
        self.store.changed(server.name)

    def _start_process(self, server: TrackingServer) -> MlflowServerProcess:
        """The server's process, ready; started again on a new port when another process took its port."""

        def start() -> MlflowServerProcess:
            launch = MlflowLaunch(
                name=server.name,
                server_dir=self._server_dir(server.name),
                artifacts_destination=server.artifact_store_uri,
                port=server.port,
                stack_env=self._hosting.stack_env,
                startup_timeout_seconds=self._hosting.startup_timeout_seconds,
            )
            process = MlflowServerProcess(launch)
            try:
                process.wait_ready()
            except MlflowPortTakenError:
                server.port = free_port()  # the next start's
                raise
            return process

        return with_port_retries(start, MlflowPortTakenError)

    def _stop(self, server: TrackingServer) -> None:
        if server.process is not None:
            server.process.stop()
            server.process = None
        with server.lock:
            server.set_status(Status.STOPPED)
        self.store.changed(server.name)

    def _delete(self, server: TrackingServer) -> None:
        if server.process is not None:
            server.process.stop()
            server.process = None
        shutil.rmtree(self._server_dir(server.name), ignore_errors=True)
        self.tags.pop(server.arn, None)
        self.model_registration.forget(server.arn)
        self.store.remove(server.name)

    # --- validation ------------------------------------------------------------------------------------------
    def _server_dir(self, name: str) -> Path:
        return self._hosting.work_root / name

    def _artifact_store(self, uri: str) -> str:
        if not uri.startswith("s3://"):
            raise ValidationException(f"ArtifactStoreUri {uri} must be an s3:// URI of a bucket of this stack.")
        location = S3Location.parse(uri)
        if not self._hosting.bucket_exists(location.bucket):
            raise ValidationException(f"The S3 bucket {location.bucket} of ArtifactStoreUri does not exist.")
        return uri.rstrip("/")

    def _version(self, asked: Any) -> str:
        installed = self._hosting.mlflow_version
        if asked and str(asked).split(".")[0] != installed.split(".")[0]:
            raise ValidationException(
                f"MlflowVersion {asked} is not supported: this stack runs MLflow {installed} "
                f"(ask for {installed.split('.')[0]}.x or leave MlflowVersion out)."
            )
        return installed


def _already_exists(name: str) -> ValidationException:
    return ValidationException(f"Tracking server with name {name} already exists.")


def _apply_update(server: TrackingServer, params: Mapping[str, Any], artifacts: str | None) -> None:
    if artifacts:
        server.artifact_store_uri = artifacts
    if params.get("TrackingServerSize"):
        server.size = str(params["TrackingServerSize"])
    if params.get("AutomaticModelRegistration") is not None:
        server.set_automatic_model_registration(bool(params["AutomaticModelRegistration"]))
    if params.get("WeeklyMaintenanceWindowStart"):
        server.weekly_maintenance_window_start = str(params["WeeklyMaintenanceWindowStart"])
    if params.get("S3BucketOwnerAccountId"):
        server.s3_bucket_owner_account_id = str(params["S3BucketOwnerAccountId"])
    if params.get("S3BucketOwnerVerification") is not None:
        server.s3_bucket_owner_verification = bool(params["S3BucketOwnerVerification"])
    server.last_modified = utcnow()
