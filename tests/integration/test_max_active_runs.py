"""max_active_runs for every run of a DAG: a trigger beyond the limit creates the run
QUEUED (its tasks wait), and the script that ends an earlier run starts it in the same
step, whether that run finished, failed, was canceled or deleted."""

from __future__ import annotations

import pytest

from fairque import TaskQueue, TaskState
from fairque.core.errors import ClearError
from fairque.dag.model import DAG
from fairque.dag.runs import trigger
from fairque.queue.runs import RunState
from tests.integration import clear_tasks
from tests.timing import budget, wait_until

from .conftest import QueueFactory

S = TaskState


def _dag(limit: int) -> DAG:
    pipeline = clear_tasks.extract("unused") >> clear_tasks.load("unused")
    return DAG(dag_id="limited", pipeline=pipeline, max_active_runs=limit)


def _run_of(queue: TaskQueue, run_id: str, name: str, outcome: TaskState) -> None:
    """Pop the task ``name`` of ``run_id`` (it must be the only ready one) and end it."""
    task = queue.pop()
    assert task is not None and task.task_id == f"{run_id}:{name}", task
    if outcome is S.FINISHED:
        queue.finish(task, "ok")
    else:
        queue.fail(task, "broken", retryable=False)


def _three_runs(queue: TaskQueue) -> list[str]:
    dag = _dag(1)
    return [trigger(queue, dag, run_id=f"limited__{i}").run_id for i in range(3)]


def test_a_trigger_beyond_the_limit_waits_until_the_running_run_ends(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    first, second, third = _three_runs(queue)
    assert [queue.get_run(r).state for r in (first, second, third)] == [RunState.QUEUED] * 3
    assert queue.get_run(second).tasks["extract"].state is S.DEFERRED  # type: ignore[union-attr]
    _run_of(queue, first, "extract", S.FINISHED)  # only the first run's tasks are ready
    assert queue.get_run(second).state is RunState.QUEUED
    _run_of(queue, first, "load", S.FINISHED)  # ends the first run: the second starts
    assert queue.get_run(first).state is RunState.SUCCESS
    assert queue.get_task(f"{second}:extract").state is S.QUEUED
    assert queue.get_task(f"{third}:extract").state is S.DEFERRED
    _run_of(queue, second, "extract", S.FAILED)  # b canceled by its upstream: the run ends failed
    assert queue.get_run(second).state is RunState.FAILED
    _run_of(queue, third, "extract", S.FINISHED)
    _run_of(queue, third, "load", S.FINISHED)
    assert queue.get_run(third).state is RunState.SUCCESS


def test_canceling_runs_frees_or_gives_up_their_slot(make_queue: QueueFactory) -> None:
    queue = make_queue()
    first, second, third = _three_runs(queue)
    assert queue.cancel_run(second).state is RunState.CANCELED  # a queued run: dropped
    assert queue.cancel_run(first).state is RunState.CANCELED  # the running one: frees
    assert queue.get_task(f"{third}:extract").state is S.QUEUED
    _run_of(queue, third, "extract", S.FINISHED)


def test_deleting_the_tasks_of_a_running_run_frees_its_slot(make_queue: QueueFactory) -> None:
    queue = make_queue()
    first, second, _ = _three_runs(queue)
    queue.delete_task(f"{first}:load")
    queue.delete_task(f"{first}:extract")
    assert queue.get_task(f"{second}:extract").state is S.QUEUED


def test_a_queued_run_cannot_be_cleared_and_a_cleared_run_takes_a_slot_again(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    first, second, _ = _three_runs(queue)
    with pytest.raises(ClearError, match="waiting for a slot"):
        queue.clear_run(second, tasks=["extract"])
    _run_of(queue, first, "extract", S.FAILED)  # the first run ends: the second starts
    queue.clear_run(first)  # runs again, beside the second (beyond the limit)
    assert queue.get_run(first).state is RunState.RUNNING
    _run_of(queue, second, "extract", S.FINISHED)  # FIFO: second's a was queued first
    _run_of(queue, first, "extract", S.FINISHED)


def test_runs_without_a_limit_and_pipelines_start_at_once(make_queue: QueueFactory) -> None:
    queue = make_queue()
    dag = _dag(2)
    runs = [trigger(queue, dag, run_id=f"limited__{i}").run_id for i in range(3)]
    ready = [t.task_id for t in queue.pop_many(5)]
    assert sorted(ready) == [f"{runs[0]}:extract", f"{runs[1]}:extract"]


def test_a_run_ended_by_a_lost_worker_starts_the_next_one(make_queue: QueueFactory) -> None:
    """A worker dies holding the run's last task: the reclaim that fails it for good
    (no recovery left) starts the queued run in the same step."""
    queue = make_queue(lease_seconds=1, max_recoveries=0)
    first, second, _ = _three_runs(queue)
    held = queue.pop()  # and never finished: its worker is gone
    assert held is not None and held.task_id == f"{first}:extract"
    wait_until(lambda: queue.reclaim_expired() == (0, 1), budget(5), "the lease to expire")
    assert queue.get_run(first).state is RunState.FAILED
    assert queue.get_task(f"{second}:extract").state is S.QUEUED
