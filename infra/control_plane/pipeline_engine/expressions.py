"""Expressions (``Get``, ``Std:Join``, ``Std:JsonGet``) and conditions, resolved just before a step starts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.control_plane.pipeline_engine.definition import PropertyFile

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\[(?:'([^']*)'|\"([^\"]*)\")\]")
_LIST_KEYS = ("OutputName", "InputName", "MetricName", "Name", "ChannelName", "VariantName")


class ExpressionError(Exception):
    """An expression could not be resolved; the step fails with this message (not retried)."""


Token = str | int


def parse_path(path: str) -> list[tuple[Token, bool]]:
    """``.A[0]['k'].B`` -> ``[("A", False), (0, False), ("k", True), ("B", False)]`` (True: a string index)."""
    tokens: list[tuple[Token, bool]] = []
    position = 0
    text = path if path.startswith((".", "[")) else "." + path
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"invalid property path {path!r} at {text[position:]!r}")
        member, index, quoted, double = match.groups()
        if member is not None:
            tokens.append((member, False))
        elif index is not None:
            tokens.append((int(index), False))
        else:
            tokens.append((quoted if quoted is not None else double, True))
        position = match.end()
    return tokens


def walk(document: Any, path: str) -> Any:
    """Evaluate a property path on a Describe* document (string index into a list selects by its name field)."""
    value = document
    for token, keyed in parse_path(path):
        value = _step_into(value, token, keyed, path)
    return value


def _step_into(value: Any, token: Token, keyed: bool, path: str) -> Any:
    if isinstance(value, Mapping) and isinstance(token, str):
        if token in value:
            return value[token]
    elif isinstance(value, list) and isinstance(token, int):
        if -len(value) <= token < len(value):
            return value[token]
    elif isinstance(value, list) and keyed:
        for item in value:
            if isinstance(item, Mapping) and any(item.get(key) == token for key in _LIST_KEYS):
                return item
    raise ExpressionError(f"property path {path!r}: {token!r} is not present")


@dataclass
class Scope:
    """What expressions see: typed parameters, execution variables, finished steps' properties and files."""

    parameters: Mapping[str, Any]
    variables: Mapping[str, Any]
    properties: Mapping[str, Any]
    property_files: Mapping[str, tuple[PropertyFile, ...]]
    read_s3: Callable[[str], bytes]
    experiment: Mapping[str, Any] = field(default_factory=dict)
    dynamic: Callable[[str], Any] | None = None  # CurrentDateTime, *JobName


def resolve(value: Any, scope: Scope) -> Any:
    """Resolve every expression inside ``value`` (dicts and lists are walked; primitives returned as they are)."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return _get(str(value["Get"]), scope)
        if set(value) == {"Std:Join"}:
            return _join(value["Std:Join"], scope)
        if set(value) == {"Std:JsonGet"}:
            return _json_get(value["Std:JsonGet"], scope)
        return {key: resolve(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    return value


def _get(reference: str, scope: Scope) -> Any:
    head, _, rest = reference.partition(".")
    if head == "Parameters":
        return scope.parameters[rest]
    if head == "Execution":
        dynamic = scope.dynamic(rest) if scope.dynamic is not None else None
        value = dynamic if dynamic is not None else scope.variables.get(rest)
        if value is None:
            raise ExpressionError(f"{{'Get': {reference!r}}} is undefined here")
        return value
    if head == "PipelineExperimentConfig":
        return scope.experiment.get(rest)
    step, _, path = rest.partition(".")
    if step not in scope.properties:
        raise ExpressionError(f"{{'Get': {reference!r}}}: step {step} has no properties (it did not succeed)")
    value = walk(scope.properties[step], path)
    if value is None:
        raise ExpressionError(f"{{'Get': {reference!r}}} is undefined")
    return value


def _join(spec: Mapping[str, Any], scope: Scope) -> str:
    separator = str(resolve(spec.get("On", ""), scope))
    return separator.join(_text(resolve(item, scope)) for item in spec.get("Values") or [])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_get(spec: Mapping[str, Any], scope: Scope) -> Any:
    path = str(resolve(spec.get("Path", ""), scope))
    uri = _json_get_uri(spec, scope)
    try:
        document = json.loads(scope.read_s3(uri))
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"Std:JsonGet could not read a JSON document at {uri}: {exc}") from exc
    try:
        return walk(document, path)
    except ExpressionError as exc:
        raise ExpressionError(f"Std:JsonGet: Invalid json path {path!r} in {uri}") from exc


def _json_get_uri(spec: Mapping[str, Any], scope: Scope) -> str:
    if "S3Uri" in spec:
        return str(resolve(spec["S3Uri"], scope))
    reference = str((spec.get("PropertyFile") or {}).get("Get", ""))
    match = re.fullmatch(r"Steps\.([A-Za-z0-9\-_]+)\.PropertyFiles\.([A-Za-z0-9\-_]+)", reference)
    if match is None:
        raise ExpressionError(f"Std:JsonGet PropertyFile {reference!r} is not Steps.<step>.PropertyFiles.<name>")
    step, name = match.groups()
    declared = {f.name: f for f in scope.property_files.get(step, ())}
    if name not in declared:
        raise ExpressionError(f"Std:JsonGet: step {step} declares no property file {name}")
    if step not in scope.properties:
        raise ExpressionError(f"Std:JsonGet: step {step} has no properties (it did not succeed)")
    output = declared[name].output_name
    base = walk(scope.properties[step], f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")
    return f"{str(base).rstrip('/')}/{declared[name].file_path}"


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "NotEquals": lambda a, b: bool(a != b),
    "GreaterThan": lambda a, b: bool(a > b),
    "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
    "LessThan": lambda a, b: bool(a < b),
    "LessThanOrEqualTo": lambda a, b: bool(a <= b),
}


def evaluate_condition(condition: Mapping[str, Any], scope: Scope) -> bool:
    """One condition (SDK and public-schema spellings both accepted, docs/pipelines.md#conditions)."""
    kind = condition.get("Type")
    if kind in _COMPARE:
        left, right = resolve(condition.get("LeftValue"), scope), resolve(condition.get("RightValue"), scope)
        left, right = _comparable(left, right)
        try:
            return _COMPARE[str(kind)](left, right)
        except TypeError as exc:
            raise ExpressionError(f"condition {kind}: cannot compare {left!r} with {right!r}") from exc
    if kind in ("In", "NotIn"):
        query = resolve(condition.get("QueryValue", condition.get("Value")), scope)
        values = [resolve(v, scope) for v in condition.get("Values", condition.get("In")) or []]
        found = any(_comparable(query, v)[0] == _comparable(query, v)[1] for v in values)
        return found if kind == "In" else not found
    if kind == "Not":
        return not evaluate_condition(condition.get("Condition") or {}, scope)
    if kind == "Or":
        return any(evaluate_condition(c, scope) for c in condition.get("Conditions") or [])
    raise ExpressionError(f"unknown condition Type {kind!r}")


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers even when one side came from a JSON string (metrics often do)."""
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, str):
        return left, _number(right)
    if isinstance(right, numbers) and isinstance(left, str):
        return _number(left), right
    return left, right


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text
