"""``clear_run`` / ``fairque run clear``: failed tasks of a run run again inside the same
run; finished ones keep their results and are not executed again; refusals change
nothing."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import ClearError, RedisUnavailableError, RunNotFoundError
from fairque.queue.runs import RunState

from .conftest import QueueFactory
from .proxy import CuttableProxy

pytestmark = pytest.mark.both_queues

S = TaskState
RUN = "r1"


def _task(name: str, *upstreams: str, **options: Any) -> Task:
    return Task.create(
        "u",
        task_id=f"{RUN}:{name}",
        run_id=RUN,
        name=name,
        depends_on=[f"{RUN}:{u}" for u in upstreams],
        **options,
    )


def _chain(queue: TaskQueue, **options: Any) -> None:
    """a >> b >> c, and d on its own."""
    queue.enqueue_tasks([_task("a"), _task("b", "a", **options), _task("c", "b"), _task("d")], RUN)


def _end(queue: TaskQueue, name: str, outcome: TaskState, retryable: bool = False) -> None:
    taken = []
    while (task := queue.pop()) is not None and task.name != name:
        taken.append(task)
    for other in taken:
        queue.requeue(other)
    assert task is not None, f"{name} was not ready"
    if outcome is S.FINISHED:
        queue.finish(task, f"result of {name}")
    else:
        queue.fail(task, "broken", retryable=retryable)


def _states(queue: TaskQueue) -> dict[str, TaskState | None]:
    return {name: t and t.state for name, t in queue.get_run(RUN).tasks.items()}


def _failed_run(queue: TaskQueue, **options: Any) -> None:
    """a finished, b failed, c canceled by its upstream, d finished."""
    _chain(queue, **options)
    _end(queue, "a", S.FINISHED)
    _end(queue, "d", S.FINISHED)
    _end(queue, "b", S.FAILED)
    assert _states(queue) == {"a": S.FINISHED, "b": S.FAILED, "c": S.CANCELED, "d": S.FINISHED}
    assert queue.get_run(RUN).state is RunState.FAILED


def test_clear_reruns_the_failed_task_and_its_canceled_downstream_only(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    _failed_run(queue)
    info = queue.clear_run(RUN)
    assert info.state is RunState.RUNNING
    assert _states(queue) == {"a": S.FINISHED, "b": S.QUEUED, "c": S.DEFERRED, "d": S.FINISHED}
    b = queue.get_task(f"{RUN}:b")
    assert b.error is None and b.finished_at is None and b.attempts == 1
    assert queue.get_task(f"{RUN}:a").result == "result of a"
    popped = queue.pop()
    assert popped is not None and popped.name == "b" and popped.attempts == 2  # continues
    queue.finish(popped, "b again")
    _end(queue, "c", S.FINISHED)
    assert queue.pop() is None  # a and d were not executed again
    info = queue.get_run(RUN)
    assert info.state is RunState.SUCCESS
    assert info.tasks["c"].error is None  # type: ignore[union-attr]
    stats = queue.get_stats()
    assert stats["tasks_queued"] == 0 and stats["tasks_deferred"] == 0


def test_a_cleared_task_gets_its_declared_retries_again(make_queue: QueueFactory) -> None:
    queue = make_queue()
    _failed_run(queue, max_retries=1, retry_delay_seconds=0)
    queue.clear_run(RUN)
    _end(queue, "b", S.FAILED, retryable=True)
    assert queue.get_task(f"{RUN}:b").state is S.SCHEDULED  # a retry, not the end


def test_clearing_a_finished_task_of_a_successful_run_reruns_it_and_its_downstream(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    _chain(queue)
    for name in "adbc":
        _end(queue, name, S.FINISHED)
    assert queue.get_run(RUN).state is RunState.SUCCESS
    with pytest.raises(ClearError, match="no failed"):
        queue.clear_run(RUN)  # by default, nothing to clear
    queue.clear_run(RUN, tasks=["b"])
    assert _states(queue) == {"a": S.FINISHED, "b": S.QUEUED, "c": S.DEFERRED, "d": S.FINISHED}


def test_no_downstream_clears_only_the_named_tasks(make_queue: QueueFactory) -> None:
    queue = make_queue()
    _failed_run(queue)
    queue.clear_run(RUN, tasks=["b"], downstream=False)
    assert _states(queue)["c"] is S.CANCELED
    _end(queue, "b", S.FINISHED)
    assert _states(queue) == {"a": S.FINISHED, "b": S.FINISHED, "c": S.CANCELED, "d": S.FINISHED}


def test_a_canceled_run_runs_again_when_its_tasks_are_cleared(make_queue: QueueFactory) -> None:
    queue = make_queue()
    _chain(queue)
    assert queue.cancel_run(RUN).state is RunState.CANCELED
    info = queue.clear_run(RUN, tasks=["a", "d"])
    assert info.state is not RunState.CANCELED
    assert _states(queue) == {"a": S.QUEUED, "b": S.DEFERRED, "c": S.DEFERRED, "d": S.QUEUED}
    for name in "adbc":
        _end(queue, name, S.FINISHED)
    assert queue.get_run(RUN).state is RunState.SUCCESS


def test_clear_refuses_started_tasks_unknown_names_and_runs_changing_nothing(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    _chain(queue)
    _end(queue, "a", S.FINISHED)
    started = queue.pop()
    assert started is not None
    with pytest.raises(ClearError, match="is started"):
        queue.clear_run(RUN, tasks=[started.name or ""])
    with pytest.raises(ClearError, match="no task named 'zz'"):
        queue.clear_run(RUN, tasks=["zz"])
    with pytest.raises(RunNotFoundError):
        queue.clear_run("no-such-run")
    assert queue.get_task(started.task_id).state is S.STARTED
    assert queue.get_task(f"{RUN}:a").state is S.FINISHED


def test_the_script_checks_every_task_before_writing(make_queue: QueueFactory) -> None:
    """A task that started after the plan was made: clear.lua refuses the whole step."""
    queue = make_queue()
    _failed_run(queue)
    queue.clear_run(RUN, tasks=["d"])  # d queued again
    started = queue.pop()
    assert started is not None and started.name == "d"
    call = queue.calls.clear(RUN, [(f"{RUN}:b", [f"{RUN}:a"]), (f"{RUN}:d", [])], [])
    with pytest.raises(ClearError, match="'r1:d' is started"):
        queue.run_script(call)
    assert queue.get_task(f"{RUN}:b").state is S.FAILED  # nothing written


def test_clear_with_redis_down_raises_and_changes_nothing(
    proxy: CuttableProxy, redis_client: redis.Redis, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    _failed_run(queue)
    cut = TaskQueue(FairQueueConfig.create_default(redis=proxy.url, worker_id="cut"))
    try:
        proxy.cut()
        with pytest.raises(RedisUnavailableError):
            cut.clear_run(RUN)
    finally:
        proxy.restore()
        cut.close()
    assert _states(queue)["b"] is S.FAILED


def test_dependents_left_to_a_later_step_wait_for_the_end_of_an_upstream_cleared_meanwhile(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(step_size=2)  # one dependent told per call, the rest in later steps
    tasks = [_task("a"), _task("b", "a", trigger_rule="all_done")]
    queue.enqueue_tasks([*tasks, _task("c", "a", trigger_rule="all_done")], RUN)
    _end(queue, "a", S.FAILED)
    told = {n for n in ("b", "c") if _states(queue)[n] is S.QUEUED}
    (left,) = {"b", "c"} - told  # its step is pending
    assert _states(queue)[left] is S.DEFERRED and queue.get_stats()["pending_steps"] == 1
    queue.clear_run(RUN, tasks=["a"], downstream=False)
    while queue.continue_steps():
        pass
    assert _states(queue)[left] is S.DEFERRED  # a runs again: not told of its earlier end
    _end(queue, "a", S.FINISHED)
    while queue.continue_steps():
        pass
    assert _states(queue)[left] is S.QUEUED
    assert queue.get_task(f"{RUN}:{left}").error is None
