"""Pipelines on real workers: operators, runs, XCom across tasks, trigger rules,
many concurrent runs, and bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fairque import Task, TaskQueue, TaskState, Worker
from fairque.core.errors import DagCycleError, QueueError, UnknownDependencyError
from tests.integration import flows
from tests.timing import budget

from .conftest import ConfigFactory, QueueFactory

pytestmark = pytest.mark.both_queues

S = TaskState


@pytest.fixture
def queue(make_queue: QueueFactory) -> TaskQueue:
    """The producer's queue: a TaskQueue, or an AsyncTaskQueue (see ``both_queues``)."""
    return make_queue()


@pytest.fixture
def workers(make_config: ConfigFactory) -> Iterator[list[Worker]]:
    """Two workers with two slots each, running in the background."""
    started = []
    for n in range(2):
        config = make_config(
            worker_id=f"w{n}",
            allowed_modules=["tests"],
            max_concurrent_tasks=2,
            poll_interval_seconds=0.1,
        )
        worker = Worker(config)
        worker.start_background()
        started.append(worker)
    yield started
    for worker in started:
        worker.stop(graceful=False)
    for worker in started:
        assert worker.join(budget(10))
        worker.queue.close()


def test_diamond_runs_branches_in_parallel_and_joins_after_both(
    queue: TaskQueue, workers: list[Worker]
) -> None:
    pipeline = flows.extract() >> (flows.branch_b() | flows.branch_c()) >> flows.join_d()
    run = queue.enqueue(pipeline)
    assert run.wait(timeout=budget(20)) == {
        "extract": S.FINISHED,
        "b": S.FINISHED,
        "c": S.FINISHED,
        "d": S.FINISHED,
    }
    b, c, d = run.task("b"), run.task("c"), run.task("d")
    assert b.started_at and c.started_at and b.finished_at and c.finished_at and d.started_at
    assert b.started_at < c.finished_at and c.started_at < b.finished_at  # overlapped
    assert d.started_at >= max(b.finished_at, c.finished_at)
    assert run.result("d") == 20 + 30
    lineage = run.lineage()
    pulls = {(e["key"], e["consumer"]) for e in lineage if e["kind"] == "pull"}
    assert {("extracted", "b"), ("extracted", "c"), ("from_b", "d"), ("from_c", "d")} <= pulls
    pushes = {(e["key"], e["producer"]) for e in lineage if e["kind"] == "push"}
    assert {("extracted", "extract"), ("from_b", "b"), ("from_c", "c")} <= pushes


def test_a_failure_cancels_what_cannot_run_and_cleanup_still_runs(
    queue: TaskQueue, workers: list[Worker]
) -> None:
    pipeline = flows.fails() >> (flows.after_failure() | flows.cleanup())
    run = queue.enqueue(pipeline)
    states = run.wait(timeout=budget(20))
    assert states == {"fails": S.FAILED, "after_failure": S.CANCELED, "cleanup": S.FINISHED}
    assert run.result("cleanup") == "cleaned"
    with pytest.raises(QueueError, match="canceled"):
        run.result("after_failure")


def test_the_same_pipeline_fifty_times_at_once(queue: TaskQueue, workers: list[Worker]) -> None:
    pipeline = flows.extract() >> (flows.branch_b(0.0) | flows.branch_c(0.0)) >> flows.join_d()
    runs = [queue.enqueue(pipeline) for _ in range(50)]
    assert len({r.run_id for r in runs}) == 50
    for run in runs:
        assert set(run.wait(timeout=budget(60)).values()) == {S.FINISHED}
        assert run.result("d") == 50


def test_enqueue_refuses_a_cycle_and_an_unknown_dependency(queue: TaskQueue) -> None:
    a, b = flows.step(1).with_options(task_id="a"), flows.step(2).with_options(task_id="b")
    with pytest.raises(DagCycleError, match="->"):
        queue.enqueue(a >> b >> a)
    lonely = flows.step(3).with_options(task_id="lonely")
    orphan = Task.create(
        "u", task_id="x", func="tests.integration.flows:step", args=[1], depends_on=["nowhere"]
    )
    with pytest.raises(UnknownDependencyError, match="nowhere"):
        queue.enqueue(lonely >> orphan)
    assert queue.get_stats()["tasks_active"] == 0


def test_run_handle_of_a_lone_task(queue: TaskQueue, workers: list[Worker]) -> None:
    run = queue.enqueue(flows.step(41), user_id="tenant-7")
    assert run.wait(timeout=budget(10)) == {"step": S.FINISHED}
    assert run.result("step") == 42
    assert run.task("step").user_id == "tenant-7"
    with pytest.raises(QueueError, match="no task 'nope'"):
        run.result("nope")


def test_seed_quickstart_confirmation_waits_for_the_order(
    queue: TaskQueue, workers: list[Worker]
) -> None:
    first = flows.step(1).with_options(task_id="process_order")
    second = Task.create(
        "u", func="tests.integration.flows:step", args=[5], depends_on=["process_order"]
    )
    queue.push(first)
    assert queue.push(second)["state"] in ("deferred", "queued")
    states = queue.wait_for([first.task_id, second.task_id], timeout=budget(10))
    assert set(states.values()) == {S.FINISHED}
    assert queue.get_task(second.task_id).started_at >= queue.get_task("process_order").finished_at  # type: ignore[operator]


def test_runs_are_recorded_and_their_state_follows_their_tasks(
    queue: TaskQueue, workers: list[Worker]
) -> None:
    from fairque.queue.runs import RunState

    good = queue.enqueue(flows.extract() >> flows.branch_b(0.0), user_id="tenant-1")
    bad = queue.enqueue(flows.fails() >> (flows.after_failure() | flows.cleanup()))
    good.wait(timeout=budget(20))
    bad.wait(timeout=budget(20))
    info = queue.get_run(good.run_id)
    assert info.state is RunState.SUCCESS and info.tenant == "tenant-1"
    assert set(info.tasks) == {"extract", "b"} and info.ended_at is not None
    assert queue.get_run(bad.run_id).state is RunState.FAILED  # cleanup ran, run still failed
    listed = [r.run_id for r in queue.list_runs()]
    assert listed[:2] == [bad.run_id, good.run_id]  # newest first
    data = info.to_dict()
    assert data["state"] == "success" and data["tasks"]["b"]["result"] == 20


def test_a_run_id_is_created_once_ever(queue: TaskQueue) -> None:
    from fairque.core.errors import RunExistsError, RunNotFoundError

    queue.enqueue(flows.step(1), run_id="nightly__2026-11-28T09:00")
    with pytest.raises(RunExistsError):
        queue.enqueue(flows.step(1), run_id="nightly__2026-11-28T09:00")
    assert queue.get_stats()["tasks_queued"] == 1
    with pytest.raises(RunNotFoundError):
        queue.get_run("never")


def test_cancel_run_cancels_what_has_not_ended(queue: TaskQueue) -> None:
    from fairque.queue.runs import RunState

    run = queue.enqueue(flows.extract() >> flows.branch_b() >> flows.join_d())
    assert queue.get_run(run.run_id).state is RunState.QUEUED
    info = queue.cancel_run(run.run_id)
    assert info.state is RunState.CANCELED
    assert set(run.states().values()) == {S.CANCELED}
