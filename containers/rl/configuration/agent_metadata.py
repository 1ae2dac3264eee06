"""What the trained agent really is: the sensor it sees and the network it learns with, for ``model_metadata.json``.

The container simulates one front-facing camera or the stereo pair (``observation_type=camera``, chosen by the
sensor in ``model_metadata.json``) and the centre-line vector (``observation_type=vector``, a Sagestack observation
no real car has). The camera learns with the console's three networks. ``check_agent`` runs at the start of a job:
a sensor the container does not simulate (LIDAR, the left camera alone), two cameras at once, a network the console
does not have, or an action space with numbers the algorithm cannot use is a ``UserError`` before any training.
``agent_metadata`` is the ``model_metadata.json`` the run writes: the input's action space and algorithm with the
sensor and network actually used (docs/deepracer.md#model_metadatajson).
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
STEREO_CAMERAS = "STEREO_CAMERAS"
CAMERA_SENSORS = (FRONT_CAMERA, "observation", STEREO_CAMERAS)  # "observation": the front camera in version 1
VECTOR_SENSOR = "SAGESTACK_CENTERLINE_VECTOR"
SHALLOW_CNN = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
"""SB3's ``CnnPolicy`` (conv 32×8×8/4, 64×4×4/2, 64×3×3/1, dense 512) is the console's shallow network."""
CAMERA_NETWORKS = (SHALLOW_CNN, "DEEP_CONVOLUTIONAL_NETWORK", "DEEP_CONVOLUTIONAL_NETWORK_DEEP")
"""The console's networks (``learning/camera_networks.py`` builds them as the simapp's schemes)."""
NOT_SIMULATED = ("LEFT_CAMERA", "LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")


def camera_observation(actions: ActionSpace, hp: DeepRacerHyperparameters) -> str:
    """The simulator's observation: ``vector``, ``camera`` (front camera) or ``stereo`` (the stereo pair)."""
    if hp.observation_type != "camera":
        return "vector"
    return "stereo" if STEREO_CAMERAS in actions.sensor else "camera"


def sensor_name(actions: ActionSpace, hp: DeepRacerHyperparameters) -> str:
    kind = camera_observation(actions, hp)
    return {"camera": FRONT_CAMERA, "stereo": STEREO_CAMERAS}.get(kind, VECTOR_SENSOR)


def network_name(actions: ActionSpace, hp: DeepRacerHyperparameters) -> str:
    if hp.observation_type == "camera":
        return actions.neural_network
    return "SAGESTACK_MLP_" + "_".join(str(width) for width in hp.layers)


def check_agent(actions: ActionSpace, hp: DeepRacerHyperparameters) -> None:
    """Raise ``UserError`` for what the container cannot train; log what it trains instead of the request."""
    for sensor in actions.sensor:
        if sensor in NOT_SIMULATED:
            raise UserError(
                f"model_metadata.json asks for the sensor {sensor}, which this container does not simulate; it "
                f"simulates one front camera ({FRONT_CAMERA}) or the stereo pair ({STEREO_CAMERAS}), with "
                f"observation_type=camera, and the centre-line vector ({VECTOR_SENSOR}, observation_type=vector)"
            )
        if sensor not in (*CAMERA_SENSORS, VECTOR_SENSOR):
            raise UserError(
                f"model_metadata.json has the unknown sensor {sensor!r}; use {FRONT_CAMERA} or {STEREO_CAMERAS} "
                f"(or {VECTOR_SENSOR})"
            )
    if sum(sensor in CAMERA_SENSORS for sensor in actions.sensor) > 1:
        raise UserError(
            f"model_metadata.json names the cameras {'/'.join(actions.sensor)}; a car has one camera sensor: "
            f"{FRONT_CAMERA} or {STEREO_CAMERAS}"
        )
    if VECTOR_SENSOR in actions.sensor and hp.observation_type != "vector":
        raise UserError(
            f"model_metadata.json says {VECTOR_SENSOR} (a policy trained on the vector observation) but "
            f"observation_type is {hp.observation_type}"
        )
    if hp.observation_type == "camera" and actions.neural_network not in CAMERA_NETWORKS:
        raise UserError(
            f"model_metadata.json asks for the network {actions.neural_network!r}; the camera learns with one of "
            f"{', '.join(CAMERA_NETWORKS)}"
        )
    if hp.observation_type == "vector" and any(s in CAMERA_SENSORS for s in actions.sensor):
        logger.info(
            "model_metadata.json asks for %s with %s; observation_type=vector trains %s on the centre-line vector "
            "instead and model_metadata.json says so (set observation_type=camera to learn from the camera)",
            "/".join(actions.sensor), actions.neural_network, network_name(actions, hp),
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
    return {**actions.to_json(), "sensor": [sensor_name(actions, hp)], "neural_network": network_name(actions, hp)}
