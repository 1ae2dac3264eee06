"""Experiments state and managed MLflow servers survive a stack restart (`serve` stopped and started again)."""

from datetime import UTC, datetime

import mlflow
import pytest

from tests.integration.test_durable_stack import ServedStack, _wait

ROLE_ARN = "arn:aws:iam::123456789012:role/mlflow"


def _fill_experiments(stack):
    sm, metrics = stack.client("sagemaker"), stack.client("sagemaker-metrics")
    sm.create_experiment(ExperimentName="kept", Tags=[{"Key": "team", "Value": "risk"}])
    sm.create_trial(TrialName="kept-trial", ExperimentName="kept")
    sm.create_trial_component(
        TrialComponentName="kept-run",
        Parameters={"eta": {"NumberValue": 0.3}},
        Status={"PrimaryStatus": "Completed"},
    )
    sm.associate_trial_component(TrialComponentName="kept-run", TrialName="kept-trial")
    now = datetime.now(tz=UTC)
    data = [{"MetricName": "auc", "Value": 0.5 + i / 10, "Step": i, "Timestamp": now} for i in range(3)]
    assert not metrics.batch_put_metrics(TrialComponentName="kept-run", MetricData=data).get("Errors")
    artifact = sm.create_artifact(
        ArtifactName="report", Source={"SourceUri": "s3://b/report.html"}, ArtifactType="Report"
    )["ArtifactArn"]
    component_arn = sm.describe_trial_component(TrialComponentName="kept-run")["TrialComponentArn"]
    sm.add_association(SourceArn=artifact, DestinationArn=component_arn, AssociationType="ContributedTo")
    return artifact, component_arn


def _search_runs(sm):
    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={"Filters": [{"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "kept"}]},
    )
    return [
        (r["TrialComponent"]["TrialComponentName"], r["TrialComponent"]["Metrics"][0]["Max"]) for r in found["Results"]
    ]


def _start_mlflow(stack):
    sm, s3 = stack.client("sagemaker"), stack.client("s3")
    s3.create_bucket(Bucket="kept-artifacts")
    sm.create_mlflow_tracking_server(
        TrackingServerName="kept-mlflow", ArtifactStoreUri="s3://kept-artifacts/mlflow", RoleArn=ROLE_ARN
    )
    _wait(
        lambda: (
            sm.describe_mlflow_tracking_server(TrackingServerName="kept-mlflow")["TrackingServerStatus"] == "Created"
        ),
        300,
    )
    url = sm.describe_mlflow_tracking_server(TrackingServerName="kept-mlflow")["TrackingServerUrl"]
    client = mlflow.MlflowClient(tracking_uri=url)
    run = client.create_run(client.create_experiment("kept-in-mlflow"))
    client.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", 0.125, 0, 0)])
    return run.info.run_id


@pytest.mark.expensive
def test_experiments_and_mlflow_servers_survive_a_restart(tmp_path):
    stack = ServedStack(tmp_path / "state")
    try:
        artifact, component_arn = _fill_experiments(stack)
        run_id = _start_mlflow(stack)
        sm = stack.client("sagemaker")
        before = sm.describe_trial_component(TrialComponentName="kept-run")
        runs_before = _search_runs(sm)
    finally:
        stack.stop()

    stack = ServedStack(tmp_path / "state")
    try:
        sm, metrics = stack.client("sagemaker"), stack.client("sagemaker-metrics")
        after = sm.describe_trial_component(TrialComponentName="kept-run")
        for key in ("Parameters", "Status", "Metrics", "CreationTime", "TrialComponentArn"):
            assert after[key] == before[key], key
        assert _search_runs(sm) == runs_before == [("kept-run", pytest.approx(0.7))]
        experiment_arn = sm.describe_experiment(ExperimentName="kept")["ExperimentArn"]
        assert sm.list_tags(ResourceArn=experiment_arn)["Tags"] == [{"Key": "team", "Value": "risk"}]
        trials = sm.list_trials(ExperimentName="kept")["TrialSummaries"]
        assert [t["TrialName"] for t in trials] == ["kept-trial"]
        series = metrics.batch_get_metrics(
            MetricQueries=[
                {
                    "ResourceArn": component_arn,
                    "MetricName": "auc",
                    "MetricStat": "Max",
                    "Period": "IterationNumber",
                    "XAxisType": "IterationNumber",
                }
            ]
        )["MetricQueryResults"][0]
        assert series["XAxisValues"] == [0, 1, 2]
        assert series["MetricValues"] == pytest.approx([0.5, 0.6, 0.7])
        associations = sm.list_associations(DestinationArn=component_arn)["AssociationSummaries"]
        assert [a["SourceArn"] for a in associations] == [artifact]
        # The tracking server that ran comes back (Starting -> Created) with its runs (SQLite in the data dir).
        _wait(
            lambda: (
                sm.describe_mlflow_tracking_server(TrackingServerName="kept-mlflow")["TrackingServerStatus"]
                == "Created"
            ),
            300,
        )
        url = sm.describe_mlflow_tracking_server(TrackingServerName="kept-mlflow")["TrackingServerUrl"]
        assert mlflow.MlflowClient(tracking_uri=url).get_run(run_id).data.metrics == {"loss": 0.125}
    finally:
        stack.stop()
