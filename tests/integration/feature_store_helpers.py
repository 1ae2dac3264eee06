"""Shared by the Feature Store tests: clients, a group factory and waiting for a status."""

from __future__ import annotations

import time
import uuid

import boto3

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
REGION = "us-east-1"
DEFINITIONS = [
    {"FeatureName": "customer_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "Fractional"},
    {"FeatureName": "age", "FeatureType": "Integral"},
    {"FeatureName": "balance", "FeatureType": "Fractional"},
    {"FeatureName": "segment", "FeatureType": "String"},
]
# The Glue columns of a group of DEFINITIONS: its features, then the three the offline store adds.
OFFLINE_COLUMNS = {
    "customer_id": "string",
    "event_time": "double",
    "age": "bigint",
    "balance": "double",
    "segment": "string",
    "write_time": "timestamp",
    "api_invocation_time": "timestamp",
    "is_deleted": "boolean",
}


def client(url: str, service: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_status(sm, name: str, wanted: str) -> dict:  # type: ignore[no-untyped-def]
    while True:
        try:
            described = sm.describe_feature_group(FeatureGroupName=name)
        except sm.exceptions.ResourceNotFound:
            if wanted == "Gone":
                return {}
            raise
        if described["FeatureGroupStatus"] == wanted:
            return described
        time.sleep(0.05)


def create_group(sm, bucket: str, *, online: bool = True, offline: bool = True, ttl=None, **extra) -> str:  # type: ignore[no-untyped-def]
    name = unique("fg")
    params = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": "customer_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": DEFINITIONS,
        "RoleArn": ROLE,
        **extra,
    }
    if online:
        params["OnlineStoreConfig"] = {"EnableOnlineStore": True, **({"TtlDuration": ttl} if ttl else {})}
    if offline:
        params["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/feature-store"}}
    sm.create_feature_group(**params)
    wait_status(sm, name, "Created")
    return name


def record(customer: str, event_time: float, age: int = 30, balance: float = 1.5, segment: str = "a") -> list[dict]:
    return [
        {"FeatureName": "customer_id", "ValueAsString": customer},
        {"FeatureName": "event_time", "ValueAsString": repr(float(event_time))},
        {"FeatureName": "age", "ValueAsString": str(age)},
        {"FeatureName": "balance", "ValueAsString": repr(float(balance))},
        {"FeatureName": "segment", "ValueAsString": segment},
    ]


def static_iceberg_table(stack_url: str, metadata_location: str):
    """The table as any Iceberg reader sees it: pyiceberg's own FileIO over the stack's S3, no catalog."""
    from pyiceberg.table import StaticTable

    properties = {
        "s3.endpoint": stack_url,
        "s3.region": REGION,
        "s3.access-key-id": "test",
        "s3.secret-access-key": "test",
    }
    return StaticTable.from_metadata(metadata_location, properties)
