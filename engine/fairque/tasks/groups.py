"""``TaskGroup``: name a part of a pipeline, give it defaults, depend on it as a whole.

Used as a context manager, a group takes every task made by an ``@task`` call and every
pipeline built inside its ``with`` block::

    with TaskGroup("ingest", default_args={"max_retries": 2}) as ingest:
        fetch() >> parse()
    pipeline = start() >> ingest >> report()

or given its pipeline directly: ``TaskGroup("ingest", fetch() >> parse())``. On leaving
the block its tasks are renamed ``ingest.fetch``, ``ingest.parse`` (nested groups:
``outer.inner.task``), its ``default_args`` fill what they leave at the default (an
inner group's win, any group's over the DAG's), and the group is a pipeline operand:
``ingest >> report()`` puts every leaf of the group (a member with no downstream member)
before every root of what follows. Use the group, not a task made inside the block,
outside it. YAML DAG files say the same with ``groups:`` (:mod:`fairque.dag.groups`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from fairque.core.errors import DagError, TaskError
from fairque.core.models import Setter, Task, task_fields, validate_identifier
from fairque.core.schemas import did_you_mean
from fairque.tasks.pipeline import (
    _COLLECTORS,
    Pipeline,
    PipelineLike,
    clone_task,
    collected,
)

T = TypeVar("T")


def _quietly(make: Callable[[], T]) -> T:
    """``make()`` with no TaskGroup collecting what it builds."""
    token = _COLLECTORS.set(())
    try:
        return make()
    finally:
        _COLLECTORS.reset(token)


_DEFAULT_ARGS = task_fields(Setter.DEFAULT_ARGS)
_DEFAULT_KEYS = tuple(spec.key for spec in _DEFAULT_ARGS)


def apply_default_args(task: Task, defaults: Mapping[str, Any]) -> Task:
    """``task`` with ``defaults`` (``default_args`` keys) filled into the fields it leaves
    at their default; the task itself when nothing changes."""
    changes = {
        spec.name: defaults[spec.key]
        for spec in _DEFAULT_ARGS
        if spec.key in defaults and getattr(task, spec.name) == spec.default
    }
    return clone_task(task, **changes) if changes else task


def default_args_problem(defaults: Mapping[str, Any]) -> str | None:
    """Why ``defaults`` is not a valid ``default_args`` mapping, or None."""
    unknown = [key for key in defaults if key not in _DEFAULT_KEYS]
    if not unknown:
        return None
    return (
        f"unknown default_args key {unknown[0]!r}{did_you_mean(unknown[0], _DEFAULT_KEYS)}; "
        f"known: {', '.join(_DEFAULT_KEYS)}"
    )


class TaskGroup:
    """A named group of tasks (see the module's notes)."""

    def __init__(
        self,
        group_id: str,
        pipeline: Task | Pipeline | PipelineLike | None = None,
        *,
        default_args: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> None:
        validate_identifier(group_id, "group_id")
        if "." in group_id:
            raise TaskError(f"group_id {group_id!r} must not contain '.' (it joins nested names)")
        self.group_id = group_id
        self.description = description
        self.default_args = dict(default_args or {})
        problem = default_args_problem(self.default_args)
        if problem:
            raise DagError(f"task group {group_id!r}: {problem}")
        self._items: list[Task | Pipeline | TaskGroup] = []
        self._consumed: set[int] = set()  # ids of the task objects the group took
        self._pipeline: Pipeline | None = None
        self._token: Any = None
        if pipeline is not None:
            self._items.append(_quietly(lambda: Pipeline.of(pipeline)))
            self._finish()

    # --- building ------------------------------------------------------------------------

    def __enter__(self) -> TaskGroup:
        if self._pipeline is not None or self._token is not None:
            raise DagError(f"task group {self.group_id!r} is already built; make a new one")
        self._token = _COLLECTORS.set((*_COLLECTORS.get(), self))
        return self

    def _collect(self, item: Task | Pipeline | TaskGroup, replacing: object = None) -> None:
        """Take what was made inside the block (see ``collected``)."""
        if replacing is not None:
            self._items = [i for i in self._items if i is not replacing]
        self._items.append(item)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _COLLECTORS.reset(self._token)
        if kind is None:
            self._finish()

    def _finish(self) -> None:
        self._pipeline = _quietly(self._build)
        collected(self)  # to the enclosing group, if any

    def _parts(self) -> list[Pipeline]:
        """What the group holds: nested groups' pipelines, and the tasks and pipelines
        made here that no nested group took."""
        taken: set[int] = set()
        for item in self._items:
            if isinstance(item, TaskGroup):
                taken |= item._consumed
        parts = [i.pipeline for i in self._items if isinstance(i, TaskGroup)]
        for item in self._items:
            if isinstance(item, Task) and id(item) not in taken:
                parts.append(Pipeline.of(item))
            elif isinstance(item, Pipeline):
                kept = {n: t for n, t in item.nodes.items() if id(t) not in taken}
                if kept:
                    edges = frozenset((a, b) for a, b in item.edges if a in kept and b in kept)
                    parts.append(Pipeline(kept, edges, groups=item.groups))
        self._consumed = taken | {id(t) for p in parts for t in p.nodes.values()}
        return parts

    def _build(self) -> Pipeline:
        """The union of the group's parts, renamed under the group, defaults applied."""
        nodes: dict[str, Task] = {}
        edges: set[tuple[str, str]] = set()
        groups: set[str] = set()
        for part in self._parts():
            for name, task in part.nodes.items():
                if nodes.setdefault(name, task) is not task:
                    raise DagError(
                        f"task group {self.group_id!r}: two different tasks are named {name!r}; "
                        "give one of them its own task_id"
                    )
            edges |= part.edges
            groups |= part.groups
        if not nodes:
            raise DagError(f"task group {self.group_id!r} has no tasks")
        prefix = f"{self.group_id}."
        renamed = {name: prefix + name for name in nodes}
        new_nodes = {}
        for name, task in nodes.items():
            deps = [renamed.get(d, d) for d in task.depends_on]
            task = clone_task(task, name=renamed[name], depends_on=deps)
            new_nodes[renamed[name]] = apply_default_args(task, self.default_args)
        new_edges = frozenset((renamed[a], renamed[b]) for a, b in edges)
        heads = tuple(n for n in new_nodes if not any(b == n for _, b in new_edges))
        tails = tuple(n for n in new_nodes if not any(a == n for a, _ in new_edges))
        nested = frozenset({prefix + g for g in groups} | {self.group_id})
        return Pipeline(new_nodes, new_edges, heads, tails, nested)

    # --- using ---------------------------------------------------------------------------

    @property
    def pipeline(self) -> Pipeline:
        """The group's tasks and edges (roots as heads, leaves as tails)."""
        if self._pipeline is None:
            raise DagError(
                f"task group {self.group_id!r} is used before its `with` block ended; use it "
                "as a dependency after the block"
            )
        return self._pipeline

    def __fairque_pipeline__(self) -> Pipeline:
        return self.pipeline

    def __fairque_run__(self) -> Pipeline:
        """What ``queue.enqueue(group)`` runs: the group's pipeline."""
        return self.pipeline

    @property
    def roots(self) -> tuple[str, ...]:
        """Members with no upstream member."""
        return self.pipeline.heads

    @property
    def leaves(self) -> tuple[str, ...]:
        """Members with no downstream member."""
        return self.pipeline.tails

    def __rshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.pipeline.then(other)

    def __rrshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(other).then(self.pipeline)

    def __lshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(other).then(self.pipeline)

    def __rlshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.pipeline.then(other)

    def __or__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.pipeline.union(other)

    def __ror__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(other).union(self.pipeline)

    def __repr__(self) -> str:
        state = "being built" if self._pipeline is None else f"{len(self.pipeline)} task(s)"
        return f"<TaskGroup {self.group_id} ({state})>"


__all__ = ["TaskGroup", "apply_default_args", "default_args_problem"]
