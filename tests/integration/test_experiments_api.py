"""SageMaker Experiments through boto3: experiments, trials, trial components, associations, Search, metrics."""

import http.client
import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import REGION, unique


@pytest.fixture(scope="module")
def metrics(stack_url):
    return boto3.client(
        "sagemaker-metrics",
        endpoint_url=stack_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _code(raised):
    return raised.value.response["Error"]["Code"]


def _experiment_with_runs(sm, runs):
    experiment = unique("exp")
    sm.create_experiment(ExperimentName=experiment, Description="d", Tags=[{"Key": "team", "Value": "risk"}])
    trial = unique("trial")
    sm.create_trial(TrialName=trial, ExperimentName=experiment)
    names = []
    for index, eta in enumerate(runs):
        name = f"{experiment}-run-{index}"
        sm.create_trial_component(
            TrialComponentName=name,
            Parameters={"eta": {"NumberValue": eta}, "objective": {"StringValue": "binary:logistic"}},
            Status={"PrimaryStatus": "Completed"},
            OutputArtifacts={"model": {"Value": f"s3://b/{name}/model.tar.gz", "MediaType": "application/x-tar"}},
        )
        sm.associate_trial_component(TrialComponentName=name, TrialName=trial)
        names.append(name)
    return experiment, trial, names


def test_experiment_trial_and_component_lifecycle(sm):
    experiment, trial, [name] = _experiment_with_runs(sm, [0.3])

    described = sm.describe_experiment(ExperimentName=experiment)
    assert described["ExperimentArn"].endswith(f":experiment/{experiment}")
    assert described["Description"] == "d" and described["DisplayName"] == experiment
    assert sm.describe_trial(TrialName=trial)["ExperimentName"] == experiment
    component = sm.describe_trial_component(TrialComponentName=name)
    assert component["Parameters"]["eta"] == {"NumberValue": 0.3}
    assert component["Status"]["PrimaryStatus"] == "Completed"

    assert [t["TrialName"] for t in sm.list_trials(ExperimentName=experiment)["TrialSummaries"]] == [trial]
    assert [t["TrialName"] for t in sm.list_trials(TrialComponentName=name)["TrialSummaries"]] == [trial]
    listed = sm.list_trial_components(ExperimentName=experiment)["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in listed] == [name]

    sm.update_experiment(ExperimentName=experiment, DisplayName="Nice")
    sm.update_trial_component(TrialComponentName=name, ParametersToRemove=["objective"], DisplayName="r0")
    assert sm.describe_experiment(ExperimentName=experiment)["DisplayName"] == "Nice"
    assert list(sm.describe_trial_component(TrialComponentName=name)["Parameters"]) == ["eta"]

    # Deletion order is enforced, as on AWS.
    with pytest.raises(ClientError) as raised:
        sm.delete_trial_component(TrialComponentName=name)
    assert _code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.delete_experiment(ExperimentName=experiment)
    assert _code(raised) == "ValidationException"
    sm.disassociate_trial_component(TrialComponentName=name, TrialName=trial)
    sm.delete_trial_component(TrialComponentName=name)
    sm.delete_trial(TrialName=trial)
    sm.delete_experiment(ExperimentName=experiment)
    with pytest.raises(ClientError) as raised:
        sm.describe_experiment(ExperimentName=experiment)
    assert _code(raised) == "ResourceNotFound"


def test_bad_input_is_answered_as_aws_does(sm):
    experiment, trial, [name] = _experiment_with_runs(sm, [0.1])
    cases = [
        (lambda: sm.describe_trial(TrialName="no-such-trial"), "ResourceNotFound"),
        (lambda: sm.create_trial(TrialName=unique("t"), ExperimentName="no-such-experiment"), "ResourceNotFound"),
        (lambda: sm.associate_trial_component(TrialComponentName=name, TrialName="no-such"), "ResourceNotFound"),
        (lambda: sm.create_experiment(ExperimentName=experiment), "ValidationException"),
        (lambda: sm.create_trial(TrialName=trial, ExperimentName=experiment), "ValidationException"),
        (lambda: sm.create_trial_component(TrialComponentName=name), "ValidationException"),
        (lambda: sm.associate_trial_component(TrialComponentName=name, TrialName=trial), "ValidationException"),
        (lambda: sm.list_trial_components(ExperimentName=experiment, TrialName=trial), "ValidationException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as raised:
            call()
        assert _code(raised) == code
    with pytest.raises(ClientError) as raised:
        sm.create_experiment(ExperimentName=experiment)
    assert "already exists" in raised.value.response["Error"]["Message"]  # the SDK's _load_or_create reads this


def test_search_filters_nested_filters_sort_and_pages(sm):
    experiment, trial, names = _experiment_with_runs(sm, [0.1, 0.2, 0.3, 0.4])
    parent = {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment}

    def search(**kwargs):
        return sm.search(Resource="ExperimentTrialComponent", **kwargs)

    found = search(SearchExpression={"Filters": [parent]}, SortBy="Parameters.eta", SortOrder="Ascending")
    assert [r["TrialComponent"]["TrialComponentName"] for r in found["Results"]] == names
    record = found["Results"][0]["TrialComponent"]
    assert record["Parents"] == [{"TrialName": trial, "ExperimentName": experiment}]
    assert found["TotalHits"] == {"Value": 4, "Relation": "EqualTo"}

    bigger = {"Filters": [parent, {"Name": "Parameters.eta", "Operator": "GreaterThan", "Value": "0.25"}]}
    assert len(search(SearchExpression=bigger)["Results"]) == 2
    either = {
        "SubExpressions": [
            {"Filters": [{"Name": "TrialComponentName", "Operator": "Equals", "Value": names[0]}]},
            {"Filters": [{"Name": "TrialComponentName", "Operator": "Equals", "Value": names[3]}]},
        ],
        "Operator": "Or",
    }
    assert len(search(SearchExpression=either)["Results"]) == 2
    nested = {
        "NestedFilters": [
            {
                "NestedPropertyName": "Parents",
                "Filters": [
                    {"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial},
                    {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": experiment},
                ],
            }
        ]
    }
    assert len(search(SearchExpression=nested)["Results"]) == 4
    contains = {"Filters": [parent, {"Name": "DisplayName", "Operator": "Contains", "Value": "RUN-1"}]}
    assert [r["TrialComponent"]["TrialComponentName"] for r in search(SearchExpression=contains)["Results"]] == [
        names[1]
    ]

    first = search(SearchExpression={"Filters": [parent]}, MaxResults=3, SortBy="Parameters.eta")
    second = search(
        SearchExpression={"Filters": [parent]}, MaxResults=3, SortBy="Parameters.eta", NextToken=first["NextToken"]
    )
    assert len(first["Results"]) == 3 and len(second["Results"]) == 1 and "NextToken" not in second

    experiments = sm.search(
        Resource="Experiment",
        SearchExpression={"Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "risk"}]},
    )["Results"]
    assert experiment in [r["Experiment"]["ExperimentName"] for r in experiments]
    trials = sm.search(
        Resource="ExperimentTrial",
        SearchExpression={"Filters": [{"Name": "ExperimentName", "Operator": "Equals", "Value": experiment}]},
    )["Results"]
    assert len(trials[0]["Trial"]["TrialComponentSummaries"]) == 4


@pytest.mark.parametrize(
    "expression",
    [
        {},
        {"Filters": [{"Name": "NoSuchProperty", "Operator": "Equals", "Value": "x"}]},
        {"Filters": [{"Name": "DisplayName", "Operator": "Equals"}]},
        {"Filters": [{"Name": "DisplayName", "Operator": "Exists", "Value": "x"}]},
        {"Filters": [{"Name": "DisplayName", "Operator": "Resembles", "Value": "x"}]},
        {"NestedFilters": [{"NestedPropertyName": "Parents", "Filters": [{"Name": "DisplayName", "Value": "x"}]}]},
        {"Filters": [{"Name": "DisplayName", "Operator": "Exists"}] * 21},
    ],
)
def test_search_expressions_aws_rejects(sm, expression):
    with pytest.raises(ClientError) as raised:
        sm.search(Resource="ExperimentTrialComponent", SearchExpression=expression)
    assert _code(raised) == "ValidationException"


def test_batch_put_and_get_metrics(sm, metrics):
    _, _, [name] = _experiment_with_runs(sm, [0.1])
    now = datetime.now(tz=UTC)
    data = [{"MetricName": "loss", "Value": 1.0 / (step + 1), "Step": step, "Timestamp": now} for step in range(8)]
    assert metrics.batch_put_metrics(TrialComponentName=name, MetricData=data).get("Errors", []) == []
    bad = [
        {"MetricName": "loss", "Value": math.inf, "Timestamp": now},
        {"MetricName": "loss", "Value": math.nan, "Timestamp": now},
        {"MetricName": "loss", "Value": 1.0, "Timestamp": now - timedelta(days=15)},
        {"MetricName": "loss", "Value": 1.0, "Timestamp": now + timedelta(hours=3)},
        {"MetricName": "loss", "Value": 0.01, "Timestamp": now, "Step": 8},
    ]
    errors = metrics.batch_put_metrics(TrialComponentName=name, MetricData=bad)["Errors"]
    assert errors == [{"Code": "VALIDATION_ERROR", "MetricIndex": i} for i in range(4)]

    component = sm.describe_trial_component(TrialComponentName=name)
    [summary] = component["Metrics"]
    assert summary["MetricName"] == "loss" and summary["Count"] == 9
    assert summary["Min"] == pytest.approx(0.01) and summary["Max"] == 1.0 and summary["Last"] == pytest.approx(0.01)

    arn = component["TrialComponentArn"]
    query = {"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Avg", "Period": "IterationNumber"}
    [result] = metrics.batch_get_metrics(MetricQueries=[{**query, "XAxisType": "IterationNumber"}])[
        "MetricQueryResults"
    ]
    assert result["Status"] == "Complete"
    assert result["XAxisValues"] == list(range(9))
    assert result["MetricValues"][:2] == [1.0, 0.5]

    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={"Filters": [{"Name": "Metrics.loss.Min", "Operator": "LessThan", "Value": "0.02"}]},
    )["Results"]
    assert name in [r["TrialComponent"]["TrialComponentName"] for r in found]

    with pytest.raises(ClientError) as raised:
        metrics.batch_put_metrics(TrialComponentName="no-such-component", MetricData=data[:1])
    assert _code(raised) == "ResourceNotFound"


def test_batch_put_metrics_calls_share_one_kept_alive_connection(sm, stack_url):
    """The edge keeps the connection between BatchPutMetrics calls (a client logs batch after batch)."""
    _, _, [name] = _experiment_with_runs(sm, [0.1])
    parts = urlsplit(stack_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        sockets = set()
        for step in range(3):
            point = {"MetricName": "loss", "Value": 1.0 / (step + 1), "Step": step, "Timestamp": time.time()}
            body = json.dumps({"TrialComponentName": name, "MetricData": [point]})
            connection.request("PUT", "/BatchPutMetrics", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200, response.read()
            assert json.loads(response.read()) == {}
            assert response.getheader("Connection") is None  # kept open for the next batch
            assert re.fullmatch(
                r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                response.getheader("x-amzn-RequestId"),
            )
            sockets.add(id(connection.sock))
        assert len(sockets) == 1  # http.client would have reconnected after a close
    finally:
        connection.close()
    [summary] = sm.describe_trial_component(TrialComponentName=name)["Metrics"]
    assert summary["Count"] == 3 and summary["Last"] == pytest.approx(1 / 3)
