"""One DeepRacer run end to end: train, evaluate the best model over N laps, write graphs and artefacts.

Used by both ``python -m containers.rl.cli train`` (``make deepracer``) and the container's ``train`` entry.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from containers.rl.graphs import compute_reward_graph, plot_laps, plot_reward_graph
from containers.rl.outputs import evaluation_record, format_trace_row, write_json, write_simtrace
from containers.rl.rollouts import run_episodes
from containers.rl.training import RunConfig, Trainer, TrainingResult, env_config, make_envs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationSummary:
    laps: list[dict[str, Any]]
    mean_completion: float
    completed: int
    off_track: int
    best_lap_ms: int | None


@dataclass(frozen=True)
class RunSummary:
    training: TrainingResult
    evaluation: EvaluationSummary
    seconds: float


def load_policy(path: Path, algorithm: str) -> BaseAlgorithm:
    cls = SAC if algorithm == "sac" else PPO
    return cls.load(str(path), device="cpu")


def evaluate(cfg: RunConfig, model: BaseAlgorithm, laps: int) -> tuple[EvaluationSummary, list[list[list[Any]]]]:
    """Non-continuous evaluation: ``laps`` trials, each its own episode from the start line, deterministic policy."""
    config = env_config(cfg.hp)
    envs = make_envs(cfg, laps, config)
    results = run_episodes(model, envs, [cfg.hp.start_position_offset] * laps)
    records = [evaluation_record(record, trial=i + 1) for i, (record, _) in enumerate(results)]
    traces = [trace for _, trace in results]
    finished = [r["elapsed_time_in_milliseconds"] for r in records if r["completion_percentage"] >= 100]
    summary = EvaluationSummary(
        laps=records,
        mean_completion=float(np.mean([r["completion_percentage"] for r in records])),
        completed=len(finished),
        off_track=sum(r["off_track_count"] for r in records),
        best_lap_ms=min(finished) if finished else None,
    )
    return summary, traces


def write_evaluation(cfg: RunConfig, summary: EvaluationSummary, traces: list[list[list[Any]]]) -> None:
    stamp = time.strftime("%Y%m%d%H%M%S")
    write_json(cfg.data_dir / "metrics" / "evaluation" / f"evaluation-{stamp}.json", {"metrics": summary.laps})
    wall = time.time()
    rows = [format_trace_row(row, lap, wall) for lap, trace in enumerate(traces) for row in trace]
    write_simtrace(cfg.data_dir / "evaluation-simtrace" / "0-iteration.csv", rows)
    plot_laps(cfg.track, traces, cfg.data_dir / "evaluation_laps.png", f"Evaluation laps on {cfg.track.name}")


def write_artefacts(cfg: RunConfig) -> None:
    """What serving and re-evaluation need next to the policy in the model directory."""
    cfg.model_dir.mkdir(parents=True, exist_ok=True)
    write_json(cfg.model_dir / "model_metadata.json", cfg.actions.to_json())
    write_json(cfg.model_dir / "hyperparameters.json", cfg.hp.to_json())
    np.save(cfg.model_dir / "track.npy", cfg.track.to_array())
    shutil.copyfile(cfg.reward_path, cfg.model_dir / "reward_function.py")


def log_evaluation(summary: EvaluationSummary) -> None:
    """One line per lap, then the summary line (its ``eval_completion`` is the job's final evaluation metric)."""
    for i, lap in enumerate(summary.laps, start=1):
        logger.info(
            "evaluation lap %d: completion=%d%% time=%.3fs status=%s off_track=%d",
            i, lap["completion_percentage"], lap["elapsed_time_in_milliseconds"] / 1000.0, lap["episode_status"],
            lap["off_track_count"],
        )  # fmt: skip
    logger.info(
        "evaluation: eval_laps_completed=%d/%d eval_completion=%.1f off_track=%d best_lap_s=%s",
        summary.completed, len(summary.laps), summary.mean_completion, summary.off_track,
        "-" if summary.best_lap_ms is None else f"{summary.best_lap_ms / 1000.0:.3f}",
    )  # fmt: skip


def run_evaluation(cfg: RunConfig, policy: Path) -> EvaluationSummary:
    """Evaluation only (no training): race ``cfg.hp.eval_laps`` laps with the policy at ``policy``.

    The policy and its artefacts are copied to the model directory, so the job's model is deployable as well.
    """
    write_artefacts(cfg)
    if policy.resolve() != (cfg.model_dir / "model.zip").resolve():
        shutil.copyfile(policy, cfg.model_dir / "model.zip")
    model = load_policy(cfg.model_dir / "model.zip", cfg.actions.training_algorithm)
    logger.info(
        "evaluating %s on %s (%.2f m) over %d lap(s)", policy.name, cfg.track.name, cfg.track.length, cfg.hp.eval_laps
    )
    summary, traces = evaluate(cfg, model, cfg.hp.eval_laps)
    write_evaluation(cfg, summary, traces)
    log_evaluation(summary)
    write_json(cfg.data_dir / "summary.json", {"evaluate_only": True, "evaluation": summary.laps})
    return summary


def run(cfg: RunConfig) -> RunSummary:
    start = time.perf_counter()
    write_artefacts(cfg)
    trainer = Trainer(cfg)
    logger.info(
        "training on %s (%.2f m), %s action space (%d actions), %s, %s observation, %d worker(s)",
        cfg.track.name, cfg.track.length, cfg.actions.kind, len(cfg.actions.actions), cfg.actions.training_algorithm,
        cfg.hp.observation_type, 1 if cfg.actions.training_algorithm == "sac" else cfg.hp.workers,
    )  # fmt: skip
    result = trainer.train()
    graph = compute_reward_graph(trainer.metrics.records, cfg.hp.num_episodes_between_training)
    plot_reward_graph(
        graph, cfg.data_dir / "reward_graph.png", cfg.data_dir / "reward_graph.html", f"Reward graph — {cfg.track.name}"
    )
    best = cfg.model_dir / "model.zip"
    model = load_policy(best, cfg.actions.training_algorithm)
    summary, traces = evaluate(cfg, model, cfg.hp.eval_laps)
    write_evaluation(cfg, summary, traces)
    log_evaluation(summary)
    write_json(
        cfg.data_dir / "summary.json",
        {
            "iterations": len(result.iterations),
            "best_iteration": result.best_iteration,
            "total_steps": result.total_steps,
            "training_seconds": round(result.seconds, 2),
            "stop_reason": result.stop_reason,
            "evaluation": summary.laps,
        },
    )
    return RunSummary(result, summary, time.perf_counter() - start)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
