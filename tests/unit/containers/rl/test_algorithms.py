from __future__ import annotations

import pytest
from stable_baselines3 import PPO, SAC

from containers.rl.configuration.hyperparams import parse_hyperparameters
from containers.rl.configuration.run_config import RunConfig
from containers.rl.learning.episodic_algorithms import EGreedy
from containers.rl.learning.trainer import Trainer
from containers.rl.simulation.actions import parse_model_metadata
from containers.rl.simulation.camera import HEIGHT, WIDTH
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE

CONTINUOUS = {
    "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 1.0}},
    "action_space_type": "continuous",
}


def tiny(tmp_path, oval, metadata: dict, **hps: str) -> Trainer:
    raw = {"num_episodes_between_training": "2", "term_cond_max_episodes": "2", "min_eval_trials": "1",
           "batch_size": "32", "num_epochs": "1", "num_workers": "2", "observation_type": "vector", **hps}  # fmt: skip
    cfg = RunConfig(
        oval, parse_model_metadata(metadata), DEFAULT_REWARD_FILE, parse_hyperparameters(raw), tmp_path / "m", tmp_path
    )
    return Trainer(cfg)


@pytest.mark.parametrize("algorithm", ["sac", "clipped_ppo"])
def test_continuous_algorithms_train(tmp_path, oval, algorithm):
    trainer = tiny(tmp_path, oval, {**CONTINUOUS, "training_algorithm": algorithm})
    result = trainer.train()
    assert isinstance(trainer.model, SAC if algorithm == "sac" else PPO)
    assert len(result.iterations) == 2 and all(r.episodes >= 2 for r in result.iterations)
    assert (tmp_path / "m" / "model.zip").exists()


def test_camera_observation_with_frame_stack(tmp_path, oval):
    metadata = {"action_space": [{"steering_angle": s, "speed": 1.0} for s in (-30, 0, 30)]}
    trainer = tiny(tmp_path, oval, metadata, observation_type="camera", stack_size="2", term_cond_max_episodes="1")
    assert trainer.model.observation_space.shape == (2, HEIGHT, WIDTH)  # SB3 transposes to channels first
    result = trainer.train()
    assert result.iterations[0].steps > 0


def test_e_greedy_schedule():
    schedule = EGreedy(final=0.05, steps=100)
    assert schedule.epsilon(0) == 1.0
    assert schedule.epsilon(50) == pytest.approx(0.525)
    assert schedule.epsilon(1000) == pytest.approx(0.05)


def test_e_greedy_training_runs(tmp_path, oval):
    metadata = {"action_space": [{"steering_angle": s, "speed": 1.0} for s in (-30, 0, 30)]}
    result = tiny(tmp_path, oval, metadata, exploration_type="e-greedy", term_cond_max_episodes="1").train()
    assert result.iterations[0].episodes >= 2
