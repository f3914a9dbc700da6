"""fairque: a fair, multi-tenant task queue and DAG workflow engine on Redis or Valkey."""

from fairque.core.config import FairQueueConfig, QueueConfig, RedisConfig, WorkerConfig
from fairque.core.errors import FairQueueError
from fairque.core.models import Priority, Task, TaskState
from fairque.queue import AsyncTaskQueue, TaskQueue
from fairque.worker import AsyncWorker, TaskHandler, Worker

__all__ = [
    "AsyncTaskQueue",
    "AsyncWorker",
    "FairQueueConfig",
    "FairQueueError",
    "Priority",
    "QueueConfig",
    "RedisConfig",
    "Task",
    "TaskHandler",
    "TaskQueue",
    "TaskState",
    "Worker",
    "WorkerConfig",
]
