"""CloudFormation stacks kept across restarts: each of moto's stacks as a row, put back at start without running
its template again (docs/local-stack.md#what-persists-where-and-how-to-reset).

A row holds what the stack API answers: the template text, parameters, tags, status, times, every event, the
outputs as they were evaluated, and each resource's logical id, type and physical id. At start the stack is rebuilt
with moto's own :class:`~moto.cloudformation.models.Stack` (its resource map loads the template's parameters and
conditions, which creates nothing) and its resources are the ones that already exist: an S3 bucket or IAM role is
looked up in moto (restored earlier, by the S3 and moto mirrors), anything else (the SageMaker records, which the
control plane restores itself) stands in as its physical id, so ``Ref``, ``DescribeStackResources`` and
``DeleteStack`` (which deletes by physical id) work as before. Change sets are not kept.

moto's CloudFormation is imported only by :func:`restore_stack` and only read when already imported (see
:mod:`deferred_front`): a stack that never served CloudFormation costs nothing here.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

_MODELS = "moto.cloudformation.models"


def cloudformation_loaded() -> bool:
    """Whether moto's CloudFormation was imported (before that no stack can exist)."""
    return _MODELS in sys.modules


def stack_rows(backend: Any) -> dict[tuple[str, str], str]:
    """``("stack", stack id) -> JSON`` for every stack of one account/region (deleted ones are not kept)."""
    rows = {}
    for stack in list(backend.stacks.values()):
        rows["stack", str(stack.stack_id)] = json.dumps(_stack_body(stack), sort_keys=True, default=str)
    return rows


def _stack_body(stack: Any) -> dict[str, Any]:
    template = stack.template if isinstance(stack.template, str) else json.dumps(stack.template)
    resources = {
        name: {"type": stack.resource_map._resource_json_map[name].get("Type"), "physical": _physical(value)}
        for name, value in stack.resource_map._parsed_resources.items()
        if name in stack.resource_map._resource_json_map and hasattr(value, "physical_resource_id")
    }
    return {
        "name": stack.name,
        "template": template,
        "parameters": dict(stack.resource_map.input_parameters or {}),
        "tags": dict(stack.tags or {}),
        "notification_arns": list(stack.notification_arns or []),
        "role_arn": stack.role_arn,
        "termination_protection": bool(stack.enable_termination_protection),
        "timeout": stack.timeout_in_minutes,
        "policy": stack.policy,
        "status": stack.status,
        "created": stack.creation_time.isoformat(),
        "description": stack.description,
        "resources": resources,
        **_outputs(stack),
        "events": [_event_body(event) for event in stack.events],
    }


def _outputs(stack: Any) -> dict[str, list[dict[str, Any]]]:
    """The outputs and exports as evaluated now; none when they cannot be (a rolled-back stack's refer to nothing)."""
    try:
        outputs = [
            {"key": o.key, "value": o.value, "description": o.description} for o in stack.output_map.values() if o
        ]
        exports = [{"name": e.name, "value": e.value} for e in stack.exports]
    except Exception:  # moto raises whatever its resolver hits; the stack itself is still kept
        logger.debug("stack %s: outputs cannot be evaluated; kept without them", stack.name, exc_info=True)
        return {"outputs": [], "exports": []}
    return {"outputs": outputs, "exports": exports}


def _physical(resource: Any) -> str:
    return str(getattr(resource, "physical_resource_id", "") or "")


def _event_body(event: Any) -> dict[str, Any]:
    return {
        "logical": event.logical_resource_id,
        "physical": event.physical_resource_id,
        "type": event.resource_type,
        "status": event.resource_status,
        "reason": event.resource_status_reason,
        "properties": event.resource_properties,
        "timestamp": event.timestamp.isoformat(),
        "id": str(event.event_id),
    }


class RestoredResource:
    """A stack's resource that exists elsewhere (a SageMaker record, or a moto resource with no lookup here): its
    physical id answers ``Ref``; deleting it goes through its type's own delete, by that id."""

    def __init__(self, logical_id: str, resource_type: str, physical_id: str) -> None:
        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self.physical_resource_id = physical_id

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attribute: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute in ("Arn", "Name", "Id") and self.physical_resource_id:
            return self.physical_resource_id
        raise UnformattedGetAttTemplateException()


def restore_stack(backend: Any, kind: str, stack_id: str, body: dict[str, Any]) -> None:
    """Put one stored stack back into moto's CloudFormation backend (creating none of its resources)."""
    from moto.cloudformation.models import Event, Stack
    from moto.cloudformation.parsing import Export, Output

    account, region = str(backend.account_id), str(backend.region_name)
    stack = Stack(  # type: ignore[abstract]
        stack_id,
        body["name"],
        body["template"] if body["template"] not in ("{}", "") else {},
        body["parameters"],
        account,
        region,
        notification_arns=body["notification_arns"],
        tags=body["tags"],
        role_arn=body["role_arn"],
        cross_stack_resources=backend.exports,
        enable_termination_protection=body["termination_protection"],
        timeout_in_mins=body["timeout"],
        stack_policy_body=body["policy"] or None,
    )
    stack.status, stack.description = body["status"], body["description"]
    stack.creation_time = datetime.fromisoformat(body["created"])
    for logical, resource in body["resources"].items():
        stack.resource_map._parsed_resources[logical] = _existing(
            account, logical, str(resource["type"]), str(resource["physical"])
        )
    stack.output_map._parsed_outputs = {
        o["key"]: Output(o["key"], o["value"], o["description"]) for o in body["outputs"]
    }
    stack.events = [_event(Event, stack, event) for event in body["events"]]
    backend.stacks[stack_id] = stack
    for export in body["exports"]:
        backend.exports[export["name"]] = Export(stack_id, export["name"], export["value"])


def _event(event_type: Any, stack: Any, body: dict[str, Any]) -> Any:
    event = event_type(
        stack.stack_id,
        stack.name,
        body["logical"],
        body["physical"],
        body["type"],
        body["status"],
        body["reason"],
        body["properties"],
    )
    event.timestamp, event.event_id = datetime.fromisoformat(body["timestamp"]), body["id"]
    return event


def _existing(account: str, logical: str, resource_type: str, physical: str) -> Any:
    """The live moto object behind a restored resource when moto holds it, else a :class:`RestoredResource`."""
    found = _live(account, resource_type, physical)
    if found is None:
        return RestoredResource(logical, resource_type, physical)
    found.cf_resource_type, found.logical_resource_id = resource_type, logical  # as moto's parsing sets them
    return found


def _live(account: str, resource_type: str, physical: str) -> Any:
    try:
        if resource_type == "AWS::S3::Bucket":
            from moto.s3.models import s3_backends

            return s3_backends[account]["aws"].get_bucket(physical)
        if resource_type == "AWS::IAM::Role":
            from moto.iam.models import iam_backends

            return iam_backends[account]["global"].get_role(physical)
    except Exception:  # gone since (deleted outside the stack): it stands in by its id
        logger.info("stack resource %s %s is no longer in moto", resource_type, physical)
    return None
