"""``Get`` paths on step properties checked at CreatePipeline against the botocore shapes each step type exposes."""

from __future__ import annotations

from collections.abc import Mapping

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from infra.control_plane.pipeline_engine.definition import Definition, DefinitionError, StepType, iter_references
from infra.control_plane.pipeline_engine.expressions import ExpressionError, parse_path
from infra.control_plane.pipeline_engine.operations import service_model

# Step type -> the operations whose responses make up its properties document.
PROPERTY_SOURCES: Mapping[StepType, tuple[str, ...]] = {
    StepType.PROCESSING: ("DescribeProcessingJob",),
    StepType.TRAINING: ("DescribeTrainingJob",),
    StepType.TRANSFORM: ("DescribeTransformJob",),
    StepType.MODEL: ("DescribeModel",),
    StepType.REGISTER_MODEL: ("DescribeModelPackage",),
    StepType.ENDPOINT_CONFIG: ("DescribeEndpointConfig",),
    StepType.ENDPOINT: ("DescribeEndpoint",),
    StepType.TUNING: ("DescribeHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob"),
}

CHECK_PROPERTIES: Mapping[StepType, tuple[str, ...]] = {
    StepType.CLARIFY_CHECK: ("CalculatedBaselineConstraints", "BaselineUsedForDriftCheckConstraints"),
    StepType.QUALITY_CHECK: (
        "CalculatedBaselineStatistics",
        "CalculatedBaselineConstraints",
        "BaselineUsedForDriftCheckStatistics",
        "BaselineUsedForDriftCheckConstraints",
    ),
}


def check_property_references(definition: Definition) -> None:
    """Every ``Steps.X.<path>`` must be a path of X's properties; raise naming the referring step and the path."""
    for step in definition.steps.values():
        for reference in iter_references(step.expression_fields()):
            if not reference.startswith("Steps."):
                continue
            target_name, _, path = reference[len("Steps.") :].partition(".")
            target = definition.steps[target_name]
            if target.type is StepType.EMR:
                problem = _emr_problem(path)
            else:
                problem = _problem(definition, target_name, target.type, path)
            if problem:
                raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}}: {problem}.")


def _problem(definition: Definition, target: str, kind: StepType, path: str) -> str | None:
    if path.startswith("PropertyFiles."):
        name = path[len("PropertyFiles.") :]
        declared = {f.name: f for f in definition.steps[target].property_files}
        if kind is not StepType.PROCESSING:
            return f"property files exist only on Processing steps, {target} is a {kind.value} step"
        if name not in declared:
            return f"step {target} declares no property file {name!r}"
        outputs = (definition.steps[target].arguments.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        if declared[name].output_name not in {o.get("OutputName") for o in outputs}:
            return f"property file {name!r} names output {declared[name].output_name!r}, which {target} does not have"
        return None
    if kind is StepType.CONDITION:
        return None if path == "Outcome" else f"a Condition step only has the property Outcome, not {path!r}"
    if kind in (StepType.LAMBDA, StepType.CALLBACK):
        outputs = {str(o.get("OutputName")) for o in definition.steps[target].raw.get("OutputParameters") or []}
        if _output_name(path) not in outputs:
            return f"step {target} declares no output parameter for {path!r} (it declares {sorted(outputs)})"
        return None
    if kind in CHECK_PROPERTIES:
        allowed = CHECK_PROPERTIES[kind]
        return None if path in allowed else f"a {kind.value} step has the properties {list(allowed)}, not {path!r}"
    try:
        tokens = parse_path(path)
    except ExpressionError as exc:
        return str(exc)
    for operation in PROPERTY_SOURCES.get(kind, ()):
        shape = service_model().operation_model(operation).output_shape
        if shape is not None and _fits(tokens, shape):
            return None
    return f"{path!r} is not a property of a {kind.value} step"


def _emr_problem(path: str) -> str | None:
    """An EMR step's properties are EMR's ``DescribeStep`` ``Step`` plus ``ClusterId``."""
    try:
        tokens = parse_path(path)
    except ExpressionError as exc:
        return str(exc)
    if tokens == [("ClusterId", False)]:
        return None
    step_shape = botocore.session.get_session().get_service_model("emr").shape_for("Step")
    return None if _fits(tokens, step_shape) else f"{path!r} is not a property of an EMR step (EMR's Step)"


def _output_name(path: str) -> str | None:
    """``OutputParameters['name']`` -> ``name``."""
    try:
        tokens = parse_path(path)
    except ExpressionError:
        return None
    if len(tokens) == 2 and tokens[0][0] == "OutputParameters" and isinstance(tokens[1][0], str):
        return tokens[1][0]
    return None


def _fits(tokens: list[tuple[str | int, bool]], shape: Shape) -> bool:
    current: Shape = shape
    for token, _keyed in tokens:
        if isinstance(current, StructureShape) and isinstance(token, str) and token in current.members:
            current = current.members[token]
        elif isinstance(current, ListShape):
            current = current.member
        elif isinstance(current, MapShape) and isinstance(token, str):
            current = current.value
        else:
            return False
    return True
