"""Started training and processing jobs of the process runtime: waiting for them and collecting what they wrote.

Model artifacts: ``TrainingResult.model_dir`` holds the merged ``/opt/ml/model`` of every host **only when every
host exited 0** (see :mod:`infra.runtime.process.process_runtime`).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from infra.runtime.api import ProcessingResult, ProcessingSpec, TrainingOutcome, TrainingResult, TrainingSpec
from infra.runtime.process.jobs import Job, JobOutcome
from infra.runtime.process.layout import host_path, merge_order, merge_trees

logger = logging.getLogger(__name__)

__all__ = ["ProcessProcessingRun", "ProcessTrainingRun"]


class ProcessTrainingRun:
    """A started training job (:class:`~infra.runtime.api.TrainingRun`)."""

    def __init__(
        self,
        spec: TrainingSpec,
        job: Job,
        hosts: Sequence[str],
        warm_dir: Path | None = None,
        on_end: Callable[[TrainingOutcome], None] | None = None,
    ) -> None:
        self.spec = spec
        self._job = job
        self._hosts = tuple(hosts)
        self._warm_dir = warm_dir  # a claimed warm host set ran the job there; moved to spec.work_dir at the end
        self._on_end = on_end
        self._result: TrainingResult | None = None
        self._lock = threading.Lock()

    @property
    def pids(self) -> tuple[int, ...]:
        return self._job.pids

    def is_running(self) -> bool:
        return self._job.is_running()

    def stop(self) -> None:
        self._job.stop()

    def wait(self) -> TrainingResult:
        outcome = self._job.wait()
        assert outcome is not None
        with self._lock:
            if self._result is None:
                self._adopt_warm_dir()
                self._result = self._collect(outcome)
                if self._on_end is not None:
                    self._on_end(self._result.outcome)
            return self._result

    def _adopt_warm_dir(self) -> None:
        """The host directories a warm host set ran the job in become ``spec.work_dir``, as a cold run's are."""
        if self._warm_dir is None:
            return
        if self.spec.work_dir.exists():
            shutil.rmtree(self.spec.work_dir)
        self.spec.work_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self._warm_dir, self.spec.work_dir)

    def _collect(self, outcome: JobOutcome) -> TrainingResult:
        artifacts = self.spec.work_dir / "artifacts"
        roots = [self.spec.work_dir / host for host in merge_order(self._hosts)]
        model_dir = artifacts / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        if outcome.all_exited_zero:
            merge_trees((root / "model" for root in roots), model_dir)
        else:
            logger.info("job %s: a host exited non-zero; its model is not collected", self.spec.job_name)
        output_dir = merge_trees((root / "output" / "data" for root in roots), artifacts / "output-data")
        logger.info("training job %s finished: %s", self.spec.job_name, outcome.outcome.value)
        return TrainingResult(outcome.outcome, outcome.hosts, model_dir, output_dir, outcome.failure_reason)


class ProcessProcessingRun:
    """A started processing job (:class:`~infra.runtime.api.ProcessingRun`)."""

    def __init__(self, spec: ProcessingSpec, job: Job, hosts: Sequence[str]) -> None:
        self.spec = spec
        self._job = job
        self._hosts = tuple(hosts)
        self._result: ProcessingResult | None = None
        self._lock = threading.Lock()

    @property
    def pids(self) -> tuple[int, ...]:
        return self._job.pids

    def stop(self) -> None:
        self._job.stop()

    def wait(self) -> ProcessingResult:
        outcome = self._job.wait()
        assert outcome is not None
        with self._lock:
            if self._result is None:
                outputs = {path: self._collect_output(path) for path in self.spec.outputs}
                self._result = ProcessingResult(outcome.outcome, outcome.hosts, outputs, outcome.failure_reason)
                logger.info("processing job %s finished: %s", self.spec.job_name, outcome.outcome.value)
            return self._result

    def _collect_output(self, container_path: str) -> Path:
        if len(self._hosts) == 1:
            return host_path(self.spec.work_dir / self._hosts[0], container_path)
        relative = container_path.strip("/").replace("/", "_")
        sources = (host_path(self.spec.work_dir / host, container_path) for host in merge_order(self._hosts))
        return merge_trees(sources, self.spec.work_dir / "outputs" / relative)
