"""Transform jobs: the resource and the Create/Describe/List/Stop handlers (the run is in transform_executor)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.execution.batch_jobs import BatchJob, already_exists, job_not_found, recover_batch_jobs
from infra.control_plane.hosting.models import Models
from infra.control_plane.transform.transform_records import DataProcessing, RecordError
from infra.control_plane.transform.transform_request import CreateTransformJobRequest

logger = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB = 100  # AWS: "The value of MaxPayloadInMB cannot be greater than 100 MB."
DEFAULT_TIMEOUT_SECONDS = 600
DEFAULT_MAX_RETRIES = 3
_ECHOED = (
    "ModelName",
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "DataCaptureConfig",
    "TransformResources",
    "DataProcessing",
    "ExperimentConfig",
)


@dataclass
class TransformJob(BatchJob[CreateTransformJobRequest]):
    effective: dict[str, Any] = field(default_factory=dict)  # values resolved at run time (execution parameters)

    @property
    def split_type(self) -> str:
        return self.request.transform_input.split_type

    @property
    def data_processing(self) -> DataProcessing:
        spec = self.request.data_processing
        return DataProcessing(
            input_filter=spec.input_filter,
            join_input=spec.join_source == "Input",
            output_filter=spec.output_filter,
            content_type=self.request.transform_input.content_type or "",
            accept=self.request.transform_output.accept or "",
        )

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            body = {key: self.params.get(key) for key in _ECHOED}
            body.update({k: v for k, v in self.effective.items() if body.get(k) is None})
            body.update(
                TransformJobName=self.name,
                TransformJobArn=self.arn,
                TransformJobStatus=self.status,
                FailureReason=self.failure_reason,
                CreationTime=self.creation_time,
                TransformStartTime=self.start_time,
                TransformEndTime=self.end_time,
            )
            return body

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "TransformJobName": self.name,
                "TransformJobArn": self.arn,
                "CreationTime": self.creation_time,
                "TransformEndTime": self.end_time,
                "LastModifiedTime": self.last_modified,
                "TransformJobStatus": self.status,
                "FailureReason": self.failure_reason,
            }


_LIST_SPEC: ListSpec[TransformJob] = ListSpec(
    name=lambda job: job.name,
    creation_time=lambda job: job.creation_time,
    status=lambda job: job.status.value,
    last_modified=lambda job: job.last_modified,
)


class TransformLauncher(Protocol):
    def launch(self, job: TransformJob) -> None: ...


class TransformJobs:
    """Handlers for the transform-job operations of one account/region."""

    def __init__(
        self,
        account_id: str,
        region: str,
        models: Models,
        launcher: TransformLauncher,
        quotas: QuotaLedger | None = None,
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._models = models
        self._launcher = launcher
        self.store: Store[TransformJob] = Store("transform-job", job_not_found, TransformJob)
        self._quotas = quotas or QuotaLedger()
        self._quotas.register(
            "transform",
            lambda: [j.request.transform_resources.instance_count for j in self.store.values() if not j.is_terminal],
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("transform-job-tags", list)

    def create_transform_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TransformJobName"])
        arn = arn_for("transform-job", name, self._account_id, self._region)
        if self._models.store.find(str(params["ModelName"])) is None:
            model_arn = arn_for("model", str(params["ModelName"]), self._account_id, self._region)
            raise ValidationException(f'Could not find model "{model_arn}".')
        job = TransformJob(
            name=name, arn=arn, request=parse_request(CreateTransformJobRequest, params), params=dict(params)
        )
        _check_create(job)
        self._quotas.check_job("transform", job.request.transform_resources.instance_count)
        self.store.add(name, job, already_exists(arn))
        self.tags[arn] = tags_from(params)
        self._launcher.launch(job)
        return {"TransformJobArn": arn}

    def describe_transform_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["TransformJobName"])).to_api()

    def list_transform_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.store.values(), params, _LIST_SPEC)
        return {"TransformJobSummaries": [job.summary() for job in page], "NextToken": token}

    def recover_after_restart(self) -> None:
        recover_batch_jobs(self.store)

    def stop_transform_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        get_or_raise(self.store, str(params["TransformJobName"])).request_stop("transform")
        return {}


def _check_create(job: TransformJob) -> None:
    request = job.request
    payload = request.max_payload_in_mb
    concurrency = request.max_concurrent_transforms
    if payload and concurrency and payload * concurrency > 100:
        raise ValidationException(
            "MaxConcurrentTransforms * MaxPayloadInMB must not exceed 100 MB "
            f"(got {concurrency} * {payload} = {payload * concurrency})."
        )
    if payload and payload > MAX_PAYLOAD_MB:
        raise ValidationException(f"MaxPayloadInMB must not exceed {MAX_PAYLOAD_MB} MB (got {payload}).")
    if request.transform_input.data_source.s3_data_source is None:
        raise ValidationException("TransformInput.DataSource must have an S3DataSource.")
    try:
        job.data_processing.check(job.split_type, request.transform_output.assemble_with)
    except RecordError as exc:
        raise ValidationException(str(exc)) from exc
