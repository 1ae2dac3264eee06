"""``publish-images``: tag every built image with its ECR repository URI and the git commit, and push it.

AWS: ``docker login`` with ``ecr.get_authorization_token``, then ``docker push``. Local: the image is also tagged
with the local ECR URI (so the Docker runtime finds it by that name), pushed to the registry on 127.0.0.1
(:mod:`infra.aws.registry`) and recorded in the local ECR with ``PutImage``.
"""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.aws.errors import PublishError
from infra.aws.registry import LocalRegistry
from infra.aws.targets import Target
from infra.runtime.api import ContainerRuntimeError
from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

__all__ = ["Published", "built_images", "git_commit", "output_key", "publish"]

Say = Callable[[str], None]
_PUSH_SECONDS = 3600.0


@dataclass(frozen=True)
class Published:
    container: str
    source: str
    uri: str
    digest: str


def output_key(container: str) -> str:
    """The stack output holding a container's repository URI: ``model_monitor`` -> ``ModelMonitorRepositoryUri``."""
    return "".join(part.capitalize() for part in container.split("_")) + "RepositoryUri"


def git_commit(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PublishError(f"cannot read the git commit of {root}: {done.stderr.strip()}")
    return done.stdout.strip()


def built_images(cli: DockerCli) -> dict[str, str]:
    """Container name -> local image (``sagestack/<name>:latest``) for every image ``make images`` has built."""
    from infra.images.catalog import IMAGE_NAMES, image_ref

    return {name: image_ref(name) for name in IMAGE_NAMES if cli.inspect("image", image_ref(name)) is not None}


def publish(
    target: Target,
    outputs: Mapping[str, str],
    images: Mapping[str, str],
    commit: str,
    cli: DockerCli,
    say: Say,
    registry: LocalRegistry | None = None,
) -> list[Published]:
    """Push ``images`` (container -> local image) to the repositories the stack's ``outputs`` name."""
    if not cli.is_available():
        raise PublishError("Docker is not available (no `docker` CLI or the engine does not answer): start it first")
    ecr = target.client("ecr")
    if target.is_local and registry is None:
        raise PublishError("a local target needs a LocalRegistry")
    if not target.is_local:
        _login(ecr, cli)
    published = []
    for container, source in sorted(images.items()):
        uri = outputs.get(output_key(container))
        if not uri:
            raise PublishError(f"the stack has no output {output_key(container)}: run `make infra` first")
        existing = _existing_digest(ecr, uri, commit)
        if existing is not None:  # tags are immutable: a commit is published once
            say(f"  {source:34} -> {uri}:{commit}  already published ({existing})")
            published.append(Published(container, source, f"{uri}:{commit}", existing))
            continue
        try:
            cli.run("tag", source, f"{uri}:{commit}")
            if registry is not None:
                digest = _push_local(ecr, cli, registry, uri, source, commit)
            else:
                cli.run("push", f"{uri}:{commit}", timeout=_PUSH_SECONDS)
                digest = _digest(ecr, uri, commit)
        except ContainerRuntimeError as exc:
            raise PublishError(f"{container}: {exc}") from exc
        say(f"  {source:34} -> {uri}:{commit}  {digest}")
        published.append(Published(container, source, f"{uri}:{commit}", digest))
    return published


def _repository(uri: str) -> str:
    return uri.split("/", 1)[1]


def _login(ecr: Any, cli: DockerCli) -> None:
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    done = subprocess.run(
        cli.argv("login", "--username", user, "--password-stdin", data["proxyEndpoint"]),
        input=password,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise PublishError(f"docker login to {data['proxyEndpoint']} failed: {done.stderr.strip()}")


def _push_local(ecr: Any, cli: DockerCli, registry: LocalRegistry, uri: str, source: str, commit: str) -> str:
    repository = _repository(uri)
    address = registry.ensure()
    cli.run("tag", source, f"{address}/{repository}:{commit}")
    cli.run("push", f"{address}/{repository}:{commit}", timeout=_PUSH_SECONDS)
    manifest, media_type = registry.manifest(repository, commit)
    try:
        ecr.put_image(
            repositoryName=repository, imageManifest=manifest, imageManifestMediaType=media_type, imageTag=commit
        )
    except ecr.exceptions.ImageAlreadyExistsException:
        logger.info("%s:%s is already recorded in the local ECR", repository, commit)
    return _digest(ecr, uri, commit)


def _existing_digest(ecr: Any, uri: str, commit: str) -> str | None:
    try:
        return _digest(ecr, uri, commit)
    except ecr.exceptions.ImageNotFoundException:
        return None


def _digest(ecr: Any, uri: str, commit: str) -> str:
    described = ecr.describe_images(repositoryName=_repository(uri), imageIds=[{"imageTag": commit}])
    return str(described["imageDetails"][0]["imageDigest"])
