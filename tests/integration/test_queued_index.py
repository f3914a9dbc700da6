"""The queued index: queued tasks counted per second instead of one registry entry each,
the oldest queued task's age from it, and tasks queued before it moved into it."""

from __future__ import annotations

import pytest
import redis

from fairque import Task, TaskQueue, TaskState

from .conftest import QueueFactory

pytestmark = pytest.mark.both_queues


@pytest.fixture
def queue(make_queue: QueueFactory) -> TaskQueue:
    return make_queue()


def _index(queue: TaskQueue, client: redis.Redis) -> tuple[dict[str, int], list[str]]:
    counts = {k.decode(): int(v) for k, v in client.hgetall(queue.keys.queued_seconds).items()}
    return counts, [m.decode() for m in client.zrange(queue.keys.queued_since, 0, -1)]


def _second(queue: TaskQueue, client: redis.Redis, task_id: str) -> str:
    return str(int(client.hget(queue.keys.task(task_id), "order")) // 1_000_000)


def test_queued_tasks_are_counted_per_second_and_leave_the_count_every_way(
    queue: TaskQueue, redis_client: redis.Redis
) -> None:
    for name in ("a", "b", "c", "d"):
        queue.push(Task.create("u", task_id=name))
    stats = queue.get_stats()
    assert stats["states"]["queued"] == 4 and stats["oldest_queued_age"] is not None
    assert not redis_client.exists(queue.keys.state(TaskState.QUEUED))  # no entry per task
    counts, seconds = _index(queue, redis_client)
    assert counts.pop("all") == 4 and sum(counts.values()) == 4
    assert _second(queue, redis_client, "a") in seconds
    taken = queue.pop()
    assert taken is not None
    queue.requeue(taken)  # back in line with its first stamp: as old as before
    assert _second(queue, redis_client, taken.task_id) == _second(queue, redis_client, "a")
    assert queue.get_stats()["states"]["queued"] == 4
    queue.cancel("b")
    queue.delete_task("c")
    taken = queue.pop()
    assert taken is not None and queue.get_stats()["states"]["queued"] == 1
    queue.finish(taken, None)
    last = queue.pop()
    assert last is not None
    stats = queue.get_stats()
    assert stats["states"]["queued"] == 0 and stats["oldest_queued_age"] is None
    assert _index(queue, redis_client) == ({"all": 0}, [])


def test_tasks_queued_before_the_index_count_until_a_worker_moves_them_into_it(
    queue: TaskQueue, redis_client: redis.Redis
) -> None:
    ids = [f"old-{i}" for i in range(5)]
    for task_id in ids:
        queue.push(Task.create("u", task_id=task_id))
    registry = queue.keys.state(TaskState.QUEUED)
    for task_id in ids:  # the layout an earlier fairque left: one registry entry each
        redis_client.zadd(registry, {task_id: 1_000})
    redis_client.delete(queue.keys.queued_seconds, queue.keys.queued_since)
    stats = queue.get_stats()
    assert stats["states"]["queued"] == 5
    assert stats["oldest_queued_age"] > 1_000_000  # its score: 1 s after the epoch
    assert queue.pop() is not None  # leaves the registry; the index is not counted down
    assert redis_client.zcard(registry) == 4 and _index(queue, redis_client) == ({}, [])
    queue.promote_due()  # a worker's periodic work moves the rest
    assert not redis_client.exists(registry)
    counts, _ = _index(queue, redis_client)
    assert counts["all"] == 4 and queue.get_stats()["states"]["queued"] == 4
    assert len(queue.pop_many(10)) == 4
    assert _index(queue, redis_client) == ({"all": 0}, [])
