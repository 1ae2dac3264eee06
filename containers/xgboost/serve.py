"""Algorithm-mode inference (docs/algorithms/xgboost.md#inference): CSV, LIBSVM and recordIO in; CSV, JSON, JSON Lines
and recordIO out.

Prediction uses ``Booster.inplace_predict`` with one thread per worker (no DMatrix, no pandas), the best iteration
when early stopping recorded one, and the mean (or majority vote) of every model file when the model directory holds
a k-fold ensemble.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import xgboost as xgb

from containers.toolkit.codecs import (
    CSV,
    LIBSVM,
    RECORDIO_PROTOBUF,
    MediaType,
    decode_request,
    encode_rows,
)
from containers.toolkit.errors import BadRequestError, InferenceError, ModelLoadError, UnsupportedMediaTypeError
from containers.toolkit.model_server.serving import InferenceHandler, ServingConfig
from containers.xgboost.model_format.model_files import read_model
from containers.xgboost.outputs import SelectableOutput, format_value, parse_output_keys
from containers.xgboost.spec import MANIFEST

logger = logging.getLogger(__name__)

VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")


@dataclass(frozen=True)
class LoadedModel:
    booster: xgb.Booster
    objective: str
    num_class: int
    num_features: int
    iteration_range: tuple[int, int]


def _model_info(booster: xgb.Booster) -> LoadedModel:
    import json

    config = json.loads(booster.save_config())
    learner = config["learner"]
    objective = str(learner["objective"]["name"])
    num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
    best = booster.attr("best_iteration")
    rounds = booster.num_boosted_rounds()
    stop = min(int(best) + 1, rounds) if best is not None else 0
    return LoadedModel(booster, objective, num_class, booster.num_features(), (0, stop))


def load_booster(path: Path) -> xgb.Booster:
    """Any model file AWS's images or XGBoost releases write (model_files.py)."""
    return read_model(path)


def model_files(model_dir: Path, ensemble: bool) -> list[Path]:
    files = []
    for path in sorted(model_dir.iterdir()) if model_dir.is_dir() else []:
        if path.name.startswith("."):
            logger.warning("Ignoring hidden file %s in the model directory", path.name)
        elif path.name.endswith(".tar.gz"):  # SDK local mode mounts the archive beside the extracted model
            logger.info("Ignoring the model archive %s in the model directory", path.name)
        elif path.is_file():
            files.append(path)
    if not files:
        raise ModelLoadError(f"Unable to load model: no model file in {model_dir}")
    return files if ensemble else files[:1]


def combine(predictions: Sequence[np.ndarray], objective: str) -> np.ndarray:
    """Mean of the ensemble's predictions, or the majority vote for label-valued objectives."""
    if len(predictions) == 1:
        return predictions[0]
    stacked = np.stack(predictions)
    if objective in VOTING_OBJECTIVES:
        votes = np.rint(stacked).astype(np.int64)
        counts = np.apply_along_axis(lambda column: np.bincount(column, minlength=2), 0, votes)
        return np.asarray(np.argmax(counts, axis=0), dtype=np.float32)
    return np.asarray(np.mean(stacked, axis=0, dtype=np.float64), dtype=np.float32)


def _content_kind(content_type: MediaType) -> str:
    return {CSV: "csv", LIBSVM: "libsvm", RECORDIO_PROTOBUF: "recordio-protobuf"}.get(content_type.type, "request")


class XGBoostHandler(InferenceHandler):
    """The ``/invocations`` logic of the XGBoost container."""

    # containers/xgboost/manifest.toml, [inference]
    content_types: ClassVar[tuple[str, ...]] = MANIFEST.inference_content_types
    accepts: ClassVar[tuple[str, ...]] = MANIFEST.inference_accepts
    default_accept: ClassVar[str] = MANIFEST.inference_default_accept
    default_content_type: ClassVar[str | None] = MANIFEST.inference_default_content_type

    def __init__(self, config: ServingConfig) -> None:
        super().__init__(config)
        self._models: list[LoadedModel] = []
        self._output: SelectableOutput | None = None

    @property
    def environ(self) -> Mapping[str, str]:
        return self.config.environ or {}

    def load(self, model_dir: Path) -> None:
        ensemble = self.environ.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true").strip().lower() != "false"
        models = []
        for path in model_files(model_dir, ensemble):
            booster = load_booster(path)
            booster.set_param({"nthread": 1})
            models.append(_model_info(booster))
        keys = parse_output_keys(self.environ.get("SAGEMAKER_INFERENCE_OUTPUT", ""))
        first = models[0]
        self._output = SelectableOutput(keys, first.objective, first.num_class) if keys else None
        self._models = models
        logger.info("Loaded %d model(s) from %s (objective %s)", len(models), model_dir, first.objective)

    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> bytes:
        label_size = content_type.params.get("label_size")
        if content_type.type == CSV and label_size not in (None, "1"):
            raise UnsupportedMediaTypeError(f"label_size must be 1 for text/csv, got {label_size}.")
        features = self._checked_features(decode_request(body, content_type.type).features, content_type)
        predictions = self.predict(features)
        return self.encode(predictions, accept)

    def _checked_features(self, features: Any, content_type: MediaType) -> Any:
        expected = self._models[0].num_features
        given = int(features.shape[1])
        if sp.issparse(features):
            if given > expected:
                raise BadRequestError(
                    f"Feature size of {_content_kind(content_type)} inference data {given} is larger than the "
                    f"feature size of the trained model {expected}."
                )
            matrix = sp.csr_matrix(features)
            return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], expected))
        if given != expected:
            raise BadRequestError(
                f"Feature size of {_content_kind(content_type)} inference data {given} is not consistent with "
                f"feature size of trained model {expected}."
            )
        return features

    def predict(self, features: Any) -> np.ndarray:
        outputs = []
        for model in self._models:
            try:
                raw = model.booster.inplace_predict(
                    features, iteration_range=model.iteration_range, validate_features=False
                )
            except (xgb.core.XGBoostError, ValueError) as exc:
                raise BadRequestError(f"Unable to evaluate payload provided: {exc}") from exc
            outputs.append(np.asarray(raw))
        return combine(outputs, self._models[0].objective)

    def encode(self, predictions: np.ndarray, accept: str) -> bytes:
        if self._output is not None:
            return self._output.encode(predictions, accept, batch=self.config.batch)
        if self.config.batch:
            return ("\n".join(format_value(row) for row in predictions) + "\n").encode("utf-8")
        if predictions.ndim == 1 and accept == CSV:  # the common case, without a dict per row
            return ("\n".join(predictions.astype(np.float32).astype(str).tolist()) + "\n").encode("utf-8")
        try:
            return encode_rows([{"score": row} for row in predictions], accept, json_root="predictions")
        except InferenceError:
            raise
        except (TypeError, ValueError) as exc:
            raise InferenceError(f"Unable to encode the predictions as {accept}: {exc}") from exc
