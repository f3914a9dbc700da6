"""max_active_tasks of a DAG (YAML and Python): at most that many of its tasks started at
once across its runs; the others wait without blocking other work; bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from fairque import Task, TaskQueue
from fairque.core.errors import DagError
from fairque.dag.loader import load_dag_file
from fairque.dag.model import DAG
from fairque.dag.runs import trigger
from tests.integration import clear_tasks

from .conftest import QueueFactory

YAML = """\
dag_id: wide
max_active_tasks: 2
default_args:
  queue: default
tasks:
{tasks}
"""


def _wide_yaml(tmp_path: Path, limit: object = 2) -> Path:
    tasks = "\n".join(f"  t{i}:\n    callable: tests.integration.jobs:noop" for i in range(4))
    text = YAML.format(tasks=tasks).replace("max_active_tasks: 2", f"max_active_tasks: {limit}")
    path = tmp_path / "wide.yaml"
    path.write_text(text)
    return path


def _drain(queue: TaskQueue) -> list[str]:
    served = []
    while (task := queue.pop()) is not None:
        served.append(task.task_id)
    return served


def test_a_yaml_dags_tasks_run_at_most_max_active_tasks_at_once_across_runs(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    result = load_dag_file(_wide_yaml(tmp_path))
    assert result.ok, result.problems
    (dag,) = result.dags
    assert dag.max_active_tasks == 2
    queue = make_queue()
    trigger(queue, dag, run_id="wide__1")
    trigger(queue, dag, run_id="wide__2")
    queue.push(Task.create("other"))
    served = _drain(queue)
    dag_tasks = [t for t in served if t.startswith("wide__")]
    assert len(dag_tasks) == 2 and len(served) == 3  # the other work was served
    for task_id in dag_tasks:
        queue.finish(queue.get_task(task_id))
    assert len(_drain(queue)) == 2  # two slots freed, two more started
    assert queue.pop() is None


def test_a_python_dag_takes_max_active_tasks_and_a_reclaim_frees_its_slot(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    pipeline = clear_tasks.extract("unused") | clear_tasks.load("unused")
    dag = DAG(dag_id="narrow", pipeline=pipeline, max_active_tasks=1)
    queue = make_queue()
    trigger(queue, dag, run_id="narrow__1")
    first = queue.pop()
    assert first is not None and queue.pop() is None
    redis_client.zadd(queue.keys.state("started"), {first.task_id: 0})  # lease expired
    assert queue.reclaim_expired() == (1, 0)
    again = queue.pop()
    assert again is not None and queue.pop() is None  # one at a time, even after a reclaim
    queue.finish(again)
    last = queue.pop()
    assert last is not None and last.task_id != again.task_id
    queue.finish(last)


def test_without_max_active_tasks_nothing_is_gated(make_queue: QueueFactory) -> None:
    pipeline = clear_tasks.extract("unused") | clear_tasks.load("unused")
    queue = make_queue()
    trigger(queue, DAG(dag_id="free", pipeline=pipeline), run_id="free__1")
    assert len(_drain(queue)) == 2
    assert queue.list_pools() == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_bad_max_active_tasks_is_refused(bad: object, tmp_path: Path) -> None:
    pipeline = clear_tasks.extract("unused")
    with pytest.raises(DagError, match="max_active_tasks"):
        DAG(dag_id="bad", pipeline=pipeline, max_active_tasks=bad)  # type: ignore[arg-type]
    result = load_dag_file(_wide_yaml(tmp_path, bad))
    assert not result.ok and "max_active_tasks" in str(result.problems)
