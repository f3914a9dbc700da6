"""XCom on the AsyncWorker: awaited through its asyncio client, never blocking its loop.

Each scenario runs the worker and a ticker (every 10 ms) on one event loop, so a
blocking call in a task shows as a stall of the ticker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from fairque import AsyncTaskQueue, AsyncWorker, FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import XComError
from tests.timing import budget

from .conftest import ConfigFactory

JOBS = "tests.integration.jobs"


def func_task(name: str, *args: Any) -> Task:
    return Task.create("u", func=f"{JOBS}:{name}", args=list(args))


async def run_until_ended(config: FairQueueConfig, task_id: str) -> tuple[Task, float]:
    """Run an AsyncWorker until ``task_id`` ended; the task and the longest loop stall."""
    worker = AsyncWorker(config)
    longest = 0.0

    async def tick() -> None:
        nonlocal longest
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest = max(longest, now - last - 0.01)
            last = now

    ticker = asyncio.create_task(tick())
    running = worker.start_background()
    try:
        async with AsyncTaskQueue(config) as queue:
            await queue.wait_for([task_id], timeout=budget(10))
            task = await queue.get_task(task_id)
    finally:
        worker.stop(graceful=False)
        await running
        ticker.cancel()
        await worker.queue.close()
    return task, longest


@pytest.fixture
def config(make_config: ConfigFactory) -> FairQueueConfig:
    return make_config(allowed_modules=["tests"], poll_interval_seconds=0.05)


def test_async_xcom_goes_through_the_asyncio_client_without_stalling_the_loop(
    config: FairQueueConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TaskQueue(config) as queue:
        task_id = queue.push(func_task("async_xcom_round_trips", 20))["task_id"]
        blocking_clients: list[object] = []
        opened = redis.Redis.__init__

        def spy(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
            blocking_clients.append(self)
            opened(self, *args, **kwargs)

        monkeypatch.setattr(redis.Redis, "__init__", spy)
        task, stall = asyncio.run(run_until_ended(config, task_id))
        monkeypatch.undo()
        assert task.state is TaskState.FINISHED, task.error
        assert task.result == sum(range(20))
        assert blocking_clients == [], "the AsyncWorker opened a blocking Redis client"
        assert stall < budget(0.1), f"the event loop stalled {stall:.3f} s"
        lineage = queue.run_pipeline(queue.calls.lineage("user:u"))
    assert [e["kind"] for e in lineage] == ["push", "pull"] * 20
    assert {e["consumer"] for e in lineage if e["kind"] == "pull"} == {task_id}


def test_blocking_xcom_in_an_async_task_fails_and_names_the_async_form(
    config: FairQueueConfig,
) -> None:
    with TaskQueue(config) as queue:
        task_id = queue.push(func_task("async_blocking_xcom_pull", "k"))["task_id"]
        task, _ = asyncio.run(run_until_ended(config, task_id))
    assert task.state is TaskState.FAILED
    assert task.error is not None and task.error["type"] == XComError.__name__
    assert "await axcom_pull(key)" in task.error["message"]


def test_a_sync_task_on_the_async_worker_uses_blocking_xcom_from_its_thread(
    config: FairQueueConfig,
) -> None:
    with TaskQueue(config) as queue:
        task_id = queue.push(func_task("sync_xcom_round_trip", "k", {"v": 1}))["task_id"]
        task, _ = asyncio.run(run_until_ended(config, task_id))
        lineage = queue.run_pipeline(queue.calls.lineage("user:u"))
    assert task.state is TaskState.FINISHED, task.error
    assert task.result == {"v": 1}
    assert [e["kind"] for e in lineage] == ["push", "pull"]
