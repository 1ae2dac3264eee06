"""What the suite's one run of the credit-risk pipeline must have done and written (docs/ci.md, "Test tiers").

The pull-request workflow's ``make pipeline ROWS=500`` step is that run; ``test_workflows.py`` hands its console
output and report folder here. ``assert_cached_rerun_fails_at_the_gate`` then starts the same definition again
in-process with an impossible ``AucThreshold``: every step up to the gate is a cache hit of that run, so the suite
runs the pipeline's work once.
"""

import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelines.commands.run_pipeline import main
from pipelines.credit_risk.pipeline import FEATURE_OUTPUTS

PIPELINE = "credit-risk"  # `make pipeline`'s default --pipeline and pipeline name
ROWS = 500  # pr.yml's `make pipeline ROWS=500`
CHECK_STEPS = ("DataBiasCheck", "DataQualityCheck", "ModelBiasCheck", "ExplainabilityCheck", "ModelQualityCheck")
# labelled_train of the first ROWS rows: the header and the train split (351 rows: 70 % per label, by a hash
# of each row: spark_jobs/features/credit.py)
LABELLED_TRAIN_LINES = 352


def execution_of(output: str) -> str:
    """The execution ARN ``run_pipeline`` printed (``==> started <arn>``)."""
    match = re.search(r"==> started (\S+)", output)
    assert match, output[-2000:]
    return match.group(1)


def steps_of(sm: Any, execution_arn: str) -> dict[str, Any]:
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn)["PipelineExecutionSteps"]
    return {s["StepName"]: s for s in steps}


def _processing_job(sm: Any, step: dict[str, Any]) -> dict[str, Any]:
    return sm.describe_processing_job(ProcessingJobName=step["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1])


def _objects(s3: Any, uri: str) -> dict[str, list[str]]:
    """Every object under the output ``uri``: file name -> lines."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]]
    return {
        key.rsplit("/", 1)[1]: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        for key in keys
    }


def _only_object(s3: Any, uri: str, name: str) -> list[str]:
    found = _objects(s3, uri)
    assert list(found) == [name], list(found)
    return found[name]


def _assert_features_ran_the_spark_job(sm: Any, s3: Any, step: dict[str, Any]) -> str:
    """The feature step is a PySpark processing job that wrote the feature group and one output, the entities."""
    job = _processing_job(sm, step)
    app = job["AppSpecification"]
    assert "sagemaker-spark-processing" in app["ImageUri"] and app["ContainerEntrypoint"][0] == "smspark-submit"
    assert app["ContainerEntrypoint"][-1].endswith("/credit.py") and app["ContainerArguments"][0] == "--processing"
    arguments = app["ContainerArguments"]
    group = arguments[arguments.index("--feature-group") + 1]
    assert group == f"{PIPELINE}-features"
    [output] = job["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "entities"
    written = _objects(s3, output["S3Output"]["S3Uri"])
    assert sorted(written) == ["entities.csv", "feature_names.json"]
    entities = written["entities.csv"]
    assert entities[0] == "applicant_id,event_time,split,risk" and len(entities) == ROWS + 1
    return group


def _assert_training_set_from_the_feature_store(sm: Any, s3: Any, step: dict[str, Any], group: str) -> None:
    """TrainingSet built the six outputs from the offline store (one CSV each); the test rows are online."""
    job = _processing_job(sm, step)
    assert job["AppSpecification"]["ContainerArguments"][:2] == ["--feature-group", group]
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job["ProcessingOutputConfig"]["Outputs"]}
    assert set(outputs) == set(FEATURE_OUTPUTS) and outputs["test"].endswith("/features/test")
    bodies = {name: _only_object(s3, uri, f"{name}.csv") for name, uri in outputs.items() if name != "online_scoring"}
    header = bodies["labelled_train"][0].split(",")
    assert header[0] == "risk" and "sex" in header and len(bodies["labelled_train"]) == LABELLED_TRAIN_LINES
    assert [line.split(",", 1)[1] for line in bodies["test"]] == bodies["test_features"]
    scoring = _objects(s3, outputs["online_scoring"])["online_scoring.csv"]
    identifiers = [line.split(",")[0] for line in scoring[1:]]
    assert scoring[0] == "applicant_id,risk" and len(identifiers) == len(bodies["test"])
    fsr = boto3.client("sagemaker-featurestore-runtime")
    answer = fsr.batch_get_record(
        Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": identifiers[:100]}]
    )
    assert len(answer["Records"]) == min(100, len(identifiers)) and not answer["Errors"]
    online = {f["FeatureName"]: f["ValueAsString"] for f in answer["Records"][0]["Record"]}
    assert set(header[1:]) <= set(online)


def assert_pipeline_run(output: str, folder: Path) -> None:
    """The run followed its steps live, succeeded, wrote the full report, ran the Spark feature job into the feature
    group, built the training set from the offline store and registered a model package with every check's baseline
    and metrics."""
    assert "AucGate" in output and "execution Succeeded" in output
    report = (folder / "report.md").read_text()
    assert "| Evaluate | Succeeded" in report and "auc=" in report
    assert (folder / "roc.png").stat().st_size > 0
    for step in CHECK_STEPS:
        assert f"| {step} | Succeeded" in report
    assert "## Bias in the data" in report and "## Bias in the model" in report and "| sex = 1 | CI |" in report
    assert (folder / "shap.png").stat().st_size > 0
    assert "## Trial components" in report and "### Training jobs side by side" in report
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    steps = steps_of(sm, execution_of(output))
    group = _assert_features_ran_the_spark_job(sm, s3, steps["Features"])
    _assert_training_set_from_the_feature_store(sm, s3, steps["TrainingSet"], group)
    [registered] = [s["Metadata"]["RegisterModel"]["Arn"] for s in steps.values() if "RegisterModel" in s["Metadata"]]
    packages = sm.list_model_packages(ModelPackageGroupName=PIPELINE)["ModelPackageSummaryList"]
    assert registered in [p["ModelPackageArn"] for p in packages]
    package = sm.describe_model_package(ModelPackageName=registered)
    assert package["DriftCheckBaselines"]["Bias"]["PreTrainingConstraints"]["S3Uri"].endswith("analysis.json")
    assert package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"].endswith("statistics.json")
    assert package["ModelMetrics"]["ModelQuality"]["Constraints"]["S3Uri"].endswith("constraints.json")
    assert package["ModelMetrics"]["Explainability"]["Report"]["S3Uri"].endswith("analysis.json")


def assert_cached_rerun_fails_at_the_gate(first_output: str, reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Same definition (same name and ROWS), impossible threshold: every step but the gate and its Fail step is a
    cache hit, the Fail step's message, exit code 1. Features' cache hit is of the first run (the py-files zip,
    rebuilt in this process, kept its key)."""
    capsys.readouterr()
    assert main(["--rows", str(ROWS), "--reports", str(reports), "--param", "AucThreshold=0.999"]) == 1
    captured = capsys.readouterr()
    assert "Succeeded*" in captured.out  # cache hits
    assert "is below the threshold 0.999" in captured.err
    steps = steps_of(boto3.client("sagemaker"), execution_of(captured.out))
    assert steps["Features"]["CacheHitResult"]["SourcePipelineExecutionArn"] == execution_of(first_output)
    assert {name for name, step in steps.items() if not step.get("CacheHitResult")} == {"AucGate", "AucTooLow"}
