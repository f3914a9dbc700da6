"""Queues (routing): a task's ``queue`` decides which workers may claim it; a worker
takes its queues in turn; the default queue keeps the keys of the time before queues."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.config import WorkerConfig
from fairque.core.errors import ConfigValueError, TaskError
from fairque.dag.loader import load_dag_file
from fairque.tasks.decorators import task

from .conftest import QueueFactory, drain, invoke

pytestmark = pytest.mark.both_queues


def test_a_worker_claims_only_tasks_of_the_queues_it_serves(make_queue: QueueFactory) -> None:
    producer = make_queue(worker_id="producer")
    producer.push_batch([Task.create("u", queue="gpu", payload={"n": i}) for i in range(3)])
    producer.push_batch([Task.create("u", payload={"n": i}) for i in range(2)])
    plain = make_queue(worker_id="plain")  # no queues set: the default one only
    assert [t.queue for t in drain(plain)] == ["default", "default"]
    gpu = make_queue(worker_id="gpu", queues=["gpu"])
    assert [(t.queue, t.payload["n"]) for t in drain(gpu)] == [("gpu", 0), ("gpu", 1), ("gpu", 2)]
    assert producer.get_stats()["tasks_queued"] == 0


def test_round_robin_across_a_workers_queues(make_queue: QueueFactory) -> None:
    queue = make_queue(queues=["a", "b", "c"])
    for name, count in (("a", 10), ("b", 10), ("c", 4)):
        queue.push_batch([Task.create("u", queue=name) for _ in range(count)])
    served = [t.queue for t in drain(queue)]
    assert len(served) == 24
    for window in range(0, 12, 3):  # all three have tasks: one of each in every turn
        assert sorted(served[window : window + 3]) == ["a", "b", "c"], served
    rest = served[12:]  # c is empty: a and b alternate
    assert all(rest[i] != rest[i + 1] for i in range(len(rest) - 1)), served


def test_fair_across_tenants_within_a_queue(make_queue: QueueFactory) -> None:
    queue = make_queue(queues=["a"])
    queue.push_batch([Task.create("heavy", queue="a") for _ in range(30)])
    queue.push_batch([Task.create("light", queue="a") for _ in range(5)])
    queue.push_batch([Task.create("other", queue="b") for _ in range(5)])
    served = [t.user_id for t in drain(queue)]
    assert served[:10].count("light") == 5, served
    assert "other" not in served and len(served) == 35


def test_tasks_of_the_default_queue_keep_the_keys_from_before_queues(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue()
    task_id = queue.push(Task.create("old"))["task_id"]
    # No field on the record and the user-queue key of before: data queued by an
    # earlier version is served as is.
    assert not redis_client.hexists(queue.keys.task(task_id), "queue")
    assert redis_client.zcard(f"{queue.keys.head}:queue:user:old:normal") == 1
    assert redis_client.zscore(f"{queue.keys.head}:users:active", "old") is not None
    popped = queue.pop()
    assert popped is not None and popped.task_id == task_id and popped.queue == "default"


def test_stats_count_queued_tasks_per_queue(make_queue: QueueFactory) -> None:
    queue = make_queue(queues=["gpu"])
    ids = queue.push_batch([Task.create("u", queue="gpu") for _ in range(3)])["task_ids"]
    queue.push_batch([Task.create("u") for _ in range(2)])
    assert queue.get_stats()["queues"] == {"default": 2, "gpu": 3}
    assert queue.pop() is not None
    queue.cancel(ids[1])
    queue.delete_task(ids[2])
    assert queue.get_stats()["queues"] == {"default": 2}


def test_requeue_and_reclaim_put_a_task_back_in_its_own_queue(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(queues=["gpu"], lease_seconds=0.2)
    queue.push(Task.create("u", queue="gpu"))
    first = queue.pop()
    assert first is not None
    queue.requeue(first)
    assert queue.get_stats()["queues"] == {"gpu": 1}
    again = queue.pop()
    assert again is not None and again.task_id == first.task_id
    redis_client.zadd(queue.keys.state("started"), {first.task_id: 0})  # lease expired
    assert queue.reclaim_expired() == (1, 0)
    plain = TaskQueue(queue.config.with_worker(queues=["default"]))
    assert plain.pop() is None  # not in the default queue
    plain.close()
    last = queue.pop()
    assert last is not None and last.task_id == first.task_id


def test_a_cap_holds_across_queues_and_a_freed_slot_lets_the_tenant_back_in_each(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(queues=["a", "b"])
    queue.set_tenant_policy("t", max_running=1)
    queue.push_batch([Task.create("t", queue=name) for name in ("a", "a", "b", "b")])
    first = queue.pop()
    assert first is not None
    assert queue.pop() is None  # capped: parked out of both queues
    queue.finish(first)
    second = queue.pop()
    assert second is not None and second.queue != first.queue  # round robin went on
    queue.finish(second)
    third = queue.pop()
    assert third is not None
    queue.finish(third)
    fourth = queue.pop()
    assert fourth is not None
    queue.finish(fourth)
    assert sorted(t.queue for t in (first, second, third, fourth)) == ["a", "a", "b", "b"]


@pytest.mark.parametrize("bad", ["has space", "", "a:b", "x" * 101, "{tag}", 5])
def test_a_bad_queue_name_is_refused_at_task_creation(bad: object) -> None:
    with pytest.raises(TaskError, match="queue"):
        Task.create("u", queue=bad)


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ([], "empty"),
        (["a", "a"], "twice"),
        (["bad name"], "not a queue name"),
        ("gpu", "list of strings"),
    ],
)
def test_a_bad_worker_queue_list_is_refused(queues: object, message: str) -> None:
    with pytest.raises(ConfigValueError, match=message):
        WorkerConfig(queues=queues)  # type: ignore[arg-type]


@task(queue="gpu", pool="cards")
def render() -> None:
    """A task routed by its decorator."""


def test_queue_and_pool_come_from_task_decorators_yaml_and_default_args(tmp_path: Path) -> None:
    made = render()
    assert (made.queue, made.pool) == ("gpu", "cards")
    path = tmp_path / "routed.yaml"
    path.write_text(
        "dag_id: routed\n"
        "default_args: {queue: gpu, pool: cards}\n"
        "tasks:\n"
        "  a: {callable: tests.integration.jobs:noop}\n"
        "  b: {callable: tests.integration.jobs:noop, queue: cpu, pool: small}\n"
    )
    result = load_dag_file(path)
    assert result.ok, result.problems
    nodes = result.dags[0].pipeline.nodes
    assert (nodes["a"].queue, nodes["a"].pool) == ("gpu", "cards")
    assert (nodes["b"].queue, nodes["b"].pool) == ("cpu", "small")
    path.write_text(
        "dag_id: routed\ntasks:\n  a: {callable: tests.integration.jobs:noop, queue: 'no way'}\n"
    )
    assert "queue" in str(load_dag_file(path).problems)


def test_queue_stats_show_queued_tasks_per_queue(cli: CliRunner, redis_url: str) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url, queues=["gpu", "default"]))
    queue.push_batch([Task.create("u", queue="gpu"), Task.create("u")])
    code, out = invoke(cli, "queue", "stats")
    assert code == 0 and "queued per queue: default 1, gpu 1" in " ".join(out.split()), out
    queue.close()
