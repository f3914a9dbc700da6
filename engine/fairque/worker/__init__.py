"""Workers: TaskHandler, Worker (threads) and AsyncWorker (asyncio).

The names are imported on first use (see ``fairque.core.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fairque.core.lazy import lazy_exports

_EXPORTS = {
    "AsyncWorker": "fairque.worker.async_worker",
    "TaskHandler": "fairque.worker.handler",
    "Worker": "fairque.worker.sync_worker",
}

if TYPE_CHECKING:
    from fairque.worker.async_worker import AsyncWorker
    from fairque.worker.handler import TaskHandler
    from fairque.worker.sync_worker import Worker
else:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["AsyncWorker", "TaskHandler", "Worker"]
