"""``python -m infra.aws deploy|delete|status|publish-images --target local|aws`` (make infra, infra-delete,
publish-images).

``deploy`` creates or updates the stack of infra/aws/template.yaml with the parameters of conf/<target>.yml;
``delete`` deletes it (``--empty-bucket`` first deletes every object version of its data bucket); ``status`` prints
its status, outputs and latest events; ``publish-images`` pushes the built images to the stack's ECR repositories,
tagged by git commit. ``--target local`` starts the local stack when it is not running.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from infra.aws import stacks
from infra.aws.config import ROOT, TARGETS, InfraConfig
from infra.aws.errors import DeployError, InfraError
from infra.aws.publish import built_images, git_commit, publish
from infra.aws.registry import LocalRegistry
from infra.aws.targets import Target, connect
from infra.config import StackSettings
from infra.runtime.docker.docker_cli import DockerCli

logger = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("template.yaml")


def say(line: str) -> None:
    print(line, flush=True)


def _interval(target: Target) -> float:
    return 0.2 if target.is_local else 5.0


def cmd_deploy(config: InfraConfig, target: Target, args: argparse.Namespace) -> int:
    cf = target.client("cloudformation")
    parameters = config.parameters(target.account_id)
    result = stacks.deploy(cf, config.stack_name, TEMPLATE.read_text(), parameters, say, _interval(target))
    say(f"==> {result.stack_name} {result.status or 'unchanged'} on {target.name} ({target.region})")
    for key, value in sorted(result.outputs.items()):
        say(f"  {key:36} {value}")
    return 0


def cmd_delete(config: InfraConfig, target: Target, args: argparse.Namespace) -> int:
    cf = target.client("cloudformation")
    stack = stacks.describe(cf, config.stack_name)
    bucket = stacks.outputs_of(stack or {}).get("BucketName")
    if bucket:
        left = stacks.empty_bucket(target.client("s3"), bucket, remove=args.empty_bucket)
        if left:
            raise InfraError(
                f"bucket {bucket} still holds {left} object version(s); CloudFormation cannot delete a non-empty "
                "bucket. Re-run `python -m infra.aws delete --empty-bucket` to delete them, or copy "
                "them away first. Nothing was deleted."
            )
    stacks.delete(cf, config.stack_name, say, _interval(target))
    say(f"==> {config.stack_name} deleted on {target.name}")
    return 0


def cmd_status(config: InfraConfig, target: Target, args: argparse.Namespace) -> int:
    cf = target.client("cloudformation")
    stack = stacks.describe(cf, config.stack_name)
    if stack is None:
        say(f"{config.stack_name}: not deployed on {target.name} (make infra TARGET={target.name})")
        return 1
    say(f"{config.stack_name}: {stack['StackStatus']} on {target.name} ({target.region})")
    for key, value in sorted(stacks.outputs_of(stack).items()):
        say(f"  {key:36} {value}")
    events = cf.describe_stack_events(StackName=stack["StackId"])["StackEvents"][:10]
    say("latest events:")
    for event in reversed(events):
        say(stacks.event_line(event))
    return 0


def cmd_publish_images(config: InfraConfig, target: Target, args: argparse.Namespace) -> int:
    cf = target.client("cloudformation")
    stack = stacks.describe(cf, config.stack_name)
    if stack is None:
        raise InfraError(f"{config.stack_name} is not deployed on {target.name}: run `make infra` first")
    cli = DockerCli()
    images = built_images(cli)
    if not images:
        raise InfraError("no image is built: run `make images` first")
    registry = None
    if target.is_local:
        registry = LocalRegistry(StackSettings.from_env().data_dir / "registry", config.local_registry_port)
    commit = git_commit(ROOT)
    say(f"==> publishing {len(images)} image(s) at commit {commit} to {target.name}")
    publish(target, stacks.outputs_of(stack), images, commit, cli, say, registry)
    return 0


_COMMANDS = {
    "deploy": cmd_deploy,
    "delete": cmd_delete,
    "status": cmd_status,
    "publish-images": cmd_publish_images,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.aws", description=__doc__)
    parser.add_argument("command", choices=sorted(_COMMANDS))
    parser.add_argument("--target", choices=TARGETS, default=os.environ.get("TARGET") or "local")
    parser.add_argument("--empty-bucket", action="store_true", help="delete: first delete every object version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = InfraConfig.load(args.target)
        target = connect(config)
        return _COMMANDS[args.command](config, target, args)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for line in exc.failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
