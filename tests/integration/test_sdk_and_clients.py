"""SageMaker SDK v2 and localstack-client against the stack, unchanged user code."""

import socket

import pytest

from infra.config import StackSettings
from tests.integration.conftest import FAKE_IMAGE, ROLE, unique


def _fit_deploy_predict(session, bucket, image_uri, hyperparameters, payload, capsys):
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput

    s3 = session.boto_session.client("s3")
    s3.put_object(Bucket=bucket, Key="sdk/train/train.csv", Body=b"1,0.9,0.1\n0,0.1,0.8\n1,0.8,0.3\n0,0.2,0.9\n")
    estimator = Estimator(
        image_uri=image_uri,
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters=hyperparameters,
        sagemaker_session=session,
        output_path=f"s3://{bucket}/sdk/output",
    )
    estimator.fit({"train": TrainingInput(f"s3://{bucket}/sdk/train", content_type="text/csv")}, logs=True)
    assert estimator.latest_training_job.describe()["TrainingJobStatus"] == "Completed"
    predictor = estimator.deploy(1, "ml.m5.large", endpoint_name=unique("sdk-ep"))
    try:
        from sagemaker.serializers import CSVSerializer

        predictor.serializer = CSVSerializer()
        return predictor.predict(payload)
    finally:
        predictor.delete_endpoint()


@pytest.mark.expensive
def test_sdk_v2_estimator_fit_streams_logs_then_deploy_and_predict(sdk_env, capsys):
    session, bucket = sdk_env
    answer = _fit_deploy_predict(session, bucket, FAKE_IMAGE, {"marker": "sdk"}, "0.5,0.3", capsys)
    assert b'"marker": "sdk"' in answer
    assert "fake training" in capsys.readouterr().out  # fit(logs=True) streamed the container's lines


@pytest.mark.expensive
def test_sdk_v2_builtin_xgboost(sdk_env, capsys):
    from sagemaker import image_uris

    session, bucket = sdk_env
    image = image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    answer = _fit_deploy_predict(
        session, bucket, image, {"num_round": "2", "objective": "binary:logistic"}, "0.9,0.1", capsys
    )
    assert 0.0 <= float(answer.decode().strip().split(",")[0]) <= 1.0


def _port_free(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_localstack_client_defaults_reach_the_stack_on_4566(tmp_path, monkeypatch):
    if not _port_free(4566):
        pytest.skip("port 4566 is in use (a stack from make up?); localstack-client defaults need it")
    from infra.control_plane.server import LocalStack

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LOCALSTACK_HOST", raising=False)
    stack = LocalStack(StackSettings(data_dir=tmp_path, port=4566))
    stack.start()
    try:
        import localstack_client.session

        session = localstack_client.session.Session()
        sm = session.client("sagemaker")
        name = unique("lsc")
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
        assert name in [m["ModelName"] for m in sm.list_models(NameContains=name)["Models"]]
        session.client("s3").create_bucket(Bucket="localstack-client-check")
    finally:
        stack.stop()
