from __future__ import annotations

import numpy as np
import pytest

from containers.kmeans.algorithm import (
    Scores,
    StreamingKMeans,
    kmeans_plusplus,
    nearest_center,
    reduce_centers,
    weighted_lloyd,
)
from tests.unit.containers.kmeans.conftest import match_centers


def _fit(points, k, *, batch, init="random", half_life=0, factor=10, seed=0):
    rng = np.random.default_rng(seed)
    stream = StreamingKMeans(k * factor, half_life, rng)
    stream.initialize(points[:batch], init)
    for start in range(0, len(points), batch):
        stream.partial_fit(points[start : start + batch])
    return reduce_centers(
        stream.centers, stream.counts, k, trials=10, init_method="kmeans++", max_iter=300, tol=1e-4, rng=rng
    )


def test_nearest_center_known_answer():
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    points = np.array([[1.0, 0.0], [9.0, 1.0], [5.0, 0.0]])
    labels, d2 = nearest_center(points, centers)
    assert labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(d2, [1.0, 2.0, 25.0])


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_well_separated_blobs_are_recovered(blobs, init):
    points, truth = blobs
    found = match_centers(_fit(points, 4, batch=500, init=init), truth)
    np.testing.assert_allclose(found, truth, atol=0.1)


def test_per_center_learning_rate_gives_running_means():
    # one center, three batches: with p = n/(N+n) the center is the exact mean of everything it has seen
    rng = np.random.default_rng(0)
    stream = StreamingKMeans(1, 0, rng)
    data = rng.normal(size=(30, 3))
    stream.initialize(data[:10], "random")
    for start in (0, 10, 20):
        stream.partial_fit(data[start : start + 10])
    np.testing.assert_allclose(stream.centers[0], data.mean(axis=0))
    assert stream.counts.tolist() == [30.0]


def test_half_life_decays_the_weights():
    rng = np.random.default_rng(0)
    stream = StreamingKMeans(1, 10, rng)
    stream.initialize(np.zeros((1, 1)), "random")
    stream.partial_fit(np.zeros((10, 1)))  # N = 10
    stream.partial_fit(np.full((10, 1), 4.0))  # N decays to 5 first, so p = 10 / 15
    assert stream.counts.tolist() == [15.0]
    np.testing.assert_allclose(stream.centers[0], [4.0 * 10 / 15])


def test_weighted_lloyd_known_answer():
    points = np.array([[0.0], [1.0], [10.0], [12.0]])
    weights = np.array([3.0, 1.0, 1.0, 1.0])
    result = weighted_lloyd(points, weights, np.array([[0.0], [10.0]]), max_iter=50, tol=0.0)
    np.testing.assert_allclose(np.sort(result.centers[:, 0]), [0.25, 11.0])
    np.testing.assert_allclose(result.msd, (3 * 0.0625 + 0.5625 + 1 + 1) / 6)


def test_kmeans_plusplus_never_picks_weightless_points_twice():
    points = np.array([[0.0], [0.0], [5.0], [9.0]])
    picked = kmeans_plusplus(points, np.array([1.0, 1.0, 1.0, 1.0]), 3, np.random.default_rng(1))
    assert sorted(points[picked, 0].tolist()) == [0.0, 5.0, 9.0]


def test_streaming_in_small_batches_is_close_to_one_batch(blobs):
    points, truth = blobs
    one = match_centers(_fit(points, 4, batch=len(points)), truth)
    many = match_centers(_fit(points, 4, batch=100), truth)
    np.testing.assert_allclose(one, many, atol=0.1)


def test_reduction_with_more_centers_than_points_that_got_data():
    centers = np.array([[0.0], [1.0], [2.0], [3.0]])
    result = reduce_centers(
        centers,
        np.array([5.0, 0.0, 0.0, 0.0]),
        2,
        trials=2,
        init_method="random",
        max_iter=10,
        tol=0.0,
        rng=np.random.default_rng(0),
    )
    assert result.shape == (2, 1)


def test_scores_msd_and_ssd():
    scores = Scores()
    scores.add(np.array([[1.0], [3.0]]), np.array([[0.0]]))
    scores.add(np.array([[2.0]]), np.array([[0.0]]))
    assert (scores.ssd, scores.rows, scores.msd) == (14.0, 3, 14.0 / 3)
