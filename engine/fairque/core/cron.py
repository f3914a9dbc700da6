"""The cron rule: which schedules and time zones fairque accepts (pure, no Redis).

A schedule has 5 fields (minute hour day month weekday) or 6 with the seconds field
FIRST (``"30 */5 * * * *"`` = at second 30 of every fifth minute), and must fire at
least once (``0 0 30 2 *`` never does: its next fire time is computed, and croniter
gives up after searching 50 years); a time zone is an IANA name. DAG files
(:mod:`fairque.dag`) and the scheduler (:mod:`fairque.scheduler.cron`) both check with
these functions. croniter is imported on first use.
"""

from __future__ import annotations

import copy
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fairque.core.errors import shorten

MAX_FIELDS = 6


def make_croniter(expression: str, start: datetime | float | None = None) -> Any:
    """A croniter for ``expression``, read as described above (parsed once per
    expression: a copy of the parsed one is set to ``start``)."""
    if start is None:
        return _parse(expression, None)
    cron = copy.copy(_parsed(expression))
    cron.set_current(start, force=True)
    return cron


def _parse(expression: str, start: datetime | float | None) -> Any:
    from croniter import croniter

    seconds_first = len(expression.split()) == MAX_FIELDS
    return croniter(expression, start, second_at_beginning=seconds_first)


@lru_cache(maxsize=4096)
def _parsed(expression: str) -> Any:
    return _parse(expression, 0.0)


def cron_problem(expression: object) -> str | None:
    """Why ``expression`` is not a usable cron schedule, or None."""
    if not isinstance(expression, str) or not expression.strip():
        return f"schedule must be a cron expression such as '0 9 * * *', not {shorten(expression)}"
    fields = expression.split()
    if len(fields) not in (5, MAX_FIELDS):
        return (
            f"cron {shorten(expression)} has {len(fields)} field{'' if len(fields) == 1 else 's'}; "
            "use 5 (minute hour day month weekday) or 6 with seconds first (second minute "
            "hour day month weekday)"
        )
    from croniter import CroniterBadDateError

    try:
        make_croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:  # valid fields, but no date has them all (31 February)
        return f"cron {expression!r} is invalid: it never fires (no date matches all its fields)"
    except (ValueError, KeyError, TypeError) as e:  # croniter errors derive from ValueError
        return f"cron {shorten(expression)} is invalid: {e}"
    return None


def timezone_problem(name: object) -> str | None:
    """Why ``name`` is not an IANA time zone such as ``Europe/Paris``, or None."""
    if not isinstance(name, str) or not name:
        return (
            "timezone must be an IANA time zone name such as 'UTC' or 'Europe/Paris', "
            f"not {shorten(name)}"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return (
            f"unknown timezone {shorten(name)}; "
            "use an IANA time zone name such as 'UTC' or 'Europe/Paris'"
        )
    return None


__all__ = ["MAX_FIELDS", "cron_problem", "make_croniter", "timezone_problem"]
