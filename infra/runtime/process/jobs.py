"""A job: one :class:`HostProcess` per host, supervised together.

The job ends when every host has exited. A host exiting non-zero fails the job and the other hosts are stopped
(SIGTERM, then SIGKILL after the grace period), so a worker never waits forever for a dead master.
``max_runtime_seconds`` and :meth:`Job.stop` stop every host the same way and decide the outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.runtime.api import ContainerImage, ContainerRuntimeError, Entry, HostResult, LogCallback, TrainingOutcome
from infra.runtime.process.host_process import HostProcess, describe_exit
from infra.runtime.process.process_ledger import ProcessLedger

logger = logging.getLogger(__name__)

__all__ = ["FAILURE_REASON_LIMIT", "Job", "JobOutcome", "Launch", "container_argv", "read_failure_file"]

FAILURE_REASON_LIMIT = 1024


def container_argv(
    image: ContainerImage,
    entry: Entry | None,
    entrypoint: Sequence[str] | None = None,
    arguments: Sequence[str] | None = None,
) -> list[str]:
    """``docker run [--entrypoint E] image [A...]`` as argv (docs/reference/container-contract.md#start-and-stop).

    The entry (``train``/``serve``) stands for the arguments SageMaker passes; ``arguments`` replace it, and an
    ``entrypoint`` replaces the image's command and drops the entry, as ``--entrypoint`` resets ``CMD``.
    """
    if entrypoint:
        return [*entrypoint, *(arguments or ())]
    default = [entry.value] if entry is not None else []
    return [*image.command, *(arguments if arguments else default)]


@dataclass(frozen=True)
class Launch:
    """How to start one host: the command, its environment, and the host directory (``/opt/ml``)."""

    host: str
    argv: Sequence[str]
    env: Mapping[str, str]
    root: Path
    started: HostProcess | None = None  # a warm-pool host already running: adopted instead of started


@dataclass(frozen=True)
class JobOutcome:
    outcome: TrainingOutcome
    hosts: tuple[HostResult, ...]
    failure_reason: str | None

    @property
    def all_exited_zero(self) -> bool:
        return all(host.exit_code == 0 for host in self.hosts)


def read_failure_file(root: Path) -> str | None:
    """The first 1024 characters of ``<root>/output/failure``, or ``None`` when absent or empty."""
    try:
        text = (root / "output" / "failure").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[:FAILURE_REASON_LIMIT] if text.strip() else None


class Job:
    """Started host processes of one training or processing job."""

    def __init__(
        self,
        name: str,
        launches: Sequence[Launch],
        on_log: LogCallback | None,
        max_runtime_seconds: float | None,
        grace_seconds: float,
        ledger: ProcessLedger | None = None,
    ) -> None:
        self.name = name
        self._grace = grace_seconds
        self._max_runtime = max_runtime_seconds
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._stop_reason: TrainingOutcome | None = None
        self._exit_order: list[str] = []
        self._roots = {launch.host: launch.root for launch in launches}
        self._processes: list[HostProcess] = []
        try:
            for launch in launches:
                if launch.started is not None:
                    self._processes.append(launch.started)
                    continue
                self._processes.append(
                    HostProcess(
                        launch.host, launch.argv, launch.env, launch.root, on_log, self._host_exited, ledger=ledger
                    )
                )
            for process in self._processes:
                if any(process is launch.started for launch in launches):
                    process.adopt(on_log, self._host_exited)
        except OSError as exc:
            self.stop(grace_seconds=0.0)
            raise ContainerRuntimeError(
                f"job {name}: cannot start {launches[len(self._processes)].host}: {exc}"
            ) from exc
        threading.Thread(target=self._enforce_max_runtime, name=f"sagestack-job-{name}", daemon=True).start()

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(process.pid for process in self._processes)

    def is_running(self) -> bool:
        return not self._ended.is_set()

    def stop(self, grace_seconds: float | None = None) -> None:
        """SIGTERM every host, SIGKILL after the grace period; the outcome becomes STOPPED."""
        self._request_stop(TrainingOutcome.STOPPED, self._grace if grace_seconds is None else grace_seconds)

    def wait(self, timeout: float | None = None) -> JobOutcome | None:
        """The outcome once every host has exited; ``None`` if ``timeout`` passes first."""
        if not self._ended.wait(timeout):
            return None
        return self._outcome()

    def _request_stop(self, reason: TrainingOutcome, grace_seconds: float) -> None:
        with self._lock:
            if self._ended.is_set():
                return
            if self._stop_reason is None:
                self._stop_reason = reason
                logger.info("stopping job %s (%s)", self.name, reason.value)
        for process in self._processes:
            process.terminate(grace_seconds)

    def _host_exited(self, process: HostProcess) -> None:
        with self._lock:
            self._exit_order.append(process.host)
            failed_first = process.exit_code != 0 and self._stop_reason is None
            all_done = len(self._exit_order) == len(self._roots) and all(
                not other.is_alive() for other in self._processes
            )
        if failed_first and not all_done:
            logger.info(
                "job %s: %s exited with %s; stopping the other hosts", self.name, process.host, process.exit_code
            )
            for other in self._processes:
                other.terminate(self._grace)
        if all_done:
            self._ended.set()

    def _enforce_max_runtime(self) -> None:
        if self._max_runtime is None:
            return
        if not self._ended.wait(self._max_runtime):
            self._request_stop(TrainingOutcome.MAX_RUNTIME_EXCEEDED, self._grace)

    def _outcome(self) -> JobOutcome:
        results = {process.host: self._host_result(process) for process in self._processes}
        hosts = tuple(results[host] for host in sorted(results))
        if self._stop_reason is not None:
            outcome = self._stop_reason
        elif all(result.exit_code == 0 for result in hosts):
            outcome = TrainingOutcome.COMPLETED
        else:
            outcome = TrainingOutcome.FAILED
        return JobOutcome(outcome, hosts, self._job_failure_reason(outcome, results))

    def _host_result(self, process: HostProcess) -> HostResult:
        code = process.exit_code if process.exit_code is not None else -1
        reason = None
        if code != 0:
            reason = read_failure_file(self._roots[process.host]) or describe_exit(code)
        return HostResult(host=process.host, exit_code=code, failure_reason=reason)

    def _job_failure_reason(self, outcome: TrainingOutcome, results: Mapping[str, HostResult]) -> str | None:
        if outcome is TrainingOutcome.MAX_RUNTIME_EXCEEDED:
            return f"MaxRuntimeExceeded: the job ran longer than MaxRuntimeInSeconds ({self._max_runtime:g} s)"
        if outcome is not TrainingOutcome.FAILED:
            return None
        for host in self._exit_order:
            if results[host].failure_reason is not None:
                return results[host].failure_reason
        return None
