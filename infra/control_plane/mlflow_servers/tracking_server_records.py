"""A managed MLflow tracking server's record, its statuses and wire forms (docs/experiments.md#managed-mlflow)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from infra.control_plane.core.durable.record_codec import TRANSIENT
from infra.control_plane.core.resource_helpers import utcnow


class TrackingServerStatus(str, Enum):
    CREATING = "Creating"
    CREATED = "Created"
    CREATE_FAILED = "CreateFailed"
    UPDATING = "Updating"
    UPDATED = "Updated"
    UPDATE_FAILED = "UpdateFailed"
    DELETING = "Deleting"
    DELETE_FAILED = "DeleteFailed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    STOP_FAILED = "StopFailed"
    STARTING = "Starting"
    STARTED = "Started"
    START_FAILED = "StartFailed"


# The statuses in which the server's process runs (or is being brought up) and answers MLflow clients.
RUNNING_STATUSES = frozenset({TrackingServerStatus.CREATED, TrackingServerStatus.UPDATED, TrackingServerStatus.STARTED})
# The statuses of an operation in flight: another Start/Stop/Update/Delete is a ConflictException meanwhile.
TRANSITIONAL_STATUSES = frozenset(
    {
        TrackingServerStatus.CREATING,
        TrackingServerStatus.UPDATING,
        TrackingServerStatus.DELETING,
        TrackingServerStatus.STOPPING,
        TrackingServerStatus.STARTING,
    }
)


@dataclass
class TrackingServer:
    name: str
    arn: str
    artifact_store_uri: str
    role_arn: str
    mlflow_version: str
    size: str = "Small"
    automatic_model_registration: bool = False
    # When AutomaticModelRegistration was last turned on: model versions registered since then go to the Model Registry.
    automatic_model_registration_since: datetime | None = None
    weekly_maintenance_window_start: str | None = None
    s3_bucket_owner_account_id: str | None = None
    s3_bucket_owner_verification: bool | None = None
    status: TrackingServerStatus = TrackingServerStatus.CREATING
    failure_reason: str | None = None  # the last failed start's reason (logged; AWS's Describe has no such member)
    port: int = 0  # kept across Stop/Start so the URL stays the same unless the port was taken meanwhile
    creation_time: datetime = field(default_factory=utcnow)
    last_modified: datetime = field(default_factory=utcnow)
    lock: threading.RLock = field(default_factory=threading.RLock)
    process: Any = field(default=None, metadata=TRANSIENT)  # the live MlflowServerProcess, never stored

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port else ""

    def set_automatic_model_registration(self, on: bool) -> None:
        if on and not self.automatic_model_registration:
            self.automatic_model_registration_since = utcnow()
        self.automatic_model_registration = on

    def set_status(self, status: TrackingServerStatus) -> None:
        self.status = status
        self.last_modified = utcnow()

    def is_active(self) -> str:
        return "Active" if self.status in RUNNING_STATUSES else "Inactive"

    def to_api(self) -> dict[str, Any]:
        return {
            "TrackingServerArn": self.arn,
            "TrackingServerName": self.name,
            "ArtifactStoreUri": self.artifact_store_uri,
            "TrackingServerSize": self.size,
            "MlflowVersion": self.mlflow_version,
            "RoleArn": self.role_arn,
            "TrackingServerStatus": self.status.value,
            "IsActive": self.is_active(),
            "TrackingServerUrl": self.url or None,
            "WeeklyMaintenanceWindowStart": self.weekly_maintenance_window_start,
            "AutomaticModelRegistration": self.automatic_model_registration,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "S3BucketOwnerAccountId": self.s3_bucket_owner_account_id,
            "S3BucketOwnerVerification": self.s3_bucket_owner_verification,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "TrackingServerArn": self.arn,
            "TrackingServerName": self.name,
            "CreationTime": self.creation_time,
            "LastModifiedTime": self.last_modified,
            "TrackingServerStatus": self.status.value,
            "IsActive": self.is_active(),
            "MlflowVersion": self.mlflow_version,
        }
