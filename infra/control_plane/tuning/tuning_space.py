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
from typing import TYPE_CHECKING, Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.tuning.tuning_request import CategoricalParameterRange, NumericParameterRange, ParameterRanges

# optuna (~15 MB) is imported only when a search needs its distributions, not by the idle stack
# (docs/tuning.md#strategies-and-how-the-search-works)
if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

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
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

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


def parse_space(ranges: ParameterRanges | None) -> SearchSpace:
    """Parse a ``ParameterRanges`` value; raises ``ValidationException`` with the reason AWS gives."""
    source = ranges or ParameterRanges()
    parsed: list[ParameterRange] = [
        *(_numeric(r, ParameterKind.INTEGER) for r in source.integer_parameter_ranges),
        *(_numeric(r, ParameterKind.CONTINUOUS) for r in source.continuous_parameter_ranges),
        *(_categorical(r) for r in source.categorical_parameter_ranges),
    ]
    names = [p.name for p in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationException(f"The hyperparameter(s) {', '.join(duplicates)} are defined in more than one range.")
    return SearchSpace(tuple(parsed))


def _categorical(raw: CategoricalParameterRange) -> ParameterRange:
    values = raw.values
    if len(set(values)) != len(values):
        raise ValidationException(f"The values of categorical hyperparameter {raw.name} must be unique.")
    return ParameterRange(name=raw.name, kind=ParameterKind.CATEGORICAL, values=values)


def _numeric(raw: NumericParameterRange, kind: ParameterKind) -> ParameterRange:
    name = raw.name
    low, high = _number(raw, raw.min_value, "MinValue", kind), _number(raw, raw.max_value, "MaxValue", kind)
    if low > high:
        raise ValidationException(
            f"The MinValue {raw.min_value} of hyperparameter {name} must be less than or equal to its "
            f"MaxValue {raw.max_value}."
        )
    scaling = _resolve_scaling(ScalingType(raw.scaling_type or ScalingType.AUTO.value), low, high)
    if scaling is ScalingType.LOGARITHMIC and low <= 0:
        raise ValidationException(
            f"Logarithmic scaling of hyperparameter {name} requires a MinValue greater than 0, got {raw.min_value}."
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


def _number(raw: NumericParameterRange, sent: str, key: str, kind: ParameterKind) -> float:
    text = sent.strip()
    try:
        value = int(text) if kind is ParameterKind.INTEGER else float(text)
    except ValueError as exc:
        expected = "an integer" if kind is ParameterKind.INTEGER else "a number"
        raise ValidationException(f"The {key} '{text}' of hyperparameter {raw.name} is not {expected}.") from exc
    if not math.isfinite(value):
        raise ValidationException(f"The {key} of hyperparameter {raw.name} must be finite.")
    return float(value)


def _resolve_scaling(scaling: ScalingType, low: float, high: float) -> ScalingType:
    if scaling is not ScalingType.AUTO:
        return scaling
    if low > 0 and high / low >= _AUTO_LOG_RATIO:
        return ScalingType.LOGARITHMIC
    return ScalingType.LINEAR


def range_names(ranges: ParameterRanges | None) -> list[str]:
    source = ranges or ParameterRanges()
    groups = (source.integer_parameter_ranges, source.continuous_parameter_ranges, source.categorical_parameter_ranges)
    return [r.name for group in groups for r in group]


def has_numeric_ranges(ranges: ParameterRanges | None) -> bool:
    return ranges is not None and bool(ranges.integer_parameter_ranges or ranges.continuous_parameter_ranges)
