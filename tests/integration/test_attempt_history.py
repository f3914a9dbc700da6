"""Attempt history (issue 12, items 1 and 4): every ended attempt of a task is kept on
its record, the current error is the last attempt's, lineage entries name the pushing
attempt, and an ended run's history is never rewritten (``cancel_run`` refuses it)."""

from __future__ import annotations

import pytest

from fairque import Task, TaskQueue, TaskRecord, TaskState
from fairque.core.errors import LeaseLostError, RunEndedError
from fairque.queue.calls import Settlement
from fairque.queue.runs import RunState
from fairque.tasks.context import Attempt, attempting
from fairque.tasks.xcom import RedisXCom
from tests.integration import flows
from tests.timing import wait_until

from .conftest import ConfigFactory, QueueFactory

pytestmark = pytest.mark.both_queues


def _claim(queue: TaskQueue, **kwargs: str) -> TaskRecord:
    task = queue.pop(**kwargs)
    assert task is not None
    return task


def _retry_now(queue: TaskQueue) -> TaskRecord:
    wait_until(lambda: queue.promote_due() > 0, 5, "the retry to come due")
    return _claim(queue)


def test_each_attempt_is_kept_and_a_success_clears_the_error(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t", max_retries=3, retry_delay_seconds=0))
    first = _claim(queue)
    queue.fail(first, RuntimeError("first"), duration=0.5)
    second = _retry_now(queue)
    queue.fail(second, {"type": "KeyError", "message": "second", "traceback": "tb"})
    third = _retry_now(queue)
    assert queue.get_task("t").error == {"type": "KeyError", "message": "second", "traceback": "tb"}
    assert queue.finish(third, 42, duration=0.25) is TaskState.FINISHED
    record = queue.get_task("t")
    assert (record.state, record.attempts, record.error, record.result) == (
        TaskState.FINISHED,
        3,
        None,
        42,
    )
    history = record.attempt_history
    assert [a["attempt"] for a in history] == [1, 2, 3]
    assert [a["outcome"] for a in history] == ["failed", "failed", "finished"]
    assert [a["duration"] for a in history] == [0.5, 0.0, 0.25]
    assert history[0]["error"]["type"] == "RuntimeError"
    assert history[0]["error"]["message"] == "first"
    assert history[1]["error"] == {"type": "KeyError", "message": "second", "traceback": "tb"}
    assert history[2]["error"] is None
    for attempt in history:
        assert attempt["worker"] == "test-worker"
        assert attempt["started_at"] <= attempt["finished_at"]


def test_a_task_failed_for_good_keeps_every_error(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t", max_retries=1, retry_delay_seconds=0))
    queue.fail(_claim(queue), ValueError("one"))
    queue.fail(_retry_now(queue), ValueError("two"), retryable=False)
    record = queue.get_task("t")
    assert record.state is TaskState.FAILED
    assert [(a["outcome"], a["error"]["message"]) for a in record.attempt_history] == [
        ("failed", "one"),
        ("failed", "two"),
    ]
    assert record.error is not None and record.error["message"] == "two"


def test_an_expired_lease_is_an_attempt_when_acknowledged_and_none_otherwise(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue(lease_seconds=0.2)
    queue.push(Task.create("u", task_id="t", max_retries=2, retry_delay_seconds=0))
    queue.pop(claim_id="lost-reply")  # never acknowledged: the worker may not have run it
    wait_until(lambda: queue.reclaim_expired() == (1, 0), 5, "the first reclaim")
    assert queue.get_task("t").attempt_history == []
    task = _claim(queue)
    assert queue.extend_lease(task) == {"t": "ok"}  # it ran, then its worker died
    wait_until(lambda: queue.reclaim_expired() == (1, 0), 5, "the second reclaim")
    (lost,) = queue.get_task("t").attempt_history
    assert (lost["attempt"], lost["outcome"], lost["duration"]) == (1, "lease_expired", None)
    assert lost["error"]["type"] == "LeaseExpired"
    queue.finish(_claim(queue), "done")
    record = queue.get_task("t")
    assert [a["outcome"] for a in record.attempt_history] == ["lease_expired", "finished"]
    assert [a["attempt"] for a in record.attempt_history] == [1, 2]


def test_a_refused_outcome_records_no_attempt(make_queue: QueueFactory) -> None:
    queue = make_queue(lease_seconds=0.2)
    queue.push(Task.create("u", task_id="t", max_retries=0))
    stale = _claim(queue)
    queue.extend_lease(stale)
    wait_until(lambda: queue.reclaim_expired() == (0, 1), 5, "the reclaim")
    with pytest.raises(LeaseLostError):
        queue.finish(stale, "too late")
    record = queue.get_task("t")
    assert [a["outcome"] for a in record.attempt_history] == ["lease_expired"]
    assert record.state is TaskState.FAILED


def test_a_requeued_claim_is_not_an_attempt(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t"))
    queue.requeue(_claim(queue))  # graceful shutdown hands it back unrun
    queue.finish(_claim(queue), 1)
    record = queue.get_task("t")
    assert [(a["attempt"], a["outcome"]) for a in record.attempt_history] == [(1, "finished")]


def test_lineage_entries_carry_the_pushing_attempt(make_config: ConfigFactory) -> None:
    with TaskQueue(make_config()) as queue:
        queue.push(Task.create("u", task_id="t", max_retries=1, retry_delay_seconds=0))
        xcom = RedisXCom(queue)
        first = _claim(queue)
        with attempting(Attempt(first)):
            xcom.push(first.xcom_scope, "k", "from 1", "t")
        queue.fail(first, "boom")
        second = _retry_now(queue)
        with attempting(Attempt(second)):
            xcom.push(second.xcom_scope, "k", "from 2", "t")
        xcom.push(second.xcom_scope, "outside", 0, "someone")  # not from a claimed task
        xcom.pull(second.xcom_scope, "k", "reader")
        with attempting(Attempt(second)):
            xcom.pull(second.xcom_scope, "k", "t")
        events = [(e["kind"], e["key"], e.get("attempt")) for e in xcom.lineage("user:u")]
        assert events == [
            ("push", "k", 1),
            ("push", "k", 2),
            ("push", "outside", None),
            ("pull", "k", None),
            ("pull", "k", 2),
        ]


def test_an_automatic_xcom_push_names_the_attempt(make_queue: QueueFactory) -> None:
    queue = make_queue()
    run = queue.enqueue(flows.extract() >> flows.branch_b())
    extract = _claim(queue)
    queue.finish(extract, {"rows": 1})
    pushes = [e for e in run.lineage() if e["kind"] == "push"]
    assert pushes and all(e["attempt"] == 1 for e in pushes)


def test_cancel_of_an_ended_run_is_refused_and_changes_nothing(make_queue: QueueFactory) -> None:
    queue = make_queue()
    run = queue.enqueue(Task.create("u", task_id="solo", name="solo"))
    (task_id,) = run.task_ids.values()
    queue.finish(_claim(queue), "done")
    assert queue.get_run(run.run_id).state is RunState.SUCCESS
    with pytest.raises(RunEndedError, match="success"):
        queue.cancel_run(run.run_id)
    info = queue.get_run(run.run_id)
    assert (info.state, info.canceled) == (RunState.SUCCESS, False)
    assert queue.get_task(task_id).state is TaskState.FINISHED


def test_cancel_of_a_running_run_still_cancels(make_queue: QueueFactory) -> None:
    queue = make_queue()
    run = queue.enqueue(flows.extract() >> flows.branch_b())
    _claim(queue)
    info = queue.cancel_run(run.run_id)
    assert info.canceled
    assert info.tasks["b"] is not None
    assert info.tasks["b"].state is TaskState.CANCELED


def test_a_settle_sent_again_after_a_lost_reply_records_the_attempt_once(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="t"))
    task = _claim(queue)
    settle = queue.calls.settle(
        queue.config.worker,
        [Settlement(True, task.task_id, task.claim_token, '"done"', 0.1)],
        0,
        claim_id="settle-1",
    )
    queue.run_script(settle)  # the reply never reaches the worker
    queue.run_script(settle)
    assert [a["outcome"] for a in queue.get_task("t").attempt_history] == ["finished"]
