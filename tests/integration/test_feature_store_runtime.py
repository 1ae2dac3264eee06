"""The online store through ``sagemaker-featurestore-runtime`` (boto3): put, get, batch get, delete, TTL, bad input."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.feature_store_helpers import client, create_group, record, wait_status


@pytest.fixture(scope="module")
def fsr(stack_url):
    return client(stack_url, "sagemaker-featurestore-runtime")


@pytest.fixture(scope="module")
def group(sm, bucket):
    return create_group(sm, bucket)


def _values(answer):
    return {f["FeatureName"]: f["ValueAsString"] for f in answer["Record"]}


def test_put_record_then_get_record(fsr, group):
    now = time.time()
    fsr.put_record(FeatureGroupName=group, Record=record("c1", now, age=41, balance=10.25, segment="gold"))
    got = fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="c1")
    assert _values(got) == {
        "customer_id": "c1",
        "event_time": repr(now),
        "age": "41",
        "balance": "10.25",
        "segment": "gold",
    }


def test_get_record_selects_feature_names(fsr, group):
    fsr.put_record(FeatureGroupName=group, Record=record("c2", time.time(), age=7))
    got = fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="c2", FeatureNames=["age", "segment"])
    assert _values(got) == {"age": "7", "segment": "a"}


def test_get_record_of_an_unknown_identifier_is_empty(fsr, group):
    got = fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="nobody")
    assert "Record" not in got


def test_older_record_does_not_replace_the_newer_one(fsr, group):
    now = time.time()
    fsr.put_record(FeatureGroupName=group, Record=record("c3", now, age=2))
    fsr.put_record(FeatureGroupName=group, Record=record("c3", now - 100, age=1))
    assert _values(fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="c3"))["age"] == "2"


def test_batch_get_record(fsr, group, sm):
    now = time.time()
    for customer in ("b1", "b2"):
        fsr.put_record(FeatureGroupName=group, Record=record(customer, now, segment=customer))
    arn = sm.describe_feature_group(FeatureGroupName=group)["FeatureGroupArn"]
    answer = fsr.batch_get_record(
        Identifiers=[
            {
                "FeatureGroupName": arn,
                "RecordIdentifiersValueAsString": ["b1", "b2", "nobody"],
                "FeatureNames": ["segment"],
            },
            {"FeatureGroupName": "no-such-group", "RecordIdentifiersValueAsString": ["x"]},
        ]
    )
    assert sorted((r["RecordIdentifierValueAsString"], _values(r)["segment"]) for r in answer["Records"]) == [
        ("b1", "b1"),
        ("b2", "b2"),
    ]
    assert [(e["FeatureGroupName"], e["ErrorCode"]) for e in answer["Errors"]] == [
        ("no-such-group", "ResourceNotFound")
    ]


def test_soft_delete_keeps_a_tombstone_and_hard_delete_removes(fsr, group):
    now = time.time()
    fsr.put_record(FeatureGroupName=group, Record=record("d1", now))
    fsr.delete_record(FeatureGroupName=group, RecordIdentifierValueAsString="d1", EventTime=repr(now + 1))
    assert "Record" not in fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="d1")
    fsr.put_record(FeatureGroupName=group, Record=record("d1", now))  # older than the delete: stays deleted
    assert "Record" not in fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="d1")
    fsr.put_record(FeatureGroupName=group, Record=record("d1", now + 2, age=99))
    assert _values(fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="d1"))["age"] == "99"
    fsr.delete_record(
        FeatureGroupName=group, RecordIdentifierValueAsString="d1", EventTime=repr(now + 3), DeletionMode="HardDelete"
    )
    fsr.put_record(FeatureGroupName=group, Record=record("d1", now, age=5))  # no tombstone after a hard delete
    assert _values(fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="d1"))["age"] == "5"


def test_ttl_expires_records(fsr, sm, bucket):
    name = create_group(sm, bucket, offline=False, ttl={"Unit": "Seconds", "Value": 60})
    now = time.time()
    fsr.put_record(FeatureGroupName=name, Record=record("old", now - 120))
    fsr.put_record(FeatureGroupName=name, Record=record("new", now))
    assert "Record" not in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="old")
    fresh = fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="new", ExpirationTimeResponse="Enabled")
    assert fresh["ExpiresAt"].endswith("Z")
    fsr.put_record(
        FeatureGroupName=name, Record=record("long", now - 120), TtlDuration={"Unit": "Hours", "Value": 1}
    )  # a record-level TTL supersedes the group's
    assert "Record" in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="long")


def _error(call):
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("bad_record", "message"),
    [
        ([f for f in record("x", 0) if f["FeatureName"] != "customer_id"], "record identifier feature customer_id"),
        ([f for f in record("x", 0) if f["FeatureName"] != "event_time"], "event time feature event_time"),
        ([*record("x", 0)[:2], {"FeatureName": "age", "ValueAsString": "forty"}], "not an Integral"),
        ([*record("x", 0)[:2], {"FeatureName": "balance", "ValueAsString": "1,5"}], "not a Fractional"),
        ([*record("x", 0), {"FeatureName": "height", "ValueAsString": "1"}], "height does not exist"),
        (record("x", time.time() + 3600), "in the future"),
        (
            [
                {"FeatureName": "customer_id", "ValueAsString": "x"},
                {"FeatureName": "event_time", "ValueAsString": "soon"},
            ],
            "not a Fractional",
        ),
    ],
)
def test_put_record_refuses_bad_records(fsr, group, bad_record, message):
    code, text = _error(lambda: fsr.put_record(FeatureGroupName=group, Record=bad_record))
    assert code == "ValidationError"
    assert message in text


def test_unknown_feature_group_is_resource_not_found(fsr):
    code, _ = _error(lambda: fsr.get_record(FeatureGroupName="no-such-group", RecordIdentifierValueAsString="x"))
    assert code == "ResourceNotFound"
    code, _ = _error(lambda: fsr.put_record(FeatureGroupName="no-such-group", Record=record("x", time.time())))
    assert code == "ResourceNotFound"


def test_get_record_of_an_unknown_feature_name(fsr, group):
    code, text = _error(
        lambda: fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString="c1", FeatureNames=["nope"])
    )
    assert (code, "nope does not exist" in text) == ("ValidationError", True)


def test_feature_group_deleted_while_ingesting(fsr, sm, bucket):
    name = create_group(sm, bucket)
    fsr.put_record(FeatureGroupName=name, Record=record("z", time.time()))
    sm.delete_feature_group(FeatureGroupName=name)
    code, _ = _error(lambda: fsr.put_record(FeatureGroupName=name, Record=record("z", time.time())))
    assert code in ("ValidationError", "ResourceNotFound")
    wait_status(sm, name, "Gone")
    code, _ = _error(lambda: fsr.put_record(FeatureGroupName=name, Record=record("z", time.time())))
    assert code == "ResourceNotFound"


def test_list_records_pages_through_the_online_store(fsr, sm, bucket):
    name = create_group(sm, bucket, offline=False)
    now = time.time()
    for key in ("k3", "k1", "k5", "k2", "k4"):
        fsr.put_record(FeatureGroupName=name, Record=record(key, now))
    fsr.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="k2", EventTime=repr(now))
    seen, token = [], None
    while True:
        page = fsr.list_records(FeatureGroupName=name, MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["RecordIdentifiers"]) <= 2
        seen += page["RecordIdentifiers"]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["k1", "k3", "k4", "k5"]  # a soft-deleted record is not listed unless asked for
    listed = fsr.list_records(FeatureGroupName=name, IncludeSoftDeletedRecords=True)["RecordIdentifiers"]
    assert listed == ["k1", "k2", "k3", "k4", "k5"]
    code, _ = _error(lambda: fsr.list_records(FeatureGroupName=name, NextToken="%%%"))
    assert code == "ValidationError"
    code, _ = _error(lambda: fsr.list_records(FeatureGroupName="no-such-group"))
    assert code == "ResourceNotFound"
