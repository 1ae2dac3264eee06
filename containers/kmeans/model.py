"""The K-Means artifact: ``model_algo-1``, an MXNet NDArray list with one float32 ``(k, feature_dim)`` array."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from containers.toolkit import ndarray_file

logger = logging.getLogger(__name__)

MODEL_FILE = ndarray_file.MODEL_FILE


def save_centers(model_dir: Path, centers: np.ndarray) -> Path:
    path = model_dir / MODEL_FILE
    ndarray_file.save(path, [np.asarray(centers, dtype=np.float32)])
    logger.info("saved %d centers of dimension %d to %s", centers.shape[0], centers.shape[1], path)
    return path


def load_centers(model_dir: Path) -> np.ndarray:
    """The centroids as float32 ``(k, feature_dim)``; raises NDArrayFileError / OSError on a bad artifact."""
    loaded = ndarray_file.load(model_dir / MODEL_FILE)
    arrays = list(loaded.values()) if isinstance(loaded, dict) else loaded
    if len(arrays) != 1 or arrays[0].ndim != 2:
        shapes = [array.shape for array in arrays]
        raise ndarray_file.NDArrayFileError(f"expected one 2-D array of centroids, found shapes {shapes}")
    return arrays[0].astype(np.float32, copy=False)
