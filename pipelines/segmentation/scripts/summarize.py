"""Summary step (runs in a SageMaker processing container): per-cluster size, majority digit, purity and distance.

Reads the K-Means batch transform output (CSV ``closest_cluster,distance_to_cluster`` per line, in input order) and
the true labels, and writes ``summary/summary.json``: ``clusters`` (one entry per cluster) and overall ``purity``
(share of images whose cluster's majority digit is their own digit).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)
BASE = Path("/opt/ml/processing")


def read_rows(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])


def summarize(assignments: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    if len(assignments) != len(labels):
        raise ValueError(f"{len(assignments)} cluster assignments for {len(labels)} labels")
    clusters = assignments[:, 0].astype(int)
    distances = assignments[:, 1]
    entries = []
    matched = 0
    for cluster in np.unique(clusters):
        members = clusters == cluster
        counts = np.bincount(labels[members], minlength=10)
        majority = int(counts.argmax())
        matched += int(counts[majority])
        entries.append(
            {
                "cluster": int(cluster),
                "size": int(members.sum()),
                "majority_digit": majority,
                "purity": round(float(counts[majority] / members.sum()), 4),
                "mean_distance": round(float(distances[members].mean()), 4),
                "digits": {str(d): int(c) for d, c in enumerate(counts) if c},
            }
        )
    return {"rows": len(labels), "clusters": entries, "purity": round(matched / len(labels), 4)}


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    labels = read_rows(BASE / "labels")[:, 0].astype(int)
    summary = summarize(read_rows(BASE / "clusters"), labels)
    out = BASE / "summary"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    logger.info("%d clusters, purity %.3f", len(summary["clusters"]), summary["purity"])  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
