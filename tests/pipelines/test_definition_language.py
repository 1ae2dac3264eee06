"""The rest of the definition language through SDK v2: every condition type, ``Join``, every ``ExecutionVariables``
member, ``JsonGet`` on property files and on a step's output, and AutoML answered "not supported yet" at Create."""

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


def test_an_automl_step_is_rejected_naming_the_step(sm):
    body = definition([{"Name": "Far", "Type": "AutoML", "Arguments": {}}])
    with pytest.raises(sm.exceptions.ClientError, match="Step Far: step type AutoML is not supported locally yet"):
        create(sm, body)


def test_not_equals_not_in_and_in_with_value_and_json_get_operands(sm, code_uri, bucket):
    """The definition's NotEquals / NotIn and ``In`` in its ``Value``/``In`` form, with JsonGet on a property file
    and Join operands; one false condition makes the branch go the other way."""
    auc = auc_of("Score")  # 0.8, from the step's metrics.json property file
    label = {"Std:Join": {"On": "-", "Values": ["run", {"Get": "Execution.PipelineName"}]}}

    def gate(conditions):
        return {
            "Name": "Gate",
            "Type": "Condition",
            "Arguments": {
                "Conditions": conditions,
                "IfSteps": [],
                "ElseSteps": [{"Name": "Else", "Type": "Fail", "Arguments": {"ErrorMessage": "else"}}],
            },
        }

    true_ones = [
        {"Type": "NotEquals", "LeftValue": auc, "RightValue": 0.5},
        {"Type": "NotIn", "QueryValue": auc, "Values": [0.1, 0.2]},
        {"Type": "In", "Value": auc, "In": [0.7, 0.8]},
        {"Type": "NotEquals", "LeftValue": label, "RightValue": "run-"},
    ]
    arn, described = run(sm, create(sm, definition([processing("Score", code_uri, bucket), gate(true_ones)])))
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert steps_of(sm, arn)["Gate"]["Metadata"]["Condition"]["Outcome"] == "True"

    one_false = [*true_ones, {"Type": "NotIn", "QueryValue": auc, "Values": [0.8]}]
    arn, described = run(sm, create(sm, definition([processing("Score", code_uri, bucket), gate(one_false)])))
    assert steps_of(sm, arn)["Gate"]["Metadata"]["Condition"]["Outcome"] == "False"
    assert described["PipelineExecutionStatus"] == "Failed"  # the Else branch's Fail step
