"""A container's manifest (``containers/<name>/manifest.toml``) as the toolkit's objects.

The manifest is the one place that states what a container is: the image repositories it answers to, its
hyperparameters, its metrics, its channels and content types (docs/containers.md, "Container manifests"). It sits in
the container's own folder, so an image builds from that folder and the toolkit alone; infra reads the same file as
data. Functions the manifest cannot hold (the parsers of list-valued hyperparameters, cross-parameter rules) are
named in it and supplied by the container's ``spec.py``.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from containers.toolkit.hyperparameters import (
    BooleanHyperparameter,
    CategoricalHyperparameter,
    ContinuousHyperparameter,
    CustomHyperparameter,
    Hyperparameter,
    HyperparameterSpec,
    IntegerHyperparameter,
    Interval,
)
from containers.toolkit.metrics import Direction, MetricSpec

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_FILE",
    "ContainerManifest",
    "CustomParser",
    "ManifestError",
    "TrainingChannel",
    "fill_metric_template",
    "load_manifest",
]

MANIFEST_FILE = "manifest.toml"

# A custom hyperparameter's parser (raises ValueError on bad text) and the allowed values shown in its messages.
CustomParser = tuple[Callable[[str], Any], str]

_COMMON_KEYS = {"name", "type", "required", "default", "tunable", "description"}
_KEYS_BY_TYPE: Mapping[str, set[str]] = {
    "integer": {"min", "max", "min_open", "max_open"},
    "continuous": {"min", "max", "min_open", "max_open"},
    "categorical": {"choices", "case_sensitive"},
    "boolean": set(),
    "custom": {"parser"},
}


class ManifestError(ValueError):
    """The manifest does not follow the format of docs/containers.md ("Container manifests")."""


@dataclass(frozen=True)
class TrainingChannel:
    name: str
    required: bool
    content_types: tuple[str, ...]


@dataclass(frozen=True)
class ContainerManifest:
    """One container's manifest; ``data`` is the parsed TOML document."""

    path: Path
    data: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    def hyperparameters(
        self,
        parsers: Mapping[str, CustomParser] | None = None,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> HyperparameterSpec:
        """The ``[hyperparameters]`` table as a spec; ``parsers`` supplies the functions ``type = "custom"`` names."""
        table = self.data.get("hyperparameters", {})
        parameters = tuple(_hyperparameter(entry, parsers or {}, self.path) for entry in table.get("parameters", ()))
        return HyperparameterSpec(
            parameters=parameters,
            aliases=dict(table.get("aliases", {})),
            ignored=tuple(table.get("ignored", ())),
            check=check,
        )

    @property
    def ignored_hyperparameters(self) -> tuple[str, ...]:
        return tuple(self.data.get("hyperparameters", {}).get("ignored", ()))

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        """Every ``[[metrics]]`` grid expanded: channels in order, each with its metrics in order."""
        return tuple(_expand_metrics(self.data.get("metrics", ())))

    @property
    def training_channels(self) -> tuple[TrainingChannel, ...]:
        return tuple(
            TrainingChannel(str(entry["name"]), bool(entry.get("required", False)), tuple(entry["content_types"]))
            for entry in self.data.get("training", {}).get("channels", ())
        )

    @property
    def inference_content_types(self) -> tuple[str, ...]:
        return tuple(self.data["inference"]["content_types"])

    @property
    def inference_accepts(self) -> tuple[str, ...]:
        return tuple(self.data["inference"]["accepts"])

    @property
    def inference_default_accept(self) -> str:
        return str(self.data["inference"]["default_accept"])

    @property
    def inference_default_content_type(self) -> str | None:
        """How ``serve`` reads a request with no or a generic Content-Type (None: it answers 415)."""
        value = self.data["inference"].get("default_content_type")
        return str(value) if value else None


def fill_metric_template(template: str, channel: str, metric: str) -> str:
    """``{channel}`` and ``{metric}`` replaced (plain replacement: regexes keep their own braces)."""
    return template.replace("{channel}", channel).replace("{metric}", metric)


def _expand_metrics(grids: Any) -> list[MetricSpec]:
    specs = []
    for grid in grids:
        tunable = set(grid.get("tunable_channels", ()))
        for channel in grid["channels"]:
            for metric, direction in grid["directions"].items():
                specs.append(
                    MetricSpec(
                        fill_metric_template(grid["name"], channel, metric),
                        fill_metric_template(grid["regex"], channel, metric),
                        Direction(direction),
                        tunable=channel in tunable,
                    )
                )
    return specs


def _hyperparameter(entry: Mapping[str, Any], parsers: Mapping[str, CustomParser], path: Path) -> Hyperparameter:
    kind = str(entry.get("type"))
    allowed = _KEYS_BY_TYPE.get(kind)
    if allowed is None:
        raise ManifestError(f"{path}: hyperparameter {entry.get('name')!r} has unknown type {kind!r}")
    unknown = set(entry) - _COMMON_KEYS - allowed
    if unknown:
        raise ManifestError(f"{path}: hyperparameter {entry['name']!r} has unknown keys {sorted(unknown)}")
    default = entry.get("default")
    common: dict[str, Any] = {
        "name": str(entry["name"]),
        "required": bool(entry.get("required", False)),
        "default": tuple(default) if isinstance(default, list) else default,
        "tunable": bool(entry.get("tunable", False)),
        "description": str(entry.get("description", "")),
    }
    if kind in ("integer", "continuous"):
        interval = Interval(
            min=entry.get("min"),
            max=entry.get("max"),
            min_open=bool(entry.get("min_open", False)),
            max_open=bool(entry.get("max_open", False)),
        )
        cls = IntegerHyperparameter if kind == "integer" else ContinuousHyperparameter
        return cls(range=interval, **common)
    if kind == "categorical":
        return CategoricalHyperparameter(
            choices=tuple(entry["choices"]), case_sensitive=bool(entry.get("case_sensitive", True)), **common
        )
    if kind == "boolean":
        return BooleanHyperparameter(**common)
    parser_name = str(entry["parser"])
    if parser_name not in parsers:
        raise ManifestError(f"{path}: hyperparameter {entry['name']!r} names parser {parser_name!r}, not supplied")
    parser, valid_text = parsers[parser_name]
    return CustomHyperparameter(parser=parser, valid_text=valid_text, **common)


@cache
def load_manifest(container_dir: Path) -> ContainerManifest:
    """The manifest of the container package in ``container_dir`` (call with ``Path(__file__).parent``)."""
    path = container_dir / MANIFEST_FILE
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    logger.debug("read %s", path)
    return ContainerManifest(path, data)
