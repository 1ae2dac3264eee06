"""Loading and calling a user's ``reward_function(params)`` with the simapp's safety rules.

Each environment (one "rollout worker") loads its own copy of the module, so module-level state persists across the
steps and episodes of that worker and is never shared with another. The result is converted with ``float()``; an
exception, NaN/inf or a value outside ±1e5 stops training with a ``RewardFunctionError`` naming the step and the
params (and the user's traceback for exceptions).
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import json
import logging
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

REWARD_LIMIT = 1e5
DEFAULT_REWARD_FILE = Path(__file__).resolve().parent / "defaults" / "reward_function.py"
_counter = itertools.count()


class RewardFunctionError(UserError):
    """The reward function failed or returned something unusable; training stops."""


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


def check_reward(value: Any, params: Mapping[str, Any]) -> float:
    """The simapp's checks on the returned value; raises RewardFunctionError."""
    try:
        reward = float(value)
    except (TypeError, ValueError) as exc:
        raise RewardFunctionError(
            f"reward_function returned {value!r} ({type(value).__name__}), which is not a number, "
            f"at step {params.get('steps')} with params {summarise_params(params)}"
        ) from exc
    if not math.isfinite(reward):
        raise RewardFunctionError(
            f"reward_function returned {reward} at step {params.get('steps')} with params {summarise_params(params)}"
        )
    if abs(reward) > REWARD_LIMIT:
        raise RewardFunctionError(
            f"Reward score out of range: reward_function returned {reward} (allowed [-1e5, 1e5]) at step "
            f"{params.get('steps')} with params {summarise_params(params)}"
        )
    return reward


class RewardFunction:
    """One worker's reward function: call with a fresh params dict, get a checked float."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.module = load_module(path)
        self._fn = reward_callable(self.module, path.name)

    def __call__(self, params: dict[str, Any]) -> float:
        step, snapshot = params.get("steps"), summarise_params(params)
        try:
            value = self._fn(params)
        except Exception as exc:
            detail = traceback.format_exc(limit=-4)
            raise RewardFunctionError(
                f"reward_function raised {type(exc).__name__}: {exc} at step {step} with params {snapshot}\n{detail}"
            ) from exc
        try:
            return check_reward(value, params)
        except RewardFunctionError as exc:
            raise RewardFunctionError(exc.message.replace(summarise_params(params), snapshot)) from exc


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
