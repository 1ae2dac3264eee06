"""Build ``sagestack/base`` and one image per container, skipping every image whose inputs did not change.

Offline (default): the OS layer is a Debian bookworm root file system made with ``debootstrap`` and
``docker import``ed as ``sagestack/os:bookworm``; wheels come from the host wheelhouse; ``docker build`` runs with
``--network none``. Online (``online=True``): ``python:3.11-slim`` is the base and pip uses the index.

Caching: each image carries the label ``org.sagestack.inputs`` = a hash of its Dockerfile, the files copied into it,
its wheel list and its base image's hash. When the local image already has that label the build is skipped, so a
warm run costs one ``docker image inspect`` per image.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.images.catalog import (
    BASE_NAME,
    IMAGE_NAMES,
    INPUTS_LABEL,
    ONLINE_BASE_IMAGE,
    OS_IMAGE,
    ImagePaths,
    image_ref,
)
from infra.images.dockerfiles import stale_dockerfiles
from infra.images.image_tags import recorded_tags
from infra.images.wheelhouse import resolve_wheels
from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

__all__ = ["BuildResult", "ImageBuildError", "ImageBuilder"]

BUILD_TIMEOUT_SECONDS = 1800.0
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates,libgomp1"
# Left out of the imported OS image: apt's caches and package lists, documentation, translations, and the system pip
# and setuptools (the venv gets its own pip from /usr/share/python-wheels). About 170 MB of the root file system.
ROOTFS_EXCLUDES: tuple[str, ...] = (
    "./var/cache/apt/*",
    "./var/lib/apt/lists/*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/info/*",
    "./usr/share/locale/*",
    "./usr/lib/python3/dist-packages/*",
)


class ImageBuildError(RuntimeError):
    """An image could not be built (the message names the image and the step)."""


@dataclass(frozen=True)
class BuildResult:
    name: str
    ref: str
    built: bool  # False: skipped, inputs unchanged
    seconds: float
    inputs: str


@dataclass(frozen=True)
class _Context:
    """Files an image is built from: (path inside the build context, source path)."""

    files: tuple[tuple[str, Path], ...]
    dockerfile: str  # path of the Dockerfile inside the context

    def digest(self, *extra: str) -> str:
        digest = hashlib.sha256()
        for item in extra:
            digest.update(item.encode())
        for target, source in self.files:
            digest.update(target.encode())
            if source.suffix == ".whl":
                stat = source.stat()
                digest.update(f"{source.name}:{stat.st_size}".encode())  # wheels are immutable by name
            else:
                digest.update(source.read_bytes())
        return digest.hexdigest()[:24]


class ImageBuilder:
    """Builds images with the ``docker`` CLI; ``online`` switches to the default base image and the pip index."""

    def __init__(self, paths: ImagePaths, docker: DockerCli | None = None, online: bool = False) -> None:
        self.paths = paths
        self.docker = docker if docker is not None else DockerCli()
        self.online = online

    def build(self, names: Sequence[str] = IMAGE_NAMES, force: bool = False) -> list[BuildResult]:
        unknown = sorted(set(names) - set(IMAGE_NAMES))
        if unknown:
            raise ImageBuildError(f"unknown image(s) {', '.join(unknown)}; known: {', '.join(IMAGE_NAMES)}")
        os_image = ONLINE_BASE_IMAGE if self.online else self.ensure_os_image()
        base = self._build_one(BASE_NAME, self._context(BASE_NAME), os_image, force)
        results = [base]
        for name in names:
            results.append(self._build_one(name, self._context(name), image_ref(BASE_NAME), force, base.inputs))
        return results

    def ensure_os_image(self) -> str:
        """``sagestack/os:bookworm``, made with debootstrap and ``docker import`` when missing."""
        if self.docker.inspect("image", OS_IMAGE) is not None:
            return OS_IMAGE
        if shutil.which("debootstrap") is None:
            raise ImageBuildError(
                "the offline base needs debootstrap (apt-get install debootstrap), or build online with --online"
            )
        rootfs = self.paths.rootfs
        if not (rootfs / "usr" / "bin" / "python3").exists():
            if rootfs.exists():
                shutil.rmtree(rootfs)
            rootfs.parent.mkdir(parents=True, exist_ok=True)
            logger.info("debootstrap bookworm into %s", rootfs)
            argv = ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}", "bookworm", str(rootfs)]
            self._check(subprocess.run(argv, capture_output=True, text=True, check=False), "debootstrap")
        logger.info("importing %s as %s", rootfs, OS_IMAGE)
        excludes = [f"--exclude={pattern}" for pattern in ROOTFS_EXCLUDES]
        with subprocess.Popen(["tar", "-C", str(rootfs), *excludes, "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                self.docker.argv("import", "-", OS_IMAGE), stdin=tar.stdout, capture_output=True, text=True, check=False
            )
        self._check(imported, "docker import")
        return OS_IMAGE

    def _context(self, name: str) -> _Context:
        containers = self.paths.containers
        files: list[tuple[str, Path]] = [
            (f"containers/docker/requirements/{path.name}", path)
            for path in sorted(self.paths.requirements.glob("*.txt"))
        ]
        files.append(("containers/docker/trim-python.sh", containers / "docker" / "trim-python.sh"))
        if name == BASE_NAME:
            dockerfile = "containers/docker/base.Dockerfile"
            files.append((dockerfile, containers / "docker" / "base.Dockerfile"))
        else:
            dockerfile = f"containers/{name}/Dockerfile"
            stale = stale_dockerfiles(self.paths, (name,))
            if stale:
                raise ImageBuildError(f"{stale[0]} differs from its template: run `python -m infra.images render`")
            files.append(("containers/__init__.py", containers / "__init__.py"))
            files.append(("containers/docker/install-layer.sh", containers / "docker" / "install-layer.sh"))
            files.extend(_tree(containers, "toolkit"))
            files.extend(_tree(containers, name))
        if not self.online:
            files.extend((f"wheels/{wheel.name}", wheel) for wheel in resolve_wheels(self.paths, name))
        return _Context(tuple(files), dockerfile)

    def _build_one(self, name: str, context: _Context, base_image: str, force: bool, *extra: str) -> BuildResult:
        ref = image_ref(name)
        base_id = self._image_id(base_image) if name == BASE_NAME else ""
        inputs = context.digest(base_image, base_id, "online" if self.online else "offline", *extra)
        started = time.monotonic()
        if not force and self.docker.image_label(ref, INPUTS_LABEL) == inputs:
            logger.info("%s is up to date (%s)", ref, inputs)
            return BuildResult(name, ref, False, time.monotonic() - started, inputs)
        directory = self._stage(name, context)
        argv = ["build", "--label", f"{INPUTS_LABEL}={inputs}", "--build-arg", f"BASE_IMAGE={base_image}"]
        argv += ["--no-cache"] if force else []  # --force: a real rebuild, not Docker's cached layers
        if not self.online:
            argv += ["--network", "none", "--build-arg", "PIP_INSTALL_OPTIONS=--no-index"]
        argv += ["-f", str(directory / context.dockerfile), "-t", ref, str(directory)]
        logger.info("building %s", ref)
        done = subprocess.run(
            self.docker.argv(*argv), capture_output=True, text=True, env=self.docker.environment(),
            timeout=BUILD_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        self._check(done, f"docker build of {ref}")
        shutil.rmtree(directory, ignore_errors=True)
        self._retag_aliases(name)
        seconds = time.monotonic() - started
        logger.info("built %s in %.1f s", ref, seconds)
        return BuildResult(name, ref, True, seconds, inputs)

    def _stage(self, name: str, context: _Context) -> Path:
        directory = self.paths.contexts / name
        if directory.exists():
            shutil.rmtree(directory)
        for target, source in context.files:
            destination = directory / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, destination)  # wheels and sources are read-only inputs: hard links are enough
            except OSError:
                shutil.copy2(source, destination)
        return directory

    def _retag_aliases(self, name: str) -> None:
        """Move the AWS URIs ``tag-aws`` gave an earlier build of this image to the new one.

        Otherwise SDK local mode and the Docker runtime, which run an AWS URI as is when it exists locally, would
        keep running the stale image after a rebuild. Only tags ``tag-aws`` recorded are moved (never a tag someone
        else gave the image, such as a registry copy pinned to a commit).
        """
        for uri in recorded_tags(self.paths).get(name, ()):
            if self.docker.inspect("image", uri) is not None:
                self.docker.run("tag", image_ref(name), uri)
                logger.info("moved %s to the new %s", uri, image_ref(name))

    def _image_id(self, ref: str) -> str:
        info = self.docker.inspect("image", ref)
        return str(info.get("Id", "")) if info is not None else ""

    @staticmethod
    def _check(done: subprocess.CompletedProcess[str], step: str) -> None:
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise ImageBuildError(f"{step} failed with exit code {done.returncode}:\n{tail}")


def _tree(containers: Path, package: str) -> Iterable[tuple[str, Path]]:
    root = containers / package
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield f"containers/{path.relative_to(containers).as_posix()}", path
