"""Monitoring schedule time: the cron subset, ISO-8601 offsets, fire times, analysis windows
(docs/model-monitor.md#schedules-and-windows-monitoring_timepy)."""

from datetime import UTC, datetime, timedelta

import pytest

from infra.control_plane.core.errors import ValidationException
from infra.control_plane.monitoring.monitoring_schedules import MonitoringClock
from infra.control_plane.monitoring.monitoring_time import (
    ScheduleExpression,
    analysis_window,
    hours_between,
    parse_offset,
    validate_offsets,
    window_text,
)


def at(hour, minute=0, day=20, second=0):
    return datetime(2020, 2, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("cron(0 * ? * * *)", set(range(24))),
        ("cron(0 5 ? * * *)", {5}),
        ("cron(0 05 ? * * *)", {5}),
        ("cron(0 0/2 ? * * *)", set(range(0, 24, 2))),
        ("cron(0 17/12 ? * * *)", {17, 5}),  # AWS: "every 12 hours, starting at 5pm UTC"
        ("cron(0 1/5 ? * * *)", {1, 6, 11, 16, 21}),  # 5 does not divide 24: cron's H, H+N, ... <= 23
        ("cron(0 3/24 ? * * *)", {3}),
        (None, {0}),  # no expression: daily, at a time the service picks (midnight here)
    ],
)
def test_supported_expressions(text, hours):
    assert ScheduleExpression.parse(text).hours == frozenset(hours)


@pytest.mark.parametrize(
    "text",
    ["cron(0 12 * * ? *)", "cron(30 * ? * * *)", "cron(0 24 ? * * *)", "cron(0 1/25 ? * * *)", "rate(1 hour)", "now"],
)
def test_other_expressions_are_refused(text):
    with pytest.raises(ValidationException, match="ScheduleExpression"):
        ScheduleExpression.parse(text)


def test_now_is_one_time():
    now = ScheduleExpression.parse("NOW")
    assert now.one_time and now.next_after(at(10)) is None and now.latest_at_or_before(at(10)) is None


def test_fire_times():
    hourly = ScheduleExpression.parse("cron(0 * ? * * *)")
    assert hourly.next_after(at(10, 23)) == at(11)
    assert hourly.next_after(at(11)) == at(12)  # strictly after
    assert hourly.latest_at_or_before(at(11, 59)) == at(11)
    daily = ScheduleExpression.parse("cron(0 5 ? * * *)")
    assert daily.next_after(at(6)) == at(5, day=21)
    assert daily.latest_at_or_before(at(4)) == at(5, day=19)
    twelve = ScheduleExpression.parse("cron(0 17/12 ? * * *)")
    assert twelve.next_after(at(6)) == at(17) and twelve.next_after(at(17)) == at(5, day=21)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-PT1H", timedelta(hours=-1)),
        ("-P1D", timedelta(days=-1)),
        ("-P8D", timedelta(days=-8)),
        ("-PT30M", timedelta(minutes=-30)),
        ("-PT90S", timedelta(seconds=-90)),
        ("-P1DT2H", timedelta(hours=-26)),
        ("PT0H", timedelta(0)),
        ("-P1W", timedelta(weeks=-1)),
    ],
)
def test_offsets(text, expected):
    assert parse_offset(text, "x") == expected


@pytest.mark.parametrize("text", ["-1H", "P", "-PT", "-P1M", "-P1Y", "yesterday", "-PT1.5H"])
def test_bad_offsets(text):
    with pytest.raises(ValidationException, match="ISO-8601"):
        parse_offset(text, "DataAnalysisStartTime")


def test_offset_rules():
    validate_offsets(timedelta(hours=-5), timedelta(hours=-1), "w")
    validate_offsets(None, timedelta(0), "w")
    for start, end, message in (
        (timedelta(hours=-1), timedelta(hours=1), "zero or negative"),
        (timedelta(hours=-1), timedelta(hours=-2), "precede"),
        (timedelta(hours=-25), timedelta(0), "24 hours"),
    ):
        with pytest.raises(ValidationException, match=message):
            validate_offsets(start, end, "w")


def test_default_windows_are_the_period_since_the_previous_fire_time():
    hourly = ScheduleExpression.parse("cron(0 * ? * * *)")
    assert analysis_window(hourly, at(14), None, None) == (at(13), at(14))
    daily = ScheduleExpression.parse("cron(0 5 ? * * *)")
    assert analysis_window(daily, at(5), None, None) == (at(5, day=19), at(5))
    every_two = ScheduleExpression.parse("cron(0 0/2 ? * * *)")
    assert analysis_window(every_two, at(0), None, None) == (at(22, day=19), at(0))


def test_offsets_are_relative_to_the_scheduled_time():
    hourly = ScheduleExpression.parse("cron(0 * ? * * *)")
    # the model quality example of the developer guide: -P8D/-P1D at 2020-01-09T13:00
    scheduled = datetime(2020, 1, 9, 13, tzinfo=UTC)
    assert analysis_window(hourly, scheduled, timedelta(days=-8), timedelta(days=-1)) == (
        datetime(2020, 1, 1, 13, tzinfo=UTC),
        datetime(2020, 1, 8, 13, tzinfo=UTC),
    )
    now = ScheduleExpression.parse("NOW")
    run = at(10, 42, second=7)
    assert analysis_window(now, run, timedelta(hours=-5), timedelta(hours=-1)) == (
        at(5, 42, second=7),
        at(9, 42, second=7),
    )
    assert analysis_window(hourly, at(14), None, timedelta(hours=-1)) == (at(12), at(13))


def test_window_text_rounds_the_end_up_to_the_second():
    assert window_text(at(9, 0, second=5), at(10, 0, second=5)) == ("2020-02-20T09:00:05Z", "2020-02-20T10:00:05Z")
    start = at(9).replace(microsecond=400_000)
    assert window_text(start, at(10).replace(microsecond=1)) == ("2020-02-20T09:00:00Z", "2020-02-20T10:00:01Z")


def test_hours_between_lists_every_overlapping_capture_hour():
    assert hours_between(at(9, 30), at(11)) == [at(9), at(10)]
    assert hours_between(at(9, 30), at(11, 0, second=1)) == [at(9), at(10), at(11)]
    assert hours_between(at(23, 50, day=19), at(0, 10)) == [at(23, day=19), at(0)]


def test_the_clock_can_be_advanced():
    clock = MonitoringClock()
    before = clock.now()
    assert clock.advance(timedelta(hours=2)) - before >= timedelta(hours=2)
