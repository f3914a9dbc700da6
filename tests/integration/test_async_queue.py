"""What only AsyncTaskQueue has: the same API awaited, ``async with``, and one state
shared with TaskQueue. The queue's rules are checked for both queues by the shared suite
(the ``both_queues`` modules: test_queue_*.py and test_pipelines.py).

No asyncio plugin: each test is a plain function that runs its scenario with
``asyncio.run(...)``, so every client is opened and closed inside one event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis

from fairque import (
    AsyncRunHandle,
    AsyncTaskQueue,
    FairQueueConfig,
    RunHandle,
    Task,
    TaskQueue,
    TaskState,
)
from fairque.core.errors import (
    DuplicateTaskError,
    LeaseLostError,
    RedisUnavailableError,
)
from tests.timing import budget

T = TypeVar("T")
ConfigFactory = Callable[..., FairQueueConfig]


@pytest.fixture
def make_config(redis_url: str, redis_client: redis.Redis) -> ConfigFactory:
    """Configs on the clean test database; keywords as in ``create_default``."""

    def make(
        worker_id: str = "async-worker",
        assigned_users: list[str] | None = None,
        **settings: Any,
    ) -> FairQueueConfig:
        return FairQueueConfig.create_default(
            redis=redis_url,
            worker_id=worker_id,
            assigned_users=["*"] if assigned_users is None else assigned_users,
            **settings,
        )

    return make


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """Run one async scenario to the end in a fresh event loop."""
    return asyncio.run(scenario)


# --- the same API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sync_class", "async_class", "essential"),
    [
        (TaskQueue, AsyncTaskQueue, {"push", "pop", "finish", "fail", "cancel", "get_stats"}),
        (RunHandle, AsyncRunHandle, {"states", "wait", "task", "result", "lineage"}),
    ],
)
def test_the_async_class_offers_every_public_call_of_the_sync_one(
    sync_class: type, async_class: type, essential: set[str]
) -> None:
    sync_calls = {
        name
        for name, member in inspect.getmembers(sync_class, inspect.isfunction)
        if not name.startswith("_")
    }
    assert essential <= sync_calls
    for name in sorted(sync_calls):
        sync_method = getattr(sync_class, name)
        async_method = getattr(async_class, name, None)
        assert async_method is not None, f"{async_class.__name__} lacks {name}"
        assert inspect.iscoroutinefunction(async_method), name
        sync_params = inspect.signature(sync_method).parameters
        async_params = inspect.signature(async_method).parameters
        assert list(sync_params) == list(async_params), name
        for param in sync_params:
            assert sync_params[param].default == async_params[param].default, (name, param)


# --- connection errors ---------------------------------------------------------------


def test_unreachable_redis_fails_fast_at_async_with() -> None:
    config = FairQueueConfig.create_default(redis="redis://127.0.0.1:1/0")

    async def scenario() -> None:
        async with AsyncTaskQueue(config):
            raise AssertionError("connected to a closed port")

    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match="unreachable") as caught:
        run(scenario())
    assert time.monotonic() - started < budget(6)  # bounded by the socket connect timeout
    assert "127.0.0.1:1" in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)


# --- async and sync together ---------------------------------------------------------


def test_async_and_sync_queues_share_one_state(make_config: ConfigFactory) -> None:
    sync_queue = TaskQueue(make_config(worker_id="sync-worker", assigned_users=["A", "B"]))

    async def scenario() -> None:
        config = make_config(worker_id="async-worker", assigned_users=["A", "B"])
        async with AsyncTaskQueue(config) as async_queue:
            sync_queue.push_batch([Task.create("A", task_id=f"A{n}") for n in range(20)])
            await async_queue.push_batch([Task.create("B", task_id=f"B{n}") for n in range(20)])
            with pytest.raises(DuplicateTaskError):
                await async_queue.push(Task.create("A", task_id="A0"))
            with pytest.raises(DuplicateTaskError):
                sync_queue.push(Task.create("B", task_id="B0"))

            served: list[Task] = []
            for i in range(20):  # alternate: fairness is kept in Redis, not per client
                task = sync_queue.pop() if i % 2 else await async_queue.pop()
                assert task is not None
                served.append(task)
            for pair in range(0, 20, 2):
                assert sorted(t.user_id for t in served[pair : pair + 2]) == ["A", "B"]
            for user in "AB":  # FIFO within each user across both clients
                ids = [t.task_id for t in served if t.user_id == user]
                assert ids == [f"{user}{n}" for n in range(10)]
            assert {t.worker_id for t in served} == {"sync-worker", "async-worker"}

            # A task claimed by one client can be ended through the other (same claim).
            by_async, by_sync = served[0], served[1]
            assert sync_queue.finish(by_async, "s") is TaskState.FINISHED
            assert await async_queue.finish(by_sync, "a") is TaskState.FINISHED
            assert (await async_queue.get_task(by_async.task_id)).result == "s"
            assert sync_queue.get_task(by_sync.task_id).result == "a"
            with pytest.raises(LeaseLostError):
                await async_queue.finish(by_async)

            assert await async_queue.cancel(served[2].task_id) == "requested"
            assert sync_queue.extend_lease(served[2]) == {served[2].task_id: "cancel"}
            assert sync_queue.delete_task("A19") is TaskState.QUEUED

            assert _timeless(sync_queue.get_stats()) == _timeless(await async_queue.get_stats())
            stats = sync_queue.get_stats()
            assert stats["tasks_started"] == 18 and stats["tasks_finished"] == 2
            assert stats["tasks_queued"] == 19

    try:
        run(scenario())
    finally:
        sync_queue.close()


def _timeless(stats: dict[str, Any]) -> dict[str, Any]:
    """Statistics without the fields that depend on the moment they were read."""
    out = {k: v for k, v in stats.items() if k not in ("server_time", "oldest_queued_age")}
    out["users"] = {
        user: {k: v for k, v in counts.items() if k != "next_task_age"}
        for user, counts in stats["users"].items()
    }
    return out
