"""What the trained agent really is: the sensor it sees and the network it learns with, for ``model_metadata.json``.

The container simulates one front-facing camera (``observation_type=camera``) and the centre-line vector
(``observation_type=vector``, a Sagestack observation no real car has). ``check_agent`` runs at the start of a job:
a sensor the container does not simulate (stereo cameras, LIDAR), a camera network it does not build, or an action
space with numbers the algorithm cannot use is a ``UserError`` before any training. ``agent_metadata`` is the
``model_metadata.json`` the run writes: the input's action space and algorithm with the sensor and network actually
used (docs/deepracer.md#model_metadatajson).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from containers.rl.configuration.hyperparams import DeepRacerHyperparameters
from containers.rl.simulation.actions import ActionSpace
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

FRONT_CAMERA = "FRONT_FACING_CAMERA"
CAMERA_SENSORS = (FRONT_CAMERA, "observation")  # "observation": the front camera's name in version-1 metadata
VECTOR_SENSOR = "SAGESTACK_CENTERLINE_VECTOR"
SHALLOW_CNN = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
"""SB3's ``CnnPolicy`` (conv 32×8×8/4, 64×4×4/2, 64×3×3/1, dense 512) is the console's shallow network."""
NOT_SIMULATED = ("STEREO_CAMERAS", "LEFT_CAMERA", "LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")


def sensor_name(hp: DeepRacerHyperparameters) -> str:
    return FRONT_CAMERA if hp.observation_type == "camera" else VECTOR_SENSOR


def network_name(hp: DeepRacerHyperparameters) -> str:
    if hp.observation_type == "camera":
        return SHALLOW_CNN
    return "SAGESTACK_MLP_" + "_".join(str(width) for width in hp.layers)


def check_agent(actions: ActionSpace, hp: DeepRacerHyperparameters) -> None:
    """Raise ``UserError`` for what the container cannot train; log what it trains instead of the request."""
    for sensor in actions.sensor:
        if sensor in NOT_SIMULATED:
            raise UserError(
                f"model_metadata.json asks for the sensor {sensor}, which this container does not simulate; it "
                f"simulates one front camera ({FRONT_CAMERA}, with observation_type=camera) and the centre-line "
                f"vector ({VECTOR_SENSOR}, observation_type=vector)"
            )
        if sensor not in (*CAMERA_SENSORS, VECTOR_SENSOR):
            raise UserError(
                f"model_metadata.json has the unknown sensor {sensor!r}; use {FRONT_CAMERA} (or {VECTOR_SENSOR})"
            )
    if VECTOR_SENSOR in actions.sensor and hp.observation_type != "vector":
        raise UserError(
            f"model_metadata.json says {VECTOR_SENSOR} (a policy trained on the vector observation) but "
            f"observation_type is {hp.observation_type}"
        )
    if hp.observation_type == "camera" and actions.neural_network != SHALLOW_CNN:
        raise UserError(
            f"model_metadata.json asks for the network {actions.neural_network}; camera runs train {SHALLOW_CNN} "
            "(stable-baselines3's CnnPolicy) only"
        )
    if hp.observation_type == "vector" and any(s in CAMERA_SENSORS for s in actions.sensor):
        logger.info(
            "model_metadata.json asks for %s with %s; observation_type=vector trains %s on the centre-line vector "
            "instead and model_metadata.json says so (set observation_type=camera to learn from the camera)",
            "/".join(actions.sensor), actions.neural_network, network_name(hp),
        )  # fmt: skip
    _check_numbers(actions)


def _check_numbers(actions: ActionSpace) -> None:
    if actions.is_discrete:
        for index, action in enumerate(actions.actions):
            if not (math.isfinite(action.steering_angle) and math.isfinite(action.speed)):
                raise UserError(
                    f"model_metadata.json action {index} has steering_angle={action.steering_angle} "
                    f"speed={action.speed}; both must be finite numbers"
                )
        return
    for name, bounds in (("steering_angle", actions.steering_range), ("speed", actions.speed_range)):
        if not all(math.isfinite(v) for v in bounds):
            raise UserError(f"model_metadata.json continuous {name} range {bounds} must be finite numbers")


def agent_metadata(actions: ActionSpace, hp: DeepRacerHyperparameters) -> dict[str, Any]:
    """``model_metadata.json`` as written by a run: the action space and algorithm, the sensor and network used."""
    return {**actions.to_json(), "sensor": [sensor_name(hp)], "neural_network": network_name(hp)}
