"""TaskHandler: how a worker runs one task.

A function task (``task.func = "module:function"``) is imported under the import rule of
:mod:`fairque.core.imports` (the worker's ``allowed_modules``), and called with the
task's JSON args and kwargs; its return value becomes the task's result. A payload-only
task needs a subclass that overrides :meth:`TaskHandler._process_task`. Hooks do nothing
unless overridden.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fairque.core.errors import WorkerError
from fairque.core.imports import resolve_function
from fairque.core.models import Task
from fairque.tasks.context import XComBackend, local_xcom, running
from fairque.worker.threads import in_daemon_thread

logger = logging.getLogger(__name__)


class TaskHandler:
    """Runs tasks for a worker. Subclass it to handle payload-only tasks or add hooks.

    :meth:`_process_task` returns True on success (the result is ``task.result``) and
    False for a failure without an exception; an exception fails the task and is
    retried per the task's ``max_retries``, except :class:`TaskImportError`.
    """

    def __init__(self, allowed_modules: Sequence[str] | None = None) -> None:
        self.allowed_modules: list[str] = list(allowed_modules or [])
        self.xcom: XComBackend = local_xcom()

    def bind(self, allowed_modules: Sequence[str], xcom: XComBackend | None = None) -> None:
        """Take the worker's allowed module prefixes (unless some were given explicitly)
        and the XCom backend that running tasks reach through ``xcom_pull``/``xcom_push``."""
        if not self.allowed_modules:
            self.allowed_modules = list(allowed_modules)
        if xcom is not None:
            self.xcom = xcom

    def function_of(self, task: Task) -> Callable[..., Any]:
        """The task's function, imported under the allowed-modules rule."""
        if task.func is None:
            raise WorkerError(
                f"task {task.task_id!r} has no function and {type(self).__name__} does not "
                "handle payload-only tasks; override _process_task in a TaskHandler subclass"
            )
        return resolve_function(task.func, self.allowed_modules)

    def _process_task(self, task: Task) -> bool:
        """Run a function task and keep its return value in ``task.result``.

        The function runs inside the task's context (``current_task()``, XCom); the
        queue stores an ``xcom_push_key`` result when it records the success.
        """
        function = self.function_of(task)
        with running(task, self.xcom, task.payload.get("conf")):
            result = function(*task.args, **task.kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        task.result = result
        return True

    async def _process_task_async(self, task: Task) -> bool:
        """The AsyncWorker's entry: ``async def`` functions are awaited, the rest run in a
        thread through :meth:`_process_task`."""
        if task.func is not None and type(self)._process_task is TaskHandler._process_task:
            function = self.function_of(task)
            if inspect.iscoroutinefunction(function):
                with running(task, self.xcom, task.payload.get("conf")):
                    task.result = await function(*task.args, **task.kwargs)
                return True
        return await in_daemon_thread(self._process_task, task)

    # --- hooks (no-ops by default) ---------------------------------------------------

    def on_task_start(self, task: Task) -> None:
        """Called before a task runs."""

    def on_task_success(self, task: Task, duration: float) -> None:
        """Called after a task succeeded; ``task.result`` holds its result."""

    def on_task_failure(self, task: Task, error: Exception, duration: float) -> None:
        """Called after a task failed (it may still be retried)."""


async def _await(awaitable: Any) -> Any:
    return await awaitable
