"""Automatic tracking: a training job becomes its trial component, with its series and its ExperimentConfig trial."""

import boto3
import pytest

from tests.integration.conftest import REGION, unique
from tests.integration.helpers import training_request, wait_training


def test_a_training_job_is_tracked_as_on_aws(sm, bucket, stack_url):
    experiment = unique("tracked")
    sm.create_experiment(ExperimentName=experiment)
    name = unique("train")
    request = training_request(
        name,
        bucket,
        ExperimentConfig={
            "ExperimentName": experiment,
            "TrialName": f"{experiment}-t",
            "TrialComponentDisplayName": "fit",
        },
    )
    request["HyperParameters"]["eta"] = "0.3"
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "train:rmse", "Regex": "train-rmse:([0-9.]+)"}]
    sm.create_training_job(**request)
    component_name = f"{name}-aws-training-job"

    # The component exists from Create on, in the trial the ExperimentConfig names (created when missing).
    early = sm.describe_trial_component(TrialComponentName=component_name)
    assert early["Source"] == {
        "SourceArn": sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"],
        "SourceType": "SageMakerTrainingJob",
    }
    assert early["DisplayName"] == "fit"
    listed = sm.list_trial_components(TrialName=f"{experiment}-t")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in listed] == [component_name]

    assert wait_training(sm, name)["TrainingJobStatus"] == "Completed"
    component = sm.describe_trial_component(TrialComponentName=component_name)
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"]["eta"] == {"NumberValue": 0.3}
    assert component["Parameters"]["SageMaker.InstanceType"] == {"StringValue": "ml.m5.large"}
    assert component["InputArtifacts"]["train"] == {"Value": f"s3://{bucket}/data/train", "MediaType": "text/csv"}
    assert component["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"].endswith(f"{name}/output/model.tar.gz")
    [rmse] = component["Metrics"]
    assert (rmse["MetricName"], rmse["Count"], rmse["Last"], rmse["Max"]) == ("train:rmse", 3, 0.333, 1.0)

    # The series is readable through sagemaker-metrics by the job's ARN, as SageMaker's MLflow forwarder asks.
    metrics = boto3.client(
        "sagemaker-metrics",
        endpoint_url=stack_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    [result] = metrics.batch_get_metrics(
        MetricQueries=[
            {
                "MetricName": "train:rmse",
                "ResourceArn": component["Source"]["SourceArn"],
                "MetricStat": "Last",
                "Period": "IterationNumber",
                "XAxisType": "IterationNumber",
            }
        ]
    )["MetricQueryResults"]
    assert result["MetricValues"] == pytest.approx([1.0, 0.5, 0.333])

    found = sm.search(
        Resource="ExperimentTrialComponent",
        SearchExpression={
            "Filters": [{"Name": "Source.SourceArn", "Operator": "Equals", "Value": component["Source"]["SourceArn"]}]
        },
    )["Results"]
    [record] = [r["TrialComponent"] for r in found]
    assert record["SourceDetail"]["TrainingJob"]["TrainingJobName"] == name
    assert record["Parents"] == [{"TrialName": f"{experiment}-t", "ExperimentName": experiment}]
    jobs = sm.search(
        Resource="TrainingJob",
        SearchExpression={"Filters": [{"Name": "TrainingJobName", "Operator": "Equals", "Value": name}]},
    )["Results"]
    assert jobs[0]["TrainingJob"]["HyperParameters"]["eta"] == "0.3"
