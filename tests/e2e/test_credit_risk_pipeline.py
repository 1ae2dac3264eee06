"""``python -m pipelines.run`` end to end on the German credit data: SDK upsert/start, live progress, report."""

import boto3

from pipelines.run import main
from tests.integration.conftest import unique


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
    sm = boto3.client("sagemaker")
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
