"""XGBoost's removed binary model format read into a Booster of the XGBoost installed here.

Models written by XGBoost before 2.0 with ``save_model("<name>")`` (no ``.json``), the Booster inside pickles made
by XGBoost before 1.3, and AWS's XGBoost images 0.90-1 to 1.7-1 use this format; XGBoost 3.1 and later no longer read
it (docs/containers.md#xgboost-model-files-per-framework-version). The layout, little-endian, as XGBoost 0.90 - 1.7
write it:

* optional ``binf``; the learner parameters (136 bytes: base_score f32, num_feature u32, num_class i32,
  contain_extra_attrs i32, contain_eval_metrics i32, major/minor version u32, ...); objective and booster names
  (u64 length + bytes each);
* ``gbtree`` / ``dart``: the model parameters (160 bytes: num_trees i32, num_parallel_tree i32, ..., num_output_group
  i32 at byte 24), then every tree (148 bytes of parameters with num_nodes at byte 4, 20 bytes per node: parent,
  left, right i32, split index u32 with the default-left flag in bit 31, split condition or leaf value f32; 16 bytes
  of statistics per node: loss change, hessian sum, base weight f32, child count i32), then one i32 group per tree;
  ``dart`` then has its drop weights (u64 count + f32 each);
* ``gblinear``: 136 bytes of parameters, then the weights (u64 count + f32 each);
* the attributes when contain_extra_attrs (u64 count, then key and value strings).

Pickles of XGBoost 1.1 - 1.2 hold ``CONFIG-offset:``, an i64 offset, the binary model and then a JSON config.

The model is rebuilt by training a zero-round model of the same objective, booster and width with the XGBoost installed
here (so every parameter the installed version expects is present) and replacing its trees, weights and intercept.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

logger = logging.getLogger(__name__)

BINARY_HEADER = b"binf"
SERIALISATION_HEADER = b"CONFIG-offset:"
_LEARNER_PARAM_SIZE = 136
_GBTREE_PARAM_SIZE = 160
_TREE_PARAM_SIZE = 148
_GBLINEAR_PARAM_SIZE = 136
_NODE = struct.Struct("<iiiIf")
_STAT = struct.Struct("<fffi")
_DEFAULT_LEFT_BIT = 1 << 31
_INVALID_PARENT = 2**31 - 1  # the JSON form of the root's parent
# Objectives whose base_score XGBoost before 1.0 stored after this transformation (margin -> prediction).
_SIGMOID = ("binary:logistic", "reg:logistic")
_EXP = ("count:poisson", "reg:gamma", "reg:tweedie")


class LegacyModelError(ValueError):
    """The bytes are not a model in XGBoost's binary format."""


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.offset = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.offset + size > len(self.raw):
            raise LegacyModelError(f"truncated model: needed {size} bytes at offset {self.offset} of {len(self.raw)}")
        chunk = self.raw[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("Q")
        if length > len(self.raw):
            raise LegacyModelError(f"string length {length} is beyond the model's size")
        return self.take(length).decode("utf-8")

    def floats(self) -> list[float]:
        (count,) = self.unpack("Q")
        return [float(value) for value in np.frombuffer(self.take(4 * count), dtype="<f4")]


@dataclass
class LegacyTree:
    parents: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    split_index: list[int] = field(default_factory=list)
    default_left: list[int] = field(default_factory=list)
    condition: list[float] = field(default_factory=list)
    loss_change: list[float] = field(default_factory=list)
    hessian: list[float] = field(default_factory=list)
    base_weight: list[float] = field(default_factory=list)
    num_deleted: int = 0


@dataclass
class LegacyModel:
    base_score: float
    num_feature: int
    num_class: int
    major_version: int
    objective: str
    booster: str
    num_parallel_tree: int = 1
    trees: list[LegacyTree] = field(default_factory=list)
    tree_info: list[int] = field(default_factory=list)
    weight_drop: list[float] = field(default_factory=list)
    linear_weights: list[float] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)


def strip_serialisation(raw: bytes) -> bytes:
    """The binary model inside an XGBoost 1.1 - 1.2 serialisation (``CONFIG-offset:``), else ``raw`` unchanged."""
    if not raw.startswith(SERIALISATION_HEADER):
        return raw
    start = len(SERIALISATION_HEADER)
    (offset,) = struct.unpack("<q", raw[start : start + 8])
    if offset <= 0 or start + 8 + offset > len(raw):
        raise LegacyModelError("the serialised model's offset is out of range")
    return raw[start + 8 : start + 8 + offset]


def _read_tree(reader: _Reader) -> LegacyTree:
    _, num_nodes, num_deleted = reader.unpack("iii")
    reader.take(_TREE_PARAM_SIZE - 12)
    if num_nodes <= 0:
        raise LegacyModelError(f"a tree has {num_nodes} nodes")
    tree = LegacyTree(num_deleted=num_deleted)
    for parent, left, right, sindex, info in _NODE.iter_unpack(reader.take(_NODE.size * num_nodes)):
        tree.parents.append(_INVALID_PARENT if parent == -1 else parent & (_DEFAULT_LEFT_BIT - 1))
        tree.left.append(left)
        tree.right.append(right)
        # a deleted node is all ones: index 2**31 - 1 with the default-left bit, as the JSON form writes it
        tree.split_index.append(sindex & (_DEFAULT_LEFT_BIT - 1))
        tree.default_left.append(int(bool(sindex & _DEFAULT_LEFT_BIT)))
        tree.condition.append(info)
    for loss, hess, weight, _ in _STAT.iter_unpack(reader.take(_STAT.size * num_nodes)):
        tree.loss_change.append(loss)
        tree.hessian.append(hess)
        tree.base_weight.append(weight)
    return tree


def parse_legacy_binary(raw: bytes) -> LegacyModel:
    """Read the binary format (see the module docstring); raises LegacyModelError."""
    reader = _Reader(strip_serialisation(raw))
    if reader.raw[:4] == BINARY_HEADER:
        reader.take(4)
    base_score, num_feature, num_class, extra_attrs, _, major = reader.unpack("fIiiiI")
    reader.take(_LEARNER_PARAM_SIZE - 24)
    try:
        model = LegacyModel(base_score, num_feature, num_class, major, reader.string(), reader.string())
    except UnicodeDecodeError as exc:
        raise LegacyModelError("the objective or booster name is not text") from exc
    if model.booster in ("gbtree", "dart"):
        num_trees, parallel = reader.unpack("ii")
        reader.take(_GBTREE_PARAM_SIZE - 8)
        model.num_parallel_tree = max(parallel, 1)
        model.trees = [_read_tree(reader) for _ in range(num_trees)]
        model.tree_info = list(reader.unpack(f"{num_trees}i")) if num_trees else []
        if model.booster == "dart" and num_trees:
            model.weight_drop = reader.floats()
    elif model.booster == "gblinear":
        reader.take(_GBLINEAR_PARAM_SIZE)
        model.linear_weights = reader.floats()
    else:
        raise LegacyModelError(f"unknown booster {model.booster!r}")
    if extra_attrs:
        (count,) = reader.unpack("Q")
        model.attributes = {reader.string(): reader.string() for _ in range(count)}
    return model


def _base_score(model: LegacyModel) -> float:
    """The intercept as a prediction (XGBoost before 1.0 stored it as a margin for the objectives below)."""
    score = model.base_score
    if model.major_version >= 1 or model.objective.startswith("multi:"):
        return score
    if model.objective in _SIGMOID:
        return 1.0 / (1.0 + math.exp(-score))
    if model.objective in _EXP:
        return math.exp(score)
    return score


def _template(model: LegacyModel) -> dict[str, Any]:
    """A zero-round model of the same kind, as the JSON document of the installed XGBoost."""
    params: dict[str, Any] = {"objective": model.objective, "booster": model.booster}
    groups = max(model.num_class, 1)
    if model.num_class > 1:
        params["num_class"] = model.num_class
    for key, value in model.attributes.items():
        if key.startswith("SAVED_PARAM_"):
            params[key[len("SAVED_PARAM_") :]] = value
    if model.objective.startswith("rank:"):
        features = np.zeros((2, max(model.num_feature, 1)), dtype=np.float32)
        matrix = xgb.DMatrix(features, label=np.zeros(2), group=[2])
    else:
        features = np.zeros((groups, max(model.num_feature, 1)), dtype=np.float32)
        label = np.arange(groups, dtype=np.float32) if model.num_class > 1 else np.full(1, 0.5, dtype=np.float32)
        matrix = xgb.DMatrix(features[: len(label)], label=label)
    booster = xgb.train(params, matrix, num_boost_round=0)
    document: dict[str, Any] = json.loads(bytes(booster.save_raw(raw_format="json")))
    return document


def _tree_json(tree: LegacyTree, index: int, num_feature: int, template: dict[str, Any]) -> dict[str, Any]:
    nodes = len(tree.left)
    document = dict(template)
    document.update(
        {
            "id": index,
            "parents": tree.parents,
            "left_children": tree.left,
            "right_children": tree.right,
            "split_indices": tree.split_index,
            "default_left": tree.default_left,
            "split_conditions": tree.condition,
            "loss_changes": tree.loss_change,
            "sum_hessian": tree.hessian,
            "base_weights": tree.base_weight,
            "split_type": [0] * nodes,
            "categories": [],
            "categories_nodes": [],
            "categories_segments": [],
            "categories_sizes": [],
        }
    )
    tree_param = dict(template.get("tree_param", {}))
    tree_param.update({"num_nodes": str(nodes), "num_deleted": str(tree.num_deleted), "num_feature": str(num_feature)})
    document["tree_param"] = tree_param
    return document


_TREE_KEYS = {"tree_param": {"num_deleted": "0", "num_feature": "0", "num_nodes": "1", "size_leaf_vector": "1"}}


def _fill_trees(gbtree: dict[str, Any], model: LegacyModel) -> None:
    trees = [_tree_json(tree, index, model.num_feature, _TREE_KEYS) for index, tree in enumerate(model.trees)]
    gbtree["trees"] = trees
    gbtree["tree_info"] = model.tree_info
    per_round = max(model.num_class, 1) * model.num_parallel_tree
    gbtree["iteration_indptr"] = list(range(0, len(trees) + 1, per_round)) if trees else [0]
    gbtree["gbtree_model_param"] = {"num_parallel_tree": str(model.num_parallel_tree), "num_trees": str(len(trees))}


def _merge_objective(objective: dict[str, Any], saved: str | None) -> None:
    """The objective's parameters XGBoost 1.x kept in the ``objective`` attribute, where the template has them."""
    try:
        document = json.loads(saved) if saved else {}
    except ValueError:
        return
    if not isinstance(document, dict) or document.get("name") != objective.get("name"):
        return
    for key, params in document.items():
        if isinstance(params, dict) and isinstance(objective.get(key), dict):
            objective[key].update({name: value for name, value in params.items() if name in objective[key]})


def to_booster(model: LegacyModel) -> xgb.Booster:
    """A Booster of the installed XGBoost that predicts as ``model`` did."""
    document = _template(model)
    learner = document["learner"]
    score = learner["learner_model_param"]["base_score"]
    value = f"{_base_score(model):.9E}"
    learner["learner_model_param"]["base_score"] = f"[{value}]" if str(score).startswith("[") else value
    learner["learner_model_param"]["num_feature"] = str(model.num_feature)
    booster_doc = learner["gradient_booster"]
    if model.booster == "gbtree":
        _fill_trees(booster_doc["model"], model)
    elif model.booster == "dart":
        _fill_trees(booster_doc["gbtree"]["model"], model)
        booster_doc["weight_drop"] = model.weight_drop
    else:
        booster_doc["model"]["weights"] = model.linear_weights
        booster_doc["model"]["boosted_rounds"] = 1
    _merge_objective(learner["objective"], model.attributes.get("objective"))
    learner["attributes"] = {
        key: value for key, value in model.attributes.items() if not key.startswith("SAVED_") and key != "objective"
    }
    booster = xgb.Booster(model_file=bytearray(json.dumps(document).encode("utf-8")))
    logger.info(
        "Read a model in XGBoost's binary format (XGBoost %s, %s, %s, %d trees)",
        f"{model.major_version}.x" if model.major_version else "before 1.0",
        model.objective,
        model.booster,
        len(model.trees),
    )
    return booster


def load_legacy_binary(raw: bytes) -> xgb.Booster:
    """Parse and rebuild; raises LegacyModelError for bytes that are not such a model."""
    try:
        return to_booster(parse_legacy_binary(raw))
    except (struct.error, KeyError, xgb.core.XGBoostError) as exc:
        raise LegacyModelError(f"not a readable model in XGBoost's binary format: {exc}") from exc
