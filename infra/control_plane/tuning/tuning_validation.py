"""CreateHyperParameterTuningJob: the checks the service makes at Create time, and the training-job requests.

Everything a tuning job needs at run time is planned once here, from the typed request, into a frozen
:class:`TuningPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.model import StructureShape

from infra.control_plane.core.api_shapes import MetricDefinition, given
from infra.control_plane.core.errors import ResourceLimitExceeded, ServiceError, ValidationException
from infra.control_plane.core.validation import validate_request
from infra.control_plane.training.builtin_metrics import builtin_metric_definitions
from infra.control_plane.tuning.tuning_request import (
    CreateHyperParameterTuningJobRequest,
    ResourceLimits,
    TrainingJobDefinition,
    TuningInstanceConfig,
    TuningJobConfig,
    TuningResourceConfig,
)
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
# The definition's members a child's CreateTrainingJob request takes over as sent.
_CHILD_KEYS = frozenset(
    {
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
    }
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
    request: TrainingJobDefinition
    objective: Objective
    space: SearchSpace
    regex: str


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


def plan_tuning_job(request: CreateHyperParameterTuningJobRequest, limits: TuningLimits) -> TuningPlan:
    """Check a CreateHyperParameterTuningJob request and plan it (raises the AWS error on bad input)."""
    config = request.hyper_parameter_tuning_job_config
    strategy = config.strategy
    if request.autotune is not None:
        raise ValidationException("Autotune is not supported by the Sagestack local control plane.")
    _check_strategy_options(config, strategy)
    definitions = tuple(_definition(sent, config, strategy) for sent in _definitions(request))
    criteria = config.tuning_job_completion_criteria
    plan = TuningPlan(
        strategy=strategy,
        max_jobs=_max_jobs(config.resource_limits, definitions, strategy, limits),
        max_parallel=_max_parallel(config.resource_limits, limits),
        max_runtime_seconds=config.resource_limits.max_runtime_in_seconds,
        definitions=definitions,
        early_stopping=config.training_job_early_stopping_type == "Auto",
        resources=_resources(config, definitions) if strategy == "Hyperband" else None,
        seed=config.random_seed,
        target_value=criteria.target_objective_metric_value,
        max_not_improving=criteria.best_objective_not_improving.max_number_of_training_jobs_not_improving,
    )
    for definition in definitions:
        _check_child_request(definition)
    return plan


def _check_strategy_options(config: TuningJobConfig, strategy: str) -> None:
    if given(config.strategy_config) and strategy != "Hyperband":
        raise ValidationException("StrategyConfig is only valid when the Strategy is Hyperband.")
    if strategy == "Hyperband" and config.training_job_early_stopping_type != "Off":
        raise ValidationException("TrainingJobEarlyStoppingType must be Off when the Strategy is Hyperband.")


def _definitions(request: CreateHyperParameterTuningJobRequest) -> tuple[TrainingJobDefinition, ...]:
    single, several = request.training_job_definition, request.training_job_definitions
    if (single is not None) == bool(several):
        raise ValidationException("Exactly one of TrainingJobDefinition or TrainingJobDefinitions must be provided.")
    if single is not None:
        return (single,)
    names = [d.definition_name for d in several]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ValidationException("Each of TrainingJobDefinitions needs a unique DefinitionName.")
    return several


def _definition(sent: TrainingJobDefinition, config: TuningJobConfig, strategy: str) -> Definition:
    objective_sent = sent.tuning_objective or config.hyper_parameter_tuning_job_objective
    if objective_sent is None:
        raise ValidationException(
            "A HyperParameterTuningJobObjective or a TuningObjective in every training job definition is required."
        )
    objective = Objective(objective_sent.type, objective_sent.metric_name)
    ranges = sent.hyper_parameter_ranges if given(sent.hyper_parameter_ranges) else config.parameter_ranges
    space = parse_space(ranges)
    if not space.ranges:
        raise ValidationException("At least one hyperparameter range is required in ParameterRanges.")
    if strategy == "Grid" and has_numeric_ranges(ranges):
        raise ValidationException(
            "The Grid search strategy supports only categorical parameter ranges; remove the Integer and "
            "Continuous parameter ranges or choose another strategy."
        )
    _check_static(sent.static_hyper_parameters, range_names(ranges))
    spec = sent.algorithm_specification
    if not spec.training_image:
        raise ValidationException("AlgorithmSpecification.TrainingImage is required (AlgorithmName is not supported).")
    regex = objective_regex(spec.training_image, spec.metric_definitions, objective.metric)
    return Definition(sent.definition_name, sent, objective, space, regex)


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


def objective_regex(image: str, metric_definitions: Sequence[MetricDefinition], metric: str) -> str:
    """The regex that reads ``metric`` from the job's logs, or the ``ValidationException`` AWS answers."""
    for definition in metric_definitions:
        if definition.name == metric:
            return definition.regex
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


def _max_jobs(config: ResourceLimits, definitions: Sequence[Definition], strategy: str, limits: TuningLimits) -> int:
    requested = config.max_number_of_training_jobs
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


def _max_parallel(config: ResourceLimits, limits: TuningLimits) -> int:
    parallel = config.max_parallel_training_jobs
    if parallel > limits.max_parallel_training_jobs:
        raise ResourceLimitExceeded(
            f"The account-level service limit 'Number of parallel training jobs per hyperparameter tuning job' is "
            f"{limits.max_parallel_training_jobs} jobs, with a request delta of {parallel} jobs."
        )
    return parallel


def _resources(config: TuningJobConfig, definitions: Sequence[Definition]) -> tuple[int, int]:
    hyperband = config.strategy_config.hyperband_strategy_config if config.strategy_config else None
    low = int((hyperband.min_resource if hyperband else None) or 1)
    high = hyperband.max_resource if hyperband else None
    if high is None:
        static = definitions[0].request.static_hyper_parameters
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
    """The CreateTrainingJob request for one training job of the tuning job (``TrainingJobs`` parses it)."""
    sent = definition.request
    request: dict[str, Any] = {key: value for key, value in sent.wire().items() if key in _CHILD_KEYS}
    spec = sent.algorithm_specification.wire()
    request["TrainingJobName"] = name
    request["AlgorithmSpecification"] = {
        key: spec[key] for key in ("TrainingImage", "TrainingInputMode", "MetricDefinitions") if spec.get(key)
    }
    request["HyperParameters"] = {
        **sent.static_hyper_parameters,
        **tuned,
        OBJECTIVE_HYPERPARAMETER: definition.objective.metric,
    }
    request["ResourceConfig"] = _resource_config(sent)
    # AWS describes KmsKeyId "" when none is set; the SDK's Estimator.attach (tuner.deploy) reads it.
    request["OutputDataConfig"] = {"KmsKeyId": "", **sent.output_data_config.wire()}
    environment = dict(sent.environment)
    if threads is not None and "OMP_NUM_THREADS" not in environment:
        environment["OMP_NUM_THREADS"] = str(threads)
    if environment:
        request["Environment"] = environment
    return request


def child_instance_count(definition: Definition) -> int:
    """The instance count of each training job the definition makes."""
    return int(_resource_config(definition.request).get("InstanceCount") or 1)


def _resource_config(sent: TrainingJobDefinition) -> dict[str, Any]:
    if sent.resource_config is not None and given(sent.resource_config):
        return sent.resource_config.wire()
    tuning = sent.hyper_parameter_tuning_resource_config or TuningResourceConfig()
    first = (tuning.instance_configs or (TuningInstanceConfig(),))[0]
    return {
        "InstanceType": tuning.instance_type or first.instance_type or "ml.m5.large",
        "InstanceCount": tuning.instance_count or first.instance_count or 1,
        "VolumeSizeInGB": tuning.volume_size_in_gb or first.volume_size_in_gb or 1,
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
