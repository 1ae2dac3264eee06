"""Serving for models that read dense rows of ``feature_dim`` floats (K-Means, PCA): one handler base class.

The subclass loads its artifact and turns a finite float64 ``(n, feature_dim)`` matrix into prediction rows; this
class does the rest the same way for every such algorithm: the content types (CSV, JSON, JSON Lines, recordIO in;
the same out, JSON by default), the 400 messages for a wrong width or NaN/inf values, and the 500 ``Unable to load
model`` answer for a missing or corrupt artifact.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from containers.toolkit.codecs import CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, MediaType
from containers.toolkit.codecs.inference import RowValue, decode_dense_request, encode_rows
from containers.toolkit.errors import ModelLoadError
from containers.toolkit.model_server.serving import InferenceHandler
from containers.toolkit.ndarray_file import MODEL_FILE

logger = logging.getLogger(__name__)


class DenseInferenceHandler(InferenceHandler):
    """Base for handlers whose model maps dense float rows to prediction rows."""

    content_types: ClassVar[tuple[str, ...]] = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    accepts: ClassVar[tuple[str, ...]] = (JSON, JSONLINES, CSV, RECORDIO_PROTOBUF)
    default_accept: ClassVar[str] = JSON
    model_file: ClassVar[str] = MODEL_FILE
    json_root: ClassVar[str]  # the key of the JSON answer: ``{"predictions": [...]}``

    feature_dim: int

    def load(self, model_dir: Path) -> None:
        try:
            self.feature_dim = self.load_model(model_dir)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Unable to load model: {model_dir / self.model_file}: {exc}") from exc

    @abstractmethod
    def load_model(self, model_dir: Path) -> int:
        """Load the artifact (raise OSError/ValueError when it is missing or corrupt); return its feature_dim."""

    @abstractmethod
    def predict_rows(self, features: np.ndarray) -> Sequence[Mapping[str, RowValue]]:
        """One prediction row (key -> value) per row of the float64 ``(n, feature_dim)`` matrix."""

    def invoke(self, body: bytes, content_type: MediaType, accept: str) -> bytes:
        features = decode_dense_request(body, str(content_type), self.feature_dim)
        return encode_rows(self.predict_rows(features), accept, json_root=self.json_root)
