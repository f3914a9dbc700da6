"""Task model: priorities, the seven task states, the field table and the Task record.

**The field table** is the field declarations of :class:`Task` and :class:`TaskRecord`
(search for "the field table" below): one row per field with its type, default, Redis
hash codec, who may set it (:class:`Setter`) and its check (the columns are defined in
:mod:`fairque.core.fields`). Everything else that lists
task fields reads it through :data:`TASK_FIELDS` / :func:`task_fields`. To add a task
option, add its row and a test; ``tests/unit/test_field_table.py`` names any other place
to touch.

A :class:`Task` (what a user asks for) and a :class:`TaskRecord` (what the queue recorded
about it) are frozen plain data. They round-trip through JSON (``to_dict``/``from_dict``)
and through the flat Redis hash the Lua scripts read (``to_hash``/``from_hash``).
Payloads, arguments and results are JSON only; nothing is ever pickled.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from enum import Enum, IntEnum
from typing import Any, ClassVar, Literal, TypeVar, get_args

from fairque.core.errors import (
    InvalidPriorityError,
    InvalidUserIdError,
    PayloadError,
    TaskError,
    shorten,
)
from fairque.core.fields import (
    BOOL,
    FLOAT,
    INT,
    JSON,
    OPT_FLOAT,
    OPT_INT,
    Codec,
    check_dict,
    check_list,
    check_payload,
    field_spec,
    option,
    optional_number,
)
from fairque.core.fields import FieldSpec as FieldSpec
from fairque.core.fields import Setter as Setter
from fairque.core.fields import to_json as to_json
from fairque.core.imports import parse_import_path
from fairque.core.refs import is_marker
from fairque.core.sensors import check_sensor

MAX_ID_LENGTH = 200
DEFAULT_MAX_MAP_LENGTH = 1024
DEFAULT_QUEUE = "default"
LANE_SEPARATOR = "~"  # a lane: queue ~ pool ~ DAG gate (names never hold it)
DAG_GATE_PREFIX = "dag="  # the gate of a DAG's max_active_tasks: dag=<dag id>
MAX_QUEUE_NAME_LENGTH = 100
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ID_FORBIDDEN = re.compile(r"[\s{}\x00-\x1f\x7f\ud800-\udfff]")


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
                raise InvalidPriorityError(_priority_hint(shorten(value))) from None
        if isinstance(value, str):
            text = value.strip()
            if text.isascii() and text.isdigit() and len(text) < 10:
                return cls.parse(int(text))
            try:
                return cls[text.upper()]
            except KeyError:
                raise InvalidPriorityError(_priority_hint(shorten(value))) from None
        raise InvalidPriorityError(_priority_hint(f"{shorten(value)} ({type(value).__name__})"))

    @property
    def is_critical(self) -> bool:
        """True for CRITICAL, which bypasses the priority sorted set."""
        return self is Priority.CRITICAL


def _priority_hint(shown: str) -> str:
    names = ", ".join(f"{p.name}={p.value}" for p in Priority)
    return f"unknown priority {shown}; use 1..6 or one of {names}"


TriggerRule = Literal[
    "all_success",
    "all_done",
    "all_failed",
    "one_success",
    "one_failed",
    "none_failed",
    "none_failed_min_one_success",
    "always",
    "all_skipped",
    "none_skipped",
]
"""When a task with upstreams may run (as in Airflow); ``all_success`` is the default.
The table of what each means is in :mod:`fairque.tasks.rules`."""

TRIGGER_RULES: tuple[TriggerRule, ...] = get_args(TriggerRule)
"""Every trigger rule, in declaration order."""


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
    except whitespace, braces (``{}`` are reserved for Redis Cluster hash tags) and
    lone surrogates (not valid Unicode text), and are at most 200 characters long.
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
            f"{what} {value!r} contains {bad.group()!r}; whitespace, control characters, "
            "braces and lone surrogates are not allowed"
        )
    if what == "user_id" and value == "*":
        raise error("user_id '*' is reserved: it means 'every user' in assigned_users")
    return value


def validate_queue_name(value: object, what: str = "queue") -> str:
    """Return ``value`` if it is a queue (or pool) name (letters, digits, ``_``, ``.``,
    ``-``; at most 100 characters); raise a TaskError naming the problem otherwise."""
    if not isinstance(value, str):
        raise TaskError(f"{what} must be a string, not {type(value).__name__}")
    if not _QUEUE_NAME.fullmatch(value) or len(value) > MAX_QUEUE_NAME_LENGTH:
        kind = "pool" if what.startswith("pool") else "queue"
        raise TaskError(
            f"{what} {shorten(value)} is not a {kind} name: use 1 to {MAX_QUEUE_NAME_LENGTH} "
            "letters, digits, '_', '.' or '-'"
        )
    return value


def _check_queue(value: Any, name: str) -> Any:
    return validate_queue_name(value, name)


def _check_pool(value: Any, name: str) -> Any:
    return None if value is None else validate_queue_name(value, name)


DEFAULT_MAX_RETRIES = 3
"""Retries of a task that sets none, unless the queue's config says otherwise."""
DEFAULT_RETRY_DELAY_SECONDS = 1.0
"""First retry delay of a task that sets none, unless the queue's config says otherwise."""
RECORD_DEFAULTS: dict[str, Any] = {
    "max_retries": DEFAULT_MAX_RETRIES,
    "retry_delay_seconds": DEFAULT_RETRY_DELAY_SECONDS,
}
"""Fields a task record leaves out when they hold these values, to save memory: push
writes them only when they differ, and :class:`TaskRecord` and the scripts (MAX_RETRIES
and RETRY_DELAY in lua/_common.lua) read a missing one as this."""


_ID_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_LENGTH = 22  # 62**22 > 2**128


def new_task_id() -> str:
    """A fresh, unique task id: 128 random bits (a UUID4's) in 22 letters and digits, ten
    characters shorter than hex, which a queued task holds twice (key and queue entry)."""
    number = uuid.uuid4().int
    digits = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_ID_DIGITS[digit])
    return "".join(digits)


# --- the field table ----------------------------------------------------------------------
#
# Every task field is declared once, below, in the Task dataclass (what users set) or in
# TaskRecord (what the Lua scripts own): its type, its default, and in ``metadata`` its
# Redis hash codec, who may set it (Setter) and how it is checked.
# The hash codecs and defaults, Task.create's options, ``with_options``, ``@task``'s
# options, ``default_args`` keys, YAML task keys and the pipeline's template fields are all
# read from it (see :func:`task_fields`); tests/unit/test_field_table.py checks the places
# that cannot read it (``@task``'s signature, schemas/dag.schema.json).


PRIORITY = Codec(lambda p: str(int(p)), lambda s: Priority(int(s)))
STATE = Codec(str, TaskState)


def _check_identifier(value: Any, name: str) -> Any:
    return validate_identifier(value, name)


def _check_priority(value: Any, name: str) -> Any:
    return Priority.parse(value)


def _check_ids(value: Any, name: str) -> Any:
    for item in check_list(value, name):
        validate_identifier(item, f"{name} entry")
    return value


def _check_func(value: Any, name: str) -> Any:
    parsed = None if value is None else parse_import_path(value)
    if isinstance(parsed, str):  # the import rule's syntax; the rest is checked on import
        raise TaskError(f"{name} {parsed}")
    return value


def _check_expand(value: Any, name: str) -> Any:
    for arg, marker in check_dict(value, name).items():
        if not is_marker(marker):
            raise TaskError(
                f"{name} maps argument {arg!r} over {shorten(marker)}; it must be another "
                "task's return value (a task call in Python, {from: TASK} in YAML)"
            )
    if len(value) > 1:
        raise TaskError(f"{name} maps over one argument, not {len(value)} ({', '.join(value)})")
    return value


def _check_map_length(value: Any, name: str) -> Any:
    optional_number(integer=True, positive=True)(value, name)
    if value is None:
        raise TaskError(f"{name} must be a positive integer, not None")
    return value


def _check_trigger_rule(value: Any, name: str) -> Any:
    if value not in TRIGGER_RULES:
        raise TaskError(f"unknown {name} {shorten(value)}; use one of {', '.join(TRIGGER_RULES)}")
    return value


def _check_bool(value: Any, name: str) -> Any:
    if not isinstance(value, bool):
        raise TaskError(f"{name} must be true or false, not {shorten(value)}")
    return value


_T = TypeVar("_T", bound="Task")
_USER = Setter.TASK | Setter.OPTIONS
_ANYWHERE = _USER | Setter.DECORATOR | Setter.YAML
_RETRY = _ANYWHERE | Setter.DEFAULT_ARGS


@dataclass(frozen=True)
class Task:
    """A unit of work for one user (tenant): what a user asks for (the spec).

    Frozen: every field is checked and normalised when the task is made (a TaskError
    subclass names a bad value; ``priority`` is parsed); copy with
    ``dataclasses.replace``. What the queue records about a task (state, attempts,
    result, ...) is a :class:`TaskRecord`, which ``pop`` and ``get_task`` return.

    The field declarations below, with :class:`TaskRecord`'s, are *the field table*:
    see :class:`Setter` and :func:`~fairque.core.fields.option`. Adding a task option
    is one declaration here plus its test.
    """

    _LEFT_OUT: ClassVar[Mapping[str, Any]] = {}  # what a stored record omits: see TaskRecord

    task_id: str = option(setters=_USER | Setter.DECORATOR, check=_check_identifier)
    user_id: str = option(setters=_USER | Setter.DECORATOR, check=_check_identifier)
    priority: Priority = option(
        Priority.NORMAL, setters=_RETRY, codec=PRIORITY, check=_check_priority, sparse=True
    )
    payload: dict[str, Any] = option(
        {}, setters=_USER, codec=JSON, check=check_payload, sparse=True
    )
    func: str | None = option(
        None, setters=Setter.TASK | Setter.YAML, check=_check_func, key="callable"
    )
    args: list[Any] = option(
        [], setters=Setter.TASK | Setter.YAML, codec=JSON, check=check_list, sparse=True
    )
    kwargs: dict[str, Any] = option(
        {}, setters=Setter.TASK | Setter.YAML, codec=JSON, check=check_dict, sparse=True
    )
    depends_on: list[str] = option([], setters=_ANYWHERE, codec=JSON, check=_check_ids, sparse=True)
    max_retries: int | None = option(
        None, setters=_RETRY, codec=OPT_INT, check=optional_number(integer=True)
    )
    retry_delay_seconds: float | None = option(
        None, setters=_RETRY, codec=OPT_FLOAT, check=optional_number()
    )
    timeout_seconds: float | None = option(
        None, setters=_RETRY, codec=OPT_FLOAT, check=optional_number(positive=True)
    )
    execute_after: float | None = option(
        None, setters=_USER, codec=OPT_FLOAT, check=optional_number()
    )
    created_at: float = option(factory=time.time, setters=Setter.TASK, codec=FLOAT)
    run_id: str | None = option(None, setters=_USER)
    name: str | None = option(None, setters=_USER)
    trigger_rule: TriggerRule = option(
        "all_success", setters=_RETRY, check=_check_trigger_rule, sparse=True
    )
    enable_xcom: bool = option(False, setters=_USER | Setter.DECORATOR, codec=BOOL, sparse=True)
    xcom_push_key: str | None = option(
        None, setters=_USER | Setter.DECORATOR | Setter.YAML, key="xcom_push"
    )
    xcom_pulls: list[str] = option([], setters=_ANYWHERE, codec=JSON, sparse=True)
    branch: bool = option(
        False, setters=_USER | Setter.YAML, codec=BOOL, check=_check_bool, sparse=True
    )
    """A branch task (``@branch``, YAML ``branch: true``): its function returns the name
    (or list of names) of the direct downstream tasks to follow; the others are
    skipped (see :mod:`fairque.tasks.branching`)."""
    sensor: dict[str, Any] | None = option(
        None, setters=_USER | Setter.YAML, codec=JSON, check=check_sensor
    )
    """A sensor task (``@sensor``, YAML ``sensor: {...}``): ``poke_interval_seconds``,
    ``timeout_seconds`` (from its first poke) and ``soft_fail``; its function returning
    False (or None) means "not yet" (see :mod:`fairque.core.sensors`)."""
    expand: dict[str, Any] = option(
        {}, setters=Setter.TASK | Setter.YAML, codec=JSON, check=_check_expand, sparse=True
    )
    """A mapped task: the argument mapped over and the upstream whose result (a list)
    it maps over, as a reference marker (see :mod:`fairque.core.refs`); one instance per
    element is created when the upstream ends."""
    max_map_length: int = option(
        DEFAULT_MAX_MAP_LENGTH, setters=_ANYWHERE, codec=INT, check=_check_map_length, sparse=True
    )
    """The most instances a mapped task may get; a longer list fails its upstream."""
    queue: str = option(DEFAULT_QUEUE, setters=_RETRY, check=_check_queue, sparse=True)
    """The queue the task is routed to: only workers serving it (``--queues``) claim it."""
    pool: str | None = option(None, setters=_RETRY, check=_check_pool)
    """The pool whose slots the task takes while it runs (``fairque pool set``)."""

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

        ``options`` are any other field a user may set (``func``, ``args``, ``kwargs``,
        ``depends_on``, ``max_retries``, ``retry_delay_seconds``, ``timeout_seconds``,
        ``execute_after``, ...: the fields with :attr:`Setter.TASK`). Raises a
        :class:`~fairque.core.errors.TaskError` subclass naming the bad value.
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
        task._check_json()  # the constructor has checked everything else
        return task

    def __post_init__(self) -> None:
        for name, check in _CHECKED:
            value = getattr(self, name)
            checked = check(value, name)
            if checked is not value:
                object.__setattr__(self, name, checked)

    def validate(self, *, check_json: bool = True) -> None:
        """Check every field a user can set; raise a TaskError subclass naming the problem.

        Construction already checks the fields; this adds the JSON check of the
        JSON-encoded ones, which ``check_json=False`` leaves to :meth:`to_hash` (the
        queue's push encodes them anyway).
        """
        self.__post_init__()
        if check_json:
            self._check_json()

    def recheck(self) -> None:
        """Check again what can change after construction, the contents of the task's
        lists and dicts (a frozen Task's fields are checked when it is made): its
        ``depends_on`` ids here; the JSON fields are checked when encoded (:meth:`to_hash`)."""
        if self.depends_on:
            _check_ids(self.depends_on, "depends_on")

    def _check_json(self) -> None:
        """The JSON check of the JSON-encoded fields (an empty list or dict is JSON)."""
        for name in _PUSHED_JSON:
            value = getattr(self, name)
            if value or not isinstance(value, (list, dict)):
                to_json(value, name)

    # --- serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-compatible values."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["priority"] = int(self.priority)
        if isinstance(data.get("state"), TaskState):
            data["state"] = data["state"].value
        return data

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Inverse of :meth:`to_dict`; unknown keys (and a record's fields, read as a
        Task) are ignored (forward compatibility)."""
        names = _names_of(cls)
        values = {k: v for k, v in data.items() if k in names}
        if values.get("state") is not None:
            values["state"] = TaskState(values["state"])
        return cls(**values)

    def to_json(self) -> str:
        """The task as one JSON document."""
        return to_json(self.to_dict(), "task")

    @classmethod
    def from_json(cls: type[_T], text: str | bytes) -> _T:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_hash(self) -> dict[str, str]:
        """The flat string fields written to the task's Redis hash: every field push owns
        (not :attr:`Setter.QUEUE`) but ``task_id``, which the hash's key holds. None, and
        a ``sparse`` field at its default, are left out to save memory; :meth:`from_hash`
        and the scripts read a missing field as its default."""
        out: dict[str, str] = {}
        for spec in _STORED:
            value = getattr(self, spec.name)
            if value is None or (spec.sparse and value == spec.default):
                continue
            out[spec.name] = (
                to_json(value, spec.name) if spec.codec is JSON else spec.codec.encode(value)
            )
        return out

    @classmethod
    def from_hash(
        cls: type[_T], raw: Mapping[str, str] | Mapping[bytes, bytes], task_id: str
    ) -> _T:
        """Build a Task (or a TaskRecord) from a Redis hash as returned by HGETALL (bytes
        or str) and the id its key names; fields the class does not have are ignored."""
        names = _names_of(cls)
        values: dict[str, Any] = dict(cls._LEFT_OUT)
        order = None
        for key, value in raw.items():
            name = _text(key)
            spec = _BY_NAME.get(name)
            if spec is not None and spec.name in names:
                values[spec.name] = spec.codec.decode(_text(value))
            elif name == ORDER_FIELD:
                order = _text(value)
        values["task_id"] = task_id  # a record written before ids left the hash holds it too
        _enqueued_from_order(values, order, names)
        return cls(**values)

    @classmethod
    def from_claim(cls: type[_T], flat: list[str]) -> _T:
        """A record from the flat HGETALL reply of a script (a claim), trusted as written
        by the scripts: decoded without the field checks, which :meth:`from_hash` runs
        (push checked every field; a worker decodes thousands of these a second)."""
        names, plain, factories = _defaults_of(cls)
        values = dict(plain)
        order = None
        for i in range(0, len(flat), 2):
            spec = _BY_NAME.get(flat[i])
            if spec is not None and spec.name in names:
                values[spec.name] = spec.codec.decode(flat[i + 1])
            elif flat[i] == ORDER_FIELD:
                order = flat[i + 1]
        _enqueued_from_order(values, order, names)
        for name, factory in factories:
            if name not in values:
                values[name] = factory()
        made = object.__new__(cls)
        made.__dict__.update(values)
        return made

    @property
    def xcom_scope(self) -> str:
        """Where the task's XCom values live: its run, or its user's standalone tasks."""
        return self.run_id if self.run_id else f"user:{self.user_id}"

    @property
    def label(self) -> str:
        """The task's name in its run, or its id."""
        return self.name or self.task_id

    def with_state(self, state: TaskState) -> TaskRecord:
        """A record of this task in ``state`` (for in-process runs and tests)."""
        return TaskRecord.of(self, state=state)


@dataclass(frozen=True)
class TaskRecord(Task):
    """What the queue records about a task: its spec plus the fields the Lua scripts own.

    ``TaskQueue.pop``, ``pop_many``, ``get_task`` and a run's ``task(name)`` return records; a
    worker's ``finish``/``fail`` take the record it claimed (its ``claim_token`` proves
    the claim). Read-only: the queue changes the record in Redis, never this copy.
    Times are seconds since the epoch on the Redis server's clock.
    """

    _LEFT_OUT: ClassVar[Mapping[str, Any]] = RECORD_DEFAULTS

    state: TaskState | None = option(None, setters=Setter.QUEUE, codec=STATE)
    attempts: int = option(0, setters=Setter.QUEUE, codec=INT)
    recoveries: int = option(0, setters=Setter.QUEUE, codec=INT)
    enqueued_at: float | None = option(None, setters=Setter.QUEUE, codec=OPT_FLOAT)
    started_at: float | None = option(None, setters=Setter.QUEUE, codec=OPT_FLOAT)
    finished_at: float | None = option(None, setters=Setter.QUEUE, codec=OPT_FLOAT)
    duration: float | None = option(None, setters=Setter.QUEUE, codec=OPT_FLOAT)
    result: Any = option(None, setters=Setter.QUEUE, codec=JSON)
    error: dict[str, Any] | None = option(None, setters=Setter.QUEUE, codec=JSON)
    worker_id: str | None = option(None, setters=Setter.QUEUE)
    claim_token: int = option(0, setters=Setter.QUEUE, codec=INT)
    cancel_requested: bool = option(False, setters=Setter.QUEUE, codec=BOOL)
    upstream_failed: bool = option(False, setters=Setter.QUEUE, codec=BOOL)
    """CANCELED because an upstream failed (Airflow's ``upstream_failed``): counts as
    failed for its own dependents' trigger rules; other cancels count as skipped."""
    skipped: bool = option(False, setters=Setter.QUEUE, codec=BOOL)
    """CANCELED as *skipped* (Airflow's ``skipped``): by its trigger rule, by a branch
    that did not choose it, or by a sensor's ``soft_fail``; not by hand."""
    first_poke_at: float | None = option(None, setters=Setter.QUEUE, codec=OPT_FLOAT)
    """A sensor's first "not yet" poke (its timeout counts from there)."""
    pokes: int = option(0, setters=Setter.QUEUE, codec=INT)
    """How many times a sensor said "not yet" (those pokes are not attempts)."""
    map_index: int | None = option(None, setters=Setter.QUEUE, codec=OPT_INT)
    """An instance of a mapped task: its index in the list mapped over (its name is
    ``name[index]``); None for any other task."""
    map_count: int | None = option(None, setters=Setter.QUEUE, codec=OPT_INT)
    """A mapped task once expanded: how many instances it got."""
    attempt_history: list[dict[str, Any]] = option([], setters=Setter.QUEUE, codec=JSON)
    """Every attempt that ended, oldest first: ``attempt`` (its number), ``worker``,
    ``started_at``, ``finished_at``, ``duration`` (None when the lease expired),
    ``outcome`` (finished, failed, canceled or lease_expired) and ``error`` (type,
    message, traceback; None on success). Kept as long as the record."""

    @classmethod
    def of(cls, task: Task, **queue_fields: Any) -> TaskRecord:
        """A record of ``task`` with the given queue-owned fields (e.g. ``state``)."""
        spec = {f.name: getattr(task, f.name) for f in fields(Task)}
        return cls(**spec, **queue_fields)

    def with_state(self, state: TaskState) -> TaskRecord:
        """A copy in another state."""
        return replace(self, state=state)

    @property
    def display_state(self) -> str | None:
        """The state as shown (``run show``, renders, JSON ``outcome``): ``skipped`` and
        ``upstream_failed`` for those CANCELED tasks, else the state's value."""
        if self.state is TaskState.CANCELED:
            if self.upstream_failed:
                return "upstream_failed"
            if self.skipped:
                return "skipped"
        return None if self.state is None else self.state.value


TASK_FIELDS: tuple[FieldSpec, ...] = tuple(field_spec(f) for f in fields(TaskRecord))
"""The field table, in declaration order (Task's rows, then TaskRecord's)."""


def task_fields(setter: Setter) -> tuple[FieldSpec, ...]:
    """The rows of the field table that ``setter`` may set, in declaration order."""
    return tuple(spec for spec in TASK_FIELDS if spec.setters & setter)


_BY_NAME = {spec.name: spec for spec in TASK_FIELDS}
_PUSHED = tuple(spec for spec in TASK_FIELDS if not spec.setters & Setter.QUEUE)
_STORED = tuple(spec for spec in _PUSHED if spec.name != "task_id")  # the key holds the id
_SETTABLE = frozenset(spec.name for spec in task_fields(Setter.TASK))
_CHECKED = tuple((spec.name, spec.check) for spec in TASK_FIELDS if spec.check is not None)
_PUSHED_JSON = tuple(spec.name for spec in _PUSHED if spec.codec is JSON)
_DEFAULTS_OF: dict[type, tuple[frozenset[str], dict[str, Any], list[tuple[str, Any]]]] = {}


ORDER_FIELD = "order"
"""The record field the scripts keep a queued task's place in (a stamp, µs on the server's
clock; see lua/_common.lua): not a Task field, but it tells ``enqueued_at``."""


def enqueued_time(enqueued_at: str | None, order: str | None) -> float | None:
    """When a record was enqueued, from its ``enqueued_at`` and ``order`` fields: a task
    queued at once when pushed leaves ``enqueued_at`` out (the scripts write it only for a
    task that waited first, or got a new stamp since), and its stamp tells it to the ms."""
    if enqueued_at is not None:
        return float(enqueued_at)
    return None if order is None else int(order) // 1000 / 1000


def _enqueued_from_order(values: dict[str, Any], order: str | None, names: frozenset[str]) -> None:
    if "enqueued_at" in names and values.get("enqueued_at") is None:
        values["enqueued_at"] = enqueued_time(None, order)


def _defaults_of(
    cls: type[Task],
) -> tuple[frozenset[str], dict[str, Any], list[tuple[str, Any]]]:
    """The field names of ``cls``, its plain defaults (with what its stored records leave
    out) and its default factories (once)."""
    found = _DEFAULTS_OF.get(cls)
    if found is None:
        plain = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        plain.update(cls._LEFT_OUT)
        factories = [(f.name, f.default_factory) for f in fields(cls) if f.default is MISSING]
        factories = [(name, factory) for name, factory in factories if factory is not MISSING]
        found = _DEFAULTS_OF[cls] = (_names_of(cls), plain, factories)
    return found


_NAMES_OF: dict[type, frozenset[str]] = {}


def _names_of(cls: type[Task]) -> frozenset[str]:
    """The field names of ``cls`` (Task, TaskRecord or a subclass), computed once."""
    names = _NAMES_OF.get(cls)
    if names is None:
        names = _NAMES_OF[cls] = frozenset(f.name for f in fields(cls))
    return names


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
