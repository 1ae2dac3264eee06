"""Declarative hyperparameter specs, used to validate input and to describe the algorithm.

Each algorithm declares its hyperparameters once (type, range, default, required, tunable). ``HyperparameterSpec
.validate`` turns the raw ``hyperparameters.json`` strings into typed values with messages that name the parameter,
the value and the allowed range. Values are accepted in the plain form SageMaker writes (``0.2``, ``binary:logistic``)
and in the JSON-encoded form framework estimators send (``"\\"binary:logistic\\""``); booleans in any case.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from containers.toolkit.errors import UserError


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``None`` bounds are unbounded. ``str()`` gives ``[1, inf)`` style text."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def __contains__(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.min is not None and (value < self.min or (self.min_open and value == self.min)):
            return False
        return not (self.max is not None and (value > self.max or (self.max_open and value == self.max)))

    def __str__(self) -> str:
        low = "(-inf" if self.min is None else f"{'(' if self.min_open else '['}{_num(self.min)}"
        high = "inf)" if self.max is None else f"{_num(self.max)}{')' if self.max_open else ']'}"
        return f"{low}, {high}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def unquote(raw: str) -> str:
    """Strip one level of JSON string encoding (``"\\"x\\""`` -> ``x``); other values pass unchanged."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return text
        if isinstance(decoded, str):
            return decoded
    return text


@dataclass(frozen=True)
class Hyperparameter:
    """Base spec. Subclasses implement ``_parse``; ``parse`` adds the range check and the messages."""

    name: str
    required: bool = False
    default: Any = None
    tunable: bool = False
    description: str = ""

    kind = "FreeText"

    def parse(self, raw: str) -> Any:
        text = unquote(raw)
        try:
            value = self._parse(text)
        except (ValueError, TypeError, SyntaxError) as exc:
            raise UserError(
                f"Hyperparameter {self.name}: could not parse value '{raw}' as {self.kind.lower()}"
            ) from exc
        self._check(value, raw)
        return value

    def _parse(self, text: str) -> Any:
        return text

    def _check(self, value: Any, raw: str) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        """The ``HyperParameterSpecification`` of ``CreateAlgorithm`` for this parameter."""
        spec: dict[str, Any] = {
            "Name": self.name,
            "Type": self.kind,
            "IsTunable": self.tunable,
            "IsRequired": self.required,
        }
        if self.description:
            spec["Description"] = self.description
        if self.default is not None:
            spec["DefaultValue"] = str(self.default)
        return spec


@dataclass(frozen=True)
class _Numeric(Hyperparameter):
    range: Interval = field(default_factory=Interval)

    def _check(self, value: Any, raw: str) -> None:
        if float(value) not in self.range:
            raise UserError(f"Hyperparameter {self.name}: value {raw} not in range {self.range}")


@dataclass(frozen=True)
class IntegerHyperparameter(_Numeric):
    kind = "Integer"

    def _parse(self, text: str) -> int:
        number = float(text)
        if not number.is_integer():
            raise ValueError(text)
        return int(number)


@dataclass(frozen=True)
class ContinuousHyperparameter(_Numeric):
    kind = "Continuous"

    def _parse(self, text: str) -> float:
        value = float(text)
        if math.isnan(value):
            raise ValueError(text)
        return value


@dataclass(frozen=True)
class CategoricalHyperparameter(Hyperparameter):
    choices: tuple[str, ...] = ()
    case_sensitive: bool = True
    kind = "Categorical"

    def _parse(self, text: str) -> str:
        if self.case_sensitive:
            return text
        return text.lower()

    def _check(self, value: Any, raw: str) -> None:
        if value not in self.choices:
            allowed = ", ".join(self.choices)
            raise UserError(f"Hyperparameter {self.name}: value {raw} not in range [{allowed}]")


@dataclass(frozen=True)
class BooleanHyperparameter(Hyperparameter):
    kind = "Categorical"

    def _parse(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueError(text)


@dataclass(frozen=True)
class CustomHyperparameter(Hyperparameter):
    """A parameter parsed by a function (lists, tuples, ``auto`` values); the function raises ValueError."""

    parser: Callable[[str], Any] = str
    valid_text: str = ""

    def _parse(self, text: str) -> Any:
        return self.parser(text)

    def parse(self, raw: str) -> Any:
        try:
            return super().parse(raw)
        except UserError as exc:
            if self.valid_text and "could not parse" in exc.message:
                raise UserError(f"Hyperparameter {self.name}: value {raw} not in range {self.valid_text}") from exc
            raise


@dataclass(frozen=True)
class HyperparameterSpec:
    """The whole set of an algorithm's hyperparameters."""

    parameters: Sequence[Hyperparameter]
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> canonical name
    ignored: Iterable[str] = ()  # accepted and dropped (hidden keys, platform keys)
    check: Callable[[dict[str, Any]], None] | None = None  # cross-parameter rules; raises UserError

    def by_name(self) -> dict[str, Hyperparameter]:
        return {p.name: p for p in self.parameters}

    def validate(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Parse and check ``raw``; returns every given or defaulted value by canonical name."""
        specs = self.by_name()
        ignored = set(self.ignored)
        values: dict[str, Any] = {}
        for key in sorted(raw):
            if key in ignored or key.startswith("sagemaker_"):
                continue
            name = self.aliases.get(key, key)
            spec = specs.get(name)
            if spec is None:
                raise UserError(f"Extraneous hyperparameter found: {key}")
            values[name] = spec.parse(str(raw[key]))
        for spec in self.parameters:
            if spec.name in values:
                continue
            if spec.required:
                raise UserError(f"Missing required hyperparameter: {spec.name}")
            if spec.default is not None:
                values[spec.name] = spec.default
        if self.check is not None:
            self.check(values)
        return values

    def describe(self) -> list[dict[str, Any]]:
        return [p.describe() for p in self.parameters]
