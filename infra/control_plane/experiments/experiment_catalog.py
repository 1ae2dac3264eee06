"""The Experiments state of one account/region: three stores, the associations, and a sync hook.

The hook (:meth:`ExperimentCatalog.on_read`) lets job tracking bring job-backed trial components up to date before
any Experiments, Search or metrics operation reads them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from infra.control_plane.core.errors import ResourceNotFound, ValidationException
from infra.control_plane.core.resource_helpers import arn_for, utcnow
from infra.control_plane.core.store import DurableMap, Store
from infra.control_plane.experiments.experiment_records import Experiment, Trial, TrialComponent


def _missing(kind: str, arn_kind: str, account_id: str, region: str) -> Callable[[str], ResourceNotFound]:
    def build(name: str) -> ResourceNotFound:
        return ResourceNotFound(f"{kind} '{arn_for(arn_kind, name, account_id, region)}' does not exist.")

    return build


def _duplicate(kind: str) -> Callable[[str], ValidationException]:
    def build(name: str) -> ValidationException:
        return ValidationException(f"{kind} with name {name} already exists.")

    return build


def as_datetime(value: Any) -> datetime:
    """A request timestamp (epoch seconds, ISO 8601 or datetime) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ExperimentCatalog:
    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        # Durable under the record journal: state survives stack restarts (docs/experiments.md#what-differs-from-aws).
        self.experiments: Store[Experiment] = Store(
            "experiment", _missing("Experiment", "experiment", account_id, region), Experiment
        )
        self.trials: Store[Trial] = Store("trial", _missing("Trial", "experiment-trial", account_id, region), Trial)
        self.components: Store[TrialComponent] = Store(
            "trial-component",
            _missing("TrialComponent", "experiment-trial-component", account_id, region),
            TrialComponent,
        )
        self.tags: MutableMapping[str, list[dict[str, str]]] = DurableMap("experiments-tags", list)
        self.lock = threading.RLock()  # associations change two records together
        self._readers: list[Callable[[], None]] = []

    def on_read(self, sync: Callable[[], None]) -> None:
        """Run ``sync`` before every read (job tracking registers its refresh here)."""
        self._readers.append(sync)

    def sync(self) -> None:
        for sync in self._readers:
            sync()

    def arn(self, kind: str, name: str) -> str:
        return arn_for(kind, name, self.account_id, self.region)

    # --- creation, shared by the API handlers and job tracking -------------------------------------------------
    def add_experiment(self, experiment: Experiment, tags: list[dict[str, str]]) -> Experiment:
        self.experiments.add(experiment.name, experiment, _duplicate("Experiment"))
        self.tags[experiment.arn] = tags
        return experiment

    def add_trial(self, trial: Trial, tags: list[dict[str, str]]) -> Trial:
        self.experiments.get_or_raise(trial.experiment_name)
        self.trials.add(trial.name, trial, _duplicate("Trial"))
        self.tags[trial.arn] = tags
        return trial

    def add_component(self, component: TrialComponent, tags: list[dict[str, str]]) -> TrialComponent:
        self.components.add(component.name, component, _duplicate("TrialComponent"))
        self.tags[component.arn] = tags
        return component

    def ensure_experiment(self, name: str, source: dict[str, str] | None = None) -> Experiment:
        with self.lock:
            found = self.experiments.find(name)
            if found is not None:
                return found
            return self.add_experiment(Experiment(name, self.arn("experiment", name), source=source), [])

    def ensure_trial(self, name: str, experiment_name: str, source: dict[str, str] | None = None) -> Trial:
        with self.lock:
            found = self.trials.find(name)
            if found is not None:
                return found
            self.ensure_experiment(experiment_name)
            trial = Trial(name, self.arn("experiment-trial", name), experiment_name, source=source)
            return self.add_trial(trial, [])

    def associate(self, component_name: str, trial_name: str, *, strict: bool = True) -> tuple[TrialComponent, Trial]:
        with self.lock:
            component = self.components.get_or_raise(component_name)
            trial = self.trials.get_or_raise(trial_name)
            if trial.name in component.trials:
                if strict:
                    raise ValidationException(
                        f"TrialComponent {component.name} is already associated with Trial {trial.name}."
                    )
                return component, trial
            trial.components.append(component.name)
            component.trials.append(trial.name)
            trial.last_modified = utcnow()
            return component, trial

    def disassociate(self, component_name: str, trial_name: str) -> tuple[TrialComponent, Trial]:
        with self.lock:
            component = self.components.get_or_raise(component_name)
            trial = self.trials.get_or_raise(trial_name)
            if trial.name not in component.trials:
                raise ResourceNotFound(f"TrialComponent {component.name} is not associated with Trial {trial.name}.")
            trial.components.remove(component.name)
            component.trials.remove(trial.name)
            trial.last_modified = utcnow()
            return component, trial

    def parents(self, component: TrialComponent) -> list[dict[str, str]]:
        parents = []
        for trial_name in list(component.trials):
            trial = self.trials.find(trial_name)
            if trial is not None:
                parents.append({"TrialName": trial.name, "ExperimentName": trial.experiment_name})
        return parents
