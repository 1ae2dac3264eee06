"""The segmentation section of the run report: a per-cluster table and a chart of cluster sizes by majority digit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipelines.library.execution_watch import StepRow, read_json

logger = logging.getLogger(__name__)

SUMMARY_STEP = "Summarize"


def cluster_summary(sm: Any, s3: Any, rows: list[StepRow]) -> dict[str, Any] | None:
    """``summary.json`` written by the Summarize step of this execution (also when the step was a cache hit)."""
    row = next((r for r in rows if r.name == SUMMARY_STEP and "ProcessingJob" in r.metadata), None)
    if row is None or row.status != "Succeeded":
        return None
    job = sm.describe_processing_job(ProcessingJobName=row.metadata["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    output = next(o for o in job["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "summary")
    return read_json(s3, output["S3Output"]["S3Uri"].rstrip("/") + "/summary.json")


def segmentation_section(sm: Any, s3: Any, rows: list[StepRow], folder: Path) -> list[str]:
    """Markdown lines (and ``clusters.png`` in ``folder``); empty when the execution wrote no summary."""
    summary = cluster_summary(sm, s3, rows)
    if summary is None:
        return []
    clusters = sorted(summary["clusters"], key=lambda c: c["cluster"])
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bars = axis.bar([str(c["cluster"]) for c in clusters], [c["size"] for c in clusters], color="tab:blue")
    for bar, cluster in zip(bars, clusters, strict=True):
        axis.annotate(str(cluster["majority_digit"]), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom")  # fmt: skip
    axis.set_xlabel("cluster (label: majority digit)")
    axis.set_ylabel("images")
    axis.set_title(f"K-Means clusters of PCA-projected digits (purity {summary['purity']:.3f})")
    figure.tight_layout()
    figure.savefig(folder / "clusters.png", dpi=110)
    plt.close(figure)
    table = [
        f"| {c['cluster']} | {c['size']} | {c['majority_digit']} | {c['purity']:.3f} | {c['mean_distance']:.3f} |"
        for c in clusters
    ]
    return [
        "",
        "## Clusters",
        "",
        f"{summary['rows']} images, {len(clusters)} clusters, overall purity {summary['purity']:.3f} "
        "(share of images whose cluster's majority digit is their own).",
        "",
        "| cluster | size | majority digit | purity | mean distance |",
        "|---|---|---|---|---|",
        *table,
        "",
        "![clusters](clusters.png)",
    ]
