"""A query plan for ``Search`` over trial components: filters compiled against the records themselves.

The generic evaluator (:mod:`.search_expressions`) walks each record as Search answers it; over 10,000 trial
components that costs about a second. Here a conjunctive expression (``Filters`` joined by ``And``, the form the SDK
and the console send) is compiled once per request: a ``Parents.ExperimentName`` / ``Parents.TrialName`` equality
becomes a set of component names read from the matching trials (the index the catalog's trials already are), a
comparison on ``Metrics.<name>.Max|Min|Last|Count`` or ``CreationTime`` reads the running summary or field
directly, and any other filter falls back to the generic evaluator for that filter alone, so answers are the same
(docs/experiments.md#search).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog, as_datetime
from infra.control_plane.experiments.experiment_records import TrialComponent
from infra.control_plane.experiments.search_expressions import RecordView, compare, filter_matches, values_at

Predicate = Callable[[TrialComponent], bool]
RecordOf = Callable[[TrialComponent], RecordView]

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.ne,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}
_STAT_FIELDS = {"Max": "maximum", "Min": "minimum", "Last": "last", "Count": "count"}
_MISSING = object()


def plannable(expression: Mapping[str, Any] | None) -> bool:
    """Whether the expression is a plain conjunction of filters (anything else is evaluated generically)."""
    if expression is None:
        return True
    return (
        expression.get("Operator", "And") == "And"
        and not expression.get("NestedFilters")
        and not expression.get("SubExpressions")
    )


def compile_filters(
    catalog: ExperimentCatalog, expression: Mapping[str, Any] | None, record_of: RecordOf
) -> list[Predicate]:
    """One predicate per filter of a :func:`plannable` expression, the most selective (parents) first."""
    filters = list((expression or {}).get("Filters") or [])
    filters.sort(key=lambda item: not str(item["Name"]).startswith("Parents."))
    return [_predicate(catalog, item, record_of) for item in filters]


def _predicate(catalog: ExperimentCatalog, item: Mapping[str, Any], record_of: RecordOf) -> Predicate:
    name, op = str(item["Name"]), str(item.get("Operator", "Equals"))
    parts = name.split(".")
    if op == "Equals" and parts[0] == "Parents" and len(parts) == 2 and parts[1] in ("ExperimentName", "TrialName"):
        names = _components_of_parents(catalog, parts[1], str(item["Value"]))
        return lambda component: component.name in names
    if parts[0] == "Metrics" and len(parts) == 3 and parts[2] in _STAT_FIELDS and op in _ORDER:
        wanted = _number(item["Value"])
        if wanted is not None:
            return _metric_predicate(parts[1], _STAT_FIELDS[parts[2]], _ORDER[op], wanted, op == "NotEquals")
    if name == "CreationTime" and op in _ORDER:
        moment = as_datetime(item["Value"]) if _is_time(item["Value"]) else None
        if moment is not None:
            compare_to = _ORDER[op]
            return lambda component: compare_to(component.creation_time, moment)
    return lambda component: filter_matches(values_at(record_of(component), name), item)


def _metric_predicate(
    metric: str, field: str, compare_to: Callable[[Any, Any], bool], wanted: float, negated: bool
) -> Predicate:
    def matches(component: TrialComponent) -> bool:
        summary = component.metrics.get(metric)
        if summary is None:
            return negated  # no value: NotEquals holds, every other comparison fails (as the generic evaluator)
        return compare_to(getattr(summary, field), wanted)

    return matches


def _components_of_parents(catalog: ExperimentCatalog, member: str, value: str) -> frozenset[str]:
    """Names of the components associated with a trial whose ``member`` equals ``value`` (Search's equality)."""
    names: set[str] = set()
    for trial in catalog.trials.values():
        parent = trial.experiment_name if member == "ExperimentName" else trial.name
        if compare(parent, value) == 0:
            names.update(trial.components)
    return frozenset(names)


def sort_key(path: str) -> Callable[[TrialComponent], Any] | None:
    """A direct reader of the sort property (``None``: missing), or None when the generic walk must read it.

    Each reader's values are of one type (numbers, times or names), so they sort as they are."""
    parts = path.split(".")
    if parts[0] == "Metrics" and len(parts) == 3 and parts[2] in _STAT_FIELDS:
        metric, field = parts[1], _STAT_FIELDS[parts[2]]

        def metric_value(component: TrialComponent) -> Any:
            summary = component.metrics.get(metric)
            return None if summary is None else getattr(summary, field)

        return metric_value
    if path == "CreationTime":
        return lambda component: component.creation_time
    if path == "TrialComponentName":
        return lambda component: component.name
    return None


def _number(value: Any) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def _is_time(value: Any) -> bool:
    try:
        as_datetime(value)
    except ValueError:
        return False
    return True
