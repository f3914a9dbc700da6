"""``@branch`` and ``@sensor``: ``@task`` functions whose result steers the run.

A **branch** returns the name (or a list of names; None or ``[]`` for none) of the
direct downstream tasks to follow; the other direct downstream tasks are skipped
(CANCELED with ``skipped`` set), except those also downstream of a chosen one, and
skipping propagates per trigger rules. A name that is not a direct downstream task
fails the branch (no retry).

A **sensor** is called once per poke; False (or None) means "not yet": the task goes
back to SCHEDULED for its next poke ``poke_interval_seconds`` later, freeing the
worker's slot, and the poke does not count as an attempt. Any other result finishes
it. ``timeout_seconds`` after its first poke it fails (SensorTimeout, no retry), or is
skipped with ``soft_fail``. A sensor function that raises fails like any task
(retried per ``max_retries``).

Both are decided by the script that records the run's end (lua/_dynamic.lua) on
workers, and the same way by ``dag test`` (:mod:`fairque.tasks.inprocess`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any, ParamSpec, TypeVar, overload

from fairque.core.errors import BranchError
from fairque.core.sensors import (
    DEFAULT_POKE_INTERVAL_SECONDS,
    DEFAULT_SENSOR_TIMEOUT_SECONDS,
    sensor_spec,
)
from fairque.tasks.decorators import TaskDecorator, TaskFunction, TaskOptions, task

P = ParamSpec("P")
R = TypeVar("R")


def _decorator(options: dict[str, Any], **fields: Any) -> TaskDecorator:
    """``@task(**options)`` whose tasks also get ``fields`` (options checked by task())."""
    base = task(**options)
    return TaskDecorator(TaskOptions({**base.options.values, **fields}))


@overload
def branch(func: Callable[P, R], /) -> TaskFunction[P, R]: ...


@overload
def branch(func: None = None, /, **options: Any) -> TaskDecorator: ...


def branch(
    func: Callable[..., Any] | None = None, /, **options: Any
) -> TaskFunction[..., Any] | TaskDecorator:
    """Make a function a branch task; ``@branch`` or ``@branch(...)`` with ``@task``'s
    options. Its result names the direct downstream task(s) to follow."""
    decorator = _decorator(options, branch=True)
    return decorator if func is None else decorator(func)


@overload
def sensor(func: Callable[P, R], /) -> TaskFunction[P, R]: ...


@overload
def sensor(
    func: None = None,
    /,
    *,
    poke_interval_seconds: float = DEFAULT_POKE_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_SENSOR_TIMEOUT_SECONDS,
    soft_fail: bool = False,
    **options: Any,
) -> TaskDecorator: ...


def sensor(
    func: Callable[..., Any] | None = None,
    /,
    *,
    poke_interval_seconds: float = DEFAULT_POKE_INTERVAL_SECONDS,
    timeout_seconds: float = DEFAULT_SENSOR_TIMEOUT_SECONDS,
    soft_fail: bool = False,
    **options: Any,
) -> TaskFunction[..., Any] | TaskDecorator:
    """Make a function a sensor task; ``@sensor`` or ``@sensor(poke_interval_seconds=...,
    timeout_seconds=..., soft_fail=False, **task_options)``. ``timeout_seconds`` here is
    the sensor's (from its first poke); a single poke's limit is the task option
    ``timeout_seconds``, set with ``.with_options(timeout_seconds=...)``."""
    spec = sensor_spec(poke_interval_seconds, timeout_seconds, soft_fail)
    decorator = _decorator(options, sensor=spec)
    return decorator if func is None else decorator(func)


def branch_target(branch: str, returned: str, downstream: Collection[str]) -> str | None:
    """The direct downstream task a name returned by ``branch`` means: the name as it
    is, else inside the branch's own task group, then each enclosing one (``small``
    returned by ``work.route`` means ``work.small``); None when none is downstream."""
    if returned in downstream:
        return returned
    parts = branch.split(".")[:-1]
    for depth in range(len(parts), 0, -1):
        full = ".".join([*parts[:depth], returned])
        if full in downstream:
            return full
    return None


def branch_choice(branch: str, returned: str, downstream: Collection[str]) -> list[str]:
    """The direct downstream tasks a name returned by ``branch`` means: the task
    :func:`branch_target` finds, else the members of the task group it names (looked up
    the same way, ``ingest`` or ``work.ingest``) that are direct downstream tasks (the
    group's roots the branch leads to), sorted; [] when it means none."""
    target = branch_target(branch, returned, downstream)
    if target is not None:
        return [target]
    parts = branch.split(".")[:-1]
    for depth in [0, *range(len(parts), 0, -1)]:
        prefix = ".".join([*parts[:depth], returned]) + "."
        members = sorted(name for name in downstream if name.startswith(prefix))
        if members:
            return members
    return []


def chosen_branches(name: str, result: Any, downstream: Collection[str]) -> list[str]:
    """The task names branch ``name`` chose (its ``result``: a name, a list of names, or
    None for none), each one of its ``downstream`` tasks; BranchError otherwise (the
    words of lua/_dynamic.lua)."""
    chosen = [] if result is None else [result] if isinstance(result, str) else result
    shown = json.dumps(result, default=str, separators=(",", ":"))[:80]
    if not isinstance(chosen, list):
        raise BranchError(
            f"branch task {name}: it must return a task name or a list of task names, not {shown}"
        )
    found = []
    for item in chosen:
        if not isinstance(item, str):
            raise BranchError(
                f"branch task {name}: it must return task names (strings), not {shown}"
            )
        targets = branch_choice(name, item, downstream)
        if not targets:
            known = ", ".join(sorted(downstream)) or "none"
            raise BranchError(
                f"branch task {name}: it returned {json.dumps(item)}, which is not one of its "
                f"direct downstream tasks ({known})"
            )
        found += [t for t in targets if t not in found]
    return found


__all__ = ["branch", "branch_choice", "branch_target", "chosen_branches", "sensor"]
