"""Selectable inference output (``SAGEMAKER_INFERENCE_OUTPUT``, docs/algorithms/xgboost.md#inference) and the text form
of predictions."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np

from containers.toolkit.codecs import CSV, encode_rows, parse_media_type
from containers.toolkit.errors import InferenceError, ModelLoadError

logger = logging.getLogger(__name__)

Value = float | list[float]
_NAN = math.nan

PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")
REGRESSION_OBJECTIVES = ("reg:squarederror", "reg:logistic", "reg:gamma", "reg:absoluteerror", "reg:tweedie")
CLASSIFICATION_OBJECTIVES = ("binary:logistic", "binary:logitraw", "binary:hinge", "multi:softmax", "multi:softprob")
SUPPORTED_OBJECTIVES = CLASSIFICATION_OBJECTIVES + REGRESSION_OBJECTIVES


def format_value(value: object) -> str:
    """A prediction as text: the shortest float32 form (``0.1``), a list as ``[0.1, 0.9]``."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return "[" + ", ".join(format_value(item) for item in value.ravel()) + "]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return str(np.float32(value))  # type: ignore[arg-type]


def _scalar(row: np.ndarray) -> float:
    return float(row.reshape(-1)[0])


def _predicted_label(row: np.ndarray, objective: str) -> Value:
    if objective == "binary:logistic":
        return float(int(_scalar(row) > 0.5))
    if objective == "binary:logitraw":
        return float(int(_scalar(row) > 0))
    if objective == "multi:softprob":
        return float(np.argmax(row))
    return _scalar(row)


def _labels(objective: str, num_class: int) -> Value:
    if objective.startswith("binary:"):
        return [0.0, 1.0]
    return [float(index) for index in range(num_class)]


def _pair(row: np.ndarray) -> list[float]:
    p = _scalar(row)
    return [1.0 - p, p]


def _vector(row: np.ndarray) -> list[float]:
    return [float(item) for item in row.reshape(-1)]


def _value(key: str, row: np.ndarray, objective: str, num_class: int) -> Value:
    softprob = objective == "multi:softprob"
    if key == "predicted_label" and objective in CLASSIFICATION_OBJECTIVES:
        return _predicted_label(row, objective)
    if key == "labels" and objective in CLASSIFICATION_OBJECTIVES:
        return _labels(objective, num_class)
    if key == "probability" and objective in PROBABILITY_OBJECTIVES:
        return float(np.max(row)) if softprob else _scalar(row)
    if key == "probabilities" and objective in PROBABILITY_OBJECTIVES:
        return _vector(row) if softprob else _pair(row)
    if key == "raw_score" and objective in CLASSIFICATION_OBJECTIVES:
        return float(np.max(row)) if softprob else _scalar(row)
    if key == "raw_scores" and objective in CLASSIFICATION_OBJECTIVES:
        return _vector(row) if softprob else _pair(row)
    if key == "predicted_score" and objective in REGRESSION_OBJECTIVES:
        return _scalar(row)
    return _NAN


VALID_KEYS = ("predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores", "predicted_score")


def parse_output_keys(text: str) -> tuple[str, ...]:
    keys = tuple(item.strip().lower() for item in text.split(",") if item.strip())
    unknown = [key for key in keys if key not in VALID_KEYS]
    if unknown:
        raise ModelLoadError(
            f"SAGEMAKER_INFERENCE_OUTPUT has unsupported key(s) {', '.join(unknown)}; valid keys: "
            + ", ".join(VALID_KEYS)
        )
    return keys


def _csv_cell(value: Value) -> str:
    if isinstance(value, list):
        return '"' + format_value(value) + '"'
    return format_value(value)


class SelectableOutput:
    """Rows of the requested keys for each prediction, encoded for the negotiated Accept type."""

    def __init__(self, keys: Sequence[str], objective: str, num_class: int) -> None:
        self.keys = tuple(keys)
        self.objective = objective
        self.num_class = num_class
        for key in self.keys:
            probe = _value(key, np.zeros(max(num_class, 1), dtype=np.float32), objective, num_class)
            if isinstance(probe, float) and math.isnan(probe):
                logger.warning("Inference output %s does not apply to objective %s: it will be NaN", key, objective)

    def rows(self, predictions: np.ndarray) -> list[dict[str, Value]]:
        if self.objective not in SUPPORTED_OBJECTIVES:
            raise InferenceError(
                f"Selectable inference output is not supported for objective {self.objective}; supported: "
                + ", ".join(SUPPORTED_OBJECTIVES)
            )
        value: Callable[[str, np.ndarray], Value] = lambda key, row: _value(key, row, self.objective, self.num_class)  # noqa: E731
        return [{key: value(key, np.asarray(row)) for key in self.keys} for row in predictions]

    def encode(self, predictions: np.ndarray, accept: str, *, batch: bool) -> bytes:
        rows = self.rows(predictions)
        if parse_media_type(accept).type == CSV:
            lines = [",".join(_csv_cell(row[key]) for key in self.keys) for row in rows]
            return ("\n".join(lines) + ("\n" if batch else "")).encode("utf-8")
        return encode_rows(rows, accept, json_root="predictions")
