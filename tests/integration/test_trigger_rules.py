"""Every trigger rule against every combination of upstream outcomes, end to end: on
the queue (the Lua scripts, upstreams ending one after another) and in-process
(``dag test``), both checked against the table of tasks/rules.py (Airflow semantics)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from fairque import Task, TaskQueue, TaskState
from fairque.core.models import TRIGGER_RULES
from fairque.tasks import Pipeline, run_in_process
from fairque.tasks.rules import UPSTREAM_FAILED, UpstreamCounts, cancel_cause, decide_counts
from tests.unit import sample_tasks as st

from .conftest import QueueFactory
from .test_queue_dependencies import _end

SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"
OUTCOMES = (SUCCESS, FAILED, UPSTREAM_FAILED, SKIPPED)
STATE_OF = {
    SUCCESS: TaskState.FINISHED,
    FAILED: TaskState.FAILED,
    UPSTREAM_FAILED: UPSTREAM_FAILED,
    SKIPPED: TaskState.CANCELED,
}


def _expected(rule: str, outcomes: Sequence[str]) -> str:
    """What the queue does with the downstream when its upstreams end in this order: the
    first decision that is not ``wait`` ('run', 'upstream_failed' or 'skipped')."""
    total = len(outcomes)
    for ended in range(total + 1):
        states = [STATE_OF[o] for o in outcomes[:ended]]
        counts = UpstreamCounts.of(states)
        counts = UpstreamCounts(total, counts.finished, counts.failed, counts.canceled)
        decision = decide_counts(rule, counts)
        if decision == "cancel":
            return cancel_cause(rule, counts)
        if decision == "run":
            return "run"
    raise AssertionError("every upstream ended, yet the rule still waits")


def _on_queue(queue: TaskQueue, case: str, rule: str, outcomes: Sequence[str]) -> str:
    """Build the case on the queue, end the upstreams in order, say what became of the
    downstream ('run', 'upstream_failed', 'skipped' or 'wait')."""
    user = f"u-{case}"
    ups = [f"{case}-up{i}" for i in range(len(outcomes))]
    for up, outcome in zip(ups, outcomes, strict=True):
        if outcome == UPSTREAM_FAILED:  # canceled by its own failed upstream
            queue.push(Task.create(user, task_id=f"{up}-root"))
            queue.push(Task.create(user, task_id=up, depends_on=[f"{up}-root"]))
        else:
            queue.push(Task.create(user, task_id=up))
    down = f"{case}-down"
    queue.push(Task.create(user, task_id=down, depends_on=ups, trigger_rule=rule))
    for up, outcome in zip(ups, outcomes, strict=True):
        if outcome == UPSTREAM_FAILED:
            _end(queue, f"{up}-root", TaskState.FAILED)
            assert queue.get_task(up).upstream_failed
        elif outcome == SKIPPED:
            queue.cancel(up)
        else:
            _end(queue, up, TaskState.FINISHED if outcome == SUCCESS else TaskState.FAILED)
    record = queue.get_task(down)
    if record.state is TaskState.QUEUED:
        queue.cancel(down)  # leave nothing ready for the next case
        return "run"
    if record.state is TaskState.CANCELED:
        assert record.error is not None
        kind = "UpstreamFailed" if record.upstream_failed else "Skipped"
        assert record.error["type"] == kind
        return UPSTREAM_FAILED if record.upstream_failed else SKIPPED
    return "wait"


def _cases(length: int) -> list[tuple[str, ...]]:
    return list(itertools.product(OUTCOMES, repeat=length))


def _check_queue(queue: TaskQueue, rule: str, sequences: list[tuple[str, ...]]) -> None:
    wrong = []
    for n, outcomes in enumerate(sequences):
        got = _on_queue(queue, f"{rule}-{n}", rule, outcomes)
        want = _expected(rule, outcomes)
        if got != want:
            wrong.append((outcomes, got, want))
    assert wrong == []


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_every_rule_on_the_queue_with_one_or_two_upstreams(
    make_queue: QueueFactory, rule: str
) -> None:
    _check_queue(make_queue(), rule, _cases(1) + _cases(2))


@pytest.mark.slow
@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_every_rule_on_the_queue_with_three_upstreams_in_every_order(
    make_queue: QueueFactory, rule: str
) -> None:
    _check_queue(make_queue(), rule, _cases(3))


def _upstream(name: str, outcome: str) -> Pipeline | Task:
    """An in-process upstream called ``name`` that ends with ``outcome``."""
    if outcome == SUCCESS:
        return st.add(1).with_options(task_id=name)
    if outcome == FAILED:
        return st.boom().with_options(task_id=name)
    if outcome == UPSTREAM_FAILED:  # all_success after a failure
        return st.boom().with_options(task_id=f"{name}-root") >> st.add(1).with_options(
            task_id=name
        )
    # skipped: one_failed after a success
    return st.add(1).with_options(task_id=f"{name}-root") >> st.add(1).with_options(
        task_id=name, trigger_rule="one_failed"
    )


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_every_rule_in_process_with_every_combination_of_upstreams(rule: str) -> None:
    wrong = []
    for outcomes in _cases(1) + _cases(2) + _cases(3):
        branches = [_upstream(f"up{i}", o) for i, o in enumerate(outcomes)]
        fan_in = Pipeline.of(branches[0]) if len(branches) == 1 else branches[0]
        for branch in branches[1:]:
            fan_in = fan_in | branch
        pipeline = fan_in >> st.add(0).with_options(task_id="down", trigger_rule=rule)
        run = run_in_process(pipeline)
        down = run.tasks["down"]
        if down.state is TaskState.FINISHED:
            got = "run"
        else:
            assert down.state is TaskState.CANCELED
            got = UPSTREAM_FAILED if down.upstream_failed else SKIPPED
        counts = UpstreamCounts.of([STATE_OF[o] for o in outcomes])
        decision = decide_counts(rule, counts)
        want = cancel_cause(rule, counts) if decision == "cancel" else decision
        if got != want:
            wrong.append((outcomes, got, want))
    assert wrong == []


def test_none_failed_does_not_run_after_an_upstream_failed_cascade(
    make_queue: QueueFactory,
) -> None:
    """The issue's case: a -> b (all_success) -> c (none_failed); a fails, so b is
    canceled as upstream_failed and c is too (it used to run)."""
    queue = make_queue()
    queue.push(Task.create("u", task_id="a"))
    queue.push(Task.create("u", task_id="b", depends_on=["a"]))
    queue.push(Task.create("u", task_id="c", depends_on=["b"], trigger_rule="none_failed"))
    queue.push(Task.create("u", task_id="d", depends_on=["c"], trigger_rule="all_done"))
    _end(queue, "a", TaskState.FAILED)
    b, c = queue.get_task("b"), queue.get_task("c")
    assert (b.state, b.upstream_failed) == (TaskState.CANCELED, True)
    assert (c.state, c.upstream_failed) == (TaskState.CANCELED, True)
    assert c.error is not None and c.error["type"] == "UpstreamFailed"
    assert "upstream b ended upstream_failed" in c.error["message"]
    assert queue.get_task("d").state is TaskState.QUEUED  # all_done still runs


def test_a_task_pushed_after_its_upstreams_ended_counts_upstream_failed_as_failed(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.push(Task.create("u", task_id="a"))
    queue.push(Task.create("u", task_id="b", depends_on=["a"]))
    queue.push(Task.create("u", task_id="skip"))
    _end(queue, "a", TaskState.FAILED)
    queue.cancel("skip")
    late = queue.push(
        Task.create("u", task_id="late", depends_on=["b"], trigger_rule="none_failed")
    )
    assert late["state"] == "canceled"
    assert queue.get_task("late").upstream_failed
    ok = queue.push(Task.create("u", task_id="ok", depends_on=["skip"], trigger_rule="none_failed"))
    assert ok["state"] == "queued"
    skipped = queue.push(Task.create("u", task_id="s", depends_on=["skip"]))
    assert skipped["state"] == "canceled"
    record = queue.get_task("s")
    assert not record.upstream_failed
    assert record.error is not None and record.error["type"] == "Skipped"


def test_pushing_a_bad_rule_is_refused(make_queue: QueueFactory) -> None:
    with pytest.raises(Exception, match="unknown trigger_rule"):
        make_queue().push(Task.create("u", task_id="x", depends_on=[], trigger_rule="sometimes"))
