"""The offline store: Parquet in S3 under AWS's layout, the columns AWS adds, batched files, nothing lost on stop."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from infra.config import StackSettings
from infra.control_plane.core.aws_services import S3Access, S3Location
from infra.control_plane.server import LocalStack
from tests.integration.feature_store_helpers import client, create_group, record

OFFLINE_FLUSH_SECONDS = 5.0  # OfflineStoreWriter's flush_seconds, which the session stack keeps
_KEY = re.compile(r"/data/year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/\d{8}T\d{6}Z_[0-9a-f]{16}\.parquet$")


@pytest.fixture(scope="module")
def fsr(stack_url):
    return client(stack_url, "sagemaker-featurestore-runtime")


def _files(s3, uri):
    location = S3Location.parse(uri)
    listed = s3.list_objects_v2(Bucket=location.bucket, Prefix=location.key)
    return [obj["Key"] for obj in listed.get("Contents", [])]


def _read(s3, bucket, keys):
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    return [row for table in tables for row in table.to_pylist()]


def test_records_land_as_parquet_under_the_aws_layout(fsr, sm, s3, bucket, stack):
    name = create_group(sm, bucket)
    uri = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["S3StorageConfig"][
        "ResolvedOutputS3Uri"
    ]
    base = datetime(2024, 3, 5, 10, 30, tzinfo=UTC).timestamp()
    started = time.monotonic()
    for index in range(40):
        fsr.put_record(FeatureGroupName=name, Record=record(f"c{index}", base + (index % 2) * 3600, age=index))
    fsr.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="c0", EventTime=repr(base + 60))
    elapsed = time.monotonic() - started
    stack.backend().feature_store.offline.flush()
    keys = _files(s3, uri)
    hours = sorted({_KEY.search(k).groups() for k in keys})
    assert hours == [("2024", "03", "05", "10"), ("2024", "03", "05", "11")]
    # Batched: one file per event-time hour per write of the buffer, not one per record. The buffer is also written
    # every flush_seconds (5 s), which a slow machine's 41 calls can span.
    writes = 1 + int(elapsed // OFFLINE_FLUSH_SECONDS) + 1
    assert 2 <= len(keys) <= 2 * writes, (len(keys), elapsed)
    rows = _read(s3, bucket, keys)
    assert len(rows) == 41
    assert set(rows[0]) == {
        "customer_id",
        "event_time",
        "age",
        "balance",
        "segment",
        "write_time",
        "api_invocation_time",
        "is_deleted",
    }
    deleted = [r for r in rows if r["is_deleted"]]
    assert [(r["customer_id"], r["event_time"], r["age"]) for r in deleted] == [("c0", base + 60, None)]
    kept = {r["customer_id"]: r for r in rows if not r["is_deleted"]}
    assert kept["c7"]["age"] == 7 and kept["c7"]["event_time"] == base + 3600
    assert kept["c7"]["write_time"] >= kept["c7"]["api_invocation_time"]


def test_offline_only_records_skip_the_online_store(fsr, sm, s3, bucket, stack):
    name = create_group(sm, bucket)
    fsr.put_record(FeatureGroupName=name, Record=record("o1", time.time()), TargetStores=["OfflineStore"])
    assert "Record" not in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="o1")
    stack.backend().feature_store.offline.flush()
    uri = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["S3StorageConfig"][
        "ResolvedOutputS3Uri"
    ]
    assert [r["customer_id"] for r in _read(s3, bucket, _files(s3, uri))] == ["o1"]


def test_buffered_records_are_written_in_the_background(fsr, sm, s3, bucket):
    name = create_group(sm, bucket)
    fsr.put_record(FeatureGroupName=name, Record=record("bg", time.time()))
    uri = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["S3StorageConfig"][
        "ResolvedOutputS3Uri"
    ]
    while not _files(s3, uri):  # the flush timer writes it (SAGESTACK_FEATURE_STORE_FLUSH_SECONDS)
        time.sleep(0.1)
    assert [r["customer_id"] for r in _read(s3, bucket, _files(s3, uri))] == ["bg"]


def test_stopping_the_stack_writes_what_is_buffered(tmp_path):
    settings = StackSettings(data_dir=tmp_path, port=0, feature_store_flush_seconds=3600)
    local = LocalStack(settings)
    url = local.start()
    try:
        sm, s3, fsr = client(url, "sagemaker"), client(url, "s3"), client(url, "sagemaker-featurestore-runtime")
        s3.create_bucket(Bucket="stop-flush")
        name = create_group(sm, "stop-flush")
        uri = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["S3StorageConfig"][
            "ResolvedOutputS3Uri"
        ]
        for index in range(25):
            fsr.put_record(FeatureGroupName=name, Record=record(f"s{index}", time.time()))
        assert _files(s3, uri) == []
    finally:
        local.stop()
    location = S3Location.parse(uri)
    keys = S3Access(settings.account_id).list_keys(location)
    rows = [
        row
        for key, _ in keys
        for row in pq.read_table(
            io.BytesIO(S3Access(settings.account_id).get_bytes(S3Location(location.bucket, key)))
        ).to_pylist()
    ]
    assert sorted(r["customer_id"] for r in rows) == sorted(f"s{i}" for i in range(25))
