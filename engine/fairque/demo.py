"""The ``fairque demo``: one tenant floods the queue, two others push a few tasks, and
a real worker serves them; the order it served them in shows the fairness.

Its task functions live here, so the demo needs nothing but the installed package. Its
DAG part runs the repository's example project (``dags/`` and the ``examples/`` task
functions they call), which a wheel carries as package data in ``fairque/demo_project``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fairque.core.config import FairQueueConfig
from fairque.core.models import Priority, Task, TaskState

if TYPE_CHECKING:  # the queue and the worker are imported when the demo runs
    from fairque.queue.runs import RunInfo
    from fairque.queue.sync_queue import TaskQueue

DEMO_PREFIX = "fqdemo"
FLOOD, LIGHT = "user:flood", ("user:alice", "user:bob")


def handle_order(user: str, number: int) -> dict[str, object]:
    """A stand-in for real work: a few milliseconds per order."""
    time.sleep(0.002)
    return {"user": user, "order": number, "status": "processed"}


@dataclass(frozen=True)
class Served:
    """One task as the worker served it."""

    position: int
    user_id: str
    label: str
    priority: Priority
    state: TaskState


def _flood(count: int) -> list[Task]:
    path = f"{__name__}:handle_order"
    return [
        Task.create(FLOOD, func=path, args=[FLOOD, n], task_id=f"{FLOOD}-{n}") for n in range(count)
    ]


def _light(light: int) -> list[Task]:
    path = f"{__name__}:handle_order"
    tasks: list[Task] = []
    for user in LIGHT:
        tasks += [
            Task.create(user, func=path, args=[user, n], task_id=f"{user}-{n}")
            for n in range(light)
        ]
    tasks.append(
        Task.create(LIGHT[1], Priority.CRITICAL, func=path, args=[LIGHT[1], 99], task_id="critical")
    )
    return tasks


def run_demo(redis_url: str, flood: int = 40, light: int = 5) -> list[Served]:
    """Push the demo's tasks, let one worker run them one at a time, return the order."""
    from fairque.queue.sync_queue import TaskQueue
    from fairque.worker.sync_worker import Worker

    config = FairQueueConfig.create_default(
        worker_id="demo-worker",
        redis=redis_url,
        stats_prefix=DEMO_PREFIX,
        allowed_modules=[__name__],
        max_concurrent_tasks=1,
        poll_interval_seconds=0.1,
    )
    tasks = _flood(flood) + _light(light)
    with TaskQueue(config) as queue:
        _forget_previous_run(queue, tasks)
        queue.push_batch(tasks[:flood])
        with Worker(config) as worker:
            worker.start_background()
            _wait_until(lambda: queue.get_stats()["tasks_finished"] >= 3, timeout=10)
            queue.push_batch(tasks[flood:])  # the light users arrive behind the flood
            _wait_until(lambda: not queue.get_stats()["tasks_active"], timeout=30)
        records = [queue.get_task(t.task_id) for t in tasks]
    records.sort(key=lambda r: (r.started_at or 0, r.enqueued_at or 0))
    return [
        Served(i + 1, r.user_id, r.task_id, r.priority, r.state or TaskState.QUEUED)
        for i, r in enumerate(records)
    ]


def _forget_previous_run(queue: TaskQueue, tasks: list[Task]) -> None:
    for task in tasks:
        with contextlib.suppress(KeyError):
            queue.delete_task(task.task_id)


def _wait_until(condition: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


DEMO_DAGS = ("orders_etl", "failure_cleanup")

# engine/fairque/demo.py: parent is the package, parents[2] the repository.
_HERE = Path(__file__).resolve()
PROJECT_DIRS = (_HERE.parent / "demo_project", _HERE.parents[2])
"""Where the example project may be: a wheel's packaged copy, then a source checkout."""


def example_project() -> Path | None:
    """The folder holding the example ``dags/`` and ``examples/`` (put it on
    ``sys.path`` so that workers import the DAGs' task functions), or None."""
    for folder in PROJECT_DIRS:
        if (folder / "dags").is_dir() and (folder / "examples" / "etl.py").is_file():
            return folder
    return None


@dataclass(frozen=True)
class DagDemo:
    """One demo DAG run and the picture drawn of it."""

    run: RunInfo
    picture: Path


def run_dag_demo(redis_url: str, dags_folder: Path, out_dir: Path) -> list[DagDemo]:
    """Trigger the example DAGs, run them on a worker, and draw each run.

    Pictures are SVG when Graphviz's ``dot`` is installed, else Mermaid (``.mmd``).
    """
    from fairque.dag.loader import load_dags
    from fairque.dag.render import render
    from fairque.dag.runs import graph_view, trigger
    from fairque.queue.sync_queue import TaskQueue
    from fairque.worker.sync_worker import Worker

    bag = load_dags(dags_folder)
    dags = [bag.dags[d] for d in DEMO_DAGS if d in bag.dags]
    config = FairQueueConfig.create_default(
        worker_id="demo-dag-worker", redis=redis_url, poll_interval_seconds=0.1
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".svg" if shutil.which("dot") else ".mmd"
    results = []
    with TaskQueue(config) as queue, Worker(config) as worker:
        worker.start_background()
        handles = [(dag, trigger(queue, dag)) for dag in dags]
        for dag, handle in handles:
            handle.wait(timeout=30)
            info = queue.get_run(handle.run_id)
            view = graph_view(dag, info, handle.lineage())
            results.append(DagDemo(info, render(view, out_dir / f"{dag.dag_id}{suffix}")))
    return results
