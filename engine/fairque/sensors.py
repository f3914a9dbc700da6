"""Built-in sensors: wait for a file, a Redis key, a time, or another DAG's run.

Each is an ``@sensor`` function (poke every 60 s, give up after 7 days unless a DAG
sets ``sensor:``/``.with_options(sensor=...)``); use them from YAML as
``callable: fairque.sensors:file_exists`` with ``kwargs``, or call them in a Python DAG
file. This module is always allowed, whatever ``allowed_modules`` says
(:data:`fairque.core.imports.BUILT_IN_MODULES`).

Which Redis ``redis_key_exists`` and ``external_dag`` read: the one given as
``redis_url``; else the server of the worker running the task (its own queue
connection, or a connection made from its configuration on an AsyncWorker); else, in
``dag test``, the server fairque finds by itself (``$FAIRQUE_REDIS_URL``, else the
embedded server of the state folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from fairque.core.errors import TaskError
from fairque.core.models import TaskState
from fairque.tasks.context import current_task
from fairque.tasks.dynamic import sensor

if TYPE_CHECKING:
    from fairque.queue.sync_queue import TaskQueue

EXTERNAL_RUNS_SCANNED = 500
"""How many of another DAG's newest runs ``external_dag`` looks through."""


# Redis is imported only when a sensor that reads it runs: `dag validate` imports this
# module (to check callables) and stays free of Redis clients.


@sensor
def file_exists(path: str) -> bool:
    """True once ``path`` exists on the worker's file system (a file or a folder)."""
    return Path(path).exists()


@sensor
def time_reached(moment: str) -> bool:
    """True once the time ``moment`` (ISO 8601; a time without a zone is UTC) has come,
    by the worker's clock."""
    when = datetime.fromisoformat(moment)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) >= when


@sensor
def redis_key_exists(key: str, redis_url: str | None = None) -> bool:
    """True once ``key`` exists (see the module's notes for which Redis)."""
    with _queue(redis_url) as queue:
        return bool(queue.redis.exists(key))


@sensor
def external_dag(dag_id: str, task: str | None = None, redis_url: str | None = None) -> bool:
    """True once a run of DAG ``dag_id`` for the same logical date as this task's run has
    succeeded (with ``task``: once that task of it FINISHED). A run not there yet, still
    running, or failed means "not yet" (the sensor's timeout ends the wait)."""
    from fairque.queue.runs import RunState  # Redis only when the sensor runs

    logical = current_task().logical_date
    if logical is None:
        raise TaskError("external_dag needs a logical date: use it in a DAG run")
    with _queue(redis_url) as queue:
        runs = queue.list_runs(dag_id, limit=EXTERNAL_RUNS_SCANNED)
    for run in runs:
        if run.logical_date is None or datetime.fromisoformat(run.logical_date) != logical:
            continue
        if task is None:
            if run.state is RunState.SUCCESS:
                return True
            continue
        record = run.tasks.get(task)
        if record is not None and record.state is TaskState.FINISHED:
            return True
    return False


@contextmanager
def _queue(redis_url: str | None) -> Iterator[TaskQueue]:
    """A TaskQueue on the Redis the sensor should read (see the module's notes)."""
    from fairque.core.config import FairQueueConfig
    from fairque.queue.sync_queue import TaskQueue

    queue = None if redis_url else getattr(current_task().backend, "queue", None)
    if isinstance(queue, TaskQueue):
        yield queue
        return
    config = queue.config if queue is not None else FairQueueConfig.create_default(redis=redis_url)
    made = TaskQueue(config)
    try:
        yield made
    finally:
        made.close()


__all__ = ["external_dag", "file_exists", "redis_key_exists", "time_reached"]
