"""Model registry: model package groups and versioned model packages through boto3."""

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import FAKE_IMAGE, unique
from tests.integration.helpers import error_code

INFERENCE = {
    "Containers": [{"Image": FAKE_IMAGE, "ModelDataUrl": "s3://sagestack-tests/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


def test_versioned_packages_approval_and_delete(sm):
    group = unique("grp")
    group_arn = sm.create_model_package_group(ModelPackageGroupName=group, ModelPackageGroupDescription="d")[
        "ModelPackageGroupArn"
    ]
    assert group_arn.endswith(f":model-package-group/{group}")
    described = sm.describe_model_package_group(ModelPackageGroupName=group)
    assert described["ModelPackageGroupStatus"] == "Completed" and described["ModelPackageGroupDescription"] == "d"
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/stats.json"}}}
    arns = [
        sm.create_model_package(ModelPackageGroupName=group, InferenceSpecification=INFERENCE, ModelMetrics=metrics)[
            "ModelPackageArn"
        ]
        for _ in range(2)
    ]
    assert [a.rsplit("/", 2)[-2:] for a in arns] == [[group, "1"], [group, "2"]]
    first = sm.describe_model_package(ModelPackageName=arns[0])
    assert first["ModelApprovalStatus"] == "PendingManualApproval"
    assert first["ModelPackageVersion"] == 1 and first["ModelMetrics"] == metrics
    assert first["InferenceSpecification"]["Containers"][0]["Image"] == FAKE_IMAGE
    sm.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved", ApprovalDescription="ok")
    second = sm.describe_model_package(ModelPackageName=arns[1])
    assert (second["ModelApprovalStatus"], second["ApprovalDescription"]) == ("Approved", "ok")
    approved = sm.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus="Approved")
    assert [p["ModelPackageArn"] for p in approved["ModelPackageSummaryList"]] == [arns[1]]
    ordered = sm.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending")
    assert [p["ModelPackageVersion"] for p in ordered["ModelPackageSummaryList"]] == [1, 2]
    with pytest.raises(ClientError) as raised:
        sm.delete_model_package_group(ModelPackageGroupName=group)
    assert error_code(raised) == "ConflictException"
    for arn in arns:
        sm.delete_model_package(ModelPackageName=arn)
    sm.delete_model_package_group(ModelPackageGroupName=group)
    with pytest.raises(ClientError) as raised:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    assert error_code(raised) == "ValidationException"


def test_group_listing_errors_and_unversioned_packages(sm):
    prefix = unique("lst")
    for suffix in ("b", "a"):
        sm.create_model_package_group(ModelPackageGroupName=f"{prefix}-{suffix}")
    listed = sm.list_model_package_groups(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    assert [g["ModelPackageGroupName"] for g in listed["ModelPackageGroupSummaryList"]] == [
        f"{prefix}-a",
        f"{prefix}-b",
    ]
    with pytest.raises(ClientError) as raised:
        sm.create_model_package(ModelPackageGroupName="no-such-group", InferenceSpecification=INFERENCE)
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.describe_model_package(ModelPackageName="no-such-package")
    assert error_code(raised) == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.update_model_package(ModelPackageArn="arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1")
    assert error_code(raised) == "ValidationException"
    name = unique("solo")
    arn = sm.create_model_package(ModelPackageName=name, InferenceSpecification=INFERENCE)["ModelPackageArn"]
    unversioned = sm.list_model_packages(NameContains=name)["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in unversioned] == [arn]
    assert "ModelApprovalStatus" not in sm.describe_model_package(ModelPackageName=name)
