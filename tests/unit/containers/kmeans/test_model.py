from __future__ import annotations

import numpy as np
import pytest

from containers.kmeans.model import MODEL_FILE, load_centers, save_centers
from containers.toolkit import ndarray_file


def test_centers_round_trip(tmp_path):
    centers = np.random.default_rng(0).normal(size=(4, 7))
    save_centers(tmp_path, centers)
    np.testing.assert_array_equal(load_centers(tmp_path), centers.astype(np.float32))


def test_named_single_array_is_accepted(tmp_path):
    centers = np.ones((2, 3), dtype=np.float32)
    ndarray_file.save(tmp_path / MODEL_FILE, {"centers": centers})
    np.testing.assert_array_equal(load_centers(tmp_path), centers)


def test_two_arrays_are_refused(tmp_path):
    ndarray_file.save(tmp_path / MODEL_FILE, [np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ndarray_file.NDArrayFileError, match="expected one 2-D array"):
        load_centers(tmp_path)
