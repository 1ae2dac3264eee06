"""SageMaker SDK v2's Feature Store, unchanged, against the stack: definitions, create, ingest, Athena, datasets."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sagemaker.feature_store.feature_group import FeatureGroup
from sagemaker.feature_store.feature_store import FeatureStore

from tests.integration.feature_store_helpers import ROLE, unique

_START = 1_700_000_000.0


def _history(customers: int = 40, versions: int = 4) -> pd.DataFrame:
    """Several versions of each customer's features, an hour apart, with jittered event times."""
    rng = np.random.default_rng(7)
    rows = []
    for customer in range(customers):
        for version in range(versions):
            rows.append(
                {
                    "customer_id": f"c{customer:03d}",
                    "event_time": _START + version * 3600 + float(rng.integers(0, 600)),
                    "age": int(20 + customer % 50 + version),
                    "balance": round(float(rng.normal(1000, 250)), 2),
                }
            )
    frame = pd.DataFrame(rows)
    frame["customer_id"] = frame["customer_id"].astype("string")
    return frame


def _wait_created(group: FeatureGroup) -> None:
    while group.describe()["FeatureGroupStatus"] == "Creating":
        time.sleep(0.1)
    assert group.describe()["FeatureGroupStatus"] == "Created"


@pytest.fixture
def customers(sdk_env, monkeypatch, tmp_path):
    session, bucket = sdk_env
    monkeypatch.chdir(tmp_path)  # the SDK downloads query results into the working directory
    frame = _history()
    group = FeatureGroup(name=unique("customers"), sagemaker_session=session)
    definitions = group.load_feature_definitions(frame)
    assert [(d.feature_name, d.feature_type.value) for d in definitions] == [
        ("customer_id", "String"),
        ("event_time", "Fractional"),
        ("age", "Integral"),
        ("balance", "Fractional"),
    ]
    group.create(
        s3_uri=f"s3://{bucket}/feature-store",
        record_identifier_name="customer_id",
        event_time_feature_name="event_time",
        role_arn=ROLE,
        enable_online_store=True,
    )
    _wait_created(group)
    manager = group.ingest(data_frame=frame, max_workers=3, wait=True)
    assert manager.failed_rows == []
    return session, bucket, group, frame


def test_ingest_then_read_the_newest_record_online(customers):
    _, _, group, frame = customers
    newest = frame.sort_values("event_time").groupby("customer_id").tail(1).set_index("customer_id")
    answer = group.get_record(record_identifier_value_as_string="c005")
    values = {f["FeatureName"]: f["ValueAsString"] for f in answer}
    assert int(values["age"]) == newest.loc["c005", "age"]
    assert float(values["event_time"]) == newest.loc["c005", "event_time"]


def test_athena_query_reads_every_ingested_record(customers):
    _, bucket, group, frame = customers
    query = group.athena_query()
    query.run(query_string=f'SELECT * FROM "{query.table_name}"', output_location=f"s3://{bucket}/athena")
    query.wait()
    result = query.as_dataframe()
    assert len(result) == len(frame)
    assert {"write_time", "api_invocation_time", "is_deleted"} <= set(result.columns)
    merged = result.sort_values(["customer_id", "event_time"]).reset_index(drop=True)
    expected = frame.sort_values(["customer_id", "event_time"]).reset_index(drop=True)
    assert merged["age"].tolist() == expected["age"].tolist()
    assert np.allclose(merged["balance"], expected["balance"])


def test_point_in_time_dataset_matches_merge_asof(customers):
    session, bucket, group, frame = customers
    rng = np.random.default_rng(11)
    labels = pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(40)],
            "event_time": [_START + float(rng.integers(0, 4 * 3600)) for _ in range(40)],
            "label": rng.integers(0, 2, 40),
        }
    )
    labels["customer_id"] = labels["customer_id"].astype(object)  # the SDK maps only "object" (not pandas 3's "str")
    dataset, query = (
        FeatureStore(sagemaker_session=session)
        .create_dataset(
            base=labels,
            output_path=f"s3://{bucket}/datasets",
            record_identifier_feature_name="customer_id",
            event_time_identifier_feature_name="event_time",
        )
        .with_feature_group(group, target_feature_name_in_base="customer_id", included_feature_names=["age", "balance"])
        .point_in_time_accurate_join()
        .with_number_of_recent_records_by_record_identifier(1)
        .to_dataframe()
    )
    assert "from_unixtime" in query
    reference = pd.merge_asof(
        labels.sort_values("event_time"),
        frame.astype({"customer_id": object}).sort_values("event_time").rename(columns={"event_time": "feature_time"}),
        left_on="event_time",
        right_on="feature_time",
        by="customer_id",
        direction="backward",
    )
    reference = reference.set_index("customer_id").sort_index()
    got = dataset.set_index("customer_id").sort_index()
    before_any = reference["age"].isna()
    assert sorted(got.index) == sorted(reference.index[~before_any])  # an inner join: no feature yet, no row
    assert len(got) > 20
    joined = got.loc[reference.index[~before_any]]
    assert joined["age.1"].tolist() == reference.loc[~before_any, "age"].astype(int).tolist()
    assert np.allclose(joined["balance.1"], reference.loc[~before_any, "balance"])
    assert joined["label"].tolist() == reference.loc[~before_any, "label"].tolist()
