"""Framework script mode through the SageMaker SDK v2 (docs/containers.md, "Framework containers"): the
scikit-learn, XGBoost (framework mode) and PyTorch estimators fit, deploy, predict and batch-transform against the
stack, with the answers checked against the same model applied in-process; and the bad inputs of issue 25."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.integration.conftest import ROLE, unique

INSTANCE = "ml.m5.large"
SKLEARN_VERSION = "1.2-1"

SKLEARN_TRAIN = textwrap.dedent(
    """
    import argparse, json, os
    import joblib
    import numpy as np
    from sklearn.linear_model import Ridge


    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--alpha", type=float, default=1.0)
        parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
        parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
        args = parser.parse_args()
        data = np.loadtxt(os.path.join(args.train, "train.csv"), delimiter=",")
        model = Ridge(alpha=args.alpha).fit(data[:, 1:], data[:, 0])
        joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
        facts = {"hps": json.loads(os.environ["SM_HPS"]), "hosts": json.loads(os.environ["SM_HOSTS"]),
                 "num_cpus": int(os.environ["SM_NUM_CPUS"]), "rows": len(data)}
        os.makedirs(os.environ["SM_OUTPUT_DATA_DIR"], exist_ok=True)
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "facts.json"), "w") as out:
            json.dump(facts, out)
        print("trained on", len(data), "rows")
    """
)


def rows(count: int = 40, seed: int = 7) -> np.ndarray:
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(count, 3))
    target = features @ np.array([2.0, -1.0, 0.5]) + 3.0
    return np.column_stack([target, features])


def write_source(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def csv_text(matrix: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in matrix)


def upload_train(bucket: str, prefix: str, matrix: np.ndarray) -> str:
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/train/train.csv", Body=csv_text(matrix).encode())
    return f"s3://{bucket}/{prefix}/train"


def read_object(uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def output_file(model_data: str, name: str) -> bytes:
    """A file of a training job's ``output.tar.gz`` (what the script wrote to SM_OUTPUT_DATA_DIR)."""
    with tarfile.open(fileobj=io.BytesIO(read_object(model_data.rsplit("/", 1)[0] + "/output.tar.gz"))) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def failure_reason(job_name: str) -> str:
    return str(boto3.client("sagemaker").describe_training_job(TrainingJobName=job_name).get("FailureReason", ""))


@pytest.fixture
def sklearn_estimator(sdk_env, tmp_path):
    from sagemaker.sklearn import SKLearn

    session, _ = sdk_env

    def build(files: dict[str, str], **kwargs):
        source = write_source(tmp_path / unique("src"), files)
        return SKLearn(
            entry_point="train.py",
            source_dir=str(source),
            framework_version=SKLEARN_VERSION,
            instance_type=INSTANCE,
            role=ROLE,
            sagemaker_session=session,
            **kwargs,
        )

    return build


@pytest.mark.expensive
def test_sklearn_fit_deploy_predict_and_batch_transform(sdk_env, sklearn_estimator, tmp_path):
    import joblib
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.serializers import CSVSerializer
    from sklearn.linear_model import Ridge

    _, bucket = sdk_env
    data = rows()
    train = upload_train(bucket, unique("sk"), data)
    estimator = sklearn_estimator({"train.py": SKLEARN_TRAIN}, hyperparameters={"alpha": 0.25})
    estimator.fit({"train": train}, job_name=unique("sk-train"), logs=False)

    facts = json.loads(output_file(estimator.model_data, "facts.json"))
    assert facts == {"hps": {"alpha": 0.25}, "hosts": ["algo-1"], "num_cpus": facts["num_cpus"], "rows": 40}
    expected_model = Ridge(alpha=0.25).fit(data[:, 1:], data[:, 0])
    with tarfile.open(fileobj=io.BytesIO(read_object(estimator.model_data))) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    trained = joblib.load(tmp_path / "model" / "model.joblib")
    np.testing.assert_allclose(trained.coef_, expected_model.coef_)

    queries = data[:5, 1:]
    expected = expected_model.predict(queries)
    predictor = estimator.deploy(1, INSTANCE, endpoint_name=unique("sk-ep"))
    try:
        # The SDK's scikit-learn predictor: NPY in, NPY out.
        np.testing.assert_allclose(predictor.predict(queries), expected, rtol=1e-6)
        predictor.serializer, predictor.deserializer = CSVSerializer(), CSVDeserializer()
        answer = predictor.predict(queries)
        np.testing.assert_allclose(np.array(answer, dtype=float).ravel(), expected, rtol=1e-5)
        runtime = boto3.client("sagemaker-runtime")
        response = runtime.invoke_endpoint(
            EndpointName=predictor.endpoint_name, ContentType="application/json", Body=json.dumps(queries.tolist())
        )
        assert response["ContentType"] == "application/json"
        np.testing.assert_allclose(json.loads(response["Body"].read()), expected, rtol=1e-5)
        with pytest.raises(ClientError) as info:  # the default input_fn reads JSON, CSV and NPY only
            runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="text/libsvm", Body=b"1 1:2")
        assert info.value.response["OriginalStatusCode"] == 415
        assert "text/libsvm is not supported" in info.value.response["Error"]["Message"]
    finally:
        predictor.delete_endpoint()

    batch_input = f"s3://{bucket}/{unique('sk-batch')}"
    key = batch_input.removeprefix(f"s3://{bucket}/") + "/rows.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=csv_text(data[:, 1:]).encode())
    transformer = estimator.transformer(1, INSTANCE, accept="text/csv", output_path=f"{batch_input}-out")
    transformer.transform(batch_input, content_type="text/csv", split_type="Line", job_name=unique("sk-tr"))
    transformer.wait(logs=False)
    batch = np.loadtxt(io.StringIO(read_object(f"{batch_input}-out/rows.csv.out").decode()))
    np.testing.assert_allclose(batch, expected_model.predict(data[:, 1:]), rtol=1e-5)


RAISING_TRAIN = textwrap.dedent(
    """
    def check(alpha):
        raise ValueError(f"alpha {alpha} is not allowed")

    check(0.5)
    """
)


@pytest.mark.expensive
def test_a_raising_entry_point_fails_the_job_with_its_traceback(sdk_env, sklearn_estimator):
    from sagemaker.exceptions import UnexpectedStatusException

    _, bucket = sdk_env
    estimator = sklearn_estimator({"train.py": RAISING_TRAIN})
    name = unique("sk-raise")
    with pytest.raises(UnexpectedStatusException):
        estimator.fit({"train": upload_train(bucket, unique("sk"), rows(4))}, job_name=name, logs=False)
    reason = failure_reason(name)
    assert reason.startswith("ExecuteUserScriptError:\nExitCode 1\nErrorMessage ")
    assert "ValueError: alpha 0.5 is not allowed" in reason
    logs = boto3.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name)
    text = "\n".join(
        event["message"]
        for stream in streams["logStreams"]
        for event in logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"]
        )["events"]
    )
    assert "Traceback (most recent call last):" in text and "line 3, in check" in text


@pytest.mark.expensive
def test_missing_entry_point_and_uninstallable_requirement(sdk_env, sklearn_estimator, sm):
    from sagemaker.exceptions import UnexpectedStatusException

    _, bucket = sdk_env
    train = upload_train(bucket, unique("sk"), rows(4))
    estimator = sklearn_estimator(
        {"train.py": "print('never runs')", "requirements.txt": "sagestack-absent-pkg==9.9\n"}
    )
    name = unique("sk-req")
    with pytest.raises(UnexpectedStatusException):
        estimator.fit({"train": train}, job_name=name, logs=False)
    assert failure_reason(name).startswith(
        "InstallRequirementsError: could not install sagestack-absent-pkg==9.9 from requirements.txt"
    )

    # The SDK refuses a missing entry_point locally; a job created by hand names the file the bundle lacks.
    good = sklearn_estimator({"train.py": SKLEARN_TRAIN})
    good.fit({"train": train}, job_name=unique("sk-ok"), logs=False)
    spec = sm.describe_training_job(TrainingJobName=good.latest_training_job.name)
    missing = unique("sk-missing")
    sm.create_training_job(
        TrainingJobName=missing,
        AlgorithmSpecification={
            "TrainingImage": spec["AlgorithmSpecification"]["TrainingImage"],
            "TrainingInputMode": "File",
        },
        RoleArn=ROLE,
        HyperParameters={**spec["HyperParameters"], "sagemaker_program": '"nope.py"'},
        InputDataConfig=spec["InputDataConfig"],
        OutputDataConfig=spec["OutputDataConfig"],
        ResourceConfig=spec["ResourceConfig"],
        StoppingCondition=spec["StoppingCondition"],
    )
    with pytest.raises(WaiterError):  # the job fails
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=missing, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
        )
    assert failure_reason(missing).startswith("ClientError: Entry point nope.py not found in ")


@pytest.mark.expensive
def test_a_sklearn_model_without_model_fn_fails_its_endpoint(sdk_env, tmp_path):
    from sagemaker.sklearn import SKLearnModel

    session, bucket = sdk_env
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"not a model"
        info = tarfile.TarInfo("model.joblib")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    key = f"{unique('sk-nofn')}/model.tar.gz"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=archive.getvalue())
    source = write_source(tmp_path / "src", {"serve.py": "def predict_fn(data, model):\n    return data\n"})
    model = SKLearnModel(
        model_data=f"s3://{bucket}/{key}",
        role=ROLE,
        entry_point="serve.py",
        source_dir=str(source),
        framework_version=SKLEARN_VERSION,
        sagemaker_session=session,
    )
    name = unique("sk-nofn-ep")
    with pytest.raises(Exception, match="Failed"):
        model.deploy(1, INSTANCE, endpoint_name=name)
    described = boto3.client("sagemaker").describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "Failed"
    assert "ping health check" in described["FailureReason"]
    assert "Please provide a model_fn implementation" in described["FailureReason"]


TORCH_TRAIN = textwrap.dedent(
    """
    import argparse, json, os
    import torch
    import torch.distributed as dist

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    model = torch.nn.parallel.DistributedDataParallel(model)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(rank)
    features = torch.randn(64, 3, generator=generator)
    target = features @ torch.tensor([[2.0], [-1.0], [0.5]]) + 3.0
    for _ in range(args.epochs):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(model(features), target).backward()
        optimiser.step()
    total = torch.tensor([float(rank + 1)])
    dist.all_reduce(total)
    if rank == 0:
        scripted = torch.jit.script(model.module)
        scripted.save(os.path.join(os.environ["SM_MODEL_DIR"], "model.pt"))
        facts = {"world": world, "sum": total.item(), "hosts": json.loads(os.environ["SM_HOSTS"]),
                 "master": os.environ["MASTER_ADDR"]}
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "facts.json"), "w") as out:
            json.dump(facts, out)
    dist.destroy_process_group()
    """
)

# Only output_fn: model_fn (model.pt as TorchScript), input_fn and predict_fn are the toolkit's defaults.
TORCH_INFERENCE = textwrap.dedent(
    """
    import json

    def output_fn(prediction, accept):
        return json.dumps({"scores": prediction.reshape(-1).tolist()}), "application/json"
    """
)


@pytest.mark.expensive
def test_pytorch_torchrun_across_two_hosts_then_inference_py_serving(sdk_env, tmp_path):
    import torch
    from sagemaker import image_uris
    from sagemaker.pytorch import PyTorch, PyTorchModel

    session, bucket = sdk_env
    source = write_source(tmp_path / "src", {"train.py": TORCH_TRAIN})
    # The SDK allows torch_distributed only on GPU/Trainium types unless the image is given: the CPU image is.
    image = image_uris.retrieve(
        "pytorch", "us-east-1", "2.1", py_version="py310", instance_type=INSTANCE, image_scope="training"
    )
    estimator = PyTorch(
        entry_point="train.py",
        source_dir=str(source),
        image_uri=image,
        role=ROLE,
        sagemaker_session=session,
        instance_count=2,
        instance_type=INSTANCE,
        hyperparameters={"epochs": 3},
        distribution={"torch_distributed": {"enabled": True}},
    )
    estimator.fit({"train": upload_train(bucket, unique("pt"), rows(4))}, job_name=unique("pt-train"), logs=False)

    with tarfile.open(fileobj=io.BytesIO(read_object(estimator.model_data))) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    facts = json.loads((tmp_path / "model" / "facts.json").read_text())
    assert facts["world"] == 2 and facts["sum"] == 3.0 and facts["hosts"] == ["algo-1", "algo-2"]
    local = torch.jit.load(str(tmp_path / "model" / "model.pt"))
    queries = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]], dtype=np.float32)
    expected = local(torch.from_numpy(queries)).detach().numpy().reshape(-1)

    code = write_source(tmp_path / "serve-src", {"inference.py": TORCH_INFERENCE})
    model = PyTorchModel(
        model_data=estimator.model_data,
        role=ROLE,
        entry_point="inference.py",
        source_dir=str(code),
        framework_version="2.1",
        py_version="py310",
        sagemaker_session=session,
    )
    predictor = model.deploy(1, INSTANCE, endpoint_name=unique("pt-ep"))
    try:
        runtime = boto3.client("sagemaker-runtime")
        response = runtime.invoke_endpoint(
            EndpointName=predictor.endpoint_name, ContentType="application/json", Body=json.dumps(queries.tolist())
        )
        np.testing.assert_allclose(json.loads(response["Body"].read())["scores"], expected, rtol=1e-6)
        with pytest.raises(ClientError) as info:  # PyTorch's default input_fn answers 415 for other types
            runtime.invoke_endpoint(EndpointName=predictor.endpoint_name, ContentType="image/png", Body=b"\x89PNG")
        assert info.value.response["OriginalStatusCode"] == 415
    finally:
        predictor.delete_endpoint()
    repacked = tarfile.open(fileobj=io.BytesIO(read_object(model.repacked_model_data or model.model_data)))
    assert "code/inference.py" in repacked.getnames()  # the layout the SDK repacks the model into


XGBOOST_TRAIN = textwrap.dedent(
    """
    import argparse, os
    import numpy as np
    import xgboost as xgb


    def model_fn(model_dir):
        booster = xgb.Booster()
        booster.load_model(os.path.join(model_dir, "xgboost-model.json"))
        return booster


    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--num_round", type=int, default=3)
        parser.add_argument("--max_depth", type=int, default=2)
        args = parser.parse_args()
        data = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv"), delimiter=",")
        train = xgb.DMatrix(data[:, 1:], label=data[:, 0])
        booster = xgb.train({"max_depth": args.max_depth, "seed": 1}, train, num_boost_round=args.num_round)
        booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model.json"))
    """
)


@pytest.mark.expensive
def test_xgboost_framework_mode_fit_deploy_predict_and_batch_transform(sdk_env, tmp_path):
    import xgboost as xgb
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.serializers import CSVSerializer
    from sagemaker.xgboost import XGBoost

    session, bucket = sdk_env
    data = rows()
    source = write_source(tmp_path / "src", {"train.py": XGBOOST_TRAIN})
    estimator = XGBoost(
        entry_point="train.py",
        source_dir=str(source),
        framework_version="1.7-1",
        role=ROLE,
        instance_count=1,
        instance_type=INSTANCE,
        sagemaker_session=session,
        hyperparameters={"num_round": 4, "max_depth": 3},
    )
    estimator.fit({"train": upload_train(bucket, unique("xgb"), data)}, job_name=unique("xgb-fw"), logs=False)

    with tarfile.open(fileobj=io.BytesIO(read_object(estimator.model_data))) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    booster = xgb.Booster()
    booster.load_model(str(tmp_path / "model" / "xgboost-model.json"))
    assert booster.num_boosted_rounds() == 4
    expected = booster.predict(xgb.DMatrix(data[:, 1:]))

    predictor = estimator.deploy(
        1, INSTANCE, serializer=CSVSerializer(), deserializer=CSVDeserializer(), endpoint_name=unique("xgb-fw-ep")
    )
    try:
        answer = predictor.predict(data[:3, 1:])
        np.testing.assert_allclose(np.array(answer, dtype=float).ravel(), expected[:3], rtol=1e-6)
        with pytest.raises(ClientError) as info:  # the default input_fn reads CSV, LIBSVM and recordIO-protobuf
            boto3.client("sagemaker-runtime").invoke_endpoint(
                EndpointName=predictor.endpoint_name, ContentType="application/x-npy", Body=b"\x93NUMPY"
            )
        assert info.value.response["OriginalStatusCode"] == 415
    finally:
        predictor.delete_endpoint()

    batch_input = f"s3://{bucket}/{unique('xgb-batch')}"
    key = batch_input.removeprefix(f"s3://{bucket}/") + "/rows.csv"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=csv_text(data[:, 1:]).encode())
    transformer = estimator.transformer(1, INSTANCE, accept="text/csv", output_path=f"{batch_input}-out")
    transformer.transform(batch_input, content_type="text/csv", split_type="Line", job_name=unique("xgb-tr"))
    transformer.wait(logs=False)
    batch = np.loadtxt(io.StringIO(read_object(f"{batch_input}-out/rows.csv.out").decode()))
    np.testing.assert_allclose(batch, expected, rtol=1e-6)
