"""The rest of the definition language through SDK v2: every condition type, ``Join``, every ``ExecutionVariables``
member, ``JsonGet`` on a step's output, and the step types answered "not supported yet" at Create."""

import json

import pytest

from tests.pipelines.conftest import auc_of, create, definition, processing, run, steps_of


def _sdk_definition(sdk_env, steps, parameters=()):
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    return Pipeline(name="p", steps=steps, parameters=list(parameters), sagemaker_session=session).definition()


def test_every_condition_type_and_every_execution_variable(sm, sdk_env):
    from sagemaker.workflow import conditions as c
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join
    from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    count, score, colour = ParameterInteger("Count", 5), ParameterFloat("Score", 0.5), ParameterString("Colour", "red")
    checks = [
        c.ConditionEquals(left=count, right=5),
        c.ConditionGreaterThan(left=score, right=0.4),
        c.ConditionGreaterThanOrEqualTo(left=count, right=5),
        c.ConditionLessThan(left=score, right=0.6),
        c.ConditionLessThanOrEqualTo(left=count, right=5),
        c.ConditionIn(value=colour, in_values=["red", "green"]),
        c.ConditionNot(expression=c.ConditionEquals(left=colour, right="blue")),
        c.ConditionOr(conditions=[c.ConditionEquals(left=count, right=1), c.ConditionLessThan(left=score, right=1)]),
    ]
    variables = [
        ExecutionVariables.PIPELINE_NAME,
        ExecutionVariables.PIPELINE_ARN,
        ExecutionVariables.PIPELINE_EXECUTION_ID,
        ExecutionVariables.PIPELINE_EXECUTION_ARN,
        ExecutionVariables.START_DATETIME,
        ExecutionVariables.CURRENT_DATETIME,
    ]
    report = FailStep(name="Report", error_message=Join(on="|", values=["all-true", *variables]))
    gate = ConditionStep(name="Gate", conditions=checks, if_steps=[report], else_steps=[])
    name = create(sm, _sdk_definition(sdk_env, [gate], [count, score, colour]))
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Failed"
    parts = steps_of(sm, arn)["Report"]["FailureReason"].split("|")
    pipeline = sm.describe_pipeline(PipelineName=name)
    execution_id = arn.rsplit("/", 1)[1]
    assert parts[:5] == ["all-true", name, pipeline["PipelineArn"], execution_id, arn]
    assert parts[5][:4].isdigit() and parts[6][:4].isdigit()  # ISO date-times

    arn, _ = run(sm, name, PipelineParameters=[{"Name": "Colour", "Value": "blue"}])
    assert steps_of(sm, arn)["Gate"]["Metadata"]["Condition"]["Outcome"] == "False"


def test_job_name_variables_and_json_get_on_a_step_output(sm, code_uri, bucket):
    env = {"JOB": {"Get": "Execution.ProcessingJobName"}}
    first = processing("Measure", code_uri, bucket, env=env)
    output = "ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"
    from_output = {
        "Std:JsonGet": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": [{"Get": f"Steps.Measure.{output}"}, "metrics.json"]}},
            "Path": "metrics.auc.value",
        }
    }
    check = {
        "Name": "Check",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {"Type": "Equals", "LeftValue": from_output, "RightValue": auc_of("Measure")},
                {"Type": "GreaterThan", "LeftValue": from_output, "RightValue": 0.5},
            ],
            "IfSteps": [],
            "ElseSteps": [{"Name": "Mismatch", "Type": "Fail", "Arguments": {"ErrorMessage": "mismatch"}}],
        },
    }
    arn, described = run(sm, create(sm, definition([first, check])))
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    assert steps["Check"]["Metadata"]["Condition"]["Outcome"] == "True"
    job = sm.describe_processing_job(
        ProcessingJobName=steps["Measure"]["Metadata"]["ProcessingJob"]["Arn"].split("/")[-1]
    )
    assert job["Environment"]["JOB"] == job["ProcessingJobName"]


@pytest.mark.parametrize("kind", ["EMR", "AutoML"])
def test_emr_and_automl_steps_are_rejected_naming_the_step(sm, kind):
    body = definition([{"Name": "Far", "Type": kind, "Arguments": {}}])
    with pytest.raises(sm.exceptions.ClientError, match=f"Step Far: step type {kind} is not supported locally yet"):
        create(sm, body)


def test_a_notebook_job_step_is_rejected_naming_the_step(sm, sdk_env, tmp_path):
    from sagemaker.workflow.notebook_job_step import NotebookJobStep

    notebook = tmp_path / "report.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    step = NotebookJobStep(
        name="Notebook",
        input_notebook=str(notebook),
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/notebooks:1",
        kernel_name="python3",
        role="arn:aws:iam::123456789012:role/SageMakerRole",
    )
    with pytest.raises(sm.exceptions.ClientError, match="Step Notebook: step type NotebookJob"):
        create(sm, _sdk_definition(sdk_env, [step]))
