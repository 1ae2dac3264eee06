"""Action spaces and ``model_metadata.json`` as the simapp parses it, plus the console's discrete generator.

Discrete spaces are a list of ``{"steering_angle", "speed"}`` addressed by list position (``index`` is ignored);
continuous spaces give ``low``/``high`` per dimension. The applied command is clipped to ±30° and 0.1–4 m/s while
``params`` and the sim-trace keep the pre-clip values, as in the simapp.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

MAX_STEERING_DEG = 30.0
MIN_SPEED = 0.1
MAX_SPEED = 4.0
ALGORITHMS = ("clipped_ppo", "sac")
SENSORS = ("FRONT_FACING_CAMERA", "STEREO_CAMERAS", "LEFT_CAMERA", "observation")


@dataclass(frozen=True)
class Action:
    steering_angle: float
    speed: float


@dataclass(frozen=True)
class ActionSpace:
    """Parsed ``model_metadata.json``."""

    kind: str  # "discrete" | "continuous"
    actions: tuple[Action, ...] = ()
    steering_range: tuple[float, float] = (-MAX_STEERING_DEG, MAX_STEERING_DEG)
    speed_range: tuple[float, float] = (1.0, 2.0)
    training_algorithm: str = "clipped_ppo"
    sensor: tuple[str, ...] = ("FRONT_FACING_CAMERA",)
    neural_network: str = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    version: float = 5.0
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    def command(self, action: Any) -> tuple[float, float, str]:
        """(steering deg, speed m/s, sim-trace action text) for a policy output, before clipping.

        Discrete: an index. Continuous: a pair in [-1, 1]² (PPO's scaled box) rescaled to [low, high].
        """
        if self.is_discrete:
            index = int(np.asarray(action).reshape(-1)[0])
            chosen = self.actions[index]
            return chosen.steering_angle, chosen.speed, str(index)
        unit = np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[:2], -1.0, 1.0)
        steer = _rescale(float(unit[0]), self.steering_range)
        speed = _rescale(float(unit[1]), self.speed_range)
        return steer, speed, f"[{steer:.2f} {speed:.2f}]"

    def to_json(self) -> dict[str, Any]:
        if self.is_discrete:
            space: Any = [
                {"steering_angle": a.steering_angle, "speed": a.speed, "index": i} for i, a in enumerate(self.actions)
            ]
        else:
            space = {
                "steering_angle": {"low": self.steering_range[0], "high": self.steering_range[1]},
                "speed": {"low": self.speed_range[0], "high": self.speed_range[1]},
            }
        return {
            "action_space": space,
            "sensor": list(self.sensor),
            "neural_network": self.neural_network,
            "training_algorithm": self.training_algorithm,
            "action_space_type": self.kind,
            "version": str(int(self.version)) if float(self.version).is_integer() else str(self.version),
        }


def _rescale(unit: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low + (unit + 1.0) * 0.5 * (high - low)


def clip_command(steering_deg: float, speed: float) -> tuple[float, float]:
    """What the car actually receives (``rollout_agent_ctrl.send_action``)."""
    return (
        min(max(steering_deg, -MAX_STEERING_DEG), MAX_STEERING_DEG),
        min(max(speed, MIN_SPEED), MAX_SPEED),
    )


def generate_discrete(
    max_steering: float = 30.0, steering_granularity: int = 5, max_speed: float = 1.0, speed_granularity: int = 2
) -> tuple[Action, ...]:
    """The console's generated discrete space: steering outer loop, speed inner loop."""
    if not 1.0 <= max_steering <= MAX_STEERING_DEG:
        raise UserError(f"maximum steering angle must be 1-30 degrees, got {max_steering}")
    if steering_granularity not in (3, 5, 7):
        raise UserError(f"steering granularity must be 3, 5 or 7, got {steering_granularity}")
    if not MIN_SPEED <= max_speed <= MAX_SPEED:
        raise UserError(f"maximum speed must be 0.1-4 m/s, got {max_speed}")
    if speed_granularity not in (1, 2, 3):
        raise UserError(f"speed granularity must be 1, 2 or 3, got {speed_granularity}")
    steerings = np.linspace(-max_steering, max_steering, steering_granularity)
    speeds = [max_speed * k / speed_granularity for k in range(1, speed_granularity + 1)]
    return tuple(Action(round(float(s), 4), round(float(v), 4)) for s in steerings for v in speeds)


def default_action_space() -> ActionSpace:
    """The console's initial generated space (30°, 5, 1 m/s, 2): 10 actions."""
    return ActionSpace(kind="discrete", actions=generate_discrete())


def parse_model_metadata(data: dict[str, Any]) -> ActionSpace:
    if not isinstance(data, dict) or "action_space" not in data:
        raise UserError("model_metadata.json must be an object with an 'action_space'")
    kind = str(data.get("action_space_type", "discrete")).lower().strip()
    algorithm = str(data.get("training_algorithm", "clipped_ppo")).lower().strip()
    if kind not in ("discrete", "continuous"):
        raise UserError(f"action_space_type must be 'discrete' or 'continuous', got {kind!r}")
    if algorithm not in ALGORITHMS:
        raise UserError(f"training_algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "sac" and kind != "continuous":
        raise UserError("training_algorithm 'sac' needs a continuous action space (as in the simapp)")
    sensor = tuple(str(s) for s in data.get("sensor", ["observation"]))
    version = _parse_version(data)
    common: dict[str, Any] = {
        "training_algorithm": algorithm,
        "sensor": sensor,
        "neural_network": str(data.get("neural_network", "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW")),
        "version": version,
        "raw": data,
    }
    if kind == "discrete":
        return ActionSpace(kind=kind, actions=_parse_discrete(data["action_space"]), **common)
    steer, speed = _parse_continuous(data["action_space"])
    return ActionSpace(kind=kind, steering_range=steer, speed_range=speed, **common)


def _parse_version(data: dict[str, Any]) -> float:
    if "version" not in data:
        return 2.0 if "sensor" in data else 1.0
    try:
        return float(data["version"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"model_metadata.json version {data['version']!r} is not a number") from exc


def _parse_discrete(space: Any) -> tuple[Action, ...]:
    if not isinstance(space, list) or not space:
        raise UserError("a discrete action_space must be a non-empty list of {steering_angle, speed}")
    try:
        return tuple(Action(float(a["steering_angle"]), float(a["speed"])) for a in space)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"bad discrete action in model_metadata.json: {exc}") from exc


def _parse_continuous(space: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        steer = (float(space["steering_angle"]["low"]), float(space["steering_angle"]["high"]))
        speed = (float(space["speed"]["low"]), float(space["speed"]["high"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"a continuous action_space needs steering_angle/speed low and high: {exc}") from exc
    for name, (low, high) in (("steering_angle", steer), ("speed", speed)):
        if not low < high:
            raise UserError(f"continuous action_space {name}: low ({low}) must be below high ({high})")
    return steer, speed


def load_model_metadata(path: Path) -> ActionSpace:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"could not read model metadata {path}: {exc}") from exc
    return parse_model_metadata(data)
