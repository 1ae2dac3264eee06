"""ExecuteChangeSet on the local stack: resources in dependency order, one event per resource step, and a rollback
when a step fails (moto's own ExecuteChangeSet has neither events per resource nor rollback).

The states and events follow CloudFormation: a failed CREATE deletes what it created and ends ``ROLLBACK_COMPLETE``;
a failed UPDATE re-applies the previous template and parameters and ends ``UPDATE_ROLLBACK_COMPLETE``. Resources
removed by an update are deleted only after every create/update succeeded (CloudFormation's cleanup phase).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack

logger = logging.getLogger(__name__)

__all__ = ["execute_change_set"]

_SUB_NAME = re.compile(r"\$\{(?!!)([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


class ResourceFailed(Exception):
    """One resource step failed; ``reason`` is what its ``*_FAILED`` event says."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason


@dataclass
class _Run:
    """One execution against one stack: writes the events, remembers what it created."""

    stack: Stack
    created: list[str] = field(default_factory=list)

    @property
    def resources(self) -> parsing.ResourceMap:
        return self.stack.resource_map

    def event(self, logical_id: str, kind: str, status: str, physical_id: str = "", reason: str | None = None) -> None:
        self.stack.events.append(
            Event(self.stack.stack_id, self.stack.name, logical_id, physical_id, kind, status, reason, None)
        )

    def stack_status(self, status: str, reason: str | None = None) -> None:
        self.stack.status = status
        self.stack._add_stack_event(status, resource_status_reason=reason)


def references(node: Any) -> set[str]:
    """Logical names a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub, DependsOn)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".")[0] if isinstance(value, str) else str(value[0]))
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found.update(_SUB_NAME.findall(str(text)))
                found |= references(value[1:]) if isinstance(value, list) else set()
            elif key == "DependsOn":
                found.update([value] if isinstance(value, str) else value)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_order(resources: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """``names`` ordered so that every resource comes after the resources (of the template) it refers to."""
    wanted, ordered, seen = set(names), [], set()

    def visit(name: str) -> None:
        if name in seen or name not in resources:
            return
        seen.add(name)
        for dependency in sorted(references(resources[name])):
            visit(dependency)
        if name in wanted:
            ordered.append(name)

    for name in sorted(wanted):
        visit(name)
    return ordered


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or getattr(exc, "error_type", None) or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc) or repr(exc)
    return f"{code}: {message}"


def _physical_id(instance: Any) -> str:
    return str(getattr(instance, "physical_resource_id", "") or "")


def _changed(
    resources: parsing.ResourceMap, template: Mapping[str, Any], parameters: Mapping[str, Any]
) -> dict[str, list[str]]:
    old, new = resources._resource_json_map, template.get("Resources") or {}
    params = [
        p
        for p in set(parameters) | set(resources.input_parameters)
        if resources.input_parameters.get(p) != parameters.get(p)
    ]
    modify = [n for n in new if n in old and (new[n] != old[n] or references(new[n]) & set(params))]
    return {
        "Add": [n for n in new if n not in old],
        "Modify": modify,
        "Remove": [n for n in old if n not in new],
    }


def _load(resources: parsing.ResourceMap, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    resources._template = dict(template)
    resources.input_parameters = dict(parameters)
    resources.resolved_parameters = {}
    resources.load_mapping()
    resources.load_parameters()
    resources.load_conditions()
    resources._resource_json_map = dict(template.get("Resources") or {})


def _wanted(resources: parsing.ResourceMap, name: str) -> bool:
    condition = resources._resource_json_map[name].get("Condition")
    return not condition or bool(resources.lazy_condition_map[condition])


def _create(run: _Run, name: str) -> None:
    resources = run.resources
    kind = resources._resource_json_map[name]["Type"]
    if not _wanted(resources, name):
        return
    run.event(name, kind, "CREATE_IN_PROGRESS")
    try:
        if parsing.resource_class_from_type(kind) is None:
            raise ValidationError(message=f"Resource type {kind} is not supported by the local stack")
        instance = resources[name]
    except Exception as exc:  # any handler error is the resource's failure, as CloudFormation reports it
        run.event(name, kind, "CREATE_FAILED", reason=_reason(exc))
        raise ResourceFailed(name, _reason(exc)) from exc
    run.created.append(name)
    run.event(name, kind, "CREATE_COMPLETE", _physical_id(instance))


def _update(run: _Run, name: str) -> bool:
    """Update one resource; True when its physical id changed (a replacement), so its dependents must update."""
    resources = run.resources
    original = resources._parsed_resources.get(name)
    if original is None:
        _create(run, name)
        return True
    definition = resources._resource_json_map[name]
    kind = definition["Type"]
    run.event(name, kind, "UPDATE_IN_PROGRESS", _physical_id(original))
    try:
        resource_class = parsing.resource_class_from_type(kind)
        if hasattr(resource_class.update_from_cloudformation_json, "__isabstractmethod__"):
            resources._delete_resource(original, definition)  # no in-place update: replace
            resources._parsed_resources.pop(name)
            updated = resources[name]
        else:
            updated = parsing.parse_and_update_resource(
                name, definition, resources, resources._account_id, resources._region_name
            )
            resources._parsed_resources[name] = updated
    except Exception as exc:  # any handler error is the resource's failure, as CloudFormation reports it
        run.event(name, kind, "UPDATE_FAILED", _physical_id(original), _reason(exc))
        raise ResourceFailed(name, _reason(exc)) from exc
    run.event(name, kind, "UPDATE_COMPLETE", _physical_id(updated))
    return _physical_id(updated) != _physical_id(original)


def _delete(run: _Run, name: str, definition: Mapping[str, Any], *, strict: bool) -> None:
    instance = run.resources._parsed_resources.get(name)
    if instance is None or isinstance(instance, str):
        return
    kind = definition["Type"]
    if definition.get("DeletionPolicy") == "Retain":
        run.event(name, kind, "DELETE_SKIPPED", _physical_id(instance))
        run.resources._parsed_resources.pop(name)
        return
    run.event(name, kind, "DELETE_IN_PROGRESS", _physical_id(instance))
    try:
        run.resources._delete_resource(instance, dict(definition))
    except Exception as exc:  # any handler error is the resource's failure, as CloudFormation reports it
        run.event(name, kind, "DELETE_FAILED", _physical_id(instance), _reason(exc))
        if strict:
            raise ResourceFailed(name, _reason(exc)) from exc
        return
    run.resources._parsed_resources.pop(name)
    run.event(name, kind, "DELETE_COMPLETE", _physical_id(instance))


def apply(run: _Run, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    """Bring the stack's resources to ``template`` with ``parameters``: create, update, then clean up."""
    resources = run.resources
    changes = _changed(resources, template, parameters)
    previous = dict(resources._resource_json_map)
    _load(resources, template, parameters)
    new = resources._resource_json_map
    for name in dependency_order(new, changes["Add"]):
        _create(run, name)
    pending = set(changes["Modify"])
    for name in dependency_order(new, list(new)):
        if name in pending and _update(run, name):
            pending |= {other for other in new if name in references(new[other]) and other not in changes["Add"]}
    for name in reversed(dependency_order(previous, changes["Remove"])):
        _delete(run, name, previous[name], strict=False)


def _find(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None) -> ChangeSet:
    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]
    for change_set in backend.change_sets.values():
        if change_set.change_set_name == change_set_name and stack_name in (None, change_set.stack_name):
            return change_set
    raise ValidationError(message=f"ChangeSet [{change_set_name}] does not exist")


def execute_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None) -> None:
    change_set = _find(backend, change_set_name, stack_name)
    if change_set.execution_status != "AVAILABLE":
        raise ValidationError(
            message=f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
            f"of [{change_set.execution_status}]"
        )
    stack = backend.stacks[change_set.stack_id]
    run, creating = _Run(stack), change_set.change_set_type == "CREATE"
    verb = "CREATE" if creating else "UPDATE"
    previous = (dict(stack.template_dict), dict(stack.resource_map.input_parameters))
    change_set.execution_status = "EXECUTE_IN_PROGRESS"
    run.stack_status(f"{verb}_IN_PROGRESS", "User Initiated")
    try:
        apply(run, change_set.template_dict, change_set.parameters)
    except ResourceFailed as failure:
        logger.warning("stack %s: %s failed (%s); rolling back", stack.name, failure.logical_id, failure.reason)
        change_set.execution_status = "EXECUTE_FAILED"
        _roll_back(run, creating, failure, *previous)
        return
    change_set.execution_status = "EXECUTE_COMPLETE"
    stack.template, stack.parameters = change_set.template, dict(change_set.parameters)
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    run.stack_status(f"{verb}_COMPLETE")


def _roll_back(
    run: _Run, creating: bool, failure: ResourceFailed, template: Mapping[str, Any], parameters: Mapping[str, Any]
) -> None:
    action = "create" if creating else "update"
    reason = f"The following resource(s) failed to {action}: [{failure.logical_id}]. Rollback requested by user."
    if creating:
        run.stack_status("ROLLBACK_IN_PROGRESS", reason)
        definitions = dict(run.resources._resource_json_map)
        for name in reversed(run.created):
            _delete(run, name, definitions[name], strict=False)
        run.resources._resource_json_map = {}
        run.stack_status("ROLLBACK_COMPLETE")
        return
    run.stack_status("UPDATE_ROLLBACK_IN_PROGRESS", reason)
    try:
        apply(run, template, parameters)
    except ResourceFailed as again:
        run.stack_status("UPDATE_ROLLBACK_FAILED", again.reason)
        return
    run.stack_status("UPDATE_ROLLBACK_COMPLETE")
