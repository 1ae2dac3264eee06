"""The containers' manifests (``containers/<name>/manifest.toml``) read as data: infra's one view of them.

infra never imports ``containers`` (an import-linter contract); it reads the same TOML files the containers build
their specs from (docs/containers.md, "Container manifests"). This module answers what infra asks of them: which
container an image repository names, the images to build and tag, and the metric definitions SageMaker adds on its
own for a built-in algorithm image.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "CONTAINERS_DIR",
    "MANIFEST_FILE",
    "AwsImage",
    "ContainerManifest",
    "builtin_metric_definitions",
    "container_for_repository",
    "load_manifests",
    "repository_of",
]

CONTAINERS_DIR = Path(__file__).resolve().parents[1] / "containers"
MANIFEST_FILE = "manifest.toml"


@dataclass(frozen=True)
class AwsImage:
    """An AWS built-in image, as ``sagemaker.image_uris.retrieve(framework, region, version, **extra)`` names it."""

    container: str
    framework: str
    version: str | None
    py_version: str | None = None
    us_east_1: str = ""  # the us-east-1 URI, for when the SageMaker SDK cannot be imported
    image_scope: str | None = None  # "training" or "inference", for frameworks with both (PyTorch)


@dataclass(frozen=True)
class ContainerManifest:
    """What infra reads from one manifest."""

    name: str
    repositories: tuple[str, ...]  # as written: literal names, ``*`` for one or more characters
    title: str
    serves: bool
    build_order: int
    environment: tuple[tuple[str, str], ...]
    aws_images: tuple[AwsImage, ...]
    builtin_metric_definitions: tuple[Mapping[str, str], ...]
    installs_packages: bool  # its jobs pip-install packages of their own (the process runtime gives them a place)
    data: Mapping[str, Any]  # the whole document (e.g. the ``[spark]`` table for spark_jobs' generated params)

    def answers_to(self, repository: str) -> bool:
        """Whether the image repository ``repository`` (the last part of an ECR path) runs this container."""
        return any(re.fullmatch(_repository_regex(pattern), repository) for pattern in self.repositories)


def _repository_regex(pattern: str) -> str:
    return ".+".join(re.escape(part) for part in pattern.split("*"))


def _fill(template: str, channel: str, metric: str) -> str:
    return template.replace("{channel}", channel).replace("{metric}", metric)


def _builtin_metrics(grids: Any) -> tuple[Mapping[str, str], ...]:
    """The metrics SageMaker adds to a job on this image: each grid's ``built_in`` metrics on each of its channels."""
    return tuple(
        {"Name": _fill(grid["name"], channel, metric), "Regex": _fill(grid["regex"], channel, metric)}
        for grid in grids
        for channel in grid["channels"]
        for metric in grid.get("built_in", ())
    )


def _manifest(path: Path) -> ContainerManifest:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    name = str(data["name"])
    if name != path.parent.name:
        raise ValueError(f"{path}: name {name!r} is not the folder's name {path.parent.name!r}")
    image = data["image"]
    return ContainerManifest(
        name=name,
        repositories=tuple(data.get("repositories", ())),
        title=str(image["title"]),
        serves=bool(image["serves"]),
        build_order=int(image["build_order"]),
        environment=tuple((str(key), str(value)) for key, value in image.get("environment", ())),
        aws_images=tuple(
            AwsImage(
                name,
                str(entry["framework"]),
                entry.get("version"),
                entry.get("py_version"),
                entry["us_east_1"],
                entry.get("image_scope"),
            )
            for entry in data.get("aws_images", ())
        ),
        builtin_metric_definitions=_builtin_metrics(data.get("metrics", ())),
        installs_packages=bool(image.get("installs_packages", False)),
        data=data,
    )


@cache
def load_manifests(containers_dir: Path = CONTAINERS_DIR) -> tuple[ContainerManifest, ...]:
    """Every ``containers/*/manifest.toml``, in build order (small images first)."""
    manifests = [_manifest(path) for path in sorted(containers_dir.glob(f"*/{MANIFEST_FILE}"))]
    logger.debug("read %d container manifests under %s", len(manifests), containers_dir)
    return tuple(sorted(manifests, key=lambda manifest: (manifest.build_order, manifest.name)))


def repository_of(image_uri: str) -> str:
    """The repository part of an image URI: the last path part, without tag or digest."""
    return image_uri.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def container_for_repository(repository: str) -> str | None:
    """The container whose manifest lists ``repository`` (full match), or ``None``."""
    return next((manifest.name for manifest in load_manifests() if manifest.answers_to(repository)), None)


def builtin_metric_definitions(image_uri: str) -> list[dict[str, str]]:
    """The ``MetricDefinitions`` SageMaker adds on its own for a built-in algorithm image (empty for other images).

    The image is matched on its repository (the URI's last path part) alone, as SageMaker does for its built-ins.
    """
    name = container_for_repository(repository_of(image_uri))
    if name is None:
        return []
    manifest = next(manifest for manifest in load_manifests() if manifest.name == name)
    return [dict(definition) for definition in manifest.builtin_metric_definitions]
