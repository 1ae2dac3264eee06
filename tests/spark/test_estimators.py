"""The Spark-native estimator API against the local stack: real training jobs and endpoints (XGBoost, K-Means, PCA)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import VectorAssembler
from sklearn.datasets import load_digits

from spark_jobs.config import AwsSettings
from spark_jobs.endpoint_scoring.deserializers import XGBoostCSVDeserializer
from spark_jobs.endpoint_scoring.serializers import CSVSerializer
from spark_jobs.errors import SageMakerJobError
from spark_jobs.estimators.algorithms import KMeansSageMakerEstimator, PCASageMakerEstimator, XGBoostSageMakerEstimator
from spark_jobs.estimators.estimator import EndpointCreationPolicy, SageMakerModel, ScoringSettings
from tests.integration.conftest import ROLE

COLUMNS = [f"p{i}" for i in range(64)]


@pytest.fixture(scope="module")
def aws(stack_url):
    return AwsSettings(endpoint_url=stack_url, region="us-east-1")


@pytest.fixture(scope="module")
def digits(spark):
    x, y = load_digits(return_X_y=True)
    rows = [(float(label), *map(float, features)) for features, label in zip(x[:600], y[:600], strict=True)]
    return spark.createDataFrame(rows, ["label", *COLUMNS]).repartition(2)


def test_xgboost_in_a_pipeline_trains_deploys_and_scores(digits, aws, sm):
    xgb = XGBoostSageMakerEstimator(
        training_instance_type="ml.m5.xlarge",
        training_instance_count=1,
        endpoint_instance_type="ml.m5.xlarge",
        endpoint_initial_instance_count=1,
        sagemaker_role=ROLE,
        aws=aws,
    )
    xgb.set_num_round(15).set_num_class(10).set_objective("multi:softmax")
    assert xgb.hyperparameters() == {"num_round": "15", "num_class": "10", "objective": "multi:softmax"}
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=COLUMNS, outputCol="features"), xgb])
    fitted = pipeline.fit(digits)
    model = fitted.stages[-1]
    assert isinstance(model, SageMakerModel) and model.endpoint_name
    assert sm.describe_endpoint(EndpointName=model.endpoint_name)["EndpointStatus"] == "InService"
    out = fitted.transform(digits.limit(50)).select("label", "prediction").collect()
    assert len(out) == 50 and np.mean([r["label"] == r["prediction"] for r in out]) > 0.9

    again = SageMakerModel.from_endpoint(
        model.endpoint_name,
        ScoringSettings(CSVSerializer(), XGBoostCSVDeserializer(), features_col=None, feature_columns=tuple(COLUMNS)),
        aws=aws,
    )
    scored = again.transform(digits.limit(20)).collect()
    assert [r["prediction"] for r in scored] == [r["prediction"] for r in out[:20]]
    model.delete_resources()
    with pytest.raises(SageMakerJobError, match="cannot be used"):
        SageMakerModel.from_endpoint(model.endpoint_name, again.scoring, aws=aws)


def test_kmeans_and_pca_on_recordio_with_lazy_and_no_endpoint(digits, aws):
    assembled = VectorAssembler(inputCols=COLUMNS, outputCol="features").transform(digits)
    kmeans = KMeansSageMakerEstimator(
        sagemaker_role=ROLE, aws=aws, endpoint_creation_policy=EndpointCreationPolicy.CREATE_ON_TRANSFORM
    )
    kmeans.set_k(10)
    model = kmeans.fit(assembled)
    assert model.endpoint_name is None and kmeans.hyperparameters()["feature_dim"] == "64"
    out = model.transform(assembled.limit(30)).select("closest_cluster", "distance_to_cluster").collect()
    assert model.endpoint_name and {r["closest_cluster"] for r in out} <= set(map(float, range(10)))
    assert all(r["distance_to_cluster"] >= 0 for r in out)
    model.delete_resources()

    pca = PCASageMakerEstimator(
        sagemaker_role=ROLE, aws=aws, endpoint_creation_policy=EndpointCreationPolicy.DO_NOT_CREATE
    )
    pca.set_num_components(3).set_mini_batch_size(100)
    pca_model = pca.fit(assembled)
    with pytest.raises(SageMakerJobError, match="no endpoint"):
        pca_model.transform(assembled)
    pca_model.create_endpoint()
    rows = pca_model.transform(assembled.limit(10)).select("projection").collect()
    assert all(len(r["projection"]) == 3 for r in rows)
    pca_model.delete_resources()
