"""Resolve an image URI to one of this project's containers.

Our containers are Python packages: the image ``containers.<name>`` is started as
``[python, "-m", "containers.<name>"]`` and the runtime appends the entry (``train`` or ``serve``). AWS built-in
image URIs (``<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>``) are matched on the repository
part against the repositories each container's manifest lists (docs/containers.md, "Container manifests"); short
local names ``sagestack/<name>[:<tag>]`` and ``sagestack-<name>[:<tag>]`` name a container directly.

An image's tag is part of what the image is (AWS builds one image per framework version), so the resolved image's
environment carries it as ``SAGESTACK_IMAGE_TAG``: a container whose artifacts differ per version reads it there
(docs/containers.md#xgboost-model-files-per-framework-version).
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass, field

from infra.container_manifests import container_for_repository, load_manifests
from infra.runtime.api import ContainerImage, ImageNotFoundError

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_TAG_ENV", "ImageResolver", "container_name", "container_names", "image_tag", "resolve_image"]


def container_names() -> tuple[str, ...]:
    """Every container with a manifest (``containers/<name>/manifest.toml``)."""
    return tuple(manifest.name for manifest in load_manifests())


_ECR_URI = re.compile(
    r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*?)(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$"
)
_LOCAL_URI = re.compile(r"^sagestack[/-](?P<name>[a-z0-9][a-z0-9_-]*?)(?::[\w][\w.-]*)?$")
_TAG = re.compile(r":(?P<tag>[\w][\w.-]*)$")
IMAGE_TAG_ENV = "SAGESTACK_IMAGE_TAG"


@dataclass(frozen=True)
class ImageResolver:
    """Maps image URIs to :class:`ContainerImage`; ``python`` is the interpreter that runs the containers."""

    python: str = field(default_factory=lambda: sys.executable)

    def resolve(self, uri: str) -> ContainerImage:
        name = container_name(uri)
        if name is None:
            repositories = [pattern for manifest in load_manifests() for pattern in manifest.repositories]
            raise ImageNotFoundError(
                f"image {uri!r} names no container this runtime can run. Supported: AWS built-in repositories "
                f"{', '.join(repositories)} "
                f"(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>), or local names "
                f"sagestack/<name>:<tag> / sagestack-<name> with <name> one of {', '.join(container_names())}"
            )
        logger.debug("image %s resolved to containers.%s", uri, name)
        tag = image_tag(uri)
        return ContainerImage(
            uri=uri,
            command=(self.python, "-m", f"containers.{name}"),
            # each container's own environment (what the image would set with ENV): the tag that names its version
            environment={IMAGE_TAG_ENV: tag} if tag else {},
            installs_packages=any(m.installs_packages for m in load_manifests() if m.name == name),
        )


def image_tag(uri: str) -> str | None:
    """The tag of an image URI (``1.0-1`` of ``.../sagemaker-xgboost:1.0-1``), ``None`` without one."""
    match = _TAG.search(uri.strip().rsplit("/", 1)[-1].split("@", 1)[0])
    return match.group("tag") if match else None


def container_name(uri: str) -> str | None:
    """The container package an image URI names, or ``None`` when it names none of ours."""
    text = uri.strip()
    local = _LOCAL_URI.match(text)
    if local is not None:
        name = local.group("name").replace("-", "_")
        return name if name in container_names() else None
    ecr = _ECR_URI.match(text)
    if ecr is None:
        return None
    return container_for_repository(ecr.group("repo").rsplit("/", 1)[-1])


def resolve_image(uri: str) -> ContainerImage:
    """Resolve ``uri`` with the current interpreter; raises :class:`ImageNotFoundError` when unknown."""
    return ImageResolver().resolve(uri)
