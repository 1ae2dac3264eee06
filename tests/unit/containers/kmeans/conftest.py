from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """(points, true centers): 4 well-separated blobs in 5 dimensions, shuffled."""
    centers = np.array(
        [[0, 0, 0, 0, 0], [20, 0, 0, 0, 0], [0, 20, 0, 0, 0], [0, 0, 20, 20, 20]],
        dtype=np.float64,
    )
    points, _ = make_blobs(n_samples=2000, centers=centers, cluster_std=0.5, random_state=3, shuffle=True)
    return points, centers


def match_centers(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``found`` reordered to line up with ``truth`` (nearest found center for each true one, all distinct)."""
    order = [int(np.argmin(((found - center) ** 2).sum(axis=1))) for center in truth]
    assert len(set(order)) == len(truth), "two true centers map to the same found center"
    return found[order]
