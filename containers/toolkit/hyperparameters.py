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
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from containers.toolkit.errors import UserError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

TUNING_OBJECTIVE_METRIC = "_tuning_objective_metric"
# Hidden keys the SDK and the console send to the MXNet-based built-ins (K-Means, PCA, ...): accepted, ignored.
BUILTIN_HIDDEN_KEYS = (
    "_num_gpus",
    "_log_level",
    "_kvstore",
    "_num_kv_servers",
    "_num_slices",
    "_enable_profiler",
    "_disable_wait_to_read",
    TUNING_OBJECTIVE_METRIC,
)

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")


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
            allowed = self._allowed_text()
            suffix = f"; allowed range {allowed}" if allowed else ""
            raise UserError(
                f"Hyperparameter {self.name}: could not parse value '{raw}' as {self.kind.lower()}{suffix}"
            ) from exc
        self._check(value, raw)
        return value

    def _parse(self, text: str) -> Any:
        return text

    def _check(self, value: Any, raw: str) -> None:
        return None

    def _allowed_text(self) -> str:
        """The allowed values as text for error messages ("" when anything parseable goes)."""
        return ""

    def _range_spec(self) -> dict[str, Any] | None:
        """The ``ParameterRange`` of the API for ``describe()``, when one can be stated."""
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
        range_spec = self._range_spec()
        if range_spec is not None:
            spec["Range"] = range_spec
        return spec


@dataclass(frozen=True)
class _Numeric(Hyperparameter):
    range: Interval = field(default_factory=Interval)

    def _check(self, value: Any, raw: str) -> None:
        if float(value) not in self.range:
            raise UserError(f"Hyperparameter {self.name}: value {raw} not in range {self.range}")

    def _allowed_text(self) -> str:
        return str(self.range)

    def _range_spec(self) -> dict[str, Any] | None:
        if self.range.min is None or self.range.max is None:
            return None  # the API needs both bounds
        key = f"{self.kind}ParameterRangeSpecification"
        return {key: {"MinValue": _num(self.range.min), "MaxValue": _num(self.range.max)}}


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
        lowered = text.lower()
        return next((choice for choice in self.choices if choice.lower() == lowered), lowered)

    def _check(self, value: Any, raw: str) -> None:
        if value not in self.choices:
            raise UserError(f"Hyperparameter {self.name}: value {raw} not in range {self._allowed_text()}")

    def _allowed_text(self) -> str:
        return "[" + ", ".join(self.choices) + "]"

    def _range_spec(self) -> dict[str, Any] | None:
        return {"CategoricalParameterRangeSpecification": {"Values": list(self.choices)}}


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

    def _allowed_text(self) -> str:
        return "[true, false]"


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
            if key == TUNING_OBJECTIVE_METRIC and key not in specs:
                # tuning adds it to every job it starts (docs/reference/container-contract.md#hyperparametersjson)
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


def config_from_values(cls: type[ConfigT], values: Mapping[str, Any], **overrides: Any) -> ConfigT:
    """A config dataclass from :meth:`HyperparameterSpec.validate` values: every field named like a value gets it
    (other values, e.g. accepted-but-unused parameters, are left out); ``overrides`` win."""
    names = {item.name for item in fields(cls) if item.init}
    chosen = {name: value for name, value in values.items() if name in names}
    chosen.update(overrides)
    return cls(**chosen)
