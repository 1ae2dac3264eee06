"""Training jobs run for real through the runtime (fake test image)."""

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import unique
from tests.integration.helpers import training_request, wait_status, wait_training


def _model_json(s3, uri):
    bucket, key = uri[len("s3://") :].split("/", 1)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return json.loads(tar.extractfile("model.json").read())


def test_training_job_completes_with_metrics_artifacts_and_logs(sm, s3, logs, bucket):
    name = unique("train")
    request = training_request(name, bucket)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "validation:rmse", "Regex": ".*\\[[0-9]+\\].*#011validation-rmse:(\\S+)"},
        {"Name": "train:rmse", "Regex": "train-rmse:([0-9.]+)"},
        {"Name": "custom:loss", "Regex": "loss=(.*?);"},
    ]
    sm.create_training_job(**request)
    described = wait_training(sm, name)

    assert described["TrainingJobStatus"] == "Completed"
    assert described["OutputDataConfig"]["KmsKeyId"] == ""  # as AWS answers; Estimator.attach reads it
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert metrics == {"validation:rmse": pytest.approx(0.667), "train:rmse": pytest.approx(0.333), "custom:loss": 0.25}
    artifacts = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifacts == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    model = _model_json(s3, artifacts)
    assert model["marker"] == name
    assert sorted(model["files"]) == ["train/part-1.csv", "train/part-2.csv"]
    s3.head_object(Bucket=bucket, Key=f"output/{name}/output/output.tar.gz")
    assert "TrainingStartTime" in described and "TrainingEndTime" in described

    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/")
    [stream] = streams["logStreams"]
    assert stream["logStreamName"].startswith(f"{name}/algo-1-")
    events = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    assert any("fake training" in e["message"] for e in events)

    listed = sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert [j["TrainingJobStatus"] for j in listed] == ["Completed"]
    assert sm.list_training_jobs(NameContains=name, StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_failed_container_fails_the_job_with_its_reason_and_keeps_logs(sm, s3, logs, bucket):
    name = unique("fail")
    sm.create_training_job(**training_request(name, bucket, HyperParameters={"fail": "bad hyperparameter"}))
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: bad hyperparameter"
    assert "ModelArtifacts" not in described
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"output/{name}/")
    assert listing.get("KeyCount", 0) == 0
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/")
    assert len(streams["logStreams"]) == 1


def test_unknown_image_fails_with_a_reason_naming_the_image(sm, bucket):
    name = unique("img")
    request = training_request(name, bucket)
    request["AlgorithmSpecification"]["TrainingImage"] = "999999999999.dkr.ecr.us-east-1.amazonaws.com/mystery:1"
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Failed"
    assert "mystery:1" in described["FailureReason"]


def test_stop_training_job_really_stops(sm, bucket):
    name = unique("stop")
    sm.create_training_job(**training_request(name, bucket, HyperParameters={"sleep": "60"}))
    assert wait_status(sm, name, "Training")
    sm.stop_training_job(TrainingJobName=name)
    described = wait_training(sm, name, timeout=60)
    assert described["TrainingJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as raised:
        sm.stop_training_job(TrainingJobName=name)
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_max_runtime_is_enforced(sm, bucket):
    name = unique("maxrt")
    request = training_request(name, bucket, HyperParameters={"sleep": "60"})
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 1}
    sm.create_training_job(**request)
    described = wait_training(sm, name, timeout=60)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_sharded_channels_manifest_gzip_and_checkpoints(sm, s3, bucket):
    import gzip

    s3.put_object(Bucket=bucket, Key="gz/a.csv.gz", Body=gzip.compress(b"1,2\n"))
    s3.put_object(
        Bucket=bucket,
        Key="manifest/m.json",
        Body=json.dumps([{"prefix": f"s3://{bucket}/data/"}, "train/part-1.csv", "validation/v.csv"]),
    )
    s3.put_object(Bucket=bucket, Key="ckpt/old.txt", Body=b"epoch=1")
    name = unique("channels")
    channels = [
        {
            "ChannelName": "sharded",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{bucket}/data/train/",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        },
        {
            "ChannelName": "manifest",
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/manifest/m.json"}},
        },
        {
            "ChannelName": "zipped",
            "CompressionType": "Gzip",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/gz/"}},
        },
    ]
    request = training_request(
        name, bucket, InputDataConfig=channels, CheckpointConfig={"S3Uri": f"s3://{bucket}/ckpt/"}
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    sm.create_training_job(**request)
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    files = _model_json(s3, described["ModelArtifacts"]["S3ModelArtifacts"])["files"]
    assert "manifest/train/part-1.csv" in files and "manifest/validation/v.csv" in files
    assert "zipped/a.csv" in files
    assert len([f for f in files if f.startswith("sharded/")]) == 1  # one of two objects per host
    s3.head_object(Bucket=bucket, Key="ckpt/ckpt.txt")


def test_keys_escaping_the_channel_dir_are_rejected(sm, s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="evil/m.json",
        Body=json.dumps([{"prefix": f"s3://{bucket}/data/"}, "../../../../escape.txt"]),
    )
    name = unique("escape")
    channels = [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": f"s3://{bucket}/evil/m.json"}},
        }
    ]
    sm.create_training_job(**training_request(name, bucket, InputDataConfig=channels))
    described = wait_training(sm, name)
    assert described["TrainingJobStatus"] == "Failed"
    assert "unsafe key" in described["FailureReason"]


def test_xgboost_image_describe_carries_builtin_metric_definitions(sm, bucket):
    name = unique("xgbmeta")
    request = training_request(name, bucket)
    request["AlgorithmSpecification"]["TrainingImage"] = (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    request.pop("InputDataConfig")
    request["HyperParameters"] = {"num_round": "1", "objective": "reg:squarederror"}
    sm.create_training_job(**request)
    definitions = sm.describe_training_job(TrainingJobName=name)["AlgorithmSpecification"]["MetricDefinitions"]
    names = {d["Name"] for d in definitions}
    assert {"validation:auc", "train:rmse"} <= names
    wait_training(sm, name)
