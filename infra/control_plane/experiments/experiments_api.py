"""Experiment and trial handlers, and Associate/DisassociateTrialComponent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.core.pagination import ListSpec, paginate
from infra.control_plane.core.resource_helpers import tags_from, utcnow
from infra.control_plane.experiments.experiment_catalog import ExperimentCatalog
from infra.control_plane.experiments.experiment_records import Experiment, Trial

_EXPERIMENTS: ListSpec[Experiment] = ListSpec(name=lambda e: e.name, creation_time=lambda e: e.creation_time)
_TRIALS: ListSpec[Trial] = ListSpec(name=lambda t: t.name, creation_time=lambda t: t.creation_time)


def list_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The Experiments List* members in the shared paginator's terms (``CreatedAfter`` -> ``CreationTimeAfter``)."""
    return {
        **params,
        "CreationTimeAfter": params.get("CreatedAfter"),
        "CreationTimeBefore": params.get("CreatedBefore"),
    }


def name_of(value: str) -> str:
    """``TrialComponentName`` and friends accept a name or an ARN."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


class Experiments:
    """Create/Describe/List/Update/Delete for experiments and trials of one account/region."""

    def __init__(self, catalog: ExperimentCatalog) -> None:
        self._catalog = catalog
        self.tags = catalog.tags

    # --- experiments ---------------------------------------------------------------------------------------------
    def create_experiment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["ExperimentName"])
        experiment = Experiment(
            name,
            self._catalog.arn("experiment", name),
            display_name=params.get("DisplayName"),
            description=params.get("Description"),
        )
        self._catalog.add_experiment(experiment, tags_from(params))
        return {"ExperimentArn": experiment.arn}

    def describe_experiment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        return self._catalog.experiments.get_or_raise(str(params["ExperimentName"])).to_api()

    def list_experiments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        page, token = paginate(self._catalog.experiments.values(), list_params(params), _EXPERIMENTS)
        return {"ExperimentSummaries": [e.summary() for e in page], "NextToken": token}

    def update_experiment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        experiment = self._catalog.experiments.get_or_raise(str(params["ExperimentName"]))
        if params.get("DisplayName") is not None:
            experiment.display_name = str(params["DisplayName"])
        if params.get("Description") is not None:
            experiment.description = str(params["Description"])
        experiment.last_modified = utcnow()
        return {"ExperimentArn": experiment.arn}

    def delete_experiment(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["ExperimentName"])
        with self._catalog.lock:
            experiment = self._catalog.experiments.get_or_raise(name)
            if any(t.experiment_name == name for t in self._catalog.trials.values()):
                raise ValidationException(f"Experiment {name} still has trials: delete them before the experiment.")
            self._catalog.experiments.remove(name)
            self._catalog.tags.pop(experiment.arn, None)
        return {"ExperimentArn": experiment.arn}

    # --- trials --------------------------------------------------------------------------------------------------
    def create_trial(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TrialName"])
        trial = Trial(
            name,
            self._catalog.arn("experiment-trial", name),
            str(params["ExperimentName"]),
            display_name=params.get("DisplayName"),
            metadata_properties=params.get("MetadataProperties"),
        )
        self._catalog.add_trial(trial, tags_from(params))
        return {"TrialArn": trial.arn}

    def describe_trial(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        return self._catalog.trials.get_or_raise(str(params["TrialName"])).to_api()

    def list_trials(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        experiment, component = params.get("ExperimentName"), params.get("TrialComponentName")
        if experiment:
            self._catalog.experiments.get_or_raise(str(experiment))
        if component:
            self._catalog.components.get_or_raise(name_of(str(component)))
        trials = [
            t
            for t in self._catalog.trials.values()
            if (not experiment or t.experiment_name == experiment)
            and (not component or name_of(str(component)) in t.components)
        ]
        page, token = paginate(trials, list_params(params), _TRIALS)
        return {"TrialSummaries": [t.summary() for t in page], "NextToken": token}

    def update_trial(self, params: Mapping[str, Any]) -> dict[str, Any]:
        trial = self._catalog.trials.get_or_raise(str(params["TrialName"]))
        if params.get("DisplayName") is not None:
            trial.display_name = str(params["DisplayName"])
        trial.last_modified = utcnow()
        return {"TrialArn": trial.arn}

    def delete_trial(self, params: Mapping[str, Any]) -> dict[str, Any]:
        name = str(params["TrialName"])
        with self._catalog.lock:
            trial = self._catalog.trials.get_or_raise(name)
            if trial.components:
                raise ValidationException(
                    f"Trial {name} still has {len(trial.components)} trial component(s) associated: "
                    "disassociate them before deleting the trial."
                )
            self._catalog.trials.remove(name)
            self._catalog.tags.pop(trial.arn, None)
        return {"TrialArn": trial.arn}

    # --- associations --------------------------------------------------------------------------------------------
    def associate_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        component, trial = self._catalog.associate(name_of(str(params["TrialComponentName"])), str(params["TrialName"]))
        return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}

    def disassociate_trial_component(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._catalog.sync()
        component, trial = self._catalog.disassociate(
            name_of(str(params["TrialComponentName"])), str(params["TrialName"])
        )
        return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}
