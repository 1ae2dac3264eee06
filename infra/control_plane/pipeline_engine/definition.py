"""The pipeline definition (JSON version ``2020-12-01``) as plain data, with its wiring checked when it is built.

No boto3, no executor and no control-plane state here (kedro's rule): :func:`parse_definition` turns the JSON text
into frozen dataclasses and a dependency graph, and raises :class:`DefinitionError` naming the step and the path for
anything it cannot wire (unknown step or parameter, cycles, nested conditions, bad ``DependsOn``).
"""

from __future__ import annotations

import enum
import graphlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

VERSION = "2020-12-01"
STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
EXECUTION_VARIABLES = frozenset(
    {
        "StartDateTime",
        "CurrentDateTime",
        "PipelineName",
        "PipelineArn",
        "PipelineExecutionId",
        "PipelineExecutionArn",
        "TrainingJobName",
        "ProcessingJobName",
    }
)

# Step-level keys of ClarifyCheck / QualityCheck steps (docs/pipelines.md#check-steps); any of them may be an
# expression.
CHECK_FIELDS = (
    "CheckType",
    "ModelPackageGroupName",
    "SkipCheck",
    "FailOnViolation",
    "RegisterNewBaseline",
    "SuppliedBaselineConstraints",
    "SuppliedBaselineStatistics",
    "ModelName",
)


class DefinitionError(ValueError):
    """The definition cannot be run; the message names the step and the path at fault."""


class StepType(str, enum.Enum):
    PROCESSING = "Processing"
    TRAINING = "Training"
    TUNING = "Tuning"
    TRANSFORM = "Transform"
    MODEL = "Model"
    REGISTER_MODEL = "RegisterModel"
    CONDITION = "Condition"
    FAIL = "Fail"
    LAMBDA = "Lambda"
    CALLBACK = "Callback"
    CLARIFY_CHECK = "ClarifyCheck"
    QUALITY_CHECK = "QualityCheck"
    EMR = "EMR"
    AUTO_ML = "AutoML"
    ENDPOINT_CONFIG = "EndpointConfig"
    ENDPOINT = "Endpoint"


class ParameterType(str, enum.Enum):
    STRING = "String"
    INTEGER = "Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParameterType
    default: Any = None
    enum_values: tuple[str, ...] = ()

    def coerce(self, raw: Any) -> Any:
        """Convert a start value (a string on the wire) or a default to the declared type."""
        try:
            value = _coerce(self.type, raw)
        except (TypeError, ValueError) as exc:
            raise DefinitionError(f"Parameter {self.name}: value {raw!r} is not a valid {self.type.value}.") from exc
        if self.enum_values and value not in self.enum_values:
            raise DefinitionError(f"Parameter {self.name}: value {value!r} is not one of {list(self.enum_values)}.")
        return value


def _coerce(kind: ParameterType, raw: Any) -> Any:
    if kind is ParameterType.STRING:
        return str(raw)
    if kind is ParameterType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if isinstance(raw, bool):
        raise TypeError("booleans are not numbers here")
    if kind is ParameterType.INTEGER:
        number = float(raw)
        if not number.is_integer():
            raise ValueError(raw)
        return int(number)
    return float(raw)


@dataclass(frozen=True)
class PropertyFile:
    name: str
    output_name: str
    file_path: str


@dataclass(frozen=True)
class Step:
    """One step of the graph; branch steps of a Condition are promoted into the graph like any other."""

    name: str
    type: StepType
    arguments: Any
    raw: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    display_name: str | None = None
    description: str | None = None
    property_files: tuple[PropertyFile, ...] = ()
    branch_of: tuple[str, bool] | None = None  # (condition step, True for IfSteps)

    def expression_fields(self) -> Any:
        """Everything that may hold expressions (a Condition's branches are separate steps)."""
        if self.type is StepType.CONDITION:
            return {"Conditions": (self.arguments or {}).get("Conditions", [])}
        extra = {
            key: self.raw[key]
            for key in ("ErrorMessage", "FunctionArn", "SqsQueueUrl", *CHECK_FIELDS)
            if key in self.raw
        }
        return {"Arguments": self.arguments, **extra}

    def check_fields(self) -> dict[str, Any]:
        """The step-level keys of a ClarifyCheck/QualityCheck step (they may hold expressions)."""
        return {key: self.raw[key] for key in CHECK_FIELDS if key in self.raw}


@dataclass(frozen=True)
class Definition:
    parameters: Mapping[str, Parameter]
    steps: Mapping[str, Step]  # definition order, branch steps after their condition
    upstream: Mapping[str, frozenset[str]]
    experiment_config: Any = None
    order: tuple[str, ...] = field(default=())

    def downstream_of(self, names: set[str]) -> set[str]:
        """Every step reachable from ``names`` (inclusive)."""
        found = set(names)
        changed = True
        while changed:
            changed = False
            for step, ups in self.upstream.items():
                if step not in found and ups & found:
                    found.add(step)
                    changed = True
        return found


def parse_definition(text: str) -> Definition:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise DefinitionError(f"PipelineDefinition is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise DefinitionError("PipelineDefinition must be a JSON object.")
    version = document.get("Version", VERSION)
    if version != VERSION:
        raise DefinitionError(f"PipelineDefinition Version {version!r} is not supported; use {VERSION!r}.")
    if not isinstance(document.get("Steps"), list):
        raise DefinitionError("PipelineDefinition must have a Steps list.")
    parameters = _parameters(document.get("Parameters") or [])
    steps = _steps(document["Steps"])
    upstream = _upstream(steps, parameters)
    order = _topological(upstream)
    return Definition(parameters, steps, upstream, document.get("PipelineExperimentConfig"), order)


def _parameters(raw: list[Any]) -> dict[str, Parameter]:
    parameters: dict[str, Parameter] = {}
    for item in raw:
        name = str(item.get("Name", ""))
        if not PARAMETER_NAME.match(name):
            raise DefinitionError(f"Parameter name {name!r} must match {PARAMETER_NAME.pattern}.")
        if name in parameters:
            raise DefinitionError(f"Parameter {name} is declared twice.")
        try:
            kind = ParameterType(item.get("Type", "String"))
        except ValueError as exc:
            raise DefinitionError(
                f"Parameter {name}: Type {item.get('Type')!r} is not String|Integer|Float|Boolean."
            ) from exc
        parameter = Parameter(name, kind, None, tuple(item.get("EnumValues") or ()))
        if item.get("DefaultValue") is not None:
            parameter = Parameter(name, kind, parameter.coerce(item["DefaultValue"]), parameter.enum_values)
        parameters[name] = parameter
    return parameters


def _steps(raw: list[Any]) -> dict[str, Step]:
    steps: dict[str, Step] = {}
    for item in raw:
        _add_step(steps, item, None)
    return steps


def _add_step(steps: dict[str, Step], item: Any, branch_of: tuple[str, bool] | None) -> None:
    if not isinstance(item, dict):
        raise DefinitionError("Every entry of Steps must be a JSON object.")
    name = str(item.get("Name", ""))
    if not STEP_NAME.match(name):
        raise DefinitionError(f"Step name {name!r} must match {STEP_NAME.pattern}.")
    if name in steps:
        raise DefinitionError(f"Step {name}: step names must be unique (it appears twice, or in two branches).")
    try:
        kind = StepType(item.get("Type"))
    except ValueError as exc:
        raise DefinitionError(f"Step {name}: unknown step Type {item.get('Type')!r}.") from exc
    depends = item.get("DependsOn") or []
    if not isinstance(depends, list):
        raise DefinitionError(f"Step {name}: DependsOn must be a list of step names.")
    files = tuple(
        PropertyFile(str(f["PropertyFileName"]), str(f["OutputName"]), str(f["FilePath"]))
        for f in item.get("PropertyFiles") or []
    )
    steps[name] = Step(
        name=name,
        type=kind,
        arguments=item.get("Arguments", {}),
        raw=item,
        depends_on=tuple(str(d) for d in depends),
        display_name=item.get("DisplayName"),
        description=item.get("Description"),
        property_files=files,
        branch_of=branch_of,
    )
    if kind is StepType.CONDITION:
        if branch_of is not None:
            raise DefinitionError(f"Step {name}: Condition steps cannot be nested inside another Condition's branch.")
        arguments = item.get("Arguments") or {}
        for key, outcome in (("IfSteps", True), ("ElseSteps", False)):
            for child in arguments.get(key) or []:
                _add_step(steps, child, (name, outcome))


def iter_references(value: Any) -> Iterator[str]:
    """Every ``Get`` string inside an expression tree (Join values, JsonGet property files and S3 URIs included)."""
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            yield value["Get"]
            return
        for item in value.values():
            yield from iter_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from iter_references(item)


def step_of_reference(reference: str) -> str | None:
    """``Steps.<name>.<path>`` -> ``<name>``."""
    if not reference.startswith("Steps."):
        return None
    match = re.match(r"Steps\.([A-Za-z0-9\-_]+)", reference)
    return match.group(1) if match else ""


def _upstream(steps: Mapping[str, Step], parameters: Mapping[str, Parameter]) -> dict[str, frozenset[str]]:
    upstream: dict[str, frozenset[str]] = {}
    for step in steps.values():
        ups = {_depends_target(steps, step, d) for d in step.depends_on}
        for reference in iter_references(step.expression_fields()):
            target = _reference_target(steps, parameters, step, reference)
            if target is not None:
                ups.add(target)
        if step.branch_of is not None:
            ups.add(step.branch_of[0])
        if step.name in ups:
            raise DefinitionError(f"Step {step.name}: a step cannot depend on itself.")
        upstream[step.name] = frozenset(ups)
    return upstream


def _depends_target(steps: Mapping[str, Step], step: Step, name: str) -> str:
    target = steps.get(name)
    if target is None:
        collection = [s for s in steps if s.startswith(name + "-")]
        if not collection:
            raise DefinitionError(f"Step {step.name}: DependsOn names unknown step {name!r}.")
        target = steps[collection[-1]]  # a step collection: its last step
    if target.type is StepType.FAIL:
        raise DefinitionError(f"Step {step.name}: DependsOn cannot name the Fail step {target.name}.")
    return target.name


def _reference_target(
    steps: Mapping[str, Step], parameters: Mapping[str, Parameter], step: Step, reference: str
) -> str | None:
    head, _, rest = reference.partition(".")
    if head == "Parameters":
        if rest not in parameters:
            raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}} names an undeclared parameter.")
        return None
    if head == "Execution":
        if rest not in EXECUTION_VARIABLES:
            raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}} is not an execution variable.")
        return None
    if head == "PipelineExperimentConfig" and rest in ("ExperimentName", "TrialName"):
        return None
    target = step_of_reference(reference)
    if target is None:
        raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}} is not a valid reference.")
    if target not in steps:
        raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}} names unknown step {target!r}.")
    if steps[target].type is StepType.FAIL:
        raise DefinitionError(f"Step {step.name}: {{'Get': {reference!r}}}: a Fail step cannot be referenced.")
    return target


def _topological(upstream: Mapping[str, frozenset[str]]) -> tuple[str, ...]:
    sorter = graphlib.TopologicalSorter(upstream)
    try:
        return tuple(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(str(node) for node in exc.args[1])
        raise DefinitionError(f"Cycle detected in pipeline step graph: {cycle}.") from exc


def is_notebook_job(step: Step) -> bool:
    """The SDK's NotebookJobStep compiles to a Training step whose container runs ``amazon_sagemaker_scheduler``."""
    if step.type is not StepType.TRAINING or not isinstance(step.arguments, Mapping):
        return False
    entrypoint = (step.arguments.get("AlgorithmSpecification") or {}).get("ContainerEntrypoint") or []
    tags = {str(t.get("Key")) for t in step.arguments.get("Tags") or [] if isinstance(t, Mapping)}
    return "amazon_sagemaker_scheduler" in entrypoint or "sagemaker:notebook-job-origin" in tags
