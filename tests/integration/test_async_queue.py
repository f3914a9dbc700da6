"""AsyncTaskQueue against the real server: the same rules as TaskQueue, shared state.

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

from fairque import AsyncTaskQueue, FairQueueConfig, Priority, Task, TaskQueue, TaskState
from fairque.core.errors import (
    DuplicateTaskError,
    InvalidStateError,
    LeaseLostError,
    QueueError,
    RedisUnavailableError,
    TaskNotFoundError,
)
from tests.timing import budget, wait_until, wait_until_async

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


async def drain(queue: AsyncTaskQueue, limit: int = 10_000) -> list[Task]:
    """Pop until the queue has nothing for this worker (or ``limit`` tasks)."""
    served: list[Task] = []
    while len(served) < limit and (task := await queue.pop()) is not None:
        served.append(task)
    return served


# --- the same API ----------------------------------------------------------------------


def test_async_queue_offers_every_public_call_of_the_sync_queue() -> None:
    skip = {"close", "ping"}
    sync_calls = {
        name
        for name, member in inspect.getmembers(TaskQueue, inspect.isfunction)
        if not name.startswith("_")
    }
    assert {"push", "pop", "finish", "fail", "cancel", "get_stats"} <= sync_calls
    for name in sorted(sync_calls):
        sync_method = getattr(TaskQueue, name)
        async_method = getattr(AsyncTaskQueue, name, None)
        assert async_method is not None, f"AsyncTaskQueue lacks {name}"
        if name not in skip:
            assert inspect.iscoroutinefunction(async_method), name
        sync_params = inspect.signature(sync_method).parameters
        async_params = inspect.signature(async_method).parameters
        assert list(sync_params) == list(async_params), name
        for param in sync_params:
            assert sync_params[param].default == async_params[param].default, (name, param)
    for name in ("close", "ping"):
        assert inspect.iscoroutinefunction(getattr(AsyncTaskQueue, name))


# --- producing and consuming -----------------------------------------------------------


def test_push_pop_finish(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            pushed = await queue.push(Task.create("u", payload={"order": 7}, task_id="t1"))
            assert pushed == {"success": True, "task_id": "t1", "state": "queued"}
            assert (await queue.get_task("t1")).state is TaskState.QUEUED
            task = await queue.pop()
            assert task is not None and task.task_id == "t1"
            assert task.state is TaskState.STARTED and task.attempts == 1 and task.claim == 1
            assert task.worker_id == "async-worker" and task.payload == {"order": 7}
            assert await queue.pop() is None
            state = await queue.finish(task, {"total": 99.99}, duration=0.25)
            assert state is TaskState.FINISHED
            done = await queue.get_task("t1")
            assert done.state is TaskState.FINISHED and done.result == {"total": 99.99}
            assert done.duration == 0.25
            assert done.finished_at is not None and done.started_at is not None
            assert done.finished_at >= done.started_at
            with pytest.raises(LeaseLostError):
                await queue.finish(task, "twice")
            with pytest.raises(TaskNotFoundError, match="no task with id 'ghost'"):
                await queue.get_task("ghost")

    run(scenario())


def test_pop_many_and_requeue(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            result = await queue.push_batch(
                [Task.create(user, task_id=f"{user}{n}") for user in "xy" for n in range(3)]
            )
            assert result["count"] == 6 and result["states"] == ["queued"] * 6
            claimed = await queue.pop_many(4)
            assert sorted(t.user_id for t in claimed) == ["x", "x", "y", "y"]
            assert (await queue.get_stats())["states"]["started"] == 4
            first = claimed[0]
            assert await queue.requeue(first) is TaskState.QUEUED
            again = await queue.pop()
            assert again is not None and again.task_id == first.task_id
            assert again.attempts == 1 and again.claim == 2

    run(scenario())


def test_a_light_user_is_interleaved_with_a_flooding_user(make_config: ConfigFactory) -> None:
    async def scenario() -> list[str]:
        async with AsyncTaskQueue(make_config(assigned_users=["A", "B"])) as queue:
            await queue.push_batch([Task.create("A", payload={"n": i}) for i in range(200)])
            await queue.push_batch([Task.create("B", payload={"n": i}) for i in range(5)])
            return [t.user_id for t in await drain(queue)]

    served = run(scenario())
    assert served.count("A") == 200 and served.count("B") == 5
    positions = [i + 1 for i, user in enumerate(served) if user == "B"]
    for i, position in enumerate(positions, start=1):
        assert position <= 2 * i + 2, (i, position, served[:20])


def test_critical_first_in_fifo_order_then_by_priority(make_config: ConfigFactory) -> None:
    async def scenario() -> list[str]:
        async with AsyncTaskQueue(make_config(assigned_users=["u"])) as queue:
            await queue.push(Task.create("u", Priority.VERY_HIGH, task_id="very-high"))
            await queue.push(Task.create("u", Priority.LOW, task_id="low"))
            for n in range(5):
                await queue.push(Task.create("u", Priority.CRITICAL, task_id=f"crit-{n}"))
            await queue.push(Task.create("u", Priority.HIGH, task_id="high"))
            return [t.task_id for t in await drain(queue)]

    assert run(scenario()) == [f"crit-{n}" for n in range(5)] + ["very-high", "high", "low"]


# --- failure, retry and cancel ---------------------------------------------------------


def test_fail_retry_promote_pop_fail_ends_failed(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push(
                Task.create("u", task_id="flaky", max_retries=1, retry_delay_seconds=0.1)
            )
            task = await queue.pop()
            assert task is not None and task.attempts == 1
            before = time.time()
            outcome = await queue.fail(task, ValueError("boom 1"))
            after = time.time()
            assert outcome.state is TaskState.SCHEDULED and outcome.retry_at is not None
            # 0.1 s x jitter in [0.5, 1) after the failure, between `before` and `after`
            assert before + 0.03 <= outcome.retry_at <= after + 0.12
            assert (await queue.get_task("flaky")).state is TaskState.SCHEDULED
            assert await queue.pop() is None  # not before its time
            assert await queue.promote_due() == 0

            async def promoted() -> bool:
                return await queue.promote_due() == 1

            await wait_until_async(promoted, 5)
            assert (await queue.get_task("flaky")).state is TaskState.QUEUED
            retry = await queue.pop()
            assert retry is not None and retry.task_id == "flaky" and retry.attempts == 2
            final = await queue.fail(retry, ValueError("boom 2"))
            assert final.state is TaskState.FAILED and final.retry_at is None
            failed = await queue.get_task("flaky")
            assert failed.state is TaskState.FAILED and failed.error is not None
            assert failed.error["type"] == "ValueError" and failed.error["message"] == "boom 2"
            assert "ValueError: boom 2" in failed.error["traceback"]
            stats = await queue.get_stats()
            assert stats["totals"] == {"failed": 1} and stats["tasks_active"] == 0

    run(scenario())


def test_a_non_retryable_failure_ends_at_once(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push(Task.create("u", task_id="t", max_retries=5))
            task = await queue.pop()
            assert task is not None
            outcome = await queue.fail(task, {"type": "Denied"}, retryable=False)
            assert outcome.state is TaskState.FAILED
            error = (await queue.get_task("t")).error
            assert error == {"type": "Denied", "message": "", "traceback": ""}

    run(scenario())


def test_cancel_queued_and_started_tasks(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push(Task.create("u", Priority.CRITICAL, task_id="running"))
            await queue.push(Task.create("u", task_id="queued"))
            running = await queue.pop()
            assert running is not None and running.task_id == "running"
            assert await queue.cancel("queued", "not needed") == "canceled"
            canceled = await queue.get_task("queued")
            assert canceled.state is TaskState.CANCELED and canceled.error is not None
            assert canceled.error["message"] == "not needed"
            assert await queue.pop() is None  # it left its queue
            assert await queue.cancel("running") == "requested"
            assert (await queue.get_task("running")).state is TaskState.STARTED
            assert await queue.extend_lease(running) == {"running": "cancel"}
            assert await queue.finish(running, "done anyway") is TaskState.CANCELED
            assert (await queue.get_task("running")).state is TaskState.CANCELED
            with pytest.raises(InvalidStateError, match="canceled"):
                await queue.cancel("queued")
            with pytest.raises(TaskNotFoundError):
                await queue.cancel("nope")
            stats = await queue.get_stats()
            assert stats["tasks_active"] == 0 and stats["active_users"] == 0
            assert stats["totals"] == {"canceled": 2}

    run(scenario())


def test_delete_queued_and_started_tasks(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push_batch([Task.create("u", task_id="x"), Task.create("u", task_id="y")])
            assert await queue.delete_task("x") is TaskState.QUEUED
            with pytest.raises(TaskNotFoundError):
                await queue.get_task("x")
            with pytest.raises(TaskNotFoundError):
                await queue.delete_task("x")
            task = await queue.pop()
            assert task is not None and task.task_id == "y"
            assert await queue.delete_task("y") is TaskState.STARTED
            with pytest.raises(LeaseLostError):
                await queue.finish(task)
            assert await queue.extend_lease(task) == {"y": "lost"}
            stats = await queue.get_stats()
            assert stats["tasks_active"] == 0 and stats["users"]["u"]["queued"] == 0
            assert stats["users"]["u"]["started"] == 0
            assert redis_client.exists(queue.keys.task("x"), queue.keys.task("y")) == 0

    run(scenario())


# --- leases --------------------------------------------------------------------------


def test_extend_lease_then_fencing_after_reclaim(make_config: ConfigFactory) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config(lease_seconds=0.3)) as queue:
            await queue.push_batch([Task.create("u", task_id=f"t{n}") for n in range(2)])
            lost = await queue.pop()
            assert lost is not None and lost.task_id == "t0"
            for _ in range(3):
                await asyncio.sleep(0.1)
                assert await queue.extend_lease([lost]) == {"t0": "ok"}
                assert await queue.reclaim_expired() == (0, 0)

            async def reclaimed() -> bool:
                return await queue.reclaim_expired() == (1, 0)

            await wait_until_async(reclaimed, 5)
            assert (await queue.get_task("t0")).state is TaskState.QUEUED
            assert await queue.extend_lease(lost) == {"t0": "lost"}
            again = await queue.pop()
            assert again is not None and again.task_id == "t0"  # back at the front
            assert again.attempts == 2 and again.recoveries == 1 and again.claim == 2
            with pytest.raises(LeaseLostError):
                await queue.finish(lost, "late")
            with pytest.raises(LeaseLostError):
                await queue.fail(lost, "late")
            with pytest.raises(LeaseLostError):
                await queue.requeue(lost)
            assert await queue.extend_lease(again, lease_seconds=5) == {"t0": "ok"}
            assert await queue.finish(again, "on time") is TaskState.FINISHED
            assert (await queue.get_task("t0")).result == "on time"

    run(scenario())


# --- statistics ----------------------------------------------------------------------


def test_get_stats_counts_states_users_and_totals(make_config: ConfigFactory) -> None:
    async def scenario() -> dict[str, Any]:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push_batch(
                [Task.create("a") for _ in range(3)] + [Task.create("b") for _ in range(2)]
            )
            await queue.push(Task.create("c", execute_after=time.time() + 60))
            first = await queue.pop()
            assert first is not None
            await queue.finish(first)
            assert await queue.pop() is not None
            return await queue.get_stats()

    stats = run(scenario())
    assert stats["states"] == {
        "queued": 3,
        "started": 1,
        "deferred": 0,
        "finished": 1,
        "failed": 0,
        "canceled": 0,
        "scheduled": 1,
    }
    assert stats["tasks_active"] == 5 and stats["tasks_scheduled"] == 1
    assert stats["totals"] == {"finished": 1}
    assert stats["users"]["c"] == {"scheduled": 1}
    assert stats["users"]["a"]["queued"] + stats["users"]["b"]["queued"] == 3
    assert stats["active_users"] == 2


# --- all or nothing ------------------------------------------------------------------


def test_push_batch_with_a_duplicate_writes_nothing(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with AsyncTaskQueue(make_config()) as queue:
            await queue.push(Task.create("u", task_id="taken", payload={"v": 1}))
            before = redis_client.dbsize()
            clock = redis_client.get(queue.keys.clock)
            batch = [Task.create("new", task_id="new-1"), Task.create("v", task_id="taken")]
            with pytest.raises(DuplicateTaskError, match="'taken' is still active") as caught:
                await queue.push_batch(batch)
            assert caught.value.task_id == "taken" and caught.value.state == "queued"
            with pytest.raises(DuplicateTaskError, match="twice"):
                await queue.push_batch(
                    [Task.create("u", task_id="twin"), Task.create("u", task_id="twin")]
                )
            with pytest.raises(QueueError, match="at least one task"):
                await queue.push_batch([])
            with pytest.raises(TaskNotFoundError):
                await queue.get_task("new-1")
            assert redis_client.dbsize() == before
            assert redis_client.get(queue.keys.clock) == clock
            assert not redis_client.sismember(queue.keys.all_users, "new")
            stats = await queue.get_stats()
            assert stats["tasks_queued"] == 1 and set(stats["users"]) == {"u"}
            assert (await queue.get_task("taken")).payload == {"v": 1}

    run(scenario())


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


def test_sync_and_async_give_the_same_results_for_the_same_script(
    make_config: ConfigFactory,
) -> None:
    """The same operations through each API, on separate prefixes, end the same way."""

    def tasks() -> list[Task]:
        made = [Task.create(u, p, task_id=f"{u}-{p.name}") for u in "xyz" for p in Priority]
        made.append(Task.create("x", task_id="retry", max_retries=1, retry_delay_seconds=0))
        return made

    def summary(task: Task) -> tuple[str, str, int, int]:
        return (task.task_id, task.user_id, task.attempts, task.claim)

    with TaskQueue(make_config(worker_id="w", stats_prefix="sync")) as queue:
        queue.push_batch(tasks())
        sync_first = [summary(t) for t in queue.pop_many(7)]
        eighth = queue.pop()
        assert eighth is not None and queue.finish(eighth) is TaskState.FINISHED
        sync_rest = []
        while (task := queue.pop()) is not None:
            sync_rest.append(summary(task))
            if task.task_id == "retry" and task.attempts == 1:
                assert queue.fail(task, "again").state is TaskState.SCHEDULED
                # due at once: no retry delay
                wait_until(lambda: queue.promote_due() == 1, 5)
        sync_stats = queue.get_stats()

    async def scenario() -> tuple[list[Any], list[Any], dict[str, Any]]:
        async with AsyncTaskQueue(make_config(worker_id="w", stats_prefix="async")) as queue:
            await queue.push_batch(tasks())
            first = [summary(t) for t in await queue.pop_many(7)]
            eighth = await queue.pop()
            assert eighth is not None and await queue.finish(eighth) is TaskState.FINISHED
            rest = []
            while (task := await queue.pop()) is not None:
                rest.append(summary(task))
                if task.task_id == "retry" and task.attempts == 1:
                    assert (await queue.fail(task, "again")).state is TaskState.SCHEDULED

                    async def promoted() -> bool:
                        return await queue.promote_due() == 1

                    await wait_until_async(promoted, 5)
            return first, rest, await queue.get_stats()

    async_first, async_rest, async_stats = run(scenario())
    assert async_first == sync_first
    assert async_rest == sync_rest
    assert ("retry", "x", 2, 2) in async_rest  # the retry ran again in the same drain
    assert _timeless(async_stats) == _timeless(sync_stats)
    assert len(async_first) == 7 and len(async_rest) == 12
    assert async_stats["tasks_started"] == 18 and async_stats["tasks_finished"] == 1


def _timeless(stats: dict[str, Any]) -> dict[str, Any]:
    """Statistics without the fields that depend on the moment they were read."""
    out = {k: v for k, v in stats.items() if k not in ("server_time", "oldest_queued_age")}
    out["users"] = {
        user: {k: v for k, v in counts.items() if k != "next_task_age"}
        for user, counts in stats["users"].items()
    }
    return out
