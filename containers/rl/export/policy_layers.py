"""A trained stable-baselines3 policy as a plain list of layers (numpy weights), ready to rebuild in another engine.

Only the deterministic action path is read: features extractor, policy latent network and action head (PPO's
``action_net``, SAC's actor ``mu``). The value function and SAC's critics are not needed to drive. Layers keep torch's
conventions (conv weights ``[out, in, kh, kw]``, images channels-first); ``frozen_graph`` converts them to
TensorFlow's. Supported modules are the ones the trainer builds (docs/deepracer.md#export).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.preprocessing import is_image_space
from torch import nn

from containers.toolkit.errors import UserError

LayerKind = Literal["conv", "dense", "relu", "tanh", "flatten"]
HeadKind = Literal["softmax", "clip", "tanh"]


class UnsupportedPolicyError(UserError):
    """The policy has a layer the exporter cannot rebuild."""


@dataclass(frozen=True)
class Layer:
    kind: LayerKind
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: int = 1


@dataclass(frozen=True)
class PolicyLayers:
    """The network from observation to action: ``image`` inputs are ``[H, W, C]`` uint8 frames scaled by
    ``input_scale``; ``head`` turns the last dense layer into the policy output (softmax over discrete actions,
    the clipped Gaussian mean of PPO's continuous actions, SAC's tanh-squashed mean)."""

    algorithm: Literal["clipped_ppo", "sac"]
    image: bool
    input_shape: tuple[int, ...]
    input_scale: float
    layers: list[Layer] = field(default_factory=list)
    head: HeadKind = "softmax"
    sensor: str = ""  # the graph's input sensor name; "" means FRONT_FACING_CAMERA for images, else observation


def _numpy(tensor: Any) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().numpy().astype(np.float32)


def _walk(module: Any, out: list[Layer]) -> None:
    if isinstance(module, nn.Sequential):
        for child in module:
            _walk(child, out)
    elif isinstance(module, nn.Conv2d):
        if module.padding not in ((0, 0), "valid") or module.stride[0] != module.stride[1]:
            raise UnsupportedPolicyError(f"cannot export {module}: only square strides without padding")
        out.append(Layer("conv", _numpy(module.weight), _numpy(module.bias), int(module.stride[0])))
    elif isinstance(module, nn.Linear):
        out.append(Layer("dense", _numpy(module.weight), _numpy(module.bias)))
    elif isinstance(module, nn.ReLU):
        out.append(Layer("relu"))
    elif isinstance(module, nn.Tanh):
        out.append(Layer("tanh"))
    elif isinstance(module, nn.Flatten):
        out.append(Layer("flatten"))
    elif hasattr(module, "cnn") and hasattr(module, "linear"):  # NatureCNN, CoachCameraExtractor: cnn, linear
        _walk(module.cnn, out)
        _walk(module.linear, out)
    elif type(module).__name__ == "FlattenExtractor":
        out.append(Layer("flatten"))
    else:
        raise UnsupportedPolicyError(f"cannot export a {type(module).__name__} layer")


def policy_layers(model: BaseAlgorithm, sensor: str = "") -> PolicyLayers:
    """The layers of a loaded PPO or SAC model (``evaluation.lap_evaluation.load_policy``); ``sensor`` names the
    graph's input (``STEREO_CAMERAS`` for a stereo policy; by default the front camera or the vector)."""
    layers: list[Layer] = []
    space = model.observation_space
    image = is_image_space(space, check_channels=False)
    if isinstance(model, SAC):
        actor = model.policy.actor
        _walk(actor.features_extractor, layers)
        _walk(actor.latent_pi, layers)
        _walk(actor.mu, layers)
        algorithm: Literal["clipped_ppo", "sac"] = "sac"
        head: HeadKind = "tanh"
        normalize = model.policy.normalize_images
    elif isinstance(model, PPO):
        policy = model.policy
        _walk(policy.pi_features_extractor, layers)
        _walk(policy.mlp_extractor.policy_net, layers)
        _walk(policy.action_net, layers)
        algorithm = "clipped_ppo"
        head = "softmax" if model.action_space.__class__.__name__ == "Discrete" else "clip"
        normalize = policy.normalize_images
    else:
        raise UnsupportedPolicyError(f"cannot export a {type(model).__name__} model")
    shape = tuple(int(d) for d in space.shape or ())
    if image:  # SB3 trains channels-first ([C, H, W]); the car's frames are [H, W, C]
        shape = (shape[1], shape[2], shape[0]) if shape[0] < shape[2] else shape
    scale = 1 / 255 if image and normalize else 1.0
    return PolicyLayers(algorithm, image, shape, scale, layers, head, sensor)


def reference_actions(model: BaseAlgorithm, observations: np.ndarray) -> np.ndarray:
    """The trained policy's deterministic actions (what the exported graphs must reproduce)."""
    actions, _ = model.predict(observations, deterministic=True)
    return np.asarray(actions)
