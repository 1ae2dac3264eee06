"""Trial component handlers: Create/Describe/List/Update/Delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import tags_from
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog, as_datetime
from infra.control_plane.experiments.experiment_records import TrialComponent, trial_component_fields
from infra.control_plane.experiments.experiments_api import list_params, name_of
from infra.control_plane.experiments.metric_series import MetricSeries

_COMPONENTS: ListSpec[TrialComponent] = ListSpec(name=lambda c: c.name, creation_time=lambda c: c.creation_time)
_TIMES = ("start_time", "end_time")


class TrialComponents:
    """The trial-component operations of one account/region; the metric points live in ``series``."""

    def __init__(self, catalog: ExperimentCatalog, series: MetricSeries) -> None:
        self._catalog = catalog
        self._series = series
        self.tags = catalog.tags

    def create_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TrialComponentName"])
        component = TrialComponent(name, self._catalog.arn("experiment-trial-component", name))
        _apply(component, params)
        self._catalog.add_component(component, tags_from(params))
        return {"TrialComponentArn": component.arn}

    def describe_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        component = self._catalog.components.get_or_raise(name_of(str(params["TrialComponentName"])))
        body = component.to_api()
        body["RunName"] = component.run_name
        return body

    def list_trial_components(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        given = [key for key in ("ExperimentName", "TrialName", "SourceArn") if params.get(key)]
        if len(given) > 1:
            raise ValidationException(f"Only one of ExperimentName, TrialName or SourceArn may be given: {given}.")
        page, token = paginate(self._selected(params), list_params(params), _COMPONENTS)
        return {"TrialComponentSummaries": [c.summary() for c in page], "NextToken": token}

    def _selected(self, params: Mapping[str, Any]) -> list[TrialComponent]:
        components = self._catalog.components.values()
        if params.get("TrialName"):
            trial = self._catalog.trials.get_or_raise(str(params["TrialName"]))
            return [c for c in components if trial.name in c.trials]
        if params.get("ExperimentName"):
            experiment = self._catalog.experiments.get_or_raise(str(params["ExperimentName"])).name
            trials = {t.name for t in self._catalog.trials.values() if t.experiment_name == experiment}
            return [c for c in components if trials.intersection(c.trials)]
        if params.get("SourceArn"):
            arn = str(params["SourceArn"]).lower()
            return [c for c in components if c.source and c.source["SourceArn"].lower() == arn]
        return components

    def update_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        component = self._catalog.components.get_or_raise(name_of(str(params["TrialComponentName"])))
        with component.lock:
            _apply(component, params)
            for key, attr in (
                ("ParametersToRemove", "parameters"),
                ("InputArtifactsToRemove", "input_artifacts"),
                ("OutputArtifactsToRemove", "output_artifacts"),
            ):
                for removed in params.get(key) or []:
                    getattr(component, attr).pop(removed, None)
            component.touch()
        return {"TrialComponentArn": component.arn}

    def delete_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = name_of(str(params["TrialComponentName"]))
        with self._catalog.lock:
            component = self._catalog.components.get_or_raise(name)
            if component.trials:
                raise ValidationException(
                    f"TrialComponent {name} is associated with trial(s) {', '.join(component.trials)}: "
                    "disassociate it before deleting it."
                )
            self._catalog.components.remove(name)
            self._catalog.tags.pop(component.arn, None)
        self._series.forget(component.arn)
        return {"TrialComponentArn": component.arn}


def _apply(component: TrialComponent, params: Mapping[str, Any]) -> None:
    for attr, value in trial_component_fields(params).items():
        setattr(component, attr, as_datetime(value) if attr in _TIMES else value)
    for key, attr in (
        ("Parameters", "parameters"),
        ("InputArtifacts", "input_artifacts"),
        ("OutputArtifacts", "output_artifacts"),
    ):
        for item, value in (params.get(key) or {}).items():
            getattr(component, attr)[item] = dict(value)
    if component.start_time and component.end_time and component.end_time < component.start_time:
        raise ValidationException("EndTime must not be earlier than StartTime.")
