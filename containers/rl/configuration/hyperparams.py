"""DeepRacer ``hyperparameters.json`` (docs/deepracer.md#hyperparametersjson-keys-and-defaults) plus the environment
settings DRfC passes separately.

Values arrive as strings (SageMaker), JSON-quoted strings (framework estimators) or JSON numbers (a hand-written
file); missing keys take the simapp defaults. The simapp's world keys for the race type are accepted in its own
upper-case spelling (``RACE_TYPE``, ``NUMBER_OF_OBSTACLES``, ...) as well as in lower case. Keys this trainer does not
know are logged and ignored (the tuning service's ``_tuning_objective_metric`` and ``sagemaker_*`` keys silently).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containers.rl.simulation.dynamics import CarDynamics
from containers.rl.simulation.race_objects import RACE_TYPES, RaceConfig
from containers.toolkit.errors import UserError
from containers.toolkit.hyperparameters import unquote

logger = logging.getLogger(__name__)

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class DeepRacerHyperparameters:
    # simapp defaults (docs/deepracer.md#hyperparametersjson-keys-and-defaults)
    batch_size: int = 64
    beta_entropy: float = 0.01
    discount_factor: float = 0.999
    e_greedy_value: float = 0.05
    epsilon_steps: int = 10000
    exploration_type: str = "categorical"
    loss_type: str = "mean squared error"
    lr: float = 0.0003
    num_episodes_between_training: int = 20
    num_epochs: int = 10
    stack_size: int = 1
    term_cond_avg_score: float = 100000.0
    term_cond_max_episodes: int = 100000
    sac_alpha: float = 0.2
    # DRfC run settings (DR_TRAIN_*) accepted as hyperparameters here
    min_eval_trials: int = 5
    best_model_metric: str = "progress"
    change_start_position: bool = True
    round_robin_advance_dist: float = 0.05
    start_position_offset: float = 0.0
    reverse_direction: bool = False
    alternate_driving_direction: bool = False
    max_steps_per_iteration: int = 10000
    world_name: str = "reinvent_like"
    # the simapp's world keys for the race type (docs/deepracer.md#race-types); defaults are DRfC's run.env values
    race_type: str = "TIME_TRIAL"
    number_of_obstacles: int = 6
    min_distance_between_obstacles: float = 2.0
    randomize_obstacle_locations: bool = False
    is_obstacle_bot_car: bool = False
    object_positions: str = ""
    number_of_bot_cars: int = 3
    min_distance_between_bot_cars: float = 2.0
    randomize_bot_car_locations: bool = False
    bot_car_speed: float = 0.2
    penalty_seconds: float = 2.0
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0
    upper_lane_change_time: float = 5.0
    lane_change_distance: float = 1.0
    # Sagestack extras
    max_time_minutes: float = 0.0  # 0: no time limit (the console's "maximum time")
    observation_type: str = "camera"  # "camera" (as the car) | "vector" (fast, privileged: docs/deepracer.md)
    num_workers: int = 0  # 0: one per CPU core, at least 2
    seed: int = 0
    stop_after_full_evals: int = 0  # stop once this many consecutive evaluations average 100 %
    eval_laps: int = 3
    policy_layers: str = "64,64"
    evaluate_only: bool = False  # the job evaluates the policy of its checkpoint channel, no training
    # car dynamics (docs/deepracer.md#car-dynamics)
    car_dynamics: str = "dynamic"  # "dynamic" | "kinematic" (no lag, no slip: the earlier model)
    speed_time_constant: float = 0.65
    steering_time_constant: float = 0.5
    tyre_friction: float = 0.5
    reward_timeout_seconds: float = 5.0  # longest reward_function call; a longer one ends the episode

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def workers(self) -> int:
        return self.num_workers if self.num_workers > 0 else max(2, os.cpu_count() or 1)

    @property
    def layers(self) -> list[int]:
        try:
            return [int(x) for x in self.policy_layers.split(",") if x.strip()]
        except ValueError as exc:
            raise UserError(f"policy_layers must be comma-separated integers, got {self.policy_layers!r}") from exc


_FIELDS = {f.name: f for f in dataclasses.fields(DeepRacerHyperparameters)}


def _convert(name: str, raw: Any, kind: Any) -> Any:
    text = unquote(raw) if isinstance(raw, str) else raw
    try:
        if kind in (bool, "bool"):
            lowered = str(text).strip().lower()
            if lowered not in _TRUE + _FALSE:
                raise ValueError(lowered)
            return lowered in _TRUE
        if kind in (int, "int"):
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if kind in (float, "float"):
            return float(text)
        return str(text)
    except (TypeError, ValueError) as exc:
        raise UserError(f"Hyperparameter {name}: could not parse value {raw!r} as {kind}") from exc


def parse_hyperparameters(raw: Mapping[str, Any]) -> DeepRacerHyperparameters:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith(("sagemaker_", "_tuning")):
            continue
        field = _FIELDS.get(key) or _FIELDS.get(key.lower())
        if field is None:
            logger.warning("ignoring unknown hyperparameter %s=%r", key, value)
            continue
        values[field.name] = _convert(key, value, field.type)
    if "race_type" in values:
        values["race_type"] = str(values["race_type"]).strip().upper()
    hp = DeepRacerHyperparameters(**values)
    _validate(hp)
    return hp


def _validate(hp: DeepRacerHyperparameters) -> None:
    checks = [
        (hp.batch_size >= 1, "batch_size must be >= 1"),
        (0.0 <= hp.discount_factor <= 1.0, "discount_factor must be in [0, 1]"),
        (hp.lr > 0, "lr must be > 0"),
        (hp.num_episodes_between_training >= 1, "num_episodes_between_training must be >= 1"),
        (hp.num_epochs >= 1, "num_epochs must be >= 1"),
        (hp.stack_size >= 1, "stack_size must be >= 1"),
        (hp.min_eval_trials >= 1, "min_eval_trials must be >= 1"),
        (hp.exploration_type.lower() in ("categorical", "e-greedy"), "exploration_type: categorical or e-greedy"),
        (
            hp.best_model_metric.lower() in ("progress", "reward", "laptime"),
            "best_model_metric: progress|reward|laptime",
        ),
        (hp.observation_type in ("vector", "camera"), "observation_type must be 'vector' or 'camera'"),
        (hp.term_cond_max_episodes >= 1, "term_cond_max_episodes must be >= 1"),
        (hp.eval_laps >= 1, "eval_laps must be >= 1"),
        (hp.race_type in RACE_TYPES, f"race_type must be one of {', '.join(RACE_TYPES)}"),
        (hp.number_of_obstacles >= 0 and hp.number_of_bot_cars >= 0, "object counts must be >= 0"),
        (hp.bot_car_speed >= 0 and hp.penalty_seconds >= 0, "bot_car_speed and penalty_seconds must be >= 0"),
        (
            0.0 <= hp.lower_lane_change_time <= hp.upper_lane_change_time,
            "lane change times need 0 <= lower_lane_change_time <= upper_lane_change_time",
        ),
        (hp.lane_change_distance > 0, "lane_change_distance must be > 0"),
        (hp.car_dynamics in ("dynamic", "kinematic"), "car_dynamics must be 'dynamic' or 'kinematic'"),
        (
            hp.speed_time_constant > 0 and hp.steering_time_constant > 0 and hp.tyre_friction > 0,
            "speed_time_constant, steering_time_constant and tyre_friction must be > 0",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"Hyperparameter error: {message}")
    try:
        positions = race_config(hp).positions()
    except ValueError as exc:
        message = f"object_positions must be 'ndist,lane;...' (lane 1 or -1), got {hp.object_positions!r}"
        raise UserError(f"Hyperparameter error: {message}") from exc
    if any(not 0.0 <= ndist <= 1.0 or lane not in (1, -1) for ndist, lane in positions):
        raise UserError("Hyperparameter error: object_positions need ndist in [0, 1] and lane 1 (inner) or -1 (outer)")


def race_config(hp: DeepRacerHyperparameters) -> RaceConfig:
    return RaceConfig(
        race_type=hp.race_type,
        number_of_obstacles=hp.number_of_obstacles,
        min_distance_between_obstacles=hp.min_distance_between_obstacles,
        randomize_obstacle_locations=hp.randomize_obstacle_locations,
        is_obstacle_bot_car=hp.is_obstacle_bot_car,
        object_positions=hp.object_positions,
        number_of_bot_cars=hp.number_of_bot_cars,
        min_distance_between_bot_cars=hp.min_distance_between_bot_cars,
        randomize_bot_car_locations=hp.randomize_bot_car_locations,
        bot_car_speed=hp.bot_car_speed,
        penalty_seconds=hp.penalty_seconds,
        is_lane_change=hp.is_lane_change,
        lower_lane_change_time=hp.lower_lane_change_time,
        upper_lane_change_time=hp.upper_lane_change_time,
        lane_change_distance=hp.lane_change_distance,
    )


def car_dynamics(hp: DeepRacerHyperparameters) -> CarDynamics:
    return CarDynamics(
        speed_time_constant=hp.speed_time_constant,
        steering_time_constant=hp.steering_time_constant,
        tyre_friction=hp.tyre_friction,
        kinematic=hp.car_dynamics == "kinematic",
    )


def load_hyperparameters_file(
    path: Path | None, overrides: Mapping[str, Any] | None = None
) -> DeepRacerHyperparameters:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"could not read hyperparameters {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise UserError(f"{path} must hold a JSON object")
        data.update(loaded)
    data.update(overrides or {})
    return parse_hyperparameters(data)
