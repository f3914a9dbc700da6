"""Cron maths: validation, 5 and 6 fields, and DST in both directions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fairque.core.errors import CronError
from fairque.scheduler.cron import check_cron, check_timezone, fire_times, latest_fire, next_fire

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def local(ticks: list[datetime], zone: ZoneInfo) -> list[str]:
    return [t.astimezone(zone).strftime("%m-%d %H:%M:%S%z") for t in ticks]


@pytest.mark.parametrize(
    "expression", ["", "   ", "* * * *", "* * * * * * *", "61 * * * *", "* 25 * * *", "bad", 5]
)
def test_bad_cron_expressions_are_refused(expression: object) -> None:
    with pytest.raises(CronError):
        check_cron(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "utc+1", None])
def test_unknown_time_zones_are_refused(name: object) -> None:
    with pytest.raises(CronError, match="time zone"):
        check_timezone(name)


def test_five_fields_fire_per_minute_and_six_fields_per_second() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    minutes = fire_times("*/15 * * * *", ZoneInfo("UTC"), start, start.replace(hour=1))
    assert [t.minute for t in minutes] == [15, 30, 45, 0]
    seconds = fire_times("*/2 * * * * *", ZoneInfo("UTC"), start, start.replace(second=7))
    assert [t.second for t in seconds] == [2, 4, 6]


def test_a_daily_job_in_the_skipped_hour_runs_once_that_day() -> None:
    # 2026-03-29: Europe/Berlin jumps from 02:00 to 03:00.
    ticks = fire_times(
        "30 2 * * *",
        BERLIN,
        datetime(2026, 3, 27, 12, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
    )
    assert local(ticks, BERLIN) == [
        "03-28 02:30:00+0100",
        "03-29 03:30:00+0200",  # the skipped 02:30 fires once, an hour later on the clock
        "03-30 02:30:00+0200",
    ]


def test_a_daily_job_in_the_repeated_hour_runs_once_that_day() -> None:
    # 2026-10-25: Europe/Berlin goes back from 03:00 to 02:00; 02:30 happens twice.
    ticks = fire_times(
        "30 2 * * *",
        BERLIN,
        datetime(2026, 10, 23, 12, tzinfo=UTC),
        datetime(2026, 10, 27, tzinfo=UTC),
    )
    assert local(ticks, BERLIN) == [
        "10-24 02:30:00+0200",
        "10-25 02:30:00+0200",
        "10-26 02:30:00+0100",
    ]


def test_fire_times_are_strictly_after_and_up_to_including() -> None:
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    ticks = fire_times("0 9 * * *", ZoneInfo("UTC"), start, start.replace(day=3))
    assert [t.day for t in ticks] == [2, 3]
    assert next_fire("0 9 * * *", ZoneInfo("UTC"), start) == start.replace(day=2)


def test_limit_keeps_the_oldest() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ticks = fire_times("* * * * *", ZoneInfo("UTC"), start, start.replace(hour=5), limit=3)
    assert [t.minute for t in ticks] == [1, 2, 3]


def test_latest_fire_is_the_last_tick_even_far_from_the_cursor() -> None:
    zone = ZoneInfo("UTC")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    until = start + timedelta(hours=5, seconds=30, microseconds=5)
    assert latest_fire("* * * * * *", zone, start, until) == until.replace(microsecond=0)
    assert latest_fire("0 9 * * *", zone, start, start + timedelta(days=40)) == datetime(
        2026, 2, 9, 9, tzinfo=timezone.utc
    )
    assert latest_fire("0 9 * * *", zone, start, start.replace(hour=8)) is None
