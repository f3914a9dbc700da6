"""Task lifecycle through the scripts: finish, retry with backoff, cancel, delete,
leases and fencing, delayed start, NOSCRIPT recovery and statistics."""

from __future__ import annotations

import dataclasses
import time

import pytest
import redis

from fairque import Priority, Task, TaskRecord, TaskState
from fairque.core.errors import (
    DuplicateTaskError,
    InvalidStateError,
    LeaseLostError,
    TaskNotFoundError,
)
from fairque.queue.calls import Settlement
from fairque.queue.results import FailOutcome, FinishOutcome
from fairque.queue.scripts import SCRIPT_NAMES, function_name
from tests.timing import wait_until

from .conftest import QueueFactory

pytestmark = pytest.mark.both_queues


def test_a_record_leaves_its_id_and_a_normal_priority_out_and_reads_back_with_them(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="own-id"))
    queue.push(Task.create("u", task_id="old-id"))
    fields = redis_client.hkeys(queue.keys.task("own-id"))
    assert b"task_id" not in fields and b"priority" not in fields  # the key, NORMAL
    assert b"max_retries" not in fields and b"retry_delay_seconds" not in fields  # defaults
    redis_client.hset(queue.keys.task("old-id"), mapping={"task_id": "old-id", "priority": "3"})
    claimed = queue.pop_many(2)  # written before: with both
    assert [(t.task_id, t.priority) for t in claimed] == [
        ("own-id", Priority.NORMAL),
        ("old-id", Priority.NORMAL),
    ]
    assert queue.get_stats()["users"]["u"].get("queued_by_priority") is None  # counted down
    queue.requeue(claimed[0])
    queue.cancel("own-id")
    assert queue.get_stats()["states"]["queued"] == 0
    own = queue.get_task("own-id")
    assert own.task_id == "own-id" and (own.max_retries, own.retry_delay_seconds) == (3, 1.0)
    assert queue.get_task("old-id").priority is Priority.NORMAL


def test_a_queue_default_other_than_the_librarys_is_written_into_the_record(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(default_max_retries=5, default_retry_delay_seconds=1.0)
    queue.push(Task.create("u", task_id="t"))
    assert redis_client.hget(queue.keys.task("t"), "max_retries") == b"5"
    assert not redis_client.hexists(queue.keys.task("t"), "retry_delay_seconds")
    task = queue.get_task("t")
    assert (task.max_retries, task.retry_delay_seconds) == (5, 1.0)


def test_finish_records_result_duration_and_times(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", payload={"order": 7}, task_id="t1"))
    task = queue.pop()
    assert task is not None and task.state is TaskState.STARTED and task.attempts == 1
    assert isinstance(task, TaskRecord) and task.claim_token == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.result = "changed here"  # type: ignore[misc]
    assert queue.finish(task, {"total": 99.99}, duration=0.25) is TaskState.FINISHED
    done = queue.get_task("t1")
    assert isinstance(done, TaskRecord)
    assert done.state is TaskState.FINISHED
    assert done.result == {"total": 99.99} and done.duration == 0.25
    assert done.payload == {"order": 7}
    assert done.enqueued_at is not None and done.started_at is not None
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert queue.pop() is None


def test_failure_retries_with_exponential_backoff_then_fails(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="flaky", max_retries=2, retry_delay_seconds=0.2))
    # delay * 2^(attempt-1) times a jitter factor in [0.5, 1): 0.1-0.2 s, then 0.2-0.4 s
    # after the moment of the failure, somewhere between `before` and `after`.
    for attempt, (shortest, longest) in ((1, (0.1, 0.2)), (2, (0.2, 0.4))):
        task = queue.pop()
        assert task is not None and task.attempts == attempt
        before = time.time()
        outcome = queue.fail(task, ValueError(f"boom {attempt}"))
        after = time.time()
        assert outcome.state is TaskState.SCHEDULED and outcome.retry_at is not None
        assert before + shortest - 0.02 <= outcome.retry_at <= after + longest + 0.02
        assert queue.get_task("flaky").state is TaskState.SCHEDULED
        assert queue.pop() is None  # not before its time
        wait_until(lambda: queue.promote_due() == 1, 5)
    task = queue.pop()
    assert task is not None and task.attempts == 3
    assert queue.fail(task, ValueError("final")).state is TaskState.FAILED
    failed = queue.get_task("flaky")
    assert failed.state is TaskState.FAILED
    assert failed.error is not None and failed.error["type"] == "ValueError"
    assert failed.error["message"] == "final" and "ValueError: final" in failed.error["traceback"]


def test_enqueued_at_is_when_a_task_was_first_queued_or_pushed_to_wait(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue()
    before = time.time()
    queue.push(Task.create("u", task_id="now", retry_delay_seconds=0.05))
    queue.push(Task.create("u", task_id="waits", depends_on=["now"]))
    after = time.time()
    assert not redis_client.hexists(queue.keys.task("now"), "enqueued_at")  # its stamp says
    assert redis_client.hexists(queue.keys.task("waits"), "enqueued_at")  # it waited first
    first = queue.get_task("now").enqueued_at
    assert first is not None and before - 0.05 <= first <= after + 0.05
    task = queue.pop()
    assert task is not None and task.enqueued_at == first
    queue.fail(task, ValueError("again"))  # a retry queues it again, with a new stamp
    wait_until(lambda: queue.promote_due() == 1, 5)
    again = queue.get_task("now")
    assert again.state is TaskState.QUEUED and again.enqueued_at == first
    assert queue.get_stats()["users"]["u"]["next_task_age"] >= 0


def test_a_non_retryable_failure_ends_at_once(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t", max_retries=5))
    task = queue.pop()
    assert task is not None
    assert queue.fail(task, "not allowed", retryable=False).state is TaskState.FAILED


def test_execute_after_waits_in_scheduled_state(make_queue: QueueFactory) -> None:
    queue = make_queue()
    result = queue.push(Task.create("u", task_id="later", execute_after=time.time() + 0.3))
    assert result["state"] == "scheduled"
    assert queue.promote_due() == 0 and queue.pop() is None
    wait_until(lambda: queue.promote_due() == 1, 5)
    task = queue.pop()
    assert task is not None and task.task_id == "later"


def test_expired_lease_goes_back_to_the_front_of_its_queue(make_queue: QueueFactory) -> None:
    queue = make_queue(lease_seconds=0.2)
    queue.push_batch([Task.create("u", task_id=f"t{n}") for n in range(3)])
    lost = queue.pop()
    assert lost is not None and lost.task_id == "t0"
    assert queue.extend_lease(lost) == {"t0": "ok"}  # the holder had it: an attempt
    assert queue.reclaim_expired() == (0, 0)
    wait_until(lambda: queue.reclaim_expired() == (1, 0), 5)
    again = queue.pop()
    assert again is not None and again.task_id == "t0"
    assert again.attempts == 2 and again.recoveries == 1 and again.claim_token == 2
    with pytest.raises(LeaseLostError):  # the first claim is fenced off
        queue.finish(lost, "late")
    assert queue.finish(again, "on time") is TaskState.FINISHED
    assert queue.get_task("t0").result == "on time"


def test_lease_renewal_keeps_a_task_claimed(make_queue: QueueFactory) -> None:
    queue = make_queue(lease_seconds=0.3)
    queue.push(Task.create("u", task_id="long"))
    task = queue.pop()
    assert task is not None
    for _ in range(4):
        time.sleep(0.1)
        assert queue.extend_lease(task) == {"long": "ok"}
        assert queue.reclaim_expired() == (0, 0)
    assert queue.finish(task) is TaskState.FINISHED
    assert queue.extend_lease(task) == {"long": "lost"}


def test_recoveries_are_bounded(make_queue: QueueFactory) -> None:
    queue = make_queue(lease_seconds=0.05, max_recoveries=1)
    queue.push(Task.create("u", task_id="poison", max_retries=10))
    for expected in ((1, 0), (0, 1)):
        assert queue.pop() is not None
        wait_until(lambda expected=expected: queue.reclaim_expired() == expected, 5)
    dead = queue.get_task("poison")
    assert dead.state is TaskState.FAILED and dead.error is not None
    assert dead.error["type"] == "LeaseExpired"


def test_requeue_hands_a_task_back_without_counting_an_attempt(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id="a"), Task.create("u", task_id="b")])
    task = queue.pop()
    assert task is not None and task.task_id == "a"
    assert queue.requeue(task) is TaskState.QUEUED
    again = queue.pop()
    assert again is not None and again.task_id == "a" and again.attempts == 1


def test_cancel_in_each_state(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="queued"))
    queue.push(Task.create("u", task_id="later", execute_after=time.time() + 60))
    queue.push(Task.create("u", Priority.CRITICAL, task_id="running"))
    running = queue.pop()
    assert running is not None and running.task_id == "running"
    assert queue.cancel("queued") == "canceled"
    assert queue.cancel("later") == "canceled"
    assert queue.cancel("running") == "requested"
    assert queue.pop() is None  # the canceled queued task left its queue
    assert queue.extend_lease(running) == {"running": "cancel"}
    assert queue.finish(running, "done anyway") is TaskState.CANCELED
    for task_id in ("queued", "later", "running"):
        assert queue.get_task(task_id).state is TaskState.CANCELED
    with pytest.raises(InvalidStateError, match="canceled"):
        queue.cancel("queued")
    with pytest.raises(TaskNotFoundError):
        queue.cancel("nope")
    assert queue.get_stats()["active_users"] == 0


def test_delete_removes_every_trace(make_queue: QueueFactory, redis_client: redis.Redis) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id="x"), Task.create("u", task_id="y")])
    assert queue.delete_task("x") is TaskState.QUEUED
    with pytest.raises(TaskNotFoundError):
        queue.get_task("x")
    with pytest.raises(TaskNotFoundError):
        queue.delete_task("x")
    task = queue.pop()
    assert task is not None and task.task_id == "y"
    assert queue.delete_task("y") is TaskState.STARTED  # the seed's pop-then-delete
    with pytest.raises(LeaseLostError):
        queue.finish(task)
    stats = queue.get_stats()
    assert stats["tasks_active"] == 0 and stats["users"]["u"]["queued"] == 0
    assert not redis_client.exists(queue.keys.task("y"))


def test_an_active_task_id_cannot_be_pushed_twice(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="same", payload={"v": 1}))
    with pytest.raises(DuplicateTaskError, match="still active"):
        queue.push(Task.create("u", task_id="same", payload={"v": 2}))
    assert queue.get_task("same").payload == {"v": 1}
    task = queue.pop()
    assert task is not None
    queue.finish(task)
    queue.push(Task.create("u", task_id="same", payload={"v": 3}))  # ended ids may be reused
    assert queue.get_task("same").payload == {"v": 3}


def test_batch_push_is_all_or_nothing(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="taken"))
    batch = [Task.create("u", task_id="new-1"), Task.create("v", task_id="taken")]
    with pytest.raises(DuplicateTaskError):
        queue.push_batch(batch)
    with pytest.raises(TaskNotFoundError):
        queue.get_task("new-1")
    with pytest.raises(DuplicateTaskError):
        queue.push_batch([Task.create("u", task_id="twin"), Task.create("u", task_id="twin")])
    assert queue.get_stats()["tasks_queued"] == 1


def test_functions_reload_after_a_function_flush(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue()
    queue.push(Task.create("u"))
    redis_client.function_flush()  # as a restart of a server without persistence would
    queue.push(Task.create("u"))  # one call: loaded, sent again
    assert redis_client.function_list()  # the library is back
    redis_client.function_flush()
    pushes = [queue.calls.push_one(Task.create("u", task_id=f"p{n}")) for n in range(3)]
    outcomes = queue.run_scripts(pushes)  # a pipeline: each call sent again, once
    assert [o["task_id"] for o in outcomes] == ["p0", "p1", "p2"]  # type: ignore[index]
    assert len(queue.pop_many(10)) == 5


def test_every_script_is_a_function_and_each_call_reads_its_own_keys_and_time(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    """The library's helpers are defined once; what they read from KEYS, ARGV and the
    clock is set again by every call (the per-call blocks of the .lua files)."""
    ours, other = make_queue(), make_queue(stats_prefix="other")
    ours.push(Task.create("u", task_id="a"))
    listed = str(redis_client.function_list())  # RESP2: nested lists of names and values
    assert all(f"'{function_name(n)}'" in listed for n in SCRIPT_NAMES), listed[:500]
    other.push(Task.create("u", task_id="b"))
    now = redis_client.time()
    wait_until(lambda: redis_client.time() > (now[0], now[1] + 2000), 5, "the clock to move")
    ours.push(Task.create("u", task_id="c"))
    for queue, present, absent in ((ours, "ac", "b"), (other, "b", "ac")):
        assert [redis_client.exists(queue.keys.task(t)) for t in present] == [1] * len(present)
        assert [redis_client.exists(queue.keys.task(t)) for t in absent] == [0] * len(absent)
    first, last = ours.get_task("a"), ours.get_task("c")
    assert last.enqueued_at is not None and first.enqueued_at is not None
    assert last.enqueued_at > first.enqueued_at  # the time of each call, not of the first


def test_stats_count_states_per_user_and_totals(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.push_batch([Task.create("a") for _ in range(3)] + [Task.create("b") for _ in range(2)])
    first = queue.pop()
    assert first is not None
    queue.finish(first)
    second = queue.pop()
    assert second is not None
    stats = queue.get_stats()
    assert stats["tasks_active"] == 4
    assert stats["states"] == {
        "queued": 3,
        "started": 1,
        "deferred": 0,
        "finished": 1,
        "failed": 0,
        "canceled": 0,
        "scheduled": 0,
    }
    assert stats["totals"] == {"finished": 1}
    users = stats["users"]
    assert users[first.user_id]["finished"] == 1
    assert users["a"]["queued"] + users["b"]["queued"] == 3
    assert stats["active_users"] == 2


def test_settle_types_a_success_apart_from_a_failure(make_queue: QueueFactory) -> None:
    queue = make_queue()
    pushed = queue.push(Task.create("u", task_id="ok", max_retries=0))
    assert pushed == {"success": True, "task_id": "ok", "state": "queued"}
    queue.push_batch([Task.create("u", task_id="bad", max_retries=1, retry_delay_seconds=60)])
    ok, bad = sorted(queue.pop_many(2), key=lambda t: t.task_id != "ok")
    settlements = [
        Settlement(True, ok.task_id, ok.claim_token, '"done"', 0.01),
        Settlement(False, bad.task_id, bad.claim_token, '{"type": "ValueError"}', 0.01),
        Settlement(True, "ghost", 1, "null", 0.01),
    ]
    results, claimed = queue.run_script(queue.calls.settle(queue.config.worker, settlements, 0))
    assert claimed == []
    assert results[0] == FinishOutcome(TaskState.FINISHED)
    assert isinstance(results[1], FailOutcome) and results[1].state is TaskState.SCHEDULED
    assert results[1].retry_at is not None and results[1].retry_at > time.time() + 20
    assert isinstance(results[2], LeaseLostError)
