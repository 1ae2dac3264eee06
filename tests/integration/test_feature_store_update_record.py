"""UpdateRecord through boto3: the named features of an existing record change, the rest stay; AWS's errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from tests.integration.feature_store_helpers import client, create_group, record


@pytest.fixture(scope="module")
def fsr(stack_url):
    return client(stack_url, "sagemaker-featurestore-runtime")


@pytest.fixture(scope="module")
def group(sm, bucket):
    """Standard_V2: UpdateRecord is offered only for Standard_V2 and InMemory online stores."""
    return create_group(
        sm,
        bucket,
        online=False,
        OnlineStoreConfig={"EnableOnlineStore": True, "StorageType": "Standard_V2"},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/update-record"}},
    )


def _values(fsr, group, record_id):
    answer = fsr.get_record(FeatureGroupName=group, RecordIdentifierValueAsString=record_id)
    return {f["FeatureName"]: f["ValueAsString"] for f in answer.get("Record") or []}


def _error(call, **kwargs):
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_update_record_changes_only_the_named_features(fsr, group):
    now = time.time() - 60
    fsr.put_record(FeatureGroupName=group, Record=record("u1", now, age=30, balance=1.5, segment="a"))
    fsr.update_record(
        FeatureGroupName=group,
        RecordIdentifierValueAsString="u1",
        Features=[{"FeatureName": "age", "ValueAsString": "31"}, {"FeatureName": "segment", "ValueAsString": "b"}],
    )
    assert _values(fsr, group, "u1") == {
        "customer_id": "u1",
        "event_time": repr(now),  # omitted: the record keeps its event time
        "age": "31",
        "balance": "1.5",
        "segment": "b",
    }


def test_update_record_with_a_newer_event_time_and_ttl(fsr, group):
    now = time.time() - 60
    fsr.put_record(FeatureGroupName=group, Record=record("u2", now, age=30))
    later = now + 30
    fsr.update_record(
        FeatureGroupName=group,
        RecordIdentifierValueAsString="u2",
        Features=[
            {"FeatureName": "event_time", "ValueAsString": repr(later)},
            {"FeatureName": "balance", "ValueAsString": "7.75"},
        ],
        TtlDuration={"Unit": "Hours", "Value": 2},
    )
    answer = fsr.get_record(
        FeatureGroupName=group, RecordIdentifierValueAsString="u2", ExpirationTimeResponse="Enabled"
    )
    values = {f["FeatureName"]: f["ValueAsString"] for f in answer["Record"]}
    assert values == {"customer_id": "u2", "event_time": repr(later), "age": "30", "balance": "7.75", "segment": "a"}
    expected = datetime.fromtimestamp(later + 7200, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert answer["ExpiresAt"] == expected


def test_an_older_event_time_is_a_conflict(fsr, group):
    now = time.time() - 60
    fsr.put_record(FeatureGroupName=group, Record=record("u3", now, age=30))
    code, status = _error(
        fsr.update_record,
        FeatureGroupName=group,
        RecordIdentifierValueAsString="u3",
        Features=[
            {"FeatureName": "event_time", "ValueAsString": repr(now - 1)},
            {"FeatureName": "age", "ValueAsString": "1"},
        ],
    )
    assert (code, status) == ("ConflictException", 409)
    assert _values(fsr, group, "u3")["age"] == "30"


def test_a_missing_or_soft_deleted_record_is_not_found(fsr, group):
    features = [{"FeatureName": "age", "ValueAsString": "5"}]
    code, _ = _error(
        fsr.update_record, FeatureGroupName=group, RecordIdentifierValueAsString="nobody", Features=features
    )
    assert code == "ResourceNotFound"
    now = time.time() - 60
    fsr.put_record(FeatureGroupName=group, Record=record("u4", now))
    fsr.delete_record(FeatureGroupName=group, RecordIdentifierValueAsString="u4", EventTime=repr(now + 1))
    code, _ = _error(fsr.update_record, FeatureGroupName=group, RecordIdentifierValueAsString="u4", Features=features)
    assert code == "ResourceNotFound"
    assert _values(fsr, group, "nobody") == {}  # UpdateRecord never creates a record


@pytest.mark.parametrize(
    ("features", "extra"),
    [
        ([{"FeatureName": "no_such_feature", "ValueAsString": "1"}], {}),  # unknown feature
        ([{"FeatureName": "age", "ValueAsString": "forty"}], {}),  # value not of its type
        ([{"FeatureName": "customer_id", "ValueAsString": "someone-else"}], {}),  # the identifier cannot change
        ([{"FeatureName": "age", "ValueAsString": "1"}], {"TtlDuration": {"Unit": "Days", "Value": 1}}),  # TTL, no time
        ([{"FeatureName": "age", "ValueAsString": "1"}] * 101, {}),  # more than 100 features
        ([{"FeatureName": "age", "ValueAsString": "1"}, {"FeatureName": "age", "ValueAsString": "2"}], {}),  # twice
    ],
)
def test_bad_updates_are_validation_errors_and_change_nothing(fsr, group, features, extra):
    now = time.time() - 60
    fsr.put_record(FeatureGroupName=group, Record=record("u5", now, age=30))
    code, status = _error(
        fsr.update_record, FeatureGroupName=group, RecordIdentifierValueAsString="u5", Features=features, **extra
    )
    assert (code, status) == ("ValidationError", 400)
    assert _values(fsr, group, "u5")["age"] == "30"


def test_update_record_needs_a_standard_v2_or_in_memory_online_store(fsr, sm, bucket):
    standard = create_group(sm, bucket)  # StorageType defaults to Standard
    fsr.put_record(FeatureGroupName=standard, Record=record("s1", time.time() - 60))
    features = [{"FeatureName": "age", "ValueAsString": "5"}]
    code, _ = _error(
        fsr.update_record, FeatureGroupName=standard, RecordIdentifierValueAsString="s1", Features=features
    )
    assert code == "ValidationError"
    code, _ = _error(
        fsr.update_record, FeatureGroupName="no-such-group", RecordIdentifierValueAsString="s1", Features=features
    )
    assert code == "ResourceNotFound"


def test_the_offline_store_gets_the_whole_updated_record(fsr, sm, bucket, group, stack_url):
    now = time.time() - 60
    fsr.put_record(
        FeatureGroupName=group, Record=record("u6", now, age=30, balance=2.5, segment="a"), TargetStores=["OnlineStore"]
    )
    fsr.update_record(
        FeatureGroupName=group,
        RecordIdentifierValueAsString="u6",
        Features=[{"FeatureName": "age", "ValueAsString": "44"}],
        TargetStores=["OfflineStore"],
    )
    assert _values(fsr, group, "u6")["age"] == "30"  # only the offline store was targeted
    table = sm.describe_feature_group(FeatureGroupName=group)["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"]
    athena = client(stack_url, "athena")
    query_id = athena.start_query_execution(
        QueryString=f"SELECT customer_id, event_time, age, balance, segment FROM \"{table}\" WHERE customer_id = 'u6'",
        QueryExecutionContext={"Database": "sagemaker_featurestore"},
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-update-record"},
    )["QueryExecutionId"]
    while athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] in (
        "QUEUED",
        "RUNNING",
    ):
        time.sleep(0.05)
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"][1:]
    assert [[d.get("VarCharValue") for d in row["Data"]] for row in rows] == [["u6", repr(now), "44", "2.5", "a"]]
