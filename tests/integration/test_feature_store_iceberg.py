"""Feature groups with ``TableFormat: Iceberg``: a real Iceberg table (metadata, manifests, one snapshot per write)
under AWS's layout, registered in Glue as Athena registers one, read back by pyiceberg itself and by Athena."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from tests.integration.feature_store_helpers import (
    OFFLINE_COLUMNS,
    client,
    create_group,
    record,
    static_iceberg_table,
)


def _run(athena, bucket, sql):
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": "sagemaker_featurestore"},
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-iceberg"},
    )["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
            rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
            return [[d.get("VarCharValue") for d in row["Data"]] for row in rows[1:]]
        time.sleep(0.05)


@pytest.fixture(scope="module")
def athena(stack_url):
    return client(stack_url, "athena")


@pytest.fixture(scope="module")
def fsr(stack_url):
    return client(stack_url, "sagemaker-featurestore-runtime")


def _glue_table(stack_url, sm, name):
    catalog = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]
    glue = client(stack_url, "glue")
    return catalog["TableName"], glue.get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]


@pytest.fixture(scope="module")
def iceberg_group(sm, bucket, fsr, athena):
    name = create_group(sm, bucket, offline=False, OfflineStoreConfig=_iceberg_config(bucket))
    base = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    for index in range(3):
        fsr.put_record(FeatureGroupName=name, Record=record(f"c{index}", base + index, age=20 + index))
    first = _run(athena, bucket, f'SELECT count(*) FROM "{_table_name(sm, name)}"')  # a query writes the buffer
    fsr.put_record(FeatureGroupName=name, Record=record("c3", base + 3600 * 5, age=40, segment="b"))
    fsr.put_record(FeatureGroupName=name, Record=record("c0", base + 10, age=21, balance=9.25))
    fsr.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="c1", EventTime=repr(base + 20))
    second = _run(athena, bucket, f'SELECT count(*) FROM "{_table_name(sm, name)}"')
    assert (first, second) == ([["3"]], [["6"]])
    return name, base


def _iceberg_config(bucket):
    return {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/ice"}, "TableFormat": "Iceberg"}


def _table_name(sm, name):
    return sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"]


def test_an_iceberg_group_is_laid_out_as_on_aws(sm, s3, bucket, stack_url, iceberg_group):
    name, _ = iceberg_group
    described = sm.describe_feature_group(FeatureGroupName=name)
    resolved = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    stamp = int(described["CreationTime"].timestamp())
    folder = f"ice/123456789012/sagemaker/us-east-1/offline-store/{name}-{stamp}"
    assert resolved == f"s3://{bucket}/{folder}/data"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder + "/")["Contents"]]
    top = {key[len(folder) + 1 :].split("/", 1)[0] for key in keys}
    assert top == {"data", "metadata"}
    metadata = [key.rsplit("/", 1)[1] for key in keys if "/metadata/" in key]
    assert sorted(m for m in metadata if m.endswith(".metadata.json"))[0].startswith("00000-")
    assert sum(m.endswith(".metadata.json") for m in metadata) == 3  # created, then one commit per write
    assert sum(m.startswith("snap-") and m.endswith(".avro") for m in metadata) == 2  # manifest lists
    assert sum(m.endswith("-m0.avro") for m in metadata) == 2  # manifests
    data = [key for key in keys if "/data/" in key]
    assert data and all(key.endswith(".parquet") and "/data/year=2024/month=06/day=01/hour=" in key for key in data)


def test_the_glue_table_of_an_iceberg_group_is_registered_as_athena_registers_one(sm, stack_url, iceberg_group):
    name, _ = iceberg_group
    described = sm.describe_feature_group(FeatureGroupName=name)
    folder = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].removesuffix("/data")
    _, table = _glue_table(stack_url, sm, name)
    parameters = table["Parameters"]
    assert parameters["table_type"] == "ICEBERG"
    assert parameters["metadata_location"].startswith(folder + "/metadata/00002-")
    assert parameters["metadata_location"].endswith(".metadata.json")
    assert parameters["previous_metadata_location"].startswith(folder + "/metadata/00001-")
    assert table["StorageDescriptor"]["Location"] == folder
    columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert columns == OFFLINE_COLUMNS


def test_pyiceberg_reads_back_exactly_what_was_ingested(sm, stack_url, iceberg_group):
    name, base = iceberg_group
    _, table = _glue_table(stack_url, sm, name)
    iceberg = static_iceberg_table(stack_url, table["Parameters"]["metadata_location"])
    snapshots = iceberg.snapshots()
    assert [int(s.summary["added-records"]) for s in snapshots] == [3, 3]
    assert snapshots[1].parent_snapshot_id == snapshots[0].snapshot_id
    rows = iceberg.scan().to_arrow().sort_by([("customer_id", "ascending"), ("event_time", "ascending")])
    picked = rows.select(["customer_id", "event_time", "age", "balance", "segment", "is_deleted"]).to_pylist()
    assert [tuple(r.values()) for r in picked] == [
        ("c0", base, 20, 1.5, "a", False),
        ("c0", base + 10, 21, 9.25, "a", False),
        ("c1", base + 1, 21, 1.5, "a", False),
        ("c1", base + 20, None, None, None, True),
        ("c2", base + 2, 22, 1.5, "a", False),
        ("c3", base + 3600 * 5, 40, 1.5, "b", False),
    ]
    first = iceberg.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow()  # time travel: the first write only
    assert sorted(first.column("customer_id").to_pylist()) == ["c0", "c1", "c2"]


def test_athena_reads_the_current_snapshot_of_an_iceberg_group(sm, bucket, athena, iceberg_group):
    name, _ = iceberg_group
    rows = _run(
        athena,
        bucket,
        f'SELECT customer_id, age, is_deleted FROM "{_table_name(sm, name)}" ORDER BY customer_id, event_time',
    )
    assert rows == [
        ["c0", "20", "false"],
        ["c0", "21", "false"],
        ["c1", "21", "false"],
        ["c1", None, "true"],
        ["c2", "22", "false"],
        ["c3", "40", "false"],
    ]


def test_added_features_evolve_the_iceberg_schema(sm, bucket, stack_url, athena, fsr):
    name = create_group(sm, bucket, offline=False, OfflineStoreConfig=_iceberg_config(bucket))
    base = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
    fsr.put_record(FeatureGroupName=name, Record=record("old", base))
    _run(athena, bucket, f'SELECT count(*) FROM "{_table_name(sm, name)}"')
    sm.update_feature_group(
        FeatureGroupName=name, FeatureAdditions=[{"FeatureName": "score", "FeatureType": "Integral"}]
    )
    while sm.describe_feature_group(FeatureGroupName=name)["LastUpdateStatus"]["Status"] != "Successful":
        time.sleep(0.05)
    fsr.put_record(
        FeatureGroupName=name, Record=[*record("new", base + 1), {"FeatureName": "score", "ValueAsString": "7"}]
    )
    rows = _run(athena, bucket, f'SELECT customer_id, score FROM "{_table_name(sm, name)}" ORDER BY 1')
    assert rows == [["new", "7"], ["old", None]]
    _, table = _glue_table(stack_url, sm, name)
    iceberg = static_iceberg_table(stack_url, table["Parameters"]["metadata_location"])
    assert "score" in iceberg.schema().column_names
    assert sorted(iceberg.scan().to_arrow().column("score").to_pylist(), key=str) == [7, None]


def test_an_iceberg_store_without_a_glue_table_is_refused(sm, bucket):
    with pytest.raises(ClientError) as caught:
        create_group(
            sm,
            bucket,
            offline=False,
            OfflineStoreConfig={**_iceberg_config(bucket), "DisableGlueTableCreation": True},
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Iceberg" in caught.value.response["Error"]["Message"]


def test_an_iceberg_group_keeps_its_snapshots_across_a_restart(tmp_path):
    from infra.config import StackSettings
    from infra.control_plane.server import LocalStack

    settings = StackSettings(data_dir=tmp_path, port=0, feature_store_flush_seconds=3600)
    base = datetime(2024, 8, 1, tzinfo=UTC).timestamp()
    local = LocalStack(settings)
    url = local.start()
    try:
        sm, fsr = client(url, "sagemaker"), client(url, "sagemaker-featurestore-runtime")
        client(url, "s3").create_bucket(Bucket="iceberg-restart")
        name = create_group(sm, "iceberg-restart", offline=False, OfflineStoreConfig=_iceberg_config("iceberg-restart"))
        fsr.put_record(FeatureGroupName=name, Record=record("before", base))
    finally:
        local.stop()  # writes the buffer: the first commit
    local = LocalStack(settings)
    url = local.start()
    try:
        sm, fsr = client(url, "sagemaker"), client(url, "sagemaker-featurestore-runtime")
        while sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupStatus"] != "Created":
            time.sleep(0.05)
        fsr.put_record(FeatureGroupName=name, Record=record("after", base + 1))
        rows = _run(
            client(url, "athena"), "iceberg-restart", f'SELECT customer_id FROM "{_table_name(sm, name)}" ORDER BY 1'
        )
        assert rows == [["after"], ["before"]]
        _, table = _glue_table(url, sm, name)
        iceberg = static_iceberg_table(url, table["Parameters"]["metadata_location"])
        assert [int(s.summary["added-records"]) for s in iceberg.snapshots()] == [1, 1]
    finally:
        local.stop()
