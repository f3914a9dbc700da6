"""Task model: priorities, the seven task states and the Task record.

A :class:`Task` is plain data. It round-trips through JSON (``to_dict``/``from_dict``)
and through the flat Redis hash the Lua scripts read (``to_hash``/``from_hash``).
Payloads, arguments and results are JSON only; nothing is ever pickled.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum, IntEnum
from typing import Any

from fairque.core.errors import InvalidPriorityError, InvalidUserIdError, PayloadError, TaskError
from fairque.core.imports import parse_import_path

MAX_ID_LENGTH = 200
_ID_FORBIDDEN = re.compile(r"[\s{}\x00-\x1f\x7f]")


class Priority(IntEnum):
    """Task priority, 1 (lowest) to 6. CRITICAL tasks go to a separate FIFO list."""

    VERY_LOW = 1
    LOW = 2
    NORMAL = 3
    HIGH = 4
    VERY_HIGH = 5
    CRITICAL = 6

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Accept a Priority, an int 1..6 or a name such as ``"HIGH"``; refuse the rest."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, bool):
            raise InvalidPriorityError(f"priority must be 1..6 or a name, not the boolean {value}")
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                raise InvalidPriorityError(_priority_hint(repr(value))) from None
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit():
                return cls.parse(int(text))
            try:
                return cls[text.upper()]
            except KeyError:
                raise InvalidPriorityError(_priority_hint(repr(value))) from None
        raise InvalidPriorityError(_priority_hint(f"{value!r} ({type(value).__name__})"))

    @property
    def is_critical(self) -> bool:
        """True for CRITICAL, which bypasses the priority sorted set."""
        return self is Priority.CRITICAL


def _priority_hint(shown: str) -> str:
    names = ", ".join(f"{p.name}={p.value}" for p in Priority)
    return f"unknown priority {shown}; use 1..6 or one of {names}"


TRIGGER_RULES = (
    "all_success",
    "all_done",
    "all_failed",
    "one_success",
    "one_failed",
    "none_failed",
)
"""When a task with upstreams may run (as in Airflow); ``all_success`` is the default."""


class TaskState(str, Enum):
    """The seven states of a task."""

    QUEUED = "queued"
    STARTED = "started"
    DEFERRED = "deferred"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    SCHEDULED = "scheduled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_active(self) -> bool:
        """True while the task may still run."""
        return self in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        """True once the task has ended for good."""
        return self in TERMINAL_STATES


ACTIVE_STATES = frozenset(
    {TaskState.QUEUED, TaskState.STARTED, TaskState.DEFERRED, TaskState.SCHEDULED}
)
TERMINAL_STATES = frozenset({TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELED})


def validate_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a safe id for Redis keys; raise a clear error otherwise.

    Ids may hold any printable character (``user:1`` and e-mail addresses are fine)
    except whitespace and braces (``{}`` are reserved for Redis Cluster hash tags),
    and are at most 200 characters long.
    """
    error = InvalidUserIdError if what == "user_id" else TaskError
    if not isinstance(value, str):
        raise error(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise error(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise error(f"{what} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    bad = _ID_FORBIDDEN.search(value)
    if bad:
        raise error(
            f"{what} {value!r} contains {bad.group()!r}; whitespace, control characters "
            "and braces are not allowed"
        )
    if what == "user_id" and value == "*":
        raise error("user_id '*' is reserved: it means 'every user' in assigned_users")
    return value


def to_json(value: object, what: str) -> str:
    """Serialise ``value`` as compact JSON or raise :class:`PayloadError` naming ``what``."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise PayloadError(f"{what} is not JSON-serialisable: {e}") from e


def new_task_id() -> str:
    """A fresh, unique task id (32 hex characters)."""
    return uuid.uuid4().hex


@dataclass
class Task:
    """A unit of work for one user (tenant).

    Fields set by the queue (``state``, ``attempts``, timestamps, ``result``, ``error``)
    reflect the task's record in Redis when the Task comes from ``TaskQueue.get_task``.
    Times are seconds since the epoch on the Redis server's clock.
    """

    task_id: str
    user_id: str
    priority: Priority = Priority.NORMAL
    payload: dict[str, Any] = field(default_factory=dict)
    func: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    max_retries: int | None = None
    retry_delay_seconds: float | None = None
    timeout_seconds: float | None = None
    execute_after: float | None = None
    created_at: float = field(default_factory=time.time)
    state: TaskState | None = None
    attempts: int = 0
    recoveries: int = 0
    enqueued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    worker_id: str | None = None
    claim: int = 0
    cancel_requested: bool = False
    run_id: str | None = None
    name: str | None = None
    trigger_rule: str = "all_success"
    enable_xcom: bool = False
    xcom_push_key: str | None = None
    xcom_pulls: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        user_id: str,
        priority: Priority | int | str = Priority.NORMAL,
        payload: Mapping[str, Any] | None = None,
        task_id: str | None = None,
        **options: Any,
    ) -> Task:
        """Build a validated task; a unique ``task_id`` is generated when none is given.

        ``options`` are any other Task field (``func``, ``args``, ``kwargs``,
        ``depends_on``, ``max_retries``, ``retry_delay_seconds``, ``timeout_seconds``,
        ``execute_after``). Raises a :class:`~fairque.core.errors.TaskError` subclass
        naming the bad value.
        """
        unknown = set(options) - _SETTABLE
        if unknown:
            raise TaskError(
                f"unknown Task option(s) {sorted(unknown)}; "
                f"known: {sorted(_SETTABLE - {'task_id'})}"
            )
        if payload is not None and not isinstance(payload, Mapping):
            raise PayloadError(f"payload must be a dict, not {type(payload).__name__}")
        task = cls(
            task_id=new_task_id() if task_id is None else task_id,
            user_id=user_id,
            priority=Priority.parse(priority),
            payload=dict(payload or {}),
            **options,
        )
        task.validate()
        return task

    def validate(self, *, check_json: bool = True) -> None:
        """Check every field a user can set; raise a TaskError subclass naming the problem.

        ``check_json=False`` leaves the JSON check of payload, args and kwargs to
        :meth:`to_hash`, which encodes them anyway (the queue's push does so).
        """
        validate_identifier(self.task_id, "task_id")
        validate_identifier(self.user_id, "user_id")
        self.priority = Priority.parse(self.priority)
        if not isinstance(self.payload, dict):
            raise PayloadError(f"payload must be a dict, not {type(self.payload).__name__}")
        for name, kind in (("args", list), ("kwargs", dict), ("depends_on", list)):
            if not isinstance(getattr(self, name), kind):
                raise TaskError(f"{name} must be a {kind.__name__}, not {getattr(self, name)!r}")
        if check_json:
            for name in ("payload", "args", "kwargs"):
                to_json(getattr(self, name), name)
        parsed = None if self.func is None else parse_import_path(self.func)
        if isinstance(parsed, str):  # the import rule's syntax; the rest is checked on import
            raise TaskError(f"func {parsed}")
        for dep in self.depends_on:
            validate_identifier(dep, "depends_on entry")
        if self.max_retries is not None:
            _check_number(self.max_retries, "max_retries", integer=True)
        if self.retry_delay_seconds is not None:
            _check_number(self.retry_delay_seconds, "retry_delay_seconds")
        if self.timeout_seconds is not None:
            _check_number(self.timeout_seconds, "timeout_seconds", positive=True)
        if self.execute_after is not None:
            _check_number(self.execute_after, "execute_after")
        if self.trigger_rule not in TRIGGER_RULES:
            raise TaskError(
                f"unknown trigger_rule {self.trigger_rule!r}; use one of {', '.join(TRIGGER_RULES)}"
            )

    # --- serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-compatible values."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["priority"] = int(self.priority)
        data["state"] = None if self.state is None else self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatibility)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["priority"] = Priority.parse(values.get("priority", Priority.NORMAL))
        if values.get("state") is not None:
            values["state"] = TaskState(values["state"])
        return cls(**values)

    def to_json(self) -> str:
        """The task as one JSON document."""
        return to_json(self.to_dict(), "task")

    @classmethod
    def from_json(cls, text: str | bytes) -> Task:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_hash(self) -> dict[str, str]:
        """The flat string fields written to the task's Redis hash. Fields at their
        default (None, empty, the default trigger rule) are left out to save memory;
        :meth:`from_hash` and the scripts read a missing field as its default."""
        out: dict[str, str] = {}
        for name in _PUSHED:
            value = getattr(self, name)
            if value is None or _DEFAULTS.get(name, _NO_DEFAULT) == value:
                continue
            if name in _JSON_FIELDS:
                out[name] = to_json(value, name)
            else:
                codec = _HASH_CODECS.get(name)
                out[name] = codec[0](value) if codec else str(value)
        return out

    @classmethod
    def from_hash(cls, raw: Mapping[str, str] | Mapping[bytes, bytes]) -> Task:
        """Build a Task from a Redis hash as returned by HGETALL (bytes or str)."""
        names = _TASK_FIELDS
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name, text = _text(key), _text(value)
            if name in names:
                codec = _HASH_CODECS.get(name)
                values[name] = codec[1](text) if codec else text
        return cls(**values)

    @property
    def xcom_scope(self) -> str:
        """Where the task's XCom values live: its run, or its user's standalone tasks."""
        return self.run_id if self.run_id else f"user:{self.user_id}"

    @property
    def label(self) -> str:
        """The task's name in its run, or its id."""
        return self.name or self.task_id

    def with_state(self, state: TaskState) -> Task:
        """A copy in another state (for in-process runs and tests)."""
        return replace(self, state=state)


def _check_number(
    value: object, what: str, *, integer: bool = False, positive: bool = False
) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        kind = "an integer" if integer else "a number"
        raise TaskError(f"{what} must be {kind}, not {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        sign = "positive" if positive else "zero or more"
        raise TaskError(f"{what} must be finite and {sign}, not {value!r}")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json_loads(text: str) -> Any:
    """json.loads with the empty list and mapping (most task fields) taken fast."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)


def _opt_float(text: str) -> float | None:
    return float(text) if text else None


def _json_dumps(value: Any) -> str:
    return to_json(value, "value")


_Codec = tuple[Callable[[Any], str], Callable[[str], Any]]
_JSON: _Codec = (_json_dumps, _json_loads)
_FLOAT: _Codec = (str, _opt_float)
_INT: _Codec = (str, int)
_HASH_CODECS: dict[str, _Codec] = {
    "priority": (lambda p: str(int(p)), lambda s: Priority(int(s))),
    "payload": _JSON,
    "args": _JSON,
    "kwargs": _JSON,
    "depends_on": _JSON,
    "result": _JSON,
    "error": _JSON,
    "max_retries": (str, lambda s: int(s) if s else None),
    "attempts": _INT,
    "recoveries": _INT,
    "claim": _INT,
    "retry_delay_seconds": _FLOAT,
    "timeout_seconds": _FLOAT,
    "execute_after": _FLOAT,
    "created_at": (str, float),
    "enqueued_at": _FLOAT,
    "started_at": _FLOAT,
    "finished_at": _FLOAT,
    "duration": _FLOAT,
    "state": (str, TaskState),
    "cancel_requested": (lambda b: "1" if b else "0", lambda s: s == "1"),
    "enable_xcom": (lambda b: "1" if b else "0", lambda s: s == "1"),
    "xcom_pulls": _JSON,
}

# Fields the Lua scripts own: never written from a Task by push.
_QUEUE_OWNED = frozenset(
    {
        "state",
        "attempts",
        "recoveries",
        "enqueued_at",
        "started_at",
        "finished_at",
        "duration",
        "result",
        "error",
        "worker_id",
        "claim",
        "cancel_requested",
    }
)

_TASK_FIELDS = frozenset(f.name for f in fields(Task))
_SETTABLE = _TASK_FIELDS - _QUEUE_OWNED
_PUSHED = tuple(f.name for f in fields(Task) if f.name not in _QUEUE_OWNED)
_JSON_FIELDS = frozenset(name for name, codec in _HASH_CODECS.items() if codec is _JSON)
_NO_DEFAULT = object()
_DEFAULTS: dict[str, Any] = {
    "payload": {},
    "args": [],
    "kwargs": {},
    "depends_on": [],
    "trigger_rule": "all_success",
    "enable_xcom": False,
    "xcom_pulls": [],
}
