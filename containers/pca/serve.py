"""PCA inference (docs/algorithms/pca.md#inference): ``projection = (x - mean) @ v`` per record, under the key
``projection``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from containers.pca.model import PCAModel, load_model
from containers.pca.spec import MANIFEST
from containers.toolkit.codecs.inference import RowValue
from containers.toolkit.model_server.dense_serving import DenseInferenceHandler

logger = logging.getLogger(__name__)


class PCAHandler(DenseInferenceHandler):
    # containers/pca/manifest.toml, [inference]
    content_types: ClassVar[tuple[str, ...]] = MANIFEST.inference_content_types
    accepts: ClassVar[tuple[str, ...]] = MANIFEST.inference_accepts
    default_accept: ClassVar[str] = MANIFEST.inference_default_accept
    json_root: ClassVar[str] = "projections"

    model: PCAModel

    def load_model(self, model_dir: Path) -> int:
        self.model = load_model(model_dir)
        logger.info("loaded %d components of dimension %d", self.model.v.shape[1], self.model.v.shape[0])
        return int(self.model.v.shape[0])

    def predict_rows(self, features: np.ndarray) -> Sequence[Mapping[str, RowValue]]:
        projections = self.model.project(features).astype(np.float32)
        return [{"projection": row} for row in projections]
