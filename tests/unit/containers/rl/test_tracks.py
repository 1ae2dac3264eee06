from __future__ import annotations

import math

import numpy as np
import pytest

from containers.rl.simulation.tracks import GENERATED, Track, load_track
from containers.toolkit.errors import UserError


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_tracks_are_closed_n_by_6_ccw_loops(name):
    rows = GENERATED[name]()
    assert rows.ndim == 2 and rows.shape[1] == 6 and rows.dtype == np.float64
    np.testing.assert_allclose(rows[0], rows[-1])
    track = Track.from_array(name, rows)
    assert track.is_loop and track.is_ccw
    assert 15.0 < track.length < 21.0
    # inner border (columns 2-3) is inside the loop: it encloses less area than the outer border
    assert np.all(np.isclose(track.widths, 0.76))


def test_oval_length_matches_its_construction(oval):
    # two 4 m straights and two semicircles of radius 1.83 m, sampled as a polyline (slightly shorter)
    assert oval.length == pytest.approx(8.0 + 2 * math.pi * 1.83, rel=2e-3)


def test_road_raster_area_is_length_times_width(oval):
    area = oval.raster.road.sum() * oval.raster.cell**2
    assert area == pytest.approx(oval.length * 0.76, rel=0.01)


def test_npy_round_trip_and_duplicate_sanitising(tmp_path, oval):
    rows = oval.to_array()
    with_duplicate = np.insert(rows, 10, rows[10], axis=0)
    path = tmp_path / "My_track.npy"
    np.save(path, with_duplicate)
    loaded = load_track(path)
    assert loaded.name == "My_track"
    assert len(loaded.center) == len(rows)  # the duplicate row is dropped, the closing row kept
    assert loaded.length == pytest.approx(oval.length)


def test_bad_track_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="N x 6"):
        Track.from_array("bad", np.zeros((5, 4)))
    with pytest.raises(UserError, match="neither a generated track"):
        load_track(tmp_path / "missing.npy")
