"""EMR clusters and steps as the control plane keeps them, and their API shapes (``Cluster``, ``Step``, summaries)."""

from __future__ import annotations

import enum
import secrets
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.control_plane.core.errors import ServiceError
from infra.control_plane.core.resource_helpers import utcnow

_ID_CHARS = string.ascii_uppercase + string.digits


class InvalidRequestException(ServiceError):
    """EMR's client error (unknown cluster or step, a request EMR refuses)."""

    code = "InvalidRequestException"

    def to_body(self) -> dict[str, object]:
        return {"__type": self.code, "Message": self.message, "ErrorCode": "INVALID_REQUEST"}


class ClusterState(str, enum.Enum):
    STARTING = "STARTING"
    BOOTSTRAPPING = "BOOTSTRAPPING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    TERMINATED_WITH_ERRORS = "TERMINATED_WITH_ERRORS"


class StepState(str, enum.Enum):
    PENDING = "PENDING"
    CANCEL_PENDING = "CANCEL_PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"


class ActionOnFailure(str, enum.Enum):
    TERMINATE_JOB_FLOW = "TERMINATE_JOB_FLOW"
    TERMINATE_CLUSTER = "TERMINATE_CLUSTER"
    CANCEL_AND_WAIT = "CANCEL_AND_WAIT"
    CONTINUE = "CONTINUE"


ENDED_CLUSTER = frozenset({ClusterState.TERMINATED, ClusterState.TERMINATED_WITH_ERRORS})
ENDED_STEP = frozenset({StepState.COMPLETED, StepState.CANCELLED, StepState.FAILED, StepState.INTERRUPTED})


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_CHARS) for _ in range(13))


@dataclass
class EmrStep:
    id: str
    name: str
    config: dict[str, Any]  # HadoopJarStep as sent
    action_on_failure: ActionOnFailure
    state: StepState = StepState.PENDING
    created: datetime = field(default_factory=utcnow)
    started: datetime | None = None
    ended: datetime | None = None
    failure: dict[str, str] | None = None  # FailureDetails: Reason, Message, LogFile
    log_uri: str | None = None

    def finish(self, state: StepState, failure: dict[str, str] | None = None) -> None:
        self.state, self.failure, self.ended = state, failure, utcnow()

    def to_api(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "State": self.state.value,
            "StateChangeReason": {},
            "Timeline": {"CreationDateTime": self.created, "StartDateTime": self.started, "EndDateTime": self.ended},
        }
        if self.failure:
            status["FailureDetails"] = self.failure
        config = self.config
        hadoop = {
            "Jar": config.get("Jar"),
            "Properties": {p["Key"]: p.get("Value", "") for p in config.get("Properties") or []},
            "MainClass": config.get("MainClass"),
            "Args": list(config.get("Args") or []),
        }
        answer = {
            "Id": self.id,
            "Name": self.name,
            "Config": hadoop,
            "ActionOnFailure": self.action_on_failure.value,
            "Status": status,
        }
        if self.log_uri:
            answer["LogUri"] = self.log_uri
        return answer


@dataclass
class EmrCluster:
    id: str
    arn: str
    name: str
    request: Mapping[str, Any]  # the RunJobFlow request, for Describe's echoes
    worker_count: int
    keep_alive: bool
    termination_protected: bool
    log_uri: str | None
    state: ClusterState = ClusterState.STARTING
    reason: dict[str, str] = field(default_factory=dict)
    created: datetime = field(default_factory=utcnow)
    ready: datetime | None = None
    ended: datetime | None = None
    steps: list[EmrStep] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    termination_requested: bool = False

    @property
    def is_ended(self) -> bool:
        return self.state in ENDED_CLUSTER

    def to_api(self) -> dict[str, Any]:
        request = self.request
        instances = request.get("Instances") or {}
        return {
            "Id": self.id,
            "Name": self.name,
            "Status": self._status(),
            "ClusterArn": self.arn,
            "LogUri": self.log_uri,
            "ReleaseLabel": request.get("ReleaseLabel"),
            "AutoTerminate": not self.keep_alive,
            "TerminationProtected": self.termination_protected,
            "VisibleToAllUsers": bool(request.get("VisibleToAllUsers", True)),
            "Applications": [
                {"Name": a.get("Name"), "Version": a.get("Version")} for a in request.get("Applications") or []
            ],
            "Tags": list(request.get("Tags") or []),
            "ServiceRole": request.get("ServiceRole"),
            "Configurations": list(request.get("Configurations") or []),
            "InstanceCollectionType": "INSTANCE_FLEET" if instances.get("InstanceFleets") else "INSTANCE_GROUP",
            "MasterPublicDnsName": "localhost",
            "NormalizedInstanceHours": 0,
            "StepConcurrencyLevel": 1,
            "Ec2InstanceAttributes": {"IamInstanceProfile": request.get("JobFlowRole")},
        }

    def summary(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Status": self._status(),
            "ClusterArn": self.arn,
            "NormalizedInstanceHours": 0,
        }

    def _status(self) -> dict[str, Any]:
        return {
            "State": self.state.value,
            "StateChangeReason": dict(self.reason),
            "Timeline": {"CreationDateTime": self.created, "ReadyDateTime": self.ready, "EndDateTime": self.ended},
        }
