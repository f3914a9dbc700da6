"""Cron maths: fire times across DST changes (pure, no Redis).

Expressions have 5 fields (minute hour day month weekday) or 6 with seconds first
(``*/10 * * * * *``), read by croniter; which ones are valid is the rule of
:mod:`fairque.core.cron`, shared with DAG files. Times are computed on the wall clock of the
schedule's time zone and then placed on the time line:

- a wall time skipped by a DST change (02:30 on the spring-forward day in Europe/Berlin)
  fires once, at the same distance after the gap's start (03:30 local);
- a wall time that occurs twice when clocks go back fires once, the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from fairque.core.cron import cron_problem, make_croniter, timezone_problem
from fairque.core.errors import CronError


def check_cron(expression: object) -> str:
    """``expression`` if it is a valid 5- or 6-field cron expression (the rule of
    :func:`fairque.core.cron.cron_problem`); CronError otherwise."""
    problem = cron_problem(expression)
    if problem:
        raise CronError(problem)
    return str(expression)


def check_timezone(name: object) -> ZoneInfo:
    """The ZoneInfo named ``name``; CronError for an unknown zone."""
    problem = timezone_problem(name)
    if problem:
        raise CronError(problem)
    return ZoneInfo(str(name))


_DST_SLACK = timedelta(hours=2)


def _place(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of a naive wall time in ``zone``: skipped times move forward by
    the gap, repeated times take their first occurrence."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


def _wall_times(expression: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Naive wall-clock fire times strictly after ``after`` (aware), in order."""
    start = after.astimezone(zone).replace(tzinfo=None)
    # Step back one hour so a fire in the repeated hour after ``after`` is not lost.
    cron = make_croniter(expression, start - timedelta(hours=1))
    while True:
        yield cron.get_next(datetime)


_DAY = timedelta(days=1)
_MICROSECOND = timedelta(microseconds=1)


def _steady_offset(zone: ZoneInfo, start: datetime, end: datetime) -> timedelta | None:
    """The zone's UTC offset when it is the same from a day before ``start`` to a day
    after ``end`` (no DST change near: wall-clock maths is exact), else None. Two changes
    are never less than a day apart, so the ends tell."""
    first = (start - _DAY).astimezone(zone).utcoffset()
    if first is None or first != (end + _DAY).astimezone(zone).utcoffset():
        return None
    if end - start > _DAY:  # a long span might hold a change and its reversal
        return None
    return first


def _step(move: Callable[[type[datetime]], datetime], expression: str) -> datetime:
    """``move(datetime)`` (a croniter's get_next or get_prev); CronError for an
    expression that never fires."""
    try:
        return move(datetime)
    except ValueError:  # croniter's errors, CroniterBadDateError among them
        check_cron(expression)
        raise


def _wall(moment: datetime, offset: timedelta) -> datetime:
    return (moment.astimezone(timezone.utc) + offset).replace(tzinfo=None)


def _instant(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=timezone.utc)


def fire_times(
    expression: str, zone: ZoneInfo, after: datetime, until: datetime, limit: int = 10_000
) -> list[datetime]:
    """The fire times in (``after``, ``until``], oldest first, as aware UTC datetimes
    (at most ``limit`` of them: the oldest)."""
    check_cron(expression)
    offset = _steady_offset(zone, after, until)
    if offset is not None:  # the common case, computed directly on the wall clock
        cron = make_croniter(expression, _wall(after, offset))
        ticks: list[datetime] = []
        while len(ticks) < limit:
            tick = _instant(cron.get_next(datetime), offset)
            if tick > until:
                break
            ticks.append(tick)
        return ticks
    found: set[datetime] = set()
    horizon = until + _DST_SLACK  # wall times run up to an hour off the time line
    for wall in _wall_times(expression, zone, after):
        instant = _place(wall, zone)
        if instant > horizon or len(found) >= limit:
            break
        if after < instant <= until:
            found.add(instant)
    return sorted(found)


@lru_cache(maxsize=4096)  # DAGs sharing a schedule ask the same at the same tick
def latest_fire(
    expression: str, zone: ZoneInfo, after: datetime, until: datetime
) -> datetime | None:
    """The last fire time in (``after``, ``until``], or None: searched backwards from
    ``until`` in windows of 1 h, 2 h, 4 h, ..., so a cursor left far behind (a long
    downtime, a schedule failing for hours) costs little and gives the latest tick."""
    offset = _steady_offset(zone, until - _DAY, until)
    if offset is not None:  # the common case: one step back on the wall clock
        cron = make_croniter(expression, _wall(until + _MICROSECOND, offset))
        tick = _instant(_step(cron.get_prev, expression), offset)
        if tick >= until - _DAY:
            return tick if tick > after else None
    window = timedelta(hours=1)
    while True:
        start = max(after, until - window)
        ticks = fire_times(expression, zone, start, until, limit=100_000)
        if ticks or start == after:
            return ticks[-1] if ticks else None
        window *= 2


def next_fire(expression: str, zone: ZoneInfo, after: datetime | None = None) -> datetime:
    """The first fire time strictly after ``after`` (default: now), aware, in UTC."""
    return _next_fire(expression, zone, after or datetime.now(timezone.utc))


@lru_cache(maxsize=4096)
def _next_fire(expression: str, zone: ZoneInfo, moment: datetime) -> datetime:
    offset = _steady_offset(zone, moment, moment)
    if offset is not None:
        cron = make_croniter(expression, _wall(moment, offset))
        tick = _instant(_step(cron.get_next, expression), offset)
        if tick <= moment + _DAY:
            return tick
    for wall in _wall_times(expression, zone, moment):
        instant = _place(wall, zone)
        if instant > moment:
            return instant
    raise CronError(f"cron expression {expression!r} never fires")  # pragma: no cover
