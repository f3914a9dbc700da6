"""The rules DAG files and DAG objects share. Each returns problems; ``DAG()`` raises
the first (:mod:`fairque.dag.model`), ``fairque dag validate`` locates them all
(:mod:`fairque.dag.validate`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fairque.core.cron import cron_problem, timezone_problem
from fairque.core.errors import DagError, shorten
from fairque.core.imports import parse_import_path
from fairque.core.schemas import did_you_mean
from fairque.dag import templates
from fairque.dag.params import ParamSpec

RUN_CALLBACKS = ("on_failure_callback", "on_success_callback")
"""The DAG settings naming a function called when a run ends."""


def run_end_problems(
    timeout: object, on_failure: object, on_success: object
) -> list[tuple[str, str]]:
    """(setting, problem) for a bad ``dagrun_timeout_seconds`` (a positive number of
    seconds, or None) or run callback (``module:function``, or None). Whether the
    callback's module is allowed is checked where the import rule is known."""
    problems: list[tuple[str, str]] = []
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        problems.append(
            (
                "dagrun_timeout_seconds",
                f"must be a positive number of seconds, not {shorten(timeout)}",
            )
        )
    for name, value in zip(RUN_CALLBACKS, (on_failure, on_success), strict=True):
        if value is None:
            continue
        parsed = parse_import_path(value)
        if isinstance(parsed, str):
            problems.append((name, parsed))
    return problems


def schedule_problems(schedule: object, timezone: object) -> list[tuple[str, str]]:
    """``(field, message)`` for a bad cron ``schedule`` (None: manual only) or time zone."""
    found = [("schedule", None if schedule is None else _schedule_problem(schedule))]
    found.append(("timezone", timezone_problem(timezone)))
    return [(where, text) for where, text in found if text]


def _schedule_problem(schedule: object) -> str | None:
    """:func:`cron_problem`, remembered for text: a thousand DAG files share a few
    schedules, each checked twice (the document, then the DAG)."""
    return _cron_text_problem(schedule) if isinstance(schedule, str) else cron_problem(schedule)


_cron_text_problem = functools.lru_cache(maxsize=1024)(cron_problem)


def dependency_problems(
    depends_on: Mapping[str, Sequence[str]], known: Collection[str]
) -> list[tuple[str, int, str]]:
    """``(task, index, message)`` for each ``depends_on`` entry that names the task
    itself or no task in ``known``."""
    found: list[tuple[str, int, str]] = []
    for name, upstreams in depends_on.items():
        for i, upstream in enumerate(upstreams):
            if upstream == name:
                text = f"task {name!r} depends on itself; remove it from its own depends_on"
            elif upstream not in known:
                text = (
                    f"task {name!r} depends on {upstream!r}, which is not a task of this "
                    f"DAG{did_you_mean(upstream, known)}"
                )
            else:
                continue
            found.append((name, i, text))
    return found


def param_problems(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, message)`` for each param spec (a ParamSpec or its YAML mapping) that is
    malformed or whose default or enum does not fit its type."""
    found: list[tuple[str, str]] = []
    for name, spec in params.items():
        try:
            problems = ParamSpec.of(spec).problems()
        except DagError as e:
            problems = [str(e)]
        found.extend((name, f"param {name!r}: {p}") for p in problems)
    return found


def placeholder_problems(
    task: str, values: Mapping[str, Any], params: Collection[str]
) -> list[tuple[templates.Where, str]]:
    """``(where, message)`` for each template in a task's ``values`` (its args and kwargs
    by key; ``where`` starts with that key) that does not parse, uses an unknown variable
    or a ``params.NAME`` naming no param (see :func:`fairque.dag.templates.problems`)."""
    return [
        ((key, *where), f"task {task!r}: {text}")
        for key, value in values.items()
        for where, text in templates.problems(value, params)
    ]


__all__ = [
    "RUN_CALLBACKS",
    "dependency_problems",
    "param_problems",
    "placeholder_problems",
    "run_end_problems",
    "schedule_problems",
]
