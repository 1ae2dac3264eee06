"""Deploy, delete and describe the CloudFormation stack, the same way on the local stack and on AWS.

Deploys go through change sets: a change set without changes is success ("no changes"), the changes are printed
before they run, and the stack's new events are printed while it works. A failed create or update is left to
CloudFormation's rollback (nothing half-created) and raises :class:`DeployError` with the failed resources' events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.aws.errors import DeployError

logger = logging.getLogger(__name__)

__all__ = ["DeployResult", "delete", "deploy", "describe", "empty_bucket"]

Say = Callable[[str], None]
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_SUCCESS = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}
_ROLLED_BACK = {"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Poll:
    cf: Any
    stack_id: str
    say: Say
    interval: float
    seen: set[str] = field(default_factory=set)

    def mark_seen(self) -> None:
        self.seen.update(e["EventId"] for e in _events(self.cf, self.stack_id))

    def new_events(self) -> list[dict[str, Any]]:
        fresh = [e for e in reversed(_events(self.cf, self.stack_id)) if e["EventId"] not in self.seen]
        self.seen.update(e["EventId"] for e in fresh)
        return fresh

    def until_settled(self) -> tuple[str, list[dict[str, Any]]]:
        """Print events until the stack leaves ``*_IN_PROGRESS``; its final status and every new event."""
        every: list[dict[str, Any]] = []
        while True:
            for event in self.new_events():
                every.append(event)
                self.say(event_line(event))
            status = str(self.cf.describe_stacks(StackName=self.stack_id)["Stacks"][0]["StackStatus"])
            if not status.endswith("_IN_PROGRESS"):
                for event in self.new_events():
                    every.append(event)
                    self.say(event_line(event))
                return status, every
            time.sleep(self.interval)


def _events(cf: Any, stack_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = cf.describe_stack_events(StackName=stack_id)["StackEvents"]
    return events


def event_line(event: Mapping[str, Any]) -> str:
    reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    return f"  {event['LogicalResourceId']:<32} {event['ResourceStatus']:<28} {event.get('ResourceType', '')}{reason}"


def describe(cf: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack, or ``None`` when there is none (a deleted stack is none)."""
    try:
        stacks = cf.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}


def deploy(
    cf: Any, stack_name: str, template: str, parameters: Mapping[str, str], say: Say, interval: float = 5.0
) -> DeployResult:
    """Create or update ``stack_name`` to ``template``; safe to re-run (no changes is success)."""
    existing = describe(cf, stack_name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        say(f"==> {stack_name} is ROLLBACK_COMPLETE (a failed create): deleting it before creating it again")
        delete(cf, stack_name, say, interval)
        existing = None
    if existing is not None and existing["StackStatus"].endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {stack_name} is busy ({existing['StackStatus']}); wait for it, then re-run")
    kind = "CREATE" if existing is None else "UPDATE"
    try:
        change_set = cf.create_change_set(
            StackName=stack_name,
            ChangeSetName=f"{stack_name}-{datetime.now(UTC):%Y%m%d%H%M%S%f}",
            ChangeSetType=kind,
            TemplateBody=template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
            Capabilities=CAPABILITIES,
        )
    except ClientError as exc:  # some CloudFormation front ends refuse an empty change set right away
        if existing is None or not any(marker in str(exc) for marker in _NO_CHANGES):
            raise
        return _unchanged(existing, say)
    described = _wait_change_set(cf, change_set["Id"], interval)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason") or "")
        if existing is None or not any(marker in reason for marker in _NO_CHANGES):
            raise DeployError(f"change set of {stack_name} failed: {reason}")
        cf.delete_change_set(ChangeSetName=change_set["Id"])
        return _unchanged(existing, say)
    say(f"==> {kind.lower()} {stack_name}: {len(described.get('Changes') or [])} change(s)")
    for change in described.get("Changes") or []:
        rc = change["ResourceChange"]
        replace = " (replacement)" if rc.get("Replacement") == "True" else ""
        say(f"  {rc['Action']:<8} {rc['LogicalResourceId']:<32} {rc['ResourceType']}{replace}")
    poll = _Poll(cf, str(change_set["StackId"]), say, interval)
    poll.mark_seen()
    cf.execute_change_set(ChangeSetName=change_set["Id"])
    status, events = poll.until_settled()
    if status not in _SUCCESS:
        failures = tuple(event_line(e).strip() for e in events if str(e["ResourceStatus"]).endswith("_FAILED"))
        note = "rolled back" if status in _ROLLED_BACK else "NOT rolled back: see the events"
        raise DeployError(f"stack {stack_name} ended {status} ({note})", failures)
    stack = cf.describe_stacks(StackName=poll.stack_id)["Stacks"][0]
    return DeployResult(stack_name, status, True, outputs_of(stack))


def _unchanged(stack: Mapping[str, Any], say: Say) -> DeployResult:
    say(f"==> {stack['StackName']}: no changes ({stack['StackStatus']})")
    return DeployResult(str(stack["StackName"]), str(stack["StackStatus"]), False, outputs_of(stack))


def _wait_change_set(cf: Any, change_set_id: str, interval: float) -> dict[str, Any]:
    while True:
        described: dict[str, Any] = cf.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        time.sleep(interval)


def delete(cf: Any, stack_name: str, say: Say, interval: float = 5.0) -> str:
    """Delete the stack and wait; ``DELETE_COMPLETE``, or ``absent`` when there was none."""
    existing = describe(cf, stack_name)
    if existing is None:
        say(f"==> {stack_name}: no such stack")
        return "absent"
    poll = _Poll(cf, str(existing["StackId"]), say, interval)
    poll.mark_seen()
    say(f"==> deleting {stack_name}")
    cf.delete_stack(StackName=poll.stack_id)
    status, events = poll.until_settled()
    if status != "DELETE_COMPLETE":
        failures = tuple(event_line(e).strip() for e in events if str(e["ResourceStatus"]).endswith("_FAILED"))
        raise DeployError(f"stack {stack_name} ended {status}", failures)
    return status


def empty_bucket(s3: Any, bucket: str, remove: bool) -> int:
    """How many object versions ``bucket`` holds; with ``remove``, delete them all first (returns 0 then)."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    keys = [
        {"Key": item["Key"], "VersionId": item["VersionId"]}
        for page in pages
        for item in (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])
    ]
    if not remove:
        return len(keys)
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
    return 0
