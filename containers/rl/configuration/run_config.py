"""What one DeepRacer run is made of: track, action space, reward function, hyperparameters and directories.

``RunConfig`` is built by the container's ``train`` (from the job's input channels) and by the local command
(``local_cli``). ``save_run_config`` writes it next to the policy in the model directory and ``load_run_config``
reads it back, so serving and re-evaluation race the policy with what it was trained on. ``make_envs`` and
``build_vec_env`` build the simulator environments a run's configuration describes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from containers.rl.configuration.agent_metadata import agent_metadata, camera_observation
from containers.rl.configuration.hyperparams import (
    DeepRacerHyperparameters,
    car_dynamics,
    parse_hyperparameters,
    race_config,
)
from containers.rl.outputs.log_formats import write_json
from containers.rl.simulation.actions import ActionSpace, load_model_metadata
from containers.rl.simulation.env import DeepRacerEnv, EnvConfig, make_env_factory
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
from containers.rl.simulation.tracks import Track


@dataclass(frozen=True)
class RunConfig:
    track: Track
    actions: ActionSpace
    reward_path: Path
    hp: DeepRacerHyperparameters
    model_dir: Path
    data_dir: Path
    pretrained: Path | None = None


def save_run_config(cfg: RunConfig) -> None:
    """What serving and re-evaluation need next to the policy in the model directory, and the files
    deepracer-for-cloud keeps beside the logs (``ip/hyperparameters.json``, ``model/model_metadata.json``,
    ``reward_function.py``) in the data directory (docs/deepracer.md#log-layout)."""
    cfg.model_dir.mkdir(parents=True, exist_ok=True)
    metadata = agent_metadata(cfg.actions, cfg.hp)
    write_json(cfg.model_dir / "model_metadata.json", metadata)
    write_json(cfg.model_dir / "hyperparameters.json", cfg.hp.to_json())
    np.save(cfg.model_dir / "track.npy", cfg.track.to_array())
    if cfg.reward_path.resolve() != (cfg.model_dir / "reward_function.py").resolve():
        shutil.copyfile(cfg.reward_path, cfg.model_dir / "reward_function.py")
    write_json(cfg.data_dir / "ip" / "hyperparameters.json", cfg.hp.to_json())
    if (cfg.data_dir / "model").resolve() != cfg.model_dir.resolve():
        write_json(cfg.data_dir / "model" / "model_metadata.json", metadata)
    if cfg.reward_path.resolve() != (cfg.data_dir / "reward_function.py").resolve():
        shutil.copyfile(cfg.reward_path, cfg.data_dir / "reward_function.py")


def load_run_config(model_dir: Path, data_dir: Path) -> RunConfig:
    """Rebuild the RunConfig a model directory was trained with (for evaluation from a checkpoint)."""
    actions = load_model_metadata(model_dir / "model_metadata.json")
    hp = parse_hyperparameters(json.loads((model_dir / "hyperparameters.json").read_text()))
    track = Track.from_array(hp.world_name, np.load(model_dir / "track.npy"))
    reward = model_dir / "reward_function.py"
    return RunConfig(track, actions, reward if reward.exists() else DEFAULT_REWARD_FILE, hp, model_dir, data_dir)


def env_config(hp: DeepRacerHyperparameters, actions: ActionSpace) -> EnvConfig:
    """The simulator settings of a run (the sensor in ``actions``, ``model_metadata.json``, picks the camera)."""
    return EnvConfig(
        observation=camera_observation(actions, hp),
        stack_size=hp.stack_size,
        change_start_position=hp.change_start_position,
        round_robin_advance_dist=hp.round_robin_advance_dist,
        start_position_offset=hp.start_position_offset,
        reverse_direction=hp.reverse_direction,
        alternate_driving_direction=hp.alternate_driving_direction,
        dynamics=car_dynamics(hp),
        race=race_config(hp),
    )


def reward_factory(cfg: RunConfig) -> Callable[[], RewardFunction]:
    """Each environment loads its own copy of the reward function (module state per worker)."""
    return lambda: RewardFunction(cfg.reward_path, cfg.hp.reward_timeout_seconds)


def make_envs(cfg: RunConfig, n: int, config: EnvConfig) -> list[DeepRacerEnv]:
    """``n`` plain environments (evaluation races them in lock-step)."""
    return [make_env_factory(cfg.track, cfg.actions, reward_factory(cfg), config, i, n)() for i in range(n)]


def build_vec_env(cfg: RunConfig, n: int) -> VecEnv:
    """Parallel rollout workers: in-process for the cheap vector observation, subprocesses for the camera."""
    config = env_config(cfg.hp, cfg.actions)
    factories: list[Callable[[], Any]] = [
        make_env_factory(cfg.track, cfg.actions, reward_factory(cfg), config, i, n) for i in range(n)
    ]
    if cfg.hp.observation_type == "camera" and n > 1:
        return SubprocVecEnv(factories, start_method="fork")
    return DummyVecEnv(factories)
