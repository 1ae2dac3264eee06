"""What every job executor is given: the account, the stack's URL, its work folder, the container host, S3 and logs,
the credentials its containers use to call the stack, and the stack's quotas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from infra.config import JobCredentials, ServiceQuotas
from infra.control_plane.core.aws_services import LogsAccess, S3Access
from infra.control_plane.execution.container_host import ContainerHost


@dataclass(frozen=True)
class ExecutorContext:
    account_id: str
    region: str
    stack_url: str
    work_root: Path
    containers: ContainerHost
    s3: S3Access
    logs: LogsAccess
    job_credentials: JobCredentials
    quotas: ServiceQuotas
