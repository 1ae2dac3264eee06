"""One pipeline of every step type the stack runs, built with SDK v2 and run end to end (docs/pipelines.md#step-types).

Processing -> Training -> Tuning -> Model (create) -> RegisterModel -> Transform -> EndpointConfig -> Endpoint, with
ClarifyCheck and QualityCheck on the data, a Lambda and a Callback step, an EMR step on a real local Spark cluster,
a NotebookJob step, and a Condition whose else branch is a Fail step.

``STEP_BUILDERS`` maps each step type to the function that adds it (in order; a builder may use the steps added
before it through ``ctx.steps``). The hook for the ``@step`` functions (the SDK's ``function_step``): decorate a
builder with ``@register_step_builder("Function")`` in their own module and import that module at the end of this
one, so the same pipeline runs them too.
"""

import json
import threading

import boto3
import nbformat
import pytest

from tests.integration.conftest import FAKE_IMAGE, REGION, ROLE, SKLEARN_IMAGE
from tests.pipelines.conftest import create, run, steps_of, unique
from tests.pipelines.test_check_steps import CSV, _data_bias_step, _quality_step

STEP_BUILDERS = {}  # step type -> builder(ctx) returning the SDK steps it adds


def register_step_builder(step_type):
    def register(builder):
        STEP_BUILDERS[step_type] = builder
        return builder

    return register


LAMBDA = "def handler(event, context):\n    return {'rows': int(event['rows']) * 2}\n"


class Ctx:
    """What the builders share: the sessions, the bucket, the steps built so far (by name)."""

    def __init__(self, session, pipeline_session, bucket, tmp_path, emr_cluster, emr_app_uri, queue_url):
        self.session, self.ps, self.bucket, self.tmp = session, pipeline_session, bucket, tmp_path
        self.emr_cluster, self.emr_app_uri, self.queue_url = emr_cluster, emr_app_uri, queue_url
        self.prefix = unique("every-step")
        self.steps = {}

    def add(self, *steps):
        for step in steps:
            self.steps[step.name] = step
        return steps


@register_step_builder("Processing")
def _processing(ctx):
    from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep

    script = ctx.tmp / "prepare.py"
    script.write_text(
        "import json, pathlib, shutil\n"
        "out = pathlib.Path('/opt/ml/processing/out'); out.mkdir(parents=True, exist_ok=True)\n"
        "shutil.copy('/opt/ml/processing/input/data/data.csv', out / 'data.csv')\n"
        "(out / 'metrics.json').write_text(json.dumps({'metrics': {'auc': {'value': 0.8}}}))\n"
    )
    processor = ScriptProcessor(
        image_uri=SKLEARN_IMAGE,
        command=["python3"],
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=ctx.ps,
    )
    metrics = PropertyFile(name="Metrics", output_name="out", path="metrics.json")
    step = ProcessingStep(
        name="Prepare",
        step_args=processor.run(
            code=str(script),
            inputs=[ProcessingInput(source=ctx.data_uri, destination="/opt/ml/processing/input/data")],
            outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/out")],
        ),
        property_files=[metrics],
    )
    ctx.metrics = metrics
    ctx.add(step)


def _estimator(ctx, **extra):
    from sagemaker.estimator import Estimator

    return Estimator(
        image_uri=FAKE_IMAGE,
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=ctx.ps,
        output_path=f"s3://{ctx.bucket}/{ctx.prefix}/models",
        **extra,
    )


@register_step_builder("Training")
def _training(ctx):
    from sagemaker.inputs import TrainingInput
    from sagemaker.workflow.steps import TrainingStep

    prepared = ctx.steps["Prepare"].properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri
    from sagemaker.workflow.execution_variables import ExecutionVariables

    job_name = ExecutionVariables.TRAINING_JOB_NAME  # the eighth execution variable, resolved per job
    estimator = _estimator(ctx, hyperparameters={"marker": "every-step"}, environment={"JOB": job_name})
    ctx.add(TrainingStep(name="Train", step_args=estimator.fit({"train": TrainingInput(prepared)})))


@register_step_builder("Tuning")
def _tuning(ctx):
    from sagemaker.inputs import TrainingInput
    from sagemaker.tuner import HyperparameterTuner, IntegerParameter
    from sagemaker.workflow.steps import TuningStep

    prepared = ctx.steps["Prepare"].properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri
    tuner = HyperparameterTuner(
        _estimator(ctx),
        objective_metric_name="validation-rmse",
        objective_type="Minimize",
        hyperparameter_ranges={"depth": IntegerParameter(1, 4)},
        max_jobs=2,
        max_parallel_jobs=2,
        metric_definitions=[{"Name": "validation-rmse", "Regex": r"validation-rmse:([0-9.]+)"}],
    )
    ctx.add(TuningStep(name="Tune", step_args=tuner.fit({"train": TrainingInput(prepared)})))


@register_step_builder("Model")
def _models(ctx):
    from sagemaker.model import Model
    from sagemaker.workflow.model_step import ModelStep

    data = ctx.steps["Train"].properties.ModelArtifacts.S3ModelArtifacts
    model = Model(image_uri=FAKE_IMAGE, model_data=data, role=ROLE, sagemaker_session=ctx.ps)
    ctx.add(*ModelStep(name="CreateModel", step_args=model.create(instance_type="ml.m5.large")).steps)
    register = model.register(
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=["ml.m5.large"],
        transform_instances=["ml.m5.large"],
        model_package_group_name=unique("every-step"),
        approval_status="Approved",
    )
    ctx.add(*ModelStep(name="Register", step_args=register).steps)


@register_step_builder("Transform")
def _transform(ctx):
    from sagemaker.transformer import Transformer
    from sagemaker.workflow.steps import TransformStep

    transformer = Transformer(
        model_name=ctx.steps["CreateModel-CreateModel"].properties.ModelName,
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=ctx.ps,
        output_path=f"s3://{ctx.bucket}/{ctx.prefix}/scores",
    )
    ctx.add(TransformStep(name="Score", step_args=transformer.transform(ctx.data_uri, content_type="text/csv")))


@register_step_builder("Endpoint")
def _endpoint(ctx):
    from sagemaker.workflow.endpoint_step import EndpointConfigStep, EndpointStep

    config = EndpointConfigStep(
        name="EndpointConfig",
        step_args=ctx.ps.create_endpoint_config(
            name=unique("every-cfg"),
            model_name=ctx.steps["CreateModel-CreateModel"].properties.ModelName,
            initial_instance_count=1,
            instance_type="ml.m5.large",
        ),
    )
    ctx.endpoint = unique("every-ep")
    serve = EndpointStep(
        name="Endpoint",
        step_args=ctx.ps.create_endpoint(endpoint_name=ctx.endpoint, config_name=config.properties.EndpointConfigName),
    )
    ctx.add(config, serve)


@register_step_builder("ClarifyCheck/QualityCheck")
def _checks(ctx):
    bias, _ = _data_bias_step(ctx.ps, ctx.bucket, ctx.data_uri, "DataBias", skip_check=True, register_new_baseline=True)
    quality, _ = _quality_step(
        ctx.ps, ctx.bucket, ctx.data_uri, "DataQuality", skip_check=True, register_new_baseline=True
    )
    ctx.add(bias, quality)


@register_step_builder("Lambda")
def _lambda(ctx):
    from sagemaker.lambda_helper import Lambda
    from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

    (ctx.tmp / "double.py").write_text(LAMBDA)
    function = Lambda(
        function_name=unique("every-fn"),
        execution_role_arn=ROLE,
        script=str(ctx.tmp / "double.py"),
        handler="double.handler",
        session=ctx.session,
    )
    ctx.rows = LambdaOutput("rows", LambdaOutputTypeEnum.Integer)
    ctx.add(LambdaStep(name="Double", lambda_func=function, inputs={"rows": 21}, outputs=[ctx.rows]))


@register_step_builder("Callback")
def _callback(ctx):
    from sagemaker.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep

    approved = CallbackOutput("approved", CallbackOutputTypeEnum.Boolean)
    ctx.add(
        CallbackStep(name="Approve", sqs_queue_url=ctx.queue_url, inputs={"what": "every-step"}, outputs=[approved])
    )


@register_step_builder("EMR")
def _emr(ctx):
    from sagemaker.workflow.emr_step import EMRStep, EMRStepConfig

    config = EMRStepConfig(
        jar="command-runner.jar", args=["spark-submit", ctx.emr_app_uri, ctx.bucket, f"{ctx.prefix}/emr.json", "ok"]
    )
    ctx.add(EMRStep(name="Spark", display_name="Spark", description="", cluster_id=ctx.emr_cluster, step_config=config))


@register_step_builder("NotebookJob")
def _notebook(ctx):
    from sagemaker.workflow.notebook_job_step import NotebookJobStep

    cells = [nbformat.v4.new_code_cell("n = 1"), nbformat.v4.new_code_cell("print('notebook saw', n)")]
    cells[0].metadata["tags"] = ["parameters"]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=meta), str(ctx.tmp / "note.ipynb"))
    ctx.add(
        NotebookJobStep(
            name="Notebook",
            input_notebook=str(ctx.tmp / "note.ipynb"),
            image_uri="542918446943.dkr.ecr.us-east-1.amazonaws.com/sagemaker-distribution-prod:1-cpu",
            kernel_name="python3",
            role=ROLE,
            s3_root_uri=f"s3://{ctx.bucket}/{ctx.prefix}/nb",
            parameters={"n": "7"},
        )
    )


@register_step_builder("Condition/Fail")
def _gate(ctx):
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import JsonGet

    auc = JsonGet(step_name="Prepare", property_file=ctx.metrics, json_path="metrics.auc.value")
    checks = [
        ConditionGreaterThanOrEqualTo(left=auc, right=0.7),
        ConditionEquals(left=ctx.steps["Double"].properties.Outputs["rows"], right=42),
        ConditionEquals(left=ctx.steps["Spark"].properties.Status.State, right="COMPLETED"),
    ]
    fail = FailStep(name="Refused", error_message="a gate check failed")
    after = [
        ctx.steps[n]
        for n in (
            "Score",
            "Endpoint",
            "Register-RegisterModel",
            "Notebook",
            "Approve",
            "Tune",
            "DataBias",
            "DataQuality",
        )
    ]
    ctx.add(ConditionStep(name="Gate", conditions=checks, if_steps=[], else_steps=[fail], depends_on=after))


def _answer_callback(sqs, sm, queue_url, done):
    while not done.is_set():
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            token = json.loads(message["Body"])["token"]
            sm.send_pipeline_execution_step_success(
                CallbackToken=token, OutputParameters=[{"Name": "approved", "Value": "true"}]
            )
            return


def test_a_pipeline_of_every_step_type_runs_end_to_end(sm, s3, sdk_env, tmp_path, emr_cluster, emr_app_uri, stack_url):
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession

    session, bucket = sdk_env
    sqs = boto3.client(
        "sqs", endpoint_url=stack_url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )
    queue_url = sqs.create_queue(QueueName=unique("every-step"))["QueueUrl"]
    pipeline_session = PipelineSession(boto_session=session.boto_session, default_bucket=bucket)
    ctx = Ctx(session, pipeline_session, bucket, tmp_path, emr_cluster, emr_app_uri, queue_url)
    s3.put_object(Bucket=bucket, Key=f"{ctx.prefix}/data.csv", Body=CSV.encode())
    ctx.data_uri = f"s3://{bucket}/{ctx.prefix}/data.csv"
    for builder in STEP_BUILDERS.values():
        builder(ctx)
    body = Pipeline(name=unique("every"), steps=list(ctx.steps.values()), sagemaker_session=pipeline_session)
    types = {s["Type"] for s in json.loads(body.definition())["Steps"]}
    assert types >= {
        "Processing",
        "Training",
        "Tuning",
        "Model",
        "RegisterModel",
        "Transform",
        "EndpointConfig",
        "Endpoint",
        "ClarifyCheck",
        "QualityCheck",
        "Lambda",
        "Callback",
        "EMR",
        "Condition",
    }
    done = threading.Event()
    answering = threading.Thread(target=_answer_callback, args=(sqs, sm, queue_url, done), daemon=True)
    answering.start()
    try:
        arn, described = run(sm, create(sm, body.definition()), timeout=3600)
    finally:
        done.set()
        answering.join()
    steps = steps_of(sm, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", {n: s.get("FailureReason") for n, s in steps.items()}
    assert {s["StepStatus"] for s in steps.values()} == {"Succeeded"}
    assert "Refused" not in steps  # the Fail branch was not taken
    assert json.loads(s3.get_object(Bucket=bucket, Key=f"{ctx.prefix}/emr.json")["Body"].read())["total"] == 328350
    train = sm.describe_training_job(TrainingJobName=steps["Train"]["Metadata"]["TrainingJob"]["Arn"].split("/")[-1])
    assert train["Environment"]["JOB"] == train["TrainingJobName"]
    assert sm.describe_endpoint(EndpointName=ctx.endpoint)["EndpointStatus"] == "InService"
    sm.delete_endpoint(EndpointName=ctx.endpoint)


@pytest.mark.parametrize("kind", ["AutoML"])
def test_the_step_types_not_run_locally_are_named_at_create(sm, kind):
    body = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "Far", "Type": kind, "Arguments": {}}]})
    with pytest.raises(sm.exceptions.ClientError, match=f"Step Far: step type {kind} is not supported locally yet"):
        create(sm, body)
