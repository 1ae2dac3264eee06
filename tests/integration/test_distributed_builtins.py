"""K-Means and PCA with InstanceCount=2 through the public API, against the same job on one instance
(docs/algorithms/kmeans.md#distributed-training, docs/algorithms/pca.md#distributed-training), and their
``model.tar.gz`` read back as ``mxnet.ndarray.load`` reads it (an independent reader written from MXNet's format)."""

import io
import tarfile

import numpy as np
import pytest

from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import wait_training
from tests.unit.containers.toolkit.mxnet_reader import mx_nd_load

KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
PCA_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1"
RNG = np.random.default_rng(21)
TRUE_CENTERS = np.array([[0, 0, 0, 0, 0], [20, 0, 0, 0, 0], [0, 20, 0, 0, 0], [0, 0, 20, 20, 20]], dtype=float)
BLOBS = np.round(TRUE_CENTERS[RNG.integers(0, 4, 2000)] + RNG.normal(scale=0.5, size=(2000, 5)), 5)
WIDE = np.round(RNG.normal(size=(1200, 8)) * np.geomspace(10, 0.1, 8) @ np.linalg.qr(RNG.normal(size=(8, 8)))[0], 5)


def _csv(rows):
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.17g")
    return buffer.getvalue().encode()


def _upload(s3, bucket, rows, parts=2):
    prefix = unique("dist")
    for index, chunk in enumerate(np.array_split(rows, parts)):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/train/part-{index}.csv", Body=_csv(chunk))
    return f"s3://{bucket}/{prefix}/train"


def _train(sm, bucket, image, hyperparameters, uri, count, distribution="FullyReplicated"):
    name = unique("dist")
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        HyperParameters=hyperparameters,
        InputDataConfig=[
            {
                "ChannelName": "train",
                "ContentType": "text/csv",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/dist-output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    return wait_training(sm, name, timeout=600)


def _model(s3, described):
    """The arrays of ``model_algo-1``, the one member of ``model.tar.gz``, as ``mx.nd.load`` returns them."""
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        assert tar.getnames() == ["model_algo-1"]
        return mx_nd_load(tar.extractfile("model_algo-1").read())


def _by_truth(centers):
    order = [int(np.argmin(((centers - center) ** 2).sum(axis=1))) for center in TRUE_CENTERS]
    assert sorted(order) == [0, 1, 2, 3]
    return centers[order]


@pytest.fixture(scope="module")
def kmeans_one_host(sm, s3, bucket):
    uri = _upload(s3, bucket, BLOBS)
    hyperparameters = {"k": "4", "feature_dim": "5", "mini_batch_size": "300"}
    [centers] = _model(s3, _train(sm, bucket, KMEANS_IMAGE, hyperparameters, uri, 1))
    return uri, hyperparameters, centers


@pytest.mark.parametrize("distribution", ["FullyReplicated", "ShardedByS3Key"])
def test_kmeans_on_two_instances_finds_the_centers_of_one(sm, s3, bucket, kmeans_one_host, distribution):
    uri, hyperparameters, one_host = kmeans_one_host
    described = _train(sm, bucket, KMEANS_IMAGE, hyperparameters, uri, 2, distribution)
    [centers] = _model(s3, described)

    assert centers.shape == (4, 5) and centers.dtype == np.float32
    np.testing.assert_allclose(_by_truth(centers), _by_truth(one_host), atol=0.1)
    np.testing.assert_allclose(_by_truth(centers), TRUE_CENTERS, atol=0.15)
    metrics = {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}
    assert 0 < metrics["train:msd"] < 2.0  # about feature_dim * sigma^2 = 1.25, summed over both hosts


@pytest.mark.parametrize("distribution", ["FullyReplicated", "ShardedByS3Key"])
@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_pca_on_two_instances_gives_the_components_of_one(sm, s3, bucket, distribution, mode):
    uri = _upload(s3, bucket, WIDE)
    hyperparameters = {"feature_dim": "8", "num_components": "3", "mini_batch_size": "100", "algorithm_mode": mode}
    one_host = _model(s3, _train(sm, bucket, PCA_IMAGE, hyperparameters, uri, 1))
    two_hosts = _model(s3, _train(sm, bucket, PCA_IMAGE, hyperparameters, uri, 2, distribution))

    assert list(two_hosts) == ["s", "v", "mean"]  # as mx.nd.load shows AWS's PCA artifact
    assert two_hosts["v"].shape == (8, 3) and two_hosts["mean"].shape == (1, 8)
    np.testing.assert_allclose(two_hosts["s"], one_host["s"], rtol=1e-5)
    np.testing.assert_allclose(two_hosts["mean"], one_host["mean"], atol=1e-5)
    signs = np.sign(np.sum(two_hosts["v"] * one_host["v"], axis=0))  # components are equal up to sign
    np.testing.assert_allclose(two_hosts["v"] * signs, one_host["v"], atol=1e-5)


def test_a_failing_host_fails_the_job_with_its_reason(sm, s3, bucket):
    prefix = unique("dist-bad")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/part-0.csv", Body=_csv(BLOBS[:1000]))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/train/part-1.csv", Body=_csv(BLOBS[:10]) + b"1,2,nan,4,5\n")
    hyperparameters = {"k": "4", "feature_dim": "5", "mini_batch_size": "300"}
    uri = f"s3://{bucket}/{prefix}/train"
    described = _train(sm, bucket, KMEANS_IMAGE, hyperparameters, uri, 2, "ShardedByS3Key")

    assert described["TrainingJobStatus"] == "Failed"
    assert "Invalid value nan" in described["FailureReason"] and "part-1.csv" in described["FailureReason"]
    assert "ModelArtifacts" not in described or not described["ModelArtifacts"].get("S3ModelArtifacts")


def test_the_mnist_notebook_kmeans_estimator_with_two_instances(sdk_env):
    """The notebook's calls: ``KMeans(instance_count=2, ...)`` fitted on ``record_set`` (recordIO shards,
    ShardedByS3Key), then its model loaded as the notebook's readers do."""
    from sagemaker import KMeans

    session, default_bucket = sdk_env
    kmeans = KMeans(
        role=ROLE,
        instance_count=2,
        instance_type="ml.c4.xlarge",
        output_path=f"s3://{default_bucket}/kmeans-mnist-output",
        k=4,
        sagemaker_session=session,
    )
    kmeans.fit(kmeans.record_set(BLOBS.astype("float32")), logs=False)
    described = kmeans.latest_training_job.describe()
    bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    archive = session.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        [centers] = mx_nd_load(tar.extractfile("model_algo-1").read())
    np.testing.assert_allclose(_by_truth(centers), TRUE_CENTERS, atol=0.15)
