"""The queue API: TaskQueue (sync) and AsyncTaskQueue (async) over the Lua scripts."""

from fairque.queue.async_queue import AsyncTaskQueue
from fairque.queue.sync_queue import TaskQueue

__all__ = ["AsyncTaskQueue", "TaskQueue"]
