"""Racing a policy: whole episodes in lock-step, and the N-lap evaluation with its DeepRacer outputs.

``run_episodes`` plays one episode per plain environment with batched inference; the trainer uses it for the
evaluations of every iteration. ``evaluate`` races ``laps`` trials from the start line with the deterministic policy,
``write_evaluation`` writes the evaluation metrics JSON, sim-trace CSV and lap plot, and ``run_evaluation`` is the
``evaluate_only`` training job.
"""

from __future__ import annotations

import logging
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import json_to_data

from containers.rl.configuration.agent_metadata import check_agent
from containers.rl.configuration.run_config import RunConfig, env_config, make_envs, save_run_config
from containers.rl.outputs.graphs import plot_laps
from containers.rl.outputs.lap_video import lap_to_watch, write_lap_video
from containers.rl.outputs.log_formats import evaluation_record, format_trace_row, write_json, write_simtrace
from containers.rl.simulation.env import DeepRacerEnv

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationSummary:
    laps: list[dict[str, Any]]
    mean_completion: float
    completed: int
    off_track: int
    best_lap_ms: int | None


def load_policy(path: Path, algorithm: str) -> BaseAlgorithm:
    """The policy saved at ``path``. A PPO policy is built without SB3's orthogonal initialisation, which the saved
    weights replace at once: it is a QR decomposition of every layer, half the load of a deep camera network."""
    if algorithm == "sac":
        return SAC.load(str(path), device="cpu")
    try:
        with zipfile.ZipFile(path) as archive:
            saved = json_to_data(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return PPO.load(str(path), device="cpu")  # not a policy file: SB3 raises its own error
    kwargs = {**(saved.get("policy_kwargs") or {}), "ortho_init": False}
    return PPO.load(str(path), device="cpu", custom_objects={"policy_kwargs": kwargs})


def run_episodes(
    model: BaseAlgorithm, envs: list[DeepRacerEnv], starts: list[float | None], deterministic: bool = True
) -> list[tuple[dict[str, Any], list[list[Any]]]]:
    """One episode on each env (in lock-step, batched inference); returns (record, trace rows) per env."""
    observations: list[Any] = []
    for env, start in zip(envs, starts, strict=True):
        env.set_fixed_start(start)
        env.drain_records()
        observations.append(env.reset()[0])
    active = list(range(len(envs)))
    while active:
        batch = np.stack([observations[i] for i in active])
        actions, _ = model.predict(batch, deterministic=deterministic)
        still = []
        for i, action in zip(active, actions, strict=True):
            obs, _, terminated, truncated, _ = envs[i].step(action)
            observations[i] = obs
            if not (terminated or truncated):
                still.append(i)
        active = still
    results = []
    for env in envs:
        records, trace = env.drain_records()
        env.set_fixed_start(None)
        results.append((records[0], trace))
    return results


def evaluate(cfg: RunConfig, model: BaseAlgorithm, laps: int) -> tuple[EvaluationSummary, list[list[list[Any]]]]:
    """Non-continuous evaluation: ``laps`` trials, each its own episode from the start line, deterministic policy."""
    config = env_config(cfg.hp, cfg.actions)
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


def write_evaluation(cfg: RunConfig, summary: EvaluationSummary, traces: list[list[list[Any]]]) -> Path:
    """deepracer-for-cloud's evaluation outputs: ``evaluation-<ts>/evaluation-simtrace/0-iteration.csv`` and
    ``metrics/evaluation/evaluation-<ts>.json`` with the same 14-digit stamp; returns the sim-trace folder."""
    when = time.time()
    folder = cfg.data_dir / f"evaluation-{time.strftime('%Y%m%d%H%M%S', time.localtime(when))}"
    while folder.exists():  # two evaluations in one second: the stamp moves on, as the folder name must be unique
        when += 1.0
        folder = cfg.data_dir / f"evaluation-{time.strftime('%Y%m%d%H%M%S', time.localtime(when))}"
    stamp = folder.name.removeprefix("evaluation-")
    write_json(cfg.data_dir / "metrics" / "evaluation" / f"evaluation-{stamp}.json", {"metrics": summary.laps})
    wall = time.time()
    rows = [format_trace_row(row, lap, wall) for lap, trace in enumerate(traces) for row in trace]
    write_simtrace(folder / "evaluation-simtrace" / "0-iteration.csv", rows)
    plot_laps(cfg.track, traces, cfg.data_dir / "evaluation_laps.png", f"Evaluation laps on {cfg.track.name}")
    if summary.laps:
        write_lap_video(cfg.track, traces[lap_to_watch(summary.laps)], cfg.data_dir / "evaluation_lap.gif")
    return folder


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
    check_agent(cfg.actions, cfg.hp)
    save_run_config(cfg)
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
