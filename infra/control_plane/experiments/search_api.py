"""``Search``: filter, sort and page the records of one resource type, as AWS answers them.

The Experiments records come from the catalog; the other resource types come from record providers the composition
root wires in (``sagemaker_backend.py``): each returns the resource's Describe answer plus its ``Tags``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog
from infra.control_plane.experiments.experiment_records import Experiment, Trial, TrialComponent
from infra.control_plane.experiments.search_expressions import check_expression, check_property, matches, sort_value

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


class LazyRecord(Mapping[str, Any]):
    """A record whose fields are computed when a filter or the answer reads them (Search over many records)."""

    def __init__(self, fields: Mapping[str, Callable[[], Any]]) -> None:
        self._fields = fields
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            self._cache[key] = self._fields[key]()
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


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
        records = [r for r in provider() if expression is None or matches(r, expression)]
        _sort(records, str(sort_by or "CreationTime"), params.get("SortOrder", "Descending") == "Descending")
        start = _offset(params.get("NextToken"))
        size = int(params.get("MaxResults") or DEFAULT_MAX_RESULTS)
        page = records[start : start + size]
        more = start + size < len(records)
        return {
            "Results": [{key: dict(record)} for record in page],
            "NextToken": _token(start + size) if more else None,
            "TotalHits": {"Value": len(records), "Relation": "EqualTo"},
        }

    def _own_providers(self) -> dict[str, RecordProvider]:
        catalog = self._catalog

        def experiments() -> list[Mapping[str, Any]]:
            return [_experiment_record(catalog, e) for e in catalog.experiments.values()]

        def trials() -> list[Mapping[str, Any]]:
            return [_trial_record(catalog, t) for t in catalog.trials.values()]

        def components() -> list[Mapping[str, Any]]:
            return [_component_record(catalog, c) for c in catalog.components.values()]

        return {"Experiment": experiments, "ExperimentTrial": trials, "ExperimentTrialComponent": components}


def _experiment_record(catalog: ExperimentCatalog, experiment: Experiment) -> LazyRecord:
    fields = _fields(experiment.to_api)
    fields["Tags"] = lambda: catalog.tags.get(experiment.arn, [])
    return LazyRecord(fields)


def _trial_record(catalog: ExperimentCatalog, trial: Trial) -> LazyRecord:
    fields = _fields(trial.to_api)
    fields["Tags"] = lambda: catalog.tags.get(trial.arn, [])
    fields["TrialComponentSummaries"] = lambda: _component_summaries(catalog, trial.components)
    return LazyRecord(fields)


def _component_record(catalog: ExperimentCatalog, component: TrialComponent) -> LazyRecord:
    fields = _fields(component.to_api)
    fields["TrialComponentName"] = lambda: component.name
    fields["CreationTime"] = lambda: component.creation_time
    fields["Tags"] = lambda: catalog.tags.get(component.arn, [])
    fields["Parents"] = lambda: catalog.parents(component)
    fields["SourceDetail"] = lambda: component.source_detail
    fields["RunName"] = lambda: component.run_name
    return LazyRecord(fields)


def _fields(to_api: Callable[[], dict[str, Any]]) -> dict[str, Callable[[], Any]]:
    """Every key of ``to_api()``, computed once on first use of any of them."""
    memo: list[dict[str, Any]] = []

    def whole() -> dict[str, Any]:
        if not memo:
            memo.append(to_api())
        return memo[0]

    keys = (
        "ExperimentName ExperimentArn TrialName TrialArn TrialComponentName TrialComponentArn DisplayName Description "
        "Source Sources Status StartTime EndTime CreationTime LastModifiedTime Parameters InputArtifacts "
        "OutputArtifacts Metrics MetadataProperties ExperimentName"
    ).split()
    return {key: _getter(whole, key) for key in keys}


def _getter(whole: Callable[[], dict[str, Any]], key: str) -> Callable[[], Any]:
    return lambda: whole().get(key)


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
    def key(record: Mapping[str, Any]) -> tuple[int, Any]:
        value = sort_value(record, sort_by)
        if value is None:
            return (0, 0) if descending else (1, 0)  # records without the property come last
        if isinstance(value, datetime):
            return (1 if descending else 0, (value - _EPOCH).total_seconds())
        if isinstance(value, int | float):
            return (1 if descending else 0, float(value))
        return (1 if descending else 0, str(value))

    try:
        records.sort(key=key, reverse=descending)
    except TypeError:  # numbers and text under one property: order them as text
        records.sort(key=lambda r: str(sort_value(r, sort_by)), reverse=descending)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"search:{offset}".encode()).decode("ascii")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(base64.urlsafe_b64decode(token.encode("ascii")).decode().removeprefix("search:")))
    except (ValueError, UnicodeError) as exc:
        raise ValidationException(f"Invalid pagination token: {token}") from exc
