"""Dependencies resolved in Redis: DEFERRED until upstreams end, released by the
script that ends them, trigger rules, cascades and bad dependency input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from fairque import Task, TaskQueue, TaskState
from fairque.core.errors import DagCycleError, DagError, UnknownDependencyError
from fairque.core.models import TRIGGER_RULES
from fairque.queue.calls import QueueCalls
from fairque.queue.scripts import expand_includes
from fairque.tasks.rules import UpstreamCounts, cancel_cause, decide_counts
from tests.timing import wait_until

from .conftest import ConfigFactory, QueueFactory

pytestmark = pytest.mark.both_queues

S = TaskState


def _end(queue: TaskQueue, task_id: str, outcome: TaskState) -> None:
    """Take ``task_id`` from the queue and end it FINISHED or FAILED (no retry)."""
    taken = []
    while (task := queue.pop()) is not None and task.task_id != task_id:
        taken.append(task)
    for other in taken:
        queue.requeue(other)
    assert task is not None, f"{task_id} was not ready"
    if outcome is S.FINISHED:
        queue.finish(task, "ok")
    else:
        queue.fail(task, "broken", retryable=False)


def _states(queue: TaskQueue, *ids: str) -> list[TaskState | None]:
    return [queue.get_task(i).state for i in ids]


def test_a_dependent_waits_deferred_until_its_upstream_finishes(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="process_order"))
    result = queue.push(Task.create("u", task_id="confirm", depends_on=["process_order"]))
    assert result["state"] == "deferred"
    assert queue.pop().task_id == "process_order"  # type: ignore[union-attr]
    assert queue.pop() is None  # the dependent is not ready
    assert queue.get_stats()["tasks_deferred"] == 1


def test_finishing_an_upstream_releases_its_dependents_in_the_same_step(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="a"))
    queue.push_batch(
        [
            Task.create("u", task_id="b", depends_on=["a"]),
            Task.create("v", task_id="c", depends_on=["a"]),
        ]
    )
    _end(queue, "a", S.FINISHED)
    assert _states(queue, "b", "c") == [S.QUEUED, S.QUEUED]
    assert sorted(t.task_id for t in queue.pop_many(5)) == ["b", "c"]


def test_a_dependent_on_an_already_finished_task_is_queued_at_once(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="done"))
    _end(queue, "done", S.FINISHED)
    assert queue.push(Task.create("u", depends_on=["done"]))["state"] == "queued"


def test_a_final_failure_cancels_dependents_transitively_with_the_reason(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push_batch(
        [
            Task.create("u", task_id="c", depends_on=["b"]),  # given out of order on purpose
            Task.create("u", task_id="a"),
            Task.create("u", task_id="b", depends_on=["a"]),
            Task.create("u", task_id="cleanup", depends_on=["b"], trigger_rule="all_done"),
        ]
    )
    _end(queue, "a", S.FAILED)
    assert _states(queue, "b", "c", "cleanup") == [S.CANCELED, S.CANCELED, S.QUEUED]
    error = queue.get_task("b").error
    assert error is not None and error["type"] == "UpstreamFailed"
    assert "upstream a ended failed" in error["message"]


def test_a_retried_upstream_does_not_release_its_dependents(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="flaky", max_retries=1, retry_delay_seconds=0))
    queue.push(Task.create("u", task_id="after", depends_on=["flaky"]))
    task = queue.pop()
    assert task is not None
    assert queue.fail(task, "once").state is S.SCHEDULED
    assert queue.get_task("after").state is S.DEFERRED


@pytest.mark.parametrize(
    ("rule", "outcomes", "expected"),
    [
        ("all_success", [S.FINISHED, S.FINISHED], S.QUEUED),
        ("all_success", [S.FINISHED, S.FAILED], S.CANCELED),
        ("all_success", [S.FAILED], S.CANCELED),  # decided before the second ends
        ("all_done", [S.FAILED, S.FAILED], S.QUEUED),
        ("all_done", [S.FINISHED], S.DEFERRED),
        ("all_failed", [S.FAILED, S.FAILED], S.QUEUED),
        ("all_failed", [S.FINISHED], S.CANCELED),
        ("one_success", [S.FINISHED], S.QUEUED),
        ("one_success", [S.FAILED, S.FAILED], S.CANCELED),
        ("one_success", [S.FAILED], S.DEFERRED),
        ("one_failed", [S.FAILED], S.QUEUED),
        ("one_failed", [S.FINISHED, S.FINISHED], S.CANCELED),
        ("none_failed", [S.FINISHED, S.FINISHED], S.QUEUED),
        ("none_failed", [S.FAILED], S.CANCELED),
        ("none_failed", [S.FINISHED], S.DEFERRED),
    ],
)
def test_trigger_rules(
    make_queue: QueueFactory, rule: str, outcomes: list[TaskState], expected: TaskState
) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id="up1"), Task.create("u", task_id="up2")])
    queue.push(Task.create("u", task_id="down", depends_on=["up1", "up2"], trigger_rule=rule))
    for upstream, outcome in zip(("up1", "up2"), outcomes, strict=False):
        _end(queue, upstream, outcome)
    assert queue.get_task("down").state is expected


def test_none_failed_runs_after_a_canceled_upstream(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id="up1"), Task.create("u", task_id="up2")])
    queue.push(
        Task.create("u", task_id="down", depends_on=["up1", "up2"], trigger_rule="none_failed")
    )
    queue.cancel("up1")
    _end(queue, "up2", S.FINISHED)
    assert queue.get_task("down").state is S.QUEUED


def test_canceling_or_deleting_an_upstream_cancels_its_dependents(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id="a"), Task.create("u", task_id="x")])
    queue.push_batch(
        [
            Task.create("u", task_id="b", depends_on=["a"]),
            Task.create("u", task_id="y", depends_on=["x"]),
        ]
    )
    assert queue.cancel("a") == "canceled"
    queue.delete_task("x")
    assert _states(queue, "b", "y") == [S.CANCELED, S.CANCELED]


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_a_reused_id_is_not_released_by_an_upstream_of_its_earlier_life(
    make_queue: QueueFactory, end: str
) -> None:
    # Found by the stateful model (tests/faults): "d" waited on "old" and ended; pushed
    # again to wait on "new", it must not be released when "old" finishes.
    queue = make_queue()
    queue.push(Task.create("u", task_id="old"))
    queue.push(Task.create("u", task_id="d", depends_on=["old"]))
    if end == "cancel":
        queue.cancel("d")
    else:
        queue.delete_task("d")
    queue.push(Task.create("u", task_id="new"))
    queue.push(Task.create("u", task_id="d", depends_on=["new"]))
    _end(queue, "old", S.FINISHED)
    assert _states(queue, "d", "new") == [S.DEFERRED, S.QUEUED]
    _end(queue, "new", S.FINISHED)
    assert _states(queue, "d") == [S.QUEUED]


def test_a_task_ready_at_push_leaves_the_waiting_set_of_its_running_upstream(
    make_queue: QueueFactory,
) -> None:
    # one_success with one upstream finished runs at once, though "b" still runs: once
    # "d" ended and was pushed again (to wait on "c"), the end of "b" must not release it.
    queue = make_queue()
    queue.push_batch([Task.create("u", task_id=i) for i in ("a", "b", "c")])
    _end(queue, "a", S.FINISHED)
    first = Task.create("u", task_id="d", depends_on=["a", "b"], trigger_rule="one_success")
    assert queue.push(first)["state"] == "queued"
    _end(queue, "d", S.FINISHED)
    queue.push(Task.create("u", task_id="d", depends_on=["c"]))
    _end(queue, "b", S.FINISHED)
    assert _states(queue, "d", "c") == [S.DEFERRED, S.QUEUED]


def test_execute_after_and_depends_on_wait_for_both(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="up"))
    later = time.time() + 0.4
    queue.push(Task.create("u", task_id="down", depends_on=["up"], execute_after=later))
    _end(queue, "up", S.FINISHED)
    assert queue.get_task("down").state is S.SCHEDULED  # upstream done, time not yet
    assert queue.pop() is None
    wait_until(lambda: queue.promote_due() == 1, 3)
    assert queue.pop().task_id == "down"  # type: ignore[union-attr]


def test_an_unknown_dependency_is_refused_and_nothing_is_written(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    with pytest.raises(UnknownDependencyError, match="'ghost'"):
        queue.push_batch(
            [Task.create("u", task_id="ok"), Task.create("u", task_id="t", depends_on=["ghost"])]
        )
    assert queue.get_stats()["tasks_active"] == 0


def test_a_self_dependency_and_a_cycle_are_refused(make_queue: QueueFactory) -> None:
    queue = make_queue()
    with pytest.raises(DagError, match="depends on itself"):
        queue.push(Task.create("u", task_id="me", depends_on=["me"]))
    with pytest.raises(DagCycleError) as caught:
        queue.push_batch(
            [
                Task.create("u", task_id="a", depends_on=["c"]),
                Task.create("u", task_id="b", depends_on=["a"]),
                Task.create("u", task_id="c", depends_on=["b"]),
            ]
        )
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    assert " -> " in str(caught.value)
    assert queue.get_stats()["tasks_active"] == 0


def test_finishing_with_an_xcom_push_key_stores_the_result_with_lineage(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push(
        Task.create(
            "u", task_id="r1:extract", run_id="r1", name="extract", xcom_push_key="extracted"
        )
    )
    task = queue.pop()
    assert task is not None
    queue.finish(task, {"records": 1000})
    stored = queue.redis.hget(queue.keys.xcom("r1"), "extracted")
    assert stored is not None and stored.endswith('{"records":1000}')
    (event,) = queue.redis.lrange(queue.keys.lineage("r1"), 0, -1)
    assert '"producer":"extract"' in event and '"kind":"push"' in event
    assert queue.redis.ttl(queue.keys.xcom("r1")) > 0


def _verdict(rule: str, counts: UpstreamCounts) -> str:
    decision = decide_counts(rule, counts)
    return cancel_cause(rule, counts) if decision == "cancel" else decision


def test_lua_decide_matches_the_python_table_on_every_count(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    """Every trigger rule, every way 0..4 upstreams can stand (each finished, failed or
    upstream_failed, skipped, or still active): the real decide() of _common.lua, run by
    the server through decide_all.lua, gives the answer of tasks/rules.py, and the same
    cause (upstream_failed or skipped) for a cancel."""
    cases = [
        (rule, total, finished, failed, canceled)
        for rule in TRIGGER_RULES
        for total in range(5)
        for finished in range(total + 1)
        for failed in range(total - finished + 1)
        for canceled in range(total - finished - failed + 1)
    ]
    assert len(cases) == len(TRIGGER_RULES) * (1 + 4 + 10 + 20 + 35)
    calls = QueueCalls(make_config())
    call = calls.call("decide_all", [json.dumps(cases)], list)  # keys and args as every script
    source = expand_includes((Path(__file__).parent / "decide_all.lua").read_text())
    replies = redis_client.eval(source, len(call.keys), *call.keys, *call.args)
    lua = [reply.decode() for reply in replies]
    python = [_verdict(rule, UpstreamCounts(*counts)) for rule, *counts in cases]
    mismatches = [
        (c, got, want) for c, got, want in zip(cases, lua, python, strict=True) if got != want
    ]
    assert mismatches == []
