"""Multi-step queue operations written once for both queues.

Each function is a generator that yields the calls it needs (script or pipeline calls)
and receives their replies; ``TaskQueue`` and ``AsyncTaskQueue`` drive it, one with
blocking I/O and one with ``await``. A refused call is thrown back into the generator.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Generator, Sequence
from typing import Any

from fairque.core.errors import (
    FairQueueError,
    InvalidStateError,
    NotReplicatedError,
    RunEndedError,
    RunNotFoundError,
)
from fairque.core.models import TaskState
from fairque.queue import control, firing
from fairque.queue.calls import PipelineCall, PushPlan, QueueCalls, ScriptCall
from fairque.queue.clearing import clear_plan
from fairque.queue.results import BatchPushResult
from fairque.queue.runs import RunInfo

Call = ScriptCall[Any] | PipelineCall[Any]
Steps = Generator[Call, Any, Any]


def push(calls: QueueCalls, plan: PushPlan) -> Steps:
    """Write a planned push: in one call up to ``queue.step_size`` tasks (counting ten
    upstream links as one task), else in steps (:func:`push_in_steps`). Either way all
    or none."""
    if plan.weight() <= calls.config.queue.step_size:
        pushed: BatchPushResult = yield calls.push_planned(plan)
        return pushed
    return (yield from push_in_steps(calls, plan))


def push_in_steps(calls: QueueCalls, plan: PushPlan) -> Steps:
    """Write a batch larger than the step size in bounded steps, so that no call keeps
    the server from other clients for long, and still all or none: its tasks are staged
    (stored but held back, see stage.lua) a step at a time, committed at once (from then
    on they are the queue's), then opened a step at a time, in order.

    A refusal or error before the commit takes the staged part back (what a failed
    take-back leaves, the staging timeout takes back) and is raised. An error after the
    commit is not: the batch is queued, and workers open the rest (continue.lua). A
    commit no replica confirmed in time (``durability: replicated``) is opened, then
    raises NotReplicatedError as a push does."""
    batch = uuid.uuid4().hex
    by_task: dict[int, str] = {}  # a task's last part tells its state
    done = 0
    try:
        for parts in plan.steps(calls.config.queue.step_size):
            replies = yield calls.stage(batch, plan, parts, done)
            by_task.update(zip((index for index, _ in parts), replies, strict=True))
            done += len(parts)
        committed = yield calls.commit(batch, plan)
    except NotReplicatedError:  # committed, not confirmed: it is queued all the same
        yield from _open(calls, batch, 1)
        raise
    except FairQueueError:
        yield from _take_back(calls, batch)
        raise
    states = [by_task[index] for index in range(len(plan.ordered))]
    if committed["held"]:
        states = [s if s == TaskState.CANCELED.value else TaskState.DEFERRED.value for s in states]
    yield from _open(calls, batch, committed["left"])
    return plan.result(states)


def _open(calls: QueueCalls, batch: str, left: int) -> Steps:
    """Open a committed batch's ``left`` tasks, step by step; stop quietly on an error
    (the workers open the rest, see continue.lua)."""
    with contextlib.suppress(FairQueueError):
        while left > 0:
            left = yield calls.open_batch(batch)


def _take_back(calls: QueueCalls, batch: str) -> Steps:
    """Take a staged batch back, step by step; stop quietly on an error (the staging
    timeout takes back what is left)."""
    with contextlib.suppress(FairQueueError):
        while (yield calls.unstage(batch)) > 0:
            pass


def get_run(calls: QueueCalls, run_id: str) -> Steps:
    """A run with its tasks; RunNotFoundError for an unknown id."""
    (info,) = yield calls.run_records([run_id])
    if info is None:
        raise RunNotFoundError(run_id)
    yield from _fill([info], calls)
    return info


def list_runs(calls: QueueCalls, dag_id: str | None, limit: int, offset: int = 0) -> Steps:
    """The newest runs (of one DAG, or all), with their tasks, newest first, skipping
    the ``offset`` newest."""
    ids = yield calls.run_ids(dag_id, limit, offset)
    infos = yield from _runs(calls, ids)
    return infos


def watch_runs(calls: QueueCalls, limit: int) -> Steps:
    """Time out the late watched runs, claim those that ended (each by one caller
    only) and return the claimed ones with their tasks (see watch.lua)."""
    ended, _ = yield calls.watch_runs(limit)
    infos = yield from _runs(calls, ended)
    return infos


def cancel_run(calls: QueueCalls, run_id: str) -> Steps:
    """Cancel every task of a run that has not ended, and mark the run canceled.

    A run that has ended is refused with RunEndedError and left as it is; so is one
    that ended between the read and the cancellation (no task was still active: the
    canceled mark is taken back)."""
    info: RunInfo = yield from get_run(calls, run_id)
    if info.state.is_finished:
        raise RunEndedError(run_id, info.state.value, "cancel")
    yield calls.mark_run_canceled(run_id)
    reached = 0
    for task_id in info.task_ids.values():
        with contextlib.suppress(InvalidStateError, KeyError):  # ended (or expired) already
            yield calls.cancel(task_id, f"run {run_id} was canceled")
            reached += 1
    if reached == 0:
        if not info.canceled:
            yield calls.mark_run_canceled(run_id, canceled=False)
        ended: RunInfo = yield from get_run(calls, run_id)
        raise RunEndedError(run_id, ended.state.value, "cancel")
    refreshed: RunInfo = yield from get_run(calls, run_id)
    return refreshed


def _runs(calls: QueueCalls, run_ids: list[str]) -> Steps:
    """The runs ``run_ids`` that still exist, with their tasks."""
    if not run_ids:
        return []
    infos = [i for i in (yield calls.run_records(run_ids)) if i is not None]
    yield from _fill(infos, calls)
    return infos


def clear_run(
    calls: QueueCalls, run_id: str, tasks: Sequence[str] | None, downstream: bool
) -> Steps:
    """Put a run's failed tasks (or ``tasks``), and their downstream when asked, back to
    run again in one atomic step (see :func:`~fairque.queue.clearing.clear_plan`)."""
    info: RunInfo = yield from get_run(calls, run_id)
    plan = clear_plan(info, tasks, downstream)
    yield calls.clear(run_id, plan.tasks, list(info.task_ids.values()))
    refreshed: RunInfo = yield from get_run(calls, run_id)
    return refreshed


def _fill(infos: list[RunInfo], calls: QueueCalls) -> Steps:
    ids = [task_id for info in infos for task_id in info.task_ids.values()]
    tasks = iter((yield calls.task_records(ids)) if ids else [])
    for info in infos:
        info.tasks = {name: next(tasks) for name in info.task_ids}


def stats(calls: QueueCalls) -> Steps:
    """Counts per state, per user and per priority; throughput over the last minute;
    the oldest queued task's age overall and, per user, the age of its next task; the
    schedules and DAGs the scheduler found failing; how late the schedulers fired the
    DAG ticks of the last 5 minutes (:func:`~fairque.queue.firing.lag_summary`)."""
    result = yield calls.stats()
    now = result["server_time"]
    result["ended_last_minute"] = yield calls.ended_since(int((now - 60) * 1000))
    result["schedule_errors"] = yield control.schedule_errors(calls.keys)
    result["scheduler_lag"] = yield firing.scheduler_lag(calls.keys, now)
    result["throughput_per_second"] = sum(result["ended_last_minute"].values()) / 60
    users = [u for u, counts in result["users"].items() if counts.get("queued", 0) > 0]
    if users:
        heads = yield calls.queue_heads(users)
        ids = [task_id for head in heads for task_id in head]
        times = iter((yield calls.enqueued_times(ids)) if ids else [])
        for user, head in zip(users, heads, strict=True):
            queued_at = [t for t in (next(times) for _ in head) if t is not None]
            result["users"][user]["next_task_age"] = (
                round(now - min(queued_at), 3) if queued_at else None
            )
    return result
