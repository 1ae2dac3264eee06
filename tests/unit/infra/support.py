"""Helpers shared by the runtime tests."""

from __future__ import annotations

import threading
from pathlib import Path

from infra.runtime.api import LogLine


class LogCollector:
    """A log callback that records lines and lets a test wait for one."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self._changed = threading.Condition()

    def __call__(self, line: LogLine) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: any(text in line.text for line in self.lines), timeout)

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


def pid_gone(pid: int) -> bool:
    """True when no process (other than a zombie awaiting its reaper) has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
