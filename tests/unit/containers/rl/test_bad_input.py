"""Bad input: a reward function that fails ends its episode and is reported with the user's line, never crashing
the job; a track, sensor or action space the container cannot use is a clear error at start."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from containers.rl.configuration.agent_metadata import agent_metadata, check_agent
from containers.rl.configuration.hyperparams import parse_hyperparameters
from containers.rl.configuration.run_config import RunConfig
from containers.rl.learning.training_run import run
from containers.rl.simulation.actions import default_action_space, parse_model_metadata
from containers.rl.simulation.env import DeepRacerEnv
from containers.rl.simulation.reward import DEFAULT_REWARD_FILE, RewardFunction
from containers.rl.simulation.tracks import generate_oval, load_track
from containers.toolkit.errors import UserError
from tests.unit.containers.rl.conftest import run_container, write_reward

STEP_2 = "def reward_function(params):\n    x = params['speed']\n    {line}\n    return 1.0\n"


@pytest.mark.parametrize(
    ("line", "kind", "where"),
    [
        ("return x / 0", "exception", "line 3: return x / 0"),
        ("return 'fast'", "not_a_number", "line 3: return 'fast'"),
        ("return None", "not_a_number", "line 3: return None"),
        ("return float('nan')", "not_finite", "line 3: return float('nan')"),
        ("return 1e6", "out_of_range", "line 3: return 1e6"),
        ("import time; time.sleep(30)", "timeout", "line 3: import time; time.sleep(30)"),
    ],
)
def test_a_failing_reward_ends_the_episode_with_the_users_line(tmp_path, oval, line, kind, where):
    reward = RewardFunction(write_reward(tmp_path, STEP_2.format(line=line)), timeout_s=0.3)
    env = DeepRacerEnv(oval, default_action_space(), reward)
    env.reset(options={"start_ndist": 0.0})
    _, value, terminated, truncated, info = env.step(5)
    assert terminated and not truncated and value == 0.0 and info["status"] == "reward_error"
    records, trace = env.drain_records()
    error = records[0]["reward_error"]
    assert error["kind"] == kind and error["where"] == f"reward_function.py {where}"
    assert where in error["message"] and "at step 2.0" in error["message"]
    assert records[0]["episode_status"] == "Reward error" and trace[-1][15] == "reward_error"
    env.reset(options={"start_ndist": 0.0})  # the environment goes on with the next episode


def test_user_code_cannot_swallow_the_timeout(tmp_path, oval):
    body = "import time\n\n\ndef reward_function(params):\n    try:\n        time.sleep(30)\n    except Exception:\n" \
           "        pass\n    return 1.0\n"  # fmt: skip
    env = DeepRacerEnv(oval, default_action_space(), RewardFunction(write_reward(tmp_path, body), timeout_s=0.2))
    env.reset(options={"start_ndist": 0.0})
    assert env.step(5)[4]["status"] == "reward_error"
    assert env.drain_records()[0][0]["reward_error"]["where"] == "reward_function.py line 6: time.sleep(30)"


def test_a_slow_call_off_the_main_thread_is_reported_afterwards(tmp_path, oval):
    body = "import time\n\n\ndef reward_function(params):\n    time.sleep(0.3)\n    return 1.0\n"
    env = DeepRacerEnv(oval, default_action_space(), RewardFunction(write_reward(tmp_path, body), timeout_s=0.1))
    env.reset(options={"start_ndist": 0.0})
    outcome: list[dict[str, object]] = []
    worker = threading.Thread(target=lambda: outcome.append(env.step(5)[4]))
    worker.start()
    worker.join()
    assert outcome[0]["status"] == "reward_error"
    assert env.drain_records()[0][0]["reward_error"]["kind"] == "timeout"


def test_a_good_reward_keeps_no_state_between_calls(tmp_path, oval):
    env = DeepRacerEnv(oval, default_action_space(), RewardFunction(DEFAULT_REWARD_FILE, timeout_s=0.5))
    env.reset(options={"start_ndist": 0.0})
    for _ in range(5):
        assert env.step(5)[4]["status"] == "in_progress"


SOMETIMES_NAN = """CALLS = 0


def reward_function(params):
    global CALLS
    CALLS += 1
    if CALLS % 151 == 0:
        return float("nan")
    return 1.0 - params["distance_from_center"] / (0.5 * params["track_width"])
"""


def _job(base: Path, reward: str, hyperparameters: dict[str, str], track: Path | None = None) -> None:
    custom = base / "input" / "data" / "custom_files"
    custom.mkdir(parents=True)
    (custom / "reward_function.py").write_text(reward)
    if track is not None:
        shutil.copyfile(track, custom / track.name)
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"custom_files": {"TrainingInputMode": "File"}}))


def test_a_reward_that_sometimes_fails_does_not_fail_the_job(tmp_path):
    hps = {"term_cond_max_episodes": "3", "num_episodes_between_training": "6", "world_name": "oval",
           "eval_laps": "1", "min_eval_trials": "2", "num_workers": "2", "observation_type": "vector"}  # fmt: skip
    _job(tmp_path, SOMETIMES_NAN, hps)
    result = run_container(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "output" / "data" / "summary.json").read_text())
    assert summary["reward_errors"] >= 1
    assert 'reward_function.py line 8: return float("nan")' in summary["reward_error_examples"][0]
    assert 'line 8: return float("nan")' in result.stdout  # reported in the job's log
    traces = "".join(p.read_text() for p in (tmp_path / "output" / "data" / "training-simtrace").glob("*.csv"))
    assert ",reward_error," in traces


def test_a_track_of_the_wrong_shape_fails_the_job_at_start(tmp_path):
    route = tmp_path / "route" / "transposed.npy"
    route.parent.mkdir()
    np.save(route, generate_oval().T)
    _job(tmp_path / "job", "def reward_function(params):\n    return 1.0\n", {"term_cond_max_episodes": "1"}, route)
    result = run_container(tmp_path / "job")
    assert result.returncode != 0
    failure = (tmp_path / "job" / "output" / "failure").read_text()
    assert failure.startswith("ClientError") and "N x 6" in failure and "transpose" in failure
    assert not (tmp_path / "job" / "model" / "model.zip").exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros((40, 5)), "N x 6"),
        (np.array([["a"] * 6] * 4), "array of numbers"),
        (np.repeat(generate_oval()[:1], 10, axis=0), "fewer than 3 distinct"),
        (np.hstack([generate_oval()[:, :2]] * 3), "zero width"),
    ],
)
def test_track_files_of_the_wrong_shape(tmp_path, rows, message):
    path = tmp_path / "route.npy"
    np.save(path, rows)
    with pytest.raises(UserError, match=message):
        load_track(path)


def _metadata(**fields: object) -> dict[str, object]:
    return {"action_space": [{"steering_angle": 0, "speed": 1}], "action_space_type": "discrete", **fields}


@pytest.mark.parametrize(
    ("metadata", "hyperparameters", "message"),
    [
        (_metadata(sensor=["LEFT_CAMERA"]), {}, "LEFT_CAMERA, which this container does not simulate"),
        (_metadata(sensor=["FRONT_FACING_CAMERA", "LIDAR"]), {}, "LIDAR, which this container does not simulate"),
        (_metadata(sensor=["STEREO_CAMERAS", "SECTOR_LIDAR"]), {}, "SECTOR_LIDAR, which this container does not"),
        (_metadata(sensor=["SONAR"]), {}, "unknown sensor 'SONAR'"),
        (_metadata(sensor=["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]), {}, "one camera sensor"),
        (_metadata(sensor=["STEREO_CAMERAS"], neural_network="RESNET_50"),
         {"observation_type": "camera"}, "network 'RESNET_50'.*DEEP_CONVOLUTIONAL_NETWORK_DEEP"),
        (_metadata(sensor=["SAGESTACK_CENTERLINE_VECTOR"]), {"observation_type": "camera"}, "observation_type"),
        ({"action_space": [{"steering_angle": float("nan"), "speed": 1}]}, {}, "finite"),
        ({"action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": float("inf")}},
          "action_space_type": "continuous"}, {}, "finite"),
    ],
)  # fmt: skip
def test_what_the_container_cannot_train_is_an_error_at_start(tmp_path, oval, metadata, hyperparameters, message):
    actions = parse_model_metadata(metadata)
    hp = parse_hyperparameters({"term_cond_max_episodes": "1", **hyperparameters})
    with pytest.raises(UserError, match=message):
        run(RunConfig(oval, actions, DEFAULT_REWARD_FILE, hp, tmp_path / "model", tmp_path))
    assert not (tmp_path / "model").exists()  # nothing was trained or written


def test_sac_needs_a_continuous_space():
    with pytest.raises(UserError, match="continuous"):
        parse_model_metadata(_metadata(training_algorithm="sac"))


def test_model_metadata_names_the_sensor_and_network_trained():
    actions = parse_model_metadata(_metadata(sensor=["FRONT_FACING_CAMERA"]))
    vector_hp = parse_hyperparameters({"policy_layers": "32,16", "observation_type": "vector"})
    vector = agent_metadata(actions, vector_hp)
    assert vector["sensor"] == ["SAGESTACK_CENTERLINE_VECTOR"] and vector["neural_network"] == "SAGESTACK_MLP_32_16"
    camera_hp = parse_hyperparameters({})  # the camera is the default
    check_agent(actions, camera_hp)
    camera = agent_metadata(actions, camera_hp)
    assert camera["sensor"] == ["FRONT_FACING_CAMERA"]
    assert camera["neural_network"] == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert camera["action_space"] == vector["action_space"] == actions.to_json()["action_space"]
    # a model written by a run is read back and accepted by the same checks (evaluate_only, re-training)
    check_agent(parse_model_metadata(vector), vector_hp)


@pytest.mark.parametrize("network", ["DEEP_CONVOLUTIONAL_NETWORK", "DEEP_CONVOLUTIONAL_NETWORK_DEEP"])
@pytest.mark.parametrize("sensor", ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"])
def test_the_consoles_networks_and_stereo_are_accepted_and_written_as_asked(sensor, network):
    actions = parse_model_metadata(_metadata(sensor=[sensor], neural_network=network))
    camera_hp = parse_hyperparameters({})
    check_agent(actions, camera_hp)
    written = agent_metadata(actions, camera_hp)
    assert written["sensor"] == [sensor] and written["neural_network"] == network
    check_agent(parse_model_metadata(written), camera_hp)
