"""ListPipelineVersions and UpdatePipelineVersion (docs/pipelines.md#pipeline-versions).

CreatePipeline makes version 1 and every UpdatePipeline that brings a definition makes the next one; an execution
runs the version StartPipelineExecution names (``PipelineVersionId``, else the latest) and DescribePipeline /
DescribePipelineExecution answer with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from infra.control_plane.core.errors import ResourceNotFound, ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import utcnow
from infra.control_plane.pipeline_engine.resources import Execution, Pipeline, PipelineVersion

_VERSIONS: ListSpec[PipelineVersion] = ListSpec(
    name=lambda v: str(v.version_id),
    creation_time=lambda v: v.creation_time,
    extra_sort_keys={"CreationTime": lambda v: (v.creation_time, v.version_id)},
)


class PipelineVersions:
    """The version operations of one account/region's pipelines (a service of its own, like the callbacks)."""

    def __init__(self, find_pipeline: Callable[[str], Pipeline], executions: Callable[[], Iterable[Execution]]) -> None:
        self._find_pipeline, self._executions = find_pipeline, executions

    def list_pipeline_versions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pipeline = self._find_pipeline(str(params["PipelineName"]))
        window = {"CreationTimeAfter": params.get("CreatedAfter"), "CreationTimeBefore": params.get("CreatedBefore")}
        query = {**{k: v for k, v in params.items() if k not in ("CreatedAfter", "CreatedBefore")}, **window}
        page, token = paginate(list(pipeline.versions), query, _VERSIONS)
        last = self._last_executions(pipeline)
        return {
            "PipelineVersionSummaries": [v.summary(pipeline.arn, last.get(v.version_id)) for v in page],
            "NextToken": token,
        }

    def update_pipeline_version(self, params: Mapping[str, Any]) -> dict[str, Any]:
        arn = str(params.get("PipelineArn") or "")
        if not arn:
            raise ValidationException("PipelineArn is required.")
        pipeline = self._find_pipeline(arn)
        version = pipeline.version(_version_id(params.get("PipelineVersionId")))
        if version is None:
            raise ResourceNotFound(
                f"Pipeline version {params.get('PipelineVersionId')} of pipeline {pipeline.name} does not exist."
            )
        if "PipelineVersionDisplayName" in params:
            version.display_name = str(params["PipelineVersionDisplayName"])
        if "PipelineVersionDescription" in params:
            version.description = str(params["PipelineVersionDescription"])
        pipeline.last_modified = utcnow()
        return {"PipelineArn": pipeline.arn, "PipelineVersionId": version.version_id}

    def _last_executions(self, pipeline: Pipeline) -> dict[int, str]:
        latest: dict[int, Execution] = {}
        for execution in self._executions():
            if execution.pipeline is not pipeline:
                continue
            known = latest.get(execution.version.version_id)
            if known is None or execution.creation_time >= known.creation_time:
                latest[execution.version.version_id] = execution
        return {version_id: execution.arn for version_id, execution in latest.items()}


def _version_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValidationException(f"PipelineVersionId must be a number (got {value!r}).") from exc
