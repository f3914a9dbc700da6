"""How a worker reports each task's end in its log, once Redis has recorded it.

A success is one INFO line with its duration, a failure one ERROR line with its
traceback, and a retry it led to one WARNING line more. Every line carries ``task_id``,
``user_id``, ``func``, ``attempt`` and ``duration`` as record fields (``extra=``), so
``--log-format json`` ships them as fields.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from fairque.core.errors import LeaseLostError
from fairque.core.models import Task, TaskState
from fairque.queue.results import FailOutcome, Settled

if TYPE_CHECKING:
    from fairque.worker.runtime import Outcome

logger = logging.getLogger(__name__)


def label(task: Task) -> str:
    """What the task runs: its name, else its function, else ``payload``."""
    return task.name or task.func or "payload"


_VERBS = {
    TaskState.FINISHED: "finished",
    TaskState.SCHEDULED: "(a sensor) was not satisfied yet: next poke scheduled; it ran",
    TaskState.FAILED: "failed as a sensor or branch (see its error); it ran",
}


def log_task_end(outcome: Outcome, result: Settled) -> None:
    """Log how a recorded run ended (a discarded one is logged where it is discarded)."""
    if isinstance(result, LeaseLostError):
        return
    task = outcome.task
    fields: dict[str, Any] = {
        "task_id": task.task_id,
        "user_id": task.user_id,
        "func": label(task),
        "attempt": task.attempts,
        "duration": round(outcome.duration, 6),
        "state": result.state.value,
    }
    who = f"task {task.task_id} ({label(task)}) of {task.user_id}"
    took = f"{outcome.duration:.3f} s (attempt {task.attempts})"
    if not isinstance(result, FailOutcome):
        verb = _VERBS.get(result.state, "was canceled; it ran")
        level = logging.DEBUG if result.state is TaskState.SCHEDULED else logging.INFO
        logger.log(level, "%s %s in %s", who, verb, took, extra=fields)
        return
    error = outcome.error
    if error is None:  # a success whose result settle() refused (not JSON, too big)
        reason = "its result could not be stored"
    else:
        reason = f"{type(error).__name__}: {error}"
    logger.error("%s failed in %s: %s", who, took, reason, exc_info=error, extra=fields)
    if result.retry_at is not None:
        delay = max(0.0, result.retry_at - time.time())
        logger.warning(
            "%s: retry %d of %s scheduled in %.1f s",
            who,
            task.attempts,
            task.max_retries,
            delay,
            extra={**fields, "retry_at": result.retry_at},
        )
