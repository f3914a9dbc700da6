"""Templates rendered when a DAG run is triggered: the records hold the rendered values."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fairque import TaskQueue
from fairque.core.errors import DagError, RunNotFoundError
from fairque.dag import DAG, ParamSpec
from fairque.dag.runs import trigger
from tests.unit import sample_tasks as st

from .conftest import QueueFactory


def _dag(text: str) -> DAG:
    return DAG(
        dag_id="tmpl",
        pipeline=st.add(x=text, y="{{ params.n }}"),  # type: ignore[arg-type]
        params={"region": ParamSpec(default="eu"), "n": ParamSpec("integer", default=2)},
    )


def test_a_trigger_renders_with_the_runs_logical_date_and_conf(make_queue: QueueFactory) -> None:
    queue: TaskQueue = make_queue()
    dag = _dag("report for {{ params.region }} on {{ ds }} ({{ run_id }})")
    tick = datetime(2026, 1, 2, 9, tzinfo=timezone.utc)
    handle = trigger(queue, dag, conf={"region": "us"}, run_id="tmpl__x", logical_date=tick)
    record = queue.get_task(f"{handle.run_id}:add")
    assert record.kwargs == {"x": "report for us on 2026-01-02 (tmpl__x)", "y": 2}


def test_a_template_failing_at_trigger_writes_nothing(make_queue: QueueFactory) -> None:
    queue: TaskQueue = make_queue()
    dag = _dag("{{ params.region.nope }} now")
    with pytest.raises(DagError, match=r"task 'add' kwargs.x: UndefinedError"):
        trigger(queue, dag, run_id="tmpl__bad")
    with pytest.raises(RunNotFoundError):
        queue.get_run("tmpl__bad")
