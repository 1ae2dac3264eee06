"""An execution's graph from its pipeline definition: steps as boxes, edges from ``DependsOn``, property references
(``{"Get": "Steps.<name>..."}``) and a Condition step's branches; laid out in layers for server-side SVG."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BOX_WIDTH, BOX_HEIGHT = 170, 46
_COLUMN_GAP, _ROW_GAP, _MARGIN = 60, 22, 12
_STEP_REFERENCE = re.compile(r"^Steps\.(?P<name>[^.\[]+)")


@dataclass(frozen=True)
class GraphNode:
    name: str
    step_type: str
    x: int
    y: int


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    path: str  # SVG path data from the source box's right side to the target box's left side


@dataclass(frozen=True)
class ExecutionGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    width: int
    height: int


def build_graph(definition: dict[str, Any]) -> ExecutionGraph:
    steps = {str(step["Name"]): step for step in _all_steps(definition.get("Steps") or [])}
    parents: dict[str, set[str]] = {name: set() for name in steps}
    for name, step in steps.items():
        parents[name].update(str(d) for d in step.get("DependsOn") or [] if str(d) in steps)
        parents[name].update(ref for ref in _references(step.get("Arguments")) if ref in steps and ref != name)
        parents[name].update(ref for ref in _references(step.get("PropertyFiles")) if ref in steps and ref != name)
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments") or {}
            for branch in (*(arguments.get("IfSteps") or []), *(arguments.get("ElseSteps") or [])):
                parents.setdefault(str(branch["Name"]), set()).add(name)
    layers = _layers(list(steps), parents)
    rows: dict[int, int] = {}
    nodes: dict[str, GraphNode] = {}
    for name in steps:
        column = layers[name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = _MARGIN + column * (BOX_WIDTH + _COLUMN_GAP)
        y = _MARGIN + row * (BOX_HEIGHT + _ROW_GAP)
        nodes[name] = GraphNode(name, str(steps[name].get("Type") or ""), x, y)
    edges = [
        GraphEdge(source, target, _edge_path(nodes[source], nodes[target]))
        for target in steps
        for source in sorted(parents[target])
        if source in nodes
    ]
    width = _MARGIN * 2 + (max(layers.values(), default=0) + 1) * (BOX_WIDTH + _COLUMN_GAP) - _COLUMN_GAP
    height = _MARGIN * 2 + max(rows.values(), default=1) * (BOX_HEIGHT + _ROW_GAP) - _ROW_GAP
    return ExecutionGraph(list(nodes.values()), edges, width, height)


def _all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Top-level steps and, depth first, the steps inside Condition branches."""
    for step in steps:
        yield step
        if step.get("Type") == "Condition":
            arguments = step.get("Arguments") or {}
            yield from _all_steps([*(arguments.get("IfSteps") or []), *(arguments.get("ElseSteps") or [])])


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str):
            match = _STEP_REFERENCE.match(get)
            if match is not None:
                yield match.group("name")
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _layers(names: list[str], parents: dict[str, set[str]]) -> dict[str, int]:
    """Longest path from a root; a cycle (an invalid definition) is cut where it closes."""
    layers: dict[str, int] = {}
    visiting: set[str] = set()

    def layer(name: str) -> int:
        if name in layers:
            return layers[name]
        if name in visiting:
            return 0
        visiting.add(name)
        found = max((layer(parent) + 1 for parent in parents.get(name, ()) if parent in parents), default=0)
        visiting.discard(name)
        layers[name] = found
        return found

    for name in names:
        layer(name)
    return layers


def _edge_path(source: GraphNode, target: GraphNode) -> str:
    x1, y1 = source.x + BOX_WIDTH, source.y + BOX_HEIGHT // 2
    x2, y2 = target.x, target.y + BOX_HEIGHT // 2
    middle = (x1 + x2) // 2
    return f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
