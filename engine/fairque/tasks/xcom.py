"""XCom in Redis: the backends a worker gives to running tasks.

Values live in ``fq:xcom:{scope}`` and every push and pull is appended to
``fq:lineage:{scope}`` by the same script, both expiring after ``xcom_ttl_seconds``.
:class:`RedisXCom` serves the Worker (blocking client), :class:`AsyncRedisXCom` the
AsyncWorker (its asyncio client); both send the same script calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from fairque.core.errors import XComError, XComNotFoundError
from fairque.queue.async_queue import AsyncTaskQueue
from fairque.queue.calls import QueueCalls, ScriptCall
from fairque.queue.sync_queue import TaskQueue
from fairque.tasks.context import current_attempt, encode_xcom

T = TypeVar("T")


class _XComCalls:
    """The script calls of XCom and the decoding of a pulled value, without I/O."""

    def __init__(self, calls: QueueCalls, max_bytes: int) -> None:
        self.calls = calls
        self.max_bytes = max_bytes

    def push_call(self, scope: str, key: str, value: Any, producer: str) -> ScriptCall[int]:
        """The call storing ``value`` (JSON, at most ``max_xcom_bytes``) under ``key``;
        fenced by the claim of the attempt running here, if any (build it in the task's
        thread or asyncio task, where :func:`attempting` bound it)."""
        attempt = current_attempt()
        holder = None if attempt is None else (attempt.task.task_id, attempt.task.claim_token)
        value_json = encode_xcom(key, value, self.max_bytes)
        return self.calls.xcom_push(scope, key, value_json, producer, holder)

    def pull_call(self, scope: str, key: str, consumer: str) -> ScriptCall[str | None]:
        """The call reading ``key`` (and recording the pull, with the number of the
        attempt running here, if any)."""
        attempt = current_attempt()
        number = None if attempt is None else attempt.task.attempts
        return self.calls.xcom_pull(scope, key, consumer, number)

    @staticmethod
    def decode(scope: str, key: str, text: str | None) -> Any:
        """The pulled value; XComNotFoundError when nothing was pushed."""
        if text is None:
            raise XComNotFoundError(scope, key)
        return json.loads(text)


class RedisXCom(_XComCalls):
    """An :class:`~fairque.tasks.context.XComBackend` on a TaskQueue's connection."""

    def __init__(self, queue: TaskQueue) -> None:
        super().__init__(queue.calls, queue.config.queue.max_xcom_bytes)
        self.queue = queue

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` (JSON, at most ``max_xcom_bytes``) under ``key``."""
        self.queue.run_script(self.push_call(scope, key, value, producer))

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        """The value under ``key``; XComNotFoundError when nothing was pushed."""
        return self.decode(scope, key, self.queue.run_script(self.pull_call(scope, key, consumer)))

    def lineage(self, scope: str) -> list[dict[str, Any]]:
        """Every push and pull of ``scope``, oldest first."""
        return self.queue.run_pipeline(self.queue.calls.lineage(scope))


class AsyncRedisXCom(_XComCalls):
    """An :class:`~fairque.tasks.context.AsyncXComBackend` on an AsyncTaskQueue.

    ``apull``/``apush`` await the queue on ``loop`` (the AsyncWorker's). The blocking
    ``pull``/``push`` serve sync task functions running in other threads: they hand the
    call to ``loop`` and wait for it. Called on ``loop`` itself they would stall every
    task on it, so they raise XComError there, naming the awaitable form.
    """

    def __init__(self, queue: AsyncTaskQueue, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(queue.calls, queue.config.queue.max_xcom_bytes)
        self.queue = queue
        self.loop = loop

    async def apush(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` (JSON, at most ``max_xcom_bytes``) under ``key``."""
        await self.queue.run_script(self.push_call(scope, key, value, producer))

    async def apull(self, scope: str, key: str, consumer: str) -> Any:
        """The value under ``key``; XComNotFoundError when nothing was pushed."""
        text = await self.queue.run_script(self.pull_call(scope, key, consumer))
        return self.decode(scope, key, text)

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        """:meth:`apush` from a thread other than the loop's."""
        call = self.queue.run_script(self.push_call(scope, key, value, producer))
        self._on_loop("xcom_push", "await axcom_push(key, value)", call)

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        """:meth:`apull` from a thread other than the loop's."""
        return self._on_loop("xcom_pull", "await axcom_pull(key)", self.apull(scope, key, consumer))

    async def lineage(self, scope: str) -> list[dict[str, Any]]:
        """Every push and pull of ``scope``, oldest first."""
        return await self.queue.run_pipeline(self.queue.calls.lineage(scope))

    def _on_loop(self, name: str, instead: str, call: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            call.close()
            raise XComError(
                f"{name}() blocks, and this task runs on the AsyncWorker's event loop: "
                f"use `{instead}` in an async def task"
            )
        if self.loop.is_closed():
            call.close()
            raise XComError(f"{name}(): the AsyncWorker has stopped")
        return asyncio.run_coroutine_threadsafe(call, self.loop).result()
