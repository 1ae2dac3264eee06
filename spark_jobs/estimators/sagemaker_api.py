"""The SageMaker control-plane calls the estimator API makes (boto3 only): training job, model, endpoint."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spark_jobs.config import AwsSettings
from spark_jobs.errors import SageMakerJobError

logger = logging.getLogger(__name__)


def unique_name(prefix: str) -> str:
    """``<prefix>-<yyyymmddHHMMSS>-<6 hex>``, at most 63 characters (SageMaker's name limit)."""
    suffix = f"-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    return prefix[: 63 - len(suffix)].rstrip("-") + suffix


@dataclass(frozen=True)
class TrainingRequest:
    job_name: str
    image: str
    role: str
    channel: str
    s3_uri: str
    content_type: str
    output_s3_uri: str
    instance_type: str
    instance_count: int
    hyperparameters: dict[str, str]
    max_runtime_s: int = 86400
    volume_gb: int = 30
    input_mode: str = "File"
    distribution: str = "FullyReplicated"


@dataclass
class SageMakerApi:
    """Thin, typed wrapper over the ``sagemaker`` client; waits poll every ``poll_s`` seconds."""

    aws: AwsSettings = field(default_factory=AwsSettings.from_env)
    poll_s: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.aws.client("sagemaker")
        return self._client

    def train(self, request: TrainingRequest, timeout_s: float) -> str:
        """Run a training job to completion; returns ``S3ModelArtifacts``."""
        self.client.create_training_job(
            TrainingJobName=request.job_name,
            AlgorithmSpecification={"TrainingImage": request.image, "TrainingInputMode": request.input_mode},
            RoleArn=request.role,
            HyperParameters=request.hyperparameters,
            InputDataConfig=[
                {
                    "ChannelName": request.channel,
                    "ContentType": request.content_type,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": request.s3_uri,
                            "S3DataDistributionType": request.distribution,
                        }
                    },
                }
            ],
            OutputDataConfig={"S3OutputPath": request.output_s3_uri},
            ResourceConfig={
                "InstanceType": request.instance_type,
                "InstanceCount": request.instance_count,
                "VolumeSizeInGB": request.volume_gb,
            },
            StoppingCondition={"MaxRuntimeInSeconds": request.max_runtime_s},
        )
        logger.info("training job %s started (%s)", request.job_name, request.image)
        described = self._wait(
            lambda: self.client.describe_training_job(TrainingJobName=request.job_name),
            "TrainingJobStatus",
            {"InProgress", "Stopping"},
            timeout_s,
            f"training job {request.job_name}",
        )
        if described["TrainingJobStatus"] != "Completed":
            raise SageMakerJobError(
                f"training job {request.job_name} ended {described['TrainingJobStatus']}",
                why=described.get("FailureReason", "no FailureReason given"),
                fix="read the job's CloudWatch logs (/aws/sagemaker/TrainingJobs) and fix data or hyperparameters",
            )
        return str(described["ModelArtifacts"]["S3ModelArtifacts"])

    def create_model(self, name: str, image: str, model_data_url: str, role: str, env: dict[str, str]) -> None:
        container: dict[str, Any] = {"Image": image, "ModelDataUrl": model_data_url}
        if env:
            container["Environment"] = env
        self.client.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=role)

    def create_endpoint(self, name: str, model_name: str, instance_type: str, count: int, timeout_s: float) -> None:
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": model_name,
            "InitialInstanceCount": count,
            "InstanceType": instance_type,
        }
        self.client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
        self.client.create_endpoint(EndpointName=name, EndpointConfigName=name)
        self.wait_in_service(name, timeout_s)

    def wait_in_service(self, name: str, timeout_s: float) -> None:
        described = self._wait(
            lambda: self.client.describe_endpoint(EndpointName=name),
            "EndpointStatus",
            {"Creating", "Updating", "SystemUpdating"},
            timeout_s,
            f"endpoint {name}",
        )
        if described["EndpointStatus"] != "InService":
            raise SageMakerJobError(
                f"endpoint {name} is {described['EndpointStatus']}",
                why=described.get("FailureReason", "no FailureReason given"),
                fix="check the model image and artifact; read /aws/sagemaker/Endpoints logs",
            )

    def delete(self, endpoint: str | None, endpoint_config: str | None, model: str | None) -> None:
        calls = [
            (self.client.delete_endpoint, {"EndpointName": endpoint}),
            (self.client.delete_endpoint_config, {"EndpointConfigName": endpoint_config}),
            (self.client.delete_model, {"ModelName": model}),
        ]
        for call, kwargs in calls:
            if next(iter(kwargs.values())):
                call(**kwargs)

    def _wait(
        self, describe: Callable[[], dict[str, Any]], key: str, pending: set[str], timeout_s: float, what: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            described = describe()
            if described[key] not in pending:
                return described
            if time.monotonic() > deadline:
                raise SageMakerJobError(
                    f"{what} still {described[key]} after {timeout_s:.0f}s",
                    why="it did not finish within the wait timeout",
                    fix="raise the timeout, or check the job/endpoint logs",
                )
            self.sleep(self.poll_s)
