from __future__ import annotations

import pytest

from containers.rl.simulation.actions import clip_command, generate_discrete, parse_model_metadata
from containers.toolkit.errors import UserError


def test_console_generator_default_space_order():
    actions = generate_discrete(30, 5, 1.0, 2)
    assert [(a.steering_angle, a.speed) for a in actions] == [
        (-30.0, 0.5), (-30.0, 1.0), (-15.0, 0.5), (-15.0, 1.0), (0.0, 0.5),
        (0.0, 1.0), (15.0, 0.5), (15.0, 1.0), (30.0, 0.5), (30.0, 1.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "match"),
    [((31, 5, 1, 2), "steering"), ((30, 4, 1, 2), "granularity"), ((30, 5, 4.5, 2), "speed"), ((30, 5, 1, 4), "speed")],
)
def test_console_generator_limits(args, match):
    with pytest.raises(UserError, match=match):
        generate_discrete(*args)


def test_discrete_metadata_ignores_index_and_addresses_by_position():
    space = parse_model_metadata(
        {"action_space": [{"steering_angle": 10, "speed": 1, "index": 7}, {"steering_angle": -45, "speed": 5}]}
    )
    assert space.is_discrete and space.training_algorithm == "clipped_ppo"
    assert space.command(1) == (-45.0, 5.0, "1")  # params keep the pre-clip values
    assert clip_command(-45.0, 5.0) == (-30.0, 4.0)
    assert clip_command(0.0, 0.0) == (0.0, 0.1)


def test_continuous_metadata_rescales_unit_box():
    space = parse_model_metadata(
        {
            "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 1, "high": 2}},
            "action_space_type": "Continuous ",
            "training_algorithm": "SAC",
        }
    )
    assert space.kind == "continuous" and space.training_algorithm == "sac"
    steer, speed, text = space.command([1.0, -1.0])
    assert (steer, speed) == (30.0, 1.0)
    assert text == "[30.00 1.00]"
    assert space.command([0.0, 0.0])[:2] == (0.0, 1.5)


def test_sac_requires_continuous_and_low_below_high():
    with pytest.raises(UserError, match="continuous"):
        parse_model_metadata({"action_space": [{"steering_angle": 0, "speed": 1}], "training_algorithm": "sac"})
    with pytest.raises(UserError, match="low"):
        parse_model_metadata(
            {
                "action_space": {"steering_angle": {"low": 5, "high": 5}, "speed": {"low": 1, "high": 2}},
                "action_space_type": "continuous",
            }
        )
