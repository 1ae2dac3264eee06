"""Model artifacts as AWS's image of each framework version writes them, served in any form, from any S3 URL form.

docs/containers.md#xgboost-model-files-per-framework-version: ``pickle.load`` for images before 1.3-1,
``xgboost.Booster().load_model`` from 1.3-1 on, as AWS's XGBoost documentation tells users to load them.
"""

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import training_request, wait_endpoint, wait_training, wait_transform

ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost"
FIXTURES = Path(__file__).parents[1] / "unit" / "containers" / "xgboost" / "fixtures" / "xgboost_1_7_binary"
RNG = np.random.default_rng(11)
FEATURES = np.round(RNG.random((60, 4)), 4)
LABELS = np.round(FEATURES @ np.array([3.0, -2.0, 1.0, 0.5]) + 1.5, 4)


def _csv(rows):
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


def _model_file(s3, model_data):
    bucket, key = model_data.removeprefix("s3://").split("/", 1)
    archive = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["xgboost-model"]
        member = tar.extractfile("xgboost-model")
        assert member is not None
        return member.read()


def _train(sm, s3, bucket, tag):
    prefix = unique("artifact")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/rows.csv", Body=_csv(np.column_stack([LABELS, FEATURES])))
    name = unique("artifact")
    request = training_request(
        name,
        bucket,
        AlgorithmSpecification={"TrainingImage": f"{ECR}:{tag}", "TrainingInputMode": "File"},
        HyperParameters={"num_round": "5", "objective": "reg:squarederror", "max_depth": "3"},
    )
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/{prefix}/train"
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described["ModelArtifacts"]["S3ModelArtifacts"]


@pytest.mark.parametrize("tag", ["0.90-2-cpu-py3", "1.0-1-cpu-py3", "1.2-2"])
def test_images_before_1_3_pickle_the_booster(sm, s3, bucket, tag, tmp_path):
    raw = _model_file(s3, _train(sm, s3, bucket, tag))

    booster = pickle.loads(raw)  # what the Pipelines abalone evaluation script does
    assert isinstance(booster, xgb.Booster)
    assert raw[:2] == (b"\x80\x04" if tag.startswith("1.2") else b"\x80\x03")
    assert booster.num_features() == 4


@pytest.mark.parametrize("tag", ["1.3-1", "1.7-1"])
def test_images_from_1_3_save_xgboosts_own_format(sm, s3, bucket, tag, tmp_path):
    raw = _model_file(s3, _train(sm, s3, bucket, tag))
    path = tmp_path / "xgboost-model"
    path.write_bytes(raw)

    booster = xgb.Booster()
    booster.load_model(str(path))
    assert booster.num_features() == 4
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)


def _old_pickle(binary: bytes) -> bytes:
    """A model.tar.gz member as AWS's 0.90 image wrote it: protocol 3 pickle of a Booster holding the binary model."""
    state = pickle.dumps({"handle": bytearray(binary), "feature_names": None, "booster": "gbtree"}, protocol=3)
    return b"\x80\x03cxgboost.core\nBooster\nq\x00)\x81" + state[2:-1] + b"b."


def _archive(member: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    return buffer.getvalue()


def _endpoint(sm, model_data_url, image=f"{ECR}:0.90-2-cpu-py3"):
    model = unique("artifact-model")
    sm.create_model(
        ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataUrl": model_data_url}
    )
    config = unique("artifact-cfg")
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "v", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    endpoint = unique("artifact-ep")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    return model, endpoint


def test_an_old_pickled_model_from_an_https_model_data_url_is_served_without_a_content_type(sm, smr, s3, bucket):
    expected = json.loads((FIXTURES / "expected.json").read_text())
    key = f"{unique('churn')}/xgb-churn-prediction-model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=_archive(_old_pickle((FIXTURES / "binary_logistic.model").read_bytes())))
    model, endpoint = _endpoint(sm, f"https://{bucket}.s3-us-east-1.amazonaws.com/{key}")
    described = wait_endpoint(sm, endpoint)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")

    rows = _csv(expected["X"])
    answer = smr.invoke_endpoint(EndpointName=endpoint, Body=rows)["Body"].read().decode()
    np.testing.assert_allclose([float(v) for v in answer.split()], expected["expected"]["binary_logistic"], rtol=1e-6)

    prefix = unique("artifact-tj")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/in/rows.csv", Body=rows)
    job = unique("artifact-tj")
    sm.create_transform_job(
        TransformJobName=job,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}/in"}}
        },
        TransformOutput={"S3OutputPath": f"s3://{bucket}/{prefix}/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    assert wait_transform(sm, job)["TransformJobStatus"] == "Completed"
    out = s3.get_object(Bucket=bucket, Key=f"{prefix}/out/rows.csv.out")["Body"].read().decode()
    np.testing.assert_allclose([float(v) for v in out.split()], expected["expected"]["binary_logistic"], rtol=1e-6)
    sm.delete_endpoint(EndpointName=endpoint)


def test_a_model_that_cannot_be_loaded_fails_the_endpoint_at_once_with_the_loaders_error(sm, s3, bucket):
    key = f"{unique('broken')}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=_archive(b"this is not a model"))
    _, endpoint = _endpoint(sm, f"https://s3.amazonaws.com/{bucket}/{key}")
    described = wait_endpoint(sm, endpoint, timeout=600)

    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "exited before it was ready" in reason  # the container stopped: no waiting out the ping timeout
    assert "Unable to load model: xgboost-model is not an XGBoost model" in reason
