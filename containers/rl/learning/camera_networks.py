"""The console's camera networks as stable-baselines3 features extractors, layer for layer as the simapp builds them.

The simapp (``markov/sensors/utils.py``, ``markov/architecture/custom_architectures.py``) gives each sensor and
``neural_network`` an input-embedder scheme (conv layers as filters × kernel / stride, then dense layers) and a
middleware (dense layers); ``get_network_settings`` builds them with Coach's plain ``scheme`` embedder and ReLU after
every layer, so the schemes' batch-norm and dropout entries are not used. Coach's embedder applies its dense layers to
the conv output before flattening it (a dense layer on a 4-D tensor acts on the channels at each position), so here
they are 1×1 convolutions; the middleware's dense layers follow the flattened embedding. PPO's policy and value heads
share embedder and middleware (Coach's ``main`` network), so all of it is the features extractor and ``net_arch`` is
empty (docs/deepracer.md#sensors-and-networks).

``DEEP_CONVOLUTIONAL_NETWORK_SHALLOW`` stays SB3's ``CnnPolicy`` (NatureCNN: the same three convolutions and the
512-unit middleware), so earlier checkpoints load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
DEEP = "DEEP_CONVOLUTIONAL_NETWORK"
DEEPEST = "DEEP_CONVOLUTIONAL_NETWORK_DEEP"


@dataclass(frozen=True)
class CoachScheme:
    conv: tuple[tuple[int, int, int], ...]  # (filters, kernel, stride), no padding
    embedder_dense: tuple[int, ...]  # Coach's dense layers on the conv output (per position)
    middleware: tuple[int, ...]  # dense layers after flattening


_SHALLOW_CONV = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
_DEFAULT_MIDDLEWARE = (512,)
_VGG_MIDDLEWARE = (256, 128)  # the simapp's middleware for DEEP_CONVOLUTIONAL_NETWORK_DEEP
_STEREO_DEEP_CONV = ((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1))

FRONT_SCHEMES = {
    SHALLOW: CoachScheme(_SHALLOW_CONV, (), _DEFAULT_MIDDLEWARE),
    DEEP: CoachScheme(((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)), (64,), _DEFAULT_MIDDLEWARE),
    DEEPEST: CoachScheme(((32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)), (512, 512), _VGG_MIDDLEWARE),
}
STEREO_SCHEMES = {  # the simapp gives both deep networks one stereo embedder; the middleware still differs
    SHALLOW: CoachScheme(_SHALLOW_CONV, (), _DEFAULT_MIDDLEWARE),
    DEEP: CoachScheme(_STEREO_DEEP_CONV, (), _DEFAULT_MIDDLEWARE),
    DEEPEST: CoachScheme(_STEREO_DEEP_CONV, (), _VGG_MIDDLEWARE),
}


def scheme_for(network: str, stereo: bool) -> CoachScheme:
    return (STEREO_SCHEMES if stereo else FRONT_SCHEMES)[network]


class CoachCameraExtractor(BaseFeaturesExtractor):
    """Embedder (``cnn``: convolutions and per-position dense layers with ReLU, then flatten) and middleware
    (``linear``: dense layers with ReLU) of one scheme, on channels-first frames already scaled to [0, 1]."""

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        conv: list[list[int]],
        embedder_dense: list[int],
        middleware: list[int],
    ) -> None:
        channels = int((observation_space.shape or (1,))[0])
        layers: list[nn.Module] = []
        for filters, kernel, stride in conv:
            layers += [nn.Conv2d(channels, filters, kernel, stride), nn.ReLU()]
            channels = filters
        for units in embedder_dense:
            layers += [nn.Conv2d(channels, units, 1), nn.ReLU()]
            channels = units
        layers.append(nn.Flatten())
        cnn = nn.Sequential(*layers)
        with torch.no_grad():
            width = int(cnn(torch.zeros((1, *(observation_space.shape or ())))).shape[1])
        dense: list[nn.Module] = []
        for units in middleware:
            dense += [nn.Linear(width, units), nn.ReLU()]
            width = units
        super().__init__(observation_space, features_dim=width)
        self.cnn = cnn
        self.linear = nn.Sequential(*dense)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


def camera_policy_kwargs(network: str, stereo: bool, algorithm: str) -> dict[str, Any] | None:
    """``policy_kwargs`` for SB3's ``CnnPolicy``; ``None`` for the shallow network (SB3's own NatureCNN)."""
    if network == SHALLOW:
        return None
    scheme = scheme_for(network, stereo)
    kwargs: dict[str, Any] = {
        "features_extractor_class": CoachCameraExtractor,
        "features_extractor_kwargs": {
            "conv": [list(layer) for layer in scheme.conv],
            "embedder_dense": list(scheme.embedder_dense),
            "middleware": list(scheme.middleware),
        },
    }
    if algorithm != "sac":
        kwargs["net_arch"] = []  # the heads sit on the middleware, as Coach's ppo_head and v_head
    return kwargs
