"""A run held beyond its DAG's max_active_runs keeps all its tasks waiting, even when an
upstream inside it ends early (canceled or deleted) and its dependents' rule says run."""

from __future__ import annotations

import pytest

from fairque import Task, TaskQueue, TaskState

from .conftest import QueueFactory

pytestmark = pytest.mark.both_queues

S = TaskState


def _run(queue: TaskQueue, run_id: str) -> None:
    """n0 >> n1 (all_done), a run of the DAG 'd' with max_active_runs=1."""
    tasks = [
        Task.create("u", task_id=f"{run_id}:n0", run_id=run_id, name="n0"),
        Task.create(
            "u",
            task_id=f"{run_id}:n1",
            run_id=run_id,
            name="n1",
            depends_on=[f"{run_id}:n0"],
            trigger_rule="all_done",
        ),
    ]
    queue.enqueue_tasks(tasks, run_id, dag_id="d", max_active_runs=1)


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_an_upstream_ending_in_a_held_run_does_not_make_its_dependent_ready(
    make_queue: QueueFactory, end: str
) -> None:
    queue = make_queue()
    _run(queue, "r0")
    _run(queue, "r1")  # held: r0 has the only slot
    assert queue.get_task("r1:n1").state is S.DEFERRED
    if end == "cancel":
        queue.cancel("r1:n0")
    else:
        queue.delete_task("r1:n0")
    assert queue.get_task("r1:n1").state is S.DEFERRED  # still waits for a slot
    popped = queue.pop()
    assert popped is not None and popped.task_id == "r0:n0"
    assert queue.pop() is None
