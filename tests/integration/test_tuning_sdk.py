"""SageMaker SDK v2 HyperparameterTuner against the stack: fit, best job, deploy, analytics."""

import pytest

from tests.integration.conftest import ROLE, unique
from tests.integration.test_tuning import one_hot_csv


@pytest.mark.expensive
def test_sdk_v2_hyperparameter_tuner_fit_deploy_analytics(sdk_env):
    from sagemaker import image_uris
    from sagemaker.analytics import HyperparameterTuningJobAnalytics
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import CSVSerializer
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    session, bucket = sdk_env
    s3 = session.boto_session.client("s3")
    train, validation = one_hot_csv()
    s3.put_object(Bucket=bucket, Key="sdk-tuning/train/train.csv", Body=train.encode())
    s3.put_object(Bucket=bucket, Key="sdk-tuning/validation/validation.csv", Body=validation.encode())
    estimator = Estimator(
        image_uri=image_uris.retrieve("xgboost", "us-east-1", "1.7-1"),
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/sdk-tuning/output",
        sagemaker_session=session,
        hyperparameters={"num_round": "5", "objective": "binary:logistic"},
    )
    tuner = HyperparameterTuner(
        estimator,
        objective_metric_name="validation:auc",
        hyperparameter_ranges={"eta": ContinuousParameter(0.05, 0.5), "max_depth": IntegerParameter(1, 6)},
        max_jobs=3,
        max_parallel_jobs=2,
        strategy="Bayesian",
    )
    tuner.fit(
        {
            "train": TrainingInput(f"s3://{bucket}/sdk-tuning/train", content_type="text/csv"),
            "validation": TrainingInput(f"s3://{bucket}/sdk-tuning/validation", content_type="text/csv"),
        },
        job_name=unique("sdk-tune"),
    )
    best = tuner.best_training_job()
    assert best.startswith(tuner.latest_tuning_job.name)
    frame = HyperparameterTuningJobAnalytics(tuner.latest_tuning_job.name, sagemaker_session=session).dataframe()
    assert len(frame) == 3 and {"eta", "max_depth", "FinalObjectiveValue", "TrainingJobName"} <= set(frame.columns)
    assert frame.loc[frame["FinalObjectiveValue"].idxmax(), "TrainingJobName"] == best
    predictor = tuner.deploy(1, "ml.m5.large", endpoint_name=unique("sdk-tune-ep"), serializer=CSVSerializer())
    try:
        row = validation.splitlines()[0].split(",", 1)[1]
        answer = float(predictor.predict(row).decode().strip().split(",")[0])
        assert 0.0 <= answer <= 1.0
    finally:
        predictor.delete_endpoint()
