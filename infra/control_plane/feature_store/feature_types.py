"""Feature types as Feature Store defines them: values on the wire, in Parquet and in the Glue catalog.

See docs/feature-store.md ("Records and the online store"): every value travels as a string (``ValueAsString``) or
a list of strings (``ValueAsStringList``, collection features); Integral is a 64-bit integer, Fractional a double,
and the event time is Fractional epoch seconds or an ISO-8601 UTC string (``yyyy-MM-dd'T'HH:mm:ss[.SSS]Z``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyarrow as pa


class FeatureType(StrEnum):
    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"


class BadFeatureValue(ValueError):
    """A value that does not fit its feature's type."""


_INT64 = (-(2**63), 2**63 - 1)
_ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_GLUE_TYPES = {FeatureType.INTEGRAL: "bigint", FeatureType.FRACTIONAL: "double", FeatureType.STRING: "string"}
_ARROW_TYPES = {FeatureType.INTEGRAL: pa.int64(), FeatureType.FRACTIONAL: pa.float64(), FeatureType.STRING: pa.string()}


@dataclass(frozen=True)
class FeatureSpec:
    """One feature definition of a group."""

    name: str
    type: FeatureType
    collection: str | None = None  # List, Set or Vector

    @classmethod
    def from_api(cls, definition: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            name=str(definition["FeatureName"]),
            type=FeatureType(definition["FeatureType"]),
            collection=definition.get("CollectionType"),
        )

    @property
    def glue_type(self) -> str:
        scalar = _GLUE_TYPES[self.type]
        return f"array<{scalar}>" if self.collection else scalar

    @property
    def arrow_type(self) -> pa.DataType:
        scalar = _ARROW_TYPES[self.type]
        return pa.list_(scalar) if self.collection else scalar

    def parse(self, value: str) -> int | float | str:
        """The typed value of ``value``; raises :class:`BadFeatureValue`."""
        if self.type is FeatureType.STRING:
            return value
        if self.type is FeatureType.INTEGRAL:
            return parse_integral(self.name, value)
        return parse_fractional(self.name, value)

    def parse_list(self, values: Sequence[str]) -> list[int | float | str]:
        if self.collection == "Set" and len(set(values)) != len(values):
            raise BadFeatureValue(f"Feature {self.name} is a Set and cannot hold duplicate values.")
        return [self.parse(v) for v in values]


def parse_integral(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise BadFeatureValue(f"Value '{value}' of feature {name} is not an Integral (a 64-bit integer).") from exc
    if not _INT64[0] <= number <= _INT64[1]:
        raise BadFeatureValue(f"Value '{value}' of feature {name} is out of the Integral (64-bit) range.")
    return number


def parse_fractional(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError as exc:
        raise BadFeatureValue(f"Value '{value}' of feature {name} is not a Fractional (a double).") from exc
    if math.isnan(number) or math.isinf(number):
        raise BadFeatureValue(f"Value '{value}' of feature {name} is not a finite Fractional.")
    return number


def parse_event_time(spec: FeatureSpec, value: str) -> datetime:
    """The event time of a record: Fractional epoch seconds or an ISO-8601 UTC string."""
    if spec.type is FeatureType.FRACTIONAL:
        seconds = parse_fractional(spec.name, value)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise BadFeatureValue(f"Event time '{value}' of feature {spec.name} is out of range.") from exc
    if spec.type is FeatureType.STRING and _ISO_EVENT_TIME.match(value.strip()):
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    raise BadFeatureValue(f"Event time '{value}' of feature {spec.name} must be {_event_time_formats(spec.type)}.")


def _event_time_formats(kind: FeatureType) -> str:
    if kind is FeatureType.STRING:
        return "an ISO-8601 string in the format yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ"
    return "Fractional epoch seconds or an ISO-8601 String"
