"""The PCA artifact: ``model_algo-1``, an MXNet NDArray dict ``{"s": (k,), "v": (d, k), "mean": (1, d)}`` (float32),
the arrays in that order, as AWS's artifact holds them (``mx.nd.load`` shows ``s``, ``v``, ``mean``).

``s`` is in ascending order and the columns of ``v`` follow it, as in the AWS artifact
(docs/algorithms/pca.md#model-artifact). ``mean`` is all zeros when the model was trained with ``subtract_mean=false``,
so serving always computes ``(x - mean) @ v``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from containers.toolkit import ndarray_file

logger = logging.getLogger(__name__)

MODEL_FILE = ndarray_file.MODEL_FILE
NAMES = ("s", "v", "mean")  # the order of the names in the file


@dataclass(frozen=True)
class PCAModel:
    mean: np.ndarray  # (1, d)
    s: np.ndarray  # (k,), ascending
    v: np.ndarray  # (d, k)

    def project(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) @ self.v


def save_model(model_dir: Path, mean: np.ndarray, s: np.ndarray, v: np.ndarray) -> Path:
    path = model_dir / MODEL_FILE
    arrays = {
        "s": np.asarray(s, dtype=np.float32),
        "v": np.asarray(v, dtype=np.float32),
        "mean": np.asarray(mean, dtype=np.float32).reshape(1, -1),
    }
    ndarray_file.save(path, arrays)
    logger.info("saved %d components of dimension %d to %s", v.shape[1], v.shape[0], path)
    return path


def load_model(model_dir: Path) -> PCAModel:
    loaded = ndarray_file.load(model_dir / MODEL_FILE)
    if not isinstance(loaded, dict) or set(loaded) != set(NAMES):
        found = sorted(loaded) if isinstance(loaded, dict) else f"{len(loaded)} unnamed arrays"
        raise ndarray_file.NDArrayFileError(f"expected arrays named s, v, mean; found {found}")
    mean, s, v = loaded["mean"].reshape(1, -1), loaded["s"].ravel(), loaded["v"]
    if v.ndim != 2 or v.shape != (mean.shape[1], s.shape[0]):
        raise ndarray_file.NDArrayFileError(f"inconsistent shapes mean {mean.shape}, s {s.shape}, v {v.shape}")
    return PCAModel(mean, s, v)
