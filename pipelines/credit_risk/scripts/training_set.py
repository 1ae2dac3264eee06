"""TrainingSet step (runs inside a SageMaker processing container): the training splits from the offline store.

The Features step put every encoded credit application into a feature group and wrote ``entities.csv``
(``applicant_id``, ``event_time``, ``split``, ``risk``) and ``feature_names.json`` (the model's columns in order).
Here the SageMaker SDK's ``DatasetBuilder`` joins those entities to the feature group's offline store with a
point-in-time accurate query (Athena): each application gets the newest features whose event time is not after its
own. The rows are then written as the six outputs the rest of the pipeline reads (same layout as the feature job's
direct outputs: label first, whole numbers as integers, other numbers in shortest round-trip form):

``train`` ``validation`` ``test`` (no header), ``test_features`` (no label), ``labelled_train`` ``labelled_test``
(header), and ``online_scoring`` (``applicant_id,risk`` of the test split plus ``feature_names.json``: what
``make score`` reads, fetching each row's features from the online store).

Arguments: ``--feature-group <name> --output-path s3://.../training-set`` (where the SDK stages the base table and
Athena writes its results). Needs the SageMaker Python SDK in the image (the stack's processing jobs run with it).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)
BASE = Path("/opt/ml/processing")
IDENTIFIER, EVENT_TIME, SPLIT, LABEL = "applicant_id", "event_time", "split", "risk"
# output name -> (split, label first, header)
OUTPUTS = {
    "train": ("train", True, False),
    "validation": ("validation", True, False),
    "test": ("test", True, False),
    "test_features": ("test", False, False),
    "labelled_train": ("train", True, True),
    "labelled_test": ("test", True, True),
}
SCORING = "online_scoring"
# the SDK's defaults: no telemetry calls from inside a job (they would go to AWS whatever the endpoint)
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def format_value(value: Any) -> str:
    """A CSV cell: empty for null/NaN, whole numbers as integers, other numbers in shortest round-trip form.

    The feature job's own rule (``spark_jobs.features.processing.format_value``): this script runs alone in its
    container, so it keeps a copy, and tests/spark/test_credit_processing.py holds the two to the same answers."""
    if value is None:
        return ""
    number = float(value)
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() else repr(number)


def point_in_time_rows(
    session: Any, feature_group: str, entities: pd.DataFrame, features: list[str], output_path: str
) -> pd.DataFrame:
    """One row per entity: its label, split and the newest features at or before its event time (SDK v2)."""
    from sagemaker.feature_store.feature_group import FeatureGroup
    from sagemaker.feature_store.feature_store import FeatureStore

    base = entities[[IDENTIFIER, EVENT_TIME, SPLIT, LABEL]].astype({SPLIT: object})
    group = FeatureGroup(name=feature_group, sagemaker_session=session)
    with tempfile.TemporaryDirectory() as scratch:  # the SDK downloads the query result into the working directory
        here = os.getcwd()
        os.chdir(scratch)
        try:
            dataset, query = (
                FeatureStore(sagemaker_session=session)
                .create_dataset(
                    base=base,
                    output_path=output_path,
                    record_identifier_feature_name=IDENTIFIER,
                    event_time_identifier_feature_name=EVENT_TIME,
                )
                # (a copy: the SDK appends the identifier and event time to the list it is given)
                .with_feature_group(
                    group, target_feature_name_in_base=IDENTIFIER, included_feature_names=list(features)
                )
                .point_in_time_accurate_join()
                .with_number_of_recent_records_by_record_identifier(1)
                .to_dataframe()
            )
        finally:
            os.chdir(here)
    logger.info("point-in-time query over %s:\n%s", feature_group, query)
    return _model_columns(dataset, entities, features)


def _model_columns(dataset: pd.DataFrame, entities: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The joined rows in the entities' order with ``split``, ``risk`` and the features (the group's copies)."""
    logger.info("point-in-time dataset columns: %s", list(dataset.columns))
    renamed = {f"{name}.1": name for name in features if f"{name}.1" in dataset.columns}
    frame = dataset.rename(columns=renamed)
    missing = set(entities[IDENTIFIER]) - set(frame[IDENTIFIER])
    if missing or len(frame) != len(entities):
        raise RuntimeError(
            f"the point-in-time join returned {len(frame)} rows for {len(entities)} entities; "
            f"{len(missing)} have no features at or before their event time (e.g. {sorted(missing)[:5]})"
        )
    order = entities[IDENTIFIER].tolist()
    rows = frame.set_index(IDENTIFIER).loc[order, [SPLIT, LABEL, *features]].reset_index(drop=True)
    rows.insert(0, IDENTIFIER, order)
    return rows


def write_outputs(rows: pd.DataFrame, features: list[str], base: Path) -> dict[str, int]:
    """The six training outputs and ``online_scoring``; rows written per output."""
    counts = {}
    for name, (split, label, header) in OUTPUTS.items():
        chosen = rows[rows[SPLIT] == split]
        columns = [LABEL, *features] if label else features
        counts[name] = _write_csv(base / name / f"{name}.csv", columns if header else None, chosen[columns].values)
    test = rows[rows[SPLIT] == "test"]
    scoring = base / SCORING
    _write_csv(scoring / f"{SCORING}.csv", [IDENTIFIER, LABEL], test[[IDENTIFIER, LABEL]].values)
    (scoring / "feature_names.json").write_text(json.dumps(features), encoding="utf-8")
    counts[SCORING] = len(test)
    return counts


def _write_csv(path: Path, header: list[str] | None, values: Iterable[Any]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header:
            writer.writerow(header)
        for row in values:
            writer.writerow([format_value(v) for v in row])
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description="the training splits from the offline store (point in time)")
    parser.add_argument("--feature-group", required=True)
    parser.add_argument("--output-path", required=True, help="s3:// prefix for the SDK's base table and Athena")
    parser.add_argument("--base", type=Path, default=BASE)
    args = parser.parse_args(argv)
    import boto3
    import sagemaker

    entities = pd.read_csv(args.base / "entities" / "entities.csv")
    features = json.loads((args.base / "entities" / "feature_names.json").read_text(encoding="utf-8"))
    session = sagemaker.Session(boto_session=boto3.Session(), sagemaker_config=SDK_CONFIG)
    rows = point_in_time_rows(session, args.feature_group, entities, features, args.output_path)
    for name, count in write_outputs(rows, features, args.base).items():
        logger.info("%s: %d rows", name, count)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
