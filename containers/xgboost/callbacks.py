"""Training callbacks: the per-round metric line, checkpoints, and the model saved every round on request.

Every callback acts on the rank-0 worker only (the master), so a distributed job prints and writes once.
``offset`` is the number of rounds already in the model when training resumed from a checkpoint: XGBoost counts
epochs from 0 in every ``train`` call, the log and the file names continue the job's count.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import xgboost as xgb
from xgboost import collective
from xgboost.callback import TrainingCallback

from containers.toolkit.metrics import MetricsWriter
from containers.xgboost.model_format.model_files import NATIVE, ModelFormat, write_model

logger = logging.getLogger(__name__)

MODEL_NAME = "xgboost-model"
CHECKPOINT_PREFIX = "xgboost-checkpoint."
CHECKPOINT_PATTERN = re.compile(r"^xgboost-checkpoint\.([0-9]+)$")
CHECKPOINTS_TO_KEEP = 5

EvalsLog = dict[str, dict[str, list[float] | list[tuple[float, float]]]]


def is_rank_zero() -> bool:
    return collective.get_rank() == 0


def save_booster(booster: xgb.Booster, path: Path) -> None:
    """Write a checkpoint in XGBoost's UBJSON format via a temporary file and an atomic rename."""
    write_model(booster, path, NATIVE)


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every ``xgboost-checkpoint.<n>`` file, lowest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: Path | None) -> tuple[int, Path] | None:
    if directory is None:
        return None
    found = list_checkpoints(directory)
    return found[-1] if found else None


def _last_values(evals_log: EvalsLog) -> list[tuple[str, str, float]]:
    results: list[tuple[str, str, float]] = []
    for data, metrics in evals_log.items():
        for metric, history in metrics.items():
            last = history[-1]
            value = last[0] if isinstance(last, tuple) else last
            results.append((data, metric, float(value)))
    return results


class RoundLogger(TrainingCallback):
    """``[<round>]\\t<data>-<metric>:<value>...`` after every round (XGBoost's EvaluationMonitor format)."""

    def __init__(self, writer: MetricsWriter, offset: int = 0) -> None:
        super().__init__()
        self._writer = writer
        self._offset = offset

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: EvalsLog) -> bool:
        if evals_log and is_rank_zero():
            self._writer.rounds(epoch + self._offset, _last_values(evals_log))
        return False


class CheckpointSaver(TrainingCallback):
    """Write ``xgboost-checkpoint.<round>`` after every round and keep the newest ``keep`` files."""

    def __init__(self, directory: Path, offset: int = 0, keep: int = CHECKPOINTS_TO_KEEP) -> None:
        super().__init__()
        self._directory = directory
        self._offset = offset
        self._keep = keep

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: EvalsLog) -> bool:
        if not is_rank_zero():
            return False
        save_booster(model, self._directory / f"{CHECKPOINT_PREFIX}{epoch + self._offset}")
        for _, old in list_checkpoints(self._directory)[: -self._keep]:
            old.unlink(missing_ok=True)
        return False


class SaveEveryRound(TrainingCallback):
    """``save_model_on_termination=true``: the model in the model directory is kept current after every round."""

    def __init__(self, model_dir: Path, fmt: ModelFormat = NATIVE) -> None:
        super().__init__()
        self._path = model_dir / MODEL_NAME
        self._format = fmt

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: EvalsLog) -> bool:
        if is_rank_zero():
            write_model(model, self._path, self._format)
        return False


def clean_model_dir(model_dir: Path) -> None:
    """After SIGTERM with save_model_on_termination: keep only ``xgboost-model*`` files."""
    if not model_dir.is_dir():
        return
    for path in model_dir.iterdir():
        if path.is_file() and not path.name.startswith(MODEL_NAME):
            path.unlink(missing_ok=True)
