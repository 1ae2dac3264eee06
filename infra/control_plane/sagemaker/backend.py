"""One SageMaker backend per account/region: the resource services, wired to the shared executors."""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import StackSettings
from infra.control_plane.core.aws_services import LogsAccess, S3Access
from infra.control_plane.sagemaker.containers import ContainerHost
from infra.control_plane.sagemaker.endpoint_configs import EndpointConfigs
from infra.control_plane.sagemaker.endpoints import Endpoints
from infra.control_plane.sagemaker.hosting import Deployer, HostingContext
from infra.control_plane.sagemaker.models import Models
from infra.control_plane.sagemaker.training_executor import ExecutorContext, TrainingExecutor
from infra.control_plane.sagemaker.training_jobs import TrainingJobs


@dataclass
class SageMakerBackend:
    account_id: str
    region: str
    training_jobs: TrainingJobs
    models: Models
    endpoint_configs: EndpointConfigs
    endpoints: Endpoints
    logs: LogsAccess

    def services(self) -> tuple[object, ...]:
        """The objects whose ``snake_case`` methods are API operations."""
        return (self.training_jobs, self.models, self.endpoint_configs, self.endpoints)


def build_backend(settings: StackSettings, containers: ContainerHost, account_id: str, region: str) -> SageMakerBackend:
    s3 = S3Access(account_id)
    logs = LogsAccess(account_id, region)
    executor = TrainingExecutor(
        ExecutorContext(
            account_id=account_id,
            region=region,
            stack_url=settings.url,
            work_root=settings.data_dir / "training-jobs" / account_id / region,
            containers=containers,
            s3=s3,
            logs=logs,
        )
    )
    models = Models(account_id, region)
    configs = EndpointConfigs(account_id, region, models)
    hosting = HostingContext(
        account_id=account_id,
        region=region,
        work_root=settings.data_dir / "endpoints" / account_id / region,
        containers=containers,
        s3=s3,
        logs=logs,
        startup_timeout_seconds=settings.endpoint_startup_timeout_seconds,
    )
    endpoints = Endpoints(account_id, region, configs, Deployer(hosting, models))
    return SageMakerBackend(
        account_id=account_id,
        region=region,
        training_jobs=TrainingJobs(account_id, region, executor),
        models=models,
        endpoint_configs=configs,
        endpoints=endpoints,
        logs=logs,
    )
