"""Shared by the Feature Store benchmarks: an in-process stack, clients and a feature group."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from infra.config import StackSettings
from infra.control_plane.server import LocalStack

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "sagestack-bench-features"
DEFINITIONS = [
    {"FeatureName": "customer_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "Fractional"},
    {"FeatureName": "age", "FeatureType": "Integral"},
    {"FeatureName": "balance", "FeatureType": "Fractional"},
    {"FeatureName": "segment", "FeatureType": "String"},
]


def start_stack(data_dir: Path) -> LocalStack:
    stack = LocalStack(StackSettings(data_dir=data_dir, port=0))
    stack.start()
    client(stack.url, "s3").create_bucket(Bucket=BUCKET)
    return stack


def client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def create_group(url: str, online: bool = True, offline: bool = True) -> dict[str, Any]:
    sm = client(url, "sagemaker")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    params: dict[str, Any] = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": "customer_id",
        "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": DEFINITIONS,
        "RoleArn": ROLE,
    }
    if online:
        params["OnlineStoreConfig"] = {"EnableOnlineStore": True}
    if offline:
        params["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/feature-store"}}
    sm.create_feature_group(**params)
    while (described := sm.describe_feature_group(FeatureGroupName=name))["FeatureGroupStatus"] != "Created":
        time.sleep(0.1)
    return dict(described)
