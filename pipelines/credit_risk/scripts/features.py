"""Feature step (runs inside a SageMaker processing container): German credit CSV -> train/validation/test channels.

One-hot encodes the categoricals, puts the label first with no header (the XGBoost CSV contract), and splits
70/15/15 stratified on the label with a fixed seed. ``test`` keeps the label (for evaluation); ``test_features``
drops it (the batch transform input); ``labelled_train`` and ``labelled_test`` are the labelled splits with a header
row (the Clarify and Model Monitor check inputs). A ``PySparkProcessor`` running ``spark_jobs/features`` can
replace this step as long as it writes the same outputs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)
BASE = Path("/opt/ml/processing")
LABEL = "risk"


def build_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``sex`` becomes one 0/1 column (1 = female, the Clarify facet); the other categoricals are one-hot."""
    frame = frame.assign(sex=(frame["sex"].astype(str) == "female").astype(np.float32))
    features = pd.get_dummies(frame.drop(columns=[LABEL]), dtype=np.float32)
    features.columns = [_spark_name(str(c)) for c in features.columns]
    return pd.concat([frame[[LABEL]].astype(np.float32), features], axis=1)


def _spark_name(name: str) -> str:
    """Model Monitor wants Spark-compliant column names: lower case, ``_`` only."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def with_header(split: pd.DataFrame) -> pd.DataFrame:
    """The labelled split with its header and whole numbers as integers (Clarify reads ``sex`` as categorical)."""
    whole = [c for c in split.columns if bool((split[c] == split[c].round()).all())]
    return split.astype({c: np.int64 for c in whole})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    sources = sorted((BASE / "input").rglob("*.csv"))
    frame = pd.concat([pd.read_csv(path) for path in sources], ignore_index=True)
    table = build_table(frame)
    train, rest = train_test_split(table, test_size=0.3, random_state=args.seed, stratify=table[LABEL])
    validation, test = train_test_split(rest, test_size=0.5, random_state=args.seed, stratify=rest[LABEL])
    splits = {"train": train, "validation": validation, "test": test, "test_features": test.drop(columns=[LABEL])}
    for name, split in splits.items():
        target = BASE / name
        target.mkdir(parents=True, exist_ok=True)
        split.to_csv(target / f"{name}.csv", header=False, index=False)
        logger.info("%s: %d rows x %d columns", name, len(split), split.shape[1])
    # with headers, for the Clarify and Model Monitor checks (same columns and order as the model's input)
    for name, split in {"labelled_train": train, "labelled_test": test}.items():
        target = BASE / name
        target.mkdir(parents=True, exist_ok=True)
        with_header(split).to_csv(target / f"{name}.csv", index=False)


if __name__ == "__main__":
    main()
