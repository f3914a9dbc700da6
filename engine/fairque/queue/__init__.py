"""The queue API: TaskQueue (sync) and AsyncTaskQueue (async) over the Lua scripts.

Both names are imported on first use, so that code needing only the sync queue (or a
submodule such as ``fairque.queue.heartbeat``) does not load ``redis.asyncio``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "AsyncTaskQueue": "fairque.queue.async_queue",
    "TaskQueue": "fairque.queue.sync_queue",
}

if TYPE_CHECKING:
    from fairque.queue.async_queue import AsyncTaskQueue
    from fairque.queue.sync_queue import TaskQueue
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["AsyncTaskQueue", "TaskQueue"]
