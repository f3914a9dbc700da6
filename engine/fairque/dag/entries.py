"""What the DAG cache keeps of a YAML DAG file, and DAGs built only when used.

A :class:`YamlDoc` is everything about a YAML DAG file that depends on its bytes alone:
the problems found in it (all but the callables'), where it names functions, the
document itself and the line of its ``dag_id``. The callables are checked again on
every load (they depend on code, not on the file), once per function per load.
:class:`DagInfo` answers ``fairque dag list`` without building the DAG; a
:class:`DagTable` builds each DAG on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fairque.core.errors import DagError, FairQueueError
from fairque.dag.groups import task_count
from fairque.dag.model import DAG
from fairque.dag.validate import Problem

_TAGS = {"$date": date.fromisoformat, "$datetime": datetime.fromisoformat}


class Inexact(ValueError):
    """A document that JSON cannot hold as it is (bytes, sets, non-string keys...)."""


def to_json_data(value: Any) -> Any:
    """``value`` (a safe-loaded YAML document) as JSON data, dates and datetimes as
    ``{"$date": iso}`` / ``{"$datetime": iso}``; :class:`Inexact` when it cannot be
    kept exactly."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Inexact("a float JSON does not have")
        return value
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, list):
        return [to_json_data(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value) or (
            len(value) == 1 and next(iter(value)) in _TAGS
        ):
            raise Inexact("keys JSON does not have")
        return {key: to_json_data(item) for key, item in value.items()}
    raise Inexact(type(value).__name__)


def from_json_data(value: Any) -> Any:
    """The inverse of :func:`to_json_data`."""
    if isinstance(value, list):
        return [from_json_data(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            tag, text = next(iter(value.items()))
            if tag in _TAGS:
                return _TAGS[tag](text)
        return {key: from_json_data(item) for key, item in value.items()}
    return value


def _problem(file: str, data: dict[str, Any]) -> Problem:
    return Problem(file, data["line"], data["column"], data["pointer"], data["message"])


def _problem_data(problem: Problem) -> dict[str, Any]:
    data = problem.to_dict()
    del data["file"]
    return data


@dataclass
class YamlDoc:
    """The facts of one YAML DAG file that depend on its bytes alone: its problems but
    those that depend on code, where it names functions and where its ``expand`` keys
    are (to place the problems that do), the document and the line of its dag_id."""

    problems: list[Problem]
    callables: list[tuple[Problem, str]] = field(default_factory=list)
    data: Any = None
    line: int | None = None
    places: dict[str, Problem] = field(default_factory=dict)  # expand keys, by pointer

    def to_entry(self) -> dict[str, Any]:
        """The JSON entry of the cache (Inexact when the document cannot be kept, and
        it is needed: only a file without problems is built)."""
        needed = not self.problems or self.places  # to build, or to check expand types
        data = to_json_data(self.data) if needed else None
        return {
            "problems": [_problem_data(p) for p in self.problems],
            "callables": [[_problem_data(where), path] for where, path in self.callables],
            "data": data,
            "tagged": data != self.data,  # dates: decoded on the way back
            "line": self.line,
            "places": {pointer: _problem_data(p) for pointer, p in self.places.items()},
        }

    @classmethod
    def from_entry(cls, file: str, entry: dict[str, Any]) -> YamlDoc:
        """The document of a cache entry, its problems about ``file``."""
        return cls(
            problems=[_problem(file, p) for p in entry["problems"]],
            callables=[(_problem(file, where), path) for where, path in entry["callables"]],
            data=from_json_data(entry["data"]) if entry["tagged"] else entry["data"],
            line=entry["line"],
            places={pointer: _problem(file, p) for pointer, p in entry["places"].items()},
        )

    def info(self, source: str) -> DagInfo:
        """What ``dag list`` shows of the DAG (the document must be valid)."""
        data = self.data
        return DagInfo(
            dag_id=data["dag_id"],
            schedule=data.get("schedule"),
            timezone=data.get("timezone", "UTC"),
            description=data.get("description", ""),
            tasks=task_count(data),
            source=source,
        )


@dataclass(frozen=True)
class DagInfo:
    """A DAG's summary, known without building it."""

    dag_id: str
    schedule: str | None
    timezone: str
    description: str
    tasks: int
    source: str | None

    @classmethod
    def of(cls, dag: DAG) -> DagInfo:
        """The summary of a built DAG."""
        return cls(
            dag.dag_id,
            dag.schedule,
            dag.timezone,
            dag.description,
            len(dag.pipeline.nodes),
            dag.source,
        )


@dataclass(frozen=True)
class DagRef:
    """A DAG not built yet: its summary and how to build it."""

    info: DagInfo
    build: Callable[[], DAG]


class DagTable(MutableMapping[str, DAG]):
    """DAGs by id, each built on first use (a :class:`DagRef` until then). A DAG whose
    build fails then raises DagError naming its file."""

    def __init__(self, items: dict[str, DAG | DagRef] | None = None) -> None:
        self._items: dict[str, DAG | DagRef] = dict(items or {})

    def __getitem__(self, dag_id: str) -> DAG:
        item = self._items[dag_id]
        if isinstance(item, DagRef):
            try:
                built = item.build()
            except FairQueueError as e:
                raise DagError(f"DAG {dag_id!r} ({item.info.source}): {e}") from e
            self._items[dag_id] = item = built
        return item

    def __setitem__(self, dag_id: str, value: DAG | DagRef) -> None:
        self._items[dag_id] = value

    def __delitem__(self, dag_id: str) -> None:
        del self._items[dag_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, dag_id: object) -> bool:
        return dag_id in self._items  # without building it

    def info(self, dag_id: str) -> DagInfo:
        """The summary of ``dag_id`` (KeyError if unknown), without building it."""
        item = self._items[dag_id]
        return item.info if isinstance(item, DagRef) else DagInfo.of(item)

    def __repr__(self) -> str:
        return f"DagTable({sorted(self._items)})"


__all__ = [
    "DagInfo",
    "DagRef",
    "DagTable",
    "Inexact",
    "YamlDoc",
    "from_json_data",
    "to_json_data",
]
