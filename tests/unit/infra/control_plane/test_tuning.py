"""Tuning internals: scaling, value strings, strategies, the median stopping rule, Create-time checks."""

import math

import pytest

from infra.control_plane.core.api_shapes import parse_request
from infra.control_plane.core.errors import ResourceLimitExceeded, ValidationException
from infra.control_plane.tuning.tuning_logs import ObjectiveReader
from infra.control_plane.tuning.tuning_request import CreateHyperParameterTuningJobRequest, ParameterRanges
from infra.control_plane.tuning.tuning_runner import median_rule_stops, threads_per_job
from infra.control_plane.tuning.tuning_search import build_strategy, startup_trials
from infra.control_plane.tuning.tuning_space import ScalingType, parse_space
from infra.control_plane.tuning.tuning_validation import TuningLimits, objective_regex, plan_tuning_job

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _space(kind, low, high, scaling="Auto"):
    key = "IntegerParameterRanges" if kind == "int" else "ContinuousParameterRanges"
    return parse_space(
        parse_request(
            ParameterRanges, {key: [{"Name": "p", "MinValue": low, "MaxValue": high, "ScalingType": scaling}]}
        )
    )


def test_auto_scaling_is_logarithmic_for_wide_positive_ranges():
    assert _space("float", "0.001", "1").ranges[0].scaling is ScalingType.LOGARITHMIC
    assert _space("float", "0.1", "1").ranges[0].scaling is ScalingType.LINEAR
    assert _space("float", "0", "1000").ranges[0].scaling is ScalingType.LINEAR


def test_scaled_sampling_formulas():
    log = _space("float", "0.001", "1", "Logarithmic").ranges[0]
    assert math.isclose(float(log.to_string(log.from_unit(0.5))), math.sqrt(0.001))
    reverse = _space("float", "0.9", "0.999", "ReverseLogarithmic").ranges[0]
    values = [float(reverse.to_string(reverse.from_unit(u / 10))) for u in range(10)]
    assert all(0.9 <= v <= 0.999 for v in values) and sorted(values, reverse=True) == values
    integer = _space("int", "1", "3", "Linear").ranges[0]
    assert [integer.to_string(integer.from_unit(u)) for u in (0.0, 0.5, 0.99)] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("kind", "low", "high", "scaling"),
    [("float", "2", "1", "Linear"), ("float", "0", "1", "Logarithmic"), ("int", "0", "1", "ReverseLogarithmic"),
     ("float", "0.5", "1", "ReverseLogarithmic"), ("int", "a", "3", "Linear")],
)  # fmt: skip
def test_bad_ranges_are_validation_errors(kind, low, high, scaling):
    with pytest.raises(ValidationException):
        _space(kind, low, high, scaling)


def test_grid_walks_every_combination_once():
    space = parse_space(
        parse_request(
            ParameterRanges,
            {"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2"]}, {"Name": "b", "Values": ["x", "y"]}]},
        )
    )
    grid = build_strategy("Grid", space, True, None, 4)
    seen = [grid.ask() for _ in range(5)]
    assert seen[-1] is None
    assert sorted(tuple(s.coordinates.values()) for s in seen[:4]) == [("1", "x"), ("1", "y"), ("2", "x"), ("2", "y")]


def test_bayesian_uses_warm_start_seeds_and_learns():
    space = _space("float", "0", "1", "Linear")
    search = build_strategy("Bayesian", space, True, 0, 20)
    for x in (0.05, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8):
        search.seed({"p": x}, -((x - 0.8) ** 2))
    points = []
    for _ in range(6):
        suggestion = search.ask()
        x = suggestion.coordinates["p"]
        search.tell(suggestion.number, -((x - 0.8) ** 2))
        points.append(x)
    assert sum(abs(x - 0.8) < 0.2 for x in points) >= 4  # past the seeds' start-up, TPE exploits near the optimum


def test_hyperband_prunes_weak_trials():
    space = _space("float", "0", "1", "Linear")
    search = build_strategy("Hyperband", space, True, 0, 30, (1, 9))
    trials = []  # (number, p, the last step it reported, pruned); a trial's objective curve is p * step
    for _ in range(30):
        suggestion = search.ask()
        x = suggestion.coordinates["p"]
        stop = False
        for step in range(1, 10):
            if search.report(suggestion.number, step, x * step):
                stop = True
                break
        search.tell(suggestion.number, x * step, pruned=stop)
        trials.append((suggestion.number, x, step, stop))
    pruned = [t for t in trials if t[3]]
    assert pruned and len(pruned) < len(trials)
    for number, x, step, _ in pruned:
        assert step in (1, 3, 9)  # stopped only at a rung: MinResource * 3**k up to MaxResource (eta = 3)
        # and because an earlier trial had reached that rung with a better value (it was not in the top 1/eta)
        assert any(other < number and p > x and reached >= step for other, p, reached, _ in trials), (number, x)
    assert all(step == 9 for _, _, step, stop in trials if not stop)  # the others ran to MaxResource
    assert not max(trials, key=lambda t: t[1])[3]  # the strongest trial is never pruned


def test_median_rule():
    others = [[0.8, 0.85, 0.9], [0.7, 0.75, 0.8]]
    assert median_rule_stops([0.5], others, maximize=True)
    assert not median_rule_stops([0.9], others, maximize=True)
    assert not median_rule_stops([0.5], others[:1], maximize=True)  # too few others
    assert median_rule_stops([2.0, 1.9], [[1.0, 0.9], [1.2, 1.0]], maximize=False)


def test_threads_and_startup():
    assert threads_per_job(8, 2, 10) == 4 and threads_per_job(2, 4, 10) == 1 and threads_per_job(8, 4, 1) == 8
    assert startup_trials(20) == 6 and startup_trials(4) == 3 and startup_trials(100) == 10


def test_objective_reader_reads_escaped_builtin_lines():
    reader = ObjectiveReader(objective_regex(XGB, [], "validation:auc"))
    assert reader.value_in("[3]\ttrain-auc:0.91234\tvalidation-auc:0.88765") == 0.88765
    assert reader.value_in("no metric here") is None


def _request(**config):
    body = {
        "HyperParameterTuningJobName": "t",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "5"}]},
            **config,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": XGB, "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            "StaticHyperParameters": {"num_round": "3"},
        },
    }
    return body


def _plan(body, limits):
    return plan_tuning_job(parse_request(CreateHyperParameterTuningJobRequest, body), limits)


def test_plan_parses_a_valid_request():
    plan = _plan(_request(), TuningLimits())
    assert plan.max_jobs == 3 and plan.objective.maximize and plan.definitions[0].space.names == ["max_depth"]


def test_plan_limits_and_hyperband_resources():
    with pytest.raises(ResourceLimitExceeded):
        _plan(
            _request(ResourceLimits={"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 3}),
            TuningLimits(max_parallel_training_jobs=2),
        )
    request = _request(Strategy="Hyperband")
    request["TrainingJobDefinition"]["StaticHyperParameters"]["epochs"] = "7"
    assert _plan(request, TuningLimits()).resources == (1, 7)
