"""The stack's bulk ingest path (``POST /_sagestack/feature-store/ingest``), signed like any call: records are checked
exactly as PutRecord checks them, refused ones reported by index, the envelope refused with AWS-shaped errors."""

from __future__ import annotations

import json
import time

import pytest

from spark_jobs.config import AwsSettings
from spark_jobs.feature_store_online import _BulkClient, bulk_available
from tests.integration.feature_store_helpers import client, create_group, static_iceberg_table

NAMES = ["customer_id", "event_time", "age", "balance", "segment"]


@pytest.fixture(scope="module")
def bulk(stack_url):
    return _BulkClient(AwsSettings(endpoint_url=stack_url, region="us-east-1"), 1)


def _post(bulk, document):
    status, headers, body = bulk.post(json.dumps(document).encode())
    return status, headers.get("x-amzn-errortype"), json.loads(body)


def test_the_stack_offers_the_bulk_path(stack_url):
    assert bulk_available(AwsSettings(endpoint_url=stack_url, region="us-east-1"))
    assert not bulk_available(AwsSettings(endpoint_url=None, region="us-east-1"))


def test_bulk_records_are_read_back_and_bad_ones_reported_by_index(bulk, sm, bucket, stack_url):
    name = create_group(sm, bucket)
    now = time.time()
    rows = [
        ["c1", repr(now), "31", "10.5", "a"],
        ["c2", repr(now), "thirty", "1", "b"],  # not an Integral
        [None, repr(now), "1", "1", "a"],  # no record identifier
        ["c4", repr(now + 3600), "1", "1", "a"],  # an hour ahead
        ["c5", repr(now), None, None, None],  # only the keys: fine
    ]
    status, _, answer = _post(bulk, {"FeatureGroupName": name, "FeatureNames": NAMES, "Records": rows})
    assert status == 200
    assert [(e["Index"], e["ErrorCode"]) for e in answer["Errors"]] == [
        (1, "ValidationError"),
        (2, "ValidationError"),
        (3, "ValidationError"),
    ]
    messages = [e["ErrorMessage"] for e in answer["Errors"]]
    assert "not an Integral" in messages[0] and "record identifier feature customer_id" in messages[1]
    assert "in the future" in messages[2]
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    got = fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c1")["Record"]
    assert {f["FeatureName"]: f["ValueAsString"] for f in got} == dict(zip(NAMES, rows[0], strict=True))
    assert [
        f["FeatureName"] for f in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c5")["Record"]
    ] == ["customer_id", "event_time"]
    for missing in ("c2", "c4"):
        assert "Record" not in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=missing)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"FeatureNames": [*NAMES, "height"], "Records": [["c1", "1700000000", "1", "1", "a", "2"]]},
            "ValidationError",
            "height does not exist",
        ),
        ({"FeatureNames": ["customer_id", "customer_id"]}, "ValidationError", "more than once"),
        ({"Records": [["c1", "1"]]}, "ValidationError", "one per feature name"),
        ({"Records": []}, "ValidationError", "1 to 10000 records"),
        ({"Records": [["c1", "1", 3, "1", "a"]]}, "ValidationError", "strings of at most"),
        ({"TargetStores": ["Elsewhere"]}, "ValidationError", "targetStores"),
        ({"FeatureGroupName": "no-such-group"}, "ResourceNotFound", "no-such-group"),
    ],
)
def test_a_bad_envelope_is_refused_whole(bulk, sm, bucket, change, code, message):
    name = create_group(sm, bucket, offline=False)
    document = {"FeatureGroupName": name, "FeatureNames": NAMES, "Records": [["c1", "1700000000", "1", "1", "a"]]}
    status, error, answer = _post(bulk, {**document, **change})
    assert (status // 100, error) == (4, code)
    assert message in answer["message"]


def test_bulk_to_a_store_the_group_lacks_is_refused(bulk, sm, bucket):
    name = create_group(sm, bucket, offline=False)
    document = {"FeatureGroupName": name, "FeatureNames": NAMES, "TargetStores": ["OfflineStore"]}
    status, error, answer = _post(bulk, {**document, "Records": [["c1", "1700000000", "1", "1", "a"]]})
    assert (status, error) == (400, "ValidationError") and "OfflineStore" in answer["message"]


def test_bulk_records_into_an_iceberg_offline_store_are_one_iceberg_commit(bulk, sm, bucket, stack_url):
    offline = {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/bulk-iceberg"}, "TableFormat": "Iceberg"}
    name = create_group(sm, bucket, offline=False, OfflineStoreConfig=offline)
    now = time.time()
    rows = [[f"c{i}", repr(now + i / 10), str(i), "1.5", "ab"[i % 2]] for i in range(40)]
    document = {"FeatureGroupName": name, "TargetStores": ["OfflineStore"], "FeatureNames": NAMES, "Records": rows}
    assert _post(bulk, document)[0] == 200
    catalog = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]
    athena = client(stack_url, "athena")
    query_id = athena.start_query_execution(  # a query writes what the offline store buffers
        QueryString=f'SELECT sum(age) FROM "{catalog["TableName"]}"',
        QueryExecutionContext={"Database": catalog["Database"]},
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-bulk"},
    )["QueryExecutionId"]
    while athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "RUNNING":
        time.sleep(0.05)
    assert athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"][1]["Data"] == [
        {"VarCharValue": str(sum(range(40)))}
    ]
    glue = client(stack_url, "glue").get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
    table = static_iceberg_table(stack_url, glue["Parameters"]["metadata_location"])
    assert [int(s.summary["added-records"]) for s in table.snapshots()] == [40]
    assert sorted(table.scan().to_arrow().column("customer_id").to_pylist()) == sorted(r[0] for r in rows)
