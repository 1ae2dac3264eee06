"""Reward-function validation before training: the console validator's checks plus real simulator states.

Errors (the trainer would stop): the file does not import, no one-argument ``reward_function``, an exception, a
non-numeric, NaN/inf or out-of-range (±1e5) return. Console-only rules are warnings (DRfC applies none of them): an
``int`` return (the console requires ``float``), imports outside the allow-list or inside the function body, calls to
``open``/``exec``/``eval``/``compile``/``input``, and the banned substrings (a plain substring test).
"""

from __future__ import annotations

import ast
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from containers.rl.simulation.actions import default_action_space
from containers.rl.simulation.env import DeepRacerEnv
from containers.rl.simulation.reward import REWARD_LIMIT, load_module, reward_callable
from containers.rl.simulation.tracks import DEFAULT_TRACK, Track, load_track
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

ALLOWED_IMPORTS = ("math", "random", "numpy", "scipy", "shapely")
BANNED_CALLS = ("open", "exec", "eval", "compile", "input")
BANNED_SUBSTRINGS = (
    "__import__", "load", "fromfile", "genfromtxt", "loadtxt", "tofile", "savez", "save", "savetxt", "memmap",
)  # fmt: skip
MAX_SOURCE_CHARS = 140_000
CALL_TIMEOUT_S = 5.0


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cases: list[tuple[str, str]] = field(default_factory=list)  # (case, outcome)

    @property
    def ok(self) -> bool:
        return not self.errors


def static_checks(source: str) -> list[str]:
    """The console validator's source rules; returns warning texts."""
    found: list[str] = []
    if len(source) > MAX_SOURCE_CHARS:
        found.append(f"source is {len(source)} characters; the console allows {MAX_SOURCE_CHARS}")
    for word in BANNED_SUBSTRINGS:
        if word in source:
            found.append(f"console rule: the source contains the banned substring {word!r}")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found  # reported as an error when importing
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BANNED_CALLS:
            found.append(f"console rule: call to {node.func.id}() on line {node.lineno}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend(_import_rules(node, tree))
    return found


def _import_rules(node: ast.Import | ast.ImportFrom, tree: ast.Module) -> list[str]:
    names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
    found = [
        f"console rule: import of {name!r} on line {node.lineno} (allowed: {', '.join(ALLOWED_IMPORTS)})"
        for name in names
        if name.split(".")[0] not in ALLOWED_IMPORTS
    ]
    if node not in tree.body:
        found.append(f"console rule: import on line {node.lineno} should be put at the top of the file")
    return found


def console_cases(track: Track) -> dict[str, dict[str, Any]]:
    """Five synthetic inputs in the spirit of the console's runtime tests (with its quirks: 6 objects, heading 0 or
    359.9, speed up to 5, steps 1/100/10000, and ``waypoints`` given as the inner border as a numpy array)."""
    objects = [[float(x), float(y)] for x, y in track.center[:: max(1, len(track.center) // 6)][:6]]
    base: dict[str, Any] = {
        "all_wheels_on_track": True, "x": float(track.center[0][0]), "y": float(track.center[0][1]),
        "heading": 0.0, "steering_angle": 0.0, "speed": 1.0, "progress": 0.0, "steps": 1,
        "distance_from_center": 0.0, "is_left_of_center": False, "track_width": float(np.median(track.widths)),
        "track_length": track.length, "waypoints": track.inner.copy(), "closest_waypoints": [0, 1],
        "is_reversed": False, "is_offtrack": False, "is_crashed": False, "projection_distance": 0.0,
        "closest_objects": [0, 1], "objects_location": objects, "objects_left_of_center": [True, False] * 3,
        "objects_distance": [float(i) for i in range(6)], "objects_distance_from_center": [0.1] * 6,
        "objects_heading": [0.0] * 6, "objects_speed": [0.0] * 6, "object_in_camera": False, "sim_time": 0.0,
    }  # fmt: skip
    mid = len(track.center) // 2
    return {
        "valid_params": dict(base),
        "start_car": {**base, "steps": 1, "progress": 0.0},
        "progress_car": {**base, "x": float(track.center[mid][0]), "y": float(track.center[mid][1]), "steps": 100,
                         "progress": 50.0, "speed": 5.0, "heading": 359.9, "closest_waypoints": [mid - 1, mid]},
        "off_track_car": {**base, "all_wheels_on_track": False, "is_offtrack": True, "steps": 100, "progress": 50.0,
                          "distance_from_center": float(np.median(track.widths))},
        "finish_car": {**base, "steps": 10000, "progress": 100.0, "speed": 5.0},
    }  # fmt: skip


def simulator_cases(track: Track, count: int = 8, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Real params from a short random drive (including its terminal step), captured by a recording reward."""
    captured: list[dict[str, Any]] = []

    def record(params: dict[str, Any]) -> float:
        captured.append(params)
        return 0.0

    env = DeepRacerEnv(track, default_action_space(), record)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    done = False
    while not done and len(captured) < 400:
        _, _, terminated, truncated, _ = env.step(int(rng.integers(len(env.actions.actions))))
        done = terminated or truncated
    picks = sorted(set(np.linspace(0, len(captured) - 1, count).astype(int).tolist()))
    return {f"simulator_step_{int(captured[i]['steps'])}": captured[i] for i in picks}


def _call_with_timeout(fn: Callable[[dict[str, Any]], Any], params: dict[str, Any]) -> tuple[str, Any]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(params)
        except Exception as exc:
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CALL_TIMEOUT_S)
    if thread.is_alive():
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("value")


def _judge(name: str, outcome: str, value: Any, report: ValidationReport) -> None:
    if outcome == "timeout":
        report.errors.append(f"{name}: did not return within {CALL_TIMEOUT_S:g} s")
    elif outcome == "error":
        report.errors.append(f"{name}: raised {value}")
    elif isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        report.errors.append(f"{name}: returned {value!r} ({type(value).__name__}), not a float")
    elif not math.isfinite(float(value)) or abs(float(value)) > REWARD_LIMIT:
        report.errors.append(f"{name}: returned {value!r}, outside the allowed finite range [-1e5, 1e5]")
    elif not isinstance(value, float):
        report.warnings.append(
            f"{name}: returned {type(value).__name__} {value!r}; the console validator requires float"
        )
    report.cases.append((name, f"{outcome}: {value!r}"))


def validate_reward_file(path: Path, track_name: str = DEFAULT_TRACK) -> ValidationReport:
    report = ValidationReport()
    try:
        source = path.read_text()
    except OSError as exc:
        report.errors.append(f"cannot read {path}: {exc}")
        return report
    report.warnings.extend(static_checks(source))
    try:
        fn = reward_callable(load_module(path), path.name)
        track = load_track(track_name)
    except UserError as exc:
        report.errors.append(exc.message)
        return report
    for name, params in {**console_cases(track), **simulator_cases(track)}.items():
        outcome, value = _call_with_timeout(fn, params)
        _judge(name, outcome, value, report)
    return report
