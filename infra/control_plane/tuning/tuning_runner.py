"""Runs a tuning job: asks the strategy, launches training jobs, reads their objective, stops the weak ones.

One thread per tuning job polls its children every ``POLL_SECONDS``; objective values arrive line by line through
the :class:`LogTap` on the training job's own log thread, where Hyperband and the median stopping rule decide.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections.abc import Sequence

from infra.config import StackSettings
from infra.control_plane.core.errors import ServiceError, ValidationException
from infra.control_plane.core.quotas import QuotaLedger
from infra.control_plane.training.training_jobs import TrainingJobs, TrainingJobStatus
from infra.control_plane.tuning.tuning_jobs import ChildJob, TuningJob, TuningJobs, TuningJobStatus
from infra.control_plane.tuning.tuning_logs import LogTap, ObjectiveReader
from infra.control_plane.tuning.tuning_search import SearchStrategy, build_strategy
from infra.control_plane.tuning.tuning_validation import TuningLimits, child_request

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
MEDIAN_RULE_MIN_OTHERS = 2  # the median stopping rule needs this many other jobs at the same step
IMPROVEMENT = 0.01  # BestObjectiveNotImproving: a job improves when it beats the best by 1 %


class TuningRunner:
    """Starts one :class:`_TuningRun` thread per tuning job; implements ``TuningLauncher``."""

    def __init__(self, training_jobs: TrainingJobs, tap: LogTap, cores: int) -> None:
        self._training_jobs, self._tap, self._cores = training_jobs, tap, cores

    def launch(self, job: TuningJob, parents: list[TuningJob]) -> None:
        run = _TuningRun(job, parents, self._training_jobs, self._tap, self._cores)
        threading.Thread(target=run.run, name=f"tuning-{job.name}", daemon=True).start()


def build_tuning_jobs(
    settings: StackSettings,
    training_jobs: TrainingJobs,
    tap: LogTap,
    account_id: str,
    region: str,
    quotas: QuotaLedger | None = None,
) -> TuningJobs:
    """The tuning-job service of one account/region (what ``build_backend`` registers)."""
    limits = TuningLimits(max_parallel_training_jobs=settings.tuning_max_parallel_jobs)
    runner = TuningRunner(training_jobs, tap, settings.tuning_cores)
    return TuningJobs(account_id, region, runner, limits, quotas)


def threads_per_job(cores: int, parallel: int, max_jobs: int) -> int:
    """Parallel training jobs share the machine's cores: each gets ``cores // parallel`` threads (at least 1)."""
    return max(1, cores // max(1, min(parallel, max_jobs)))


def median_rule_stops(current: Sequence[float], others: Sequence[Sequence[float]], maximize: bool) -> bool:
    """Stop when the job's best so far is worse than the median of the others' running averages at this step."""
    step = len(current)
    averages = [statistics.fmean(values[:step]) for values in others if len(values) >= step]
    if step == 0 or len(averages) < MEDIAN_RULE_MIN_OTHERS:
        return False
    median = statistics.median(averages)
    return max(current) < median if maximize else min(current) > median


class _TuningRun:
    def __init__(
        self, job: TuningJob, parents: list[TuningJob], training_jobs: TrainingJobs, tap: LogTap, cores: int
    ) -> None:
        self.job, self.parents, self.training_jobs, self.tap = job, parents, training_jobs, tap
        plan = job.plan
        self.strategies: list[SearchStrategy] = [
            build_strategy(
                plan.strategy,
                d.space,
                d.objective.maximize,
                None if plan.seed is None else plan.seed + index,
                plan.max_jobs,
                plan.resources,
            )
            for index, d in enumerate(plan.definitions)
        ]
        self.readers = [ObjectiveReader(d.regex) for d in plan.definitions]
        self.threads = threads_per_job(cores, plan.max_parallel, plan.max_jobs)
        self.deadline = time.monotonic() + plan.max_runtime_seconds if plan.max_runtime_seconds else None
        self.exhausted: set[int] = set()
        self.by_name: dict[str, ChildJob] = {}
        self.best: ChildJob | None = None
        self.halt: tuple[TuningJobStatus, str | None] | None = None
        self.lock = threading.RLock()

    def run(self) -> None:
        try:
            self._seed_from_parents()
            self._loop()
        except Exception as exc:  # the tuning job must end in a terminal state whatever happens
            logger.exception("tuning job %s crashed in the control plane", self.job.name)
            self._stop_children()
            self.job.finish(TuningJobStatus.FAILED, f"InternalServerError: {exc}")
        finally:
            for name in list(self.by_name):
                self.tap.forget(name)

    def _seed_from_parents(self) -> None:
        for parent in self.parents:
            parent_best = parent.best()
            if parent_best is not None and parent_best.better_than(self.job.parent_best):
                self.job.parent_best = parent_best
            for child in parent.children:
                if child.objective is None:
                    continue
                for definition, strategy in zip(self.job.plan.definitions, self.strategies, strict=True):
                    coordinates = definition.space.to_coordinates(child.tuned)
                    if coordinates is not None:
                        strategy.seed(coordinates, child.objective)

    def _loop(self) -> None:
        while True:
            self._collect()
            self._check_halt()
            running = [c for c in self.job.children if not c.finished]
            if self.halt is not None or self._launch_done():
                if not running:
                    self._conclude()
                    return
            else:
                for _ in range(self.job.plan.max_parallel - len(running)):
                    if self._launch_done() or not self._launch_next():
                        break
            self.job.stop_requested.wait(POLL_SECONDS)

    def _check_halt(self) -> None:
        if self.halt is not None:
            return
        if self.job.stop_requested.is_set():
            self.halt = (TuningJobStatus.STOPPED, None)
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.halt = (TuningJobStatus.STOPPED, None)
            logger.info("tuning job %s reached MaxRuntimeInSeconds", self.job.name)
        if self.halt is not None:
            self._stop_children()

    def _launch_done(self) -> bool:
        plan = self.job.plan
        return len(self.job.children) >= plan.max_jobs or len(self.exhausted) == len(plan.definitions)

    def _launch_next(self) -> bool:
        definitions = self.job.plan.definitions
        for offset in range(len(definitions)):
            index = (len(self.job.children) + offset) % len(definitions)
            if index in self.exhausted:
                continue
            suggestion = self.strategies[index].ask()
            if suggestion is None:
                self.exhausted.add(index)
                continue
            self._start_child(index, suggestion.number, definitions[index].space.to_strings(suggestion.coordinates))
            return True
        return False

    def _start_child(self, index: int, trial: int, tuned: dict[str, str]) -> None:
        definition = self.job.plan.definitions[index]
        name = f"{self.job.name}-{len(self.job.children) + 1:03d}-{uuid.uuid4().hex[:8]}"
        request = child_request(definition, name, tuned, self.threads)
        with self.lock:
            self.tap.listen(name, lambda line: self._on_line(name, line))
            try:
                self.training_jobs.create_training_job(request)
            except ServiceError as exc:
                self.tap.forget(name)
                raise RuntimeError(f"could not create training job {name}: {exc.message}") from exc
            child = ChildJob(
                tuning_name=self.job.name,
                trial=trial,
                definition_index=index,
                definition_name=definition.name,
                training=self.training_jobs.store.get_or_raise(name),
                tuned=tuned,
                maximize=definition.objective.maximize,
                metric=definition.objective.metric,
            )
            self.by_name[name] = child
            with self.job.lock:
                self.job.children.append(child)
        logger.info("tuning job %s launched %s with %s", self.job.name, name, tuned)

    def _on_line(self, name: str, line: str) -> None:
        with self.lock:
            child = self.by_name.get(name)
            if child is None or child.finished:
                return
            value = self.readers[child.definition_index].value_in(line)
            if value is None:
                return
            child.values.append(value)
            step = len(child.values)
            others = [c.values for c in self.job.children if c is not child and c.values]
        plan = self.job.plan
        if plan.resources is not None:
            if self.strategies[child.definition_index].report(child.trial, step, value):
                self._stop_child(child, pruned=True)
            elif step >= plan.resources[1]:
                self._stop_child(child, pruned=False)
        elif plan.early_stopping and median_rule_stops(child.values, others, child.maximize):
            logger.info("median rule stops %s at step %d", name, step)
            self._stop_child(child, pruned=False)

    def _stop_child(self, child: ChildJob, pruned: bool) -> None:
        if child.stopped_by_tuner or child.training.is_terminal:
            return
        child.stopped_by_tuner, child.pruned = True, pruned
        self._stop_training(child.name)

    def _stop_training(self, name: str) -> None:
        try:
            self.training_jobs.stop_training_job({"TrainingJobName": name})
        except ValidationException:
            pass  # it ended meanwhile

    def _stop_children(self) -> None:
        for child in list(self.job.children):
            if child.training.status is TrainingJobStatus.IN_PROGRESS:
                self._stop_training(child.name)

    def _collect(self) -> None:
        for child in list(self.job.children):
            if child.finished or not child.training.is_terminal:
                continue
            with self.lock:
                child.objective = _objective(child)
                child.finished = True
            self.tap.forget(child.name)
            pruned = child.pruned and child.objective is not None
            self.strategies[child.definition_index].tell(child.trial, child.objective, pruned)
            with self.job.lock:
                self.job.last_modified = child.training.last_modified
            if child.objective is not None and not pruned:
                self._check_criteria(child)

    def _check_criteria(self, child: ChildJob) -> None:
        plan, job = self.job.plan, self.job
        if child.eligible:
            improved = self.best is None or _improves(child, self.best)
            if child.better_than(self.best):
                self.best = child
            job.not_improving = 0 if improved else job.not_improving + 1
        if self.halt is not None:
            return
        assert child.objective is not None
        target = plan.target_value
        if target is not None and (child.objective >= target if child.maximize else child.objective <= target):
            self.halt = (TuningJobStatus.COMPLETED, None)
        elif plan.max_not_improving is not None and job.not_improving >= plan.max_not_improving:
            self.halt = (TuningJobStatus.COMPLETED, None)
        if self.halt is not None:
            logger.info("tuning job %s met its completion criteria", job.name)
            self._stop_children()

    def _conclude(self) -> None:
        children = self.job.children
        if self.job.stop_requested.is_set():
            self.job.finish(TuningJobStatus.STOPPED)
        elif self.halt is not None:
            self.job.finish(*self.halt)
        elif children and all(c.objective is None for c in children):
            failed = [c for c in children if c.training.status is TrainingJobStatus.FAILED]
            if failed:
                reason = f"All training jobs failed. The last one failed with: {failed[-1].training.failure_reason}"
            else:
                reason = f"No training job reported the objective metric {self.job.plan.objective.metric}."
            self.job.finish(TuningJobStatus.FAILED, reason)
        else:
            self.job.finish(TuningJobStatus.COMPLETED)
        logger.info("tuning job %s ended %s", self.job.name, self.job.status.value)


def _objective(child: ChildJob) -> float | None:
    """The last logged value of the objective metric, for a job that Completed or was Stopped."""
    training = child.training
    if training.status not in (TrainingJobStatus.COMPLETED, TrainingJobStatus.STOPPED):
        return None
    with training.lock:
        final = {m["MetricName"]: m["Value"] for m in training.final_metrics}
    if child.metric in final:
        return float(final[child.metric])
    return child.values[-1] if child.values else None


def _improves(child: ChildJob, best: ChildJob) -> bool:
    assert child.objective is not None and best.objective is not None
    margin = IMPROVEMENT * abs(best.objective)
    return child.objective >= best.objective + margin if child.maximize else child.objective <= best.objective - margin
