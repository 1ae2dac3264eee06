"""Feature step (runs inside a SageMaker processing container): German credit CSV -> train/validation/test channels.

One-hot encodes the categoricals, puts the label first with no header (the XGBoost CSV contract), and splits
70/15/15 stratified on the label with a fixed seed. ``test`` keeps the label (for evaluation); ``test_features``
drops it (the batch transform input). A ``PySparkProcessor`` running ``spark_jobs/features`` can replace this step
as long as it writes the same four outputs.
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
    features = pd.get_dummies(frame.drop(columns=[LABEL]), dtype=np.float32)
    return pd.concat([frame[[LABEL]].astype(np.float32), features], axis=1)


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


if __name__ == "__main__":
    main()
