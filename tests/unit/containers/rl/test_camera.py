"""Known answers of the front camera: where the border lines and the dashed centre line must appear, symmetry on a
straight, the off-track floor, the walls and the sky, the vignette, and frames that repeat exactly; the stereo pair's
disparity."""

from __future__ import annotations

import math

import numpy as np

from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.camera import (
    FOCAL,
    HEIGHT,
    MOUNT_AHEAD,
    MOUNT_HEIGHT,
    PITCH,
    STEREO_OFFSET_M,
    WIDTH,
    Camera,
)
from containers.rl.simulation.camera_scene import DASH_M, WALL
from containers.rl.simulation.env import DeepRacerEnv, EnvConfig
from containers.rl.simulation.simulator import Pose

# the oval's lower straight: centre line y = -1.83 from x = -2 to 2, driven towards +x, borders 0.38 m either side
STRAIGHT_Y = -1.83
POSE = Pose(-1.5, STRAIGHT_Y, 0.0)
CAMERA_X = POSE.x + MOUNT_AHEAD


def pixel_of(ahead: float, left: float) -> tuple[int, int]:
    """(row, column) of the ground point ``ahead`` m in front of the camera and ``left`` m to its left, by the
    pinhole model: the camera 0.10 m up, pitched 15° down, 160 px over 1.13 rad."""
    depth = ahead * math.cos(PITCH) + MOUNT_HEIGHT * math.sin(PITCH)
    up = ahead * math.sin(PITCH) - MOUNT_HEIGHT * math.cos(PITCH)
    column = WIDTH / 2.0 - FOCAL * left / depth - 0.5
    row = HEIGHT / 2.0 - FOCAL * up / depth - 0.5
    return round(row), round(column)


def at(frame: np.ndarray, near: float, left: float) -> int:
    """The pixel showing the point ``left`` m to the left on the ground of the row nearest ``near`` m ahead."""
    row = pixel_of(near, 0.0)[0]
    return int(frame[row, pixel_of(ground_ahead(row), left)[1]])


def ground_ahead(row: int) -> float:
    """How far ahead of the camera the centre of ``row`` meets the ground (the inverse of ``pixel_of``)."""
    v = row + 0.5 - HEIGHT / 2.0
    fx = FOCAL * math.cos(PITCH) - v * math.sin(PITCH)
    fz = -FOCAL * math.sin(PITCH) - v * math.cos(PITCH)
    return fx * MOUNT_HEIGHT / -fz


def test_border_lines_are_white_between_asphalt_and_the_floor(oval):
    frame = Camera(oval).render(POSE)
    for ahead in (0.8, 1.0, 1.3):
        for side in (1.0, -1.0):
            assert at(frame, ahead, side * 0.355) > 200  # the 5 cm white line inside the road's edge (0.38 m)
            assert at(frame, ahead, side * 0.22) < 95  # dark asphalt
            assert 95 < at(frame, ahead, side * 0.45) < 160  # the green floor, lighter than asphalt


def test_the_centre_line_is_dashed_where_the_dashes_are(oval):
    frame = Camera(oval).render(POSE)
    assert np.allclose(oval.center[0], [-2.0, STRAIGHT_Y])  # the route starts at the straight's left end
    seen = {True: 0, False: 0}
    for row in range(HEIGHT - 1, 0, -1):
        ahead = ground_ahead(row)
        if ahead > 1.2:
            break
        footprint = ground_ahead(row - 1) - ground_ahead(row)
        s = CAMERA_X + ahead - -2.0  # distance along the centre line
        phase = s % (2 * DASH_M)
        if min(phase, abs(phase - DASH_M), 2 * DASH_M - phase) < 0.025 + footprint / 2:
            continue  # near a dash's end (the line's round 5 cm tip): either reading is right
        value = float(frame[row, WIDTH // 2])
        is_dash = phase < DASH_M
        seen[is_dash] += 1
        assert (140 < value < 200) if is_dash else (value < 95), (ahead, phase, value)
    assert seen[True] >= 5 and seen[False] >= 5


def test_a_straight_road_renders_symmetric(oval):
    """Mirrored left to right, the frame of the straight is the same up to the road raster's 1 cm cells (about 2
    px at 0.6 m): each white-line or asphalt pixel has its mirror image within 2 columns."""
    frame = Camera(oval).render(POSE)
    band = frame[pixel_of(2.0, 0.0)[0] : pixel_of(0.6, 0.0)[0]]  # the straight runs 3.4 m ahead of the camera
    for mask in (band > 200, band < 88):  # white lines; asphalt (60) rather than floor (117) or centre line (172)
        mirrored = mask[:, ::-1]
        near_mirror = np.zeros_like(mask)
        for shift in range(-2, 3):
            near_mirror |= np.roll(mirrored, shift, axis=1)
        assert np.mean(mask <= near_mirror) > 0.995
        assert 0.03 < np.mean(mask) < 0.9


def test_from_inside_the_loop_the_floor_the_road_the_wall_and_the_sky(oval):
    """From the oval's middle looking along +x: floor, the far curve's road, the wall 5 m away, the sky above."""
    column = Camera(oval).render(Pose(0.0, 0.0, 0.0))[:, WIDTH // 2].astype(int)
    horizon = pixel_of(1000.0, 0.0)[0]
    assert 95 < np.median(column[-40:]) < 160  # the floor
    assert column[horizon + 1 : horizon + 6].min() < 95  # the road of the far curve, before the wall's foot
    wall = column[horizon - 5 : horizon + 1]
    assert np.all(np.abs(wall - WALL * 0.95) < 12)  # the 0.3 m wall (vignette ~0.95 near the frame's centre)
    assert column[: horizon - 10].min() > max(wall) + 10  # the sky, brighter than the wall


def test_vignette_darkens_the_corners(oval):
    frame = Camera(oval).render(Pose(0.0, 0.0, 0.0))
    assert frame[0, WIDTH // 2] - frame[0, 0] > 10
    assert abs(int(frame[0, 0]) - int(frame[0, -1])) <= 1


def test_frames_repeat_exactly(oval):
    pose = Pose(0.3, -1.7, 0.2)
    first, second = Camera(oval), Camera(oval)
    np.testing.assert_array_equal(first.render(pose), second.render(pose))
    assert first.render(pose).dtype == np.uint8 and first.render(pose).shape == (HEIGHT, WIDTH)


def _best_shift(left_row: np.ndarray, right_row: np.ndarray, most: int = 30) -> int:
    """The shift d (px) for which the left camera's row, moved d columns left, best matches the right camera's."""
    a, b = left_row.astype(np.float64), right_row.astype(np.float64)
    errors = [np.mean(np.abs(a[d:] - b[: WIDTH - d])) for d in range(most)]
    return int(np.argmin(errors))


def test_the_stereo_pair_sees_a_straight_road_shifted_by_its_disparity(oval):
    """The stereo cameras sit 0.03 m left and right of the centre (the simapp's stereo URDF: a 6 cm baseline), at
    the front camera's height and pitch: a ground point at depth Z appears 2 · 0.03 · FOCAL / Z columns further left
    in the right camera's frame than in the left one's, in the same row; the border lines are where the pinhole
    model of each camera puts them."""
    env = DeepRacerEnv(oval, default_action_space(), lambda params: 1.0, EnvConfig(observation="stereo", stack_size=2))
    assert env.observation_space.shape == (HEIGHT, WIDTH, 4)
    env.reset(options={"start_ndist": 0.0})
    env.pose = POSE
    observation = env._observe(env.geometry.project(*POSE.reference_point()))
    left, right = observation[..., 2], observation[..., 3]  # the newest pair, left then right
    assert observation.shape == (HEIGHT, WIDTH, 4) and not np.array_equal(left, right)
    np.testing.assert_array_equal(left, Camera(oval, mount_left=STEREO_OFFSET_M).render(POSE))
    lines_seen = 0
    for ahead in np.linspace(0.5, 1.4, 10):
        row = pixel_of(ahead, 0.0)[0]
        at_row = ground_ahead(row)
        depth = at_row * math.cos(PITCH) + MOUNT_HEIGHT * math.sin(PITCH)
        disparity = 2 * STEREO_OFFSET_M * FOCAL / depth
        assert abs(_best_shift(left[row], right[row]) - disparity) <= 1.0, (ahead, disparity)
        for side in (1.0, -1.0):  # the white border lines, 0.355 m either side of the centre line
            for frame, camera_left in ((left, STEREO_OFFSET_M), (right, -STEREO_OFFSET_M)):
                column = pixel_of(at_row, side * 0.355 - camera_left)[1]
                if 2 <= column < WIDTH - 2:  # near rows see the lines at the frame's edges or beyond
                    assert frame[row, column] > 200, (ahead, side, camera_left)
                    lines_seen += 1
    assert lines_seen >= 30
    assert 2 * STEREO_OFFSET_M * FOCAL / (0.5 * math.cos(PITCH)) > 10  # near rows shift by more than 10 px
