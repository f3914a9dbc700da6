"""An ``@task`` function given where a Task is expected: called when it needs no
arguments, else a TaskError that says to call it first (push, enqueue, schedules)."""

from __future__ import annotations

import asyncio

import pytest

from fairque import TaskQueue
from fairque.core.errors import TaskError
from fairque.queue.async_queue import AsyncTaskQueue
from fairque.scheduler.scheduler import TaskScheduler
from tests.unit import sample_tasks as st

from .conftest import ConfigFactory, QueueFactory


def test_push_and_enqueue_call_a_function_without_arguments(make_queue: QueueFactory) -> None:
    queue: TaskQueue = make_queue()
    pushed = queue.push(st.notify_completion)
    stored = queue.get_task(pushed["task_id"])
    assert stored.func == "tests.unit.sample_tasks:notify_completion"
    run = queue.enqueue(st.extract_data)
    assert queue.get_task(f"{run.run_id}:extract").func == "tests.unit.sample_tasks:extract_data"
    assert queue.push_batch([st.load_data, st.backup_data()])["count"] == 2


def test_a_function_that_needs_arguments_is_refused_before_any_write(
    make_queue: QueueFactory,
) -> None:
    queue: TaskQueue = make_queue()
    before = queue.get_stats()["tasks_active"]
    for attempt in (
        lambda: queue.push(st.process_order),
        lambda: queue.enqueue(st.process_order),
        lambda: queue.push_batch([st.notify_completion, st.add]),
    ):
        with pytest.raises(TaskError, match=r"call it first, e\.g\. queue\.push\("):
            attempt()
    assert queue.get_stats()["tasks_active"] == before == 0


def test_anything_else_is_a_clear_error(make_queue: QueueFactory) -> None:
    with pytest.raises(TaskError, match=r"expected a Task .* not str"):
        make_queue().push("notify")  # type: ignore[arg-type]


def test_schedules_accept_a_function_without_arguments(make_config: ConfigFactory) -> None:
    scheduler = TaskScheduler(make_config())
    try:
        sid = scheduler.add_schedule("0 9 * * *", task=st.notify_completion)
        assert scheduler.get_schedule(sid).task.func == (
            "tests.unit.sample_tasks:notify_completion"
        )
        with pytest.raises(TaskError, match="call it first"):
            scheduler.add_schedule("0 9 * * *", task=st.add)
    finally:
        scheduler.close()


def test_the_async_queue_accepts_it_too(make_config: ConfigFactory) -> None:
    async def push() -> str:
        async with AsyncTaskQueue(make_config()) as queue:
            reply = await queue.push(st.notify_completion)
            return str((await queue.get_task(reply["task_id"])).func)

    assert asyncio.run(push()) == "tests.unit.sample_tasks:notify_completion"
