"""Selective execution: StartPipelineExecution with ``SelectiveExecutionConfig`` runs only the selected steps.

The steps that are not selected are not run: those that Succeeded in the source execution are listed again with
their results (properties, metadata, times) and ``SelectiveExecutionResult``, so the selected steps' expressions
read them as if they had run in this execution. Validation follows AWS (docs/pipelines.md#selective-execution).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.pipeline_engine.definition import Definition
from infra.control_plane.pipeline_engine.pipeline_requests import SelectiveExecutionConfig
from infra.control_plane.pipeline_engine.resources import Execution, ExecutionStatus, StepRecord, StepStatus

MAX_SELECTED_STEPS = 50
_SOURCE_STATUSES = (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)


def selective_start(
    definition: Definition,
    config: SelectiveExecutionConfig | None,
    pipeline_arn: str,
    find_execution: Callable[[str], Execution],
) -> tuple[tuple[str, ...], dict[str, StepRecord]]:
    """The steps a new execution runs (empty: all) and the source's step records it starts with."""
    if config is None:
        return (), {}
    chosen = selected_steps(definition, config)
    arn = config.source_pipeline_execution_arn
    source = find_execution(arn) if arn else None
    return chosen, reused_records(definition, chosen, source, pipeline_arn)


def selected_steps(definition: Definition, config: SelectiveExecutionConfig) -> tuple[str, ...]:
    """The selected step names, checked against the definition: known, unique, 1..50, every path between two
    selected steps selected too."""
    names = [s.step_name for s in config.selected_steps]
    if not 1 <= len(names) <= MAX_SELECTED_STEPS:
        raise ValidationException(
            f"SelectiveExecutionConfig.SelectedSteps must have between 1 and {MAX_SELECTED_STEPS} steps "
            f"(got {len(names)})."
        )
    unknown = sorted({n for n in names if n not in definition.steps})
    if unknown:
        raise ValidationException(f"Selected steps {unknown} are not in the pipeline definition.")
    if len(set(names)) != len(names):
        raise ValidationException(f"SelectiveExecutionConfig.SelectedSteps names a step twice: {names}.")
    chosen = frozenset(names)
    downstream = _downstream_closure(definition)
    for name in sorted(chosen):
        # a step on a path between two selected steps: downstream of one selected step and upstream of another
        between = {
            step
            for step in downstream[name]
            if step not in chosen and any(other in downstream[step] for other in chosen)
        }
        if between:
            raise ValidationException(
                f"Selected steps must include every step on the paths between them: {sorted(between)} "
                f"lie between {name} and another selected step."
            )
    return tuple(n for n in definition.order if n in chosen)


def reused_records(
    definition: Definition, chosen: tuple[str, ...], source: Execution | None, pipeline_arn: str
) -> dict[str, StepRecord]:
    """The source execution's Succeeded steps that are not selected (copied, marked as reused), after checking
    that every step a selected step depends on is among them."""
    needed = sorted({up for name in chosen for up in definition.upstream[name] if up not in chosen})
    if source is None:
        if needed:
            raise ValidationException(
                f"SourcePipelineExecutionArn is required: the selected steps depend on steps that are not "
                f"selected ({', '.join(needed)})."
            )
        return {}
    if source.pipeline.arn != pipeline_arn:
        raise ValidationException(
            f"Source pipeline execution {source.arn} belongs to another pipeline ({source.pipeline.name})."
        )
    if source.status not in _SOURCE_STATUSES:
        raise ValidationException(
            f"Source pipeline execution {source.arn} is {source.status.value}; "
            "it must be Succeeded or Failed to be the source of a selective execution."
        )
    with source.lock:
        succeeded = {
            name: record
            for name, record in source.steps.items()
            if record.status is StepStatus.SUCCEEDED and name not in chosen and name in definition.steps
        }
    missing = [name for name in needed if name not in succeeded]
    if missing:
        raise ValidationException(
            f"The selected steps depend on steps that did not succeed in source pipeline execution {source.arn}: "
            f"{', '.join(missing)}."
        )
    for name in chosen:
        _check_branch(definition.steps[name].branch_of, chosen, succeeded, name)
    return {name: _reused(record, source.arn) for name, record in succeeded.items()}


def _check_branch(
    branch_of: tuple[str, bool] | None, chosen: tuple[str, ...], reused: Mapping[str, StepRecord], name: str
) -> None:
    """A selected step in a condition's branch runs only if the reused condition took that branch."""
    if branch_of is None or branch_of[0] in chosen:
        return
    condition, side = branch_of
    outcome = (reused[condition].properties or {}).get("Outcome")
    if outcome is not None and bool(outcome) is not side:
        raise ValidationException(
            f"Step {name} is in the {'If' if side else 'Else'} branch of {condition}, which evaluated to "
            f"{bool(outcome)} in the source pipeline execution; select {condition} too to evaluate it again."
        )


def _reused(record: StepRecord, source_arn: str) -> StepRecord:
    return dataclasses.replace(
        record,
        metadata=dict(record.metadata),
        properties=dict(record.properties) if record.properties is not None else None,
        selective_source=source_arn,
    )


def _downstream_closure(definition: Definition) -> Mapping[str, frozenset[str]]:
    """Every step's transitive downstream steps."""
    below: dict[str, set[str]] = {name: set() for name in definition.steps}
    for name in reversed(definition.order):
        for up in definition.upstream[name]:
            below[up] |= {name} | below[name]
    return {name: frozenset(steps) for name, steps in below.items()}
