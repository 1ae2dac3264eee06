"""A quick yes for a well-formed ``BatchPutMetrics`` request (docs/experiments.md#metrics).

The generic validator (``core/validation.py``) walks botocore's model twice per request (the model's constraints,
then botocore's type checks, which parse every timestamp through dateutil): about half a millisecond for 10 points,
more than the rest of the call. ``BatchPutMetrics`` is the call a client makes thousands of times in a row, so its
usual form is recognised here from the same model's constraints, in one pass over plain values. Anything this check
does not accept goes through the generic validator, which answers the refusal with AWS's message; so the check only
has to be strict (never say yes where the generic validator says no), not complete.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from botocore.model import ListShape, Shape, StructureShape

# Epoch seconds a timestamp may hold (year 1 to 9999), as the generic validator bounds them.
_EARLIEST_EPOCH, _LATEST_EPOCH = -62135596800, 253402300799


@dataclass(frozen=True)
class _Text:
    """A string member's constraints: length bounds and the model's pattern (matched whole, as the validator does)."""

    low: int
    high: int
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, shape: Shape) -> _Text:
        meta = shape.metadata
        return cls(int(meta.get("min", 0)), int(meta.get("max", 1 << 31)), re.compile(meta["pattern"], re.DOTALL))

    def accepts(self, value: object) -> bool:
        return (
            type(value) is str
            and self.low <= len(value) <= self.high
            and "\x00" not in value
            and self.pattern.fullmatch(value) is not None
        )


@dataclass(frozen=True)
class PutMetricsForm:
    """BatchPutMetrics' input shape, read once from botocore's model."""

    members: frozenset[str]
    component_name: _Text
    most_points: int
    point_members: frozenset[str]
    point_required: frozenset[str]
    metric_name: _Text
    lowest_step: int

    @classmethod
    def of(cls, shape: StructureShape) -> PutMetricsForm:
        data = shape.members["MetricData"]
        assert isinstance(data, ListShape) and isinstance(data.member, StructureShape)
        point = data.member
        return cls(
            members=frozenset(shape.members),
            component_name=_Text.of(shape.members["TrialComponentName"]),
            most_points=int(data.metadata["max"]),
            point_members=frozenset(point.members),
            point_required=frozenset(point.required_members),
            metric_name=_Text.of(point.members["MetricName"]),
            lowest_step=int(point.members["Step"].metadata.get("min", 0)),
        )

    def accepts(self, params: Mapping[str, Any]) -> bool:
        """True only for a request the generic validator accepts; False sends it there."""
        data = params.get("MetricData")
        return (
            params.keys() <= self.members
            and self.component_name.accepts(params.get("TrialComponentName"))
            and type(data) is list
            and 1 <= len(data) <= self.most_points
            and all(self._accepts_point(point) for point in data)
        )

    def _accepts_point(self, point: object) -> bool:
        if type(point) is not dict or not point.keys() <= self.point_members:
            return False
        if not self.point_required <= point.keys():
            return False
        step = point.get("Step", self.lowest_step)  # absent is fine; a null is botocore's type error
        return (
            self.metric_name.accepts(point["MetricName"])
            and _is_epoch(point["Timestamp"])
            and type(point["Value"]) in (float, int)
            and type(step) is int
            and step >= self.lowest_step
        )


def _is_epoch(value: object) -> bool:
    if type(value) not in (float, int):
        return False
    seconds = float(value)  # type: ignore[arg-type]
    return math.isfinite(seconds) and _EARLIEST_EPOCH <= seconds <= _LATEST_EPOCH


@lru_cache(maxsize=1)
def put_metrics_form(shape: StructureShape) -> PutMetricsForm:
    return PutMetricsForm.of(shape)
