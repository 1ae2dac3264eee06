"""Render every ``containers/<name>/Dockerfile`` from one template, so the images' build steps are written once.

The template is ``containers/docker/container.Dockerfile.in``; what differs per image is its
:class:`~infra.images.catalog.ImageSpec`, read from the ``[image]`` table of its container's manifest. The rendered
files are committed (so ``docker build -f containers/<name>/Dockerfile .`` works anywhere with the default
``BASE_IMAGE``); ``make images`` refuses to build one that no longer matches its rendering, and ``make lint``
(``python -m infra.images check``) fails on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from infra.images.catalog import IMAGE_SPECS, ImagePaths, ImageSpec

logger = logging.getLogger(__name__)

__all__ = ["render", "render_all", "stale_dockerfiles"]

TEMPLATE = "container.Dockerfile.in"
_SERVES_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true"
_ENTRY_SCRIPTS = """
# `train` and `serve` on PATH as well, for tools that run them as commands (`--entrypoint train`).
RUN printf '#!/bin/sh\\nexec python -m containers.@NAME@ train "$@"\\n' > /usr/local/bin/train \\
    && printf '#!/bin/sh\\nexec python -m containers.@NAME@ serve "$@"\\n' > /usr/local/bin/serve \\
    && chmod 755 /usr/local/bin/train /usr/local/bin/serve
"""


def render(spec: ImageSpec, template: str) -> str:
    """The Dockerfile of one image."""
    title = f"sagestack-{spec.name.replace('_', '-')}"
    labels = [f'org.opencontainers.image.title="{title}"', f'org.opencontainers.image.description="{spec.title}"']
    if spec.serves:
        labels.insert(0, _SERVES_LABEL)
        usage = "docker run -v <host dir>:/opt/ml <image> train | serve"
    else:
        usage = "docker run -v <host dir>:/opt/ml <image> [command] (AppSpecification.ContainerEntrypoint/Arguments)"
    environment = "".join(f"    {key}={value} \\\n" for key, value in spec.environment)
    values = {
        "@TITLE@": f"Sagestack {spec.name} image: {spec.title}.",
        "@USAGE@": usage,
        "@LABELS@": " \\\n      ".join(labels),
        "@ENTRY_SCRIPTS@": _ENTRY_SCRIPTS if spec.serves else "",
        "@ENVIRONMENT@": environment,
    }
    text = template
    for marker, value in values.items():
        text = text.replace(marker, value)
    return text.replace("@NAME@", spec.name)


def _renderings(paths: ImagePaths, names: Sequence[str] | None) -> list[tuple[Path, str]]:
    template = (paths.containers / "docker" / TEMPLATE).read_text(encoding="utf-8")
    return [
        (paths.containers / spec.name / "Dockerfile", render(spec, template))
        for spec in IMAGE_SPECS
        if names is None or spec.name in names
    ]


def render_all(paths: ImagePaths) -> list[Path]:
    """Write every image's Dockerfile; returns the files that changed."""
    changed = []
    for path, text in _renderings(paths, None):
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            logger.info("rendered %s", path)
            changed.append(path)
    return changed


def stale_dockerfiles(paths: ImagePaths, names: Sequence[str] | None = None) -> list[Path]:
    """The Dockerfiles (of ``names``, default all) that differ from their rendering."""
    return [
        path
        for path, text in _renderings(paths, names)
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
