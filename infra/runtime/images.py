"""Resolve an image URI to one of this project's containers.

Our containers are Python packages: the image ``containers.<name>`` is started as
``[python, "-m", "containers.<name>"]`` and the runtime appends the entry (``train`` or ``serve``). AWS built-in
image URIs (``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>``) are matched on the repository
part; short local names ``sagestack/<name>[:<tag>]`` and ``sagestack-<name>[:<tag>]`` name a container directly.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from infra.runtime.api import ContainerImage, ImageNotFoundError

logger = logging.getLogger(__name__)

__all__ = ["BUILT_IN_REPOSITORIES", "CONTAINER_NAMES", "ImageResolver", "resolve_image"]

# Repository (full match) -> container package under ``containers``, with the name shown to users. The one table
# of supported images.
BUILT_IN_REPOSITORIES: tuple[tuple[str, str, str], ...] = (
    (r"sagemaker-xgboost", "xgboost", "sagemaker-xgboost"),
    (r"xgboost", "xgboost", "xgboost"),
    (r"kmeans", "kmeans", "kmeans"),
    (r"pca", "pca", "pca"),
    (r"sagemaker-scikit-learn", "processing", "sagemaker-scikit-learn"),
    (r"sagemaker-spark-processing", "processing", "sagemaker-spark-processing"),
    (r"sagemaker-clarify-processing", "clarify", "sagemaker-clarify-processing"),
    (r"sagemaker-model-monitor-analyzer", "model_monitor", "sagemaker-model-monitor-analyzer"),
    (r"sagemaker-rl-.+", "rl", "sagemaker-rl-*"),
    (r".+-rl-.+", "rl", "*-rl-*"),
)

CONTAINER_NAMES: tuple[str, ...] = ("xgboost", "kmeans", "pca", "rl", "processing", "clarify", "model_monitor")

# Each container's own environment (what its Dockerfile would set with ENV). Empty for now.
IMAGE_ENVIRONMENTS: Mapping[str, Mapping[str, str]] = MappingProxyType({name: {} for name in CONTAINER_NAMES})

_ECR_URI = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$"
)
_LOCAL_URI = re.compile(r"^sagestack[/-](?P<name>[a-z0-9][a-z0-9_-]*?)(?::[\w][\w.-]*)?$")


@dataclass(frozen=True)
class ImageResolver:
    """Maps image URIs to :class:`ContainerImage`; ``python`` is the interpreter that runs the containers."""

    python: str = field(default_factory=lambda: sys.executable)

    def resolve(self, uri: str) -> ContainerImage:
        name = container_name(uri)
        if name is None:
            raise ImageNotFoundError(
                f"image {uri!r} names no container this runtime can run. Supported: AWS built-in repositories "
                f"{', '.join(shown for _, _, shown in BUILT_IN_REPOSITORIES)} "
                f"(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>), or local names "
                f"sagestack/<name>:<tag> / sagestack-<name> with <name> one of {', '.join(CONTAINER_NAMES)}"
            )
        logger.debug("image %s resolved to containers.%s", uri, name)
        return ContainerImage(
            uri=uri,
            command=(self.python, "-m", f"containers.{name}"),
            environment=dict(IMAGE_ENVIRONMENTS.get(name, {})),
        )


def container_name(uri: str) -> str | None:
    """The container package an image URI names, or ``None`` when it names none of ours."""
    text = uri.strip()
    local = _LOCAL_URI.match(text)
    if local is not None:
        name = local.group("name").replace("-", "_")
        return name if name in CONTAINER_NAMES else None
    ecr = _ECR_URI.match(text)
    if ecr is None:
        return None
    repository = ecr.group("repo").rsplit("/", 1)[-1]
    for pattern, name, _ in BUILT_IN_REPOSITORIES:
        if re.fullmatch(pattern, repository):
            return name
    return None


def resolve_image(uri: str) -> ContainerImage:
    """Resolve ``uri`` with the current interpreter; raises :class:`ImageNotFoundError` when unknown."""
    return ImageResolver().resolve(uri)
