"""Serving a trained policy: ``POST /invocations`` maps observations to actions.

Request (``application/json``): ``{"instances": [<observation>, ...]}`` or one bare observation (a list of
numbers for the vector observation, a 120 x 160 [x stack] nested list for the camera, 120 x 160 x 2·stack for
the stereo pair). Response:
``{"predictions": [{"action": <index or [u1, u2]>, "steering_angle": deg, "speed": m/s}, ...]}`` — the TF Serving
REST shape the SDK's JSON predictors expect, with the DeepRacer command spelled out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from containers.rl.simulation.actions import load_model_metadata
from containers.toolkit.codecs.content_types import MediaType
from containers.toolkit.errors import BadRequestError, ModelLoadError, UserError
from containers.toolkit.model_server.serving import InferenceHandler, serve

logger = logging.getLogger(__name__)

HANDLER_PATH = "containers.rl.serve:PolicyHandler"


class PolicyHandler(InferenceHandler):
    content_types = ("application/json",)
    accepts = ("application/json",)
    default_accept = "application/json"

    def load(self, model_dir: Path) -> None:
        from containers.rl.evaluation.lap_evaluation import load_policy

        try:
            self.actions = load_model_metadata(model_dir / "model_metadata.json")
            self.model = load_policy(model_dir / "model.zip", self.actions.training_algorithm)
        except (OSError, UserError, ValueError) as exc:
            raise ModelLoadError(f"Unable to load the RL policy from {model_dir}: {exc}") from exc
        self.obs_shape = tuple(self.model.observation_space.shape or ())

    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> bytes:
        observations = self._parse(body)
        actions, _ = self.model.predict(observations, deterministic=True)
        predictions = []
        for action in actions:
            steer, speed, _ = self.actions.command(action)
            value: Any = int(action) if self.actions.is_discrete else [float(a) for a in np.ravel(action)]
            predictions.append({"action": value, "steering_angle": steer, "speed": speed})
        return json.dumps({"predictions": predictions}).encode()

    def _parse(self, body: bytes) -> np.ndarray:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequestError(f"request body is not valid JSON: {exc}") from exc
        instances = data.get("instances") if isinstance(data, dict) else [data]
        if not isinstance(instances, list) or not instances:
            raise BadRequestError('expected {"instances": [<observation>, ...]} or one observation')
        try:
            array = np.asarray(instances, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise BadRequestError(f"observations must be numeric arrays: {exc}") from exc
        if array.shape[1:] != self.obs_shape:
            raise BadRequestError(
                f"each observation must have shape {list(self.obs_shape)}, got {list(array.shape[1:])}"
            )
        return array


def serve_main() -> int:
    return serve(HANDLER_PATH)
