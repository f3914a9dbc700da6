"""The running task's context and XCom, the typed replacement of ``self.xcom_pull``.

While a task runs (in a worker, through ``task()`` or in :func:`run_in_process`), a
:class:`TaskContext` is bound to the current thread or asyncio task by a
``contextvars.ContextVar``. The module-level :func:`xcom_pull` and :func:`xcom_push`
reach it, so task functions need no ``self``::

    from fairque import task, xcom_task, xcom_pull, xcom_push

    @xcom_task(push_key="extracted_data")
    def extract_data(source: str) -> dict:
        return {"source": source, "records": 1000}  # pushed as "extracted_data"

    @task(task_id="transform", enable_xcom=True, xcom_pulls=["extracted_data"])
    def transform_data() -> dict:
        raw = xcom_pull("extracted_data")
        out = {"processed_records": raw["records"] * 2}
        xcom_push("transformed_data", out)
        return out

In an ``async def`` task use the awaitable forms, :func:`axcom_pull` and
:func:`axcom_push`: on an AsyncWorker they go through its asyncio connection and never
block the event loop. There the blocking ``xcom_pull``/``xcom_push`` raise XComError
(they still work in the sync functions an AsyncWorker runs in threads).

Scopes: the tasks of one pipeline or DAG run share the run's scope (its ``run_id``);
a standalone task (no ``run_id``) uses the per-user scope ``user:<user_id>``, so the
standalone tasks of one user exchange values by key and other users never see them.

Values are JSON only and at most ``max_bytes`` (1 MiB by default) once encoded. Every
push and pull is recorded as a :class:`LineageEvent` by the backends that keep lineage.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal, Protocol, runtime_checkable

from fairque.core.errors import PayloadError, TaskError, XComError, XComNotFoundError
from fairque.core.fields import utf8_size
from fairque.core.models import Task, TaskRecord, to_json, validate_identifier
from fairque.tasks.dataflow import acall_arguments, call_arguments

DEFAULT_MAX_XCOM_BYTES: Final = 1024 * 1024


class _Missing(Enum):
    MISSING = "MISSING"


MISSING: Final = _Missing.MISSING
"""Sentinel: ``xcom_pull(key)`` without a default raises when the key is missing."""


class XComBackend(Protocol):
    """Where XCom values live: in memory here, in Redis in a worker.

    ``pull`` raises :class:`~fairque.core.errors.XComNotFoundError` when nothing is
    stored under ``key`` in ``scope``; ``push`` raises :class:`XComError` for a value that
    is not JSON or too large. ``producer``/``consumer`` name tasks, for lineage.
    """

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        """The value stored under ``key`` in ``scope``."""
        ...

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` under ``key`` in ``scope``, replacing any previous value."""
        ...


@runtime_checkable
class AsyncXComBackend(Protocol):
    """An XComBackend that can also be awaited: ``apull``/``apush`` as ``pull``/``push``.

    :meth:`TaskContext.axcom_pull` uses them; a backend without them is called in a
    thread instead.
    """

    async def apull(self, scope: str, key: str, consumer: str) -> Any:
        """The value stored under ``key`` in ``scope``."""
        ...

    async def apush(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` under ``key`` in ``scope``, replacing any previous value."""
        ...


@dataclass(frozen=True)
class LineageEvent:
    """One XCom push or pull: who produced the key, who read it, how big, when."""

    kind: Literal["push", "pull"]
    scope: str
    key: str
    producer: str
    consumer: str | None
    bytes: int
    time: float


def check_xcom_key(key: object) -> str:
    """Return ``key`` if it is a valid XCom key (same rules as ids); raise XComError."""
    try:
        return validate_identifier(key, "XCom key")
    except TaskError as e:
        raise XComError(str(e)) from None


def encode_xcom(key: str, value: object, max_bytes: int = DEFAULT_MAX_XCOM_BYTES) -> str:
    """``value`` as JSON text, or XComError naming the key (not JSON, or too large)."""
    try:
        text = to_json(value, f"XCom value for key {key!r}")
    except PayloadError as e:
        raise XComError(str(e)) from e
    size = utf8_size(text, "XCom value")  # to_json has refused lone surrogates
    if size > max_bytes:
        raise XComError(
            f"XCom value for key {key!r} is {size} bytes of JSON; the limit is {max_bytes} "
            "bytes. Store large data elsewhere (a file, object storage) and push its location"
        )
    return text


class MemoryXCom:
    """An in-process XComBackend: a dict of JSON texts plus the lineage of every access.

    Thread-safe. Values are stored as JSON and decoded on each pull, so a consumer gets
    a copy, exactly as from Redis. ``lineage`` keeps the last ``max_events`` events.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_XCOM_BYTES, max_events: int = 10_000) -> None:
        self.max_bytes = max_bytes
        self._values: dict[tuple[str, str], tuple[str, str]] = {}
        self._events: deque[LineageEvent] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def push(self, scope: str, key: str, value: Any, producer: str) -> None:
        """Store ``value`` (JSON, at most ``max_bytes``) and record a push event."""
        text = encode_xcom(check_xcom_key(key), value, self.max_bytes)
        with self._lock:
            self._values[(scope, key)] = (text, producer)
            self._record("push", scope, key, producer, None, text)

    def pull(self, scope: str, key: str, consumer: str) -> Any:
        """Decode the value under ``key``; XComNotFoundError when there is none."""
        with self._lock:
            stored = self._values.get((scope, check_xcom_key(key)))
            if stored is None:
                raise XComNotFoundError(scope, key)
            text, producer = stored
            self._record("pull", scope, key, producer, consumer, text)
        return json.loads(text)

    async def apull(self, scope: str, key: str, consumer: str) -> Any:
        """:meth:`pull` (in memory, so it does not block)."""
        return self.pull(scope, key, consumer)

    async def apush(self, scope: str, key: str, value: Any, producer: str) -> None:
        """:meth:`push` (in memory, so it does not block)."""
        self.push(scope, key, value, producer)

    @property
    def lineage(self) -> list[LineageEvent]:
        """The recorded events, oldest first (a copy)."""
        with self._lock:
            return list(self._events)

    def keys(self, scope: str) -> list[str]:
        """The keys stored in ``scope``, sorted."""
        with self._lock:
            return sorted(key for s, key in self._values if s == scope)

    def clear(self) -> None:
        """Forget every value and event."""
        with self._lock:
            self._values.clear()
            self._events.clear()

    def _record(
        self,
        kind: Literal["push", "pull"],
        scope: str,
        key: str,
        producer: str,
        consumer: str | None,
        text: str,
    ) -> None:
        size = utf8_size(text, "XCom value")  # to_json has refused lone surrogates
        self._events.append(LineageEvent(kind, scope, key, producer, consumer, size, time.time()))


_LOCAL_XCOM = MemoryXCom()


def local_xcom() -> MemoryXCom:
    """The process-wide MemoryXCom used when a task is called directly (``task()``)."""
    return _LOCAL_XCOM


@dataclass(eq=False)
class Attempt:
    """One run of a claimed task, owned by the worker that runs it.

    The running code reports the task's result here (the base TaskHandler does it for
    function tasks; a handler subclass calls ``TaskHandler.set_result``), and the worker
    sets ``cancel_requested`` when a cancellation is asked for meanwhile. Bound to the
    thread or asyncio task that runs it by :func:`attempting`.
    """

    task: TaskRecord
    result: Any = None
    cancel_requested: bool = False


_attempt: ContextVar[Attempt | None] = ContextVar("fairque_attempt", default=None)


@contextmanager
def attempting(attempt: Attempt) -> Iterator[Attempt]:
    """Bind ``attempt`` to the current thread/asyncio task while inside."""
    token = _attempt.set(attempt)
    try:
        yield attempt
    finally:
        _attempt.reset(token)


def current_attempt() -> Attempt | None:
    """The attempt bound here by a worker, or None (a task called directly, in-process)."""
    return _attempt.get()


class TaskContext:
    """What a running task can reach: its record, its run's XCom scope and conf."""

    def __init__(
        self, task: Task, backend: XComBackend, conf: Mapping[str, Any] | None = None
    ) -> None:
        self.task = task
        self.backend = backend
        self.conf: Mapping[str, Any] = dict(conf or {})
        self._attempt = current_attempt()

    @property
    def run_id(self) -> str | None:
        """The pipeline or DAG run this task belongs to; None for a standalone task."""
        return self.task.run_id

    @property
    def logical_date(self) -> datetime | None:
        """The logical date of the DAG run (its schedule tick, or when it was triggered
        by hand); None outside a DAG run."""
        return self._date("logical_date")

    @property
    def data_interval_start(self) -> datetime | None:
        """The start of the data interval of the DAG run: the schedule's tick before
        its logical date (a run triggered by hand: the logical date); None outside."""
        return self._date("data_interval_start")

    @property
    def data_interval_end(self) -> datetime | None:
        """The end of the data interval of the DAG run: its logical date."""
        return self._date("data_interval_end")

    def _date(self, name: str) -> datetime | None:
        dates = self.task.payload.get("dates") if isinstance(self.task.payload, Mapping) else None
        text = dates.get(name) if isinstance(dates, Mapping) else None
        return datetime.fromisoformat(text) if isinstance(text, str) else None

    @property
    def name(self) -> str:
        """The task's logical name (its ``name``, else its ``task_id``)."""
        return self.task.name or self.task.task_id

    @property
    def scope(self) -> str:
        """The XCom scope: the run id, or ``user:<user_id>`` for a standalone task."""
        return self.task.xcom_scope

    @property
    def cancel_requested(self) -> bool:
        """True once cancellation of this task was requested (check it in long loops):
        the worker's attempt says so when one runs the task, else the task's record."""
        if self._attempt is not None:
            return self._attempt.cancel_requested
        return bool(getattr(self.task, "cancel_requested", False))

    def xcom_pull(self, key: str, default: Any = MISSING) -> Any:
        """The value pushed under ``key`` in this scope; ``default`` if given and missing."""
        try:
            return self.backend.pull(self.scope, check_xcom_key(key), self.name)
        except XComNotFoundError:
            if default is MISSING:
                raise
            return default

    def xcom_push(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key`` in this scope for downstream tasks."""
        self.backend.push(self.scope, check_xcom_key(key), value, self.name)

    async def axcom_pull(self, key: str, default: Any = MISSING) -> Any:
        """:meth:`xcom_pull` for ``async def`` tasks: awaited, it never blocks the loop."""
        args = (self.scope, check_xcom_key(key), self.name)
        try:
            if isinstance(self.backend, AsyncXComBackend):
                return await self.backend.apull(*args)
            return await asyncio.to_thread(self.backend.pull, *args)
        except XComNotFoundError:
            if default is MISSING:
                raise
            return default

    async def axcom_push(self, key: str, value: Any) -> None:
        """:meth:`xcom_push` for ``async def`` tasks: awaited, it never blocks the loop."""
        args = (self.scope, check_xcom_key(key), value, self.name)
        if isinstance(self.backend, AsyncXComBackend):
            await self.backend.apush(*args)
        else:
            await asyncio.to_thread(self.backend.push, *args)

    def __repr__(self) -> str:
        return f"TaskContext(name={self.name!r}, scope={self.scope!r})"


_current: ContextVar[TaskContext | None] = ContextVar("fairque_task_context", default=None)


@contextmanager
def running(
    task: Task, backend: XComBackend, conf: Mapping[str, Any] | None = None
) -> Iterator[TaskContext]:
    """Bind a TaskContext for ``task`` to the current thread/asyncio task while inside."""
    context = TaskContext(task, backend, conf)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current_task() -> TaskContext:
    """The context of the task running here; XComError when no task runs."""
    context = _current.get()
    if context is None:
        raise XComError(
            "xcom_pull/xcom_push (and their async forms) can only be used while a task "
            "runs (in a worker, by calling the task, or in run_in_process); no task is "
            "running here"
        )
    return context


def xcom_pull(key: str, default: Any = MISSING) -> Any:
    """Shortcut for ``current_task().xcom_pull(key, default)``."""
    return current_task().xcom_pull(key, default)


def xcom_push(key: str, value: Any) -> None:
    """Shortcut for ``current_task().xcom_push(key, value)``."""
    current_task().xcom_push(key, value)


async def axcom_pull(key: str, default: Any = MISSING) -> Any:
    """Shortcut for ``await current_task().axcom_pull(key, default)``."""
    return await current_task().axcom_pull(key, default)


async def axcom_push(key: str, value: Any) -> None:
    """Shortcut for ``await current_task().axcom_push(key, value)``."""
    await current_task().axcom_push(key, value)


def invoke(
    task: Task,
    function: Callable[..., Any],
    backend: XComBackend,
    conf: Mapping[str, Any] | None = None,
) -> Any:
    """Run ``function(*task.args, **task.kwargs)`` as ``task`` and return its result
    (other tasks' return values in the arguments are pulled from ``backend``).

    Awaitables are run to completion with ``asyncio.run``; the result is pushed under
    ``task.xcom_push_key`` when one is set (auto XCom).
    """
    with running(task, backend, conf) as context:
        args, kwargs = call_arguments(task, backend)
        result = function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        if task.xcom_push_key is not None:
            context.xcom_push(task.xcom_push_key, result)
    return result


async def ainvoke(
    task: Task,
    function: Callable[..., Any],
    backend: XComBackend,
    conf: Mapping[str, Any] | None = None,
) -> Any:
    """Like :func:`invoke` on an event loop: an awaitable result is awaited here."""
    with running(task, backend, conf) as context:
        args, kwargs = await acall_arguments(task, backend)
        result = function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if task.xcom_push_key is not None:
            await context.axcom_push(task.xcom_push_key, result)
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
