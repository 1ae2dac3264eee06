"""The run report links the execution's trial components: its trial's trainings side by side (boto3 only)."""

from datetime import UTC, datetime

import boto3

from pipelines.library.run_report import write_report
from tests.integration.conftest import REGION, unique


def test_the_run_report_puts_the_trials_trainings_side_by_side(sm, tmp_path):
    experiment, trial = unique("credit-risk"), unique("execution")
    sm.create_experiment(ExperimentName=experiment)
    sm.create_trial(TrialName=trial, ExperimentName=experiment)
    for index, (eta, auc) in enumerate(((0.1, 0.71), (0.3, 0.78))):
        name = f"{trial}-tune-{index}-aws-training-job"
        sm.create_trial_component(
            TrialComponentName=name,
            Parameters={"eta": {"NumberValue": eta}, "SageMaker.InstanceType": {"StringValue": "ml.m5.large"}},
            Status={"PrimaryStatus": "Completed"},
        )
        sm.associate_trial_component(TrialComponentName=name, TrialName=trial)
        _metrics(sm).batch_put_metrics(
            TrialComponentName=name,
            MetricData=[{"MetricName": "validation:auc", "Value": auc, "Timestamp": datetime.now(tz=UTC)}],
        )
    processing = f"{trial}-evaluate-aws-processing-job"
    sm.create_trial_component(TrialComponentName=processing, Status={"PrimaryStatus": "Completed"})
    sm.associate_trial_component(TrialComponentName=processing, TrialName=trial)
    described = {
        "PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/credit-risk/execution/{trial}",
        "PipelineExecutionStatus": "Succeeded",
        "PipelineExperimentConfig": {"ExperimentName": experiment, "TrialName": trial},
    }
    report = write_report(sm, None, described, [], tmp_path, 1.0).read_text()
    assert f"Experiment `{experiment}`, trial `{trial}`" in report
    assert f"| {processing} | Completed |" in report
    assert f"| | {trial}-tune-0 | {trial}-tune-1 |" in report
    assert "| eta | 0.1 | 0.3 |" in report
    assert "| **validation:auc** (final) | 0.7100 | 0.7800 |" in report
    assert "SageMaker.InstanceType" not in report  # the platform's parameters stay out of the comparison


def _metrics(sm):
    return boto3.client(
        "sagemaker-metrics",
        endpoint_url=sm.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
