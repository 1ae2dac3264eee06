"""Training outputs in DeepRacer's formats (docs/deepracer.md#output-formats): TrainingMetrics JSON, sim-trace CSVs,
evaluation metrics, ``deepracer_checkpoints.json``.

Layout (relative to the data directory): ``metrics/TrainingMetrics.json``, ``metrics/evaluation/evaluation-<ts>.json``,
``training-simtrace/<iteration>-iteration.csv`` (training-phase steps of that iteration),
``evaluation-simtrace/0-iteration.csv``; the model directory holds the checkpoints and the index.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SIMTRACE_HEADER = (
    "episode",
    "steps",
    "X",
    "Y",
    "yaw",
    "steer",
    "throttle",
    "action",
    "reward",
    "done",
    "all_wheels_on_track",
    "progress",
    "closest_waypoint",
    "track_len",
    "tstamp",
    "episode_status",
    "pause_duration",
    "obstacle_crash_counter",
    "wall_clock",
)
TRAINING_FIELDS = (
    "reward_score",
    "metric_time",
    "start_time",
    "elapsed_time_in_milliseconds",
    "episode",
    "trial",
    "phase",
    "completion_percentage",
    "episode_status",
)


def format_trace_row(row: Sequence[Any], episode: int, wall_clock: float) -> list[str]:
    """One CSV row with the simapp's SIM_TRACE_LOG formats."""
    (_, steps, x, y, yaw, steer, throttle, action, reward, done, on_track, progress, closest, track_len, tstamp,
     status, pause, crashes) = row  # fmt: skip
    return [
        str(episode),
        f"{float(steps):.1f}",
        f"{x:.4f}",
        f"{y:.4f}",
        f"{yaw:.4f}",
        f"{steer:.2f}",
        f"{throttle:.2f}",
        str(action),
        f"{reward:.4f}",
        str(bool(done)),
        str(bool(on_track)),
        f"{progress:.4f}",
        str(int(closest)),
        f"{track_len:.2f}",
        f"{tstamp:.3f}",
        str(status),
        f"{pause:.2f}",
        str(int(crashes)),
        f"{wall_clock:.4f}",
    ]


def write_simtrace(path: Path, rows: Iterable[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SIMTRACE_HEADER)
        writer.writerows(rows)


@dataclass
class TrainingMetrics:
    """``{"metrics": [...], "version": 2.0, "best_model_metric": ...}``, rewritten in full after each iteration."""

    path: Path
    best_model_metric: str = "progress"
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: dict[str, Any], *, episode: int, trial: int, phase: str) -> None:
        self.records.append(
            {
                "reward_score": int(record["reward_score"]),
                "metric_time": int(record["metric_time"]),
                "start_time": int(record["start_time"]),
                "elapsed_time_in_milliseconds": int(record["elapsed_time_in_milliseconds"]),
                "episode": episode,
                "trial": trial,
                "phase": phase,
                "completion_percentage": int(record["completion_percentage"]),
                "episode_status": record["episode_status"],
            }
        )

    def write(self) -> None:
        write_json(self.path, {"metrics": self.records, "version": 2.0, "best_model_metric": self.best_model_metric})


def evaluation_record(record: dict[str, Any], trial: int) -> dict[str, Any]:
    status = record["status"]
    counts = {
        "crash_count": int(status == "crashed"),
        "immobilized_count": int(status == "immobilized"),
        "off_track_count": int(status == "off_track"),
        "reversed_count": int(status == "reversed"),
    }
    return {
        "completion_percentage": int(record["completion_percentage"]),
        "metric_time": int(record["metric_time"]),
        "start_time": int(record["start_time"]),
        "elapsed_time_in_milliseconds": int(record["elapsed_time_in_milliseconds"]),
        "episode_status": record["episode_status"],
        **counts,
        "reset_count": sum(counts.values()),
        "trial": trial,
    }


@dataclass
class CheckpointIndex:
    """``deepracer_checkpoints.json``: best and last checkpoint names with the metric that chose them."""

    path: Path
    best: dict[str, Any] | None = None
    last: dict[str, Any] | None = None

    def update(self, name: str, metric: float, *, is_best: bool) -> None:
        entry = {"name": name, "avg_eval_metric": metric, "time_stamp": round(time.time(), 3)}
        self.last = entry
        if is_best:
            self.best = entry
        write_json(self.path, {"best_checkpoint": self.best, "last_checkpoint": self.last})


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
