"""One DeepRacer training run end to end: train, evaluate the best model over N laps, write graphs and artefacts.

Used by both ``python -m containers.rl.local_cli train`` (``make deepracer``) and the container's ``train`` entry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from containers.rl.configuration.agent_metadata import check_agent
from containers.rl.configuration.run_config import RunConfig, save_run_config
from containers.rl.evaluation.lap_evaluation import (
    EvaluationSummary,
    evaluate,
    load_policy,
    log_evaluation,
    write_evaluation,
)
from containers.rl.learning.trainer import Trainer, TrainingResult
from containers.rl.outputs.graphs import compute_reward_graph, plot_reward_graph
from containers.rl.outputs.log_formats import write_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    training: TrainingResult
    evaluation: EvaluationSummary
    seconds: float


def run(cfg: RunConfig) -> RunSummary:
    start = time.perf_counter()
    check_agent(cfg.actions, cfg.hp)
    save_run_config(cfg)
    trainer = Trainer(cfg)
    logger.info(
        "training on %s (%.2f m), %s action space (%d actions), %s, %s observation, %d worker(s)",
        cfg.track.name, cfg.track.length, cfg.actions.kind, len(cfg.actions.actions), cfg.actions.training_algorithm,
        cfg.hp.observation_type, 1 if cfg.actions.training_algorithm == "sac" else cfg.hp.workers,
    )  # fmt: skip
    result = trainer.train()
    graph = compute_reward_graph(
        trainer.metrics.records, cfg.hp.num_episodes_between_training, result.best_episode, cfg.hp.best_model_metric
    )
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
            "reward_errors": result.reward_errors,
            "reward_error_examples": result.reward_error_examples,
            "evaluation": summary.laps,
        },
    )
    return RunSummary(result, summary, time.perf_counter() - start)
