"""fairque on a Valkey Cluster (``redis+cluster://``) started by the tests
(tests/cluster_group.py: three masters and a replica each): every key in one hash slot
on one master, ``durability: replicated`` against that master's replica, the clear
errors of a dead cluster and of a plain ``redis://`` URL naming a cluster node.

The failover (the master killed under load) is tests/faults/test_cluster_failover.py.
The whole integration suite also runs on a cluster with ``FAIRQUE_TEST_CLUSTER=1``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from fairque import AsyncTaskQueue, FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import RedisCommandError, RedisUnavailableError
from fairque.core.keys import CLUSTER_SLOT_KEY
from fairque.server.process import free_port
from tests.cluster_group import ClusterGroup
from tests.integration.test_examples import EXAMPLES, run_example
from tests.integration.through import worker_scheduler_and_a_dag
from tests.timing import budget


@pytest.fixture
def group(cluster_group: ClusterGroup) -> ClusterGroup:
    """The module's cluster with fairque's master emptied."""
    master = cluster_group.fairque_master()
    assert master is not None
    with cluster_group.client(master) as client:
        client.flushall()
    return cluster_group


def config(group: ClusterGroup, **settings: Any) -> FairQueueConfig:
    return FairQueueConfig.create_default(redis=group.url, **settings)


def test_queue_on_a_cluster_from_fairque_redis_url(
    group: ClusterGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", group.url)
    with TaskQueue(FairQueueConfig.create_default()) as queue:
        task_id = queue.push(Task.create("alice", payload={"n": 1}))["task_id"]
        key = queue.keys.task(task_id)
        assert key.startswith("fq:{s00}:") and key_slot(key.encode()) == key_slot(
            CLUSTER_SLOT_KEY.encode()
        )
        master = group.fairque_master()
        assert master is not None
        with group.client(master) as client:
            assert client.exists(key) == 1  # on the master of fairque's slot
        others = [n for n in group.ports if n != master and n != group.replica_of(master)]
        for name in others:
            with group.client(name) as client:
                assert client.dbsize() == 0  # nothing of fairque anywhere else
        taken = queue.pop()
        assert taken is not None and taken.task_id == task_id
        assert queue.finish(taken, "done") == TaskState.FINISHED
        assert queue.get_task(task_id).result == "done"


def test_async_queue_and_ready_notices_on_a_cluster(group: ClusterGroup) -> None:
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


def test_replicated_writes_are_on_the_replica_of_the_slot_master(group: ClusterGroup) -> None:
    master = group.fairque_master()
    assert master is not None
    with (
        TaskQueue(config(group, durability="replicated")) as queue,
        group.client(group.replica_of(master)) as replica,
    ):
        ids = queue.push_batch([Task.create("carol") for _ in range(3)])["task_ids"]
        replica.execute_command("READONLY")  # a cluster replica serves reads only so
        assert [replica.exists(queue.keys.task(t)) for t in ids] == [1, 1, 1]
        taken = queue.pop()
        assert taken is not None
        queue.finish(taken, None)
        assert replica.hget(queue.keys.task(taken.task_id), "state") == "finished"


def test_a_cluster_no_seed_of_which_answers_is_a_clear_error() -> None:
    dead = f"redis+cluster://u:secret@127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    with (
        pytest.raises(RedisUnavailableError) as info,
        TaskQueue(FairQueueConfig.create_default(redis=dead)) as queue,
    ):
        queue.push(Task.create("dave"))
    assert "no node of the cluster answered" in str(info.value)
    assert "secret" not in str(info.value)


def test_a_plain_url_to_a_cluster_node_says_to_use_redis_cluster(group: ClusterGroup) -> None:
    node = next(iter(group.ports))
    url = f"redis://127.0.0.1:{group.ports[node]}"
    with (
        pytest.raises(RedisCommandError) as info,
        TaskQueue(FairQueueConfig.create_default(redis=url)) as queue,
    ):
        queue.push(Task.create("erin"))
    assert "is a node of a Redis Cluster" in str(info.value)
    assert "redis+cluster://host:port" in str(info.value)


@pytest.mark.slow
def test_worker_scheduler_and_a_dag_on_a_cluster(group: ClusterGroup, tmp_path: Path) -> None:
    worker_scheduler_and_a_dag(group.url, tmp_path, "cluster-worker")


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_on_a_cluster(name: str, group: ClusterGroup, tmp_path: Path) -> None:
    run_example(name, group.url, tmp_path)
    assert not (tmp_path / "server.json").exists()  # no embedded server was started
