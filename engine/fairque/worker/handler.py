"""TaskHandler: how a worker runs one task.

A function task (``task.func = "module:function"``) is imported under the import rule of
:mod:`fairque.core.imports` (the worker's ``allowed_modules``), and called with the
task's JSON args and kwargs; its return value becomes the task's result (reported with
:meth:`TaskHandler.set_result`). A payload-only task needs a subclass that overrides
:meth:`TaskHandler._process_task`. Hooks do nothing unless overridden.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fairque.core.errors import WorkerError
from fairque.core.imports import resolve_function
from fairque.core.models import Task, TaskRecord
from fairque.tasks.context import XComBackend, current_attempt, local_xcom, running
from fairque.tasks.dataflow import acall_arguments, call_arguments
from fairque.worker.threads import in_daemon_thread

logger = logging.getLogger(__name__)


class TaskHandler:
    """Runs tasks for a worker. Subclass it to handle payload-only tasks or add hooks.

    :meth:`_process_task` returns True on success and False for a failure without an
    exception; an exception fails the task and is retried per the task's
    ``max_retries``, except :class:`TaskImportError`. The task is a read-only
    :class:`~fairque.core.models.TaskRecord`: the result goes to the worker through
    :meth:`set_result`, which the base ``_process_task`` calls with the function's
    return value, so a subclass that returns ``super()._process_task(task)`` keeps it::

        class MyTaskHandler(TaskHandler):
            def _process_task(self, task) -> bool:
                if task.payload.get("action") == "custom_processing":
                    self.set_result({"handled": True})  # optional: the default is None
                    return True
                return super()._process_task(task)
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

    def set_result(self, value: Any) -> None:
        """Report the result of the task being run (JSON; stored by the worker when the
        run succeeds). Only while a worker runs the task: WorkerError otherwise."""
        attempt = current_attempt()
        if attempt is None:
            raise WorkerError("set_result is only for a task a worker is running")
        attempt.result = value

    def _process_task(self, task: TaskRecord) -> bool:
        """Run a function task and report its return value with :meth:`set_result`.

        The function runs inside the task's context (``current_task()``, XCom); the
        queue stores an ``xcom_push_key`` result when it records the success.
        """
        function = self.function_of(task)
        with running(task, self.xcom, task.payload.get("conf")):
            args, kwargs = call_arguments(task, self.xcom)
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
        self.set_result(result)
        return True

    async def _process_task_async(self, task: TaskRecord) -> bool:
        """The AsyncWorker's entry: ``async def`` functions are awaited, the rest run in a
        thread through :meth:`_process_task` (with this attempt bound there too)."""
        if task.func is not None and type(self)._process_task is TaskHandler._process_task:
            function = self.function_of(task)
            if inspect.iscoroutinefunction(function):
                with running(task, self.xcom, task.payload.get("conf")):
                    args, kwargs = await acall_arguments(task, self.xcom)
                    result = await function(*args, **kwargs)
                self.set_result(result)
                return True
        context = contextvars.copy_context()
        return await in_daemon_thread(context.run, self._process_task, task)

    # --- hooks (no-ops by default) ---------------------------------------------------

    def on_task_start(self, task: TaskRecord) -> None:
        """Called before a task runs."""

    def on_task_success(self, task: TaskRecord, duration: float) -> None:
        """Called after a task succeeded; ``task.result`` holds its result (the record
        is a copy of the claimed one with the result)."""

    def on_task_failure(self, task: TaskRecord, error: Exception, duration: float) -> None:
        """Called after a task failed (it may still be retried)."""


async def _await(awaitable: Any) -> Any:
    return await awaitable
