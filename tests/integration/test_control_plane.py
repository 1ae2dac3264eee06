"""Validation, error codes, pagination and the edge's routing, through boto3."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, unique
from tests.integration.helpers import training_request, wait_training


def _code(raised):
    return raised.value.response["Error"]["Code"]


def test_invalid_training_job_name_is_rejected_with_aws_wording(sm, bucket):
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**training_request("bad_name!", bucket))
    assert _code(raised) == "ValidationException"
    message = raised.value.response["Error"]["Message"]
    assert message.startswith("1 validation error detected: Value 'bad_name!' at 'trainingJobName'")
    assert "Member must satisfy regular expression pattern" in message


def test_out_of_range_and_enum_values_are_rejected(sm, bucket):
    request = training_request(unique("range"), bucket)
    request["ResourceConfig"] = {"InstanceType": "ml.not.a.type", "InstanceCount": 1, "VolumeSizeInGB": 1}
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**request)
    assert _code(raised) == "ValidationException"
    assert "enum value set" in raised.value.response["Error"]["Message"]


def test_missing_required_member_is_rejected_by_the_server(stack_url):
    request = urllib.request.Request(
        stack_url,
        data=json.dumps({"TrainingJobName": "x"}).encode(),
        headers={"X-Amz-Target": "SageMaker.CreateTrainingJob", "Content-Type": "application/x-amz-json-1.1"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    body = json.loads(raised.value.read())
    assert raised.value.code == 400
    assert body["__type"] == "ValidationException"


def test_unknown_and_unimplemented_operations_are_clear_errors(stack_url):
    for op, code in (("NoSuchThing", "UnknownOperationException"), ("CreateCluster", "UnknownOperationException")):
        request = urllib.request.Request(
            stack_url, data=b"{}", headers={"X-Amz-Target": f"SageMaker.{op}"}, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request)
        assert raised.value.code == 400
        assert json.loads(raised.value.read())["__type"] == code


def test_malformed_json_is_a_serialization_error(stack_url):
    request = urllib.request.Request(
        stack_url, data=b"{not json", headers={"X-Amz-Target": "SageMaker.ListModels"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    assert json.loads(raised.value.read())["__type"] == "SerializationException"


def test_duplicate_training_job_is_resource_in_use(sm, bucket):
    name = unique("dup")
    sm.create_training_job(**training_request(name, bucket))
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**training_request(name, bucket))
    assert _code(raised) == "ResourceInUse"
    wait_training(sm, name)


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("describe_training_job", {"TrainingJobName": "nope"}),
        ("stop_training_job", {"TrainingJobName": "nope"}),
        ("describe_model", {"ModelName": "nope"}),
        ("delete_model", {"ModelName": "nope"}),
        ("describe_endpoint_config", {"EndpointConfigName": "nope"}),
        ("describe_endpoint", {"EndpointName": "nope"}),
        ("delete_endpoint", {"EndpointName": "nope"}),
    ],
)
def test_unknown_resources_answer_validation_exception_like_aws(sm, call, kwargs):
    with pytest.raises(ClientError) as raised:
        getattr(sm, call)(**kwargs)
    assert _code(raised) == "ValidationException"


def test_duplicate_model_and_missing_model_in_config(sm):
    name = unique("model")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "sagestack-tests/fake:latest"})
    with pytest.raises(ClientError) as raised:
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
    assert _code(raised) == "ValidationException"
    assert "Cannot create already existing model" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        sm.create_endpoint_config(
            EndpointConfigName=unique("cfg"),
            ProductionVariants=[
                {"VariantName": "v", "ModelName": "missing", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
            ],
        )
    assert _code(raised) == "ValidationException"


def test_describe_model_omits_empty_structures_and_lists_paginate(sm):
    prefix = unique("page")
    for index in range(5):
        sm.create_model(ModelName=f"{prefix}-{index}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"})
    described = sm.describe_model(ModelName=f"{prefix}-0")
    assert "VpcConfig" not in described
    assert described["PrimaryContainer"] == {"Image": "img"}
    first = sm.list_models(NameContains=prefix, MaxResults=2, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in first["Models"]] == [f"{prefix}-0", f"{prefix}-1"]
    names = [m["ModelName"] for m in first["Models"]]
    token = first.get("NextToken")
    while token:
        page = sm.list_models(NameContains=prefix, MaxResults=2, SortBy="Name", SortOrder="Ascending", NextToken=token)
        names += [m["ModelName"] for m in page["Models"]]
        token = page.get("NextToken")
    assert names == [f"{prefix}-{i}" for i in range(5)]
    paginator = sm.get_paginator("list_models")
    everything = [m["ModelName"] for p in paginator.paginate(NameContains=prefix) for m in p["Models"]]
    assert sorted(everything) == names


def test_tags_round_trip(sm):
    name = unique("tagged")
    arn = sm.create_model(
        ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "img"}, Tags=[{"Key": "a", "Value": "1"}]
    )["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}])
    sm.delete_tags(ResourceArn=arn, TagKeys=["a"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_other_services_are_served_by_moto(stack_url, s3, logs):
    import boto3

    sts = boto3.client(
        "sts", endpoint_url=stack_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    assert sts.get_caller_identity()["Account"] == "123456789012"
    s3.create_bucket(Bucket="moto-routing-check")
    assert "moto-routing-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    logs.create_log_group(logGroupName="/sagestack/routing-check")
