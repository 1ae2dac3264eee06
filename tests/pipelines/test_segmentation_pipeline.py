"""``python -m pipelines.commands.run_pipeline --pipeline segmentation`` end to end on 300 digits, then a cached rerun.

The rerun shows the Model-step reuse: both Model steps give the first run's model names, so both batch transforms
(whose cache keys hold the model name) are cache hits.
"""

import boto3

from pipelines.commands.run_pipeline import main
from tests.integration.conftest import unique


def _steps(sm, name):
    [latest, *_] = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=latest["PipelineExecutionArn"])
    return {s["StepName"]: s for s in steps["PipelineExecutionSteps"]}


def test_segmentation_pipeline_clusters_digits_and_reruns_from_cache(sdk_env, tmp_path, capsys):
    name, reports = unique("segment"), tmp_path / "reports"
    args = ["--pipeline", "segmentation", "--name", name, "--reports", str(reports), "--rows", "300"]
    assert main([*args, "--param", "Clusters=6", "--param", "Components=8"]) == 0
    assert "execution Succeeded" in capsys.readouterr().out
    (folder,) = reports.iterdir()
    report = (folder / "report.md").read_text()
    assert "## Clusters" in report and "300 images, 6 clusters" in report
    assert (folder / "clusters.png").stat().st_size > 0
    sm = boto3.client("sagemaker")
    first = _steps(sm, name)
    assert {s["StepStatus"] for s in first.values()} == {"Succeeded"} and len(first) == 8

    assert main([*args, "--param", "Clusters=6", "--param", "Components=8"]) == 0
    second = _steps(sm, name)
    for step in ("Prepare", "PCA", "Project", "KMeans", "Assign", "Summarize"):
        assert "CacheHitResult" in second[step], step
    for step in ("PcaModel-CreateModel", "KMeansModel-CreateModel"):
        assert second[step]["Metadata"]["Model"]["Arn"] == first[step]["Metadata"]["Model"]["Arn"]
    assert len(list(reports.iterdir())) == 2
