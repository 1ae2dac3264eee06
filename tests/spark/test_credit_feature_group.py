"""The credit-risk pipeline's feature path through the Feature Store: the feature job ingests into a feature group,
the TrainingSet script rebuilds the six outputs with a point-in-time query, and they equal the job's direct outputs.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from spark_jobs.features import processing
from tests.integration.feature_store_helpers import ROLE, client, unique

DATA = "data/german_credit.csv"
SCRIPT = Path("pipelines/credit_risk/scripts/training_set.py")


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("training_set", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def ingested(spark, sdk_env_module, tmp_path_factory):
    session, bucket = sdk_env_module
    base = tmp_path_factory.mktemp("credit-fg")
    group = unique("credit-features")
    argv = ["--processing", "--input", DATA, "--output", str(base / "job"), "--feature-group", group]
    argv += ["--feature-group-role", ROLE, "--offline-store-uri", f"s3://{bucket}/credit-risk/feature-store"]
    counts = processing.run(processing.parse_args(argv))
    direct = base / "direct"
    processing.run(processing.parse_args(["--processing", "--input", DATA, "--output", str(direct)]))
    return session, bucket, group, base, counts, direct


def test_the_feature_job_writes_the_group_and_the_entities(ingested, stack_url):
    _, _, group, base, counts, _ = ingested
    assert counts == {"entities": 1000}
    entities = pd.read_csv(base / "job" / "entities" / "entities.csv")
    assert list(entities.columns) == ["applicant_id", "event_time", "split", "risk"]
    assert entities["applicant_id"].is_unique and entities["split"].value_counts().to_dict() == {
        "train": 700,
        "validation": 150,
        "test": 150,
    }
    features = json.loads((base / "job" / "entities" / "feature_names.json").read_text())
    sm = client(stack_url, "sagemaker")
    described = sm.describe_feature_group(FeatureGroupName=group)
    names = [d["FeatureName"] for d in described["FeatureDefinitions"]]
    assert names == ["applicant_id", "event_time", *features]
    fsr = client(stack_url, "sagemaker-featurestore-runtime")
    some = [str(i) for i in entities["applicant_id"][:3]]
    answer = fsr.batch_get_record(Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": some}])
    assert sorted(r["RecordIdentifierValueAsString"] for r in answer["Records"]) == sorted(some)


def test_the_training_set_from_the_offline_store_equals_the_direct_outputs(ingested, tmp_path):
    session, bucket, group, base, _, direct = ingested
    script = _script()
    entities = pd.read_csv(base / "job" / "entities" / "entities.csv")
    features = json.loads((base / "job" / "entities" / "feature_names.json").read_text())
    rows = script.point_in_time_rows(session, group, entities, features, f"s3://{bucket}/credit-risk/training-set")
    counts = script.write_outputs(rows, features, tmp_path)
    assert counts["train"] == 700 and counts["online_scoring"] == 150
    for name in processing.OUTPUTS:
        assert _rows(tmp_path / name.name / f"{name.name}.csv") == _rows(direct / name.name / f"{name.name}.csv")


def test_identifiers_are_the_rows_positions_across_partitions(spark):
    """The identifiers fit the 32-bit INT the SDK's DatasetBuilder declares: 0 to n - 1 in read order, whatever the
    partitioning (monotonically_increasing_id starts the second partition at 2^33)."""
    from spark_jobs.features.credit_feature_group import keyed

    encoded = spark.range(0, 1000, numPartitions=7).selectExpr("id * 10 AS value")
    frame = keyed(encoded, 1.5)
    rows = frame.orderBy("applicant_id").collect()
    assert [row["applicant_id"] for row in rows] == list(range(1000))
    assert [row["value"] for row in rows] == [10 * i for i in range(1000)]
    assert frame.columns == ["applicant_id", "event_time", "value"]
    assert {row["event_time"] for row in rows} == {1.5}
