"""German credit data for the monitor demo, prepared exactly as the pipeline's feature step prepares it.

``build_table`` comes from ``pipelines/credit_risk/scripts/features.py`` (the step's own script) and the 70/15/15
split repeats its ``main`` (same seed, same stratification), so the baseline is the model's training split and the
columns are the model's input columns in the model's order. Traffic is raw German credit rows encoded the same way;
drifted traffic shifts numeric features, introduces categories the model never saw and leaves cells empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipelines.credit_risk.scripts.features import LABEL, build_table

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "data" / "german_credit.csv"
SEED = 42
NEW_PURPOSE = "cryptocurrency"  # a purpose the model never saw: every purpose_* one-hot column is 0
NEW_JOB = 4  # job is an integer category 0-3 in the training data


@dataclass(frozen=True)
class CreditData:
    raw: pd.DataFrame  # the German credit CSV as read
    columns: list[str]  # the model's input columns, in order (the features step's one-hot columns)
    train: pd.DataFrame  # training split of the feature table (label first)
    holdout_raw: pd.DataFrame  # raw rows of the validation + test splits (normal traffic)


def load(path: Path = DATASET, seed: int = SEED) -> CreditData:
    raw = pd.read_csv(path)
    table = build_table(raw)
    train, rest = train_test_split(table, test_size=0.3, random_state=seed, stratify=table[LABEL])
    columns = [c for c in table.columns if c != LABEL]
    return CreditData(raw=raw, columns=columns, train=train, holdout_raw=raw.loc[rest.index])


def continuous_columns(raw: pd.DataFrame, max_categories: int = 20) -> list[str]:
    """Numeric columns of the raw data with more than ``max_categories`` values (``age``, ``credit_amount``,
    ``duration``; ``job`` with its four values is a category written as a number)."""
    numeric = raw.drop(columns=[LABEL]).select_dtypes("number")
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
