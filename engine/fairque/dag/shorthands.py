"""YAML shorthands, expanded before a document is checked or loaded.

``external_dag: {dag_id: etl, task: load}`` (``task`` optional) on a task without a
``callable`` means the built-in sensor ``fairque.sensors:external_dag`` with those
arguments: the task waits until a run of DAG ``etl`` for the same logical date has
succeeded (or, with ``task``, until that task of it finished). Its ``sensor:`` settings,
if any, are kept (else the sensor's defaults).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

EXTERNAL_DAG_SENSOR = "fairque.sensors:external_dag"


Path_ = tuple[str | int, ...]


def expand_shorthands(data: Any) -> Any:
    """``data`` with every task's ``external_dag`` given its callable and kwargs (a new
    document; ``data`` is untouched). The ``external_dag`` key stays, for the schema to
    check its shape."""
    if not isinstance(data, dict) or not list(_external_tasks(data, ())):
        return data
    out = copy.deepcopy(data)
    for _, spec in _external_tasks(out, ()):
        if "callable" not in spec and isinstance(spec["external_dag"], dict):
            spec["callable"] = EXTERNAL_DAG_SENSOR
            kwargs = spec.get("kwargs")
            spec["kwargs"] = {
                **(kwargs if isinstance(kwargs, dict) else {}),
                **spec["external_dag"],
            }
    return out


def shorthand_problems(data: Any) -> list[tuple[Path_, str]]:
    """(path, message) for each task of the original document giving both
    ``external_dag`` and ``callable``."""
    return [
        (
            (*path, "external_dag"),
            "external_dag stands for the callable fairque.sensors:external_dag; give "
            "external_dag or callable, not both",
        )
        for path, spec in _external_tasks(data, ())
        if "callable" in spec
    ]


def _external_tasks(section: Any, path: Path_) -> Iterator[tuple[Path_, dict[str, Any]]]:
    """(path, spec) of every task with ``external_dag``, in groups too."""
    if not isinstance(section, dict):
        return
    tasks = section.get("tasks")
    for name, spec in tasks.items() if isinstance(tasks, dict) else ():
        if isinstance(spec, dict) and "external_dag" in spec:
            yield (*path, "tasks", str(name)), spec
    groups = section.get("groups")
    for name, group in groups.items() if isinstance(groups, dict) else ():
        yield from _external_tasks(group, (*path, "groups", str(name)))


__all__ = ["EXTERNAL_DAG_SENSOR", "expand_shorthands", "shorthand_problems"]
