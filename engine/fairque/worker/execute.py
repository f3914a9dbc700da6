"""Running one task through a TaskHandler, in a thread or on the event loop."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from fairque.core.errors import WorkerError
from fairque.core.models import Task
from fairque.tasks.context import Attempt, attempting
from fairque.worker.capture import AttemptLog, capturing
from fairque.worker.handler import TaskHandler
from fairque.worker.runtime import Outcome

logger = logging.getLogger(__name__)


def run_task(handler: TaskHandler, attempt: Attempt, log: AttemptLog | None = None) -> Outcome:
    """Run the attempt's task with ``handler`` (blocking) and report how it ended;
    what it writes goes to ``log``."""
    task = attempt.task
    _call_hook(handler.on_task_start, task)
    started = time.perf_counter()
    try:
        with attempting(attempt), capturing(log):
            ok = handler._process_task(task)
        error: Exception | None = None if ok else _refused(task)
    except Exception as e:
        error = e
    return _conclude(handler, attempt, time.perf_counter() - started, error)


async def run_task_async(
    handler: TaskHandler, attempt: Attempt, log: AttemptLog | None = None
) -> Outcome:
    """Run the attempt's task with ``handler`` on the event loop and report how it ended;
    what it writes goes to ``log``."""
    task = attempt.task
    _call_hook(handler.on_task_start, task)
    started = time.perf_counter()
    try:
        with attempting(attempt), capturing(log):
            ok = await handler._process_task_async(task)
        error: Exception | None = None if ok else _refused(task)
    except Exception as e:
        error = e
    return _conclude(handler, attempt, time.perf_counter() - started, error)


def _refused(task: Task) -> WorkerError:
    return WorkerError(f"the handler reported failure for task {task.task_id!r}")


def _conclude(
    handler: TaskHandler, attempt: Attempt, duration: float, error: Exception | None
) -> Outcome:
    task = attempt.task
    if error is None:
        if type(handler).on_task_success is not TaskHandler.on_task_success:
            _call_hook(handler.on_task_success, replace(task, result=attempt.result), duration)
        return Outcome(task, True, duration, result=attempt.result)
    _call_hook(handler.on_task_failure, task, error, duration)
    return Outcome(task, False, duration, error=error)


def _call_hook(hook: object, *args: object) -> None:
    try:
        hook(*args)  # type: ignore[operator]
    except Exception:
        logger.exception("a TaskHandler hook raised; the task's outcome is unchanged")
