"""Tasks and workflows in plain Python: ``@task``, pipelines, XCom and trigger rules.

Nothing here talks to Redis: the queue and the workers build on these pieces.
"""

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
from fairque.tasks.inprocess import InProcessRun, run_in_process
from fairque.tasks.pipeline import Pipeline
from fairque.tasks.rules import decide

__all__ = [
    "AsyncXComBackend",
    "FunctionTask",
    "InProcessRun",
    "LineageEvent",
    "MemoryXCom",
    "Pipeline",
    "TaskContext",
    "TaskFunction",
    "XComBackend",
    "axcom_pull",
    "axcom_push",
    "current_task",
    "decide",
    "run_in_process",
    "task",
    "xcom_pull",
    "xcom_push",
    "xcom_task",
]
