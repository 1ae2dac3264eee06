"""bench sim_to_analysis: the fraction of a training run's episodes that deepracer-utils reads with a valid lap time.

A short run with the ``make deepracer`` defaults (two workers, so episodes cross iteration boundaries) and its final
evaluation; then deepracer-utils 1.5.6's ``DeepRacerLog`` reads the output folder as a DeepRacer-for-Cloud model
prefix and ``simulation_agg`` computes each episode's lap time. An episode is valid when deepracer-utils finds it
whole (one ``prepare`` row) with a positive lap time within 2 ms of the ``elapsed_time_in_milliseconds`` the run's
``TrainingMetrics.json`` records for it, and a progress in (0, 100] not below the metrics' completion (deepracer-utils
takes an episode's highest progress, the metrics its last). The anchor,
measured in the same run, is the number of training episodes in ``TrainingMetrics.json``.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from benchmarks.common import emit

ITERATIONS = 8


def _valid(row: Any, record: dict[str, Any]) -> bool:
    return bool(
        row["time"] > 0
        and abs(row["time"] * 1000 - record["elapsed_time_in_milliseconds"]) <= 2
        and 0 < row["progress"] <= 100
        and int(row["progress"]) >= record["completion_percentage"]  # the highest progress, the metrics' the last
    )


def main() -> None:
    warnings.filterwarnings("ignore")
    from deepracer.logs import AnalysisUtils, DeepRacerLog

    from containers.rl.configuration.hyperparams import load_hyperparameters_file
    from containers.rl.configuration.run_config import RunConfig
    from containers.rl.learning.training_run import run
    from containers.rl.local_cli import DEFAULTS_DIR
    from containers.rl.simulation.actions import default_action_space
    from containers.rl.simulation.reward import DEFAULT_REWARD_FILE
    from containers.rl.simulation.tracks import load_track

    hp = load_hyperparameters_file(
        DEFAULTS_DIR / "hyperparameters.json",
        # the vector observation: the logs are the same for both, and its episodes grow long within a few iterations
        {"term_cond_max_episodes": ITERATIONS, "num_workers": 2, "observation_type": "vector"},
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = RunConfig(load_track(hp.world_name), default_action_space(), DEFAULT_REWARD_FILE, hp, out / "model", out)
        run(cfg)
        records = json.loads((out / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
        training = [r for r in records if r["phase"] == "training"]
        log = DeepRacerLog(str(out))
        log.load_training_trace()
        df = log.dataframe()
        whole = (df["episode_status"] == "prepare").groupby(df["unique_episode"]).sum() == 1
        laps = AnalysisUtils.simulation_agg(df, secondgroup="unique_episode")
        valid = sum(
            1
            for _, row in laps.iterrows()
            if int(row["unique_episode"]) < len(training)
            and whole[row["unique_episode"]]
            and _valid(row, training[int(row["unique_episode"])])
        )
        evaluation = DeepRacerLog(str(out))
        evaluation.load_evaluation_trace()
        eval_laps = AnalysisUtils.simulation_agg(evaluation.dataframe(), firstgroup="stream", is_eval=True)
        eval_metrics = json.loads(next((out / "metrics" / "evaluation").glob("*.json")).read_text())["metrics"]
        eval_valid = sum(1 for (_, row), m in zip(eval_laps.iterrows(), eval_metrics, strict=False) if _valid(row, m))
        loaded = log.hyperparameters()["num_episodes_between_training"] == hp.num_episodes_between_training
    emit(
        "sim_to_analysis",
        f"{hp.world_name}, make-deepracer defaults, {ITERATIONS} iterations of "
        f"{hp.num_episodes_between_training} episodes, 2 workers; deepracer-utils 1.5.6 DeepRacerLog + "
        "simulation_agg; valid = whole episode, lap time within 2 ms of TrainingMetrics.json's, progress consistent; "
        "anchor: the training episodes in TrainingMetrics.json",
        valid_fraction=round(valid / len(training), 4) if training else 0.0,
        episodes=len(training),
        valid_episodes=valid,
        negative_lap_times=int((laps["time"] <= 0).sum()),
        eval_valid_fraction=round(eval_valid / len(eval_metrics), 4) if eval_metrics else 0.0,
        hyperparameters_loaded=str(loaded).lower(),
    )


if __name__ == "__main__":
    main()
