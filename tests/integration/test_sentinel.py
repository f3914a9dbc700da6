"""fairque through Sentinel (``redis+sentinel://``) on a real group started by the tests
(tests/sentinel_group.py: a master, a replica, three sentinels), and ``durability:
replicated`` (a push waits for the replica; with the replica stopped, a push raises).

The failover itself (a master killed under load) is tests/faults/test_sentinel_failover.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.sentinel

from fairque import AsyncTaskQueue, FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import NotReplicatedError, RedisUnavailableError
from fairque.server.process import free_port
from tests.integration.test_examples import EXAMPLES, run_example
from tests.integration.through import worker_scheduler_and_a_dag
from tests.sentinel_group import SERVICE, SentinelGroup
from tests.timing import budget, wait_until


@pytest.fixture
def group(sentinel_group: SentinelGroup) -> SentinelGroup:
    """The module's group with its master emptied."""
    with sentinel_group.client("master") as master:
        master.flushall()
    return sentinel_group


def config(group: SentinelGroup, **settings: Any) -> FairQueueConfig:
    return FairQueueConfig.create_default(redis=group.url, **settings)


@contextmanager
def replica_stopped(group: SentinelGroup) -> Iterator[None]:
    """SIGSTOP the replica (it stays connected but confirms nothing), SIGCONT after."""
    pid = group.processes["replica"].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        with group.client("replica") as replica:
            wait_until(
                lambda: replica.info("replication").get("master_link_status") == "up",
                10,
                "the replica to resume",
            )


def test_queue_through_sentinel_from_fairque_redis_url(
    group: SentinelGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", group.url)
    with TaskQueue(FairQueueConfig.create_default()) as queue:
        assert isinstance(queue.redis.connection_pool, redis.sentinel.SentinelConnectionPool)
        task_id = queue.push(Task.create("alice", payload={"n": 1}))["task_id"]
        with group.client("master") as master:
            assert master.exists(queue.keys.task(task_id)) == 1  # written on the master
        taken = queue.pop()
        assert taken is not None and taken.task_id == task_id
        assert queue.finish(taken, "done") == TaskState.FINISHED
        assert queue.get_task(task_id).result == "done"


def test_async_queue_and_ready_notices_through_sentinel(group: SentinelGroup) -> None:
    async def scenario() -> tuple[bool, str]:
        async with AsyncTaskQueue(config(group)) as queue:
            listener = await queue.subscribe_ready()
            try:
                task_id = (await queue.push(Task.create("bob")))["task_id"]
                noticed = False  # the first read may be the subscription's confirmation
                for _ in range(3):
                    noticed = noticed or await listener.wait(budget(1.0))
            finally:
                await listener.close()
            taken = await queue.pop()
            assert taken is not None
            await queue.finish(taken, 7)
            return noticed, (await queue.get_task(task_id)).state.value

    assert asyncio.run(scenario()) == (True, "finished")


def test_replicated_writes_are_on_the_replica_when_they_return(group: SentinelGroup) -> None:
    with (
        TaskQueue(config(group, durability="replicated")) as queue,
        group.client("replica") as replica,
    ):
        ids = queue.push_batch([Task.create("carol") for _ in range(3)])["task_ids"]
        assert [replica.exists(queue.keys.task(t)) for t in ids] == [1, 1, 1]
        taken = queue.pop()
        assert taken is not None
        assert replica.hget(queue.keys.task(taken.task_id), "state") == "started"
        queue.finish(taken, None)
        assert replica.hget(queue.keys.task(taken.task_id), "state") == "finished"


def test_a_push_no_replica_confirms_raises_and_the_task_is_still_there(
    group: SentinelGroup, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"durability": "replicated", "replication_timeout_seconds": 0.2}
    caplog.set_level(logging.DEBUG, "fairque.queue.base")
    with TaskQueue(config(group, **settings)) as queue:
        with replica_stopped(group):
            with pytest.raises(NotReplicatedError) as info:
                queue.push(Task.create("dave", task_id="not-copied"))
            assert info.value.task_ids == ["not-copied"]
            assert "within 200 ms" in str(info.value)
            assert "may still exist" in str(info.value)
            assert queue.get_task("not-copied").state == TaskState.QUEUED
            taken = queue.pop()  # a claim or an end not confirmed: logged, not raised
            assert taken is not None
            assert queue.finish(taken, None) == TaskState.FINISHED
        queue.push(Task.create("dave"))  # the replica is back
    logged = [(r.levelname, r.getMessage().split(" within")[0]) for r in caplog.records]
    assert logged == [  # one WARNING per outage
        ("WARNING", "pop was not confirmed by a replica"),
        ("DEBUG", "finish was not confirmed by a replica"),
        ("INFO", "a replica confirms writes again (durability: replicated)"),
    ]


def test_a_large_batch_is_replicated_by_its_commit(group: SentinelGroup) -> None:
    settings = {"durability": "replicated", "replication_timeout_seconds": 0.2, "step_size": 4}
    with TaskQueue(config(group, **settings)) as queue, group.client("replica") as replica:
        ids = queue.push_batch([Task.create("fay", task_id=f"f{n}") for n in range(9)])["task_ids"]
        assert all(replica.exists(queue.keys.task(t)) for t in ids)
        with replica_stopped(group), pytest.raises(NotReplicatedError) as info:
            queue.push_batch([Task.create("fay", task_id=f"g{n}") for n in range(9)])
        assert info.value.task_ids == [f"g{n}" for n in range(9)]
        assert queue.get_task("g8").state == TaskState.QUEUED  # committed, not confirmed


def test_async_push_no_replica_confirms_raises(group: SentinelGroup) -> None:
    async def push() -> None:
        settings = {"durability": "replicated", "replication_timeout_seconds": 0.2}
        async with AsyncTaskQueue(config(group, **settings)) as queue:
            await queue.push_batch([Task.create("erin", task_id=f"e{n}") for n in range(2)])

    with replica_stopped(group), pytest.raises(NotReplicatedError) as info:
        asyncio.run(push())
    assert info.value.task_ids == ["e0", "e1"]


def test_durability_from_the_environment(
    group: SentinelGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRQUE_DURABILITY", "replicated")
    with TaskQueue(config(group, replication_timeout_seconds=0.2)) as queue:
        assert queue.durability == "replicated"
        with replica_stopped(group), pytest.raises(NotReplicatedError):
            queue.push(Task.create("frank"))


def test_an_unknown_service_or_dead_sentinels_are_clear_errors(group: SentinelGroup) -> None:
    unknown = group.url.replace("/mymaster/", "/nosuch/")
    with pytest.raises(RedisUnavailableError) as info:
        TaskQueue(FairQueueConfig.create_default(redis=unknown))
    assert "No master found for 'nosuch' by the sentinels of redis+sentinel://" in str(info.value)
    assert "check the service name" in str(info.value)
    dead = f"redis+sentinel://u:secret@127.0.0.1:{free_port()}/mymaster"
    with pytest.raises(RedisUnavailableError) as info:
        TaskQueue(FairQueueConfig.create_default(redis=dead))
    assert "No master found" in str(info.value) and "secret" not in str(info.value)


@pytest.mark.slow
def test_worker_scheduler_and_a_dag_through_sentinel(group: SentinelGroup, tmp_path: Path) -> None:
    worker_scheduler_and_a_dag(group.url, tmp_path, "sentinel-worker")


@pytest.mark.slow
def test_a_manual_failover_demotes_the_master_and_the_same_queue_follows(
    tmp_path: Path,
) -> None:
    """SENTINEL FAILOVER keeps the old master alive as a replica: the queue's pooled
    connection to it meets READONLY, is dropped, and the next call finds the new master."""
    with (
        SentinelGroup(tmp_path / "group") as group,
        TaskQueue(config(group, durability="replicated")) as queue,
    ):
        first = queue.push(Task.create("gina"))["task_id"]
        with group.client("sentinel0") as sentinel:

            def failover_accepted() -> bool:
                try:
                    return bool(sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE))
                except redis.ResponseError as e:  # NOGOODSLAVE until the sentinel has
                    if "NOGOODSLAVE" not in str(e):  # refreshed what it knows of the replica
                        raise
                    return False

            wait_until(failover_accepted, 30, "the sentinel to accept a failover")
        assert group.wait_promoted(30) == "replica"
        with group.client("master") as old:
            wait_until(lambda: old.info("replication")["role"] == "slave", 30, "demotion")

        def pushed() -> str | None:
            try:
                return queue.push(Task.create("gina"))["task_id"]
            except (RedisUnavailableError, NotReplicatedError):
                return None  # during the switch: READONLY, no master, or no replica yet

        second = wait_until(pushed, 30, "a push after the failover")
        with group.client("replica") as new_master:
            assert new_master.exists(queue.keys.task(first), queue.keys.task(second)) == 2
        assert queue.get_task(first).state == TaskState.QUEUED


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_through_sentinel(name: str, group: SentinelGroup, tmp_path: Path) -> None:
    run_example(name, group.url, tmp_path)
    assert not (tmp_path / "server.json").exists()  # no embedded server was started
