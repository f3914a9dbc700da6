"""Task functions for the example DAGs of branching, sensors and task groups in dags/
(``branching.yaml``, ``file_sensor.yaml``, ``task_groups.yaml``,
``flow_control_py.py``).

Plain functions named by YAML as ``examples.flow_tasks:<function>``; the Python DAG
file uses the ``@branch``/``@task`` versions below.
"""

from __future__ import annotations

from typing import Any

from fairque import branch, task


def pick_load(mode: str = "full") -> str:
    """The branch of ``branching.yaml``: follow ``full_load`` or ``quick_load``."""
    return "full_load" if mode == "full" else "quick_load"


def load(kind: str) -> dict[str, Any]:
    """Pretend to load data; returns what was loaded."""
    return {"kind": kind, "rows": 100 if kind == "full" else 10}


def step(name: str) -> str:
    """A step that only says who it is."""
    return name


@branch(task_id="route")
def route(size: int = 5) -> str:
    """Follow ``small`` for fewer than 10 items, else ``large``."""
    return "small" if size < 10 else "large"


@task(task_id="small")
def small() -> str:
    return "small batch"


@task(task_id="large")
def large() -> str:
    return "large batch"


@task(task_id="summary", trigger_rule="none_failed_min_one_success")
def summary() -> str:
    return "done"
