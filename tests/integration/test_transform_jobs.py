"""Batch transform through boto3 with the real XGBoost container (``python -m containers.xgboost serve``)."""

import gzip

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, unique
from tests.integration.helpers import error_code, training_request, wait_training, wait_transform

ROWS = [(i % 2, i / 40.0, (40 - i) / 40.0) for i in range(40)]


@pytest.fixture(scope="module")
def xgb_model(sm, s3, bucket):
    body = "".join(f"{label},{a:.3f},{b:.3f}\n" for label, a, b in ROWS).encode()
    s3.put_object(Bucket=bucket, Key="xgb/train/train.csv", Body=body)
    name = unique("xgb-train")
    request = training_request(
        name,
        bucket,
        AlgorithmSpecification={"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        HyperParameters={"num_round": "3", "objective": "binary:logistic", "max_depth": "2"},
    )
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/xgb/train"
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = unique("xgb-model")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"]},
    )
    return model


def _features(rows):
    return "".join(f"{a:.3f},{b:.3f}\n" for _, a, b in rows).encode()


def _transform(sm, model, bucket, prefix, **overrides):
    name = unique("tj")
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/tj-out/{name}", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and key in request:
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    sm.create_transform_job(**request)
    return name, wait_transform(sm, name)


def _read(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


@pytest.fixture(scope="module")
def inputs(s3, bucket):
    s3.put_object(Bucket=bucket, Key="tj-in/a/first.csv", Body=_features(ROWS[:25]))
    s3.put_object(Bucket=bucket, Key="tj-in/b/second.csv", Body=_features(ROWS[25:]))
    return "tj-in"


def test_multi_and_single_record_give_the_same_ordered_outputs_per_file(sm, s3, bucket, xgb_model, inputs):
    outputs = {}
    for strategy in ("MultiRecord", "SingleRecord"):
        name, described = _transform(sm, xgb_model, bucket, inputs, BatchStrategy=strategy, MaxPayloadInMB=1)
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        first = _read(s3, bucket, f"tj-out/{name}/a/first.csv.out").splitlines()
        second = _read(s3, bucket, f"tj-out/{name}/b/second.csv.out").splitlines()
        assert (len(first), len(second)) == (25, 15)
        outputs[strategy] = first + second
    assert outputs["MultiRecord"] == outputs["SingleRecord"]
    scores = [float(v) for v in outputs["MultiRecord"]]
    assert scores[0] < 0.5 < scores[-1] or scores[0] > 0.5 > scores[-1] or len(set(scores)) > 1


def test_describe_and_list_report_effective_settings(sm, bucket, xgb_model, inputs):
    name, described = _transform(sm, xgb_model, bucket, inputs)
    assert described["BatchStrategy"] == "MultiRecord"  # from the container's /execution-parameters
    assert described["MaxConcurrentTransforms"] >= 1
    assert described["MaxPayloadInMB"] >= 1
    assert described["TransformStartTime"] <= described["TransformEndTime"]
    assert "FailureReason" not in described and "DataProcessing" not in described
    listed = sm.list_transform_jobs(NameContains=name, StatusEquals="Completed")["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == [name]


def test_data_processing_filters_and_joins_csv(sm, s3, bucket, xgb_model):
    rows = "".join(f"id{i},{a:.3f},{b:.3f}\n" for i, (_, a, b) in enumerate(ROWS[:6])).encode()
    s3.put_object(Bucket=bucket, Key="tj-join/rows.csv", Body=rows)
    name, described = _transform(
        sm,
        xgb_model,
        bucket,
        "tj-join",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    )
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    lines = _read(s3, bucket, f"tj-out/{name}/rows.csv.out").splitlines()
    assert [line.split(",")[0] for line in lines] == [f"id{i}" for i in range(6)]
    assert all(0.0 <= float(line.split(",")[1]) <= 1.0 for line in lines)


def test_gzip_input_and_relative_output_for_a_single_object(sm, s3, bucket, xgb_model):
    s3.put_object(Bucket=bucket, Key="tj-gz/data.csv.gz", Body=gzip.compress(_features(ROWS[:5])))
    name, described = _transform(sm, xgb_model, bucket, "tj-gz/data.csv.gz", TransformInput={"CompressionType": "Gzip"})
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert len(_read(s3, bucket, f"tj-out/{name}/data.csv.gz.out").splitlines()) == 5


def test_a_record_over_max_payload_fails_the_job_and_keeps_the_other_outputs(sm, s3, bucket, xgb_model, logs):
    s3.put_object(Bucket=bucket, Key="tj-big/1-good.csv", Body=_features(ROWS[:3]))
    s3.put_object(Bucket=bucket, Key="tj-big/2-bad.csv", Body=b"0.1," * (300 * 1024) + b"0.2\n")
    name, described = _transform(sm, xgb_model, bucket, "tj-big", MaxPayloadInMB=1)
    assert described["TransformJobStatus"] == "Failed"
    assert "2-bad.csv" in described["FailureReason"] and "larger than 1MB" in described["FailureReason"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"tj-out/{name}/")["Contents"]]
    assert keys == [f"tj-out/{name}/1-good.csv.out"]
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs", logStreamNamePrefix=f"{name}/")
    assert any(s["logStreamName"].endswith("/data-log") for s in streams["logStreams"])


def test_transform_job_errors(sm, bucket, xgb_model, inputs):
    base = {
        "ModelName": xgb_model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/x"}}},
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/o"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(TransformJobName=unique("tj"), **{**base, "ModelName": "no-such-model"})
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(TransformJobName=unique("tj"), MaxPayloadInMB=50, MaxConcurrentTransforms=4, **base)
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(
            TransformJobName=unique("tj"), DataProcessing={"InputFilter": "$[1:]"}, **base
        )  # CSV needs SplitType Line and AssembleWith Line; here ContentType is not even set
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.describe_transform_job(TransformJobName="no-such-transform")
    assert error_code(raised) == "ValidationException"
    name, described = _transform(sm, xgb_model, bucket, inputs)
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(TransformJobName=name, **base)
    assert error_code(raised) == "ResourceInUse"
    with pytest.raises(ClientError) as raised:
        sm.stop_transform_job(TransformJobName=name)
    assert error_code(raised) == "ValidationException"
    _, described = _transform(sm, xgb_model, bucket, "tj-nothing-here")
    assert described["TransformJobStatus"] == "Failed" and "No S3 objects" in described["FailureReason"]


@pytest.mark.expensive
def test_sdk_v2_transformer(sdk_env, s3, bucket, xgb_model, inputs):
    from sagemaker.transformer import Transformer

    session, _ = sdk_env
    output = f"s3://{bucket}/tj-sdk/{unique('out')}"
    transformer = Transformer(
        model_name=xgb_model,
        instance_count=1,
        instance_type="ml.m5.large",
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path=output,
        sagemaker_session=session,
    )
    transformer.transform(f"s3://{bucket}/{inputs}", content_type="text/csv", split_type="Line", logs=False)
    assert (
        transformer.sagemaker_session.describe_transform_job(transformer.latest_transform_job.name)[
            "TransformJobStatus"
        ]
        == "Completed"
    )
    key = output.removeprefix(f"s3://{bucket}/") + "/a/first.csv.out"
    assert len(_read(s3, bucket, key).splitlines()) == 25
