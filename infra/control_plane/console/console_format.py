"""Jinja filters that make a page readable at a glance: status colours, relative times, durations."""

from __future__ import annotations

import time
from typing import Any

_OK = {"Succeeded", "Completed", "InService", "Approved", "Executed"}
_RUNNING = {"Executing", "InProgress", "Creating", "Updating", "Starting", "Stopping", "Pending", "SystemUpdating"}
_FAILED = {"Failed", "Stopped", "Rejected", "OutOfService", "Deleting"}


def status_class(status: Any) -> str:
    """The CSS class of a status: ``ok`` green, ``running`` blue, ``failed`` red, ``idle`` grey."""
    text = str(status or "")
    if text in _OK:
        return "ok"
    if text in _RUNNING:
        return "running"
    if text in _FAILED:
        return "failed"
    return "idle"


def relative_time(epoch: Any, now: float | None = None) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; empty for a missing time."""
    if not isinstance(epoch, int | float):
        return ""
    seconds = max(0, int((time.time() if now is None else now) - epoch))
    return f"{_span(seconds)} ago"


def duration(start: Any, end: Any = None, now: float | None = None) -> str:
    """The time from ``start`` to ``end`` (to now while running), e.g. ``1 min 05 s``."""
    if not isinstance(start, int | float):
        return ""
    stop = end if isinstance(end, int | float) else (time.time() if now is None else now)
    seconds = max(0, int(stop - start))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def absolute_time(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


FILTERS = {
    "status_class": status_class,
    "ago": relative_time,
    "duration": duration,
    "when": absolute_time,
}
