"""The typed CreatePipeline, UpdatePipeline and StartPipelineExecution requests (parsed once by ``Pipelines``).

Only the request envelope is typed here (see docs/decisions.md, "Typed requests"); the pipeline definition document
is parsed by :mod:`definition` into the engine's own structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.control_plane.core.api_shapes import ApiShape
from infra.control_plane.core.errors import ValidationException
from infra.control_plane.pipeline_engine.definition import Definition, DefinitionError


class ParallelismConfiguration(ApiShape):
    max_parallel_execution_steps: int


class PipelineDefinitionS3Location(ApiShape):
    bucket: str
    object_key: str
    version_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.object_key}"


class UpdatePipelineRequest(ApiShape):
    """UpdatePipeline: every member but the name is optional (``None`` leaves the pipeline's value)."""

    pipeline_name: str
    role_arn: str | None = None
    pipeline_display_name: str | None = None
    pipeline_description: str | None = None
    pipeline_definition: str | None = None
    pipeline_definition_s3_location: PipelineDefinitionS3Location | None = None
    parallelism_configuration: ParallelismConfiguration | None = None


class CreatePipelineRequest(UpdatePipelineRequest):
    role_arn: str
    client_request_token: str | None = None


class PipelineParameter(ApiShape):
    name: str
    value: str


class SelectedStep(ApiShape):
    step_name: str


class SelectiveExecutionConfig(ApiShape):
    """Run only ``SelectedSteps``, reusing the source execution's results for the rest.

    See docs/pipelines.md#selective-execution.
    """

    selected_steps: tuple[SelectedStep, ...]
    source_pipeline_execution_arn: str | None = None


class StartPipelineExecutionRequest(ApiShape):
    pipeline_name: str
    pipeline_version_id: int | None = None
    selective_execution_config: SelectiveExecutionConfig | None = None
    pipeline_parameters: tuple[PipelineParameter, ...] = ()
    pipeline_execution_display_name: str | None = None
    pipeline_execution_description: str | None = None
    parallelism_configuration: ParallelismConfiguration | None = None
    client_request_token: str | None = None


def resolve_parameters(definition: Definition, supplied: Sequence[PipelineParameter]) -> dict[str, Any]:
    """The execution's parameter values: the supplied ones coerced to their declared types, defaults for the rest."""
    values: dict[str, Any] = {}
    for item in supplied:
        name = item.name
        parameter = definition.parameters.get(name)
        if parameter is None:
            raise ValidationException(f"Parameter {name} is not declared by the pipeline definition.")
        try:
            values[name] = parameter.coerce(item.value)
        except DefinitionError as exc:
            raise ValidationException(str(exc)) from exc
    for name, parameter in definition.parameters.items():
        if name not in values:
            if parameter.default is None:
                raise ValidationException(f"Parameter {name} has no default value and must be supplied at start.")
            values[name] = parameter.default
    return values


def parameter_text(value: Any) -> str:
    """A parameter value as the API lists it (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
