"""One reading of the data: what the XGBoost endpoint and batch transform see equals what training saw.

The abalone example trains the built-in XGBoost on 1-based LIBSVM rows and then sends the same lines to the
endpoint. Each test trains through the stack, downloads the model and applies it in-process to the training
reader's matrix (XGBoost's own LIBSVM / CSV parser); the endpoint and a batch transform must answer the same.
"""

import io
import tarfile

import numpy as np
import pytest
import xgboost as xgb

from tests.integration.conftest import XGBOOST_IMAGE, unique
from tests.integration.helpers import deploy_endpoint, line_transform, training_request, wait_training

RNG = np.random.default_rng(7)
N_ROWS, N_FEATURES = 120, 8


def _abalone_like():
    """Rings as the label, sex code and seven measurements; 1-based LIBSVM with implicit zeros."""
    features = np.round(RNG.uniform(0.05, 1.0, size=(N_ROWS, N_FEATURES)), 4)
    features[:, 0] = RNG.integers(0, 3, size=N_ROWS)  # sex as 0/1/2: zero is left out of the line
    features[RNG.random(size=features.shape) < 0.1] = 0.0
    rings = np.round(3 + 12 * features[:, 1] + 6 * features[:, 4] + features[:, 0])
    return features, rings


def _libsvm(features, labels):
    lines = []
    for label, row in zip(labels, features, strict=True):
        tokens = " ".join(f"{i + 1}:{float(row[i])!r}" for i in np.flatnonzero(row))
        lines.append(f"{int(label)} {tokens}".rstrip())
    return ("\n".join(lines) + "\n").encode()


def _csv(features, labels=None):
    rows = features if labels is None else np.column_stack([labels, features])
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def _train(sm, s3, bucket, prefix, body, content_type):
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/data", Body=body)
    name = unique("fidelity")
    request = training_request(
        name,
        bucket,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        HyperParameters={"num_round": "20", "objective": "reg:squarederror", "max_depth": "4", "eta": "0.3"},
    )
    channel = request["InputDataConfig"][0]
    channel["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/{prefix}/train"
    channel["ContentType"] = content_type
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described["ModelArtifacts"]["S3ModelArtifacts"]


def _booster(s3, model_data):
    bucket, key = model_data.removeprefix("s3://").split("/", 1)
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        raw = bytearray(member.read())
    booster = xgb.Booster()
    booster.load_model(raw)
    return booster


def _in_process(booster, tmp_path, body, fmt):
    """The model applied to the matrix XGBoost's own reader builds from the training file."""
    path = tmp_path / f"rows.{fmt}"
    path.write_bytes(body)
    uri = f"{path}?format={fmt}" + ("&label_column=0" if fmt == "csv" else "")
    return booster.predict(xgb.DMatrix(uri))


@pytest.fixture(scope="module")
def abalone():
    return _abalone_like()


def _deploy(sm, model_data):
    return deploy_endpoint(sm, XGBOOST_IMAGE, model_data, "fidelity")


def _batch_transform(sm, s3, bucket, model, prefix, body, content_type):
    out = line_transform(sm, s3, bucket, model, prefix, body, content_type, AssembleWith="Line")
    return np.array([float(line) for line in out.split()], dtype=np.float32)


def _invoke(smr, endpoint, body, content_type):
    answer = smr.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type, Accept="text/csv")
    return np.array([float(line) for line in answer["Body"].read().decode().split()], dtype=np.float32)


@pytest.mark.parametrize("codec", ["libsvm", "csv"])
def test_endpoint_and_transform_predict_what_the_model_predicts_on_the_training_matrix(
    sm, smr, s3, bucket, abalone, tmp_path, codec
):
    features, rings = abalone
    prefix = unique(f"fidelity-{codec}")
    content_type = f"text/{codec}"
    train_body = _libsvm(features, rings) if codec == "libsvm" else _csv(features, rings)
    model_data = _train(sm, s3, bucket, prefix, train_body, content_type)
    expected = _in_process(_booster(s3, model_data), tmp_path, train_body, codec)
    # The model learnt something: on its own training rows it is far closer than predicting the mean.
    assert np.median(np.abs(expected - rings)) < 0.5 * np.median(np.abs(rings.mean() - rings))

    request_body = train_body if codec == "libsvm" else _csv(features)  # abalone sends the lines with their labels
    model, endpoint = _deploy(sm, model_data)
    try:
        served = _invoke(smr, endpoint, request_body, content_type)
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    transformed = _batch_transform(sm, s3, bucket, model, prefix, request_body, content_type)
    np.testing.assert_allclose(transformed, expected, rtol=1e-5, atol=1e-5)
