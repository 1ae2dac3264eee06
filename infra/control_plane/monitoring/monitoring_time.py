"""Monitoring schedule time: the supported cron expressions, ISO-8601 offsets, fire times and analysis windows.

Plain functions on aware UTC datetimes (no threads, no resources), so the window rule is one tested function:

* ``cron(0 * ? * * *)`` hourly, ``cron(0 H ? * * *)`` daily at H, ``cron(0 H/N ? * * *)`` every N hours from H
  (hours H, H+N, … modulo 24 when N divides 24, as AWS documents "every 12 hours starting at 5pm" for
  ``17/12``; otherwise cron's H, H+N, … ≤ 23), ``NOW`` one time. No expression: daily at 00:00 UTC.
* The window of an execution scheduled at T is ``[T + start, T + end)`` with the schedule's
  ``DataAnalysisStartTime``/``EndTime`` offsets, else the job input's ``StartTimeOffset``/``EndTimeOffset``, else
  ``[previous fire time, T)`` (an hourly schedule at 14:00 analyses 13:00–14:00).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infra.control_plane.core.errors import ValidationException

__all__ = [
    "MAX_WINDOW",
    "ScheduleExpression",
    "analysis_window",
    "parse_offset",
    "validate_offsets",
]

NOW = "NOW"
MAX_WINDOW = timedelta(hours=24)
_HOUR = timedelta(hours=1)
_CRON = re.compile(r"^cron\(\s*0\s+(?P<hour>\*|\d{1,2}(?:/\d{1,2})?)\s+\?\s+\*\s+\*\s+\*\s*\)$")
_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
SUPPORTED = (
    "cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H), cron(0 H/N ? * * *) (every N hours "
    "starting at hour H) or NOW (one time, with DataAnalysisStartTime and DataAnalysisEndTime)"
)


@dataclass(frozen=True)
class ScheduleExpression:
    """A parsed ``ScheduleExpression``: the hours of the day it fires at, or a one-time ``NOW``."""

    text: str
    hours: frozenset[int]  # empty for NOW

    @property
    def one_time(self) -> bool:
        return not self.hours

    @classmethod
    def parse(cls, text: str | None) -> ScheduleExpression:
        if text is None:
            return cls("cron(0 0 ? * * *)", frozenset({0}))
        stripped = text.strip()
        if stripped == NOW:
            return cls(NOW, frozenset())
        match = _CRON.match(stripped)
        if match is None:
            raise ValidationException(f"Invalid ScheduleExpression {text!r}: supported expressions are {SUPPORTED}.")
        field = match.group("hour")
        if field == "*":
            return cls(stripped, frozenset(range(24)))
        start_text, _, step_text = field.partition("/")
        start = int(start_text)
        step = int(step_text) if step_text else 24
        if not 0 <= start <= 23 or not 1 <= step <= 24:
            raise ValidationException(
                f"Invalid ScheduleExpression {text!r}: the hour must be 0-23 and the interval 1-24 hours."
            )
        if 24 % step == 0:
            hours = frozenset((start + k * step) % 24 for k in range(24 // step))
        else:
            hours = frozenset(range(start, 24, step))
        return cls(stripped, hours)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (None for NOW)."""
        if self.one_time:
            return None
        candidate = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + _HOUR
        for _ in range(48):
            if candidate.hour in self.hours:
                return candidate
            candidate += _HOUR
        raise AssertionError("a cron schedule fires at least once a day")  # pragma: no cover

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before ``moment`` (None for NOW)."""
        if self.one_time:
            return None
        candidate = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for _ in range(48):
            if candidate.hour in self.hours:
                return candidate
            candidate -= _HOUR
        raise AssertionError("a cron schedule fires at least once a day")  # pragma: no cover

    def previous_before(self, scheduled: datetime) -> datetime:
        """The fire time before ``scheduled``: the default window start of a cron execution."""
        before = self.latest_at_or_before(scheduled - _HOUR)
        return before if before is not None else scheduled - _HOUR


def parse_offset(text: str, field: str) -> timedelta:
    """An ISO-8601 duration (``-PT1H``, ``-P1D``, ``-PT30M``, ``PT0H``) as a timedelta; years/months refused."""
    match = _DURATION.match(text.strip())
    if match is None or text.strip().rstrip("T").endswith("P"):
        raise ValidationException(
            f"{field} {text!r} is not an ISO-8601 duration such as -PT1H or -P1D (weeks, days, hours, minutes, "
            "seconds; no years or months)."
        )
    parts = match.groupdict()
    delta = timedelta(
        weeks=int(parts["weeks"] or 0),
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=float(parts["seconds"] or 0),
    )
    return -delta if parts["sign"] == "-" else delta


def validate_offsets(start: timedelta | None, end: timedelta | None, what: str) -> None:
    """Offsets look back from the scheduled time: not positive, start before end, at most 24 hours apart."""
    for value, name in ((start, "start"), (end, "end")):
        if value is not None and value > timedelta(0):
            raise ValidationException(
                f"The {what} {name} offset must be zero or negative (a duration before the scheduled time), "
                f"got +{value}."
            )
    if start is not None and end is not None:
        if start >= end:
            raise ValidationException(f"The {what} start offset must precede its end offset.")
        if end - start > MAX_WINDOW:
            raise ValidationException(f"The {what} start must not precede its end by more than 24 hours.")


def analysis_window(
    expression: ScheduleExpression,
    scheduled: datetime,
    start_offset: timedelta | None,
    end_offset: timedelta | None,
) -> tuple[datetime, datetime]:
    """``[start, end)`` for an execution scheduled at ``scheduled`` (offsets already chosen by the caller)."""
    end = scheduled + (end_offset if end_offset is not None else timedelta(0))
    if start_offset is not None:
        start = scheduled + start_offset
    elif expression.one_time:
        start = end - _HOUR
    else:
        start = expression.previous_before(scheduled) + (end - scheduled)
    return start, end


def iso(moment: datetime) -> str:
    """``2024-05-05T13:00:00Z`` (what the analyzer's ``start_time``/``end_time`` expect)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_text(start: datetime, end: datetime) -> tuple[str, str]:
    """The window in whole seconds, the end rounded up: captures carry ``inferenceTime`` to the second, so a
    record made during the window's last partial second stays inside ``[start, end)``."""
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return iso(start), iso(end)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC hour whose ``[h, h+1)`` overlaps ``[start, end)`` (the capture folders to stage)."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    found = []
    while hour < end:
        found.append(hour)
        hour += _HOUR
    return found
