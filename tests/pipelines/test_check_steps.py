"""ClarifyCheck and QualityCheck steps built with the SDK (``ClarifyCheckStep``, ``QualityCheckStep``), run locally."""

import json

import boto3
import pytest

from tests.pipelines.conftest import ROLE, run, unique, wait

CSV = "risk,sex,age,amount\n" + "".join(  # a third are sex=1 and they get fewer positive labels: CI, DPL > 0
    f"{(i % 2 != 0) if i % 3 == 0 else (i % 5 != 0):d},{i % 3 == 0:d},{20 + (i * 13) % 50},{1000 + (i * 37) % 900}\n"
    for i in range(60)
)
HEADERS = ["risk", "sex", "age", "amount"]


@pytest.fixture
def pipeline_session(sdk_env):
    from sagemaker.workflow.pipeline_context import PipelineSession

    session, bucket = sdk_env
    s3 = boto3.client("s3")
    key = f"{unique('checks')}/data.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=CSV.encode())
    return PipelineSession(boto_session=session.boto_session, default_bucket=bucket), bucket, f"s3://{bucket}/{key}"


def _job_config(session):
    from sagemaker.workflow.check_job_config import CheckJobConfig

    return CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.large", sagemaker_session=session)


def _data_bias_step(session, bucket, data_uri, name, **flags):
    from sagemaker.clarify import BiasConfig, DataConfig
    from sagemaker.workflow.clarify_check_step import ClarifyCheckStep, DataBiasCheckConfig

    output = f"s3://{bucket}/{unique('bias')}"
    config = DataBiasCheckConfig(
        data_config=DataConfig(
            s3_data_input_path=data_uri, s3_output_path=output, label="risk", headers=HEADERS, dataset_type="text/csv"
        ),
        data_bias_config=BiasConfig(label_values_or_threshold=[1], facet_name="sex", facet_values_or_threshold=[1]),
        methods=["CI", "DPL"],
    )
    return ClarifyCheckStep(
        name=name, clarify_check_config=config, check_job_config=_job_config(session), **flags
    ), output


def _quality_step(session, bucket, data_uri, name, **flags):
    from sagemaker.model_monitor.dataset_format import DatasetFormat
    from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, QualityCheckStep

    output = f"s3://{bucket}/{unique('quality')}"
    config = DataQualityCheckConfig(
        baseline_dataset=data_uri, dataset_format=DatasetFormat.csv(header=True), output_s3_uri=output
    )
    return QualityCheckStep(
        name=name, quality_check_config=config, check_job_config=_job_config(session), **flags
    ), output


def _run_pipeline(sm, session, steps, parameters=(), **start):
    from sagemaker.workflow.pipeline import Pipeline

    pipeline = Pipeline(name=unique("checks"), parameters=list(parameters), steps=steps, sagemaker_session=session)
    pipeline.upsert(role_arn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName=pipeline.name, **start)["PipelineExecutionArn"]
    described = wait(sm, arn, timeout=300)
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return described, {s["StepName"]: s for s in steps}


def _read(s3, uri):
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _put(s3, uri, document):
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())


def test_first_run_registers_the_calculated_baselines(sm, s3, pipeline_session):
    session, bucket, data = pipeline_session
    bias, bias_out = _data_bias_step(session, bucket, data, "DataBias", skip_check=True, register_new_baseline=True)
    quality, quality_out = _quality_step(
        session, bucket, data, "DataQuality", skip_check=True, register_new_baseline=True
    )
    described, steps = _run_pipeline(sm, session, [bias, quality])
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    clarify = steps["DataBias"]["Metadata"]["ClarifyCheck"]
    assert clarify["CheckType"] == "DATA_BIAS" and clarify["SkipCheck"] is True
    assert clarify["CalculatedBaselineConstraints"] == f"{bias_out}/analysis.json"
    assert clarify["BaselineUsedForDriftCheckConstraints"] == clarify["CalculatedBaselineConstraints"]
    assert clarify["CheckJobArn"].startswith("arn:aws:sagemaker:")
    assert "pre_training_bias_metrics" in _read(s3, clarify["CalculatedBaselineConstraints"])
    monitor = steps["DataQuality"]["Metadata"]["QualityCheck"]
    assert monitor["CalculatedBaselineStatistics"] == f"{quality_out}/statistics.json"
    assert monitor["BaselineUsedForDriftCheckConstraints"] == f"{quality_out}/constraints.json"
    assert _read(s3, monitor["CalculatedBaselineConstraints"])["features"]


def _scaled_baseline(s3, analysis_uri, target, factor):
    document = _read(s3, analysis_uri)
    for entry in document["pre_training_bias_metrics"]["facets"]["sex"]:
        for metric in entry["metrics"]:
            metric["value"] = metric["value"] * factor
    _put(s3, target, document)
    return target


def test_clarify_check_passes_and_fails_against_a_supplied_baseline(sm, s3, pipeline_session):
    from sagemaker.workflow.parameters import ParameterString

    session, bucket, data = pipeline_session
    seed, seed_out = _data_bias_step(session, bucket, data, "Seed", skip_check=True)
    described, _ = _run_pipeline(sm, session, [seed])
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    good = _scaled_baseline(s3, f"{seed_out}/analysis.json", f"s3://{bucket}/{unique('good')}/analysis.json", 2.0)
    bad = _scaled_baseline(s3, f"{seed_out}/analysis.json", f"s3://{bucket}/{unique('bad')}/analysis.json", 1e-6)

    baseline = ParameterString("Baseline", default_value=good)
    check, check_out = _data_bias_step(session, bucket, data, "BiasCheck", supplied_baseline_constraints=baseline)
    described, steps = _run_pipeline(sm, session, [check], parameters=[baseline])
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    metadata = steps["BiasCheck"]["Metadata"]["ClarifyCheck"]
    assert metadata["BaselineUsedForDriftCheckConstraints"] == good
    assert _read(s3, metadata["ViolationReport"]) == {"version": "1.0", "violations": []}

    name = described["PipelineArn"].rsplit("/", 1)[-1]
    _, described = run(sm, name, timeout=300, PipelineParameters=[{"Name": "Baseline", "Value": bad}])
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "ClientError: Clarify check failed. See violation report" in described["FailureReason"]
    violations = _read(s3, f"{check_out}/constraint_violations.json")["violations"]
    assert {v["metric_name"] for v in violations} == {"CI", "DPL"}
    assert all(v["constraint_check_type"] == "bias_drift_check" for v in violations)


def test_clarify_check_without_any_baseline_fails_clearly(sm, pipeline_session):
    session, bucket, data = pipeline_session
    check, _ = _data_bias_step(session, bucket, data, "NoBaseline")
    described, _ = _run_pipeline(sm, session, [check])
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "has no baseline to check against" in described["FailureReason"]


def test_quality_check_uses_the_registry_baseline_and_fails_on_a_bad_one(sm, s3, pipeline_session):
    session, bucket, data = pipeline_session
    seed, seed_out = _quality_step(session, bucket, data, "Seed", skip_check=True)
    described, _ = _run_pipeline(sm, session, [seed])
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    constraints = _read(s3, f"{seed_out}/constraints.json")
    # a baseline column the data does not have: missing_column_check must fire. (A numeric column declared String
    # does not fire here: the analyzer follows Deequ, which puts no type constraint on String columns.)
    constraints["features"].append({"name": "duration", "inferred_type": "Integral", "completeness": 1.0})
    bad = f"s3://{bucket}/{unique('bad-quality')}/constraints.json"
    _put(s3, bad, constraints)

    group = unique("checks-group")
    sm.create_model_package_group(ModelPackageGroupName=group)
    baselines = {"Statistics": f"{seed_out}/statistics.json", "Constraints": f"{seed_out}/constraints.json"}
    sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        DriftCheckBaselines={
            "ModelDataQuality": {k: {"ContentType": "application/json", "S3Uri": v} for k, v in baselines.items()}
        },
    )
    check, _ = _quality_step(session, bucket, data, "QualityCheck", model_package_group_name=group)
    described, steps = _run_pipeline(sm, session, [check])
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    metadata = steps["QualityCheck"]["Metadata"]["QualityCheck"]
    assert metadata["BaselineUsedForDriftCheckConstraints"] == baselines["Constraints"]
    assert _read(s3, metadata["ViolationReport"])["violations"] == []

    failing, _ = _quality_step(
        session,
        bucket,
        data,
        "BadQuality",
        supplied_baseline_constraints=bad,
        supplied_baseline_statistics=baselines["Statistics"],
    )
    described, _ = _run_pipeline(sm, session, [failing])
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "ClientError: Quality check failed. See violation report" in described["FailureReason"]
    report = described["FailureReason"].rsplit(" ", 1)[-1]
    kinds = {v["constraint_check_type"] for v in _read(s3, report)["violations"]}
    assert "missing_column_check" in kinds


def test_check_step_properties_are_checked_at_create(sm, pipeline_session):
    session, bucket, data = pipeline_session
    from botocore.exceptions import ClientError

    check, _ = _data_bias_step(session, bucket, data, "Check", skip_check=True)
    body = json.loads(_definition(session, [check]))
    body["Steps"].append(
        {
            "Name": "Use",
            "Type": "Fail",
            "Arguments": {"ErrorMessage": {"Get": "Steps.Check.CalculatedBaselineStatistics"}},
        }
    )
    with pytest.raises(ClientError, match="CalculatedBaselineStatistics"):
        sm.create_pipeline(PipelineName=unique("checks"), PipelineDefinition=json.dumps(body), RoleArn=ROLE)


def _definition(session, steps):
    from sagemaker.workflow.pipeline import Pipeline

    return Pipeline(name=unique("checks"), steps=steps, sagemaker_session=session).definition()
