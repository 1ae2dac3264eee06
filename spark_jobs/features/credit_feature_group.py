"""The credit features' feature group: keyed rows of the encoded DataFrame, the group made to fit, both stores written.

The processing entry (``credit.py --processing --feature-group <name> ...``) ingests every encoded row into a
SageMaker feature group instead of writing the training splits itself; the pipeline's ``TrainingSet`` step builds
them from the offline store with a point-in-time query. Each row is one credit application:

- ``applicant_id`` (``Integral``, the record identifier): the row's position in the input's read order, 0 to n - 1,
  stable for the same input file. Dense on purpose: the SageMaker SDK's ``DatasetBuilder`` declares an int64 column
  of its base DataFrame as Athena ``INT`` (32 bits), so Spark's ``monotonically_increasing_id`` (partition << 33)
  broke the point-in-time query from the second partition on (docs/feature-store.md#the-credit-risk-pipeline);
- ``event_time`` (``Fractional`` epoch seconds, whole milliseconds so the value survives every text round trip): when
  the job computed the features;
- the model's feature columns (``Encoding.feature_columns()``), every one ``Fractional``.

The label and the split are not features: they go to the ``entities`` output (the base of the point-in-time join).
See docs/feature-store.md#the-credit-risk-pipeline.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.config import AwsSettings
from spark_jobs.errors import FeatureJobError

logger = logging.getLogger(__name__)

RECORD_IDENTIFIER = "applicant_id"
EVENT_TIME = "event_time"
_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class FeatureGroupTarget:
    """The feature group the job writes: created when missing (online and offline store), features added when new."""

    name: str
    role_arn: str
    offline_uri: str


def event_time_now() -> float:
    """The current epoch seconds in whole milliseconds (exact as text in CSV, JSON and Athena's timestamps)."""
    return round(time.time(), 3)


_PARTITION, _POSITION = "__sagestack_partition", "__sagestack_position"


def keyed(encoded: DataFrame, event_time: float) -> DataFrame:
    """``encoded`` with ``applicant_id`` (0 to n - 1 in read order) and ``event_time`` first; cached, so every later
    pass sees the same ids."""
    tagged = encoded.select(
        F.spark_partition_id().alias(_PARTITION), F.monotonically_increasing_id().alias(_POSITION), *encoded.columns
    ).cache()
    offsets = _partition_offsets(tagged)
    # monotonically_increasing_id is (partition << 33) + the row's index in its partition
    within = F.col(_POSITION) - F.shiftleft(F.col(_PARTITION).cast("long"), 33)
    start = F.create_map(*(F.lit(value) for pair in offsets.items() for value in pair))[F.col(_PARTITION)]
    identifier = (start + within).cast("long").alias(RECORD_IDENTIFIER)
    frame = tagged.select(identifier, F.lit(event_time).alias(EVENT_TIME), *encoded.columns).cache()
    frame.count()
    tagged.unpersist()
    return frame


def _partition_offsets(tagged: DataFrame) -> dict[int, int]:
    """Each partition's first identifier: the rows of the partitions before it."""
    sizes = {int(row[0]): int(row[1]) for row in tagged.groupBy(_PARTITION).count().collect()}
    offsets, total = {}, 0
    for partition in sorted(sizes):
        offsets[partition] = total
        total += sizes[partition]
    return offsets or {0: 0}


def definitions(feature_names: list[str]) -> list[dict[str, str]]:
    head = [
        {"FeatureName": RECORD_IDENTIFIER, "FeatureType": "Integral"},
        {"FeatureName": EVENT_TIME, "FeatureType": "Fractional"},
    ]
    return head + [{"FeatureName": name, "FeatureType": "Fractional"} for name in feature_names]


def ensure_feature_group(aws: AwsSettings, target: FeatureGroupTarget, feature_names: list[str]) -> str:
    """The group's ARN once it exists in ``Created`` status with every one of ``feature_names``."""
    from botocore.exceptions import ClientError

    sm = aws.client("sagemaker")
    try:
        described = sm.describe_feature_group(FeatureGroupName=target.name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("ResourceNotFound", "ResourceNotFoundException"):
            raise
        logger.info("creating feature group %s (%d features)", target.name, len(feature_names))
        sm.create_feature_group(
            FeatureGroupName=target.name,
            RecordIdentifierFeatureName=RECORD_IDENTIFIER,
            EventTimeFeatureName=EVENT_TIME,
            FeatureDefinitions=definitions(feature_names),
            OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": target.offline_uri}},
            RoleArn=target.role_arn,
            Description="German credit features of the credit-risk pipeline",
        )
        described = _wait(sm, target.name, lambda d: d["FeatureGroupStatus"] != "Creating")
    if described["FeatureGroupStatus"] != "Created":
        raise FeatureJobError(
            f"feature group {target.name} is {described['FeatureGroupStatus']}",
            why=str(described.get("FailureReason") or "records can be written only to a Created group"),
            fix="delete the group (it is created again) or wait until it is Created",
        )
    _add_missing(sm, described, feature_names)
    return str(described["FeatureGroupArn"])


def _add_missing(sm: Any, described: dict[str, Any], feature_names: list[str]) -> None:
    """Features of this run's vocabulary that the group lacks (an earlier run saw other levels) are added."""
    known = {d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]}
    wrong = [n for n in feature_names if known.get(n, "Fractional") != "Fractional"]
    if wrong or known.get(RECORD_IDENTIFIER) != "Integral" or described["EventTimeFeatureName"] != EVENT_TIME:
        raise FeatureJobError(
            f"feature group {described['FeatureGroupName']} does not fit the credit features",
            why=f"its record identifier, event time or features {wrong} have other types or names",
            fix="pass another --feature-group name or delete that group",
        )
    additions = [d for d in definitions(feature_names) if d["FeatureName"] not in known]
    if not additions:
        return
    logger.info("adding %d features to feature group %s", len(additions), described["FeatureGroupName"])
    sm.update_feature_group(FeatureGroupName=described["FeatureGroupName"], FeatureAdditions=additions)
    _wait(
        sm,
        described["FeatureGroupName"],
        lambda d: (d.get("LastUpdateStatus") or {}).get("Status") != "InProgress",
    )


def _wait(sm: Any, name: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        described: dict[str, Any] = sm.describe_feature_group(FeatureGroupName=name)
        if done(described):
            return described
        if time.monotonic() > deadline:
            raise FeatureJobError(f"feature group {name} did not settle in {_WAIT_SECONDS:.0f} s")
        time.sleep(0.2)


def ingest(aws: AwsSettings, frame: DataFrame, arn: str, feature_names: list[str]) -> None:
    """Every row into both stores: the online store through the runtime API, the offline store as Parquet files."""
    from spark_jobs.feature_store import FeatureStoreManager

    columns = [RECORD_IDENTIFIER, EVENT_TIME, *feature_names]
    FeatureStoreManager(aws).ingest_data(frame.select(*columns), arn, ["OnlineStore", "OfflineStore"])
