"""Bad input is refused with a clear error, and nothing already queued changes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fairque import FairQueueConfig, Priority, Task, TaskQueue
from fairque.core.errors import (
    InvalidPriorityError,
    InvalidUserIdError,
    PayloadError,
    RedisUnavailableError,
    TaskNotFoundError,
)
from fairque.server.embedded import EmbeddedServer
from tests.timing import budget

from .conftest import QueueFactory

pytestmark = pytest.mark.both_queues


@pytest.fixture
def queue_with_work(make_queue: QueueFactory) -> Iterator[TaskQueue]:
    """A queue holding two known tasks; the test checks they survive unchanged."""
    queue = make_queue(assigned_users=["*"])
    queue.push(Task.create("keep", payload={"n": 1}, task_id="keep-1"))
    queue.push(Task.create("keep", Priority.CRITICAL, payload={"n": 2}, task_id="keep-2"))
    yield queue
    stats = queue.get_stats()
    assert stats["tasks_queued"] == 2 and stats["users"]["keep"]["queued"] == 2
    assert queue.get_task("keep-1").payload == {"n": 1}


@pytest.mark.parametrize("priority", [0, 7, -1, True, False, "URGENT", 4.5, None, "7"])
def test_bad_priorities_are_refused(priority: object, queue_with_work: TaskQueue) -> None:
    with pytest.raises(InvalidPriorityError, match="priority"):
        Task.create("u", priority)  # type: ignore[arg-type]


@pytest.mark.parametrize("priority", ["HIGH", "high", 4, "4", Priority.HIGH])
def test_known_priority_names_and_numbers_are_accepted(priority: object) -> None:
    assert Task.create("u", priority).priority is Priority.HIGH  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "user_id",
    ["", " ", "a b", "line\nbreak", "tab\t", "x" * 300, "{tag}", "a}", "*", 42, None],
)
def test_bad_user_ids_are_refused(user_id: object, queue_with_work: TaskQueue) -> None:
    with pytest.raises(InvalidUserIdError, match="user_id"):
        Task.create(user_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("user_id", ["user:1", "alice@example.com", "ünïcode", "x" * 200])
def test_unusual_but_safe_user_ids_work_end_to_end(user_id: str, make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=[user_id])
    queue.push(Task.create(user_id, task_id="t"))
    task = queue.pop()
    assert task is not None and task.user_id == user_id
    assert queue.get_stats()["users"][user_id]["started"] == 1


def test_user_id_with_colons_does_not_collide_with_other_keys(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["a:critical"])
    queue.push(Task.create("a:critical", task_id="t1"))
    queue.push(Task.create("a", Priority.CRITICAL, task_id="t2"))
    task = queue.pop()
    assert task is not None and task.task_id == "t1"
    assert queue.pop() is None


def test_payload_must_be_json(queue_with_work: TaskQueue) -> None:
    with pytest.raises(PayloadError, match="JSON"):
        Task.create("u", payload={"when": object()})
    with pytest.raises(PayloadError, match="JSON"):
        Task.create("u", payload={"nan": float("nan")})


def test_payload_over_the_size_limit_is_refused(make_queue: QueueFactory) -> None:
    queue = make_queue(max_payload_bytes=1000)
    queue.push(Task.create("keep", task_id="keep"))
    with pytest.raises(PayloadError, match="limit is 1000"):
        queue.push(Task.create("u", payload={"blob": "x" * 2000}))
    with pytest.raises(PayloadError):
        queue.push_batch([Task.create("u"), Task.create("u", payload={"blob": "x" * 2000})])
    assert queue.get_stats()["tasks_queued"] == 1


def test_default_payload_limit_is_one_mebibyte(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", payload={"blob": "x" * 1_000_000}))
    with pytest.raises(PayloadError, match="1048576"):
        queue.push(Task.create("u", payload={"blob": "x" * 1_100_000}))


@pytest.mark.parametrize("operation", ["get_task", "cancel", "delete_task"])
def test_unknown_task_ids(operation: str, queue_with_work: TaskQueue) -> None:
    with pytest.raises(TaskNotFoundError, match="no task with id 'ghost'"):
        getattr(queue_with_work, operation)("ghost")


def test_unknown_task_option_is_refused() -> None:
    with pytest.raises(Exception, match="unknown Task option"):
        Task.create("u", retries=3)


def test_unreachable_redis_at_start_fails_fast() -> None:
    config = FairQueueConfig.create_default(redis="redis://127.0.0.1:1/0")
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match="unreachable"):
        TaskQueue(config)
    assert time.monotonic() - started < budget(6)  # bounded by the socket connect timeout


def test_redis_lost_during_use_gives_a_clear_error(tmp_path: object) -> None:
    with EmbeddedServer(str(tmp_path)) as url:
        queue = TaskQueue(FairQueueConfig.create_default(redis=url))
        queue.push(Task.create("u"))
        EmbeddedServer(str(tmp_path)).stop()
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="unreachable"):
            queue.push(Task.create("u"))
        assert time.monotonic() - started < budget(6)
        queue.close()
