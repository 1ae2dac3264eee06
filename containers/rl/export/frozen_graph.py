"""The policy rebuilt as a TensorFlow 1 graph with the tensor names of DeepRacer's Coach network, saved as a
checkpoint and as the frozen graph (``model.pb``) the car converts with OpenVINO.

Names (docs/deepracer.md#export): the input is ``main_level/agent/{head}/online/network_0/{sensor}/{sensor}`` with
head ``main`` (PPO) or ``policy`` (SAC) and sensor ``FRONT_FACING_CAMERA`` (camera frames ``[N, 120, 160, stack]``,
raw 0-255 pixels), ``STEREO_CAMERAS`` (``[N, 120, 160, 2 × stack]``, left then right) or ``observation`` (the vector
observation); the output is PPO's
``main_level/agent/main/online/network_1/ppo_head_0/policy`` or SAC's
``main_level/agent/policy/online/network_0/sac_policy_head_0/policy``: action probabilities (discrete) or the action
in [-1, 1]² (continuous). TensorFlow is imported here only (it is not in the container images).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from containers.rl.export.policy_layers import Layer, PolicyLayers

logger = logging.getLogger(__name__)

HEAD_NAMES = {"clipped_ppo": "main", "sac": "policy"}
OUTPUT_NAMES = {
    "clipped_ppo": "main_level/agent/main/online/network_1/ppo_head_0/policy",
    "sac": "main_level/agent/policy/online/network_0/sac_policy_head_0/policy",
}


@dataclass(frozen=True)
class GraphNames:
    input: str
    output: str

    @staticmethod
    def of(policy: PolicyLayers) -> GraphNames:
        sensor = policy.sensor or ("FRONT_FACING_CAMERA" if policy.image else "observation")
        head = HEAD_NAMES[policy.algorithm]
        return GraphNames(f"main_level/agent/{head}/online/network_0/{sensor}/{sensor}", OUTPUT_NAMES[policy.algorithm])


def _tf() -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        from containers.toolkit.errors import UserError

        raise UserError("export needs tensorflow-cpu (pip install tensorflow-cpu==2.21.0, see docs)") from exc
    return tf


def _layer(tf: Any, x: Any, i: int, layer: Layer) -> Any:
    v1 = tf.compat.v1
    if layer.kind == "conv":
        x = tf.nn.conv2d(x, v1.Variable(np.transpose(np.asarray(layer.weight), (2, 3, 1, 0)), name=f"conv_{i}/kernel"),
                         strides=layer.stride, padding="VALID")  # fmt: skip
    elif layer.kind == "dense":
        x = tf.matmul(x, v1.Variable(np.asarray(layer.weight).T, name=f"dense_{i}/kernel"))
    elif layer.kind == "relu":
        return tf.nn.relu(x)
    elif layer.kind == "tanh":
        return tf.tanh(x)
    else:  # flatten; torch flattens channels-first: [N, C, H, W]
        if len(x.shape) == 4:
            x = tf.transpose(x, (0, 3, 1, 2))
        return tf.reshape(x, (-1, int(np.prod(x.shape[1:]))))
    if layer.bias is not None:
        x = tf.nn.bias_add(x, v1.Variable(layer.bias, name=f"{layer.kind}_{i}/bias"))
    return x


def _build(tf: Any, policy: PolicyLayers, names: GraphNames) -> None:
    """Ops of the policy in the current default graph; weights are variables (so a checkpoint can be written)."""
    v1 = tf.compat.v1
    x = v1.placeholder(tf.float32, shape=(None, *policy.input_shape), name=names.input)
    head_scope = names.input.rsplit("/network_0/", 1)[0]
    with tf.name_scope(f"{head_scope}/network_0/middleware/"):
        if policy.input_scale != 1.0:
            x = x * np.float32(policy.input_scale)
        for i, layer in enumerate(policy.layers):
            x = _layer(tf, x, i, layer)
    if policy.head == "softmax":
        tf.nn.softmax(x, name=names.output)
    elif policy.head == "tanh":
        tf.tanh(x, name=names.output)
    else:
        tf.clip_by_value(x, -1.0, 1.0, name=names.output)


def write_graph(policy: PolicyLayers, checkpoint_prefix: Path | None, frozen_path: Path) -> GraphNames:
    """Write ``frozen_path`` (binary GraphDef, variables folded into constants) and, if given, a TF checkpoint
    (``<prefix>.index``, ``.data-00000-of-00001``, ``.meta``) of the same graph."""
    tf = _tf()
    v1 = tf.compat.v1
    names = GraphNames.of(policy)
    graph = tf.Graph()
    with graph.as_default():
        _build(tf, policy, names)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            if checkpoint_prefix is not None:
                v1.train.Saver().save(sess, str(checkpoint_prefix))
            frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), [names.output])
    frozen_path.parent.mkdir(parents=True, exist_ok=True)
    frozen_path.write_bytes(frozen.SerializeToString())
    logger.info("wrote %s (input %s, output %s)", frozen_path, names.input, names.output)
    return names


def run_frozen_graph(frozen_path: Path, names: GraphNames, observations: np.ndarray) -> np.ndarray:
    """The policy output of a frozen graph for a batch of observations, computed by TensorFlow."""
    tf = _tf()
    v1 = tf.compat.v1
    graph_def = v1.GraphDef()
    graph_def.ParseFromString(frozen_path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with v1.Session(graph=graph) as sess:
        return np.asarray(
            sess.run(f"{names.output}:0", {f"{names.input}:0": observations.astype(np.float32)}), dtype=np.float32
        )
