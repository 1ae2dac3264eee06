"""Spark DataFrames ingested into feature groups at executor parallelism (spark_jobs.feature_store)."""

from __future__ import annotations

import time

import pytest

from spark_jobs.config import AwsSettings
from spark_jobs.errors import InputDataError
from spark_jobs.feature_store import FeatureStoreIngestionError, FeatureStoreManager
from tests.integration.feature_store_helpers import client, create_group, static_iceberg_table


@pytest.fixture(scope="module")
def manager(stack_url):
    return FeatureStoreManager(AwsSettings(endpoint_url=stack_url, region="us-east-1"))


def _frame(spark, rows, start=1_700_000_000.0):
    data = [(f"c{i:04d}", start + i, 20 + i % 60, float(i) / 4, "ab"[i % 2]) for i in range(rows)]
    frame = spark.createDataFrame(
        data, "customer_id string, event_time double, age long, balance double, segment string"
    )
    return frame.repartition(4)


def _count(stack_url, bucket, sm, name):
    athena = client(stack_url, "athena")
    table = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]["TableName"]
    query_id = athena.start_query_execution(
        QueryString=f"SELECT count(*), count(DISTINCT customer_id) FROM {table}",
        QueryExecutionContext={"Database": "sagemaker_featurestore"},
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-spark"},
    )["QueryExecutionId"]
    while athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "RUNNING":
        time.sleep(0.05)
    row = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"][1]["Data"]
    return int(row[0]["VarCharValue"]), int(row[1]["VarCharValue"])


def test_ingest_into_both_stores(spark, manager, sm, bucket, stack_url):
    name = create_group(sm, bucket)
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]
    manager.ingest_data(_frame(spark, 300), arn)
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    got = fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c0123")["Record"]
    assert {f["FeatureName"]: f["ValueAsString"] for f in got}["age"] == str(20 + 123 % 60)
    assert _count(stack_url, bucket, sm, name) == (300, 300)


def test_ingest_offline_only_writes_parquet_under_the_layout(spark, manager, sm, s3, bucket, stack_url):
    name = create_group(sm, bucket)
    described = sm.describe_feature_group(FeatureGroupName=name)
    manager.ingest_data(_frame(spark, 500), described["FeatureGroupArn"], target_stores=["OfflineStore"])
    uri = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    bucket_name, _, prefix = uri[len("s3://") :].partition("/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name, Prefix=prefix)["Contents"]]
    assert all("/data/year=2023/month=11/day=14/hour=22/" in k and k.endswith(".parquet") for k in keys)
    assert len(keys) <= 4  # one file per partition and hour, not one per record
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    assert "Record" not in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="c0001")
    assert _count(stack_url, bucket, sm, name) == (500, 500)


@pytest.mark.parametrize(
    ("target_stores", "bulk"), [(None, None), (None, False), (["OfflineStore"], None), (["OnlineStore"], False)]
)
def test_rows_that_do_not_fit_are_reported(spark, sm, bucket, stack_url, target_stores, bulk):
    """Through the stack's bulk path and through BatchWriteRecord (what AWS gets): the same refusals."""
    manager = FeatureStoreManager(AwsSettings(endpoint_url=stack_url, region="us-east-1"), bulk=bulk)
    name = create_group(sm, bucket)
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]
    rows = [("ok1", 1_700_000_000.0, "31"), ("bad", 1_700_000_001.0, "thirty"), ("ok2", 1_700_000_002.0, "7")]
    frame = spark.createDataFrame(rows, "customer_id string, event_time double, age string")
    with pytest.raises(FeatureStoreIngestionError) as raised:
        manager.ingest_data(frame, arn, target_stores)
    assert [f[0] for f in raised.value.failures] == ["bad"]
    assert raised.value.failures[0][1] == "ValidationError"
    if target_stores != ["OnlineStore"]:
        assert _count(stack_url, bucket, sm, name) == (2, 2)  # the offline store holds the accepted rows only
    if target_stores != ["OfflineStore"]:
        fsr = client(stack_url, "sagemaker-featurestore-runtime")
        assert "Record" in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="ok2")
        assert "Record" not in fsr.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="bad")


def test_future_event_times_are_refused_by_both_stores(spark, manager, sm, bucket, stack_url):
    """The online store refuses a record more than 5 minutes ahead; the offline store then does not get it either."""
    name = create_group(sm, bucket)
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]
    now = time.time()
    frame = spark.createDataFrame(
        [("now", now, 1), ("later", now + 3600, 2)], "customer_id string, event_time double, age long"
    )
    with pytest.raises(FeatureStoreIngestionError) as raised:
        manager.ingest_data(frame, arn)
    assert [(f[0], "in the future" in f[2]) for f in raised.value.failures] == [("later", True)]
    assert _count(stack_url, bucket, sm, name) == (1, 1)


def test_unknown_columns_are_refused_before_anything_is_written(spark, manager, sm, bucket):
    name = create_group(sm, bucket)
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]
    frame = spark.createDataFrame([("x", 1.0, 3)], "customer_id string, event_time double, height long")
    with pytest.raises(InputDataError, match="height"):
        manager.ingest_data(frame, arn)


def test_ingesting_into_an_iceberg_group_commits_one_snapshot_per_ingestion(spark, manager, sm, s3, bucket, stack_url):
    """Both Spark paths (offline only, and both stores) end in one Iceberg commit of the files the executors wrote."""
    offline = {"S3StorageConfig": {"S3Uri": f"s3://{bucket}/spark-iceberg"}, "TableFormat": "Iceberg"}
    name = create_group(sm, bucket, offline=False, OfflineStoreConfig=offline)
    described = sm.describe_feature_group(FeatureGroupName=name)
    manager.ingest_data(_frame(spark, 200), described["FeatureGroupArn"], target_stores=["OfflineStore"])
    manager.ingest_data(_frame(spark, 50, start=1_700_100_000.0), described["FeatureGroupArn"])
    assert _count(stack_url, bucket, sm, name) == (250, 200)
    catalog = described["OfflineStoreConfig"]["DataCatalogConfig"]
    glue = client(stack_url, "glue").get_table(DatabaseName=catalog["Database"], Name=catalog["TableName"])["Table"]
    assert glue["Parameters"]["table_type"] == "ICEBERG"
    table = static_iceberg_table(stack_url, glue["Parameters"]["metadata_location"])
    assert [int(s.summary["added-records"]) for s in table.snapshots()] == [200, 50]
    assert [s.summary["sagestack.writer"] for s in table.snapshots()] == ["spark", "spark"]
    rows = table.scan(selected_fields=("customer_id", "age")).to_arrow()
    expected = sorted(
        [(f"c{i:04d}", 20 + i % 60) for i in range(200)] + [(f"c{i:04d}", 20 + i % 60) for i in range(50)]
    )
    assert sorted(zip(rows.column("customer_id").to_pylist(), rows.column("age").to_pylist(), strict=True)) == expected
    resolved = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    folder = resolved[len(f"s3://{bucket}/") :].removesuffix("/data")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder + "/")["Contents"]]
    data_keys = {k for k in keys if "/data/" in k}
    assert {f.file.file_path.split(f"s3://{bucket}/", 1)[1] for f in table.scan().plan_files()} == data_keys
