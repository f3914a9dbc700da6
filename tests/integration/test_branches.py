"""Branching on real workers and in-process (``dag test``): the chosen direct downstream
tasks run, the others are skipped (CANCELED with ``skipped``), skipping propagates per
trigger rules, and a bad choice fails the branch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fairque import Pipeline, TaskGroup, TaskState, Worker
from fairque.tasks import run_in_process
from tests.integration import control_tasks as dt
from tests.timing import budget
from tests.unit import sample_tasks as st

from .conftest import QueueFactory, background_worker

S = TaskState


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    with background_worker(
        redis_url, "w-branch", allowed_modules=["tests"], max_concurrent_tasks=2
    ) as running:
        yield running


def _pipeline(which: Any) -> Pipeline:
    left, right, after = dt.left(), dt.right(), dt.after_left()
    return (dt.choose(which) >> ((left >> after) | right) >> dt.join()).union(
        Pipeline.of(right) >> dt.strict_join()
    )


EXPECTED_LEFT = {
    "choose": "finished",
    "left": "finished",
    "after_left": "finished",
    "right": "skipped",
    "join": "finished",
    "strict_join": "skipped",
}


def test_a_branch_on_a_worker_skips_what_it_did_not_choose(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    run = queue.enqueue(_pipeline("left"))
    run.wait(timeout=budget(20))
    records = {name: run.task(name) for name in EXPECTED_LEFT}
    assert {n: r.display_state for n, r in records.items()} == EXPECTED_LEFT
    right = records["right"]
    assert right.state is S.CANCELED and right.skipped and not right.upstream_failed
    assert right.error is not None and right.error["type"] == "Skipped"
    assert "branch choose followed left" in right.error["message"]
    assert records["strict_join"].skipped  # all_success after a skipped task
    # its reason names the upstream by its name in the run, shown as skipped, not canceled
    strict_reason = records["strict_join"].error["message"]  # type: ignore[index]
    assert "upstream right ended skipped, so trigger rule all_success" in strict_reason
    assert run.result("join") == "joined"
    assert queue.get_run(run.run_id).state.value == "success"
    shown = queue.get_run(run.run_id).to_dict()["tasks"]
    assert shown["right"]["state"] == "canceled" and shown["right"]["outcome"] == "skipped"
    assert shown["right"]["skipped"] is True


def test_the_same_branch_in_process() -> None:
    run = run_in_process(_pipeline("left"))
    assert {n: r.display_state for n, r in run.tasks.items()} == EXPECTED_LEFT
    assert "branch choose followed left" in run.errors["right"]
    assert run.errors["strict_join"] == "canceled by all_success: right skipped (skipped)"


@pytest.mark.parametrize("which", [None, []])
def test_a_branch_choosing_nothing_skips_every_direct_downstream(
    make_queue: QueueFactory, worker: Worker, which: Any
) -> None:
    run = make_queue().enqueue(_pipeline(which))
    states = run.wait(timeout=budget(20))
    assert states["choose"] is S.FINISHED
    skipped = {n for n in states if n != "choose"}
    assert all(run.task(n).display_state == "skipped" for n in skipped), states
    in_process = run_in_process(_pipeline(which))
    assert {n for n, r in in_process.tasks.items() if r.display_state == "skipped"} == skipped


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("after_left", 'it returned "after_left", which is not one of its direct downstream'),
        ("nowhere", 'it returned "nowhere", which is not one of its direct downstream'),
        (7, "it must return a task name or a list of task names, not 7"),
        ([1], "it must return task names (strings), not [1]"),
    ],
)
def test_a_bad_choice_fails_the_branch_without_retry(
    make_queue: QueueFactory, worker: Worker, which: Any, message: str
) -> None:
    pipeline = _pipeline(which)
    run = make_queue().enqueue(pipeline)
    states = run.wait(timeout=budget(20))
    choose = run.task("choose")
    assert states["choose"] is S.FAILED and choose.attempts == 1
    assert choose.error is not None and choose.error["type"] == "BranchError"
    assert message in choose.error["message"]
    assert "(left, right)" in choose.error["message"] or "not 7" in message or "[1]" in message
    assert run.task("left").display_state == "upstream_failed"
    in_process = run_in_process(pipeline)
    assert in_process.states["choose"] is S.FAILED
    assert message in in_process.errors["choose"]
    assert in_process.tasks["left"].display_state == "upstream_failed"


def test_a_branch_inside_a_group_names_its_targets_relative_to_the_group(
    make_queue: QueueFactory, worker: Worker
) -> None:
    with TaskGroup("work") as work:
        dt.choose("right") >> (dt.left() | dt.right())
    pipeline = work >> dt.join()
    run = make_queue().enqueue(pipeline)
    run.wait(timeout=budget(20))
    shown = {
        n: run.task(n).display_state for n in ("work.choose", "work.left", "work.right", "join")
    }
    assert shown == {
        "work.choose": "finished",
        "work.left": "skipped",
        "work.right": "finished",
        "join": "finished",
    }
    assert "branch work.choose followed work.right" in run.task("work.left").error["message"]  # type: ignore[index]
    in_process = run_in_process(pipeline)
    assert {n: r.display_state for n, r in in_process.tasks.items()} == shown


def test_clearing_a_branch_runs_it_again_and_skips_again(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    run = queue.enqueue(_pipeline("left"))
    run.wait(timeout=budget(20))
    first_skip = run.task("right").finished_at
    assert first_skip is not None
    queue.clear_run(run.run_id, tasks=["choose"])  # and its downstream
    run.wait(timeout=budget(20))
    assert (run.task("right").finished_at or 0) > first_skip  # skipped again, by the rerun
    assert {n: run.task(n).display_state for n in EXPECTED_LEFT} == EXPECTED_LEFT
    assert run.task("choose").attempts == 2


def test_choosing_a_downstream_task_that_already_ended_is_no_error(
    make_queue: QueueFactory, worker: Worker
) -> None:
    boom = st.boom().with_options(max_retries=0)
    choose = dt.choose("left").with_options(trigger_rule="all_done")
    left = dt.left()
    pipeline = boom >> choose >> (left | dt.right())
    pipeline = pipeline.union(Pipeline.of(boom) >> left)  # left also waits for boom
    run = make_queue().enqueue(pipeline)
    run.wait(timeout=budget(20))
    shown = {n: run.task(n).display_state for n in ("boom", "choose", "left", "right")}
    assert shown == {
        "boom": "failed",
        "choose": "finished",  # left was already upstream_failed: nothing to follow
        "left": "upstream_failed",
        "right": "skipped",
    }


def test_a_branch_choosing_a_task_group_follows_the_group(
    make_queue: QueueFactory, worker: Worker
) -> None:
    with TaskGroup("ingest") as ingest:
        dt.left() | dt.after_left()
    pipeline = dt.choose("ingest") >> (ingest | dt.right()) >> dt.join()
    run = make_queue().enqueue(pipeline)
    run.wait(timeout=budget(20))
    names = ("choose", "ingest.left", "ingest.after_left", "right", "join")
    shown = {n: run.task(n).display_state for n in names}
    assert shown == {
        "choose": "finished",
        "ingest.left": "finished",
        "ingest.after_left": "finished",
        "right": "skipped",
        "join": "finished",
    }
    why = "branch choose followed ingest.after_left, ingest.left"
    assert why in run.task("right").error["message"]  # type: ignore[index]
    in_process = run_in_process(pipeline)
    assert {n: in_process.tasks[n].display_state for n in names} == shown
    assert why in in_process.errors["right"]
