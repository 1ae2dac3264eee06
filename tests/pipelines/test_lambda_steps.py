"""LambdaStep built with the SDK (``sagemaker.workflow.lambda_step``), run by the local engine."""

import json

import pytest

from tests.pipelines.conftest import ROLE, create, run, steps_of, unique

SCRIPT = """
def handler(event, context):
    if event.get('mode') == 'raise':
        raise RuntimeError('the model registry is down')
    if event.get('mode') == 'list':
        return [1, 2]
    return {'threshold': float(event['base']) + 0.25, 'label': 'ok-' + event['tag'], 'deploy': True}
"""


@pytest.fixture
def lambda_step_factory(sdk_env, tmp_path):
    from sagemaker.lambda_helper import Lambda
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

    session, _ = sdk_env
    script = tmp_path / "fn.py"
    script.write_text(SCRIPT)
    function = Lambda(
        function_name=unique("step-fn"),
        execution_role_arn=ROLE,
        script=str(script),
        handler="fn.handler",
        session=session,
    )
    outputs = [
        LambdaOutput("threshold", LambdaOutputTypeEnum.Float),
        LambdaOutput("label", LambdaOutputTypeEnum.String),
        LambdaOutput("deploy", LambdaOutputTypeEnum.Boolean),
    ]

    def make(name, inputs):
        return LambdaStep(name=name, lambda_func=function, inputs=inputs, outputs=outputs)

    return make, outputs


def _pipeline(sdk_env, steps, parameters=()):
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    return json.loads(
        Pipeline(name="p", steps=steps, parameters=list(parameters), sagemaker_session=session).definition()
    )


def test_lambda_step_outputs_feed_a_condition(sm, sdk_env, lambda_step_factory):
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThan
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join
    from sagemaker.workflow.parameters import ParameterString

    make, _ = lambda_step_factory
    tag = ParameterString("Tag", default_value="blue")
    first = make("Score", {"base": 0.5, "tag": tag})
    second = make("Again", {"base": first.properties.Outputs["threshold"], "tag": first.properties.Outputs["label"]})
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThan(left=second.properties.Outputs["threshold"], right=0.9)],
        if_steps=[],
        else_steps=[
            FailStep(name="Low", error_message=Join(on=" ", values=["low", first.properties.Outputs["label"]]))
        ],
    )
    definition = _pipeline(sdk_env, [first, second, gate], [tag])
    name = create(sm, json.dumps(definition))
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    metadata = steps["Again"]["Metadata"]["Lambda"]
    assert metadata["Arn"].startswith("arn:aws:lambda:")
    values = {p["Name"]: p["Value"] for p in metadata["OutputParameters"]}
    assert values == {"threshold": "1.0", "label": "ok-ok-blue", "deploy": "true"}
    assert steps["Gate"]["Metadata"]["Condition"]["Outcome"] == "True"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("raise", "RuntimeError: the model registry is down"), ("list", "needs a JSON object")],
)
def test_a_failing_lambda_fails_the_step_with_its_error(sm, sdk_env, lambda_step_factory, mode, expected):
    make, _ = lambda_step_factory
    name = create(sm, json.dumps(_pipeline(sdk_env, [make("Bad", {"mode": mode})])))
    arn, described = run(sm, name)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert expected in steps_of(sm, arn)["Bad"]["FailureReason"]


def test_an_undeclared_output_is_rejected_at_create(sm, sdk_env, lambda_step_factory):
    from sagemaker.workflow.lambda_step import LambdaOutput

    make, _ = lambda_step_factory
    first = make("Score", {"base": 1, "tag": "x"})
    second = make("Use", {"base": LambdaOutput("nope").expr("Score"), "tag": "y"})
    with pytest.raises(sm.exceptions.ClientError, match="declares no output parameter"):
        create(sm, json.dumps(_pipeline(sdk_env, [first, second])))
