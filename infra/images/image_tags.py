"""Tag local images with the AWS built-in image URIs, so SDK local mode finds them without ECR (its
``_ecr_login_if_needed`` skips login and pull when ``docker images -q <uri>`` finds the image)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from infra.images.catalog import AWS_IMAGES, AwsImage, ImagePaths, image_ref
from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

TAGS_FILE = "aws-tags.json"  # in the images state directory: what tag-aws tagged, so a rebuild moves those tags

__all__ = ["Tag", "aws_uri", "recorded_tags", "tag_aws"]


@dataclass(frozen=True)
class Tag:
    source: str
    uri: str
    container: str


def aws_uri(image: AwsImage, region: str) -> str:
    """The URI ``sagemaker.image_uris.retrieve`` gives (the us-east-1 table when the SDK is missing)."""
    try:
        os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        from sagemaker import image_uris  # imported lazily: it takes seconds
    except ImportError:
        if region != "us-east-1":
            raise
        return image.us_east_1
    extra = {"py_version": image.py_version} if image.py_version else {}
    if image.image_scope:
        extra["image_scope"] = image.image_scope
    uri: str = image_uris.retrieve(
        image.framework, region=region, version=image.version, instance_type="ml.m5.large", **extra
    )
    return uri if ":" in uri.rsplit("/", 1)[-1] else f"{uri}:latest"


def recorded_tags(paths: ImagePaths) -> dict[str, list[str]]:
    """Container name -> the AWS URIs ``tag_aws`` gave its image on this machine (any region)."""
    path = paths.state_dir / TAGS_FILE
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return {str(name): [str(uri) for uri in uris] for name, uris in loaded.items()}


def _record(paths: ImagePaths, tags: list[Tag]) -> None:
    recorded = recorded_tags(paths)
    for tag in tags:
        uris = recorded.setdefault(tag.container, [])
        if tag.uri not in uris:
            uris.append(tag.uri)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    (paths.state_dir / TAGS_FILE).write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def tag_aws(
    region: str, names: tuple[str, ...] | None = None, docker: DockerCli | None = None, paths: ImagePaths | None = None
) -> list[Tag]:
    """``docker tag sagestack/<name>:latest <aws uri>`` for every built-in image of the selected containers."""
    cli = docker if docker is not None else DockerCli()
    tags: list[Tag] = []
    for image in AWS_IMAGES:
        if names is not None and image.container not in names:
            continue
        source = image_ref(image.container)
        uri = aws_uri(image, region)
        cli.run("tag", source, uri)
        logger.info("tagged %s as %s", source, uri)
        tags.append(Tag(source, uri, image.container))
    _record(paths if paths is not None else ImagePaths.default(), tags)
    return tags
