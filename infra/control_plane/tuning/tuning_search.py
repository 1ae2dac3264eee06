"""Search strategies: what the next training job tries, and (Hyperband) whether a running job goes on.

``Random`` draws each value independently with the scaling formulas of
docs/tuning.md#strategies-and-how-the-search-works. ``Grid`` walks every combination once.
``Bayesian`` is optuna's TPE sampler (multivariate, constant liar so parallel jobs do not pile onto the same point,
few random start-up jobs so small budgets still exploit). ``Hyperband`` is the same sampler with optuna's
``HyperbandPruner`` (η = 3 over [MinResource, MaxResource]) fed with every logged value of the objective.
Strategies are thread-safe: log lines of parallel jobs arrive on their own threads.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from infra.control_plane.tuning.tuning_space import SearchSpace

if TYPE_CHECKING:
    import optuna  # imported where a Bayesian or Hyperband search starts: ~15 MB the idle stack does not need

logger = logging.getLogger(__name__)

REDUCTION_FACTOR = 3


@dataclass(frozen=True)
class Suggestion:
    number: int
    coordinates: dict[str, Any]


class SearchStrategy(Protocol):
    def ask(self) -> Suggestion | None:
        """The next point to try, or ``None`` when the space is exhausted."""

    def report(self, number: int, step: int, value: float) -> bool:
        """An intermediate objective value; True when the job should stop now (pruned)."""

    def tell(self, number: int, value: float | None, pruned: bool = False) -> None:
        """The job's final objective (``None``: no objective)."""

    def seed(self, coordinates: Mapping[str, Any], value: float) -> None:
        """A completed job of a warm-start parent."""


def startup_trials(max_jobs: int) -> int:
    """Random jobs before the model takes over: a third of the budget, between 3 and 10."""
    return max(3, min(10, max_jobs // 3))


class RandomSearch:
    def __init__(self, space: SearchSpace, seed: int | None) -> None:
        self._space = space
        self._random = random.Random(seed)
        self._count = 0
        self._lock = threading.Lock()

    def ask(self) -> Suggestion | None:
        with self._lock:
            self._count += 1
            return Suggestion(self._count, {r.name: r.from_unit(self._random.random()) for r in self._space.ranges})

    def report(self, number: int, step: int, value: float) -> bool:
        return False

    def tell(self, number: int, value: float | None, pruned: bool = False) -> None:
        return None

    def seed(self, coordinates: Mapping[str, Any], value: float) -> None:
        return None


class GridSearch(RandomSearch):
    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space, None)
        self._points: Iterator[dict[str, Any]] = space.grid()

    def ask(self) -> Suggestion | None:
        with self._lock:
            point = next(self._points, None)
            if point is None:
                return None
            self._count += 1
            return Suggestion(self._count, point)


class OptunaSearch:
    """Bayesian (TPE) search; with a pruner, Hyperband."""

    def __init__(
        self,
        space: SearchSpace,
        maximize: bool,
        seed: int | None,
        max_jobs: int,
        pruner: optuna.pruners.BasePruner | None = None,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup_trials(max_jobs),
            multivariate=True,
            constant_liar=True,
        )
        self._study = optuna.create_study(
            direction="maximize" if maximize else "minimize",
            sampler=sampler,
            pruner=pruner or optuna.pruners.NopPruner(),
        )
        self._space = space
        self._distributions = space.distributions()
        self._trials: dict[int, optuna.Trial] = {}
        self._lock = threading.Lock()

    def ask(self) -> Suggestion | None:
        with self._lock:
            trial = self._study.ask(self._distributions)
            self._trials[trial.number] = trial
            return Suggestion(trial.number, dict(trial.params))

    def report(self, number: int, step: int, value: float) -> bool:
        if not math.isfinite(value):
            return False
        with self._lock:
            trial = self._trials.get(number)
            if trial is None:
                return False
            try:
                trial.report(value, step)
            except (NotImplementedError, ValueError):
                return False  # a repeated step: optuna keeps the first
            return trial.should_prune()

    def tell(self, number: int, value: float | None, pruned: bool = False) -> None:
        with self._lock:
            trial = self._trials.pop(number, None)
            if trial is None:
                return
            from optuna.trial import TrialState

            if value is None or not math.isfinite(value):
                self._study.tell(trial, state=TrialState.FAIL)
            elif pruned:
                self._study.tell(trial, state=TrialState.PRUNED)
            else:
                self._study.tell(trial, value)

    def seed(self, coordinates: Mapping[str, Any], value: float) -> None:
        from optuna.trial import create_trial

        with self._lock:
            frozen = create_trial(params=dict(coordinates), distributions=self._distributions, value=value)
            self._study.add_trial(frozen)


def build_strategy(
    strategy: str,
    space: SearchSpace,
    maximize: bool,
    seed: int | None,
    max_jobs: int,
    resources: tuple[int, int] | None = None,
) -> SearchStrategy:
    """The strategy object for a ``Strategy`` value; ``resources`` is Hyperband's (MinResource, MaxResource)."""
    if strategy == "Grid":
        return GridSearch(space)
    if strategy == "Random":
        return RandomSearch(space, seed)
    pruner: optuna.pruners.BasePruner | None = None
    if strategy == "Hyperband" and resources is not None:
        from optuna.pruners import HyperbandPruner

        low, high = resources
        pruner = HyperbandPruner(min_resource=low, max_resource=high, reduction_factor=REDUCTION_FACTOR)
    return OptunaSearch(space, maximize, seed, max_jobs, pruner)
