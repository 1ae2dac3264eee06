"""Prepare step (runs in a SageMaker processing container): scikit-learn's digits as headerless CSV.

``features/digits.csv``: 64 pixel intensities scaled to [0, 1], one image per line (the PCA training channel and the
transform input). ``labels/labels.csv``: the true digit of each line, in the same order (only the summary reads it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

logger = logging.getLogger(__name__)
BASE = Path("/opt/ml/processing")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0, help="keep the first N images (0: all 1797)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    if args.rows > 0:
        features, labels = features[: args.rows], labels[: args.rows]
    for name, table, fmt in (("features", features, "%.6g"), ("labels", labels.reshape(-1, 1), "%d")):
        folder = BASE / name
        folder.mkdir(parents=True, exist_ok=True)
        np.savetxt(folder / ("digits.csv" if name == "features" else "labels.csv"), table, fmt=fmt, delimiter=",")
    logger.info("wrote %d images x %d pixels", *features.shape)


if __name__ == "__main__":
    main()
