"""``DeepRacerEnv``: the Gymnasium environment (one env = one rollout worker with its own reward-function module).

``reset()`` places the car at rest on the centre line at the episode's start (and the race's objects on the track)
and performs the simapp's *prepare* step (car held, reward 0, reward function not called), so the first ``step()`` is
step 2 and the first reward call sees ``steps == 2``. Each step holds the commanded action for 1/15 s through the car
dynamics (``dynamics.py``). Episodes end on lap complete, crash into an object, off track (all four wheels off),
reversed or immobilised (15 consecutive steps), or are truncated at the step cap. Per-step sim-trace rows
and per-episode records are buffered in the env and drained by the trainer (``drain_records``).
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np

from containers.rl.simulation.actions import ActionSpace, clip_command
from containers.rl.simulation.dynamics import CarDynamics, CarState, step_car
from containers.rl.simulation.params import EpisodeState, build_params
from containers.rl.simulation.race_objects import RaceConfig, RaceObjects
from containers.rl.simulation.reward import RewardFunctionError
from containers.rl.simulation.simulator import DT, Pose, Projection, TrackGeometry, compute_progress, wheel_centres
from containers.rl.simulation.tracks import Track

logger = logging.getLogger(__name__)

MAX_STEPS = 10_000
STUCK_STEPS = 15
IMMOBILE_DISTANCE = 0.0003
LOOKAHEAD_M = np.array([0.3, 0.6, 1.0, 1.5, 2.0, 2.6])
VECTOR_SIZE = 2 * len(LOOKAHEAD_M) + 5
OBJECTS_SEEN = 2  # object races: the vector observation adds the next two objects ahead (forward, left)
STATUS_LABELS = {
    "lap_complete": "Lap complete",
    "off_track": "Off track",
    "crashed": "Crashed",
    "reversed": "Reversed",
    "immobilized": "Immobilized",
    "in_progress": "In progress",
    "prepare": "Prepare",
    "reward_error": "Reward error",
}

RewardFn = Callable[[dict[str, Any]], float]


@dataclass(frozen=True)
class EnvConfig:
    observation: str = "vector"  # "vector" | "camera" | "stereo" (the stereo pair, docs/deepracer.md#the-camera)
    stack_size: int = 1
    change_start_position: bool = True
    round_robin_advance_dist: float = 0.05
    start_position_offset: float = 0.0
    reverse_direction: bool = False
    alternate_driving_direction: bool = False
    max_steps: int = MAX_STEPS
    worker_index: int = 0
    num_workers: int = 1
    dynamics: CarDynamics = field(default_factory=CarDynamics)
    race: RaceConfig = field(default_factory=RaceConfig)


class DeepRacerEnv(gym.Env[np.ndarray, Any]):
    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, track: Track, actions: ActionSpace, reward_fn: RewardFn, config: EnvConfig | None = None):
        self.config = config or EnvConfig()
        self.actions = actions
        self.reward_fn = reward_fn
        self._geometries = {False: TrackGeometry(track)}
        self._track_rows = track.to_array()
        self._track_name = track.name
        self.geometry = self._geometries[False]
        self.is_reversed = self.config.reverse_direction
        self.action_space = (
            gym.spaces.Discrete(len(actions.actions))
            if actions.is_discrete
            else gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        )
        self._cameras: list[Any] = []
        self._frames: deque[np.ndarray] = deque(maxlen=max(1, self.config.stack_size))
        if self.config.observation in ("camera", "stereo"):
            per_frame = 2 if self.config.observation == "stereo" else 1
            shape = (120, 160, per_frame * max(1, self.config.stack_size))
            self.observation_space = gym.spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        else:
            size = VECTOR_SIZE + (2 * OBJECTS_SEEN if self.config.race.has_objects else 0)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        self.race_objects = RaceObjects(self.config.race, random.Random(self.config.worker_index))
        self.sim_time = 0.0
        self.episode_index = 0
        self.next_start = self.config.start_position_offset + self.config.worker_index * (
            self.config.round_robin_advance_dist if self.config.change_start_position else 0.0
        )
        self.fixed_start: float | None = None
        self.records: list[dict[str, Any]] = []
        self.trace: list[list[Any]] = []
        self.car = CarState(Pose(0.0, 0.0, 0.0))
        self.state = EpisodeState()

    @property
    def pose(self) -> Pose:
        return self.car.pose

    @pose.setter
    def pose(self, pose: Pose) -> None:
        self.car = replace(self.car, pose=pose)

    # --- Gymnasium API ------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._choose_direction()
        start = self.fixed_start if self.fixed_start is not None else self.next_start
        if options and "start_ndist" in options:
            start = float(options["start_ndist"])
        point, heading = self.geometry.track.point_at(start)
        self.car = CarState(Pose(float(point[0]), float(point[1]), heading))
        self.race_objects.reset(self.geometry)
        proj = self.geometry.project(*self.pose.reference_point())
        self.state = EpisodeState(start_ndist=start % 1.0, start_time=self.sim_time, steps=1)
        self.state.last_projection = proj
        self.state.progress = compute_progress(proj.ndist, self.state.start_ndist, 0.0)
        self.state.last_reference = self.pose.reference_point()
        self._frames.clear()
        self._record_step(0.0, 0.0, "-", 0.0, False, "prepare", proj)
        return self._observe(proj), {"progress": self.state.progress, "steps": 1}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        steer, speed, action_text = self.actions.command(action)
        applied_steer, applied_speed = clip_command(steer, speed)
        self.car = step_car(self.car, applied_steer, applied_speed, self.config.dynamics)
        self.race_objects.advance(DT)
        self.sim_time += DT
        st = self.state
        st.steps += 1
        st.last_command = (applied_steer, applied_speed)
        proj = self.geometry.project(*self.pose.reference_point(), hint=st.last_projection.segment)
        previous = st.progress
        st.progress = compute_progress(proj.ndist, st.start_ndist, previous)
        st.reverse_count = st.reverse_count + 1 if st.progress < previous else 0
        ref = self.pose.reference_point()
        moved = math.hypot(ref[0] - st.last_reference[0], ref[1] - st.last_reference[1])
        st.immobile_count = st.immobile_count + 1 if moved <= IMMOBILE_DISTANCE else 0
        st.last_reference, st.last_projection = ref, proj
        wheels_on = self.geometry.track.raster.contains(*wheel_centres(self.pose))
        st.all_wheels_on_track, st.is_offtrack = bool(wheels_on.all()), not bool(wheels_on.any())
        st.is_crashed = self._crashed(proj)
        objects = self.race_objects.reward_params(ref, self.pose.yaw, proj.ndist)
        params = build_params(
            self.geometry, self.pose, proj, st, steer, speed, self.is_reversed, self.sim_time, objects
        )
        try:
            reward = self.reward_fn(params)
            status = self._status()
        except RewardFunctionError as exc:  # the episode ends here; the trainer reports it (docs: Bad input)
            reward, status = 0.0, "reward_error"
            st.reward_error = {"kind": exc.kind, "where": exc.where, "message": exc.message}
        terminated = status != "in_progress"
        truncated = not terminated and st.steps >= self.config.max_steps
        st.total_reward += reward
        self._record_step(steer, speed, action_text, reward, terminated or truncated, status, proj)
        if terminated or truncated:
            self._finish_episode(status)
        info = {"progress": st.progress, "status": status, "steps": st.steps}
        return self._observe(proj), reward, terminated, truncated, info

    # --- helpers -----------------------------------------------------------------------------------------------

    def set_fixed_start(self, ndist: float | None) -> None:
        """Evaluation: start every episode at ``ndist`` (None restores the round-robin)."""
        self.fixed_start = ndist

    def drain_records(self) -> tuple[list[dict[str, Any]], list[list[Any]]]:
        records, trace = self.records, self.trace
        self.records, self.trace = [], []
        return records, trace

    def _choose_direction(self) -> None:
        reverse = self.config.reverse_direction
        if self.config.alternate_driving_direction and self.episode_index % 2 == 1:
            reverse = not reverse
        if reverse not in self._geometries:
            self._geometries[reverse] = TrackGeometry(Track.from_array(self._track_name, self._track_rows[::-1]))
        self.geometry, self.is_reversed = self._geometries[reverse], reverse

    def _status(self) -> str:
        st = self.state
        if st.progress >= 100.0:
            return "lap_complete"
        if st.is_crashed:
            return "crashed"
        if st.is_offtrack:
            return "off_track"
        if st.reverse_count >= STUCK_STEPS:
            return "reversed"
        if st.immobile_count >= STUCK_STEPS:
            return "immobilized"
        return "in_progress"

    def _crashed(self, proj: Projection) -> bool:
        """Crash as the simapp judges it: any box ends the episode, a bot car only when it is ahead of the racer
        (hit from ahead, the bot cars sit out the penalty and the episode goes on)."""
        hit = self.race_objects.collided(self.pose)
        if hit is None:
            return False
        if not hit.name.startswith("bot_car"):
            return True
        if self.race_objects.bot_car_ahead_of(hit, proj.ndist):
            return True
        self.race_objects.penalise_bot_cars()
        return False

    def _finish_episode(self, status: str) -> None:
        st = self.state
        start_ms, end_ms = round(st.start_time * 1000), round(self.sim_time * 1000)
        self.records.append(
            {
                "reward_score": round(st.total_reward),
                "metric_time": end_ms,
                "start_time": start_ms,
                "elapsed_time_in_milliseconds": end_ms - start_ms,
                "completion_percentage": int(st.progress),
                "episode_status": STATUS_LABELS[status],
                "status": status,
                "progress": st.progress,
                "steps": st.steps,
                "reward": st.total_reward,
                "start_ndist": st.start_ndist,
                "reward_error": st.reward_error,
            }
        )
        self.episode_index += 1
        if self.config.change_start_position:
            self.next_start += self.config.round_robin_advance_dist * self.config.num_workers

    def _record_step(
        self, steer: float, speed: float, action: str, reward: float, done: bool, status: str, proj: Projection
    ) -> None:
        st = self.state
        prev_wp, next_wp = self.geometry.closest_waypoints(proj.ndist)
        ref = self.pose.reference_point()
        closest = min(
            (prev_wp, next_wp),
            key=lambda i: (self.geometry.waypoints[i][0] - ref[0]) ** 2 + (self.geometry.waypoints[i][1] - ref[1]) ** 2,
        )
        self.trace.append(
            [
                self.episode_index,
                float(st.steps),
                ref[0],
                ref[1],
                math.degrees(self.pose.yaw),
                steer,
                speed,
                action,
                reward,
                done,
                st.all_wheels_on_track,
                st.progress,
                closest,
                self.geometry.track.length,
                self.sim_time,
                status,
                0.0,
                0,  # obstacle_crash_counter: the simapp counts only crashes that reset the car (none in training)
            ]
        )

    def _observe(self, proj: Projection) -> np.ndarray:
        if self.config.observation in ("camera", "stereo"):
            return self._camera_observation()
        return self._vector_observation(proj)

    def _vector_observation(self, proj: Projection) -> np.ndarray:
        """Lookahead centre-line points in the car frame, signed offset, heading error, actual steering and speed
        (object races: the next objects ahead)."""
        pose = self.pose
        xs, ys = self.geometry.ahead(proj.ndist, LOOKAHEAD_M)
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        ref = pose.reference_point()
        dx, dy = xs - ref[0], ys - ref[1]
        local = np.concatenate([(c * dx + s * dy), (-s * dx + c * dy)]) / LOOKAHEAD_M[-1]
        track_heading = self.geometry.heading_at(proj.segment)
        err = pose.yaw - track_heading
        tx, ty = math.cos(track_heading), math.sin(track_heading)
        side = tx * (ref[1] - proj.point[1]) - ty * (ref[0] - proj.point[0])
        track = self.geometry.track
        half_width = 0.5 * math.dist(track.outer[proj.segment], track.inner[proj.segment])
        offset = math.copysign(proj.distance, side) / max(half_width, 1e-6)
        car = self.car
        extra = np.array([offset, math.sin(err), math.cos(err), car.steering / 30.0, car.speed / 4.0])
        parts = [local, extra]
        if self.config.race.has_objects:
            seen = self.race_objects.ahead_in_car_frame(ref, pose.yaw, proj.ndist, OBJECTS_SEEN)
            parts.append(np.clip(seen / LOOKAHEAD_M[-1], -1.0, 1.0).ravel())
        return np.concatenate(parts).astype(np.float32)

    def _camera_observation(self) -> np.ndarray:
        """The last ``stack_size`` frames as channels, oldest first; a stereo frame is two channels, left then right
        (the simapp stacks the pair so)."""
        if not self._cameras:
            from containers.rl.simulation.camera import STEREO_OFFSET_M, Camera  # only camera runs pay for it

            offsets = (STEREO_OFFSET_M, -STEREO_OFFSET_M) if self.config.observation == "stereo" else (0.0,)
            self._cameras = [Camera(self.geometry.track, mount_left=offset) for offset in offsets]
        frame = np.stack([camera.render(self.pose, self.race_objects.objects) for camera in self._cameras], axis=-1)
        if not self._frames:
            for _ in range(self._frames.maxlen or 1):
                self._frames.append(frame)
        else:
            self._frames.append(frame)
        return np.concatenate(list(self._frames), axis=-1)


def make_env_factory(
    track: Track, actions: ActionSpace, reward_factory: Callable[[], RewardFn], config: EnvConfig, index: int, n: int
) -> Callable[[], DeepRacerEnv]:
    """A picklable-enough thunk for vector envs: each env loads its own reward-function module."""

    def _make() -> DeepRacerEnv:
        return DeepRacerEnv(track, actions, reward_factory(), replace(config, worker_index=index, num_workers=n))

    return _make
