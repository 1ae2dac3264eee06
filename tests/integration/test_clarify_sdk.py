"""SDK v2 ``SageMakerClarifyProcessor`` against the stack, unchanged: bias (pre/post) and SHAP on German credit."""

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, unique

DATA = Path(__file__).resolve().parents[2] / "data" / "german_credit.csv"
ROWS = 200


def _numeric(frame):
    """Label first, ``sex`` as 0/1 (female = 1), categoricals as codes: every column numeric for the model."""
    out = frame.copy()
    out["sex"] = (out["sex"] == "female").astype(int)
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype("category").cat.codes
    return out


@pytest.fixture(scope="module")
def credit(s3, bucket):
    frame = _numeric(pd.read_csv(DATA).head(ROWS))
    key = "clarify/credit/data.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=frame.to_csv(index=False).encode())
    return frame, f"s3://{bucket}/{key}"


@pytest.fixture(scope="module")
def model_name(sm, s3, bucket, credit, tmp_path_factory):
    import xgboost

    frame, _ = credit
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "seed": 0},
        xgboost.DMatrix(frame.drop(columns=["risk"]).values, label=frame["risk"].values),
        num_boost_round=10,
    )
    path = tmp_path_factory.mktemp("model") / "xgboost-model"
    booster.save_model(str(path))
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(path, arcname="xgboost-model")
    s3.put_object(Bucket=bucket, Key="clarify/model/model.tar.gz", Body=archive.getvalue())
    name = unique("clarify-model")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": f"s3://{bucket}/clarify/model/model.tar.gz"},
    )
    return name


def _processor(session):
    from sagemaker import clarify

    return clarify.SageMakerClarifyProcessor(
        role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session
    )


def _data_config(credit, output):
    from sagemaker import clarify

    frame, uri = credit
    return clarify.DataConfig(
        s3_data_input_path=uri,
        s3_output_path=output,
        label="risk",
        headers=list(frame.columns),
        dataset_type="text/csv",
    )


def _bias_config():
    from sagemaker import clarify

    return clarify.BiasConfig(
        label_values_or_threshold=[1], facet_name=["sex", "age"], facet_values_or_threshold=[[1], [40]]
    )


def _analysis(s3, output):
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    keys = {o["Key"].rsplit("/", 1)[-1] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
    assert {"analysis.json", "report.html"} <= keys
    return json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/analysis.json")["Body"].read())


def _metrics(block, facet):
    (entry,) = block["facets"][facet]
    return {m["name"]: m["value"] for m in entry["metrics"]}


def test_pre_training_bias_on_german_credit(sdk_env, s3, credit):
    session, default_bucket = sdk_env
    output = f"s3://{default_bucket}/{unique('clarify-pre')}"
    _processor(session).run_pre_training_bias(
        _data_config(credit, output), _bias_config(), methods=["CI", "DPL", "KL"], wait=True, logs=False
    )
    block = _analysis(s3, output)["pre_training_bias_metrics"]
    frame, _ = credit
    female = frame["sex"] == 1
    expected_ci = (int((~female).sum()) - int(female.sum())) / len(frame)
    assert _metrics(block, "sex")["CI"] == pytest.approx(expected_ci)
    assert block["facets"]["age"][0]["value_or_threshold"].startswith("(40")
    assert set(_metrics(block, "age")) == {"CI", "DPL", "KL"}


def test_post_training_bias_with_a_shadow_endpoint(sdk_env, sm, s3, credit, model_name):
    from sagemaker import clarify

    session, default_bucket = sdk_env
    output = f"s3://{default_bucket}/{unique('clarify-post')}"
    before = {e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]}
    _processor(session).run_post_training_bias(
        _data_config(credit, output),
        _bias_config(),
        clarify.ModelConfig(
            model_name=model_name, instance_type="ml.m5.large", instance_count=1, accept_type="text/csv"
        ),
        clarify.ModelPredictedLabelConfig(probability_threshold=0.5),
        methods=["DPPL", "DI", "AD"],
        wait=True,
        logs=False,
    )
    metrics = _metrics(_analysis(s3, output)["post_training_bias_metrics"], "sex")
    assert set(metrics) == {"DPPL", "DI", "AD"}
    after = {e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]}
    assert not {e for e in after - before if e.startswith("sagemaker-clarify")}  # the shadow endpoint is gone


def test_explainability_with_kernel_shap(sdk_env, s3, credit, model_name):
    from sagemaker import clarify

    session, default_bucket = sdk_env
    frame, _ = credit
    output = f"s3://{default_bucket}/{unique('clarify-shap')}"
    features = frame.drop(columns=["risk"])
    shap = clarify.SHAPConfig(
        baseline=[features.median().round().astype(int).tolist()], num_samples=64, agg_method="mean_abs", seed=0
    )
    _processor(session).run_explainability(
        _data_config(credit, output),
        clarify.ModelConfig(
            model_name=model_name, instance_type="ml.m5.large", instance_count=1, accept_type="text/csv"
        ),
        shap,
        wait=True,
        logs=False,
    )
    explained = _analysis(s3, output)["explanations"]["kernel_shap"]["label0"]
    assert set(explained["global_shap_values"]) == set(features.columns)
    assert all(v >= 0 for v in explained["global_shap_values"].values())
    assert 0.0 <= explained["expected_value"] <= 1.0
