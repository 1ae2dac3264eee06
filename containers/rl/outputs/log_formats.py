"""Training outputs in DeepRacer's formats (docs/deepracer.md#output-formats): TrainingMetrics JSON, sim-trace CSVs,
evaluation metrics, ``deepracer_checkpoints.json``, and the best-model rule they share.

The data directory is laid out as DeepRacer-for-Cloud lays out a model's S3 prefix, so deepracer-utils' ``DeepRacerLog``
reads it unchanged (docs/deepracer.md#log-layout): ``training-simtrace/<k>-iteration.csv`` (the k-th block of
``num_episodes_between_training`` whole training episodes), ``evaluation-<ts>/evaluation-simtrace/0-iteration.csv``,
``metrics/TrainingMetrics.json``, ``metrics/evaluation/evaluation-<ts>.json``, ``ip/hyperparameters.json`` and
``model/model_metadata.json``. The model directory holds the checkpoints and the index.
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
class TrainingSimtrace:
    """``training-simtrace/<k>-iteration.csv``: file k holds training episodes k·N … k·N + N − 1, each whole.

    deepracer-utils numbers episodes ``episode % N + iteration · N`` with N the episode count of file 0, and its
    lap times sum the ``tstamp`` steps from each episode's ``prepare`` row, so every file must hold exactly N whole
    episodes (the last may hold fewer). Rows of an episode still running when the trainer drains the environments
    wait in ``partial`` until it ends; finished episodes wait in ``pending`` until their block of N is complete.
    """

    directory: Path
    episodes_per_file: int
    partial: dict[int, list[list[Any]]] = field(default_factory=dict)
    pending: list[list[str]] = field(default_factory=list)
    pending_episodes: int = 0
    files_written: int = 0

    def split_episodes(self, env_index: int, rows: Iterable[list[Any]]) -> list[list[list[Any]]]:
        """The episodes of ``env_index`` that ended in ``rows`` (with their earlier rows), in order."""
        finished: list[list[list[Any]]] = []
        current = self.partial.setdefault(env_index, [])
        for row in rows:
            if row[15] == "prepare":  # a new episode; rows of one abandoned by a reset are dropped
                current = []
            current.append(row)
            if row[9]:  # done
                finished.append(current)
                current = []
        self.partial[env_index] = current
        return finished

    def add_episode(self, episode: int, rows: list[list[Any]], wall_clock: float) -> None:
        """Queue training episode ``episode`` (0-based, as the CSV numbers them); write each full block."""
        self.pending.extend(format_trace_row(row, episode, wall_clock) for row in rows)
        self.pending_episodes += 1
        if self.pending_episodes >= self.episodes_per_file:
            self.flush()

    def flush(self) -> None:
        """Write the queued episodes as the next file (at the end of training: the last, shorter block)."""
        if not self.pending_episodes:
            return
        write_simtrace(self.directory / f"{self.files_written}-iteration.csv", self.pending)
        self.files_written += 1
        self.pending, self.pending_episodes = [], 0


def evaluation_metric(best_model_metric: str, progress: Sequence[float], rewards: Sequence[float],
                      elapsed_ms: Sequence[float]) -> float:  # fmt: skip
    """The simapp's per-evaluation metric: mean progress, mean reward, or mean lap time (999999 ms unfinished)."""
    metric = best_model_metric.lower()
    if metric == "reward":
        values = list(rewards)
    elif metric == "laptime":
        values = [ms if p >= 100 else 999999 for p, ms in zip(progress, elapsed_ms, strict=True)]
    else:
        values = list(progress)
    return sum(values) / len(values) if values else 0.0


def is_new_best(metric: float, best: float | None, best_model_metric: str) -> bool:
    """The best-model rule (the simapp's, so the console's): ≥ the best so far (≤ for lap time); a tie goes to the
    newer checkpoint. The trainer keeps that checkpoint and the reward graph marks it."""
    if best is None:
        return True
    return metric <= best if best_model_metric.lower() == "laptime" else metric >= best


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
