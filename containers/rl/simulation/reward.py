"""Loading and calling a user's ``reward_function(params)`` with the simapp's checks on every value.

Each environment (one "rollout worker") loads its own copy of the module, so module-level state persists across the
steps and episodes of that worker and is never shared with another. The result is converted with ``float()``. An
exception, a non-number, NaN/inf, a value outside ±1e5 (the simapp's range) or a call longer than the time limit
raises a ``RewardFunctionError`` that names the line of the user's code, the step and the params
(docs/deepracer.md#bad-input). The environment ends the episode on it; the trainer reports it.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import json
import linecache
import logging
import math
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, ModuleType, TracebackType
from typing import Any

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

REWARD_LIMIT = 1e5
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_REWARD_FILE = Path(__file__).resolve().parents[1] / "defaults" / "reward_function.py"
_counter = itertools.count()


class RewardFunctionError(UserError):
    """The reward function failed or returned something unusable.

    ``kind`` is ``exception``, ``not_a_number``, ``not_finite``, ``out_of_range`` or ``timeout``; ``where`` is the
    user's line (``reward_function.py line 7: return x / 0``), empty when it is unknown.
    """

    def __init__(self, message: str, *, kind: str = "exception", where: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.where = where


class RewardTimeout(BaseException):
    """Raised inside the user's code when the call runs out of time (a BaseException, so ``except Exception`` in
    the user's code cannot swallow it)."""


def load_module(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (a new copy per call: one per worker)."""
    if not path.is_file():
        raise UserError(f"reward function file {path} does not exist")
    name = f"customer_reward_function_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import reward function file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        detail = traceback.format_exc(limit=-4)
        raise RewardFunctionError(f"importing {path.name} raised {type(exc).__name__}: {exc}\n{detail}") from exc
    return module


def reward_callable(module: ModuleType, path: Path | str = "reward_function.py") -> Callable[[dict[str, Any]], Any]:
    fn = getattr(module, "reward_function", None)
    if not callable(fn):
        raise UserError(f"{path} must define a module-level function reward_function(params)")
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    if len(parameters) != 1:
        raise UserError(f"reward_function in {path} must take exactly one argument (params), not {len(parameters)}")
    return fn


def check_reward(value: Any, params: Mapping[str, Any], where: str = "") -> float:
    """The simapp's checks on the returned value; raises RewardFunctionError."""
    at = f" ({where})" if where else ""

    def context() -> str:
        return f"at step {params.get('steps')} with params {summarise_params(params)}"

    try:
        reward = float(value)
    except (TypeError, ValueError) as exc:
        raise RewardFunctionError(
            f"reward_function returned {value!r} ({type(value).__name__}), which is not a number{at}, {context()}",
            kind="not_a_number", where=where,
        ) from exc  # fmt: skip
    if not math.isfinite(reward):
        raise RewardFunctionError(f"reward_function returned {reward}{at}, {context()}", kind="not_finite", where=where)
    if abs(reward) > REWARD_LIMIT:
        raise RewardFunctionError(
            f"Reward score out of range: reward_function returned {reward} (allowed [-1e5, 1e5]){at}, {context()}",
            kind="out_of_range", where=where,
        )  # fmt: skip
    return reward


class RewardFunction:
    """One worker's reward function: call with a fresh params dict, get a checked float.

    ``timeout_s`` bounds one call. In the main thread (where the simulator steps) a ``SIGALRM`` timer interrupts the
    user's code; elsewhere the call is measured and reported afterwards.
    """

    def __init__(self, path: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.module = load_module(path)
        self._fn = reward_callable(self.module, path.name)
        self._filename = str(path.resolve())
        self._frame: FrameType | None = None

    def __call__(self, params: dict[str, Any]) -> float:
        before = dict(params)  # the values as passed, for the message (the user's code may change the dict)
        self._frame = None
        try:
            value = self._timed_call(params)
        except RewardTimeout as exc:
            where = self._where(exc.__traceback__)
            raise RewardFunctionError(
                f"reward_function took longer than {self.timeout_s:g} s" + (f" (stopped at {where})" if where else "")
                + f", at step {before.get('steps')} with params {summarise_params(before)}",
                kind="timeout", where=where,
            ) from None  # fmt: skip
        except Exception as exc:
            where = self._where(exc.__traceback__)
            detail = traceback.format_exc(limit=-4)
            raise RewardFunctionError(
                f"reward_function raised {type(exc).__name__}: {exc}" + (f" ({where})" if where else "")
                + f", at step {before.get('steps')} with params {summarise_params(before)}\n{detail}",
                kind="exception", where=where,
            ) from exc  # fmt: skip
        frame, self._frame = self._frame, None
        if not value_needs_check(value):
            return float(value)
        return check_reward(value, before, self._line_text(frame.f_lineno) if frame is not None else "")

    def _timed_call(self, params: dict[str, Any]) -> Any:
        """Call the function under the time limit and keep its frame (its ``f_lineno`` is the returning line)."""
        if threading.current_thread() is not threading.main_thread() or self.timeout_s <= 0:
            start = time.perf_counter()
            value = self._profiled_call(params)
            if self.timeout_s > 0 and time.perf_counter() - start > self.timeout_s:
                raise RewardTimeout
            return value
        previous = signal.getsignal(signal.SIGALRM)
        keep = previous in (_on_alarm, signal.SIG_DFL)  # the default handler would only kill the process
        if previous is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
        # another timer (a test runner's hang guard) is paused for the call and re-armed afterwards
        other_delay, other_interval = signal.setitimer(signal.ITIMER_REAL, self.timeout_s)
        start = time.perf_counter()
        try:
            return self._profiled_call(params)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if not keep:
                signal.signal(signal.SIGALRM, previous)
            if other_delay > 0:
                remaining = max(other_delay - (time.perf_counter() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, remaining, other_interval)

    def _profiled_call(self, params: dict[str, Any]) -> Any:
        previous = sys.getprofile()
        sys.setprofile(self._catch_frame)
        try:
            return self._fn(params)
        finally:
            sys.setprofile(previous)

    def _catch_frame(self, frame: FrameType, event: str, arg: Any) -> None:
        """A one-shot profile hook: keep the reward function's frame, then switch profiling off (≈ 0.5 µs a call)."""
        if event == "call":
            self._frame = frame
            sys.setprofile(None)

    def _where(self, tb: TracebackType | None) -> str:
        """The innermost line of the user's file in a traceback."""
        lineno = None
        for summary in traceback.extract_tb(tb):
            if summary.filename and Path(summary.filename).resolve() == Path(self._filename):
                lineno = summary.lineno
        return self._line_text(lineno) if lineno is not None else ""

    def _line_text(self, lineno: int | None) -> str:
        if lineno is None:
            return ""
        code = linecache.getline(self._filename, lineno).strip()
        return f"{self.path.name} line {lineno}" + (f": {code}" if code else "")


def value_needs_check(value: Any) -> bool:
    """True unless ``value`` is obviously a usable reward (the common case costs no line lookup)."""
    return not (isinstance(value, int | float) and math.isfinite(value) and abs(value) <= REWARD_LIMIT)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise RewardTimeout


def summarise_params(params: Mapping[str, Any]) -> str:
    """params as compact JSON with the long lists shortened (for failure messages of ≤ 1024 characters)."""
    short: dict[str, Any] = {}
    for key, value in params.items():
        if key == "waypoints" and isinstance(value, list | tuple):
            short[key] = f"<{len(value)} points>"
        elif isinstance(value, float):
            short[key] = round(value, 4)
        else:
            short[key] = value
    try:
        return json.dumps(short, default=str)
    except (TypeError, ValueError):
        return repr(short)
