"""The typed values the queue API returns: push replies, statistics and the outcome of
recording a run's end. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from fairque.core.errors import LeaseLostError
from fairque.core.models import TaskState


class PushResult(TypedDict):
    """What ``push`` returns: ``result["success"]`` is always True (a refusal raises)."""

    success: Literal[True]
    task_id: str
    state: str  # a TaskState value: queued, deferred or scheduled


class BatchPushResult(TypedDict):
    """What ``push_batch`` returns; ``task_ids`` and ``states`` follow the given order."""

    success: Literal[True]
    count: int
    task_ids: list[str]
    states: list[str]


class UserStats(TypedDict, total=False):
    """One user's entry in ``get_stats()["users"]``: a count per state the user has
    tasks in (``queued``, ``started``, ...), its queued tasks per priority (``"1"`` to
    ``"6"``, when any) and ``next_task_age`` (seconds, when it has queued tasks)."""

    queued: int
    started: int
    deferred: int
    finished: int
    failed: int
    canceled: int
    scheduled: int
    queued_by_priority: dict[str, int]
    next_task_age: float | None


class Stats(TypedDict):
    """What ``get_stats()`` returns (JSON-compatible)."""

    tasks_active: int
    states: dict[str, int]  # tasks in each state now, by TaskState value
    totals: dict[str, int]  # tasks that reached each ended state, since the start
    users: dict[str, UserStats]
    active_users: int  # users with ready tasks (of the default queue)
    queues: dict[str, int]  # queued tasks per queue (queues with none left out)
    server_time: float  # the server's clock, seconds since the epoch
    oldest_queued_age: float | None  # seconds (to within one), None when nothing is queued
    tasks_queued: int
    tasks_started: int
    tasks_deferred: int
    tasks_finished: int
    tasks_failed: int
    tasks_canceled: int
    tasks_scheduled: int
    pending_steps: int  # bounded work left over: releases, openings, starts, instances
    batches_staging: int  # large batches staged and not yet committed (or given up)
    ended_last_minute: dict[str, int]  # finished and failed in the last 60 s
    throughput_per_second: float  # ended in the last minute / 60
    schedule_errors: dict[str, dict[str, Any]]  # schedule:{id} / dag:{id} failing to fire
    scheduler_lag: dict[str, Any]  # DAG tick lags and pass durations (queue.firing.lag_summary)


@dataclass(frozen=True)
class FinishOutcome:
    """What became of a run recorded as a success: FINISHED, or CANCELED when a cancel
    was asked for while it ran. For a sensor: SCHEDULED (it said "not yet": next poke),
    FAILED or CANCELED (timed out; CANCELED as skipped with soft_fail). For a branch:
    FAILED when it named a task that is not one of its direct downstream tasks."""

    state: TaskState


@dataclass(frozen=True)
class FailOutcome:
    """What became of a run recorded as a failure: retried at ``retry_at`` (SCHEDULED)
    or ended in ``state``."""

    state: TaskState
    retry_at: float | None = None


Settled = FinishOutcome | FailOutcome | LeaseLostError
"""The result of recording one run in ``settle``: a LeaseLostError instance (not raised)
when the worker no longer held the task."""
