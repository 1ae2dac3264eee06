"""CreateHyperParameterTuningJob: the checks the service makes at Create time, and the training-job requests.

Everything a tuning job needs at run time is parsed once here into a frozen :class:`TuningPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import StructureShape

from infra.control_plane.core.errors import ResourceLimitExceeded, ServiceError, ValidationException
from infra.control_plane.core.validation import validate_request
from infra.control_plane.training.builtin_metrics import builtin_metric_definitions
from infra.control_plane.tuning.tuning_space import SearchSpace, has_numeric_ranges, parse_space, range_names

OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
EPOCH_HYPERPARAMETERS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
MAX_HYPERBAND_RESOURCE = 20000
MAX_HYPERPARAMETERS = 100
# docs/algorithms/xgboost.md#metrics: the metrics the XGBoost container knows; ``validation:<m>`` is tunable for each.
XGBOOST_MAXIMIZE = (
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg", "precision",
    "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
)  # fmt: skip
XGBOOST_MINIMIZE = (
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy",
    "logloss", "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle",
    "tweedie-nloglik",
)  # fmt: skip
KMEANS_TUNABLE = ("test:msd", "test:ssd")
_CHILD_KEYS = (
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "StoppingCondition",
    "VpcConfig",
    "CheckpointConfig",
    "Environment",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "RetryStrategy",
)


@dataclass(frozen=True)
class TuningLimits:
    max_training_jobs: int = 750
    max_random_training_jobs: int = 10000
    max_parallel_training_jobs: int = 10


@dataclass(frozen=True)
class Objective:
    type: str
    metric: str

    @property
    def maximize(self) -> bool:
        return self.type == "Maximize"

    def to_api(self) -> dict[str, str]:
        return {"Type": self.type, "MetricName": self.metric}


@dataclass(frozen=True)
class Definition:
    name: str | None
    raw: Mapping[str, Any]
    objective: Objective
    space: SearchSpace
    regex: str

    @property
    def image(self) -> str:
        return str((self.raw.get("AlgorithmSpecification") or {}).get("TrainingImage") or "")


@dataclass(frozen=True)
class TuningPlan:
    strategy: str
    max_jobs: int
    max_parallel: int
    max_runtime_seconds: int | None
    definitions: tuple[Definition, ...]
    early_stopping: bool
    resources: tuple[int, int] | None
    seed: int | None
    target_value: float | None
    max_not_improving: int | None

    @property
    def objective(self) -> Objective:
        return self.definitions[0].objective


def plan_tuning_job(params: Mapping[str, Any], limits: TuningLimits) -> TuningPlan:
    """Parse and check a CreateHyperParameterTuningJob request (raises the AWS error on bad input)."""
    config: Mapping[str, Any] = params["HyperParameterTuningJobConfig"]
    strategy = str(config["Strategy"])
    if config.get("Autotune") or params.get("Autotune"):
        raise ValidationException("Autotune is not supported by the Sagestack local control plane.")
    _check_strategy_options(config, strategy)
    definitions = tuple(_definition(raw, config, strategy) for raw in _raw_definitions(params))
    criteria = config.get("TuningJobCompletionCriteria") or {}
    limits_config = config["ResourceLimits"]
    plan = TuningPlan(
        strategy=strategy,
        max_jobs=_max_jobs(limits_config, definitions, strategy, limits),
        max_parallel=_max_parallel(limits_config, limits),
        max_runtime_seconds=limits_config.get("MaxRuntimeInSeconds"),
        definitions=definitions,
        early_stopping=config.get("TrainingJobEarlyStoppingType", "Off") == "Auto",
        resources=_resources(config, definitions) if strategy == "Hyperband" else None,
        seed=config.get("RandomSeed"),
        target_value=criteria.get("TargetObjectiveMetricValue"),
        max_not_improving=(criteria.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving"),
    )
    for definition in definitions:
        _check_child_request(definition)
    return plan


def _check_strategy_options(config: Mapping[str, Any], strategy: str) -> None:
    if config.get("StrategyConfig") and strategy != "Hyperband":
        raise ValidationException("StrategyConfig is only valid when the Strategy is Hyperband.")
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise ValidationException("TrainingJobEarlyStoppingType must be Off when the Strategy is Hyperband.")


def _raw_definitions(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    single = params.get("TrainingJobDefinition")
    several: list[Mapping[str, Any]] = params.get("TrainingJobDefinitions") or []
    if bool(single) == bool(several):
        raise ValidationException("Exactly one of TrainingJobDefinition or TrainingJobDefinitions must be provided.")
    if single:
        return [single]
    names = [d.get("DefinitionName") for d in several]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValidationException("Each of TrainingJobDefinitions needs a unique DefinitionName.")
    return several


def _definition(raw: Mapping[str, Any], config: Mapping[str, Any], strategy: str) -> Definition:
    objective_raw = raw.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
    if not objective_raw:
        raise ValidationException(
            "A HyperParameterTuningJobObjective or a TuningObjective in every training job definition is required."
        )
    objective = Objective(str(objective_raw["Type"]), str(objective_raw["MetricName"]))
    ranges = raw.get("HyperParameterRanges") or config.get("ParameterRanges")
    space = parse_space(ranges)
    if not space.ranges:
        raise ValidationException("At least one hyperparameter range is required in ParameterRanges.")
    if strategy == "Grid" and has_numeric_ranges(ranges):
        raise ValidationException(
            "The Grid search strategy supports only categorical parameter ranges; remove the Integer and "
            "Continuous parameter ranges or choose another strategy."
        )
    _check_static(raw.get("StaticHyperParameters") or {}, range_names(ranges))
    spec = raw.get("AlgorithmSpecification") or {}
    if not spec.get("TrainingImage"):
        raise ValidationException("AlgorithmSpecification.TrainingImage is required (AlgorithmName is not supported).")
    regex = objective_regex(str(spec["TrainingImage"]), spec.get("MetricDefinitions") or [], objective.metric)
    return Definition(raw.get("DefinitionName"), raw, objective, space, regex)


def _check_static(static: Mapping[str, str], tuned: Sequence[str]) -> None:
    overlap = sorted(set(static) & set(tuned))
    if overlap:
        raise ValidationException(
            f"The hyperparameter(s) {', '.join(overlap)} cannot be both static and tunable; remove them from "
            "StaticHyperParameters or from the parameter ranges."
        )
    if OBJECTIVE_HYPERPARAMETER in tuned:
        raise ValidationException(f"{OBJECTIVE_HYPERPARAMETER} is reserved and cannot be tuned.")
    total = len(set(static) | set(tuned) | {OBJECTIVE_HYPERPARAMETER})
    if total > MAX_HYPERPARAMETERS:
        raise ValidationException(
            f"The training job would have {total} hyperparameters (static + tunable + {OBJECTIVE_HYPERPARAMETER}); "
            f"the limit is {MAX_HYPERPARAMETERS}."
        )


def objective_regex(image: str, metric_definitions: Sequence[Mapping[str, Any]], metric: str) -> str:
    """The regex that reads ``metric`` from the job's logs, or the ``ValidationException`` AWS answers."""
    for definition in metric_definitions:
        if definition.get("Name") == metric:
            return str(definition["Regex"])
    builtin = builtin_metric_definitions(image)
    if builtin:
        tunable = _builtin_tunable(image, builtin)
        if metric in tunable:
            return tunable[metric]
        raise ValidationException(
            f"The objective metric {metric} is not supported for the algorithm in {image}. Supported objective "
            f"metrics: {', '.join(sorted(tunable))}."
        )
    raise ValidationException(
        f"The objective metric {metric} is not defined in AlgorithmSpecification.MetricDefinitions; add a metric "
        "definition with this name and a regex for it."
    )


def _builtin_tunable(image: str, builtin: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if any(d["Name"] == "test:msd" for d in builtin):
        return {d["Name"]: d["Regex"] for d in builtin if d["Name"] in KMEANS_TUNABLE}
    return {
        f"validation:{name}": f".*\\[[0-9]+\\].*#011validation-{name}:(\\S+)"
        for name in (*XGBOOST_MAXIMIZE, *XGBOOST_MINIMIZE)
    }


def _max_jobs(config: Mapping[str, Any], definitions: Sequence[Definition], strategy: str, limits: TuningLimits) -> int:
    requested = config.get("MaxNumberOfTrainingJobs")
    if strategy == "Grid":
        combinations = sum(d.space.grid_size() for d in definitions)
        if requested is not None and requested != combinations:
            raise ValidationException(
                f"With the Grid strategy MaxNumberOfTrainingJobs must be omitted or equal the number of "
                f"combinations of the categorical values ({combinations}), got {requested}."
            )
        requested = combinations
    if requested is None:
        raise ValidationException("ResourceLimits.MaxNumberOfTrainingJobs is required unless the Strategy is Grid.")
    limit = limits.max_random_training_jobs if strategy == "Random" else limits.max_training_jobs
    if requested > limit:
        raise ResourceLimitExceeded(
            f"The account-level service limit 'Number of training jobs per hyperparameter tuning job' is {limit} "
            f"jobs, with current utilization of 0 jobs and a request delta of {requested} jobs."
        )
    return int(requested)


def _max_parallel(config: Mapping[str, Any], limits: TuningLimits) -> int:
    parallel = int(config["MaxParallelTrainingJobs"])
    if parallel > limits.max_parallel_training_jobs:
        raise ResourceLimitExceeded(
            f"The account-level service limit 'Number of parallel training jobs per hyperparameter tuning job' is "
            f"{limits.max_parallel_training_jobs} jobs, with a request delta of {parallel} jobs."
        )
    return parallel


def _resources(config: Mapping[str, Any], definitions: Sequence[Definition]) -> tuple[int, int]:
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    low = int(hyperband.get("MinResource") or 1)
    high = hyperband.get("MaxResource")
    if high is None:
        static = definitions[0].raw.get("StaticHyperParameters") or {}
        found = next((static[k] for k in EPOCH_HYPERPARAMETERS if k in static), None)
        if found is None:
            raise ValidationException(
                "HyperbandStrategyConfig.MaxResource is required when no static hyperparameter "
                f"({', '.join(EPOCH_HYPERPARAMETERS)}) gives the number of epochs."
            )
        high = int(found)
    if int(high) > MAX_HYPERBAND_RESOURCE or low > int(high):
        raise ValidationException(
            f"Hyperband needs MinResource <= MaxResource <= {MAX_HYPERBAND_RESOURCE}, got {low} and {high}."
        )
    return low, int(high)


def child_request(definition: Definition, name: str, tuned: Mapping[str, str], threads: int | None) -> dict[str, Any]:
    """The CreateTrainingJob request for one training job of the tuning job."""
    raw = definition.raw
    request: dict[str, Any] = {key: raw[key] for key in _CHILD_KEYS if raw.get(key) is not None}
    spec = raw.get("AlgorithmSpecification") or {}
    request["TrainingJobName"] = name
    request["AlgorithmSpecification"] = {
        key: spec[key] for key in ("TrainingImage", "TrainingInputMode", "MetricDefinitions") if spec.get(key)
    }
    request["HyperParameters"] = {
        **(raw.get("StaticHyperParameters") or {}),
        **tuned,
        OBJECTIVE_HYPERPARAMETER: definition.objective.metric,
    }
    request["ResourceConfig"] = _resource_config(raw)
    # AWS describes KmsKeyId "" when none is set; the SDK's Estimator.attach (tuner.deploy) reads it.
    request["OutputDataConfig"] = {"KmsKeyId": "", **raw["OutputDataConfig"]}
    environment = dict(raw.get("Environment") or {})
    if threads is not None and "OMP_NUM_THREADS" not in environment:
        environment["OMP_NUM_THREADS"] = str(threads)
    if environment:
        request["Environment"] = environment
    return request


def _resource_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    if raw.get("ResourceConfig"):
        return dict(raw["ResourceConfig"])
    tuning = raw.get("HyperParameterTuningResourceConfig") or {}
    first = (tuning.get("InstanceConfigs") or [{}])[0]
    return {
        "InstanceType": tuning.get("InstanceType") or first.get("InstanceType") or "ml.m5.large",
        "InstanceCount": tuning.get("InstanceCount") or first.get("InstanceCount") or 1,
        "VolumeSizeInGB": tuning.get("VolumeSizeInGB") or first.get("VolumeSizeInGB") or 1,
    }


@lru_cache(maxsize=1)
def _training_job_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateTrainingJob").input_shape
    assert shape is not None
    return shape


def _check_child_request(definition: Definition) -> None:
    """The definition must make valid CreateTrainingJob requests (checked with a sample job name and values)."""
    sample = {r.name: r.to_string(r.from_unit(0.5)) for r in definition.space.ranges}
    try:
        validate_request(child_request(definition, "tuning-check-001-00000000", sample, None), _training_job_shape())
    except ServiceError as exc:
        raise ValidationException(f"The training job definition is not valid: {exc.message}") from exc
