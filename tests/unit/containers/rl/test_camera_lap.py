"""A policy that learns from the camera alone (the default observation) completes a lap on a simple track."""

from __future__ import annotations

import json

import pytest

from containers.rl.configuration.hyperparams import parse_hyperparameters
from containers.rl.configuration.run_config import RunConfig
from containers.rl.learning.training_run import run
from containers.rl.simulation.actions import parse_model_metadata
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE
from containers.rl.simulation.tracks import Track, generate_oval

# the console's shallow network on the camera, three steering choices at one speed
CONSOLE_CAMERA_METADATA = {
    "action_space": [{"steering_angle": s, "speed": 0.8} for s in (-20.0, 0.0, 20.0)],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
}


@pytest.mark.expensive
def test_a_camera_trained_policy_completes_a_lap_on_a_small_oval(tmp_path):
    track = Track.from_array("small_oval", generate_oval(straight=1.0, radius=1.2))  # 9.5 m, 0.76 m wide
    hp = parse_hyperparameters(
        {"num_episodes_between_training": "10", "num_epochs": "3", "lr": "0.001", "discount_factor": "0.95",
         "num_workers": "2", "min_eval_trials": "2", "eval_laps": "1", "stop_after_full_evals": "1",
         "term_cond_max_episodes": "40", "seed": "1"}
    )  # fmt: skip
    # seed 1 learns the lap in two iterations, seed 2 took eight (8 s of CPU against 45 s)
    assert hp.observation_type == "camera"  # the default
    actions = parse_model_metadata(CONSOLE_CAMERA_METADATA)
    summary = run(RunConfig(track, actions, DEFAULT_REWARD_FILE, hp, tmp_path / "m", tmp_path))
    completions = [r.eval_completion for r in summary.training.iterations]
    assert completions[-1] == 100.0, completions
    assert completions[0] < 100.0, completions  # learned: the first evaluation went off the track
    assert summary.evaluation.completed == 1  # the kept best model, raced again from the start line
    written = json.loads((tmp_path / "m" / "model_metadata.json").read_text())
    assert written["sensor"] == ["FRONT_FACING_CAMERA"]
    assert written["neural_network"] == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
