"""The search space of a tuning job: parameter ranges, their scaling, sampling, grid enumeration and value strings.

Every range maps values to a *search coordinate* (what a sampler works on) and back to the string a training job
receives. Scaling follows docs/tuning.md#strategies-and-how-the-search-works: Linear is uniform, Logarithmic is uniform
in ``ln x``, ReverseLogarithmic is
uniform in ``ln(1 - x)`` (samples crowd towards 1), Auto is Logarithmic when ``min > 0`` and ``max / min >= 100``.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from infra.control_plane.core.errors import ValidationException

_AUTO_LOG_RATIO = 100.0


class ScalingType(str, enum.Enum):
    AUTO = "Auto"
    LINEAR = "Linear"
    LOGARITHMIC = "Logarithmic"
    REVERSE_LOGARITHMIC = "ReverseLogarithmic"


class ParameterKind(str, enum.Enum):
    INTEGER = "Integer"
    CONTINUOUS = "Continuous"
    CATEGORICAL = "Categorical"


_LIST_KEYS = {
    ParameterKind.INTEGER: "IntegerParameterRanges",
    ParameterKind.CONTINUOUS: "ContinuousParameterRanges",
    ParameterKind.CATEGORICAL: "CategoricalParameterRanges",
}


@dataclass(frozen=True)
class ParameterRange:
    """One tunable hyperparameter with its scaling already resolved (never ``Auto``)."""

    name: str
    kind: ParameterKind
    low: float = 0.0
    high: float = 0.0
    scaling: ScalingType = ScalingType.LINEAR
    values: tuple[str, ...] = ()

    def distribution(self) -> BaseDistribution:
        """The optuna distribution over this range's search coordinate."""
        if self.kind is ParameterKind.CATEGORICAL:
            return CategoricalDistribution(self.values)
        if self.kind is ParameterKind.INTEGER:
            return IntDistribution(int(self.low), int(self.high), log=self.scaling is ScalingType.LOGARITHMIC)
        if self.scaling is ScalingType.REVERSE_LOGARITHMIC:
            return FloatDistribution(1.0 - self.high, 1.0 - self.low, log=True)
        return FloatDistribution(self.low, self.high, log=self.scaling is ScalingType.LOGARITHMIC)

    def from_unit(self, unit: float) -> Any:
        """The search coordinate at quantile ``unit`` in [0, 1) of the scaled range (random search)."""
        if self.kind is ParameterKind.CATEGORICAL:
            return self.values[min(int(unit * len(self.values)), len(self.values) - 1)]
        high = self.high + 1.0 if self.kind is ParameterKind.INTEGER else self.high
        if self.scaling is ScalingType.LOGARITHMIC:
            value = math.exp(math.log(self.low) + unit * (math.log(high) - math.log(self.low)))
        elif self.scaling is ScalingType.REVERSE_LOGARITHMIC:
            low_t, high_t = math.log(1.0 - self.high), math.log(1.0 - self.low)
            return math.exp(low_t + unit * (high_t - low_t))
        else:
            value = self.low + unit * (high - self.low)
        if self.kind is ParameterKind.INTEGER:
            return int(min(max(math.floor(value), self.low), self.high))
        return min(max(value, self.low), self.high)

    def to_string(self, coordinate: Any) -> str:
        """The hyperparameter string a training job receives for a search coordinate."""
        if self.kind is ParameterKind.CATEGORICAL:
            return str(coordinate)
        if self.kind is ParameterKind.INTEGER:
            return str(int(coordinate))
        value = 1.0 - float(coordinate) if self.scaling is ScalingType.REVERSE_LOGARITHMIC else float(coordinate)
        return repr(min(max(value, self.low), self.high))

    def to_coordinate(self, text: str) -> Any | None:
        """The search coordinate of a value string (warm start), or ``None`` when it lies outside the range."""
        if self.kind is ParameterKind.CATEGORICAL:
            return text if text in self.values else None
        try:
            value = float(text)
        except ValueError:
            return None
        if not self.low <= value <= self.high:
            return None
        if self.kind is ParameterKind.INTEGER:
            return int(value)
        return 1.0 - value if self.scaling is ScalingType.REVERSE_LOGARITHMIC else value


@dataclass(frozen=True)
class SearchSpace:
    ranges: tuple[ParameterRange, ...]

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.ranges]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {r.name: r.distribution() for r in self.ranges}

    def to_strings(self, coordinates: Mapping[str, Any]) -> dict[str, str]:
        return {r.name: r.to_string(coordinates[r.name]) for r in self.ranges}

    def to_coordinates(self, strings: Mapping[str, str]) -> dict[str, Any] | None:
        """Coordinates of a previous job's values, or ``None`` when any value is missing or out of range."""
        out: dict[str, Any] = {}
        for parameter in self.ranges:
            raw = strings.get(parameter.name)
            coordinate = parameter.to_coordinate(_unquote(raw)) if raw is not None else None
            if coordinate is None:
                return None
            out[parameter.name] = coordinate
        return out

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination of the (categorical) values, first range varying slowest."""
        names = self.names
        for combination in itertools.product(*(r.values for r in self.ranges)):
            yield dict(zip(names, combination, strict=True))

    def grid_size(self) -> int:
        return math.prod(len(r.values) for r in self.ranges) if self.ranges else 0


def _unquote(text: str) -> str:
    """The SDK JSON-encodes categorical values (``'"hist"'``); compare them without the quotes."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def parse_space(ranges: Mapping[str, Any] | None) -> SearchSpace:
    """Parse a ``ParameterRanges`` structure; raises ``ValidationException`` with the reason AWS gives."""
    parsed: list[ParameterRange] = []
    for kind, key in _LIST_KEYS.items():
        for raw in (ranges or {}).get(key) or []:
            parsed.append(_categorical(raw) if kind is ParameterKind.CATEGORICAL else _numeric(raw, kind))
    names = [p.name for p in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationException(f"The hyperparameter(s) {', '.join(duplicates)} are defined in more than one range.")
    return SearchSpace(tuple(parsed))


def _categorical(raw: Mapping[str, Any]) -> ParameterRange:
    values = tuple(str(v) for v in raw.get("Values") or [])
    if len(set(values)) != len(values):
        raise ValidationException(f"The values of categorical hyperparameter {raw['Name']} must be unique.")
    return ParameterRange(name=str(raw["Name"]), kind=ParameterKind.CATEGORICAL, values=values)


def _numeric(raw: Mapping[str, Any], kind: ParameterKind) -> ParameterRange:
    name = str(raw["Name"])
    low, high = _number(raw, "MinValue", kind), _number(raw, "MaxValue", kind)
    if low > high:
        raise ValidationException(
            f"The MinValue {raw['MinValue']} of hyperparameter {name} must be less than or equal to its "
            f"MaxValue {raw['MaxValue']}."
        )
    scaling = _resolve_scaling(ScalingType(raw.get("ScalingType") or ScalingType.AUTO.value), low, high)
    if scaling is ScalingType.LOGARITHMIC and low <= 0:
        raise ValidationException(
            f"Logarithmic scaling of hyperparameter {name} requires a MinValue greater than 0, got {raw['MinValue']}."
        )
    if scaling is ScalingType.REVERSE_LOGARITHMIC:
        if kind is ParameterKind.INTEGER:
            raise ValidationException(
                f"ReverseLogarithmic scaling is only valid for continuous hyperparameters, not for {name}."
            )
        if not 0 <= low < high < 1:
            raise ValidationException(
                f"ReverseLogarithmic scaling of hyperparameter {name} requires 0 <= MinValue < MaxValue < 1."
            )
    return ParameterRange(name=name, kind=kind, low=low, high=high, scaling=scaling)


def _number(raw: Mapping[str, Any], key: str, kind: ParameterKind) -> float:
    text = str(raw[key]).strip()
    try:
        value = int(text) if kind is ParameterKind.INTEGER else float(text)
    except ValueError as exc:
        expected = "an integer" if kind is ParameterKind.INTEGER else "a number"
        raise ValidationException(f"The {key} '{text}' of hyperparameter {raw['Name']} is not {expected}.") from exc
    if not math.isfinite(value):
        raise ValidationException(f"The {key} of hyperparameter {raw['Name']} must be finite.")
    return float(value)


def _resolve_scaling(scaling: ScalingType, low: float, high: float) -> ScalingType:
    if scaling is not ScalingType.AUTO:
        return scaling
    if low > 0 and high / low >= _AUTO_LOG_RATIO:
        return ScalingType.LOGARITHMIC
    return ScalingType.LINEAR


def range_names(ranges: Mapping[str, Any] | None) -> list[str]:
    return [str(r["Name"]) for key in _LIST_KEYS.values() for r in (ranges or {}).get(key) or []]


def has_numeric_ranges(ranges: Mapping[str, Any] | None) -> bool:
    source = ranges or {}
    return bool(source.get("IntegerParameterRanges") or source.get("ContinuousParameterRanges"))
