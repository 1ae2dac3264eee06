"""One reading of the data for every codec and built-in (issue 25, item 2): K-Means, PCA and XGBoost are trained
through the stack on recordIO-protobuf, CSV or Parquet written by the SageMaker SDK's own writers (pandas for
Parquet); the model is then applied in-process to the training matrix, and the endpoint must answer the same for
the same rows sent as CSV, JSON, JSON Lines and recordIO-protobuf, and a batch transform for them as CSV.
(CSV and LIBSVM for XGBoost are in test_codec_fidelity.py.)
"""

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sagemaker.amazon.common import write_numpy_to_dense_tensor

from containers.kmeans.model import load_centers
from containers.pca.model import load_model
from tests.integration.conftest import XGBOOST_IMAGE, unique
from tests.integration.helpers import deploy_endpoint, line_transform, training_request, wait_training

KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
PCA_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1"
N_ROWS, N_FEATURES = 90, 6
RECORDIO = "application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(11)
    centers = rng.normal(scale=4.0, size=(3, N_FEATURES))
    features = (centers[rng.integers(0, 3, N_ROWS)] + rng.normal(size=(N_ROWS, N_FEATURES))).astype(np.float32)
    labels = (features[:, 0] * 1.5 - features[:, 3] + 0.25 * features[:, 5]).astype(np.float32)
    return features, labels


def _recordio(features, labels=None):
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, features, labels)
    return buffer.getvalue()


def _csv(features, labels=None):
    matrix = features if labels is None else np.column_stack([labels, features])
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in matrix).encode()


def _parquet(features, labels):
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(N_FEATURES)])
    frame.insert(0, "label", labels)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _train(sm, s3, bucket, image, hyperparameters, body, content_type):
    prefix = unique("codecs")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/data", Body=body)
    name = unique("codecs")
    request = training_request(
        name,
        bucket,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        HyperParameters=hyperparameters,
    )
    channel = request["InputDataConfig"][0]
    channel["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/{prefix}/train"
    channel["ContentType"] = content_type
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described["ModelArtifacts"]["S3ModelArtifacts"], prefix


def _extract(s3, model_data, target):
    bucket, key = model_data.removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        tar.extractall(target, filter="data")
    return target


def _deploy(sm, image, model_data):
    return deploy_endpoint(sm, image, model_data, "codecs")


def _requests(features):
    """The same rows in every request format the built-ins' serving accepts."""
    listed = [{"features": [float(v) for v in row]} for row in features]
    return {
        "text/csv": _csv(features),
        "application/json": json.dumps({"instances": listed}).encode(),
        "application/jsonlines": "".join(json.dumps(item) + "\n" for item in listed).encode(),
        RECORDIO: _recordio(features),
    }


def _served(smr, endpoint, body, content_type):
    answer = smr.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type, Accept="application/json")
    return json.loads(answer["Body"].read())


def _transformed(sm, s3, bucket, model, prefix, body):
    text = line_transform(sm, s3, bucket, model, prefix, body, "text/csv", Accept="application/jsonlines")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _check_everywhere(sm, smr, s3, bucket, image, model_data, prefix, features, check):
    """``check(answers)`` on the endpoint's answer for each request format, then on the batch transform's."""
    model, endpoint = _deploy(sm, image, model_data)
    try:
        for content_type, body in _requests(features).items():
            check(_served(smr, endpoint, body, content_type), content_type)
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
    lines = _transformed(sm, s3, bucket, model, prefix, _csv(features))
    check({"predictions": [item for line in lines for item in _rows_of(line)]}, "batch transform")


def _rows_of(line):
    for root in ("predictions", "projections"):
        if isinstance(line, dict) and root in line:
            return line[root]
    return [line]


@pytest.mark.parametrize("training_codec", [RECORDIO, "text/csv"])
def test_kmeans_assignments_agree_with_its_centroids_on_the_training_matrix(
    sm, smr, s3, bucket, rows, tmp_path, training_codec
):
    features, _ = rows
    body = _recordio(features) if training_codec == RECORDIO else _csv(features)
    hyperparameters = {"k": "3", "feature_dim": str(N_FEATURES), "mini_batch_size": "30", "init_method": "kmeans++"}
    model_data, prefix = _train(sm, s3, bucket, KMEANS_IMAGE, hyperparameters, body, training_codec)
    centers = load_centers(_extract(s3, model_data, tmp_path / "model"))
    distances = np.linalg.norm(features[:, None, :].astype(np.float64) - centers[None, :, :], axis=2)
    expected_cluster, expected_distance = distances.argmin(axis=1), distances.min(axis=1)
    assert len(set(expected_cluster.tolist())) == 3  # the three blobs were found

    def check(answer, how):
        got = answer["predictions"]
        assert [int(item["closest_cluster"]) for item in got] == expected_cluster.tolist(), how
        np.testing.assert_allclose([item["distance_to_cluster"] for item in got], expected_distance, rtol=1e-4)

    _check_everywhere(sm, smr, s3, bucket, KMEANS_IMAGE, model_data, prefix, features, check)


@pytest.mark.parametrize("training_codec", [RECORDIO, "text/csv"])
def test_pca_projections_agree_with_its_components_on_the_training_matrix(
    sm, smr, s3, bucket, rows, tmp_path, training_codec
):
    features, _ = rows
    body = _recordio(features) if training_codec == RECORDIO else _csv(features)
    hyperparameters = {"feature_dim": str(N_FEATURES), "num_components": "3", "mini_batch_size": "30"}
    model_data, prefix = _train(sm, s3, bucket, PCA_IMAGE, hyperparameters, body, training_codec)
    model = load_model(_extract(s3, model_data, tmp_path / "model"))
    expected = (features.astype(np.float64) - model.mean) @ model.v

    def check(answer, how):
        got = np.array([item["projection"] for item in answer.get("projections", answer.get("predictions"))])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=how)

    _check_everywhere(sm, smr, s3, bucket, PCA_IMAGE, model_data, prefix, features, check)


@pytest.mark.parametrize("training_codec", [RECORDIO, "application/x-parquet"])
def test_xgboost_trained_on_recordio_or_parquet_serves_what_it_predicts_in_process(
    sm, smr, s3, bucket, rows, tmp_path, training_codec
):
    features, labels = rows
    body = _recordio(features, labels) if training_codec == RECORDIO else _parquet(features, labels)
    hyperparameters = {"num_round": "15", "objective": "reg:squarederror", "max_depth": "3"}
    model_data, _ = _train(sm, s3, bucket, XGBOOST_IMAGE, hyperparameters, body, training_codec)
    booster = xgb.Booster()
    booster.load_model(bytearray((_extract(s3, model_data, tmp_path / "model") / "xgboost-model").read_bytes()))
    expected = booster.predict(xgb.DMatrix(features))
    assert np.corrcoef(expected, labels)[0, 1] > 0.9  # the model learnt the labels of these very rows

    _, endpoint = _deploy(sm, XGBOOST_IMAGE, model_data)
    try:
        for content_type in ("text/csv", RECORDIO):
            answer = smr.invoke_endpoint(
                EndpointName=endpoint, Body=_requests(features)[content_type], ContentType=content_type
            )
            served = np.array([float(v) for v in answer["Body"].read().decode().replace(",", "\n").split()])
            np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5, err_msg=content_type)
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
