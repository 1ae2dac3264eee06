"""A pipeline execution's jobs are gathered into its PipelineExperimentConfig trial (default: name / execution id)."""

import json

from tests.pipelines.conftest import create, processing, run


def test_an_execution_gathers_its_jobs_into_its_trial(sm, code_uri, bucket):
    body = json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [],
            "PipelineExperimentConfig": {
                "ExperimentName": {"Get": "Execution.PipelineName"},
                "TrialName": {"Get": "Execution.PipelineExecutionId"},
            },
            "Steps": [
                processing("Prepare", code_uri, bucket),
                processing("Score", code_uri, bucket, DependsOn=["Prepare"]),
            ],
        }
    )
    name = create(sm, body)
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    execution_id = arn.rsplit("/", 1)[-1]

    assert sm.describe_trial(TrialName=execution_id)["ExperimentName"] == name
    components = sm.list_trial_components(TrialName=execution_id)["TrialComponentSummaries"]
    assert len(components) == 2
    assert all(c["TrialComponentName"].endswith("-aws-processing-job") for c in components)
    assert all(c["Status"]["PrimaryStatus"] == "Completed" for c in components)
    one = sm.describe_trial_component(TrialComponentName=components[0]["TrialComponentName"])
    assert set(one["InputArtifacts"]) == {"SageMaker.ImageUri", "code"}
    assert one["OutputArtifacts"]["out"]["Value"].startswith(f"s3://{bucket}/runs/{execution_id}/")

    executions = sm.search(
        Resource="PipelineExecution",
        SearchExpression={"Filters": [{"Name": "PipelineExecutionArn", "Operator": "Equals", "Value": arn}]},
    )["Results"]
    assert executions[0]["PipelineExecution"]["PipelineExperimentConfig"] == {
        "ExperimentName": name,
        "TrialName": execution_id,
    }
