from __future__ import annotations

import json
from pathlib import Path

import pytest

from containers.rl.train import METRICS
from tests.unit.containers.rl.conftest import run_container


def layout(base: Path, reward: str, hyperparameters: dict[str, str]) -> None:
    custom = base / "input" / "data" / "custom_files"
    custom.mkdir(parents=True)
    (custom / "reward_function.py").write_text(reward)
    (custom / "model_metadata.json").write_text(
        json.dumps(
            {
                "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 1.0}},
                "action_space_type": "continuous",
                "training_algorithm": "clipped_ppo",
            }
        )
    )
    (custom / "hyperparameters.json").write_text(json.dumps({"num_episodes_between_training": 2, "batch_size": 32}))
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"custom_files": {"TrainingInputMode": "File"}}))


HPS = {"term_cond_max_episodes": "1", "world_name": "oval", "eval_laps": "1", "min_eval_trials": "5",
       "observation_type": "vector", "_tuning_objective_metric": "eval_completion"}  # fmt: skip


def test_training_job_contract(tmp_path):
    layout(tmp_path, "def reward_function(params):\n    return 1.0\n", HPS)
    result = run_container(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "output" / "success").exists()
    model = tmp_path / "model"
    for name in ("model.zip", "model_metadata.json", "deepracer_checkpoints.json", "hyperparameters.json"):
        assert (model / name).exists()
    assert json.loads((model / "hyperparameters.json").read_text())["batch_size"] == 32  # from the custom files
    assert (tmp_path / "output" / "data" / "metrics" / "TrainingMetrics.json").exists()
    values = [v for v in (METRICS[0].match(line) for line in result.stdout.splitlines()) if v is not None]
    assert values and 0.0 <= values[-1] <= 100.0  # the tuning objective is readable from the log


def test_reward_exception_fails_the_job_with_traceback(tmp_path):
    layout(tmp_path, "def reward_function(params):\n    return params['speed'] / 0\n", HPS)
    result = run_container(tmp_path)
    assert result.returncode != 0
    failure = (tmp_path / "output" / "failure").read_text()
    assert "ZeroDivisionError" in failure and "at step 2.0" in failure
    assert "reward_function.py line 2: return params['speed'] / 0" in failure


@pytest.mark.parametrize("value", ["3", '"3"', 3])
def test_hyperparameter_encodings(value):
    from containers.rl.configuration.hyperparams import parse_hyperparameters

    hp = parse_hyperparameters({"num_epochs": value, "change_start_position": "False", "loss_type": '"huber"'})
    assert hp.num_epochs == 3 and hp.change_start_position is False and hp.loss_type == "huber"


USER_SCRIPT = '''
import argparse
import os

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO


class Corridor(gym.Env):
    """Walk right to the goal: a tiny user environment."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if action == 1 else -1))
        done = self.pos >= 5
        return np.array([self.pos / 5], dtype=np.float32), float(done), done, False, {}


parser = argparse.ArgumentParser()
parser.add_argument("--total_timesteps", type=int)
args = parser.parse_args()
model = PPO("MlpPolicy", Corridor(), n_steps=64, batch_size=32, seed=0)
model.learn(total_timesteps=args.total_timesteps)
model.save(os.path.join(os.environ["SM_MODEL_DIR"], "policy"))
print("trained", args.total_timesteps)
'''


def test_script_mode_for_rlestimator(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "train.py").write_text(USER_SCRIPT)
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    hps = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(str(source)),
           "total_timesteps": "128", "sagemaker_estimator": '"RLEstimator"'}  # fmt: skip
    (config / "hyperparameters.json").write_text(json.dumps(hps))
    result = run_container(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trained 128" in result.stdout
    assert (tmp_path / "model" / "policy.zip").exists()
