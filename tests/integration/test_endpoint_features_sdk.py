"""Endpoint features through the SageMaker SDK v2 with the real containers (docs/deploy.md): ``PipelineModel`` (a
scikit-learn preprocessing script, then the built-in XGBoost) behind one endpoint and in batch transform,
``MultiDataModel`` on the built-in XGBoost and the scikit-learn framework container, ``AsyncPredictor`` and a
serverless deployment. Every prediction is checked against the same boosters applied in-process."""

from __future__ import annotations

import io
import tarfile
import textwrap
import threading
from pathlib import Path

import boto3
import numpy as np
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, SKLEARN_IMAGE, XGBOOST_IMAGE, unique

INSTANCE = "ml.m5.large"
RNG = np.random.default_rng(25)
FEATURES = np.round(RNG.random((40, 3)), 3)


def _booster(weights: tuple[float, float, float]) -> xgb.Booster:
    labels = FEATURES @ np.array(weights) + 1.0
    return xgb.train({"max_depth": 3, "eta": 0.5}, xgb.DMatrix(FEATURES, label=labels), num_boost_round=5)


BOOSTER_A = _booster((3.0, -2.0, 1.0))
BOOSTER_B = _booster((-1.0, 4.0, 0.5))


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _xgboost_archive(booster: xgb.Booster, tmp_path: Path) -> bytes:
    path = tmp_path / f"{unique('model')}.json"
    booster.save_model(str(path))
    return _archive({"xgboost-model": path.read_bytes()})


def _csv(rows: np.ndarray) -> str:
    return "\n".join(",".join(str(v) for v in row) for row in rows)


def _scores(answer: bytes | str) -> np.ndarray:
    text = answer.decode() if isinstance(answer, bytes) else answer
    return np.array([float(v) for v in text.replace("\n", ",").split(",") if v.strip()])


def _expected(booster: xgb.Booster, rows: np.ndarray) -> np.ndarray:
    return booster.predict(xgb.DMatrix(rows.astype(np.float32)))


def _put(bucket: str, key: str, body: bytes) -> str:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


# --- inference pipeline ----------------------------------------------------------------------------------------

PREPROCESS = textwrap.dedent(
    """
    import json, os
    import numpy as np


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "scale.json")) as f:
            return json.load(f)["scale"]


    def predict_fn(data, scale):
        return np.asarray(data, dtype=float) * scale
    """
)


def test_pipeline_model_serves_and_batch_transforms_through_both_containers(sdk_env, tmp_path):
    from sagemaker.model import Model
    from sagemaker.pipeline import PipelineModel
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn import SKLearnModel

    session, bucket = sdk_env
    prefix = unique("pipeline-sdk")
    source = tmp_path / "src"
    source.mkdir()
    (source / "preprocess.py").write_text(PREPROCESS)
    preprocess = SKLearnModel(
        model_data=_put(bucket, f"{prefix}/pre/model.tar.gz", _archive({"scale.json": b'{"scale": 2.0}'})),
        role=ROLE,
        entry_point="preprocess.py",
        source_dir=str(source),
        framework_version="1.2-1",
        env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"},  # what the examples set: CSV to the next container
        sagemaker_session=session,
    )
    scorer = Model(
        image_uri=XGBOOST_IMAGE,
        model_data=_put(bucket, f"{prefix}/xgb/model.tar.gz", _xgboost_archive(BOOSTER_A, tmp_path)),
        role=ROLE,
        sagemaker_session=session,
    )
    pipeline = PipelineModel(
        models=[preprocess, scorer], role=ROLE, sagemaker_session=session, name=unique("pm"), predictor_cls=Predictor
    )
    rows = FEATURES[:5]
    expected = _expected(BOOSTER_A, rows * 2.0)
    predictor = pipeline.deploy(1, INSTANCE, endpoint_name=unique("pm-ep"))
    try:
        predictor.serializer = CSVSerializer()
        np.testing.assert_allclose(_scores(predictor.predict(_csv(rows))), expected, rtol=1e-5)
    finally:
        predictor.delete_endpoint()

    _put(bucket, f"{prefix}/batch/in/rows.csv", _csv(rows).encode())
    transformer = pipeline.transformer(1, INSTANCE, output_path=f"s3://{bucket}/{prefix}/batch/out")
    transformer.transform(f"s3://{bucket}/{prefix}/batch/in", content_type="text/csv", split_type="Line")
    transformer.wait(logs=False)
    out = boto3.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/batch/out/rows.csv.out")["Body"].read()
    np.testing.assert_allclose(_scores(out), expected, rtol=1e-5)


# --- multi-model endpoints ---------------------------------------------------------------------------------------


def test_multi_data_model_on_the_builtin_xgboost_loads_each_target_model(stack, sdk_env, tmp_path):
    from sagemaker.multidatamodel import MultiDataModel
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    session, bucket = sdk_env
    prefix = unique("mme-xgb")
    _put(bucket, f"{prefix}/a.tar.gz", _xgboost_archive(BOOSTER_A, tmp_path))
    local_b = tmp_path / "b.tar.gz"
    local_b.write_bytes(_xgboost_archive(BOOSTER_B, tmp_path))
    multi = MultiDataModel(
        name=unique("mme"),
        model_data_prefix=f"s3://{bucket}/{prefix}/",
        image_uri=XGBOOST_IMAGE,
        role=ROLE,
        sagemaker_session=session,
        predictor_cls=Predictor,
    )
    multi.add_model(model_data_source=str(local_b), model_data_path="nested/b.tar.gz")
    assert sorted(multi.list_models()) == ["a.tar.gz", "nested/b.tar.gz"]
    predictor = multi.deploy(1, INSTANCE, endpoint_name=unique("mme-ep"), serializer=CSVSerializer())
    rows = FEATURES[:4]
    try:
        for target, booster in (("a.tar.gz", BOOSTER_A), ("nested/b.tar.gz", BOOSTER_B), ("a.tar.gz", BOOSTER_A)):
            answer = predictor.predict(_csv(rows), target_model=target)
            np.testing.assert_allclose(_scores(answer), _expected(booster, rows), rtol=1e-5)

        with pytest.raises(ClientError) as raised:
            predictor.predict(_csv(rows), target_model="missing.tar.gz")
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert "Failed to download model data" in raised.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as raised:
            predictor.predict(_csv(rows))
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert "missing a target model header" in raised.value.response["Error"]["Message"]

        _check_eviction(stack, predictor, bucket, prefix, tmp_path, rows)
    finally:
        predictor.delete_endpoint()


def _check_eviction(stack, predictor, bucket, prefix, tmp_path, rows):
    """Nine more models than the instance's capacity of 8: the least recently used are unloaded, then reloaded."""
    archive = _xgboost_archive(BOOSTER_B, tmp_path)
    for index in range(9):
        _put(bucket, f"{prefix}/copies/m{index}.tar.gz", archive)
        predictor.predict(_csv(rows), target_model=f"copies/m{index}.tar.gz")
    models = stack.backend().endpoints.store.find(predictor.endpoint_name).deployment.variants[0].instances[0].models
    loaded = models.loaded()
    assert len(loaded) == 8 and "copies/m0.tar.gz" not in loaded and "a.tar.gz" not in loaded
    np.testing.assert_allclose(
        _scores(predictor.predict(_csv(rows), target_model="a.tar.gz")), _expected(BOOSTER_A, rows), rtol=1e-5
    )
    assert "a.tar.gz" in models.loaded() and "copies/m1.tar.gz" not in models.loaded()


SKLEARN_INFERENCE = textwrap.dedent(
    """
    import json, os
    import numpy as np


    def model_fn(model_dir):
        with open(os.path.join(model_dir, "offset.json")) as f:
            return {"offset": json.load(f)["offset"], "tag": TAG}


    def predict_fn(data, model):
        return np.asarray(data, dtype=float).sum(axis=1) + model["offset"] + model["tag"]
    """
)


def test_multi_model_endpoint_on_the_scikit_learn_container_runs_each_models_script(sm, smr, sdk_env):
    _, bucket = sdk_env
    prefix = unique("mme-sk")
    for name, offset, tag in (("one", 10, 0.5), ("two", 100, 0.25)):
        script = f"TAG = {tag}\n" + SKLEARN_INFERENCE  # each model's own inference.py, with the same module name
        files = {"offset.json": f'{{"offset": {offset}}}'.encode(), "code/inference.py": script.encode()}
        _put(bucket, f"{prefix}/{name}.tar.gz", _archive(files))
    model = unique("mme-sk")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": SKLEARN_IMAGE, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/{prefix}/"},
    )
    config, endpoint = unique("mme-sk-cfg"), unique("mme-sk-ep")
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {"VariantName": "v", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": INSTANCE}
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})
    try:
        answers = {}
        for target in ("one.tar.gz", "two.tar.gz", "one.tar.gz"):
            response = smr.invoke_endpoint(
                EndpointName=endpoint, TargetModel=target, Body=b"1,2\n3,4", ContentType="text/csv", Accept="text/csv"
            )
            answers.setdefault(target, []).append(_scores(response["Body"].read()).tolist())
        assert answers == {"one.tar.gz": [[13.5, 17.5], [13.5, 17.5]], "two.tar.gz": [[103.25, 107.25]]}
        _put(bucket, f"{prefix}/broken.tar.gz", b"not a gzip tar")
        with pytest.raises(ClientError) as raised:
            smr.invoke_endpoint(EndpointName=endpoint, TargetModel="broken.tar.gz", Body=b"1,2", ContentType="text/csv")
        assert raised.value.response["Error"]["Code"] == "ValidationError"
        assert "cannot be used" in raised.value.response["Error"]["Message"]
    finally:
        sm.delete_endpoint(EndpointName=endpoint)


# --- asynchronous and serverless ------------------------------------------------------------------------------


def test_async_predictor_writes_the_result_to_s3(sdk_env, tmp_path):
    from sagemaker.async_inference import AsyncInferenceConfig, WaiterConfig
    from sagemaker.async_inference.async_inference_response import AsyncInferenceResponse
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer

    session, bucket = sdk_env
    prefix = unique("async-sdk")
    model = Model(
        image_uri=XGBOOST_IMAGE,
        model_data=_put(bucket, f"{prefix}/model.tar.gz", _xgboost_archive(BOOSTER_A, tmp_path)),
        role=ROLE,
        sagemaker_session=session,
        predictor_cls=Predictor,
    )
    config = AsyncInferenceConfig(output_path=f"s3://{bucket}/{prefix}/out", failure_path=f"s3://{bucket}/{prefix}/f")
    predictor = model.deploy(
        1, INSTANCE, endpoint_name=unique("async-ep"), async_inference_config=config, serializer=CSVSerializer()
    )
    rows = FEATURES[:6]
    try:
        response = predictor.predict_async(data=_csv(rows))
        assert isinstance(response, AsyncInferenceResponse)
        assert response.output_path.startswith(f"s3://{bucket}/{prefix}/out/")
        # get_result also starts a thread that polls the failure path with the same settings until they run out:
        # keep them short (15 s) and let it end while the stack still answers
        result = response.get_result(WaiterConfig(max_attempts=60, delay=0.25))
        for thread in threading.enumerate():
            if "check_failure_file" in thread.name:
                thread.join()
        inference_id = response.output_path.rsplit("/", 1)[1].removesuffix(".out")
        assert response.failure_path == f"s3://{bucket}/{prefix}/f/{inference_id}-error.out"
        np.testing.assert_allclose(_scores(result), _expected(BOOSTER_A, rows), rtol=1e-5)
    finally:
        predictor.delete_endpoint()


def test_serverless_deploy_through_the_sdk(sdk_env, tmp_path):
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer
    from sagemaker.serverless import ServerlessInferenceConfig

    session, bucket = sdk_env
    model = Model(
        image_uri=XGBOOST_IMAGE,
        model_data=_put(bucket, f"{unique('sls-sdk')}/model.tar.gz", _xgboost_archive(BOOSTER_B, tmp_path)),
        role=ROLE,
        sagemaker_session=session,
        predictor_cls=Predictor,
    )
    predictor = model.deploy(
        serverless_inference_config=ServerlessInferenceConfig(memory_size_in_mb=2048, max_concurrency=2),
        endpoint_name=unique("sls-ep"),
        serializer=CSVSerializer(),
    )
    rows = FEATURES[:3]
    try:
        np.testing.assert_allclose(_scores(predictor.predict(_csv(rows))), _expected(BOOSTER_B, rows), rtol=1e-5)
    finally:
        predictor.delete_endpoint()
