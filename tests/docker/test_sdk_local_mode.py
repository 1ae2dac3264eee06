"""SageMaker SDK v2 local mode (``LocalSession``, ``instance_type="local"``, docker-compose) with our images tagged as
the AWS built-in URIs: unmodified local-mode code trains, deploys and batch-transforms built-in XGBoost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.runtime.docker.docker_cli import DockerCli
from tests.capabilities import requires_capability
from tests.docker.conftest import binary_csv

XGBOOST_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

TELEMETRY_OFF = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"

pytestmark = [pytest.mark.expensive, pytest.mark.capability("docker-compose")]


@pytest.fixture
def aws_tagged_xgboost() -> Iterator[str]:
    docker = DockerCli()
    tagged = docker.inspect("image", XGBOOST_URI) is not None
    requires_capability("docker-images", available=tagged, why=f"{XGBOOST_URI} is not tagged")
    before = set(_containers_of(docker, XGBOOST_URI))
    yield XGBOOST_URI
    # the SDK's docker-compose runs leave their exited containers behind: remove the ones this test made
    leftovers = [c for c in _containers_of(docker, XGBOOST_URI) if c not in before]
    if leftovers:
        docker.run("rm", "-f", *leftovers, check=False)


def _containers_of(docker: DockerCli, image: str) -> list[str]:
    listed = docker.run("ps", "-aq", "--filter", f"ancestor={image}", check=False)
    return listed.stdout.split()


def test_sdk_local_mode_trains_deploys_and_batch_transforms_builtin_xgboost(
    aws_tagged_xgboost: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.local import LocalSession
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    monkeypatch.setenv("HOME", str(tmp_path))  # the SDK reads ~/.sagemaker/config.yaml; keep the user's out
    (tmp_path / ".sagemaker").mkdir()
    (tmp_path / ".sagemaker" / "config.yaml").write_text(TELEMETRY_OFF)
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    train = binary_csv(tmp_path / "data" / "train" / "train.csv")
    features = tmp_path / "data" / "batch" / "batch.csv"
    features.parent.mkdir(parents=True)
    features.write_text("0.5,0.5,0,0\n-2,-2,0,0\n")
    session = LocalSession()
    session.config = {"local": {"local_code": True, "container_root": str(tmp_path / "sm-local")}}
    (tmp_path / "sm-local").mkdir()

    estimator = Estimator(
        image_uri=aws_tagged_xgboost,
        role=ROLE,
        instance_count=1,
        instance_type="local",
        output_path=f"file://{tmp_path / 'output'}",
        hyperparameters={"objective": "binary:logistic", "num_round": "5", "max_depth": "3"},
        sagemaker_session=session,
    )
    estimator.fit({"train": TrainingInput(f"file://{train.parent}", content_type="text/csv")})
    assert estimator.model_data.startswith("file://")
    assert Path(estimator.model_data.removeprefix("file://")).is_file()

    # Deploy straight from the training job's model.tar.gz: SDK local mode mounts the archive beside the extracted
    # model at /opt/ml/model, and the XGBoost server must pick the model, not the archive.
    model = Model(image_uri=aws_tagged_xgboost, model_data=estimator.model_data, role=ROLE, sagemaker_session=session)
    model.deploy(initial_instance_count=1, instance_type="local")
    predictor = Predictor(model.endpoint_name, session, serializer=CSVSerializer(), deserializer=CSVDeserializer())
    try:
        scores = [float(row[0]) for row in predictor.predict([[0.5, 0.5, 0, 0], [-2, -2, 0, 0]]) if row and row[0]]
    finally:
        predictor.delete_endpoint()
    assert len(scores) == 2 and scores[0] > scores[1]

    transformer = model.transformer(
        instance_count=1, instance_type="local", strategy="MultiRecord", output_path=f"file://{tmp_path / 'transform'}"
    )
    # wait=True would read CloudWatch Logs (LocalSession only stubs training logs); local transform is synchronous.
    transformer.transform(
        f"file://{features.parent}", content_type="text/csv", split_type="Line", wait=False, logs=False
    )
    out = (tmp_path / "transform" / "batch.csv.out").read_text().split()
    assert len(out) == 2 and float(out[0]) > float(out[1])
