"""German credit feature functions on tiny frames, and the job end to end (local dir and S3 on the local stack)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pyspark.sql import functions as F

from spark_jobs.config import AwsSettings
from spark_jobs.errors import FeatureJobError, InputDataError
from spark_jobs.features import credit
from spark_jobs.features.cli import parse_args, run
from spark_jobs.recordio_protobuf import encode_dense, read_records

COLUMNS = [
    "risk",
    "sex",
    "job",
    "housing",
    "saving_accounts",
    "checking_account",
    "credit_amount",
    "duration",
    "purpose",
    "age",
]
ROWS = [
    ("1", "male", "2", "own", "not_known", "little", "1169", "6", "radio/TV", "67"),
    ("0", " Female", "2", "own", "little", "moderate", "5951", "48", "radio/TV", "22"),
    ("1", "male", "1", "rent", "little", "NA", "abc", "12", "education", "49"),
    ("x", "male", "1", "rent", "little", "rich", "100", "12", "car", "30"),
]


@pytest.fixture(scope="module")
def raw(spark):
    return spark.createDataFrame(ROWS, COLUMNS)


def test_clean_normalises_missing_tokens_types_and_drops_bad_labels(raw):
    rows = credit.clean(raw).orderBy("age").collect()
    assert len(rows) == 3 and credit.invalid_label_rows(raw).count() == 1
    assert rows[0]["sex"] == "female" and rows[0]["risk"] == 0.0
    assert rows[1]["checking_account"] is None and rows[1]["credit_amount"] is None  # NA and "abc"
    assert rows[2]["saving_accounts"] is None  # not_known


def test_missing_columns_are_named(raw):
    with pytest.raises(InputDataError, match="purpose"):
        credit.clean(raw.drop("purpose"))


def test_split_is_reproducible_stratified_and_independent_of_partitioning(spark):
    df = spark.read.csv("data/german_credit.csv", header=True)
    a = credit.assign_split(credit.clean(df), seed=7)
    b = credit.assign_split(credit.clean(df.repartition(3).orderBy("age")), seed=7)
    key = ["credit_amount", "duration", "age", "purpose", "sex", "housing", "job", "risk"]
    left = sorted(tuple(r) for r in a.select(*key, "split").collect())
    assert left == sorted(tuple(r) for r in b.select(*key, "split").collect())
    counts = {(r["split"], r["risk"]): r["count"] for r in a.groupBy("split", "risk").count().collect()}
    # 700 good / 300 bad risks, each class split 70/15/15 exactly
    assert counts == {
        ("train", 1.0): 490,
        ("validation", 1.0): 105,
        ("test", 1.0): 105,
        ("train", 0.0): 210,
        ("validation", 0.0): 45,
        ("test", 0.0): 45,
    }
    other = credit.assign_split(credit.clean(df), seed=8).select(*key, "split").collect()
    assert sorted(tuple(r) for r in other) != left


def test_split_fractions_of_zero_leave_a_split_empty(spark):
    df = credit.clean(spark.read.csv("data/german_credit.csv", header=True))
    split = credit.assign_split(df, seed=1, fractions=credit.SplitFractions(0.0, 0.5, 0.5))
    counts = {r["split"]: r["count"] for r in split.groupBy("split").count().collect()}
    assert counts == {"validation": 500, "test": 500}


def test_split_fractions_are_parsed_and_checked():
    assert credit.SplitFractions.parse("0.8,0.1,0.1") == credit.SplitFractions(0.8, 0.1, 0.1)
    with pytest.raises(FeatureJobError, match="not three numbers"):
        credit.SplitFractions.parse("0.8,0.2")
    with pytest.raises(FeatureJobError, match="sum to 1"):
        credit.SplitFractions.parse("0.8,0.2,0.2")


def test_encoding_is_sorted_imputed_and_label_first(raw):
    cleaned = credit.clean(raw)
    encoding = credit.fit_encoding(cleaned)
    assert encoding.levels["checking_account"] == ("little", "missing", "moderate")
    assert encoding.medians["credit_amount"] in (1169.0, 5951.0)
    encoded = credit.encode(cleaned, encoding)
    assert encoded.columns[0] == "risk" and encoded.columns[1:] == encoding.feature_columns()
    assert encoding.feature_columns()[:5] == ["job", "credit_amount", "duration", "age", "sex"]
    row = encoded.where("age = 49").first()
    assert row["credit_amount"] == encoding.medians["credit_amount"] and row["checking_account__missing"] == 1.0
    assert all(isinstance(v, float) for v in row)
    assert {r["age"]: r["sex"] for r in encoded.select("age", "sex").collect()} == {67.0: 0.0, 22.0: 1.0, 49.0: 0.0}


def test_levels_come_from_every_row_and_medians_from_train_only(raw):
    cleaned = credit.clean(raw).withColumn("split", F.when(F.col("age") == 22, "test").otherwise("train"))
    encoding = credit.fit_encoding(cleaned)
    assert "moderate" in encoding.levels["checking_account"]  # only in the test row
    assert encoding.medians["age"] in (49.0, 67.0)  # the test row's 22 does not count


def test_label_first_moves_the_label(raw):
    assert credit.label_first(raw.select("age", "risk"), "risk").columns == ["risk", "age"]


def test_recordio_writer_matches_the_documented_bytes_and_the_sdk_reader():
    body, offsets = encode_dense(np.array([[1, 2, 3]], dtype=np.float32), np.array([1.0]))
    assert body.hex() == (
        "0a23d7ce300000000a1a0a0676616c75657312101 20e0a0c0000803f0000004000004040"
        "12120a0676616c75657312081206 0a040000803f"
    ).replace(" ", "")
    from sagemaker.amazon.common import read_records as sdk_read

    x = np.random.default_rng(1).normal(size=(20, 7)).astype(np.float32)
    body, offsets = encode_dense(x, np.arange(20))
    records = sdk_read(io.BytesIO(body))
    assert len(records) == 20 and list(offsets[:2]) == [0, len(body) // 20]
    assert np.allclose(records[3].features["values"].float32_tensor.values, x[3])
    assert [r["label"]["values"][0] for r in read_records(body)] == list(range(20))


def test_job_writes_channels_baseline_and_manifest_locally(spark, tmp_path):
    manifest_uri = run(parse_args(["--output", str(tmp_path)]), AwsSettings())
    manifest = json.loads(open(manifest_uri).read())
    channels = manifest["channels"]
    total = sum(channels[s]["csv"]["rows"] for s in ("train", "validation", "test"))
    assert total == 1000 and manifest["dropped_rows"] == {"invalid_label": 0}
    for split in ("train", "validation", "test"):
        assert (
            channels[split]["csv"]["rows"] == channels[split]["parquet"]["rows"] == channels[split]["recordio"]["rows"]
        )
    train_csv = np.loadtxt(tmp_path / "train/csv/part-00000.csv", delimiter=",", ndmin=2)
    assert train_csv.shape == (channels["train"]["csv"]["rows"], 1 + len(manifest["features"]))
    assert set(np.unique(train_csv[:, 0])) <= {0.0, 1.0}
    records = read_records((tmp_path / "train/recordio/part-00000.pbr").read_bytes())
    assert np.allclose(records[0]["features"]["values"], train_csv[0, 1:], rtol=1e-6)
    assert records[0]["label"]["values"][0] == train_csv[0, 0]
    header = (tmp_path / "baseline/part-00000.csv").read_text().split("\n", 1)[0]
    assert header.replace('"', "").split(",") == manifest["features"]


def test_job_writes_to_s3_through_executors(spark, stack_url, s3, bucket):
    aws = AwsSettings(endpoint_url=stack_url, region="us-east-1")
    uri = run(parse_args(["--output", f"s3://{bucket}/features/credit", "--formats", "csv,recordio"]), aws)
    assert uri == f"s3://{bucket}/features/credit/manifest.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="features/credit/")["Contents"]}
    assert "features/credit/train/csv/part-00000.csv" in keys
    assert "features/credit/train/recordio/part-00000.pbr" in keys
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="features/credit/manifest.json")["Body"].read())
    assert set(manifest["channels"]["train"]) == {"csv", "recordio"}
