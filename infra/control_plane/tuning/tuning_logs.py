"""Tuning jobs watch their training jobs' log lines: a tap on the Logs writer, and the objective regex reader.

``LogTap`` is the ``LogsAccess`` the executors write through; it also hands every training-job line to a listener
registered under the job's name (the stream is ``<job>/<host>-<epoch>``). A listener is registered before the job
is created, so no line is missed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from infra.control_plane.core.aws_services import LogsAccess
from infra.control_plane.training.builtin_metrics import escape_control_chars

logger = logging.getLogger(__name__)

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
_LEADING_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)", re.IGNORECASE)

LineListener = Callable[[str], None]


class LogTap(LogsAccess):
    """``LogsAccess`` that also forwards training-job lines to per-job listeners."""

    def __init__(self, account_id: str, region: str) -> None:
        super().__init__(account_id, region)
        self._listeners: dict[str, LineListener] = {}
        self._listeners_lock = threading.Lock()

    def listen(self, job_name: str, listener: LineListener) -> None:
        with self._listeners_lock:
            self._listeners[job_name] = listener

    def forget(self, job_name: str) -> None:
        with self._listeners_lock:
            self._listeners.pop(job_name, None)

    def put(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        super().put(group, stream, events)
        if group != TRAINING_LOG_GROUP:
            return
        with self._listeners_lock:
            listener = self._listeners.get(stream.split("/", 1)[0])
        if listener is None:
            return
        for _, message in events:
            try:
                listener(message)
            except Exception:  # a tuning bug must never break the training job's logging
                logger.exception("tuning listener failed on a line of %s", stream)


class ObjectiveReader:
    """Reads the objective metric from one log line the way SageMaker does
    (docs/reference/container-contract.md#metric-lines): escaped line, then raw."""

    def __init__(self, regex: str) -> None:
        self._pattern = re.compile(regex)

    def value_in(self, line: str) -> float | None:
        escaped = escape_control_chars(line)
        value = self._match(escaped)
        if value is None and escaped != line:
            value = self._match(line)
        return value

    def _match(self, line: str) -> float | None:
        found = self._pattern.search(line)
        if found is None or not found.groups() or found.group(1) is None:
            return None
        number = _LEADING_FLOAT.match(found.group(1))
        return float(number.group(0)) if number else None
