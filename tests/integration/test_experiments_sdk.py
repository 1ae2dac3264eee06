"""SDK v2 unchanged: ``Run`` logs parameters, metric steps, files and charts; ``load_run`` inside a training job;
``ExperimentAnalytics`` reads them all back."""

import os

import boto3
import pytest

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, unique

JOB_SCRIPT = """
from sagemaker.experiments import load_run

with load_run() as run:
    run.log_parameter("inside", "job")
    for step in range(3):
        run.log_metric("job_loss", 1.0 / (step + 1), step=step)
"""


@pytest.fixture
def session(sdk_env, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    return sdk_env


def test_run_logs_and_load_run_inside_a_training_job(session, tmp_path, bucket):
    from sagemaker.analytics import ExperimentAnalytics
    from sagemaker.estimator import Estimator
    from sagemaker.experiments import Run, list_runs

    sagemaker_session, _ = session
    experiment = unique("sdk-exp")
    script = tmp_path / "code" / "job.py"
    script.parent.mkdir()
    script.write_text(JOB_SCRIPT)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")

    with Run(experiment_name=experiment, run_name="first", sagemaker_session=sagemaker_session) as run:
        run.log_parameters({"eta": 0.3, "objective": "binary:logistic"})
        for step in range(5):
            run.log_metric("auc", 0.5 + step / 10, step=step)
        run.log_file(str(notes), name="notes", is_output=True)
        run.log_artifact("dataset", f"s3://{bucket}/data/train", is_output=False)
        run.log_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="cm")
        run.log_roc_curve([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.3], title="roc")
        run.log_precision_recall([0, 1, 1, 0], [0.1, 0.9, 0.4, 0.3], title="pr")
        estimator = Estimator(
            image_uri=XGBOOST_IMAGE,
            role=ROLE,
            instance_count=1,
            instance_type="ml.m5.large",
            entry_point="job.py",
            source_dir=str(script.parent),
            sagemaker_session=sagemaker_session,
            hyperparameters={"num_round": 1},
        )
        estimator.fit({"train": f"s3://{bucket}/data/train"}, wait=True, logs=False)

    job = estimator.latest_training_job.name
    sm = boto3.client("sagemaker")
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Completed"
    [loaded] = [r for r in list_runs(experiment_name=experiment, sagemaker_session=sagemaker_session)]
    assert loaded.run_name == "first"

    frame = ExperimentAnalytics(experiment_name=experiment, sagemaker_session=sagemaker_session).dataframe()
    run_row = frame[frame["TrialComponentName"] == f"{experiment}-first"].iloc[0]  # the SDK's run component name
    assert run_row["eta"] == 0.3 and run_row["inside"] == "job"
    assert run_row["auc - Max"] == pytest.approx(0.9) and run_row["auc - Count"] == 5
    assert run_row["job_loss - Min"] == pytest.approx(1 / 3)
    assert run_row["notes - Value"].startswith("s3://") and run_row["dataset - Value"] == f"s3://{bucket}/data/train"
    job_rows = frame[frame["TrialComponentName"] == f"{job}-aws-training-job"]
    assert len(job_rows) == 1  # the job's own component sits in the run's group, as on AWS

    charts = sm.list_artifacts(ArtifactType="ConfusionMatrix")["ArtifactSummaries"]
    assert charts and os.path.basename(charts[0]["Source"]["SourceUri"]).endswith(".json")
