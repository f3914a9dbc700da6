"""Branching and task groups end to end through the command line, as the issue checks
them: ``dag validate``, ``dag trigger --wait``, ``run show`` (text and ``--json``) and
``dag render``, with a worker in the background."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from examples.dynamic import extract, list_files, load, process_file, summarize, transform
from typer.testing import CliRunner

from fairque import FairQueueConfig, TaskGroup, TaskQueue, TaskState, Worker
from tests.timing import budget, wait_until

from .conftest import QueueFactory, invoke


def _trigger(cli: CliRunner, dag_id: str, *extra: str) -> dict[str, object]:
    code, out = invoke(
        cli, "dag", "trigger", dag_id, "--wait", "--json", "--timeout", str(budget(30)), *extra
    )
    assert code == 0, out
    return json.loads(out[out.index("{") :])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_a_branch_through_the_cli(cli: CliRunner, worker: Worker, tmp_path: Path) -> None:
    assert invoke(cli, "dag", "validate", "dags/branching.yaml")[0] == 0
    run = _trigger(cli, "branching", "--conf", '{"mode": "quick"}')
    assert run["state"] == "success"
    code, out = invoke(cli, "run", "show", str(run["run_id"]), "--json")
    tasks = json.loads(out)["tasks"]
    assert tasks["full_load"]["state"] == "canceled"
    assert tasks["full_load"]["outcome"] == "skipped" and tasks["full_load"]["skipped"] is True
    assert tasks["quick_load"]["outcome"] == "finished"
    assert tasks["report"]["result"] == "report"
    code, out = invoke(cli, "run", "show", str(run["run_id"]))
    assert code == 0 and "skipped" in out
    mermaid = tmp_path / "run.mmd"
    code, out = invoke(
        cli, "dag", "render", "branching", "--run", str(run["run_id"]), "-o", str(mermaid)
    )
    assert code == 0, out
    assert "classDef skipped" in mermaid.read_text()


def test_a_group_dependency_through_the_cli(cli: CliRunner, worker: Worker, tmp_path: Path) -> None:
    assert invoke(cli, "dag", "validate", "dags/task_groups.yaml")[0] == 0
    run = _trigger(cli, "task_groups")
    assert run["state"] == "success"
    tasks = run["tasks"]
    assert isinstance(tasks, dict)
    merge, report = tasks["ingest.merge"], tasks["report"]
    assert report["started_at"] >= merge["finished_at"]  # the group's leaf ran first
    assert tasks["ingest.fetch_orders"]["started_at"] >= tasks["start"]["finished_at"]
    dot = tmp_path / "run.dot"
    code, out = invoke(
        cli, "dag", "render", "task_groups", "--run", str(run["run_id"]), "-o", str(dot)
    )
    assert code == 0, out
    assert "subgraph cluster_0" in dot.read_text()


@pytest.mark.slow
def test_a_file_sensor_through_the_cli(
    cli: CliRunner, worker: Worker, tmp_path: Path, redis_url: str
) -> None:
    target = tmp_path / "ready.csv"
    assert invoke(cli, "dag", "validate", "dags/file_sensor.yaml")[0] == 0
    code, out = invoke(
        cli, "dag", "trigger", "file_sensor", "--json", "--conf", json.dumps({"path": str(target)})
    )
    assert code == 0, out
    run_id = json.loads(out[out.index("{") :])["run_id"]
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    try:
        run = queue.get_run(run_id)
        wait_until(
            lambda: queue.get_run(run_id).tasks["wait_for_file"].pokes >= 1,  # type: ignore[union-attr]
            10,
            "the sensor's first poke",
        )
        assert queue.get_run(run_id).tasks["wait_for_file"].state is TaskState.SCHEDULED  # type: ignore[union-attr]
        target.write_text("id\n1\n")
        wait_until(lambda: queue.get_run(run_id).state.is_finished, 30, "the run's end")
    finally:
        queue.close()
    code, out = invoke(cli, "run", "show", run_id, "--json")
    shown = json.loads(out)
    assert shown["state"] == "success" and run.run_id == run_id
    assert shown["tasks"]["wait_for_file"]["pokes"] >= 1
    assert shown["tasks"]["wait_for_file"]["attempt_count"] == 1


def test_groups_hold_taskflow_chains_and_mapped_tasks_on_a_worker(
    make_queue: QueueFactory, worker: Worker
) -> None:
    with TaskGroup("etl") as etl:
        load(transform(extract()["rows"], factor=3))
    with TaskGroup("fan") as fan:
        summarize(process_file.partial(prefix="in/").expand(path=list_files(count=3)))
    run = make_queue().enqueue(etl | fan)
    states = run.wait(timeout=budget(30))
    assert all(state is TaskState.FINISHED for state in states.values()), states
    assert run.result("etl.load") == {"source": "?", "count": 5, "total": 450}
    assert run.result("fan.summarize")["files"] == 3
    assert run.task("fan.process_file[2]").map_index == 2
    alone = make_queue().enqueue(etl)  # a group is a run of its own
    assert alone.wait(timeout=budget(30)) == {
        "etl.extract": TaskState.FINISHED,
        "etl.transform": TaskState.FINISHED,
        "etl.load": TaskState.FINISHED,
    }
