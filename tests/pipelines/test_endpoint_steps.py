"""EndpointConfigStep and EndpointStep built with the SDK (``sagemaker.workflow.endpoint_step``): the hosting
family's own CreateEndpointConfig / CreateEndpoint (UpdateEndpoint when the endpoint exists) run by the engine."""

import json

import pytest

from tests.integration.conftest import FAKE_IMAGE, ROLE, smr  # noqa: F401  (a session fixture)
from tests.pipelines.conftest import create, run, steps_of, unique


@pytest.fixture
def model_name(sm):
    name = unique("pl-model")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": FAKE_IMAGE})
    return name


def _definition(sdk_env, model, endpoint, config_name):
    from sagemaker.workflow.endpoint_step import EndpointConfigStep, EndpointStep
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession

    session, _ = sdk_env
    pipeline_session = PipelineSession(boto_session=session.boto_session)
    config = EndpointConfigStep(
        name="Config",
        step_args=pipeline_session.create_endpoint_config(
            name=config_name, model_name=model, initial_instance_count=1, instance_type="ml.m5.large"
        ),
    )
    endpoint = EndpointStep(
        name="Serve",
        step_args=pipeline_session.create_endpoint(
            endpoint_name=endpoint, config_name=config.properties.EndpointConfigName
        ),
    )
    return Pipeline(name="p", steps=[config, endpoint], sagemaker_session=pipeline_session).definition()


def test_endpoint_config_and_endpoint_steps_deploy_then_update(
    sm,
    smr,  # noqa: F811
    sdk_env,
    model_name,
):
    endpoint = unique("pl-ep")
    first = create(sm, _definition(sdk_env, model_name, endpoint, unique("pl-cfg")))
    arn, described = run(sm, first, timeout=300)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    steps = steps_of(sm, arn)
    assert steps["Config"]["Metadata"]["EndpointConfig"]["Arn"].startswith("arn:aws:sagemaker:")
    assert steps["Serve"]["Metadata"]["Endpoint"]["Arn"].endswith(f"endpoint/{endpoint}")
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    try:
        smr.invoke_endpoint(EndpointName=endpoint, Body=b"1,2", ContentType="text/csv")
        second_config = unique("pl-cfg")
        second = create(sm, _definition(sdk_env, model_name, endpoint, second_config))
        arn, described = run(sm, second, timeout=300)
        assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == second_config
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


def test_an_endpoint_step_on_a_missing_config_fails_with_the_service_error(sm, sdk_env, model_name):
    definition = json.loads(_definition(sdk_env, model_name, unique("pl-ep"), unique("pl-cfg")))
    serve = definition["Steps"][1]
    serve["Arguments"]["EndpointConfigName"] = "no-such-config"
    definition["Steps"] = [serve]
    arn, described = run(sm, create(sm, json.dumps(definition)))
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "no-such-config" in steps_of(sm, arn)["Serve"]["FailureReason"]


def test_endpoint_properties_are_checked_at_create(sm, sdk_env, model_name):
    definition = json.loads(_definition(sdk_env, model_name, unique("pl-ep"), unique("pl-cfg")))
    definition["Steps"][1]["Arguments"]["EndpointConfigName"] = {"Get": "Steps.Config.NoSuchProperty"}
    with pytest.raises(sm.exceptions.ClientError, match="is not a property of a EndpointConfig step"):
        create(sm, json.dumps(definition))
