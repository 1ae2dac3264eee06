"""Started-ahead invocation processes: after a function's first (cold) invocation, one process for its next one.

A standby process is the bootstrap started with the function's environment, waiting on stdin for its one request
(a header line with the request id and deadline, then the event); it has not imported the function, so each
invocation still runs in a fresh process as before, without paying the interpreter's start-up on the step's path
(docs/pipelines.md#lambda-steps). One standby per function configuration, at most ``MAX_STANDBY`` in all (the
least recently used are stopped), stopped when the function is updated or deleted and when the stack stops.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_STANDBY = 8  # processes in all
PER_FUNCTION = 1  # 2 measured no faster back to back on a loaded 2-core machine, for twice the spawns


@dataclass
class InvocationProcess:
    """A started bootstrap process and its scratch folder (``HOME``/``TMPDIR``, the result file)."""

    popen: subprocess.Popen[bytes]
    scratch: Path

    @property
    def result_file(self) -> Path:
        return self.scratch / "result.json"

    def discard(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        try:
            self.popen.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            logger.warning("lambda standby process %s did not end after SIGKILL", self.popen.pid)
        shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass
class StandbyProcesses:
    """Standby processes keyed by a function configuration (its ARN first), ``PER_FUNCTION`` of each."""

    _processes: OrderedDict[str, deque[InvocationProcess]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> InvocationProcess | None:
        with self._lock:
            waiting = self._processes.get(key)
            process = waiting.popleft() if waiting else None
        if process is not None and process.popen.poll() is not None:
            process.discard()  # it ended while waiting (killed from outside): start a cold one instead
            return None
        return process

    def refill(self, key: str, start: Callable[[], InvocationProcess]) -> None:
        """Start processes for ``key`` until ``PER_FUNCTION`` wait; stop the least recently used past the cap."""
        with self._lock:
            missing = PER_FUNCTION - len(self._processes.get(key, ()))
        started = [start() for _ in range(max(0, missing))]
        with self._lock:
            waiting = self._processes.pop(key, deque())
            waiting.extend(started)
            self._processes[key] = waiting  # most recently used last
            evicted = self._evict()
        for old in evicted:
            old.discard()

    def _evict(self) -> list[InvocationProcess]:
        evicted: list[InvocationProcess] = []
        while sum(len(w) for w in self._processes.values()) > MAX_STANDBY:
            oldest = next(iter(self._processes))
            evicted.append(self._processes[oldest].popleft())
            if not self._processes[oldest]:
                del self._processes[oldest]
        return evicted

    def discard_function(self, function_arn: str) -> None:
        """Stop the standby processes of a function (updated or deleted)."""
        with self._lock:
            keys = [k for k in self._processes if k.split("\n", 1)[0] == function_arn]
            processes = [p for k in keys for p in self._processes.pop(k)]
        for process in processes:
            process.discard()

    def close(self) -> None:
        with self._lock:
            processes = [p for waiting in self._processes.values() for p in waiting]
            self._processes.clear()
        for process in processes:
            process.discard()
