"""References to other tasks' return values inside a task's arguments (TaskFlow), as JSON.

A task's ``args``, ``kwargs`` (at any depth, inside lists and dicts) and ``expand`` may
hold a *reference marker* where the value will be an upstream task's return value,
read through XCom when the task runs::

    {"__fairque_from__": {"task": "extract", "key": "extract.return_value", "path": "rows"}}

``task`` names the upstream (its name in the pipeline or DAG; the upstream's task_id
until the pipeline is compiled), ``key`` the XCom key its return value is pushed under
(None until compiled), ``path`` an optional key of a dict result (YAML's
``{from: extract, key: rows}``). A mapped task's ``expand`` marker also holds ``id``, the
source task's id in the run (Lua reads the source's result by it).

A user's own dict that could be mistaken for a marker (exactly one key, and that key is
``__fairque_from__`` or ``__fairque_literal__``) is escaped when arguments are encoded:
``{"__fairque_literal__": {<the dict>}}``, unwrapped (never resolved) when the task
runs. Every other value is stored as given. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FROM = "__fairque_from__"
LITERAL = "__fairque_literal__"
RESERVED = frozenset({FROM, LITERAL})


@dataclass(frozen=True)
class Ref:
    """One reference: the upstream ``task``, its XCom ``key`` (once compiled), ``path``
    (a key of a dict result, or None) and, for an expand source, the task ``id``."""

    task: str
    key: str | None = None
    path: str | None = None
    id: str | None = None

    def marker(self) -> dict[str, Any]:
        """The JSON marker of this reference."""
        body: dict[str, Any] = {"task": self.task, "key": self.key, "path": self.path}
        if self.id is not None:
            body["id"] = self.id
        return {FROM: body}

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Ref:
        """The reference of a marker's body."""
        return cls(str(body["task"]), body.get("key"), body.get("path"), body.get("id"))


def is_marker(value: object) -> bool:
    """True for a reference marker (a dict whose only key is ``__fairque_from__``)."""
    return isinstance(value, dict) and len(value) == 1 and FROM in value


def _reserved_dict(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in RESERVED


def _escaped(value: dict[Any, Any]) -> bool:
    return len(value) == 1 and isinstance(value.get(LITERAL), dict)


def encode(value: Any, to_ref: Callable[[Any], Ref | None]) -> Any:
    """``value`` with every object ``to_ref`` makes a Ref of replaced by its marker and
    every user dict that looks like a marker escaped (see the module's notes)."""
    ref = to_ref(value)
    if ref is not None:
        return ref.marker()
    if isinstance(value, Mapping):
        inner = {k: encode(v, to_ref) for k, v in value.items()}
        return {LITERAL: inner} if _reserved_dict(value) else inner
    if isinstance(value, (list, tuple)):
        return [encode(v, to_ref) for v in value]
    return value


def rewrite(value: Any, change: Callable[[Ref], Ref]) -> Any:
    """``value`` (encoded) with every marker's Ref replaced by ``change(ref)``; escaped
    dicts stay escaped."""
    if is_marker(value):
        return change(Ref.of(value[FROM])).marker()
    if isinstance(value, dict):
        if _escaped(value):
            return {LITERAL: {k: rewrite(v, change) for k, v in value[LITERAL].items()}}
        return {k: rewrite(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, change) for v in value]
    return value


def references(value: Any) -> list[Ref]:
    """Every reference in ``value`` (encoded), in order, repeats included."""
    found: list[Ref] = []

    def collect(ref: Ref) -> Ref:
        found.append(ref)
        return ref

    rewrite(value, collect)
    return found


def resolve(value: Any, value_of: Callable[[Ref], Any]) -> Any:
    """``value`` (encoded) as the function receives it: markers replaced by
    ``value_of(ref)``, escaped dicts unwrapped."""
    if is_marker(value):
        return value_of(Ref.of(value[FROM]))
    if isinstance(value, dict):
        if _escaped(value):
            return {k: resolve(v, value_of) for k, v in value[LITERAL].items()}
        return {k: resolve(v, value_of) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, value_of) for v in value]
    return value


def from_yaml(value: Any) -> Any:
    """A YAML argument with ``{from: NAME}`` / ``{from: NAME, key: K}`` mappings turned
    into markers (other dicts escaped as :func:`encode` does)."""

    def to_ref(item: Any) -> Ref | None:
        if isinstance(item, Mapping) and is_yaml_ref(item):
            return Ref(str(item["from"]), path=item.get("key"))
        return None

    return encode(value, to_ref)


def is_yaml_ref(item: Mapping[Any, Any]) -> bool:
    """True for a YAML reference: a mapping with ``from`` and at most ``key`` besides."""
    return "from" in item and set(item) <= {"from", "key"}


def yaml_references(
    value: Any, path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Any, Any]]:
    """``(path, from, key)`` for each ``{from: ...}`` mapping in a YAML argument value."""
    found: list[tuple[tuple[str | int, ...], Any, Any]] = []
    if isinstance(value, Mapping):
        if is_yaml_ref(value):
            return [(path, value.get("from"), value.get("key"))]
        for k, v in value.items():
            found.extend(yaml_references(v, (*path, str(k))))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(yaml_references(v, (*path, i)))
    return found


def return_key(name: str) -> str:
    """The XCom key a task's return value is pushed under when another task takes it as
    an argument and the task sets no ``xcom_push`` key of its own."""
    return f"{name}.return_value"


__all__ = [
    "FROM",
    "LITERAL",
    "Ref",
    "encode",
    "from_yaml",
    "is_marker",
    "is_yaml_ref",
    "references",
    "resolve",
    "return_key",
    "rewrite",
    "yaml_references",
]
