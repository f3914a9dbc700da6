"""The columns of the task field table: who may set a field, its Redis hash codec, its
check, and the row constructor :func:`option`.

The table itself is the field declarations of :class:`~fairque.core.models.Task` and
:class:`~fairque.core.models.TaskRecord` (in ``core/models.py``); :data:`~fairque.core.
models.TASK_FIELDS` reads it as :class:`FieldSpec` rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field
from enum import Flag, auto
from typing import Any, NamedTuple

from fairque.core.errors import PayloadError, TaskError, shorten


def to_json(value: object, what: str) -> str:
    """Serialise ``value`` as compact JSON or raise :class:`PayloadError` naming ``what``:
    a value that is not JSON, nested too deeply for the encoder (about a thousand
    levels), or holding a lone surrogate (text UTF-8 cannot encode, so Redis cannot
    store it)."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except RecursionError:
        raise PayloadError(
            f"{what} is nested too deeply to encode as JSON (or refers to itself)"
        ) from None
    except (TypeError, ValueError) as e:
        raise PayloadError(f"{what} is not JSON-serialisable: {e}") from e
    utf8_size(text, what)
    return text


def utf8_size(text: str, what: str) -> int:
    """The size of ``text`` in UTF-8 bytes, as Redis stores it; a lone surrogate (which
    UTF-8 cannot encode) raises :class:`PayloadError` naming ``what``."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        bad = text[e.start : e.end]
        raise PayloadError(
            f"{what} contains a lone surrogate {shorten(bad)} at character {e.start}: "
            "not valid Unicode text, which UTF-8 (and so Redis) cannot store"
        ) from None


class Setter(Flag):
    """Who may set a task field."""

    TASK = auto()
    """``Task.create``, ``Task(...)`` and ``push``."""
    OPTIONS = auto()
    """``FunctionTask.with_options`` (a copy of an ``@task`` call's task)."""
    DECORATOR = auto()
    """``@task(...)`` and ``@xcom_task(...)`` keyword options."""
    DEFAULT_ARGS = auto()
    """A DAG's ``default_args`` (a task's own setting wins)."""
    YAML = auto()
    """A task key in a YAML DAG file."""
    QUEUE = auto()
    """Owned by the Lua scripts: read-only to users, never written by push."""


class Codec(NamedTuple):
    """How a field is written to and read from the task's Redis hash (flat strings)."""

    encode: Callable[[Any], str]
    decode: Callable[[str], Any]


def _json_loads(text: str) -> Any:
    """json.loads with the empty list and mapping (most task fields) taken fast."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)


def _opt_float(text: str) -> float | None:
    return float(text) if text else None


def _opt_int(text: str) -> int | None:
    return int(text) if text else None


TEXT = Codec(str, str)
INT = Codec(str, int)
OPT_INT = Codec(str, _opt_int)
FLOAT = Codec(str, float)
OPT_FLOAT = Codec(str, _opt_float)
BOOL = Codec(lambda b: "1" if b else "0", lambda s: s == "1")
JSON = Codec(lambda v: to_json(v, "value"), _json_loads)


Check = Callable[[Any, str], Any]


def check_payload(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        raise PayloadError(f"{name} must be a dict, not {type(value).__name__}")
    return value


def check_list(value: Any, name: str) -> Any:
    if not isinstance(value, list):
        raise TaskError(f"{name} must be a list, not {shorten(value)}")
    return value


def check_dict(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        raise TaskError(f"{name} must be a dict, not {shorten(value)}")
    return value


def optional_number(*, integer: bool = False, positive: bool = False) -> Check:
    """The check of an optional number: None, or finite, zero or more (or positive)."""

    def check(value: Any, name: str) -> Any:
        if value is not None:
            _check_number(value, name, integer=integer, positive=positive)
        return value

    return check


def _check_number(
    value: object, what: str, *, integer: bool = False, positive: bool = False
) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        kind = "an integer" if integer else "a number"
        raise TaskError(f"{what} must be {kind}, not {shorten(value)}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        sign = "positive" if positive else "zero or more"
        raise TaskError(f"{what} must be finite and {sign}, not {shorten(value)}")


def option(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    setters: Setter,
    codec: Codec = TEXT,
    check: Check | None = None,
    sparse: bool = False,
    key: str | None = None,
) -> Any:
    """One row of the field table.

    ``default`` (none: the field is required; a list or dict default is copied for
    every task) or ``factory`` (called for every task); ``setters`` who may
    set the field; ``codec`` its Redis hash encoding; ``check`` validates and normalises
    a value (raises a TaskError subclass); ``sparse`` leaves the field out of the hash at
    its default (the scripts read a missing field as its default); ``key`` is its name
    in ``@task`` and YAML when that differs from the field's.
    """
    metadata = {"setters": setters, "codec": codec, "check": check, "sparse": sparse, "key": key}
    if isinstance(default, (list, dict)):
        factory = type(default)
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class FieldSpec:
    """One row of the field table, as read from the Task and TaskRecord declarations."""

    name: str
    type: str
    default: Any
    """The default value (a fresh empty list/dict for those); MISSING when required."""
    has_factory: bool
    setters: Setter
    codec: Codec
    check: Check | None
    sparse: bool
    key: str
    """The field's name in ``@task`` keywords and YAML task keys."""

    @property
    def required(self) -> bool:
        """True when every task must give the field (no default)."""
        return self.default is MISSING and not self.has_factory


def field_spec(f: Field[Any]) -> FieldSpec:
    meta = f.metadata
    factory = f.default_factory
    has_factory = factory is not MISSING
    default = factory() if factory in (list, dict) else f.default
    return FieldSpec(
        name=f.name,
        type=str(f.type),
        default=default,
        has_factory=has_factory,
        setters=meta["setters"],
        codec=meta["codec"],
        check=meta["check"],
        sparse=meta["sparse"],
        key=meta["key"] or f.name,
    )
