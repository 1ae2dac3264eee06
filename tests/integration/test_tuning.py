"""Hyperparameter tuning jobs through boto3: strategies, validation at Create, early stopping, warm start, Stop."""

import re
import time

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, unique
from tests.integration.helpers import error_code, source_archive

DATA = "data/german_credit.csv"
KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
# A script-mode entry point whose objective ("score") is steered by hyperparameters: level, epochs, pause, crash.
SCORE_SCRIPT = b"""
import sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
level = {"good": 0.9, "fine": 0.8, "bad": 0.1}[args.get("--level", "good").strip('"')]
if args.get("--crash", "no").strip('"') == "yes":
    raise SystemExit("crashing on purpose")
for epoch in range(int(args.get("--epochs", "6"))):
    print(f"epoch={epoch} score={level + epoch / 1000:.4f}", flush=True)
    time.sleep(float(args.get("--pause", "0.3")))
"""


def one_hot_csv():
    frame = pd.read_csv(DATA)
    labels = frame.pop("risk")
    features = pd.get_dummies(frame, dtype=float)
    table = pd.concat([labels, features], axis=1)
    return table.iloc[:700].to_csv(header=False, index=False), table.iloc[700:].to_csv(header=False, index=False)


@pytest.fixture(scope="module")
def tuning_data(s3, bucket):
    train, validation = one_hot_csv()
    s3.put_object(Bucket=bucket, Key="tuning/train/train.csv", Body=train.encode())
    s3.put_object(Bucket=bucket, Key="tuning/validation/validation.csv", Body=validation.encode())
    archive = source_archive("score.py", SCORE_SCRIPT)
    s3.put_object(Bucket=bucket, Key="tuning/code/sourcedir.tar.gz", Body=archive)
    return bucket


def _channel(bucket, name):
    uri = f"s3://{bucket}/tuning/{name}"
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
        "ContentType": "text/csv",
    }


def definition(bucket, static=None, image=XGBOOST_IMAGE, metric_definitions=None):
    spec = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metric_definitions:
        spec["MetricDefinitions"] = metric_definitions
    return {
        "StaticHyperParameters": static or {"num_round": "5", "objective": "binary:logistic"},
        "AlgorithmSpecification": spec,
        "RoleArn": ROLE,
        "InputDataConfig": [_channel(bucket, "train"), _channel(bucket, "validation")],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/tuning/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


XGB_RANGES = {
    "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5", "ScalingType": "Logarithmic"}],
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "6"}],
}


def config(strategy="Random", ranges=None, max_jobs=3, parallel=2, metric="validation:auc", kind="Maximize", **extra):
    limits = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    body = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": metric},
        "ResourceLimits": limits,
        "ParameterRanges": XGB_RANGES if ranges is None else ranges,
    }
    body.update(extra)
    return body


def create(sm, bucket, name=None, job_config=None, job_definition=None, **extra):
    name = name or unique("tune")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=job_config or config(),
        TrainingJobDefinition=job_definition or definition(bucket),
        **extra,
    )
    return name


def wait_tuning(sm, name, timeout=150):
    deadline = time.monotonic() + timeout
    while True:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return described
        if time.monotonic() > deadline:
            pytest.fail(f"tuning job {name} still {described['HyperParameterTuningJobStatus']}")
        time.sleep(0.2)


def children(sm, name, **params):
    return sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, MaxResults=100, **params
    )["TrainingJobSummaries"]


def script_definition(bucket, extra_static=None):
    static = {
        "sagemaker_program": "score.py",
        "sagemaker_submit_directory": f"s3://{bucket}/tuning/code/sourcedir.tar.gz",
        **(extra_static or {}),
    }
    return definition(bucket, static, metric_definitions=[{"Name": "score", "Regex": r"score=([0-9.]+)"}])


def level_config(strategy="Grid", values=("good", "fine", "bad"), **extra):
    ranges = {"CategoricalParameterRanges": [{"Name": "level", "Values": list(values)}]}
    return config(strategy, ranges, max_jobs=None, parallel=1, metric="score", **extra)


@pytest.fixture(scope="module")
def random_job(sm, tuning_data):
    name = create(sm, tuning_data)
    return name, wait_tuning(sm, name)


def test_random_search_runs_real_training_jobs(sm, random_job):
    name, described = random_job
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 3
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 0}
    summaries = children(sm, name)
    assert len(summaries) == 3
    assert all(re.fullmatch(rf"{name}-00[1-3]-[0-9a-f]{{8}}", s["TrainingJobName"]) for s in summaries)
    best = max(summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert described["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert set(best["TunedHyperParameters"]) == {"eta", "max_depth"}
    job = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert job["HyperParameters"]["_tuning_objective_metric"] == "validation:auc"
    assert job["HyperParameters"]["num_round"] == "5"
    assert "OMP_NUM_THREADS" in job["Environment"]
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["validation:auc"] == best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    listed = sm.list_training_jobs(NameContains=name, MaxResults=100)["TrainingJobSummaries"]
    assert len(listed) == 3


def test_list_and_sort_by_objective(sm, random_job):
    name, _ = random_job
    ordered = children(sm, name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in ordered]
    assert values == sorted(values, reverse=True)
    page = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name, MaxResults=2)
    assert len(page["TrainingJobSummaries"]) == 2 and page["NextToken"]
    tuning = sm.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert tuning[0]["HyperParameterTuningJobName"] == name and tuning[0]["Strategy"] == "Random"


@pytest.mark.parametrize(
    ("strategy", "ranges", "max_jobs", "extra"),
    [
        ("Bayesian", None, 4, {}),
        ("Grid", {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "4"]}]}, None, {}),
        ("Hyperband", None, 4, {"StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 4}}}),
    ],
)
def test_each_strategy_completes_with_a_best_job(sm, tuning_data, strategy, ranges, max_jobs, extra):
    static = {"num_round": "8", "objective": "binary:logistic"}
    name = create(
        sm,
        tuning_data,
        job_config=config(strategy, ranges, max_jobs, **extra),
        job_definition=definition(tuning_data, static),
    )
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["BestTrainingJob"]["ObjectiveStatus"] == "Succeeded"
    summaries = children(sm, name)
    assert len(summaries) == (2 if strategy == "Grid" else 4)
    if strategy == "Grid":
        assert sorted(s["TunedHyperParameters"]["max_depth"] for s in summaries) == ["2", "4"]
    if strategy == "Hyperband":  # every job is stopped at MaxResource (4 rounds of 8) or earlier
        assert all(s["TrainingJobStatus"] == "Stopped" for s in summaries)


def test_early_stopping_stops_the_bad_job(sm, tuning_data):
    job_config = level_config(TrainingJobEarlyStoppingType="Auto")
    name = create(sm, tuning_data, job_config=job_config, job_definition=script_definition(tuning_data))
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    by_level = {s["TunedHyperParameters"]["level"]: s for s in children(sm, name)}
    assert by_level["bad"]["TrainingJobStatus"] == "Stopped"
    assert by_level["good"]["TrainingJobStatus"] == "Completed"
    assert by_level["bad"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] < 0.2
    assert described["BestTrainingJob"]["TunedHyperParameters"]["level"] == "good"


def test_crashing_child_does_not_fail_the_tuning_job_unless_all_fail(sm, tuning_data):
    ranges = {"CategoricalParameterRanges": [{"Name": "crash", "Values": ["yes", "no"]}]}
    job_config = config("Grid", ranges, max_jobs=None, parallel=2, metric="score")
    job_definition = script_definition(tuning_data, {"pause": "0"})
    name = create(sm, tuning_data, job_config=job_config, job_definition=job_definition)
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert described["ObjectiveStatusCounters"]["Failed"] == 1
    crashed = [s for s in children(sm, name) if s["TrainingJobStatus"] == "Failed"]
    assert crashed[0]["FailureReason"] and crashed[0]["ObjectiveStatus"] == "Failed"

    job_config = config("Grid", {"CategoricalParameterRanges": [{"Name": "crash", "Values": ["yes"]}]}, None, 1)
    job_config["HyperParameterTuningJobObjective"]["MetricName"] = "score"
    name = create(sm, tuning_data, job_config=job_config, job_definition=job_definition)
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Failed"
    assert "All training jobs failed" in described["FailureReason"]


def test_stop_stops_every_running_child(sm, tuning_data):
    job_config = level_config("Random", ("good", "fine"))
    job_config["ResourceLimits"] = {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    job_definition = script_definition(tuning_data, {"epochs": "200", "pause": "0.5"})
    name = create(sm, tuning_data, job_config=job_config, job_definition=job_definition)
    deadline = time.monotonic() + 60
    while len([s for s in children(sm, name) if s["TrainingJobStatus"] == "InProgress"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    summaries = children(sm, name)
    assert len(summaries) == 2 and all(s["TrainingJobStatus"] == "Stopped" for s in summaries)
    with pytest.raises(ClientError) as raised:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert error_code(raised) == "ValidationException"


def test_completion_criteria_target_value(sm, tuning_data):
    job_config = level_config(TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.85})
    job_definition = script_definition(tuning_data, {"pause": "0"})
    name = create(sm, tuning_data, job_config=job_config, job_definition=job_definition)
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert len(children(sm, name)) == 1  # "good" (first in the grid) reaches 0.9 at once


def test_warm_start_uses_the_parents_results(sm, tuning_data, random_job):
    parent, parent_described = random_job
    warm = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }
    name = create(sm, tuning_data, job_config=config("Bayesian", max_jobs=1, parallel=1), WarmStartConfig=warm)
    described = wait_tuning(sm, name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    overall = described["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert overall >= parent_described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]

    transfer = {**warm, "WarmStartType": "TransferLearning"}
    other_metric = config("Bayesian", max_jobs=1, parallel=1, metric="validation:logloss", kind="Minimize")
    with pytest.raises(ClientError) as raised:
        create(sm, tuning_data, job_config=other_metric, WarmStartConfig=transfer)
    assert error_code(raised) == "ValidationException"


def _bad(ranges=None, **changes):
    def apply(job_config, job_definition):
        if ranges is not None:
            job_config["ParameterRanges"] = ranges
        for key, value in changes.items():
            target = job_definition if key in ("StaticHyperParameters", "AlgorithmSpecification") else job_config
            target[key] = value
        return job_config, job_definition

    return apply


def _continuous(low, high, scaling="Auto"):
    return {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": low, "MaxValue": high, "ScalingType": scaling}]}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_bad(_continuous("0.5", "0.1")), "ValidationException"),
        (_bad(_continuous("0", "0.5", "Logarithmic")), "ValidationException"),
        (_bad(_continuous("0.1", "1.5", "ReverseLogarithmic")), "ValidationException"),
        (_bad(Strategy="Grid"), "ValidationException"),
        (
            _bad(ResourceLimits={"MaxNumberOfTrainingJobs": 100000, "MaxParallelTrainingJobs": 2}),
            "ResourceLimitExceeded",
        ),
        (_bad(ResourceLimits={"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 50}), "ResourceLimitExceeded"),
        (
            _bad(HyperParameterTuningJobObjective={"Type": "Maximize", "MetricName": "validation:nope"}),
            "ValidationException",
        ),
        (_bad(StaticHyperParameters={"num_round": "5", "eta": "0.1"}), "ValidationException"),
        (_bad(StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 3}}), "ValidationException"),
        (_bad(Strategy="Hyperband", TrainingJobEarlyStoppingType="Auto"), "ValidationException"),
        (_bad(Strategy="Hyperband"), "ValidationException"),  # no MaxResource and no epochs hyperparameter
    ],
)
def test_create_rejects_bad_requests(sm, tuning_data, change, code):
    job_config, job_definition = change(config(), definition(tuning_data))
    with pytest.raises(ClientError) as raised:
        create(sm, tuning_data, job_config=job_config, job_definition=job_definition)
    assert error_code(raised) == code


def test_objective_metric_must_be_known(sm, tuning_data):
    kmeans = definition(tuning_data, {"k": "2", "feature_dim": "10"}, image=KMEANS_IMAGE)
    ranges = {"IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "10", "MaxValue": "100"}]}
    for metric, code in (("test:loss", "ValidationException"), ("validation:auc", "ValidationException")):
        with pytest.raises(ClientError) as raised:
            create(
                sm, tuning_data, job_config=config(ranges=ranges, metric=metric, kind="Minimize"), job_definition=kmeans
            )
        assert error_code(raised) == code
    custom = definition(tuning_data, image="sagestack/processing:latest")
    with pytest.raises(ClientError) as raised:
        create(sm, tuning_data, job_config=config(metric="loss"), job_definition=custom)
    assert error_code(raised) == "ValidationException"


def test_names_are_unique_and_lookups_fail_with_aws_codes(sm, tuning_data, random_job):
    name, _ = random_job
    with pytest.raises(ClientError) as raised:
        create(sm, tuning_data, name=name.upper())
    assert error_code(raised) == "ResourceInUse"
    with pytest.raises(ClientError) as raised:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning-job")
    assert error_code(raised) == "ResourceNotFound"
