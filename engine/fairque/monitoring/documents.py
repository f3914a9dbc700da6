"""The JSON documents fairque shows: one serializer for the CLI's ``--json`` outputs and
the dashboard's ``/api/v1`` answers, so both always say the same thing.

Each function turns what the queue returns into JSON-compatible data (no I/O, except
:func:`dag_summary`, which reads a DAG's latest runs).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from fairque.core.models import TaskRecord
    from fairque.dag.entries import DagInfo
    from fairque.dag.model import DAG
    from fairque.queue.heartbeat import WorkerInfo
    from fairque.queue.runs import RunInfo
    from fairque.queue.sync_queue import TaskQueue

LAST_RUNS = 5
"""How many of a DAG's latest runs its summary lists (``last_runs``)."""


def run_document(info: RunInfo, lineage: list[dict[str, Any]]) -> dict[str, Any]:
    """``fairque run show --json``: the run, its tasks with every attempt, its lineage."""
    return {**info.to_dict(), "lineage": lineage}


def run_list_document(runs: Iterable[RunInfo]) -> list[dict[str, Any]]:
    """``fairque run list --json``: each run without its tasks."""
    return [run.to_dict(with_tasks=False) for run in runs]


def workers_document(workers: Sequence[WorkerInfo]) -> list[dict[str, Any]]:
    """``fairque worker list --json``: each live worker's record."""
    return [w.to_dict() for w in workers]


def task_document(record: TaskRecord) -> dict[str, Any]:
    """One task's record (``queue.get_task``): every field, with its attempts."""
    return record.to_dict()


def next_run(dag: DAG | DagInfo, after: datetime | None = None) -> datetime | None:
    """When the DAG's schedule fires next (None for a manual-only DAG)."""
    return _next_fire(dag.schedule, dag.timezone, after or datetime.now(timezone.utc))


@functools.lru_cache(maxsize=256)
def _next_fire(schedule: str | None, zone: str, after: datetime) -> datetime | None:
    """Remembered: ``dag list`` asks it for a thousand DAGs at one instant, and they
    share a few schedules."""
    if not schedule:
        return None
    from fairque.scheduler.cron import next_fire

    return next_fire(schedule, ZoneInfo(zone), after)


def _schedule(dag: DAG | DagInfo, paused: bool, now: datetime | None = None) -> dict[str, Any]:
    upcoming = next_run(dag, now)
    return {
        "dag_id": dag.dag_id,
        "schedule": dag.schedule,
        "timezone": dag.timezone,
        "next_run": upcoming.isoformat() if upcoming else None,
        "paused": paused,
    }


def dag_summary(
    queue: TaskQueue,
    dag: DAG | DagInfo,
    paused: bool,
    runs: Sequence[RunInfo] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``fairque dag list --json``: one DAG with its schedule, next run, paused flag,
    and its latest runs (``last_run_*`` for the newest, ``last_runs`` for up to
    :data:`LAST_RUNS`, newest first; ``runs`` when read already)."""
    from fairque.dag.entries import DagInfo

    info = dag if isinstance(dag, DagInfo) else DagInfo.of(dag)
    last = queue.list_runs(info.dag_id, limit=LAST_RUNS) if runs is None else runs
    return {
        **_schedule(info, paused, now),
        "last_run_id": last[0].run_id if last else None,
        "last_run_state": last[0].state.value if last else None,
        "last_runs": [{"run_id": r.run_id, "state": r.state.value} for r in last],
        "tasks": info.tasks,
        "file": info.source,
    }


def dag_summaries(
    queue: TaskQueue, dags: Sequence[DAG | DagInfo], paused: Collection[str]
) -> list[dict[str, Any]]:
    """:func:`dag_summary` of many DAGs, their runs read in three round trips."""
    from fairque.dag.runs import latest_runs

    runs = latest_runs(queue, [dag.dag_id for dag in dags], LAST_RUNS)
    now = datetime.now(timezone.utc)
    return [dag_summary(queue, dag, dag.dag_id in paused, runs[dag.dag_id], now) for dag in dags]


def dag_document(dag: DAG, paused: bool) -> dict[str, Any]:
    """One DAG's definition: tasks, edges, params, schedule (what its page shows)."""
    return {
        **_schedule(dag, paused),
        "tenant": dag.tenant,
        "tasks": dag.task_names,
        "edges": [[a, b] for a, b in sorted(dag.pipeline.edges)],
        "params": {name: spec.to_dict() for name, spec in dag.params.items()},
        "file": dag.source,
    }
