"""``Search`` expressions evaluated on one record: filters, nested filters, sub-expressions, property paths.

A property path walks the record as Search answers it: ``Parameters.eta`` (a trial component's parameter value),
``Metrics.auc.Max`` (a metric summary, found by its name), ``Tags.team`` (a tag's value), ``Parents.TrialName`` (any
of the parents). Comparisons are numeric when both sides are numbers, by time when the property is a timestamp, and
textual otherwise (docs/experiments.md#search).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.experiments.experiment_catalog import as_datetime

MAX_ELEMENTS = 20  # Filters + NestedFilters + SubExpressions of one SearchExpression
_VALUELESS = {"Exists", "NotExists"}
_LIST_KEYS = ("MetricName", "Name", "ChannelName", "InputName", "OutputName")


def check_expression(expression: Mapping[str, Any], known: set[str]) -> None:
    """Refuse what AWS refuses: an empty expression, too many elements, a filter without a value, unknown names."""
    filters = expression.get("Filters") or []
    nested = expression.get("NestedFilters") or []
    subs = expression.get("SubExpressions") or []
    count = len(filters) + len(nested) + len(subs)
    if count == 0:
        raise ValidationException("A SearchExpression must contain at least one Filter, NestedFilter or SubExpression.")
    if count > MAX_ELEMENTS:
        raise ValidationException(
            f"A SearchExpression can contain up to {MAX_ELEMENTS} Filters, NestedFilters and SubExpressions; "
            f"this one has {count}."
        )
    for item in filters:
        _check_filter(item, known)
    for group in nested:
        prefix = str(group["NestedPropertyName"])
        check_property(prefix, known)
        for item in group["Filters"]:
            if not str(item["Name"]).startswith(prefix + "."):
                raise ValidationException(
                    f"Nested filter name {item['Name']} must start with its NestedPropertyName {prefix}."
                )
            _check_filter(item, known)
    for sub in subs:
        check_expression(sub, known)


def check_property(name: str, known: set[str]) -> None:
    head = name.split(".", 1)[0]
    if head not in known:
        raise ValidationException(f"Unknown property name {name}: {head} is not a property of this resource.")


def _check_filter(item: Mapping[str, Any], known: set[str]) -> None:
    operator = item.get("Operator", "Equals")
    check_property(str(item["Name"]), known)
    if operator in _VALUELESS:
        if item.get("Value") is not None:
            raise ValidationException(f"Operator {operator} takes no Value (filter on {item['Name']}).")
    elif item.get("Value") is None:
        raise ValidationException(f"Operator {operator} needs a Value (filter on {item['Name']}).")


def matches(record: Mapping[str, Any], expression: Mapping[str, Any]) -> bool:
    outcomes = _outcomes(record, expression)
    return any(outcomes) if expression.get("Operator") == "Or" else all(outcomes)


def _outcomes(record: Mapping[str, Any], expression: Mapping[str, Any]) -> Iterator[bool]:
    for item in expression.get("Filters") or []:
        yield filter_matches(values_at(record, str(item["Name"])), item)
    for group in expression.get("NestedFilters") or []:
        prefix = str(group["NestedPropertyName"])
        elements = _elements(values_at(record, prefix))
        yield any(
            all(filter_matches(values_at(element, str(f["Name"])[len(prefix) + 1 :]), f) for f in group["Filters"])
            for element in elements
        )
    for sub in expression.get("SubExpressions") or []:
        yield matches(record, sub)


def _elements(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


class RecordView(Mapping[str, Any]):
    """A record read field by field from its resource (Search filters 10,000 components without building them).

    ``paths`` answer a whole property path at once for a field (``Metrics.auc.Max``), or None to walk it.
    """

    __slots__ = ("_catalog", "_getters", "_paths", "_subject")

    def __init__(
        self,
        getters: Mapping[str, Callable[[Any, Any], Any]],
        catalog: Any,
        subject: Any,
        paths: Mapping[str, Callable[[Any, Any, list[str]], list[Any] | None]] | None = None,
    ) -> None:
        self._getters, self._catalog, self._subject, self._paths = getters, catalog, subject, paths or {}

    def __getitem__(self, key: str) -> Any:
        return self._getters[key](self._catalog, self._subject)

    def __contains__(self, key: object) -> bool:
        return key in self._getters

    def __iter__(self) -> Iterator[str]:
        return iter(self._getters)

    def __len__(self) -> int:
        return len(self._getters)

    def values_at(self, parts: list[str]) -> list[Any] | None:
        resolve = self._paths.get(parts[0])
        return None if resolve is None else resolve(self._catalog, self._subject, parts[1:])


def values_at(node: Any, path: str) -> list[Any]:
    """Every value the dotted ``path`` reaches in ``node`` (lists fan out; keyed lists are looked up by name)."""
    parts = path.split(".") if path else []
    if parts and type(node) is RecordView:
        found = node.values_at(parts)
        if found is not None:
            return found
    return list(_walk(node, parts))


def _walk(node: Any, parts: list[str]) -> Iterator[Any]:
    if not parts:
        yield _leaf(node)
        return
    head, rest = parts[0], parts[1:]
    if type(node) is list:
        yield from _walk_list(node, head, rest, parts)
        return
    if type(node) is dict or isinstance(node, Mapping):
        if head in node:
            value = node[head]
            if value is not None:
                yield from _walk(value, rest)


def _walk_list(node: list[Any], head: str, rest: list[str], parts: list[str]) -> Iterator[Any]:
    """A list: a tag's value by its Key, a metric (channel, ...) by its name, else every element."""
    named = []
    for item in node:
        if type(item) is not dict:
            continue
        if item.get("Key") == head and "Value" in item:
            yield from _walk(item["Value"], rest)
            return
        if any(item.get(k) == head for k in _LIST_KEYS):
            named.append(item)
    for item in named or node:
        yield from _walk(item, rest if named else parts)


def _leaf(node: Any) -> Any:
    if type(node) is dict and ("NumberValue" in node or "StringValue" in node):
        return node.get("NumberValue", node.get("StringValue"))
    return node


def filter_matches(found: Sequence[Any], item: Mapping[str, Any]) -> bool:
    operator = str(item.get("Operator", "Equals"))
    present = [v for v in found if v is not None and not isinstance(v, Mapping | list)]
    if operator == "Exists":
        return bool([v for v in found if v is not None])
    if operator == "NotExists":
        return not [v for v in found if v is not None]
    value = str(item["Value"])
    if operator == "NotEquals":
        return not any(compare(v, value) == 0 for v in present)
    if operator == "In":
        choices = [c.strip() for c in value.split(",")]
        return any(compare(v, c) == 0 for v in present for c in choices)
    if operator == "Contains":
        return any(value.lower() in str(v).lower() for v in present)
    wanted = {
        "Equals": (0,),
        "GreaterThan": (1,),
        "GreaterThanOrEqualTo": (0, 1),
        "LessThan": (-1,),
        "LessThanOrEqualTo": (-1, 0),
    }[operator]
    return any(compare(v, value) in wanted for v in present)


def compare(actual: Any, wanted: str) -> int | None:
    """-1, 0 or 1 as ``actual`` is below, equal to or above ``wanted``; None when they cannot be compared."""
    if isinstance(actual, datetime):
        try:
            other = as_datetime(wanted)
        except ValueError:
            return None
        return (actual > other) - (actual < other)
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            number = float(wanted)
        except ValueError:
            return None
        return (actual > number) - (actual < number)
    text = str(actual).lower() if isinstance(actual, bool) else str(actual)
    try:  # hyperparameters are strings on the wire: "0.3" > "0.25" compares as numbers
        left, right = float(text), float(wanted)
    except ValueError:
        return (text > wanted) - (text < wanted)
    return (left > right) - (left < right)


def sort_value(record: Mapping[str, Any], path: str) -> Any:
    found = [v for v in values_at(record, path) if v is not None and not isinstance(v, Mapping | list)]
    return found[0] if found else None
