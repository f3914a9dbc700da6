"""fairque: a fair, multi-tenant task queue and DAG workflow engine on Redis or Valkey."""

from fairque.core.config import FairQueueConfig, QueueConfig, RedisConfig, WorkerConfig
from fairque.core.errors import FairQueueError
from fairque.core.models import Priority, Task, TaskState
from fairque.queue import AsyncTaskQueue, TaskQueue
from fairque.queue.runs import AsyncRunHandle, RunHandle
from fairque.tasks import (
    Pipeline,
    TaskContext,
    axcom_pull,
    axcom_push,
    current_task,
    run_in_process,
    task,
    xcom_pull,
    xcom_push,
    xcom_task,
)
from fairque.worker import AsyncWorker, TaskHandler, Worker

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
    "TaskHandler",
    "TaskQueue",
    "TaskState",
    "Worker",
    "WorkerConfig",
    "axcom_pull",
    "axcom_push",
    "current_task",
    "run_in_process",
    "task",
    "xcom_pull",
    "xcom_push",
    "xcom_task",
]
