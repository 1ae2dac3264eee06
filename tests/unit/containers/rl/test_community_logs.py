"""The community's log reader (deepracer-utils, a test-tier dependency) reads a training job's output unchanged.

A short training job and an ``evaluate_only`` job run through the image's entry (``python -m containers.rl train``);
their ``/opt/ml/output/data`` folders are read with ``DeepRacerLog`` as a DeepRacer-for-Cloud model prefix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from deepracer.logs import AnalysisUtils, DeepRacerLog
from deepracer.logs.metrics import TrainingMetrics
from deepracer.logs.misc import LogFolderType

from containers.rl.simulation.reward import DEFAULT_REWARD_FILE
from tests.unit.containers.rl.conftest import run_container

N = 4  # episodes per iteration; with two workers, episodes run across iteration boundaries
JOB_HPS = {"term_cond_max_episodes": "5", "world_name": "oval", "eval_laps": "2", "min_eval_trials": "2",
           "num_workers": "2", "seed": "3", "observation_type": "vector"}  # fmt: skip


def _inputs(base: Path, hyperparameters: dict[str, str], channels: dict[str, Path]) -> None:
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({name: {"TrainingInputMode": "File"} for name in channels}))
    for name, source in channels.items():
        shutil.copytree(source, base / "input" / "data" / name)


@pytest.fixture(scope="module")
def training_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    custom = tmp_path_factory.mktemp("custom_files")
    shutil.copyfile(DEFAULT_REWARD_FILE, custom / "reward_function.py")
    console_metadata = {  # what the console writes: a camera sensor and a convolutional network
        "action_space": [{"steering_angle": a, "speed": v} for a in (-30, 0, 30) for v in (0.5, 1.0)],
        "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo", "action_space_type": "discrete", "version": "5",
    }  # fmt: skip
    (custom / "model_metadata.json").write_text(json.dumps(console_metadata))
    (custom / "hyperparameters.json").write_text(json.dumps({"num_episodes_between_training": N, "batch_size": 32}))
    base = tmp_path_factory.mktemp("training_job")
    _inputs(base, JOB_HPS, {"custom_files": custom})
    result = run_container(base)
    assert result.returncode == 0, result.stdout + result.stderr
    return base


@pytest.fixture(scope="module")
def training_log(training_job: Path) -> DeepRacerLog:
    log = DeepRacerLog(str(training_job / "output" / "data"))
    log.load_training_trace()
    return log


def _training_records(data: Path) -> list[dict[str, Any]]:
    records = json.loads((data / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    return [r for r in records if r["phase"] == "training"]


def test_the_output_is_a_deepracer_for_cloud_model_folder(training_job, training_log):
    assert training_log.fh.type == LogFolderType.DRFC_MODEL_SINGLE_WORKERS
    hyperparameters = training_log.hyperparameters()
    assert hyperparameters["num_episodes_between_training"] == N and hyperparameters["batch_size"] == 32
    agent = training_log.agent_and_network()
    # model_metadata.json tells the truth: the console asked for the camera, the job trained the vector MLP
    assert agent["sensor_list"] == ["SAGESTACK_CENTERLINE_VECTOR"] and agent["network"] == "SAGESTACK_MLP_64_64"
    assert len(training_log.action_space()) == 6


def test_every_training_episode_is_whole_with_a_valid_lap_time(training_job, training_log):
    df = training_log.dataframe()
    records = _training_records(training_job / "output" / "data")
    assert df["unique_episode"].nunique() == len(records) >= 5 * N
    starts = df.groupby("unique_episode").first()
    assert (starts["episode_status"] == "prepare").all()  # every episode begins with its prepare row
    assert ((df["episode_status"] == "prepare").groupby(df["unique_episode"]).sum() == 1).all()
    # every file but the last holds exactly N episodes: deepracer-utils' unique_episode is the global number
    per_file = df.groupby("iteration")["unique_episode"].nunique()
    assert (per_file.iloc[:-1] == N).all() and 1 <= per_file.iloc[-1] <= N
    assert (df.groupby("unique_episode")["episode"].first() == df.groupby("unique_episode").size().index).all()
    aggregated = AnalysisUtils.simulation_agg(df, secondgroup="unique_episode")
    assert len(aggregated) == len(records)
    for _, row in aggregated.iterrows():
        record = records[int(row["unique_episode"])]
        # deepracer-utils takes an episode's highest progress, the metrics its last
        assert 0 < row["progress"] <= 100 and int(row["progress"]) >= record["completion_percentage"]
        # the lap time deepracer-utils computes is the metrics' elapsed time: positive and plausible
        assert row["time"] > 0 and abs(row["time"] * 1000 - record["elapsed_time_in_milliseconds"]) <= 2


def test_training_metrics_iterations_are_blocks_of_n(training_job):
    metrics = TrainingMetrics(None, fname=str(training_job / "output" / "data" / "metrics" / "TrainingMetrics.json"))
    training = metrics.metrics[metrics.metrics["phase"] == "training"]
    per_iteration = training.groupby("iteration").size()
    assert (per_iteration.iloc[:-1] == N).all()
    assert metrics.episodes_per_iteration == N


def test_evaluation_traces_load(training_job):
    data = training_job / "output" / "data"
    log = DeepRacerLog(str(data))
    log.load_evaluation_trace()
    laps = AnalysisUtils.simulation_agg(log.dataframe(), firstgroup="stream", is_eval=True)
    stamp = next(data.glob("evaluation-[0-9]*")).name.removeprefix("evaluation-")
    lap_metrics = json.loads((data / "metrics" / "evaluation" / f"evaluation-{stamp}.json").read_text())["metrics"]
    assert list(laps["stream"]) == [stamp, stamp]
    for (_, lap), metric in zip(laps.iterrows(), lap_metrics, strict=True):
        assert lap["progress"] > 0 and lap["time"] > 0
        assert abs(lap["time"] * 1000 - metric["elapsed_time_in_milliseconds"]) <= 2


def test_an_evaluate_only_job_is_a_model_upload_folder(training_job, tmp_path):
    base = tmp_path / "evaluation_job"
    _inputs(base, {"evaluate_only": "true", "eval_laps": "2"}, {"checkpoint": training_job / "model"})
    result = run_container(base)
    assert result.returncode == 0, result.stdout + result.stderr
    log = DeepRacerLog(str(base / "output" / "data"))
    log.load_evaluation_trace()
    assert log.fh.type == LogFolderType.DRFC_MODEL_UPLOAD
    assert log.hyperparameters()["num_episodes_between_training"] == N
    laps = AnalysisUtils.simulation_agg(log.dataframe(), firstgroup="stream", is_eval=True)
    assert len(laps) == 2 and (laps["time"] > 0).all()
