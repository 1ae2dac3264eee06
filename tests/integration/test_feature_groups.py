"""Feature groups through boto3: create, describe (schema-exact), list, update, delete, feature metadata."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.feature_store_helpers import (
    DEFINITIONS,
    OFFLINE_COLUMNS,
    ROLE,
    create_group,
    unique,
    wait_status,
)


def test_create_feature_group_goes_from_creating_to_created(sm, bucket):
    name = unique("fg")
    arn = sm.create_feature_group(
        FeatureGroupName=name,
        RecordIdentifierFeatureName="customer_id",
        EventTimeFeatureName="event_time",
        FeatureDefinitions=DEFINITIONS,
        OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 2}},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/fs"}, "TableFormat": "Iceberg"},
        RoleArn=ROLE,
        Description="customers",
    )["FeatureGroupArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:feature-group/{name}"
    assert sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupStatus"] in ("Creating", "Created")
    described = wait_status(sm, name, "Created")
    assert described["FeatureDefinitions"] == DEFINITIONS
    assert described["OnlineStoreConfig"] == {
        "EnableOnlineStore": True,
        "TtlDuration": {"Unit": "Days", "Value": 2},
    }
    offline = described["OfflineStoreConfig"]
    stamp = int(described["CreationTime"].timestamp())
    assert offline["S3StorageConfig"]["ResolvedOutputS3Uri"] == (
        f"s3://{bucket}/fs/123456789012/sagemaker/us-east-1/offline-store/{name}-{stamp}/data"
    )
    assert offline["DataCatalogConfig"] == {
        "TableName": f"{name.replace('-', '_')}_{stamp}",
        "Catalog": "AwsDataCatalog",
        "Database": "sagemaker_featurestore",
    }
    assert offline["TableFormat"] == "Iceberg"
    assert described["OfflineStoreStatus"] == {"Status": "Active"}
    assert described["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}
    assert described["Description"] == "customers"


def test_create_feature_group_registers_a_glue_table(sm, bucket, stack_url):
    from tests.integration.feature_store_helpers import client

    name = create_group(sm, bucket)
    catalog = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]
    table = client(stack_url, "glue").get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns == OFFLINE_COLUMNS
    assert table["StorageDescriptor"]["Location"].endswith("/data")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RecordIdentifierFeatureName": "missing"}, "RecordIdentifierFeatureName missing is not defined"),
        ({"EventTimeFeatureName": "age"}, "must be of type String or Fractional"),
        ({"FeatureDefinitions": [*DEFINITIONS, {"FeatureName": "write_time", "FeatureType": "String"}]}, "reserved"),
        ({"FeatureDefinitions": [*DEFINITIONS, {"FeatureName": "AGE", "FeatureType": "String"}]}, "more than once"),
        ({"OnlineStoreConfig": {"EnableOnlineStore": False}, "OfflineStoreConfig": None}, "At least one of"),
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://no-such-bucket-fs/x"}}}, "does not exist"),
    ],
)
def test_create_feature_group_refuses_bad_definitions(sm, bucket, change, message):
    params = {
        "FeatureGroupName": unique("fg"),
        "RecordIdentifierFeatureName": "customer_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": DEFINITIONS,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/fs"}},
        "RoleArn": ROLE,
        **change,
    }
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(ClientError) as raised:
        sm.create_feature_group(**params)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_create_feature_group_validates_against_the_model(sm):
    with pytest.raises(ClientError) as raised:
        sm.create_feature_group(
            FeatureGroupName="bad name!",
            RecordIdentifierFeatureName="id",
            EventTimeFeatureName="t",
            FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "Integral"}],
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "featureGroupName" in raised.value.response["Error"]["Message"]


def test_duplicate_feature_group_is_resource_in_use(sm, bucket):
    name = create_group(sm, bucket)
    with pytest.raises(ClientError) as raised:
        sm.create_feature_group(
            FeatureGroupName=name,
            RecordIdentifierFeatureName="customer_id",
            EventTimeFeatureName="event_time",
            FeatureDefinitions=DEFINITIONS,
            OnlineStoreConfig={"EnableOnlineStore": True},
        )
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"


def test_list_feature_groups_filters_and_paginates(sm, bucket):
    names = sorted(create_group(sm, bucket, offline=False) for _ in range(3))
    found = []
    token = None
    while True:
        page = sm.list_feature_groups(
            NameContains="fg-",
            SortBy="Name",
            SortOrder="Ascending",
            MaxResults=2,
            **({"NextToken": token} if token else {}),
        )
        found += [s["FeatureGroupName"] for s in page["FeatureGroupSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert [n for n in found if n in names] == names
    created = sm.list_feature_groups(FeatureGroupStatusEquals="Created", MaxResults=100)["FeatureGroupSummaries"]
    assert set(names) <= {s["FeatureGroupName"] for s in created}
    assert all(s["FeatureGroupStatus"] == "Created" for s in created)


def test_update_feature_group_adds_features_and_updates_the_glue_table(sm, bucket, stack_url):
    from tests.integration.feature_store_helpers import client

    name = create_group(sm, bucket)
    sm.update_feature_group(
        FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "score", "FeatureType": "Fractional"}]
    )
    described = sm.describe_feature_group(FeatureGroupName=name)
    assert described["FeatureDefinitions"][-1] == {"FeatureName": "score", "FeatureType": "Fractional"}
    assert described["LastUpdateStatus"] == {"Status": "Successful"}
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    table = client(stack_url, "glue").get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
    assert "score" in [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
    with pytest.raises(ClientError) as raised:
        sm.update_feature_group(
            FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "age", "FeatureType": "String"}]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_feature_metadata_round_trip(sm, bucket):
    name = create_group(sm, bucket, offline=False)
    sm.update_feature_metadata(
        FeatureGroupName=name,
        FeatureName="balance",
        Description="account balance",
        ParameterAdditions=[{"Key": "unit", "Value": "EUR"}, {"Key": "owner", "Value": "risk"}],
    )
    sm.update_feature_metadata(FeatureGroupName=name, FeatureName="balance", ParameterRemovals=["owner"])
    meta = sm.describe_feature_metadata(FeatureGroupName=name, FeatureName="balance")
    assert meta["FeatureType"] == "Fractional"
    assert meta["Description"] == "account balance"
    assert meta["Parameters"] == [{"Key": "unit", "Value": "EUR"}]
    with pytest.raises(ClientError) as raised:
        sm.describe_feature_metadata(FeatureGroupName=name, FeatureName="nope")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"


def test_delete_feature_group_goes_through_deleting(sm, bucket):
    name = create_group(sm, bucket)
    sm.delete_feature_group(FeatureGroupName=name)
    status = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupStatus"]
    assert status == "Deleting"
    wait_status(sm, name, "Gone")
    with pytest.raises(ClientError) as raised:
        sm.describe_feature_group(FeatureGroupName=name)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"
