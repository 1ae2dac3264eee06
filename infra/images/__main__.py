"""``python -m infra.images build|tag-aws|sizes|render|check``: the ``make images`` and ``sagestack images``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from infra.images.build import ImageBuilder, ImageBuildError
from infra.images.catalog import BASE_NAME, IMAGE_NAMES, ImagePaths, image_ref
from infra.images.docker_engine import NoEngineError, ensure_engine
from infra.images.dockerfiles import render_all, stale_dockerfiles
from infra.images.image_tags import tag_aws
from infra.images.spark_params import stale_spark_params, write_spark_params
from infra.images.wheelhouse import WheelhouseError
from infra.runtime.api import ContainerRuntimeError
from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build sagestack/base and the container images (cached)")
    build.add_argument("--only", action="append", choices=IMAGE_NAMES, help="build only this image (repeatable)")
    build.add_argument("--online", action="store_true", help="base python:3.11-slim and the pip index")
    build.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    tag = commands.add_parser("tag-aws", help="tag the images with the AWS built-in image URIs")
    tag.add_argument("--region", default="us-east-1")
    tag.add_argument("--only", action="append", choices=IMAGE_NAMES)
    commands.add_parser("sizes", help="print each image's size")
    commands.add_parser(
        "render",
        help="write the generated files: containers/<name>/Dockerfile, spark_jobs/estimators/builtin_params.py",
    )
    commands.add_parser("check", help="exit 1 when a generated file differs from its rendering (make lint)")
    engine = commands.add_parser(
        "engine", help="make sure a Docker engine answers (start or install it); exit 3 if not"
    )
    engine.add_argument("--no-install", action="store_true", help="start dockerd if installed, never apt-get")
    return parser


def _sizes(cli: DockerCli) -> None:
    for name in (BASE_NAME, *IMAGE_NAMES):
        info = cli.inspect("image", image_ref(name))
        size = f"{int(info['Size']) / 1e6:.0f} MB" if info is not None else "not built"
        print(f"{image_ref(name):34} {size}")


def _check(paths: ImagePaths) -> int:
    stale = [*stale_dockerfiles(paths), *stale_spark_params(paths.repo_root)]
    for path in stale:
        print(f"stale generated file: {path} (run: python -m infra.images render)", file=sys.stderr)
    return 1 if stale else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cli = DockerCli()
    started = time.monotonic()
    try:
        if args.command == "build":
            builder = ImageBuilder(ImagePaths.default(), cli, online=args.online)
            for result in builder.build(tuple(args.only or IMAGE_NAMES), force=args.force):
                state = "built" if result.built else "up to date"
                print(f"{result.ref:34} {state:10} {result.seconds:6.1f} s  inputs={result.inputs}")
        elif args.command == "tag-aws":
            for tag in tag_aws(args.region, tuple(args.only) if args.only else None, cli):
                print(f"{tag.source} -> {tag.uri}")
        elif args.command == "engine":
            how = ensure_engine(cli, ImagePaths.default().state_dir / "dockerd.log", install=not args.no_install)
            print(f"Docker engine {how}")
        elif args.command == "render":
            paths = ImagePaths.default()
            for path in [*render_all(paths), write_spark_params(paths.repo_root)]:
                if path is not None:
                    print(f"rendered {path}")
        elif args.command == "check":
            return _check(ImagePaths.default())
        else:
            _sizes(cli)
    except NoEngineError as exc:
        print(f"no Docker engine: {exc}", file=sys.stderr)
        return 3
    except (ImageBuildError, WheelhouseError, ContainerRuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
