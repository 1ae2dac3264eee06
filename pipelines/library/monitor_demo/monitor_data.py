"""German credit data for the monitor demo: the splits the credit-risk pipeline's ``Features`` step wrote.

The step (``spark_jobs/features/credit.py --processing``, a stratified seeded-hash split) writes its outputs to fixed
folders ``s3://<bucket>/<pipeline>/features/<folder>`` (``FEATURE_OUTPUTS`` in ``pipelines/credit_risk/pipeline.py``).
``load_splits`` reads two of them, both CSV with a header and the label first: ``labelled_train`` (the model's
training rows: the baseline) and ``labelled_test`` (the test split, never trained on: the normal traffic). The
model's input columns, in the model's order, are that header's. Traffic starts from the test rows decoded back to
the raw CSV's columns (each one-hot group to its level) and is encoded again by ``pipelines.credit_risk.encoding``,
so the normal traffic is exactly the test split; drifted traffic shifts numeric features, introduces categories the
model never saw and leaves cells empty.

``load`` is the older offline stand-in (the CSV re-split with scikit-learn, which is *not* the pipeline's split):
it is kept only for the callers that still use it (``pipelines/library/deployment/deployment_health.py``,
``tests/pipelines/test_deploy.py``).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError

from pipelines.credit_risk.encoding import BINARY, BINARY_POSITIVE, CATEGORICAL, LABEL, NUMERIC, build_table
from pipelines.credit_risk.pipeline import FEATURE_OUTPUTS

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
DATASET = ROOT / "data" / "german_credit.csv"
PIPELINE = "credit-risk"  # `make pipeline`'s default pipeline name
TRAIN_FOLDER = FEATURE_OUTPUTS["labelled_train"]
TEST_FOLDER = FEATURE_OUTPUTS["labelled_test"]
SEED = 42
BINARY_NEGATIVE = "male"
NEW_PURPOSE = "cryptocurrency"  # a purpose the model never saw: every purpose__* one-hot column is 0
NEW_JOB = 4  # job is an integer category 0-3 in the training data

__all__ = ["LABEL", "CreditData", "S3Splits", "SplitsError", "csv_lines", "encode", "load", "load_splits"]


class SplitsError(RuntimeError):
    """The pipeline's splits cannot be read; the message names the S3 prefix and what to do."""


class SplitReader(Protocol):
    """Where the feature step's outputs are: the text of each CSV file of one output folder."""

    def describe(self, folder: str) -> str: ...

    def read(self, folder: str) -> list[str]: ...


@dataclass(frozen=True)
class CreditData:
    columns: list[str]  # the model's input columns, in order
    train: pd.DataFrame  # the training rows as the model saw them (label first, then ``columns``)
    holdout_raw: pd.DataFrame  # held-out rows in the raw CSV's columns (label included): the normal traffic


@dataclass(frozen=True)
class S3Splits:
    """The outputs of the ``Features`` step of ``pipeline`` in ``bucket`` (an S3 client of the target)."""

    s3: Any
    bucket: str
    pipeline: str = PIPELINE

    def describe(self, folder: str) -> str:
        return f"s3://{self.bucket}/{self._prefix(folder)}"

    def read(self, folder: str) -> list[str]:
        """Every ``*.csv`` object under the folder, in key order; ``SplitsError`` when there is none."""
        prefix = self._prefix(folder)
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".csv"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
                raise SplitsError(f"cannot list {self.describe(folder)}: {exc}") from exc
            keys = []
        if not keys:
            raise SplitsError(
                f"no {folder} split under {self.describe(folder)}: run `make pipeline` first "
                f"(its Features step writes the {self.pipeline} pipeline's splits there)"
            )
        return [self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode() for key in keys]

    def _prefix(self, folder: str) -> str:
        return f"{self.pipeline}/features/{folder}/"


def load_splits(reader: SplitReader) -> CreditData:
    """The pipeline's training split (baseline) and test split (traffic), as the feature step wrote them."""
    train = _read_split(reader, TRAIN_FOLDER)
    test = _read_split(reader, TEST_FOLDER)
    if list(test.columns) != list(train.columns):
        raise SplitsError(
            f"{reader.describe(TEST_FOLDER)} and {reader.describe(TRAIN_FOLDER)} have different columns: "
            "run `make pipeline` again so both come from one execution"
        )
    columns = [str(c) for c in train.columns[1:]]
    logger.info("splits: %d training rows, %d test rows, %d input columns", len(train), len(test), len(columns))
    return CreditData(columns=columns, train=train, holdout_raw=decode(test, columns))


def _read_split(reader: SplitReader, folder: str) -> pd.DataFrame:
    frames = [pd.read_csv(io.StringIO(text), dtype=np.float64) for text in reader.read(folder) if text.strip()]
    if not frames or frames[0].columns[0] != LABEL:
        raise SplitsError(
            f"{reader.describe(folder)} is not a labelled split (CSV with a header, {LABEL!r} first): "
            "run `make pipeline` again"
        )
    return pd.concat(frames, ignore_index=True)


def decode(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Encoded rows (label, then ``columns``) back in the raw CSV's columns: ``sex`` from its 0/1 column, each
    categorical from the one-hot column that is 1 (its level as the column names it; none: an empty cell).
    ``encode`` of the result gives ``table[columns]`` again."""
    raw: dict[str, Any] = {LABEL: table[LABEL].astype("int64")}
    for column in NUMERIC:
        raw[column] = table[column]
    raw[BINARY] = np.where(table[BINARY] == 1, BINARY_POSITIVE, BINARY_NEGATIVE)
    for column in CATEGORICAL:
        group = [c for c in columns if c.startswith(f"{column}__")]
        hot = table[group].to_numpy()
        levels = np.array([c.removeprefix(f"{column}__") for c in group], dtype=object)
        raw[column] = np.where(hot.max(axis=1) == 1, levels[hot.argmax(axis=1)], None) if group else None
    return pd.DataFrame(raw, index=table.index)


def load(path: Path = DATASET, seed: int = SEED) -> CreditData:
    """Offline stand-in for ``load_splits``: a stratified 70/30 re-split of the CSV with scikit-learn. It is not
    the pipeline's split (its holdout overlaps the model's training rows); kept for the callers named above."""
    from sklearn.model_selection import train_test_split

    raw = pd.read_csv(path)
    table = build_table(raw)
    train, rest = train_test_split(table, test_size=0.3, random_state=seed, stratify=table[LABEL])
    columns = [str(c) for c in table.columns if c != LABEL]
    return CreditData(columns=columns, train=train, holdout_raw=raw.loc[rest.index])


def continuous_columns(table: pd.DataFrame, max_categories: int = 20) -> list[str]:
    """Numeric columns (label aside) with more than ``max_categories`` values: ``age``, ``credit_amount``,
    ``duration`` (``job`` with its four values is a category written as a number, one-hot columns have two)."""
    numeric = table.drop(columns=[LABEL]).select_dtypes("number")
    return [str(c) for c in numeric.columns if numeric[c].nunique() > max_categories]


def encode(raw: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Raw rows as model input: the features step's encoding, reindexed to the model's columns (an unseen
    category has no column: all of its group's one-hot columns are 0); empty cells stay empty."""
    table = build_table(raw.assign(**{LABEL: 0}))
    return table.reindex(columns=columns, fill_value=0.0)


def csv_lines(features: pd.DataFrame) -> list[str]:
    """One CSV line per row, whole numbers written as integers, missing values as empty cells."""
    lines = []
    for row in features.itertuples(index=False):
        cells = []
        for value in row:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append("")
            elif float(value).is_integer():
                cells.append(str(int(value)))
            else:
                cells.append(repr(float(value)))
        lines.append(",".join(cells))
    return lines


def baseline_frame(train: pd.DataFrame, scores: list[float]) -> pd.DataFrame:
    """The baselining dataset: the model's score first (the capture puts outputs first), then the features, with
    a header of Spark-compliant names and whole-number columns as integers (as the traffic writes them)."""
    features = train.drop(columns=[LABEL])
    whole = [c for c in features.columns if bool((features[c] == features[c].round()).all())]
    features = features.astype({c: np.int64 for c in whole})
    features.columns = [spark_name(str(c)) for c in features.columns]
    return pd.concat([pd.DataFrame({"score": scores}, index=features.index), features], axis=1)


def spark_name(name: str) -> str:
    """Model Monitor wants Spark-compliant column names: lower case, ``_`` only."""
    return re.sub(r"[^a-z0-9]", "_", name.lower())


DRIFT = (
    "credit_amount x2.5 + 2000, duration +18 months, age -8 years; purpose 'cryptocurrency' (never seen) for 40% "
    "and job 4 (never seen) for 30% of rows; age empty for 25% and duration for 15%"
)


def drifted(raw: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Shifted numeric features, categories never seen in training, and missing values."""
    rng = np.random.default_rng(seed)
    frame = raw.copy()
    count = len(frame)
    frame["credit_amount"] = (frame["credit_amount"] * 2.5 + 2000).round().astype("int64")
    frame["duration"] = frame["duration"] + 18
    frame["age"] = (frame["age"] - 8).clip(lower=18)
    frame.loc[rng.random(count) < 0.4, "purpose"] = NEW_PURPOSE
    frame.loc[rng.random(count) < 0.3, "job"] = NEW_JOB
    frame = frame.astype({"age": "float64", "duration": "float64"})
    frame.loc[rng.random(count) < 0.25, "age"] = np.nan
    frame.loc[rng.random(count) < 0.15, "duration"] = np.nan
    return frame
