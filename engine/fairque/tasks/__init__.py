"""Tasks and workflows in plain Python: ``@task``, pipelines, XCom and trigger rules.

Nothing here talks to Redis: the queue and the workers build on these pieces. The names
are imported on first use (see ``fairque.core.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "AsyncXComBackend": "fairque.tasks.context",
    "FunctionTask": "fairque.tasks.decorators",
    "InProcessRun": "fairque.tasks.inprocess",
    "LineageEvent": "fairque.tasks.context",
    "MemoryXCom": "fairque.tasks.context",
    "Pipeline": "fairque.tasks.pipeline",
    "TaskContext": "fairque.tasks.context",
    "TaskFunction": "fairque.tasks.decorators",
    "TaskGroup": "fairque.tasks.groups",
    "XComBackend": "fairque.tasks.context",
    "axcom_pull": "fairque.tasks.context",
    "branch": "fairque.tasks.dynamic",
    "axcom_push": "fairque.tasks.context",
    "current_task": "fairque.tasks.context",
    "decide": "fairque.tasks.rules",
    "run_in_process": "fairque.tasks.inprocess",
    "sensor": "fairque.tasks.dynamic",
    "task": "fairque.tasks.decorators",
    "xcom_pull": "fairque.tasks.context",
    "xcom_push": "fairque.tasks.context",
    "xcom_task": "fairque.tasks.decorators",
}

if TYPE_CHECKING:
    from fairque.tasks.context import (
        AsyncXComBackend,
        LineageEvent,
        MemoryXCom,
        TaskContext,
        XComBackend,
        axcom_pull,
        axcom_push,
        current_task,
        xcom_pull,
        xcom_push,
    )
    from fairque.tasks.decorators import FunctionTask, TaskFunction, task, xcom_task
    from fairque.tasks.dynamic import branch, sensor
    from fairque.tasks.groups import TaskGroup
    from fairque.tasks.inprocess import InProcessRun, run_in_process
    from fairque.tasks.pipeline import Pipeline
    from fairque.tasks.rules import decide
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AsyncXComBackend",
    "FunctionTask",
    "InProcessRun",
    "LineageEvent",
    "MemoryXCom",
    "Pipeline",
    "TaskContext",
    "TaskFunction",
    "TaskGroup",
    "XComBackend",
    "axcom_pull",
    "axcom_push",
    "branch",
    "current_task",
    "decide",
    "run_in_process",
    "sensor",
    "task",
    "xcom_pull",
    "xcom_push",
    "xcom_task",
]
