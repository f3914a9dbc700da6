"""Return values as arguments and task mapping, on real workers: instances are created
in the step that ends their upstream, queued fairly, retried and cleared one by one,
and the reduce step receives their results in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.dynamic import extract, load, transform

from fairque import AsyncTaskQueue, AsyncWorker, Pipeline, TaskQueue, TaskState
from fairque.core.errors import ClearError, TaskError
from fairque.dag.loader import load_dag_file
from fairque.dag.runs import trigger
from fairque.queue.runs import RunHandle, RunState
from fairque.tasks import run_in_process
from fairque.worker import Worker
from tests.integration import control_tasks as ctl
from tests.integration import dynamic_tasks as dt
from tests.timing import budget

from .conftest import QueueFactory, background_worker

S = TaskState


@pytest.fixture
def worker(redis_url: str, redis_client: Any) -> Iterator[Worker]:
    with background_worker(redis_url, "w-dyn", allowed_modules=["tests", "examples"]) as running:
        yield running


def _run(queue: TaskQueue, graph: Any) -> tuple[RunHandle, dict[str, Any]]:
    handle = queue.enqueue(graph)
    handle.wait(timeout=budget(30))
    info = queue.get_run(handle.run_id)
    return handle, {name: t and t.state for name, t in info.tasks.items()}


def test_a_chain_passes_return_values_through_xcom(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    handle, states = _run(queue, load(transform(extract()["rows"], factor=3)))
    assert set(states.values()) == {S.FINISHED}
    assert handle.result("load") == {"source": "?", "count": 5, "total": 450}
    pulls = [(e["producer"], e["consumer"]) for e in handle.lineage() if e["kind"] == "pull"]
    assert pulls == [("extract", "transform"), ("transform", "load")]


def test_a_plain_push_of_such_a_task_says_where_it_works(make_queue: QueueFactory) -> None:
    queue = make_queue()
    with pytest.raises(TaskError, match=r"queue\.enqueue"):
        queue.push(load(transform(extract()["rows"])))
    assert queue.pop() is None  # nothing was written


def test_a_fan_out_of_50_reduces_the_results_in_order(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    graph = dt.total(dt.square.partial(offset=1).expand(n=dt.numbers(50)))
    handle, states = _run(queue, graph)
    instances = [f"square[{i}]" for i in range(50)]
    assert all(states[name] is S.FINISHED for name in instances), states
    assert states["square"] is S.FINISHED and states["total"] is S.FINISHED
    assert handle.result("total") == {"count": 50, "values": [i * i + 1 for i in range(50)]}
    record = queue.get_task(f"{handle.run_id}:square[7]")
    assert record.map_index == 7 and record.result == 50 and record.user_id == "default"
    assert queue.get_task(f"{handle.run_id}:square").map_count == 50
    assert queue.get_run(handle.run_id).state is RunState.SUCCESS


def test_instances_beyond_half_the_step_size_are_created_in_later_steps(
    make_queue: QueueFactory, redis_url: str
) -> None:
    queue = make_queue(step_size=4)  # two instances per call
    handle = queue.enqueue(dt.total(dt.square.expand(n=dt.numbers(11))))
    source = queue.pop()
    assert source is not None and source.name == "numbers"
    queue.finish(source, list(range(11)))
    assert queue.get_task(f"{handle.run_id}:square").map_count == 11
    made = [name for name in queue.get_run(handle.run_id).tasks if name.startswith("square[")]
    assert made == ["square[0]", "square[1]"]  # the rest in later steps
    with background_worker(redis_url, "w-map", step_size=4, allowed_modules=["tests"]):
        handle.wait(timeout=budget(30))
    assert handle.result("total") == {"count": 11, "values": [i * i for i in range(11)]}
    assert queue.get_run(handle.run_id).state is RunState.SUCCESS


def test_a_mapped_task_over_a_key_of_a_dict(make_queue: QueueFactory, worker: Worker) -> None:
    queue = make_queue()
    handle, _ = _run(queue, dt.total(dt.square.expand(n=dt.keyed(4)["items"])))
    assert handle.result("total")["values"] == [0, 1, 4, 9]


def test_an_empty_list_skips_the_mapped_task_and_its_downstream(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    handle, states = _run(queue, dt.total(dt.square.expand(n=dt.numbers(0))))
    assert states == {"numbers": S.FINISHED, "square": S.CANCELED, "total": S.CANCELED}
    square = handle.task("square")
    assert square.error is not None and "empty list" in square.error["message"]
    assert not square.upstream_failed  # skipped, not failed
    assert queue.get_run(handle.run_id).state is RunState.SUCCESS


def test_more_than_max_map_length_fails_the_upstream(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    limited = dt.square.expand(n=dt.numbers(6)).with_options(max_map_length=5)
    handle, states = _run(queue, dt.total(limited))
    assert states == {"numbers": S.FAILED, "square": S.CANCELED, "total": S.CANCELED}
    error = handle.task("numbers").error
    assert error is not None and error["type"] == "MapError"
    assert "a list of 6 elements, more than max_map_length 5" in error["message"]


def test_a_value_that_is_not_a_list_fails_the_upstream(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    handle, states = _run(queue, dt.total(dt.square.expand(n=dt.not_a_list())))
    assert states["not_a_list"] is S.FAILED and states["square"] is S.CANCELED
    assert "not a list" in handle.task("not_a_list").error["message"]  # type: ignore[index]


def test_a_failing_instance_is_retried_on_its_own(make_queue: QueueFactory, worker: Worker) -> None:
    queue = make_queue()
    handle, states = _run(queue, dt.total(dt.flaky_square.expand(n=dt.numbers(5))))
    assert states["total"] is S.FINISHED
    assert handle.result("total")["values"] == [0, 1, 4, 9, 16]
    attempts = {i: handle.task(f"flaky_square[{i}]").attempts for i in range(5)}
    assert attempts == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1}


def test_a_failed_instance_fails_the_mapped_task_and_clear_reruns_only_it(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    handle, states = _run(queue, dt.total(dt.broken_square.expand(n=dt.numbers(4))))
    assert states["broken_square[2]"] is S.FAILED
    assert states["broken_square"] is S.FAILED and states["total"] is S.CANCELED
    assert "broken_square[2] failed" in handle.task("broken_square").error["message"]  # type: ignore[index]
    before = handle.task("broken_square[0]").finished_at
    queue.clear_run(handle.run_id, tasks=["broken_square[1]"])
    queue.wait_for([f"{handle.run_id}:total"], timeout=budget(20))
    states = {n: t and t.state for n, t in queue.get_run(handle.run_id).tasks.items()}
    assert states["broken_square[1]"] is S.FINISHED, handle.task("broken_square[1]").attempt_history
    assert states["broken_square[2]"] is S.FAILED  # not cleared: fails the mapped task again
    assert states["broken_square"] is S.FAILED
    assert handle.task("broken_square[1]").attempts == 2
    assert handle.task("broken_square[0]").finished_at == before  # not run again
    with pytest.raises(ClearError, match="already expanded"):
        queue.clear_run(handle.run_id, tasks=["numbers"])


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("file", ["taskflow_chain.yaml", "taskflow_chain_py.py"])
def test_the_example_chains_run_on_workers(
    make_queue: QueueFactory, worker: Worker, file: str
) -> None:
    (dag,) = load_dag_file(REPO / "dags" / file, ("examples", "dags")).dags
    handle = trigger(make_queue(), dag)
    handle.wait(timeout=budget(30))
    assert handle.result("load") == {"source": "orders", "count": 5, "total": 450}


@pytest.mark.parametrize("file", ["mapped_fanout.yaml", "mapped_fanout_py.py"])
def test_the_example_fan_outs_run_on_workers(
    make_queue: QueueFactory, worker: Worker, file: str
) -> None:
    queue = make_queue()
    (dag,) = load_dag_file(REPO / "dags" / file, ("examples", "dags")).dags
    handle = trigger(queue, dag, conf={"count": 50})
    handle.wait(timeout=budget(30))
    summary = handle.result("summarize")
    assert summary == {
        "files": 50,
        "lines": 2450,
        "first": "in/file_000.csv",
        "last": "in/file_049.csv",
    }
    results = handle.result("process")
    assert [r["file"] for r in results] == [f"in/file_{i:03d}.csv" for i in range(50)]
    info = queue.get_run(handle.run_id)
    assert info.state is RunState.SUCCESS and len(info.tasks) == 53
    shown = info.to_dict()["tasks"]
    assert shown["process[49]"]["map_index"] == 49 and shown["process"]["map_count"] == 50
    empty = trigger(queue, dag, conf={"count": 0})
    assert empty.wait(timeout=budget(30)) == {
        "list_files": S.FINISHED,
        "process": S.CANCELED,
        "summarize": S.CANCELED,
    }


def test_async_tasks_on_the_async_worker_get_their_arguments_awaited(
    make_config: Any, make_queue: QueueFactory
) -> None:
    config = make_config(allowed_modules=["tests"], poll_interval_seconds=0.05)
    queue = make_queue()
    handle = queue.enqueue(dt.total(dt.async_double.expand(n=dt.numbers(6))))

    async def work() -> None:
        worker = AsyncWorker(config)
        running = worker.start_background()
        try:
            async with AsyncTaskQueue(config) as aqueue:
                await aqueue.wait_for([f"{handle.run_id}:total"], timeout=budget(20))
        finally:
            worker.stop(graceful=False)
            await running
            await worker.queue.close()

    asyncio.run(work())
    assert handle.result("total") == {"count": 6, "values": [0, 2, 4, 6, 8, 10]}
    consumers = {e["consumer"] for e in handle.lineage() if e["kind"] == "pull"}
    assert consumers == {f"async_double[{i}]" for i in range(6)} | {"total"}


def test_canceling_a_run_cancels_its_instances_and_the_mapped_task(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    handle = queue.enqueue(dt.total(dt.square.expand(n=dt.numbers(3))))
    numbers = queue.pop()
    assert numbers is not None and numbers.name == "numbers"
    queue.finish(numbers, [1, 2, 3])
    assert queue.get_task(f"{handle.run_id}:square[2]").state is S.QUEUED
    queue.cancel_run(handle.run_id)
    states = {n: t and t.state for n, t in queue.get_run(handle.run_id).tasks.items()}
    assert states["numbers"] is S.FINISHED
    assert all(states[n] is S.CANCELED for n in states if n != "numbers"), states
    assert queue.get_run(handle.run_id).state is RunState.CANCELED
    assert queue.pop() is None


def test_a_mapped_task_over_a_mapped_tasks_results(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    squares = dt.square.expand(n=dt.numbers(4))
    handle, states = _run(queue, dt.total(dt.square.expand(n=squares)))
    assert handle.result("total")["values"] == [0, 1, 16, 81]
    assert states["square__1[3]"] is S.FINISHED
    too_many = dt.square.expand(n=dt.square.expand(n=dt.numbers(3))).with_options(max_map_length=2)
    handle, states = _run(queue, dt.total(too_many))
    assert states["square"] is S.FINISHED and states["square__1"] is S.FAILED
    assert "more than max_map_length 2" in handle.task("square__1").error["message"]  # type: ignore[index]


def test_a_mapped_task_whose_source_a_branch_skipped_is_skipped_too(
    make_queue: QueueFactory, worker: Worker
) -> None:
    # none_failed lets the mapped task "run" after a skipped source: nothing to map over
    source = dt.numbers(3)
    mapped = dt.square.expand(n=source).with_options(trigger_rule="none_failed")
    graph = (ctl.choose("right") >> (source | ctl.right())).union(Pipeline.of(mapped))
    why = "nothing to map over: numbers ended skipped (skipped)"
    handle, states = _run(make_queue(), graph)
    assert states == {
        "choose": S.FINISHED,
        "numbers": S.CANCELED,
        "right": S.FINISHED,
        "square": S.CANCELED,
    }
    square = handle.task("square")
    assert square.skipped and square.error is not None and square.error["message"] == why
    in_process = run_in_process(graph)
    assert in_process.tasks["square"].display_state == "skipped"
    assert in_process.errors["square"] == why
