"""K-Means inference (docs/algorithms/kmeans.md#inference): ``closest_cluster`` and ``distance_to_cluster`` (Euclidean)
per record."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from containers.kmeans.algorithm import nearest_center
from containers.kmeans.model import load_centers
from containers.kmeans.spec import MANIFEST
from containers.toolkit.codecs.inference import RowValue
from containers.toolkit.model_server.dense_serving import DenseInferenceHandler

logger = logging.getLogger(__name__)


class KMeansHandler(DenseInferenceHandler):
    # containers/kmeans/manifest.toml, [inference]
    content_types: ClassVar[tuple[str, ...]] = MANIFEST.inference_content_types
    accepts: ClassVar[tuple[str, ...]] = MANIFEST.inference_accepts
    default_accept: ClassVar[str] = MANIFEST.inference_default_accept
    json_root: ClassVar[str] = "predictions"

    centers: np.ndarray

    def load_model(self, model_dir: Path) -> int:
        centers = load_centers(model_dir)
        self.centers = centers.astype(np.float64)
        logger.info("loaded %d centers of dimension %d", centers.shape[0], centers.shape[1])
        return int(centers.shape[1])

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(closest cluster index, Euclidean distance) of every row, as float32 like the AWS container."""
        labels, d2 = nearest_center(features, self.centers)
        return labels.astype(np.float32), np.sqrt(d2).astype(np.float32)

    def predict_rows(self, features: np.ndarray) -> Sequence[Mapping[str, RowValue]]:
        clusters, distances = self.predict(features)
        return [
            {"closest_cluster": cluster, "distance_to_cluster": distance}
            for cluster, distance in zip(clusters, distances, strict=True)
        ]
