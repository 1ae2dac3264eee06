"""Which images exist, which AWS built-in URIs each one stands for, and where build state lives.

The images and their AWS URIs are read from the containers' manifests (``containers/<name>/manifest.toml``,
docs/containers.md "Container manifests") through :mod:`infra.container_manifests`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from infra.container_manifests import AwsImage, load_manifests

logger = logging.getLogger(__name__)

__all__ = ["AWS_IMAGES", "IMAGE_NAMES", "IMAGE_SPECS", "AwsImage", "ImagePaths", "ImageSpec", "image_ref"]

REPOSITORY_PREFIX = "sagestack"
BASE_NAME = "base"
OS_IMAGE = "sagestack/os:bookworm-slim"  # debootstrap root file system, trimmed and imported (offline builds only)
ONLINE_BASE_IMAGE = "python:3.11-slim"
INPUTS_LABEL = "org.sagestack.inputs"  # content hash of everything an image is built from


@dataclass(frozen=True)
class ImageSpec:
    """What differs between the containers' Dockerfiles; the rest is ``containers/docker/container.Dockerfile.in``."""

    name: str  # the container package (``containers/<name>``)
    title: str  # what the image is, one line (Dockerfile header and image description)
    serves: bool  # an algorithm image (``train`` / ``serve``); False: a processing image run with its own command
    environment: tuple[tuple[str, str], ...] = ()  # extra ENV lines


# One image per container manifest; the order is the manifests' build order (small images first).
IMAGE_SPECS: tuple[ImageSpec, ...] = tuple(
    ImageSpec(manifest.name, manifest.title, manifest.serves, manifest.environment) for manifest in load_manifests()
)
IMAGE_NAMES: tuple[str, ...] = tuple(spec.name for spec in IMAGE_SPECS)

# The built-in images our containers stand in for, with their us-east-1 URIs
# (docs/images.md#built-in-image-uris-us-east-1).
AWS_IMAGES: tuple[AwsImage, ...] = tuple(image for manifest in load_manifests() for image in manifest.aws_images)


def image_ref(name: str, tag: str = "latest") -> str:
    """``sagestack/<name>:<tag>`` with ``_`` spelled ``-`` (``sagestack/model-monitor:latest``)."""
    return f"{REPOSITORY_PREFIX}/{name.replace('_', '-')}:{tag}"


@dataclass(frozen=True)
class ImagePaths:
    """The repository (build inputs) and the git-ignored state directory (wheelhouse, contexts, root fs)."""

    repo_root: Path
    state_dir: Path

    @classmethod
    def default(cls, repo_root: Path | None = None) -> ImagePaths:
        root = repo_root if repo_root is not None else Path(__file__).resolve().parents[2]
        data = Path(os.environ.get("SAGESTACK_DATA_DIR", str(root / ".sagestack")))
        return cls(repo_root=root, state_dir=data / "images")

    @property
    def containers(self) -> Path:
        return self.repo_root / "containers"

    @property
    def requirements(self) -> Path:
        return self.containers / "docker" / "requirements"

    @property
    def lock_file(self) -> Path:
        return self.repo_root / "requirements.lock"

    @property
    def wheelhouse(self) -> Path:
        return self.state_dir / "wheelhouse"

    @property
    def contexts(self) -> Path:
        return self.state_dir / "contexts"

    @property
    def rootfs(self) -> Path:
        return self.state_dir / "rootfs-bookworm"
