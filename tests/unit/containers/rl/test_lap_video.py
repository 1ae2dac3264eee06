"""The evaluation lap to watch: camera frames beside a top-down view, one frame per sim-trace row."""

import math

import numpy as np
from PIL import Image

from containers.rl.outputs.lap_video import CAR, MAX_FRAMES, lap_to_watch, write_lap_video
from containers.rl.simulation.camera import HEIGHT, WIDTH, Camera
from containers.rl.simulation.simulator import REFERENCE_AHEAD, Pose


def _centre_line_trace(track, rows):
    """Sim-trace rows of a car on the centre line (reference point, yaw in degrees, as env.py writes them)."""
    trace = []
    for i in range(rows):
        x, y = track.center[i]
        dx, dy = track.center[i + 1] - track.center[i]
        trace.append([0, float(i), x, y, math.degrees(math.atan2(dy, dx)), 0.0, 1.0, "0", 1.0, False, True, 0.0])
    return trace


def _car_position(frame):
    """Centre of the car's square in the top-down panel (right of the camera view and the gap)."""
    panel = np.asarray(frame.convert("L"))[:, 2 * WIDTH + 4 :]
    rows, cols = np.nonzero(panel == CAR)
    return rows.mean(), cols.mean()


def test_each_row_is_a_frame_with_what_the_camera_saw_and_the_car_moving_on_the_map(oval, tmp_path):
    trace = _centre_line_trace(oval, 60)
    path = write_lap_video(oval, trace, tmp_path / "lap.gif")
    video = Image.open(path)
    assert video.n_frames == 60
    assert video.size[1] == 2 * HEIGHT and video.size[0] > 2 * WIDTH
    assert video.info["duration"] == 70  # the simulator's 15 steps per second, in the GIF's hundredths
    video.seek(30)
    row = trace[30]
    yaw = math.radians(row[4])
    expected = Camera(oval).render(
        Pose(row[2] - REFERENCE_AHEAD * math.cos(yaw), row[3] - REFERENCE_AHEAD * math.sin(yaw), yaw)
    )
    shown = np.asarray(video.convert("L"))[:, : 2 * WIDTH][::2, ::2]
    np.testing.assert_array_equal(shown, expected)
    positions = []
    for index in (0, 59):
        video.seek(index)
        positions.append(_car_position(video))
    assert math.dist(positions[0], positions[1]) > 5  # the car moved along the map


def test_a_long_lap_is_strided_and_an_empty_one_writes_nothing(oval, tmp_path):
    rows = min(len(oval.center) - 1, 2 * MAX_FRAMES + 10)
    video = Image.open(write_lap_video(oval, _centre_line_trace(oval, rows), tmp_path / "long.gif"))
    assert video.n_frames <= MAX_FRAMES
    assert write_lap_video(oval, [], tmp_path / "none.gif") is None
    assert not (tmp_path / "none.gif").exists()


def test_the_lap_to_watch_is_the_fastest_finished_else_the_furthest():
    records = [
        {"completion_percentage": 100, "elapsed_time_in_milliseconds": 9000},
        {"completion_percentage": 100, "elapsed_time_in_milliseconds": 8000},
        {"completion_percentage": 40, "elapsed_time_in_milliseconds": 2000},
    ]
    assert lap_to_watch(records) == 1
    assert lap_to_watch([{**r, "completion_percentage": p} for r, p in zip(records, (30, 70, 50), strict=True)]) == 1
