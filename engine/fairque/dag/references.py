"""Return values as arguments in YAML DAG files: ``{from: extract}`` and
``{from: extract, key: rows}`` in ``args``, ``kwargs``, ``partial`` and ``expand``.

Pure functions of the parsed document (the checks :mod:`fairque.dag.validate` locates
by line:column, and the edges they add): a reference makes its task run after the task
it names, exactly like a ``depends_on`` entry.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any

from fairque.core.refs import yaml_references
from fairque.core.schemas import did_you_mean

ARGUMENT_KEYS = ("args", "kwargs", "partial", "expand")
"""The task keys whose values may hold ``{from: ...}`` references."""

Path_ = tuple[str | int, ...]


def task_references(spec: Mapping[str, Any]) -> list[tuple[Path_, Any, Any]]:
    """``(path within the task, from, key)`` for every reference of one task."""
    return [
        ((section, *path), source, key)
        for section in ARGUMENT_KEYS
        if section in spec
        for path, source, key in yaml_references(spec[section])
    ]


def reference_edges(tasks: Mapping[str, Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(upstream, task) for every reference to a known task."""
    return {
        (source, name)
        for name, spec in tasks.items()
        for _, source, _ in task_references(spec)
        if isinstance(source, str) and source in tasks and source != name
    }


def reference_problems(tasks: Mapping[str, Mapping[str, Any]]) -> list[tuple[Path_, str]]:
    """``(path, message)`` for references to no task of the DAG or to the task itself,
    with a bad ``key``, and for an ``expand`` that is not one argument mapped over a
    reference."""
    found: list[tuple[Path_, str]] = []
    for name, spec in tasks.items():
        for path, source, key in task_references(spec):
            where: Path_ = ("tasks", name, *path)
            if not isinstance(source, str):
                found.append((where, f"task {name!r}: 'from' must be a task name"))
            elif source == name:
                found.append((where, f"task {name!r} takes its own return value"))
            elif source not in tasks:
                found.append(
                    (
                        where,
                        f"task {name!r} takes the return value of {source!r}, which is not "
                        f"a task of this DAG{did_you_mean(source, tasks)}",
                    )
                )
            if key is not None and not isinstance(key, str):
                found.append((where, f"task {name!r}: 'key' must be a string"))
        found.extend((("tasks", name, "expand"), text) for text in _expand_problems(spec))
    return found


def _expand_problems(spec: Mapping[str, Any]) -> list[str]:
    expand = spec.get("expand")
    if expand is None:
        if "partial" in spec:
            return [
                "partial gives the shared arguments of a mapped task: add expand, or use kwargs"
            ]
        return []
    if not isinstance(expand, Mapping) or len(expand) != 1:
        return ["expand maps exactly one argument: expand: {ARG: {from: TASK}}"]
    ((arg, value),) = expand.items()
    if not (isinstance(value, Mapping) and "from" in value and set(value) <= {"from", "key"}):
        return [
            f"expand maps argument {arg!r} over another task's return value "
            f"({{from: TASK}}), not a value given here; for a fixed list, write one task per item"
        ]
    partial = spec.get("partial")
    if isinstance(partial, Mapping) and arg in partial:
        return [f"argument {arg!r} is in both partial and expand"]
    return []


_NOT_LISTS = (dict, str, bytes, int, float, bool, type(None), Mapping)


def not_a_list_type(function: object) -> str | None:
    """The declared return type of ``function`` when it is clearly not a list (a dict,
    a string, a number, a bool, None), else None (a list, a sequence, no annotation, or
    an annotation that cannot be read)."""
    target = getattr(function, "__fairque_function__", function)
    try:
        declared = typing.get_type_hints(target).get("return")
    except Exception:  # an annotation naming what the module does not define
        return None
    if declared is None:
        return None
    origin = typing.get_origin(declared) or declared
    if isinstance(origin, type) and issubclass(origin, _NOT_LISTS):
        return getattr(declared, "__name__", None) or str(declared)
    return None


def expand_type_problems(
    tasks: Mapping[str, Mapping[str, Any]], function_of: Callable[[str], object]
) -> list[tuple[Path_, str]]:
    """``(path, message)`` for an ``expand`` over the whole return value of a task
    whose callable (``function_of(task name)``, None when unknown) declares a return
    type that is not a list."""
    found: list[tuple[Path_, str]] = []
    for name, spec in tasks.items():
        expand = spec.get("expand")
        if not isinstance(expand, Mapping) or len(expand) != 1:
            continue
        ((arg, value),) = expand.items()
        if not isinstance(value, Mapping) or value.get("key") is not None:
            continue
        source = value.get("from")
        if not isinstance(source, str) or source not in tasks:
            continue
        declared = not_a_list_type(function_of(source))
        if declared:
            found.append(
                (
                    ("tasks", name, "expand", str(arg)),
                    f"task {name!r} maps over the return value of {source!r}, whose callable "
                    f"declares it returns {declared}, not a list",
                )
            )
    return found


__all__ = [
    "ARGUMENT_KEYS",
    "expand_type_problems",
    "not_a_list_type",
    "reference_edges",
    "reference_problems",
    "task_references",
]
