"""Pools: at most ``slots`` tasks of a pool started at once, the rest of the work served
meanwhile, a slot freed once on every end, and the pool API and CLI."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import redis
from typer.testing import CliRunner

from fairque import Task, TaskQueue
from fairque.core.errors import LeaseLostError, PoolError, TaskError, UnknownPoolError

from .conftest import QueueFactory, drain, invoke

pytestmark = pytest.mark.both_queues


def _running(queue: TaskQueue, pool: str) -> int:
    return next(p["running"] for p in queue.list_pools() if p["pool"] == pool)


def test_a_full_pool_holds_its_tasks_and_the_rest_is_served(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue()
    queue.set_pool("gpu", 2)
    queue.push_batch([Task.create(user, pool="gpu") for user in ("a", "b") for _ in range(3)])
    queue.push_batch([Task.create("c") for _ in range(3)])
    served = drain(queue)
    assert Counter(t.pool for t in served) == {"gpu": 2, None: 3}
    # Tenants share the pool fairly: one of each got a slot.
    assert sorted(t.user_id for t in served if t.pool) == ["a", "b"]
    # The full pool's lane is out of the claim's sight: no claim looks at it.
    assert redis_client.smembers(queue.keys.open_lanes("default")) == set()
    assert queue.list_pools() == [{"pool": "gpu", "slots": 2, "running": 2, "queued": 4}]
    queue.finish(next(t for t in served if t.pool))
    nxt = queue.pop()
    assert nxt is not None and nxt.pool == "gpu"
    assert queue.pop() is None


def test_every_end_frees_the_slot_once(make_queue: QueueFactory, redis_client: redis.Redis) -> None:
    queue = make_queue(lease_seconds=30)
    queue.set_pool("p", 1)
    ids = queue.push_batch([Task.create("u", pool="p", max_retries=5) for _ in range(4)])[
        "task_ids"
    ]
    first = queue.pop()
    assert first is not None and _running(queue, "p") == 1
    redis_client.zadd(queue.keys.state("started"), {first.task_id: 0})  # its lease expired
    assert queue.reclaim_expired() == (1, 0)
    assert _running(queue, "p") == 0
    with pytest.raises(LeaseLostError):
        queue.finish(first)  # the old holder: refused, and no second free
    assert _running(queue, "p") == 0
    again = queue.pop()
    assert again is not None and _running(queue, "p") == 1
    queue.fail(again, ValueError("retry me"))  # a retry ends the run: slot freed
    assert _running(queue, "p") == 0
    third = queue.pop()
    assert third is not None
    queue.requeue(third)  # a graceful hand-back
    assert _running(queue, "p") == 0
    fourth = queue.pop()
    assert fourth is not None
    queue.delete_task(fourth.task_id)  # deleting a started task
    assert _running(queue, "p") == 0
    fifth = queue.pop()
    assert fifth is not None
    queue.cancel(fifth.task_id)
    queue.finish(fifth)  # ends CANCELED
    assert _running(queue, "p") == 0
    remaining = [t for t in drain(queue)]
    for task in remaining:
        queue.finish(task)
    assert _running(queue, "p") == 0
    assert set(ids) >= {t.task_id for t in remaining}


def test_changing_slots_applies_at_once(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.set_pool("p", 0)  # holds its tasks
    queue.push_batch([Task.create("u", pool="p") for _ in range(3)])
    assert queue.pop() is None
    queue.set_pool("p", 2)
    assert len(drain(queue)) == 2
    queue.set_pool("p", 1)  # below the running count: nothing more until two end
    assert queue.pop() is None
    queue.unset_pool("p")  # queued tasks run without a limit
    assert len(drain(queue)) == 1
    with pytest.raises(UnknownPoolError, match="pool set p"):
        queue.push(Task.create("u", pool="p"))


def test_a_push_naming_an_undeclared_pool_is_refused_whole(make_queue: QueueFactory) -> None:
    queue = make_queue()
    with pytest.raises(UnknownPoolError, match="'nope'"):
        queue.push_batch([Task.create("u"), Task.create("u", pool="nope")])
    assert queue.get_stats()["tasks_queued"] == 0


def test_pools_and_queues_combine(make_queue: QueueFactory) -> None:
    queue = make_queue(queues=["gpu"])
    queue.set_pool("cards", 1)
    queue.push_batch([Task.create("u", queue="gpu", pool="cards") for _ in range(2)])
    queue.push(Task.create("u", queue="gpu"))
    assert queue.get_stats()["queues"] == {"gpu": 3}
    served = drain(queue)
    assert sorted((t.queue, t.pool or "") for t in served) == [("gpu", ""), ("gpu", "cards")]


@pytest.mark.parametrize(
    ("name", "slots", "message"),
    [
        ("bad name", 1, "not a pool name"),
        ("", 1, "not a pool name"),
        ("gpu", -1, "whole number"),
        ("gpu", 1.5, "whole number"),
        ("gpu", True, "whole number"),
    ],
)
def test_bad_pool_settings_are_refused(
    make_queue: QueueFactory, name: str, slots: object, message: str
) -> None:
    queue = make_queue()
    with pytest.raises(PoolError, match=message):
        queue.set_pool(name, slots)  # type: ignore[arg-type]
    assert queue.list_pools() == []


def test_a_bad_pool_name_on_a_task_is_refused() -> None:
    with pytest.raises(TaskError, match="not a pool name"):
        Task.create("u", pool="a~b")


def test_the_pool_cli(cli: CliRunner, redis_url: str) -> None:
    code, out = invoke(cli, "pool", "set", "gpu", "--slots", "2")
    assert code == 0 and "gpu: 2 slots" in out
    code, out = invoke(cli, "pool", "list", "--json")
    assert code == 0 and json.loads(out) == [{"pool": "gpu", "slots": 2, "running": 0, "queued": 0}]
    code, out = invoke(cli, "pool", "set", "gpu", "--slots", "-3")
    assert code == 1 and "whole number" in out
    code, out = invoke(cli, "pool", "unset", "gpu")
    assert code == 0
    code, out = invoke(cli, "pool", "list")
    assert code == 0 and "no pools" in out
