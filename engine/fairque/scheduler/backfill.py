"""Backfill: the runs of a DAG's schedule ticks in a date range, created by hand.

A backfilled run gets the id the scheduler gives the same tick (``{dag_id}__{tick}``),
and push.lua creates a run id once, so a tick runs once whoever fires it first (the
scheduler or a backfill), and running the same backfill again creates nothing. Ticks
after the server's now are left to the scheduler. Every run knows its logical date (the
tick) and its data interval (from the schedule's previous tick to the tick).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from fairque.core.errors import DagError, RunExistsError, RunNotFoundError
from fairque.dag.model import DAG, as_moment
from fairque.dag.runs import scheduled_run_id, trigger
from fairque.queue import control
from fairque.queue.sync_queue import TaskQueue
from fairque.scheduler.cron import check_timezone, fire_times, latest_fire

_JUST_BEFORE = timedelta(microseconds=1)
_LOOK_BACK = timedelta(days=400)  # a yearly schedule's previous tick is within it


@dataclass
class Backfill:
    """What a backfill did (or, with ``dry_run``, would do): the run ids of the range's
    ticks, oldest first, split into the runs it created and those that existed."""

    dag_id: str
    start: datetime
    end: datetime
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def run_ids(self) -> list[str]:
        """Every run of the range, oldest first."""
        return sorted(self.created + self.existing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form (what ``--json`` prints)."""
        return {
            "dag_id": self.dag_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "dry_run": self.dry_run,
            "created": self.created,
            "existing": self.existing,
        }


def data_interval(dag: DAG, tick: datetime) -> tuple[datetime, datetime]:
    """The data interval of the run of ``tick``: from the schedule's tick before it
    (the tick itself when there is none within 400 days) to the tick."""
    assert dag.schedule is not None
    zone = check_timezone(dag.timezone)
    before = latest_fire(dag.schedule, zone, tick - _LOOK_BACK, tick - _JUST_BEFORE)
    return (before or tick), tick


def intervals(dag: DAG, ticks: list[datetime]) -> list[tuple[datetime, datetime]]:
    """The data intervals of consecutive schedule ``ticks`` (oldest first): each one
    starts at the tick before it; the first one's start is looked up once."""
    found: list[tuple[datetime, datetime]] = []
    for tick in ticks:
        start = found[-1][1] if found else data_interval(dag, tick)[0]
        found.append((start, tick))
    return found


def in_range(dag: DAG, tick: datetime) -> bool:
    """True when ``tick`` is within the DAG's ``start_date`` and ``end_date``."""
    return not (dag.start_date and tick < dag.start_date) and not (
        dag.end_date and tick > dag.end_date
    )


def ticks_between(dag: DAG, start: datetime, end: datetime) -> list[datetime]:
    """The DAG's schedule ticks in [``start``, ``end``] within its start and end dates,
    oldest first; DagError for a DAG without a schedule or an empty range."""
    if not dag.schedule:
        raise DagError(f"DAG {dag.dag_id!r} has no schedule: there is nothing to backfill")
    if end < start:
        raise DagError(
            f"the backfill's end ({end.isoformat()}) is before its start ({start.isoformat()})"
        )
    zone = check_timezone(dag.timezone)
    ticks = fire_times(dag.schedule, zone, start - _JUST_BEFORE, end, limit=100_000)
    return [tick for tick in ticks if in_range(dag, tick)]


def backfill(
    queue: TaskQueue,
    dag: DAG,
    start: datetime | date | str,
    end: datetime | date | str,
    *,
    conf: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> Backfill:
    """Create one run of ``dag`` per schedule tick in [``start``, ``end``], oldest
    first, skipping the ticks whose run exists already. ``start``/``end`` are datetimes,
    dates or ISO text, read as ``start_date``/``end_date`` are (naive: in the DAG's time
    zone; an end date covers its whole day). Ticks after the server's now are left out.
    ``dry_run`` writes nothing and reports what would be created. DagError for a bad
    date, a DAG without schedule or a reversed range, DagConfError (nothing written)
    for a bad ``conf``."""
    start, end = _moment(dag, "start", start), _moment(dag, "end", end, True)
    merged = dag.check_conf(conf)
    now = datetime.fromtimestamp(queue.run_pipeline(control.server_time()), tz=timezone.utc)
    report = Backfill(dag.dag_id, start, end, dry_run=dry_run)
    ticks = [tick for tick in ticks_between(dag, start, end) if tick <= now]
    for interval in intervals(dag, ticks):
        tick = interval[1]
        run_id = scheduled_run_id(dag.dag_id, tick)
        if dry_run:
            (report.existing if _exists(queue, run_id) else report.created).append(run_id)
            continue
        try:
            trigger(
                queue,
                dag,
                conf=merged,
                run_id=run_id,
                logical_date=tick,
                data_interval=interval,
            )
        except RunExistsError:
            report.existing.append(run_id)
        else:
            report.created.append(run_id)
    return report


def _moment(dag: DAG, name: str, value: object, end: bool = False) -> datetime:
    try:
        moment = as_moment(value, dag.timezone, end)
    except ValueError as e:
        raise DagError(f"the backfill's {name} {e}") from None
    if moment is None:
        raise DagError(f"the backfill needs a {name} date")
    return moment


def _exists(queue: TaskQueue, run_id: str) -> bool:
    try:
        queue.get_run(run_id)
    except RunNotFoundError:
        return False
    return True


__all__ = ["Backfill", "backfill", "data_interval", "in_range", "intervals", "ticks_between"]
