"""``python -m pipelines.commands.run_pipeline`` end to end on the German credit data: SDK upsert/start, live progress,
report."""

import boto3

from pipelines.commands.run_pipeline import main
from pipelines.credit_risk.pipeline import FEATURE_OUTPUTS
from tests.integration.conftest import unique


def _steps(sm, name):
    [latest, *_] = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=latest["PipelineExecutionArn"])
    return {s["StepName"]: s for s in steps["PipelineExecutionSteps"]}


def _assert_features_ran_the_spark_job(sm, s3, step):
    """The feature step is a PySpark processing job whose six outputs hold one CSV file each."""
    job = sm.describe_processing_job(ProcessingJobName=step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1])
    app = job["AppSpecification"]
    assert "sagemaker-spark-processing" in app["ImageUri"] and app["ContainerEntrypoint"][0] == "smspark-submit"
    assert app["ContainerEntrypoint"][-1].endswith("/credit.py") and app["ContainerArguments"][0] == "--processing"
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
    assert set(outputs) == set(FEATURE_OUTPUTS) and outputs["test"].endswith("/features/test")
    bodies = {}
    for name, uri in outputs.items():
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]]
        bodies[name] = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    header = bodies["labelled_train"][0].split(",")
    assert header[0] == "risk" and "sex" in header and len(bodies["labelled_train"]) == 701
    assert [line.split(",", 1)[1] for line in bodies["test"]] == bodies["test_features"]


def test_credit_risk_pipeline_succeeds_and_writes_the_report(sdk_env, tmp_path, capsys):
    name, reports = unique("credit"), tmp_path / "reports"
    assert main(["--name", name, "--reports", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "AucGate" in out and "execution Succeeded" in out
    (folder,) = reports.iterdir()
    report = (folder / "report.md").read_text()
    assert "| Evaluate | Succeeded" in report and "auc=" in report
    assert (folder / "roc.png").stat().st_size > 0
    for step in ("DataBiasCheck", "DataQualityCheck", "ModelBiasCheck", "ExplainabilityCheck", "ModelQualityCheck"):
        assert f"| {step} | Succeeded" in report
    assert "## Bias in the data" in report and "## Bias in the model" in report and "| sex = 1 | CI |" in report
    assert (folder / "shap.png").stat().st_size > 0
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    _assert_features_ran_the_spark_job(sm, s3, _steps(sm, name)["Features"])
    packages = sm.list_model_packages(ModelPackageGroupName="credit-risk")
    assert packages["ModelPackageSummaryList"]
    package = sm.describe_model_package(ModelPackageName=packages["ModelPackageSummaryList"][0]["ModelPackageArn"])
    assert package["DriftCheckBaselines"]["Bias"]["PreTrainingConstraints"]["S3Uri"].endswith("analysis.json")
    assert package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"].endswith("statistics.json")
    assert package["ModelMetrics"]["ModelQuality"]["Constraints"]["S3Uri"].endswith("constraints.json")
    assert package["ModelMetrics"]["Explainability"]["Report"]["S3Uri"].endswith("analysis.json")

    # same pipeline, impossible threshold: cached upstream steps, the Fail step's message, exit code 1
    assert main(["--name", name, "--reports", str(reports), "--param", "AucThreshold=0.999"]) == 1
    captured = capsys.readouterr()
    assert "Succeeded*" in captured.out  # cache hits
    assert "is below the threshold 0.999" in captured.err
    assert "CacheHitResult" in _steps(sm, name)["Features"]  # the rebuilt py-files zip kept the cache key
