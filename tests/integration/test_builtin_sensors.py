"""The built-in sensors of fairque.sensors on a real worker: a Redis key, a time, a
file, and another DAG's run for the same logical date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis

from fairque import Pipeline, TaskState, Worker
from fairque.dag import DAG, validate_dag_file
from fairque.dag.loader import load_dag_file
from fairque.dag.runs import trigger
from fairque.sensors import external_dag, file_exists, redis_key_exists, time_reached
from fairque.tasks import run_in_process
from tests.timing import budget, wait_until
from tests.unit import sample_tasks as st

from .conftest import QueueFactory, background_worker

S = TaskState
FAST = {"poke_interval_seconds": 0.1, "timeout_seconds": 20}


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    with background_worker(
        redis_url, "w-sensors", allowed_modules=["tests"], poll_interval_seconds=0.05
    ) as running:
        yield running


def _fast(task: Any, **sensor: Any) -> Any:
    return task.with_options(sensor={**FAST, **sensor})


def test_redis_key_time_and_file_sensors_on_a_worker(
    make_queue: QueueFactory, worker: Worker, redis_client: redis.Redis, tmp_path: Path
) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(seconds=0.5)).isoformat()
    pipeline = Pipeline.of(
        _fast(redis_key_exists("fq-test:ready")),
        _fast(time_reached(soon)),
        _fast(file_exists(str(tmp_path))),
    )
    run = make_queue().enqueue(pipeline)
    wait_until(lambda: run.task("redis_key_exists").pokes >= 1, 10, "a poke of the key sensor")
    redis_client.set("fq-test:ready", "1")
    states = run.wait(timeout=budget(20))
    assert states == {
        name: S.FINISHED for name in ("redis_key_exists", "time_reached", "file_exists")
    }
    assert run.task("time_reached").finished_at >= datetime.fromisoformat(soon).timestamp()  # type: ignore[operator]


def test_external_dag_waits_for_the_other_dags_run_of_the_same_logical_date(
    make_queue: QueueFactory, worker: Worker
) -> None:
    queue = make_queue()
    upstream = DAG(dag_id="upstream_dag", pipeline=st.add(1).with_options(task_id="produce"))
    waiter = DAG(
        dag_id="waiter_dag",
        pipeline=_fast(external_dag("upstream_dag", task="produce"), timeout_seconds=1.5)
        >> st.add(2).with_options(task_id="after"),
    )
    day = datetime(2026, 1, 1, tzinfo=timezone.utc)
    waiting = trigger(queue, waiter, logical_date=day, run_id="waiter__1")
    wait_until(lambda: waiting.task("external_dag").pokes >= 1, 10, "a poke of the sensor")
    other_day = trigger(queue, upstream, logical_date=day + timedelta(days=1), run_id="up__2")
    other_day.wait(timeout=budget(20))
    pokes = waiting.task("external_dag").pokes
    wait_until(lambda: waiting.task("external_dag").pokes > pokes, 10, "a poke after that run")
    assert waiting.task("external_dag").state is not S.FINISHED  # another date does not count
    trigger(queue, upstream, logical_date=day, run_id="up__1").wait(timeout=budget(20))
    assert waiting.wait(timeout=budget(20)) == {"external_dag": S.FINISHED, "after": S.FINISHED}
    late = trigger(queue, waiter, logical_date=day + timedelta(days=5), run_id="waiter__2")
    assert late.wait(timeout=budget(20))["external_dag"] is S.FAILED  # its timeout


def test_built_in_sensors_in_process(redis_url: str, redis_client: redis.Redis) -> None:
    redis_client.set("fq-test:here", "1")
    run = run_in_process(
        Pipeline.of(
            redis_key_exists("fq-test:here", redis_url=redis_url),
            _fast(
                redis_key_exists("fq-test:absent", redis_url=redis_url).with_options(
                    task_id="absent"
                ),
                timeout_seconds=0.3,
                soft_fail=True,
            ),
        )
    )
    assert run.tasks["redis_key_exists"].display_state == "finished"
    assert run.tasks["absent"].display_state == "skipped"


EXTERNAL_YAML = """\
dag_id: waiter_yaml
flow: "wait_up >> after"
tasks:
  wait_up:
    external_dag: {dag_id: upstream_dag}
    sensor: {poke_interval_seconds: 0.1, timeout_seconds: 20}
  after: {callable: 'tests.unit.sample_tasks:add', args: [1]}
"""


def test_the_yaml_external_dag_shorthand(
    make_queue: QueueFactory, worker: Worker, tmp_path: Path
) -> None:
    file = tmp_path / "waiter.yaml"
    file.write_text(EXTERNAL_YAML)
    assert validate_dag_file(file, ["tests"]) == []
    (waiter,) = load_dag_file(file, ["tests"]).dags
    sensor_task = waiter.pipeline.nodes["wait_up"]
    assert sensor_task.func == "fairque.sensors:external_dag"
    assert sensor_task.kwargs == {"dag_id": "upstream_dag"} and sensor_task.sensor is not None
    queue = make_queue()
    day = datetime(2026, 2, 1, tzinfo=timezone.utc)
    waiting = trigger(queue, waiter, logical_date=day, run_id="waiter_yaml__1")
    upstream = DAG(dag_id="upstream_dag", pipeline=st.add(1).with_options(task_id="produce"))
    trigger(queue, upstream, logical_date=day, run_id="up__y").wait(timeout=budget(20))
    assert waiting.wait(timeout=budget(20)) == {"wait_up": S.FINISHED, "after": S.FINISHED}
    file.write_text(
        EXTERNAL_YAML.replace(
            "    external_dag:", "    callable: tests.unit.sample_tasks:add\n    external_dag:"
        )
    )
    (problem,) = validate_dag_file(file, ["tests"])
    assert "give external_dag or callable, not both" in problem.message and problem.line == 6
