"""Branching and a task group in a Python DAG file: the same ideas as branching.yaml and
task_groups.yaml, built with @branch, TaskGroup and the pipeline operators."""

from __future__ import annotations

from examples.flow_tasks import large, route, small, summary

from fairque import TaskGroup
from fairque.dag import DAG, ParamSpec

with TaskGroup("work", default_args={"max_retries": 1}) as work:
    route(size="{{ params.size }}") >> (small() | large())

dag = DAG(
    dag_id="flow_control_py",
    description="Route a batch to the small or large path inside a group, then summarise",
    pipeline=work >> summary(),
    params={"size": ParamSpec("integer", default=5)},
)
