"""Fencing across the lives of a task id, and claims whose reply was lost.

A claim token is unique across every task and every life of an id (an id pushed again
after it ended or was deleted), so a stale holder of an earlier life cannot end, renew
or hand back the new one. A pop or settle call sent again under the same claim id
answers what it did instead of claiming more, and a claim that expires before its
holder acknowledged it (by renewing the lease) costs no attempt."""

from __future__ import annotations

import pytest

from fairque import Task, TaskQueue, TaskRecord, TaskState
from fairque.core.errors import LeaseLostError
from fairque.queue.calls import Settlement
from fairque.queue.results import FinishOutcome
from fairque.tasks.context import Attempt, attempting
from fairque.tasks.xcom import RedisXCom
from tests.timing import wait_until

from .conftest import ConfigFactory, QueueFactory

pytestmark = pytest.mark.both_queues


def _claim(queue: TaskQueue, **kwargs: str) -> TaskRecord:
    task = queue.pop(**kwargs)
    assert task is not None
    return task


@pytest.mark.parametrize("end_first_life", ["delete", "finish"])
def test_a_stale_holder_of_an_earlier_life_of_the_id_is_fenced_off(
    make_queue: QueueFactory, end_first_life: str
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t"))
    stale = _claim(queue)
    if end_first_life == "delete":
        queue.delete_task("t")
    else:
        queue.finish(stale, "first life")
    queue.push(Task.create("u", task_id="t"))
    fresh = _claim(queue)
    assert fresh.claim_token != stale.claim_token
    with pytest.raises(LeaseLostError):
        queue.finish(stale, "stale")
    with pytest.raises(LeaseLostError):
        queue.fail(stale, "stale")
    with pytest.raises(LeaseLostError):
        queue.requeue(stale)
    assert queue.extend_lease(stale) == {"t": "lost"}
    settle = queue.calls.settle(
        queue.config.worker, [Settlement(True, "t", stale.claim_token, '"stale"', 0.0)], 0
    )
    results, claimed = queue.run_script(settle)
    assert isinstance(results[0], LeaseLostError) and claimed == []
    scope = fresh.xcom_scope
    stale_push = queue.calls.xcom_push(scope, "k", '"stale"', "t", ("t", stale.claim_token))
    with pytest.raises(LeaseLostError):
        queue.run_script(stale_push)
    fresh_push = queue.calls.xcom_push(scope, "k", '"fresh"', "t", ("t", fresh.claim_token))
    assert queue.run_script(fresh_push) == len('"fresh"')
    record = queue.get_task("t")
    assert (record.state, record.claim_token, record.attempts) == (
        TaskState.STARTED,
        fresh.claim_token,
        1,
    )
    assert queue.finish(fresh, "second life") is TaskState.FINISHED
    assert queue.get_task("t").result == "second life"


def test_a_pop_sent_again_under_its_claim_id_answers_what_it_claimed(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id=f"t{n}", max_retries=0) for n in range(3)])
    queue.pop_many(2, claim_id="lost-reply")  # the reply never reaches the worker
    again = queue.pop_many(2, claim_id="lost-reply")
    assert sorted(t.task_id for t in again) == ["t0", "t1"]
    assert all(t.state is TaskState.STARTED and t.attempts == 1 for t in again)
    assert queue.pop_many(2, claim_id="lost-reply") == again  # nothing more is claimed
    third = _claim(queue)
    assert third.task_id == "t2"
    for task in again:
        assert queue.finish(task, task.task_id) is TaskState.FINISHED
    done = [queue.get_task(f"t{n}") for n in range(2)]
    assert [(t.state, t.attempts, t.result) for t in done] == [
        (TaskState.FINISHED, 1, "t0"),
        (TaskState.FINISHED, 1, "t1"),
    ]
    assert queue.pop_many(2, claim_id="lost-reply") == []  # no longer held


def test_a_settle_sent_again_under_its_claim_id_records_and_claims_once(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id=f"t{n}") for n in range(3)])
    first = _claim(queue)
    settle = queue.calls.settle(
        queue.config.worker,
        [Settlement(True, first.task_id, first.claim_token, '"done"', 0.1)],
        1,
        claim_id="settle-1",
    )
    lost = queue.run_script(settle)  # the reply never reaches the worker
    again = queue.run_script(settle)
    assert again[0] == [FinishOutcome(TaskState.FINISHED)] == lost[0]
    assert [t.task_id for t in again[1]] == ["t1"] == [t.task_id for t in lost[1]]
    assert queue.get_task("t2").state is TaskState.QUEUED
    assert queue.get_stats()["totals"] == {"finished": 1}


def test_a_claim_that_expires_unacknowledged_costs_no_attempt(make_queue: QueueFactory) -> None:
    queue = make_queue(lease_seconds=0.2)
    queue.push(Task.create("u", task_id="t", max_retries=0))
    queue.pop(claim_id="lost-reply")  # the reply is lost and the worker dies
    wait_until(lambda: queue.reclaim_expired() == (1, 0), 5, "the reclaim")
    record = queue.get_task("t")
    assert (record.state, record.attempts, record.recoveries) == (TaskState.QUEUED, 0, 1)
    task = _claim(queue)
    assert task.attempts == 1
    assert queue.finish(task, "ran once") is TaskState.FINISHED


def test_a_claim_acknowledged_by_a_renewal_counts_as_an_attempt(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(lease_seconds=0.2)
    queue.push(Task.create("u", task_id="t", max_retries=0))
    task = _claim(queue)
    assert queue.extend_lease(task) == {"t": "ok"}
    wait_until(lambda: queue.reclaim_expired() == (0, 1), 5, "the reclaim")
    record = queue.get_task("t")
    assert (record.state, record.attempts) == (TaskState.FAILED, 1)
    assert record.error is not None and record.error["type"] == "LeaseExpired"


def test_a_task_pushing_xcom_after_losing_its_claim_is_refused(
    make_config: ConfigFactory,
) -> None:
    with TaskQueue(make_config()) as queue:
        queue.push(Task.create("u", task_id="t", enable_xcom=True))
        stale = _claim(queue)
        queue.delete_task("t")
        queue.push(Task.create("u", task_id="t", enable_xcom=True))
        fresh = _claim(queue)
        xcom = RedisXCom(queue)
        with attempting(Attempt(stale)), pytest.raises(LeaseLostError):
            xcom.push(stale.xcom_scope, "k", "stale", "t")
        with attempting(Attempt(fresh)):
            xcom.push(fresh.xcom_scope, "k", "fresh", "t")
        assert xcom.pull(fresh.xcom_scope, "k", "reader") == "fresh"
        assert [e["producer"] for e in xcom.lineage(fresh.xcom_scope) if e["kind"] == "push"] == [
            "t"
        ]
