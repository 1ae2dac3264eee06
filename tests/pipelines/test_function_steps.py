"""The SDK's ``@remote`` and ``@step`` functions run as training jobs on the stack with the remote-function runtime.

The functions are defined inside the tests, so cloudpickle ships them by value (as it does a notebook's functions);
the image is the remote-function container (docs/pipelines.md#step-functions-and-remote-functions).
"""

import importlib.util
from importlib.metadata import version

import pytest

from tests.pipelines.conftest import ROLE, steps_of, unique, wait
from tests.unit.infra.support import PROBE, probe_wheel

# The SDK's job_driver.sh names /opt/ml/... paths itself: the job needs its own /opt/ml (tests/capabilities.py).
pytestmark = pytest.mark.capability("mount-namespaces")

REMOTE_IMAGE = "081325390199.dkr.ecr.us-east-1.amazonaws.com/sagemaker-base-python-310:1.0"


def remote_with_requirements(session, requirements):
    """``@remote`` on the remote-function image with ``dependencies=requirements``."""
    from sagemaker.remote_function import remote

    return remote(
        image_uri=REMOTE_IMAGE,
        role=ROLE,
        instance_type="ml.m5.large",
        dependencies=str(requirements),
        sagemaker_session=session,
    )


def test_remote_function_reraises_the_functions_exception(sdk_env):
    from sagemaker.remote_function import remote

    session, _ = sdk_env

    class BudgetExceeded(Exception):
        pass

    @remote(image_uri=REMOTE_IMAGE, role=ROLE, instance_type="ml.m5.large", sagemaker_session=session)
    def spend(amount):
        raise BudgetExceeded(f"cannot spend {amount}")

    with pytest.raises(BudgetExceeded, match="cannot spend 12"):
        spend(12)


def test_step_functions_wired_by_a_delayed_return(sm, sdk_env):
    from sagemaker.workflow.function_step import step
    from sagemaker.workflow.parameters import ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env
    rows = ParameterInteger(name="Rows", default_value=4)
    settings = {"image_uri": REMOTE_IMAGE, "role": ROLE, "instance_type": "ml.m5.large"}

    @step(name="Prepare", **settings)
    def prepare(n):
        return [i * i for i in range(n)]

    @step(name="Summarize", **settings)
    def summarize(squares, scale):
        return {"total": sum(squares) * scale, "count": len(squares)}

    summary = summarize(prepare(rows), 10)
    pipeline = Pipeline(name=unique("fn-steps"), parameters=[rows], steps=[summary], sagemaker_session=session)
    pipeline.create(role_arn=ROLE)
    execution = pipeline.start(parameters={"Rows": 5})
    described = wait(sm, execution.arn, timeout=600)
    steps = steps_of(sm, execution.arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", (described, steps)
    assert {n: s["StepStatus"] for n, s in steps.items()} == {"Prepare": "Succeeded", "Summarize": "Succeeded"}
    assert execution.result(step_name="Prepare") == [0, 1, 4, 9, 16]
    assert execution.result(step_name="Summarize") == {"total": 300, "count": 5}


def test_a_raising_step_function_fails_its_step(sm, sdk_env):
    from sagemaker.workflow.function_step import step
    from sagemaker.workflow.pipeline import Pipeline

    session, _ = sdk_env

    @step(name="Explode", image_uri=REMOTE_IMAGE, role=ROLE, instance_type="ml.m5.large")
    def explode():
        raise ValueError("the input table is empty")

    pipeline = Pipeline(name=unique("fn-fail"), steps=[explode()], sagemaker_session=session)
    pipeline.create(role_arn=ROLE)
    execution = pipeline.start()
    described = wait(sm, execution.arn, timeout=600)
    assert described["PipelineExecutionStatus"] == "Failed"
    reason = steps_of(sm, execution.arn)["Explode"]["FailureReason"]
    assert "the input table is empty" in reason


def test_remote_function_with_a_requirements_file_returns_its_value(sdk_env, tmp_path):
    session, _ = sdk_env
    requirements = tmp_path / "requirements.txt"
    # Pinned to what the image has: the SDK's job runs `pip install -r requirements.txt -U`, which finds them
    # installed and installs nothing (docs/pipelines.md#step-functions-and-remote-functions).
    requirements.write_text(f"numpy=={version('numpy')}\npandas=={version('pandas')}\n")

    @remote_with_requirements(session, requirements)
    def column_mean(values):
        import os

        import pandas as pd

        return {"mean": float(pd.Series(values).mean()), "in_a_job": os.environ["TRAINING_JOB_NAME"] != ""}

    assert column_mean([1.0, 2.0, 6.0]) == {"mean": 3.0, "in_a_job": True}


def test_remote_function_installs_a_requirement_the_stack_lacks_in_its_own_job(sdk_env, s3, bucket, tmp_path):
    """`pip install -r requirements.txt -U` installs into the job's own environment, as into a container's writable
    image: the function imports the package, and the stack's environment stays without it."""
    session, _ = sdk_env
    wheel = probe_wheel(tmp_path / "wheels", "2.0")
    s3.upload_file(str(wheel), bucket, f"wheels/{wheel.name}")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"wheels/{wheel.name}"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"sagestack-probe @ {url}\n")

    @remote_with_requirements(session, requirements)
    def probe_version():
        import sys

        import sagestack_probe

        return sagestack_probe.VERSION, sys.prefix

    found, prefix = probe_version()

    assert found == "2.0"
    assert prefix.endswith("/.sagestack/python")
    assert importlib.util.find_spec(PROBE) is None
