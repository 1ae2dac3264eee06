"""Athena through boto3, executed for real by DuckDB over the offline store's Glue tables."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from tests.integration.feature_store_helpers import client, create_group, record


@pytest.fixture(scope="module")
def athena(stack_url):
    return client(stack_url, "athena")


@pytest.fixture(scope="module")
def loaded_group(sm, bucket, stack_url):
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    name = create_group(sm, bucket)
    base = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
    for index in range(30):
        fsr.put_record(
            FeatureGroupName=name, Record=record(f"c{index:02d}", base + index, age=index, segment="ab"[index % 2])
        )
    catalog = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]
    return name, catalog["Database"], catalog["TableName"]


def _run(athena, bucket, sql, database="sagemaker_featurestore"):
    query_id = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database, "Catalog": "AwsDataCatalog"},
        ResultConfiguration={"OutputLocation": f"s3://{bucket}/athena-results"},
    )["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return query_id, execution
        time.sleep(0.05)


def test_select_over_the_offline_store_with_results_in_s3(athena, s3, bucket, loaded_group):
    _, database, table = loaded_group
    sql = f'SELECT segment, count(*) AS n, max(age) AS oldest FROM "{database}"."{table}" GROUP BY 1 ORDER BY 1'
    query_id, execution = _run(athena, bucket, sql)
    assert execution["Status"]["State"] == "SUCCEEDED"
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{bucket}/athena-results/{query_id}.csv"
    body = s3.get_object(Bucket=bucket, Key=f"athena-results/{query_id}.csv")["Body"].read().decode()
    assert body.splitlines()[0] == '"segment","n","oldest"'
    assert list(csv.reader(io.StringIO(body)))[1:] == [["a", "15", "28"], ["b", "15", "29"]]
    results = athena.get_query_results(QueryExecutionId=query_id)
    assert [c["Type"] for c in results["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]] == [
        "varchar",
        "bigint",
        "bigint",
    ]
    assert [[d["VarCharValue"] for d in r["Data"]] for r in results["ResultSet"]["Rows"]] == [
        ["segment", "n", "oldest"],
        ["a", "15", "28"],
        ["b", "15", "29"],
    ]


def test_get_query_results_paginates(athena, bucket, loaded_group):
    _, database, table = loaded_group
    query_id, _ = _run(athena, bucket, f"SELECT customer_id FROM {table} ORDER BY customer_id", database)
    seen, token = [], None
    while True:
        page = athena.get_query_results(
            QueryExecutionId=query_id, MaxResults=7, **({"NextToken": token} if token else {})
        )
        seen += [r["Data"][0]["VarCharValue"] for r in page["ResultSet"]["Rows"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["customer_id"] + [f"c{i:02d}" for i in range(30)]


def test_presto_functions_and_added_columns(athena, bucket, loaded_group):
    _, database, table = loaded_group
    sql = (
        f"SELECT count(*) FROM {table} "
        "WHERE from_unixtime(event_time) >= from_iso8601_timestamp('2024-06-01T00:00:10Z') "
        f"AND NOT is_deleted AND write_time <= to_timestamp('2999-01-01 00:00:00', 'yyyy-mm-dd hh24:mi:ss')"
    )
    query_id, execution = _run(athena, bucket, sql, database)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == "20"


def test_syntax_error_fails_the_query_with_athena_reason(athena, bucket):
    query_id, execution = _run(athena, bucket, "SELEC 1")
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR: line 1:")
    assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2
    with pytest.raises(ClientError) as raised:
        athena.get_query_results(QueryExecutionId=query_id)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in raised.value.response["Error"]["Message"]


def test_query_over_a_missing_table_fails(athena, bucket):
    _, execution = _run(athena, bucket, "SELECT * FROM no_such_table")
    assert execution["Status"]["State"] == "FAILED"
    assert execution["Status"]["StateChangeReason"] == (
        "TABLE_NOT_FOUND: Table awsdatacatalog.sagemaker_featurestore.no_such_table does not exist"
    )


def test_unknown_query_id_and_missing_output_location(athena):
    with pytest.raises(ClientError) as raised:
        athena.get_query_execution(QueryExecutionId="00000000-0000-0000-0000-000000000000")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as raised:
        athena.start_query_execution(QueryString="SELECT 1")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "output location" in raised.value.response["Error"]["Message"]


def test_create_external_csv_table_then_query_it(athena, s3, bucket):
    s3.put_object(Bucket=bucket, Key="csv-table/part.csv", Body=b"1,`x`,2.5\n2,`y, z`,3.5\n")
    ddl = (
        "CREATE EXTERNAL TABLE csv_things (id INT, name STRING, score DOUBLE) "
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
        'WITH SERDEPROPERTIES ("separatorChar" = ",", "quoteChar" = "`", "escapeChar" = "\\\\") '
        f"LOCATION 's3://{bucket}/csv-table/';"
    )
    _, execution = _run(athena, bucket, ddl)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
    query_id, execution = _run(athena, bucket, "SELECT name, score * 2 AS twice FROM csv_things ORDER BY id")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    assert [[d["VarCharValue"] for d in r["Data"]] for r in rows[1:]] == [["x", "5.0"], ["y, z", "7.0"]]


def test_a_value_its_int_column_cannot_hold_fails_the_query_naming_the_column(athena, s3, bucket, loaded_group):
    """The SDK's DatasetBuilder declares int64 as INT: a value past 2^31 is the user's data problem (HIVE_BAD_DATA,
    a user error naming the column), not an internal error."""
    s3.put_object(Bucket=bucket, Key="int-table/part.csv", Body=b"1,a\n8589945525,b\n")
    ddl = (
        "CREATE EXTERNAL TABLE int_things (applicant_id INT, name STRING) "
        "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
        f"LOCATION 's3://{bucket}/int-table/';"
    )
    _, execution = _run(athena, bucket, ddl)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"].get("StateChangeReason")
    _, execution = _run(athena, bucket, "SELECT * FROM int_things")
    assert execution["Status"]["State"] == "FAILED"
    reason = execution["Status"]["StateChangeReason"]
    assert reason.startswith("HIVE_BAD_DATA: Error parsing column 'applicant_id' (int32)"), reason
    assert "8589945525" in reason
    assert execution["Status"]["AthenaError"]["ErrorCategory"] == 2
