"""The endpoint transformer against a fake runtime that throttles and fails: every row scored once, in order."""

from __future__ import annotations

import pytest

from spark_jobs.config import AwsSettings
from spark_jobs.endpoint_scoring.endpoint_transformer import BatchingPolicy, EndpointTransformer, RuntimeClientFactory
from spark_jobs.endpoint_scoring.invoker import RetryPolicy
from spark_jobs.errors import EndpointModelError, EndpointNotFoundError, InputDataError, PayloadTooLargeError

FEATURES = ("id_f", "x1", "x2", "x3")


def _transformer(url: str, name: str = "scorer", **kwargs) -> EndpointTransformer:
    return EndpointTransformer(
        endpoint_name=name,
        features_col=None,
        feature_columns=FEATURES,
        client_factory=RuntimeClientFactory(AwsSettings(endpoint_url=url, region="us-east-1")),
        retry=RetryPolicy(max_attempts=10, base_delay_s=0.005, max_delay_s=0.05),
        **kwargs,
    )


def _frame(spark, rows: int, partitions: int = 3):
    return spark.range(rows, numPartitions=partitions).selectExpr(
        "id",
        "cast(id as double) as id_f",
        "cast(id as double) * 0.5 as x1",
        "cast(id % 7 as double) as x2",
        "cast(1 as double) as x3",
    )


def test_every_row_scored_exactly_once_in_order_despite_throttling_and_5xx(spark, fake_runtime):
    rows = 4000
    batching = BatchingPolicy(max_rows_per_request=97, max_bytes_per_request=4096, concurrency=3)
    out = _transformer(fake_runtime.url, batching=batching).transform(_frame(spark, rows)).collect()
    assert [r["id"] for r in out] == list(range(rows))
    assert all(r["prediction"] == r["id"] * 10 + r["x1"] + r["x2"] + r["x3"] for r in out)
    assert fake_runtime.throttled > 0 and fake_runtime.failed > 0
    assert set(fake_runtime.served) == set(range(rows))
    assert max(fake_runtime.served.values()) == 1
    assert fake_runtime.max_rows_seen <= 97 and fake_runtime.max_bytes_seen <= 4096


def test_model_error_is_not_retried_and_names_endpoint_and_container_message(spark, fake_runtime):
    with pytest.raises(Exception) as info:
        _transformer(fake_runtime.url, name="broken").transform(_frame(spark, 10, 1)).collect()
    text = str(info.value)
    assert "EndpointModelError" in text and "'broken'" in text and "feature count 3 != 5" in text


def test_missing_endpoint_is_a_clear_error(spark, fake_runtime):
    with pytest.raises(Exception) as info:
        _transformer(fake_runtime.url, name="nope").transform(_frame(spark, 5, 1)).collect()
    assert "EndpointNotFoundError" in str(info.value) and "'nope'" in str(info.value)


def test_row_over_the_byte_limit_is_rejected(spark, fake_runtime):
    tiny = BatchingPolicy(max_rows_per_request=10, max_bytes_per_request=8)
    with pytest.raises(Exception) as info:
        _transformer(fake_runtime.url, batching=tiny).transform(_frame(spark, 5, 1)).collect()
    assert "PayloadTooLargeError" in str(info.value)


def test_nulls_in_features_are_an_error_naming_the_column(spark, fake_runtime):
    df = _frame(spark, 5, 1).selectExpr("id", "id_f", "if(id = 3, null, x1) as x1", "x2", "x3")
    with pytest.raises(Exception) as info:
        _transformer(fake_runtime.url).transform(df).collect()
    assert "InputDataError" in str(info.value) and "x1" in str(info.value)


def test_schema_problems_fail_on_the_driver(spark, fake_runtime):
    df = _frame(spark, 5, 1)
    with pytest.raises(InputDataError, match="missing"):
        _transformer(fake_runtime.url).transform(df.drop("x2"))
    with pytest.raises(InputDataError, match="non-numeric"):
        _transformer(fake_runtime.url).transform(df.withColumn("x2", df["x2"].cast("string")))
    with pytest.raises(InputDataError, match="already exist"):
        _transformer(fake_runtime.url).transform(df.withColumn("prediction", df["x1"]))


def test_typed_errors_pickle_with_their_fields():
    import pickle

    for cls in (EndpointModelError, EndpointNotFoundError, PayloadTooLargeError):
        err = pickle.loads(pickle.dumps(cls("what", "why", "fix")))
        assert (type(err), err.what, err.why, err.fix) == (cls, "what", "why", "fix")
