"""fairque: a fair, multi-tenant task queue and DAG workflow engine on Redis or Valkey.

The public names below are imported on first use (``fairque.core.lazy``), so that
``import fairque`` and the command line do not pay for Redis clients they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "AsyncRunHandle": "fairque.queue.runs",
    "AsyncTaskQueue": "fairque.queue.async_queue",
    "AsyncWorker": "fairque.worker.async_worker",
    "FairQueueConfig": "fairque.core.config",
    "FairQueueError": "fairque.core.errors",
    "Pipeline": "fairque.tasks.pipeline",
    "Priority": "fairque.core.models",
    "QueueConfig": "fairque.core.config",
    "RedisConfig": "fairque.core.config",
    "RunHandle": "fairque.queue.runs",
    "Task": "fairque.core.models",
    "TaskContext": "fairque.tasks.context",
    "TaskGroup": "fairque.tasks.groups",
    "TaskHandler": "fairque.worker.handler",
    "TaskQueue": "fairque.queue.sync_queue",
    "TaskRecord": "fairque.core.models",
    "TaskState": "fairque.core.models",
    "Worker": "fairque.worker.sync_worker",
    "WorkerConfig": "fairque.core.config",
    "axcom_pull": "fairque.tasks.context",
    "branch": "fairque.tasks.dynamic",
    "axcom_push": "fairque.tasks.context",
    "current_task": "fairque.tasks.context",
    "run_in_process": "fairque.tasks.inprocess",
    "sensor": "fairque.tasks.dynamic",
    "task": "fairque.tasks.decorators",
    "xcom_pull": "fairque.tasks.context",
    "xcom_push": "fairque.tasks.context",
    "xcom_task": "fairque.tasks.decorators",
}

if TYPE_CHECKING:
    from fairque.core.config import FairQueueConfig, QueueConfig, RedisConfig, WorkerConfig
    from fairque.core.errors import FairQueueError
    from fairque.core.models import Priority, Task, TaskRecord, TaskState
    from fairque.queue.async_queue import AsyncTaskQueue
    from fairque.queue.runs import AsyncRunHandle, RunHandle
    from fairque.queue.sync_queue import TaskQueue
    from fairque.tasks.context import (
        TaskContext,
        axcom_pull,
        axcom_push,
        current_task,
        xcom_pull,
        xcom_push,
    )
    from fairque.tasks.decorators import task, xcom_task
    from fairque.tasks.dynamic import branch, sensor
    from fairque.tasks.groups import TaskGroup
    from fairque.tasks.inprocess import run_in_process
    from fairque.tasks.pipeline import Pipeline
    from fairque.worker.async_worker import AsyncWorker
    from fairque.worker.handler import TaskHandler
    from fairque.worker.sync_worker import Worker
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AsyncRunHandle",
    "AsyncTaskQueue",
    "AsyncWorker",
    "FairQueueConfig",
    "FairQueueError",
    "Pipeline",
    "Priority",
    "QueueConfig",
    "RedisConfig",
    "RunHandle",
    "Task",
    "TaskContext",
    "TaskGroup",
    "TaskHandler",
    "TaskQueue",
    "TaskRecord",
    "TaskState",
    "Worker",
    "WorkerConfig",
    "axcom_pull",
    "axcom_push",
    "branch",
    "current_task",
    "run_in_process",
    "sensor",
    "task",
    "xcom_pull",
    "xcom_push",
    "xcom_task",
]
