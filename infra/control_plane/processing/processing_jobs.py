"""Processing jobs: the resource and the Create/Describe/List/Stop handlers (the run is in processing_executor)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.core.resource_helpers import arn_for, get_or_raise, tags_from
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.execution.batch_jobs import BatchJob, already_exists, job_not_found, recover_batch_jobs
from infra.control_plane.processing.processing_request import CreateProcessingJobRequest

logger = logging.getLogger(__name__)

PROCESSING_ROOT = PurePosixPath("/opt/ml/processing")
_ECHOED = (
    "ProcessingInputs",
    "ProcessingOutputConfig",
    "ProcessingResources",
    "StoppingCondition",
    "AppSpecification",
    "Environment",
    "NetworkConfig",
    "RoleArn",
    "ExperimentConfig",
)


@dataclass
class ProcessingJob(BatchJob[CreateProcessingJobRequest]):
    exit_message: str | None = None

    def to_api(self) -> dict[str, Any]:
        with self.lock:
            body = {key: self.params.get(key) for key in _ECHOED}
            body.update(
                ProcessingJobName=self.name,
                ProcessingJobArn=self.arn,
                ProcessingJobStatus=self.status,
                ExitMessage=self.exit_message,
                FailureReason=self.failure_reason,
                ProcessingStartTime=self.start_time,
                ProcessingEndTime=self.end_time,
                LastModifiedTime=self.last_modified,
                CreationTime=self.creation_time,
            )
            return body

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "ProcessingJobName": self.name,
                "ProcessingJobArn": self.arn,
                "CreationTime": self.creation_time,
                "ProcessingEndTime": self.end_time,
                "LastModifiedTime": self.last_modified,
                "ProcessingJobStatus": self.status,
                "FailureReason": self.failure_reason,
                "ExitMessage": self.exit_message,
            }


_LIST_SPEC: ListSpec[ProcessingJob] = ListSpec(
    name=lambda job: job.name,
    creation_time=lambda job: job.creation_time,
    status=lambda job: job.status.value,
    last_modified=lambda job: job.last_modified,
)


class ProcessingLauncher(Protocol):
    def launch(self, job: ProcessingJob) -> None: ...


class ProcessingJobs:
    """Handlers for the processing-job operations of one account/region."""

    def __init__(
        self, account_id: str, region: str, launcher: ProcessingLauncher, quotas: QuotaLedger | None = None
    ) -> None:
        self._account_id = account_id
        self._region = region
        self._launcher = launcher
        self.store: Store[ProcessingJob] = Store("processing-job", job_not_found, ProcessingJob)
        self._quotas = quotas or QuotaLedger()
        self._quotas.register("processing", lambda: [_instances(j) for j in self.store.values() if not j.is_terminal])
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("processing-job-tags", list)

    def create_processing_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["ProcessingJobName"])
        arn = arn_for("processing-job", name, self._account_id, self._region)
        request = parse_request(CreateProcessingJobRequest, params)
        _check_create(request)
        self._quotas.check_job("processing", request.processing_resources.cluster_config.instance_count)
        job = ProcessingJob(name=name, arn=arn, request=request, params=dict(params))
        self.store.add(name, job, already_exists(arn))
        self.tags[arn] = tags_from(params)
        self._launcher.launch(job)
        return {"ProcessingJobArn": arn}

    def describe_processing_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return get_or_raise(self.store, str(params["ProcessingJobName"])).to_api()

    def list_processing_jobs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        page, token = paginate(self.store.values(), params, _LIST_SPEC)
        return {"ProcessingJobSummaries": [job.summary() for job in page], "NextToken": token}

    def recover_after_restart(self) -> None:
        recover_batch_jobs(self.store)

    def stop_processing_job(self, params: Mapping[str, Any]) -> dict[str, Any]:
        get_or_raise(self.store, str(params["ProcessingJobName"])).request_stop("processing")
        return {}


def _instances(job: ProcessingJob) -> int:
    return job.request.processing_resources.cluster_config.instance_count


def _check_create(request: CreateProcessingJobRequest) -> None:
    inputs = request.processing_inputs
    outputs = request.processing_output_config.outputs
    names = [i.input_name for i in inputs] + [o.output_name for o in outputs]
    if len(names) != len(set(names)):
        raise ValidationException("ProcessingInputs and ProcessingOutputConfig names must be unique.")
    local_paths = [str(i.s3_input.local_path) for i in inputs if i.s3_input is not None]
    local_paths += [str(o.s3_output.local_path) for o in outputs if o.s3_output is not None]
    for path in local_paths:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
            raise ValidationException(f"LocalPath {path!r} is invalid: it must not contain control characters.")
        pure = PurePosixPath(path)
        if not pure.is_relative_to(PROCESSING_ROOT) or pure == PROCESSING_ROOT or ".." in pure.parts:
            raise ValidationException(
                f"LocalPath {path} is invalid: it must be a path below {PROCESSING_ROOT}/ without '..'."
            )
    for item in inputs:
        if item.s3_input is None:
            raise ValidationException(
                f"ProcessingInput {item.input_name}: only S3Input is supported by the local stack "
                "(DatasetDefinition is not)."
            )
