"""Workers: TaskHandler, Worker (threads) and AsyncWorker (asyncio)."""

from fairque.worker.async_worker import AsyncWorker
from fairque.worker.handler import TaskHandler
from fairque.worker.sync_worker import Worker

__all__ = ["AsyncWorker", "TaskHandler", "Worker"]
