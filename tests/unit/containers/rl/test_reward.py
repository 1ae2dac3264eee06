from __future__ import annotations

import re

import pytest

from containers.rl.evaluation.reward_validation import validate_reward_file
from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.env import DeepRacerEnv
from containers.rl.simulation.reward import RewardFunction
from tests.unit.containers.rl.conftest import write_reward

GOOD = """import math


def reward_function(params):
    return float(1.0 - params["distance_from_center"] / (0.5 * params["track_width"]))
"""


def run_steps(oval, reward: RewardFunction, steps: int = 3) -> None:
    env = DeepRacerEnv(oval, default_action_space(), reward)
    env.reset(options={"start_ndist": 0.0})
    for _ in range(steps):
        env.step(5)


def test_good_function_validates(tmp_path):
    report = validate_reward_file(write_reward(tmp_path, GOOD), "oval")
    assert report.ok and report.warnings == []
    names = [case for case, _ in report.cases]
    assert names[:5] == ["valid_params", "start_car", "progress_car", "off_track_car", "finish_car"]
    assert any(name.startswith("simulator_step_") for name in names)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def reward_function(params):\n    return params['objects_location'][3][0] * 0.0 + float('nan')\n", "nan"),
        ("def reward_function(params):\n    return 2e5\n", "outside the allowed"),
        ("def reward_function(params):\n    return 'fast'\n", "not a float"),
        ("def reward_function(params):\n    return params['no_such_key']\n", "KeyError"),
        ("def reward_function(params, extra):\n    return 1.0\n", "exactly one argument"),
        ("def reward(params):\n    return 1.0\n", "must define"),
        ("def reward_function(params):\n    return 1.0 +\n", "SyntaxError"),
    ],
)
def test_validator_errors(tmp_path, body, message):
    report = validate_reward_file(write_reward(tmp_path, body), "oval")
    assert not report.ok
    assert message in " ".join(report.errors)


def test_console_only_rules_are_warnings(tmp_path):
    body = "import os\n\n\ndef reward_function(params):\n    import math\n    payload = 1\n    return payload\n"
    report = validate_reward_file(write_reward(tmp_path, body), "oval")
    assert report.ok
    text = " ".join(report.warnings)
    assert "import of 'os'" in text
    assert "top of the file" in text
    assert "'load'" in text  # plain substring test: 'payload' contains 'load'
    assert "requires float" in text  # an int return


def test_objects_indexing_raises_in_time_trial(tmp_path, oval):
    # console inputs have 6 objects, the time-trial simulator none: the simulator cases catch it
    body = "def reward_function(params):\n    return float(params['objects_location'][0][0] * 0)\n"
    report = validate_reward_file(write_reward(tmp_path, body), "oval")
    assert any("simulator_step" in e and "IndexError" in e for e in report.errors)


def test_a_bad_value_ends_the_episode_with_step_and_params(tmp_path, oval):
    body = "def reward_function(params):\n    if params['steps'] >= 3:\n        return float('inf')\n    return 1.0\n"
    env = DeepRacerEnv(oval, default_action_space(), RewardFunction(write_reward(tmp_path, body)))
    env.reset(options={"start_ndist": 0.0})
    assert env.step(5)[2] is False
    _, reward, terminated, _, info = env.step(5)
    assert terminated and reward == 0.0 and info["status"] == "reward_error"
    error = env.drain_records()[0][0]["reward_error"]
    assert error["kind"] == "not_finite" and "line 3: return float('inf')" in error["where"]
    assert re.search(r'at step 3\.0 with params \{.*"steps": 3\.0', error["message"])


def test_exception_carries_the_traceback(tmp_path, oval):
    body = "def reward_function(params):\n    return 1.0 / 0\n"
    env = DeepRacerEnv(oval, default_action_space(), RewardFunction(write_reward(tmp_path, body)))
    env.reset(options={"start_ndist": 0.0})
    assert env.step(5)[2] is True
    message = env.drain_records()[0][0]["reward_error"]["message"]
    assert "ZeroDivisionError" in message and "Traceback" in message and "at step 2.0" in message
    assert "reward_function.py line 2: return 1.0 / 0" in message


def test_params_are_a_copy_and_module_state_is_per_worker(tmp_path, oval):
    body = (
        "COUNT = 0\n\n\ndef reward_function(params):\n    global COUNT\n    COUNT += 1\n"
        "    assert 'waypoints' in params\n    del params['waypoints']\n    params['closest_objects'].append(9)\n"
        "    return float(COUNT)\n"
    )
    path = write_reward(tmp_path, body)
    first, second = RewardFunction(path), RewardFunction(path)
    run_steps(oval, first, steps=4)
    run_steps(oval, second, steps=2)
    assert first.module.COUNT == 4 and second.module.COUNT == 2
