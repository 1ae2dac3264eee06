"""point_in_time_dataset: a training set built with the SDK's point-in-time join over the offline store.

``SAGESTACK_BENCH_PIT_RECORDS`` feature records (default 1,000,000: 100,000 customers x 10 versions) are in a
feature group's offline store; one label row per customer is joined with
``FeatureStore.create_dataset(...).with_feature_group(...).point_in_time_accurate_join()
.with_number_of_recent_records_by_record_identifier(1).to_dataframe()`` (SDK v2, Athena SQL run by DuckDB).
Anchor: ``pandas.merge_asof`` on the same records in memory. seconds: the SDK call end to end (goal <= 30).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._feature_store import BUCKET, client, create_group, start_stack
from benchmarks.common import emit
from infra.cli import env_lines, write_sdk_config

VERSIONS = 10
START = 1_700_000_000.0


def features(records: int) -> pd.DataFrame:
    customers = records // VERSIONS
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(customers), VERSIONS)
    return pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i:07d}" for i in ids], dtype=object),
            "event_time": START + np.tile(np.arange(VERSIONS) * 3600.0, customers) + rng.integers(0, 600, records),
            "age": rng.integers(18, 90, records),
            "balance": rng.normal(1000, 250, records).round(2),
            "segment": pd.Series(rng.choice(["a", "b"], records), dtype=object),
        }
    )


def write_offline(url: str, uri: str, frame: pd.DataFrame) -> None:
    """The records as offline-store Parquet files (the layout and added columns of docs/feature-store.md)."""
    s3 = client(url, "s3")
    prefix = uri[len(f"s3://{BUCKET}/") :]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_datetime64()
    table = table.append_column("write_time", pa.array(np.full(len(frame), now, dtype="datetime64[ms]")))
    table = table.append_column("api_invocation_time", table.column("write_time"))
    table = table.append_column("is_deleted", pa.array(np.zeros(len(frame), dtype=bool)))
    for index, start in enumerate(range(0, len(frame), 250_000)):
        sink = io.BytesIO()
        pq.write_table(table.slice(start, 250_000), sink)
        key = f"{prefix}/year=2023/month=11/day=14/hour=22/20231114T220000Z_{index:016d}.parquet"
        s3.put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue())


def main() -> None:
    records = int(os.environ.get("SAGESTACK_BENCH_PIT_RECORDS", "1000000"))
    frame = features(records)
    customers = records // VERSIONS
    rng = np.random.default_rng(9)
    labels = pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i:07d}" for i in range(customers)], dtype=object),
            "event_time": START + rng.integers(3600, VERSIONS * 3600, customers).astype(float),
            "label": rng.integers(0, 2, customers),
        }
    )
    begin = time.perf_counter()
    reference = pd.merge_asof(
        labels.sort_values("event_time"),
        frame.sort_values("event_time").rename(columns={"event_time": "feature_time"}),
        left_on="event_time",
        right_on="feature_time",
        by="customer_id",
    )
    anchor = time.perf_counter() - begin
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp) / "stack")
        for line in env_lines(stack.settings, write_sdk_config(stack.settings, BUCKET)):  # telemetry off, endpoint
            key, _, value = line.removeprefix("export ").partition("=")
            os.environ[key] = value
        os.chdir(tmp)  # the SDK downloads the dataset into the working directory
        try:
            described = create_group(stack.url, online=False)
            write_offline(stack.url, described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"], frame)
            import boto3
            from sagemaker.feature_store.feature_group import FeatureGroup
            from sagemaker.feature_store.feature_store import FeatureStore
            from sagemaker.session import Session

            session = Session(boto_session=boto3.Session(region_name="us-east-1"))
            group = FeatureGroup(name=described["FeatureGroupName"], sagemaker_session=session)
            begin = time.perf_counter()
            dataset, _ = (
                FeatureStore(sagemaker_session=session)
                .create_dataset(
                    base=labels,
                    output_path=f"s3://{BUCKET}/datasets",
                    record_identifier_feature_name="customer_id",
                    event_time_identifier_feature_name="event_time",
                )
                .with_feature_group(group, included_feature_names=["age", "balance", "segment"])
                .point_in_time_accurate_join()
                .with_number_of_recent_records_by_record_identifier(1)
                .to_dataframe()
            )
            seconds = time.perf_counter() - begin
        finally:
            stack.stop()
    matched = int(reference["age"].notna().sum())
    agrees = len(dataset) == matched
    emit(
        "point_in_time_dataset",
        f"{records} feature records, {customers} label rows; rows match merge_asof: {agrees}",
        seconds=seconds,
        anchor_seconds=anchor,
        ratio=seconds / anchor,
        rows=len(dataset),
    )


if __name__ == "__main__":
    main()
