"""Request validation against botocore's service model, with AWS-style messages.

botocore's ``ParamValidator`` checks types and required members; it does not check ``pattern``, ``max`` length
or enums, which the service does. Both reports are folded into one ``ValidationException``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.utils import parse_timestamp
from botocore.validate import ParamValidator

from infra.control_plane.core.errors import ValidationException

logger = logging.getLogger(__name__)
_MAX_REPORTED = 10
MAX_NESTING = 64  # deeper than any SageMaker input shape; a request nested deeper is refused before it is walked
# Epoch seconds a timestamp may hold: year 1 to year 9999, what Python's datetime (and AWS) can represent.
_EARLIEST_EPOCH, _LATEST_EPOCH = -62135596800, 253402300799


def validate_request(params: Mapping[str, Any], shape: StructureShape | None) -> None:
    """Raise ``ValidationException`` when ``params`` break the input shape's constraints."""
    check_nesting(params)
    if shape is None:
        return
    problems = list(_check_structure(params, shape, ""))
    try:
        type_report = ParamValidator().validate(dict(params), shape)
    except (ArithmeticError, RuntimeError, ValueError, OSError) as exc:  # botocore parsing an out-of-range timestamp
        if not problems:
            raise ValidationException(f"1 validation error detected: {exc}") from exc
    else:
        if type_report.has_errors():
            raise ValidationException(_type_message(type_report.generate_report()))
    if problems:
        raise ValidationException(format_problems(problems))


def check_nesting(value: object, limit: int = MAX_NESTING) -> None:
    """Refuse a document nested deeper than ``limit`` (walked without recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, Mapping | list):
                if depth + 1 > limit:
                    raise ValidationException(f"Request is nested deeper than {limit} levels.")
                pending.append((child, depth + 1))


def format_problems(problems: list[str]) -> str:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(problems[:_MAX_REPORTED])


def _type_message(report: str) -> str:
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    return "; ".join(line for line in lines if not line.startswith("Parameter validation failed"))


def _member_path(prefix: str, name: str) -> str:
    camel = name[:1].lower() + name[1:]
    return f"{prefix}.{camel}" if prefix else camel


def _check_structure(value: Mapping[str, Any], shape: StructureShape, prefix: str) -> Iterator[str]:
    for name in shape.required_members:
        if value.get(name) is None:
            yield f"Value null at '{_member_path(prefix, name)}' failed to satisfy constraint: Member must not be null"
    for name, member in shape.members.items():
        if name in value and value[name] is not None:
            yield from _check_value(value[name], member, _member_path(prefix, name))


def _check_value(value: Any, shape: Shape, path: str) -> Iterator[str]:
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        yield from _check_structure(value, shape, path)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        yield from _check_length(value, shape, path, len(value))
        for index, item in enumerate(value, start=1):
            yield from _check_value(item, shape.member, f"{path}.{index}.member")
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        yield from _check_length(value, shape, path, len(value))
        for key, item in value.items():
            yield from _check_value(key, shape.key, f"{path}.key")
            yield from _check_value(item, shape.value, f"{path}.{key}.member")
    elif shape.type_name == "string" and isinstance(value, str):
        yield from _check_string(value, shape, path)
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, int | float):
        yield from _check_range(value, shape, path)
    elif shape.type_name == "timestamp":
        yield from _check_timestamp(value, path)


def _check_timestamp(value: object, path: str) -> Iterator[str]:
    """Epoch seconds or a date string that a datetime can hold (botocore fails on others with a RuntimeError)."""
    problem = f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a valid timestamp"
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if not math.isfinite(value) or not _EARLIEST_EPOCH <= value <= _LATEST_EPOCH:
            yield problem
    elif isinstance(value, str):
        try:
            parse_timestamp(value)
        except (ArithmeticError, RuntimeError, ValueError, OSError, TypeError):
            yield problem


def _check_length(value: object, shape: Shape, path: str, length: int) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    prefix = f"Value {_show(value)} at '{path}' failed to satisfy constraint: Member must have length"
    if low is not None and length < low:
        yield f"{prefix} greater than or equal to {low}"
    if high is not None and length > high:
        yield f"{prefix} less than or equal to {high}"


def _check_string(value: str, shape: Shape, path: str) -> Iterator[str]:
    yield from _check_length(value, shape, path, len(value))
    if "\x00" in value:  # no path, argument, variable or name can hold it (docs/security.md)
        yield f"Value at '{path}' failed to satisfy constraint: Member must not contain the NUL character"
        return
    if shape.enum and value not in shape.enum:
        allowed = "[" + ", ".join(shape.enum) + "]"
        yield f"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: {allowed}"
        return
    pattern = shape.metadata.get("pattern")
    compiled = _compile(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        yield (
            f"Value '{value}' at '{path}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {pattern}"
        )


def _check_range(value: float, shape: Shape, path: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    prefix = f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value"
    if low is not None and value < low:
        yield f"{prefix} greater than or equal to {low}"
    if high is not None and value > high:
        yield f"{prefix} less than or equal to {high}"


def _show(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


@lru_cache(maxsize=2048)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """Compile an AWS (Java) pattern; patterns Python cannot read (``\\p{...}`` classes) are not checked."""
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        logger.debug("pattern not checked (not a Python regex): %s", pattern)
        return None
