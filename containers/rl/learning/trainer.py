"""The DeepRacer training loop on stable-baselines3: iterations of N episodes → policy update → ≥ 5 evaluations.

Every iteration writes a checkpoint, rewrites ``TrainingMetrics.json`` and ``deepracer_checkpoints.json``, adds its
finished episodes to the training sim-trace (whole episodes, N per file) and logs one line (the tuning metrics are
read from it). The best model is chosen by the simapp's rule (``outputs.is_new_best``): mean evaluation progress (or
reward / lap time) of the iteration, ties going to the newer checkpoint; the reward graph marks the same checkpoint.
An episode ended by a reward-function error is reported once per line of the user's code; an iteration in which
every training episode ended that way stops the job with the error.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from containers.rl.configuration.run_config import RunConfig, build_vec_env, env_config, make_envs
from containers.rl.evaluation.lap_evaluation import run_episodes
from containers.rl.learning.episodic_algorithms import build_algorithm
from containers.rl.outputs.log_formats import (
    CheckpointIndex,
    TrainingMetrics,
    TrainingSimtrace,
    evaluation_metric,
    is_new_best,
)
from containers.rl.simulation.reward import RewardFunctionError

logger = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 3
ITERATION_LINE = (
    "iteration %d: episodes=%d steps=%d train_reward=%.2f train_completion=%.1f eval_reward=%.2f "
    "eval_completion=%.1f best_iteration=%d best_eval_completion=%.1f elapsed_s=%.1f"
)


@dataclass
class IterationResult:
    iteration: int
    episodes: int
    steps: int
    train_reward: float
    train_completion: float
    eval_reward: float
    eval_completion: float
    eval_metric: float


@dataclass
class TrainingResult:
    iterations: list[IterationResult] = field(default_factory=list)
    best_iteration: int = 0
    best_checkpoint: Path | None = None
    best_episode: int | None = None  # the ``episode`` of the best checkpoint's evaluation records (the graph's x)
    reward_errors: int = 0
    reward_error_examples: list[str] = field(default_factory=list)  # the first message per line of user code
    total_steps: int = 0
    seconds: float = 0.0
    stop_reason: str = ""


class Trainer:
    """Owns the loop; ``train()`` returns when a stop condition holds.

    The algorithm (``containers.rl.learning.episodic_algorithms``) plays and learns from the iteration's episodes;
    the trainer turns the records the environments kept into DeepRacer's outputs, evaluates, checkpoints and decides
    when to stop.
    """

    def __init__(self, cfg: RunConfig, on_iteration: Callable[[IterationResult], None] | None = None) -> None:
        self.cfg = cfg
        self.hp = cfg.hp
        torch.manual_seed(cfg.hp.seed)
        # one torch thread: the simulator workers' processes use the other cores, and on a shared machine a second
        # thread made the CNN's updates 5-8x slower (docs/deepracer.md#design-decisions)
        torch.set_num_threads(1)
        is_sac = cfg.actions.training_algorithm == "sac"  # SB3 collects whole episodes for SAC on one env only
        self.model = build_algorithm(cfg, build_vec_env(cfg, 1 if is_sac else cfg.hp.workers))
        env = self.model.get_env()  # SB3 may wrap the env (VecTransposeImage for the camera)
        if env is None:
            raise TypeError("the model has no environment")
        self.env = env
        self.eval_envs = make_envs(cfg, cfg.hp.min_eval_trials, env_config(cfg.hp, cfg.actions))
        self.metrics = TrainingMetrics(cfg.data_dir / "metrics" / "TrainingMetrics.json", cfg.hp.best_model_metric)
        self.index = CheckpointIndex(cfg.model_dir / "deepracer_checkpoints.json")
        self.simtrace = TrainingSimtrace(cfg.data_dir / "training-simtrace", cfg.hp.num_episodes_between_training)
        self.on_iteration = on_iteration
        self.episodes = 0
        self.result = TrainingResult()
        self._best_metric: float | None = None
        self._full_streak = 0
        self._kept: list[Path] = []
        self._error_places: set[str] = set()

    def train(self) -> TrainingResult:
        start = time.perf_counter()
        iteration = 0
        while True:
            iteration += 1
            result = self._iteration(iteration)
            self.result.iterations.append(result)
            self.result.seconds = time.perf_counter() - start
            self._log(result)
            reason = self._stop_reason(iteration, result)
            if reason:
                self.result.stop_reason = reason
                logger.info("training stopped after %d iteration(s): %s", iteration, reason)
                break
        self.simtrace.flush()
        self.env.close()
        return self.result

    def _iteration(self, iteration: int) -> IterationResult:
        steps = self.model.learn_iteration()
        records = self._drain_training(iteration)
        self.result.total_steps += steps
        evals = self._evaluate()
        eval_metric = self._eval_metric(evals)
        self._checkpoint(iteration, eval_metric)
        self.metrics.write()
        return IterationResult(
            iteration=iteration,
            episodes=len(records),
            steps=steps,
            train_reward=_mean([r["reward"] for r in records]),
            train_completion=_mean([r["progress"] for r in records]),
            eval_reward=_mean([r["reward"] for r in evals]),
            eval_completion=_mean([r["progress"] for r in evals]),
            eval_metric=eval_metric,
        )

    def _drain_training(self, iteration: int) -> list[dict[str, Any]]:
        """The iteration's finished training episodes, numbered in one order for the metrics and the sim-trace."""
        drained: list[tuple[list[dict[str, Any]], list[list[Any]]]] = self.env.env_method("drain_records")
        records: list[dict[str, Any]] = []
        wall = time.time()
        n = self.hp.num_episodes_between_training
        for env_index, (env_records, trace) in enumerate(drained):
            episodes = self.simtrace.split_episodes(env_index, trace)
            for record, rows in zip(env_records, episodes, strict=True):
                records.append(record)
                self.episodes += 1
                # trial: the place in the block of N episodes that deepracer-utils and the graph call an iteration
                self.metrics.add(record, episode=self.episodes, trial=(self.episodes - 1) % n + 1, phase="training")
                self.simtrace.add_episode(self.episodes - 1, rows, wall)
        self._report_reward_errors(iteration, records)
        return records

    def _report_reward_errors(self, iteration: int, records: list[dict[str, Any]]) -> None:
        errors = [r["reward_error"] for r in records if r.get("reward_error")]
        if not errors:
            return
        self.result.reward_errors += len(errors)
        for error in errors:
            place = f"{error['kind']} {error['where']}"
            if place not in self._error_places:
                self._error_places.add(place)
                self.result.reward_error_examples.append(error["message"])
                logger.warning("reward function error (the episode ended there): %s", error["message"])
        logger.warning(
            "iteration %d: %d of %d training episode(s) ended by a reward function error", iteration, len(errors),
            len(records),
        )  # fmt: skip
        if len(errors) == len(records):
            first = errors[0]
            raise RewardFunctionError(
                f"every training episode of iteration {iteration} ended by a reward function error; the first: "
                f"{first['message']}",
                kind=first["kind"], where=first["where"],
            )  # fmt: skip

    def _evaluate(self) -> list[dict[str, Any]]:
        """≥ 5 deterministic episodes from the current round-robin position onwards."""
        first = self.env.get_attr("next_start", [0])[0]
        step = self.hp.round_robin_advance_dist if self.hp.change_start_position else 0.0
        starts: list[float | None] = [first + i * step for i in range(len(self.eval_envs))]
        results = run_episodes(self.model, self.eval_envs, starts)
        records = [record for record, _ in results]
        trial = (self.episodes - 1) % self.hp.num_episodes_between_training + 1 if self.episodes else 0
        for record in records:
            self.metrics.add(record, episode=self.episodes, trial=trial, phase="evaluation")
        return records

    def _eval_metric(self, evals: list[dict[str, Any]]) -> float:
        return evaluation_metric(
            self.hp.best_model_metric, [r["progress"] for r in evals], [r["reward"] for r in evals],
            [r["elapsed_time_in_milliseconds"] for r in evals],
        )  # fmt: skip

    def _checkpoint(self, iteration: int, metric: float) -> None:
        directory = self.cfg.model_dir
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{iteration}_Step-{self.result.total_steps}"
        path = directory / f"{name}.zip"
        self.model.save(path)
        is_best = is_new_best(metric, self._best_metric, self.hp.best_model_metric)
        if is_best:
            self._best_metric = metric
            self.result.best_iteration = iteration
            self.result.best_checkpoint = path
            self.result.best_episode = self.episodes
            shutil.copyfile(path, directory / "model.zip")
        self.index.update(name, metric, is_best=is_best)
        self._kept.append(path)
        for old in self._kept[:-KEEP_CHECKPOINTS]:
            if old != self.result.best_checkpoint:
                old.unlink(missing_ok=True)
        self._kept = [p for p in self._kept if p.exists()]

    def _stop_reason(self, iteration: int, result: IterationResult) -> str:
        hp = self.hp
        self._full_streak = self._full_streak + 1 if result.eval_completion >= 100.0 else 0
        if hp.stop_after_full_evals and self._full_streak >= hp.stop_after_full_evals:
            return f"{self._full_streak} consecutive evaluations completed 100 % (stop_after_full_evals)"
        if iteration >= hp.term_cond_max_episodes:
            return f"reached {iteration} iterations (term_cond_max_episodes)"
        if hp.max_time_minutes and self.result.seconds >= hp.max_time_minutes * 60.0:
            return f"reached the maximum time of {hp.max_time_minutes:g} minutes"
        return ""

    def _log(self, r: IterationResult) -> None:
        best = next((x for x in self.result.iterations if x.iteration == self.result.best_iteration), r)
        logger.info(
            ITERATION_LINE, r.iteration, r.episodes, r.steps, r.train_reward, r.train_completion, r.eval_reward,
            r.eval_completion, self.result.best_iteration, best.eval_completion, self.result.seconds,
        )  # fmt: skip
        if self.on_iteration is not None:
            self.on_iteration(r)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0
