"""``Search``: filter, sort and page the records of one resource type, as AWS answers them.

The Experiments records come from the catalog; the other resource types come from record providers the composition
root wires in (``sagemaker_backend.py``): each returns the resource's Describe answer plus its ``Tags``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from operator import itemgetter
from typing import Any

import botocore.session

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog
from infra.control_plane.experiments.experiment_records import Experiment, Trial, TrialComponent
from infra.control_plane.experiments.search_expressions import (
    RecordView,
    check_expression,
    check_property,
    matches,
    sort_value,
)
from infra.control_plane.experiments.search_plan import compile_filters, plannable, sort_key

Getter = Callable[[ExperimentCatalog, Any], Any]

RecordProvider = Callable[[], Sequence[Mapping[str, Any]]]
DEFAULT_MAX_RESULTS = 10
# Search's Resource -> the SearchRecord member holding it.
RECORD_KEYS = {
    "TrainingJob": "TrainingJob",
    "Experiment": "Experiment",
    "ExperimentTrial": "Trial",
    "ExperimentTrialComponent": "TrialComponent",
    "Endpoint": "Endpoint",
    "Model": "Model",
    "ModelPackage": "ModelPackage",
    "ModelPackageGroup": "ModelPackageGroup",
    "Pipeline": "Pipeline",
    "PipelineExecution": "PipelineExecution",
    "HyperParameterTuningJob": "HyperParameterTuningJob",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def record_members(record_key: str) -> frozenset[str]:
    """The property names a Search filter may start with: the members of the record's shape."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("SearchRecord").members[record_key]
    return frozenset(shape.members)


def _summaries(component: TrialComponent) -> list[dict[str, Any]] | None:
    with component.lock:
        return [summary.to_api() for summary in component.metrics.values()] or None


_COMPONENT_FIELDS: dict[str, Getter] = {
    "TrialComponentName": lambda _, c: c.name,
    "TrialComponentArn": lambda _, c: c.arn,
    "DisplayName": lambda _, c: c.display_name or c.name,
    "Source": lambda _, c: c.source,
    "Status": lambda _, c: c.status_info,
    "StartTime": lambda _, c: c.start_time,
    "EndTime": lambda _, c: c.end_time,
    "CreationTime": lambda _, c: c.creation_time,
    "LastModifiedTime": lambda _, c: c.last_modified,
    "Parameters": lambda _, c: dict(c.parameters) or None,
    "InputArtifacts": lambda _, c: dict(c.input_artifacts) or None,
    "OutputArtifacts": lambda _, c: dict(c.output_artifacts) or None,
    "Metrics": lambda _, c: _summaries(c),
    "MetadataProperties": lambda _, c: c.metadata_properties,
    "SourceDetail": lambda _, c: c.source_detail,
    "Tags": lambda catalog, c: catalog.tags.get(c.arn, []),
    "Parents": lambda catalog, c: catalog.parents(c),
    "RunName": lambda _, c: c.run_name,
}


class Search:
    def __init__(self, catalog: ExperimentCatalog, providers: Mapping[str, RecordProvider]) -> None:
        self._catalog = catalog
        self._providers = {**self._own_providers(), **providers}
        self.tags: dict[str, list[dict[str, str]]] = {}  # nothing taggable here (core.resource_tags reads it)

    def search(self, params: Mapping[str, Any]) -> dict[str, Any]:
        resource = str(params["Resource"])
        provider = self._providers.get(resource)
        if provider is None:
            raise ValidationException(f"Search over {resource} is not supported by the Sagestack local stack.")
        key = RECORD_KEYS[resource]
        known = set(record_members(key))
        expression = params.get("SearchExpression")
        if expression is not None:
            check_expression(expression, known)
        sort_by = params.get("SortBy")
        if sort_by:
            check_property(str(sort_by), known)
        self._catalog.sync()
        descending = params.get("SortOrder", "Descending") == "Descending"
        order = str(sort_by or "CreationTime")
        if resource == "ExperimentTrialComponent" and plannable(expression):
            found, build = self._planned_components(expression, order, descending)
        else:
            found = [r for r in provider() if expression is None or matches(r, expression)]
            _sort(found, order, descending)
            build = dict
        start = _offset(params.get("NextToken"))
        size = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
        page = found[start : start + size]
        more = start + size < len(found)
        return {
            "Results": [{key: dict(build(item))} for item in page],
            "NextToken": _token(start + size) if more else None,
            "TotalHits": {"Value": len(found), "Relation": "EqualTo"},
        }

    def _planned_components(
        self, expression: Mapping[str, Any] | None, order: str, descending: bool
    ) -> tuple[list[Any], Callable[[Any], Mapping[str, Any]]]:
        """Trial components through the query plan (docs/experiments.md#search): filter and sort the records
        themselves; only the page's Search views are built (the second item turns one into its view)."""
        catalog = self._catalog

        def record_of(component: TrialComponent) -> RecordView:
            return _component_record(catalog, component)

        found = catalog.components.values()
        for predicate in compile_filters(catalog, expression, record_of):
            found = [c for c in found if predicate(c)]
        read = sort_key(order)
        if read is None:  # a property without a direct reader: sort the views as the generic path does
            records: list[Mapping[str, Any]] = [record_of(c) for c in found]
            _sort(records, order, descending)
            return records, dict
        pairs = [(read(c), c) for c in found]
        valued = [pair for pair in pairs if pair[0] is not None]
        valued.sort(key=itemgetter(0), reverse=descending)
        missing = [c for value, c in pairs if value is None]  # records without the property come last
        return [c for _, c in valued] + missing, record_of

    def _own_providers(self) -> dict[str, RecordProvider]:
        catalog = self._catalog

        def experiments() -> list[Mapping[str, Any]]:
            return [_experiment_record(catalog, e) for e in catalog.experiments.values()]

        def trials() -> list[Mapping[str, Any]]:
            return [_trial_record(catalog, t) for t in catalog.trials.values()]

        def components() -> list[Mapping[str, Any]]:
            return [_component_record(catalog, c) for c in catalog.components.values()]

        return {"Experiment": experiments, "ExperimentTrial": trials, "ExperimentTrialComponent": components}


def _experiment_record(catalog: ExperimentCatalog, experiment: Experiment) -> dict[str, Any]:
    return {**experiment.to_api(), "Tags": catalog.tags.get(experiment.arn, [])}


def _trial_record(catalog: ExperimentCatalog, trial: Trial) -> dict[str, Any]:
    return {
        **trial.to_api(),
        "Tags": catalog.tags.get(trial.arn, []),
        "TrialComponentSummaries": _component_summaries(catalog, trial.components),
    }


def _metric_stat(_: ExperimentCatalog, component: TrialComponent, rest: list[str]) -> list[Any] | None:
    """``Metrics.<name>.<stat>`` straight from the running summary (the hot path of Search over runs)."""
    if len(rest) != 2:
        return None
    summary = component.metrics.get(rest[0])
    if summary is None:
        return []
    fast = {"Max": summary.maximum, "Min": summary.minimum, "Last": summary.last, "Count": summary.count}
    return [fast[rest[1]]] if rest[1] in fast else [summary.to_api().get(rest[1])]


def _parent(catalog: ExperimentCatalog, component: TrialComponent, rest: list[str]) -> list[Any] | None:
    """``Parents.TrialName`` / ``Parents.ExperimentName`` without building the parents list."""
    if rest == ["TrialName"]:
        return list(component.trials)
    if rest != ["ExperimentName"]:
        return None
    trials = (catalog.trials.find(name) for name in list(component.trials))
    return [trial.experiment_name for trial in trials if trial is not None]


def _component_record(catalog: ExperimentCatalog, component: TrialComponent) -> RecordView:
    return RecordView(_COMPONENT_FIELDS, catalog, component, {"Metrics": _metric_stat, "Parents": _parent})


def _component_summaries(catalog: ExperimentCatalog, names: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        component = catalog.components.find(name)
        if component is not None:
            out.append(
                {
                    "TrialComponentName": component.name,
                    "TrialComponentArn": component.arn,
                    "CreationTime": component.creation_time,
                    "LastModifiedTime": component.last_modified,
                }
            )
    return out


def _sort(records: list[Mapping[str, Any]], sort_by: str, descending: bool) -> None:
    _sort_by_value(records, lambda record: sort_value(record, sort_by), descending)


def _sort_by_value(items: list[Any], read: Callable[[Any], Any], descending: bool) -> None:
    """Sort by one property: numbers as numbers, times as times, else text; items without it come last."""

    def key(item: Any) -> tuple[int, Any]:
        value = read(item)
        if value is None:
            return (0, 0) if descending else (1, 0)  # records without the property come last
        if isinstance(value, datetime):
            return (1 if descending else 0, (value - _EPOCH).total_seconds())
        if isinstance(value, int | float):
            return (1 if descending else 0, float(value))
        return (1 if descending else 0, str(value))

    try:
        items.sort(key=key, reverse=descending)
    except TypeError:  # numbers and text under one property: order them as text
        items.sort(key=lambda item: str(read(item)), reverse=descending)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"search:{offset}".encode()).decode("ascii")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode("ascii")).decode().removeprefix("search:")))
    except (ValueError, UnicodeError) as exc:
        raise ValidationException(f"Invalid pagination token: {token}") from exc
