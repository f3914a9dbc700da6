"""Pipelines: immutable task graphs built with ``>>``, ``<<`` and ``|``.

A :class:`Pipeline` maps logical names to task templates and holds the edges between
them. ``a >> b`` links every tail of ``a`` to every head of ``b``; ``a << b`` is
``b >> a``; ``a | b`` puts two graphs side by side. Operators return new pipelines and
never change their operands. A task's own ``depends_on`` names add edges when they name
a node of the pipeline (by name, else by task_id); other names are *external*
dependencies, which the queue checks in Redis.

:meth:`Pipeline.compile` turns the templates into the task records of one run:
``task_id = "<run_id>:<name>"``, so one pipeline can run many times at once.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from fairque.core.errors import DagCycleError, DagError, TaskError
from fairque.core.graph import find_cycle, topological_order
from fairque.core.models import Setter, Task, task_fields, validate_identifier
from fairque.tasks.dataflow import bind_references, resolve_node

T = TypeVar("T", bound=Task)

_COLLECTORS: ContextVar[tuple[Any, ...]] = ContextVar("fairque_task_groups", default=())
"""The TaskGroups being built (``with TaskGroup(...)``), innermost last: each new
Pipeline, and each task an ``@task`` call makes, is handed to the innermost one."""


def collected(item: object, replacing: object = None) -> None:
    """Hand ``item`` (a Task, Pipeline or TaskGroup) to the innermost TaskGroup being
    built, if any; ``replacing`` is a task it stands for (``with_options`` made ``item``
    from it), which the group forgets."""
    for group in _COLLECTORS.get()[-1:]:
        group._collect(item, replacing)


class PipelineLike(Protocol):
    """What ``>>``, ``<<`` and ``|`` accept besides Tasks and Pipelines (a TaskGroup)."""

    def __fairque_pipeline__(self) -> Pipeline: ...


_TEMPLATE_FIELDS = tuple(
    spec.name
    for spec in task_fields(Setter.TASK)
    if spec.name not in ("created_at", "run_id")  # set when a run is compiled
)


def node_name(task: Task) -> str:
    """A task's logical name in a pipeline: its ``name``, else its ``task_id``."""
    return task.name or task.task_id


def clone_task(task: T, **changes: Any) -> T:
    """A validated deep copy of ``task`` with ``changes`` applied; ``task`` is untouched.

    The copy keeps the task's class and private attributes (a FunctionTask keeps its
    function), and shares no list or dict with the original.
    """
    known = {f.name for f in fields(task)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TaskError(f"unknown Task field(s) {unknown}")
    kept = {name: copy.deepcopy(getattr(task, name)) for name in known - changes.keys()}
    new = replace(task, **kept, **changes)
    for name, value in vars(task).items():
        if name not in known:  # private attributes, e.g. a FunctionTask's function
            object.__setattr__(new, name, value)
    new.validate()
    return new


@dataclass(frozen=True, repr=False)
class Pipeline:
    """An immutable DAG of task templates: ``nodes`` (name -> task), ``edges``
    (upstream, downstream), and the ``heads``/``tails`` that ``>>`` connects."""

    nodes: Mapping[str, Task]
    edges: frozenset[tuple[str, str]] = frozenset()
    heads: tuple[str, ...] = ()
    tails: tuple[str, ...] = ()
    groups: frozenset[str] = frozenset()
    """The full names of the task groups whose tasks it holds (``ingest``,
    ``ingest.raw``): a task ``ingest.fetch`` belongs to ``ingest`` (see TaskGroup)."""

    def __post_init__(self) -> None:
        nodes = dict(self.nodes)
        for name in nodes:
            validate_identifier(name, "task name")
        edges = set(self.edges) | _implied_edges(nodes)
        for a, b in edges:
            if a not in nodes or b not in nodes:
                raise DagError(f"edge {a!r} -> {b!r} names a task that is not in the pipeline")
        for name in (*self.heads, *self.tails):
            if name not in nodes:
                raise DagError(f"head/tail {name!r} is not a task of the pipeline")
        object.__setattr__(self, "nodes", MappingProxyType(nodes))
        object.__setattr__(self, "edges", frozenset(edges))
        object.__setattr__(self, "heads", _unique(self.heads))
        object.__setattr__(self, "tails", _unique(self.tails))
        object.__setattr__(self, "groups", frozenset(self.groups))
        collected(self)

    # --- building ----------------------------------------------------------------------

    @classmethod
    def of(cls, *items: Task | Pipeline | PipelineLike) -> Pipeline:
        """Tasks and pipelines side by side (like ``a | b | c``); a task is named by
        its ``name``, else its ``task_id``."""
        result = cls({})
        for item in items:
            result = result | item
        return result

    def then(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        """``self >> other``: every tail of self runs before every head of other."""
        right = _as_pipeline(other)
        links = {(tail, head) for tail in self.tails for head in right.heads}
        return Pipeline(
            _merge(self.nodes, right.nodes),
            self.edges | right.edges | links,
            self.heads,
            right.tails,
            self.groups | right.groups,
        )

    def union(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        """``self | other``: both graphs, heads and tails side by side."""
        right = _as_pipeline(other)
        return Pipeline(
            _merge(self.nodes, right.nodes),
            self.edges | right.edges,
            self.heads + right.heads,
            self.tails + right.tails,
            self.groups | right.groups,
        )

    def __rshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.then(other)

    def __rrshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return _as_pipeline(other).then(self)

    def __lshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return _as_pipeline(other).then(self)

    def __rlshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.then(other)

    def __or__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return self.union(other)

    def __ror__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return _as_pipeline(other).union(self)

    # --- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __repr__(self) -> str:
        edges = ", ".join(f"{a}>>{b}" for a, b in sorted(self.edges))
        return f"Pipeline(nodes={list(self.nodes)}, edges=[{edges}])"

    def upstreams(self, name: str) -> list[str]:
        """The names that must end before ``name`` may run, sorted."""
        return sorted(a for a, b in self.edges if b == name)

    def external_dependencies(self) -> dict[str, list[str]]:
        """Per task name, its ``depends_on`` entries that are not tasks of this pipeline."""
        out: dict[str, list[str]] = {}
        for name, task in self.nodes.items():
            missing = [d for d in task.depends_on if _resolve(self.nodes, d) is None]
            if missing:
                out[name] = missing
        return out

    def graph(self) -> Any:
        """A ``networkx.DiGraph``: one node per name (attribute ``task``), one edge per link.

        networkx is imported here, on first use; fairque's own checks use
        :mod:`fairque.core.graph`."""
        import networkx as nx

        g = nx.DiGraph()
        for name, task in self.nodes.items():
            g.add_node(name, task=task)
        g.add_edges_from(sorted(self.edges))
        return g

    def validate(self) -> None:
        """Raise DagError for a self-dependency, DagCycleError (a closed path) for a cycle."""
        loops = sorted(a for a, b in self.edges if a == b)
        if loops:
            raise DagError(
                f"task {loops[0]!r} depends on itself; remove it from its own depends_on "
                "or from one side of >>"
            )
        cycle = find_cycle(self.nodes, self.edges)
        if cycle is not None:
            raise DagCycleError(cycle)

    def order(self) -> list[str]:
        """A topological order of the names (validated), ties broken by name."""
        self.validate()
        return topological_order(self.nodes, self.edges)

    # --- compiling ---------------------------------------------------------------------

    def compile(self, run_id: str, *, user_id: str | None = None) -> list[Task]:
        """The task records of one run, in topological order; templates are untouched.

        Each copy gets ``task_id = "<run_id>:<name>"``, ``run_id``, ``name``, and
        ``depends_on`` = its upstreams' task ids plus its external dependencies as given;
        ``user_id`` replaces every task's user when given.
        """
        validate_identifier(run_id, "run_id")
        if user_id is not None:
            validate_identifier(user_id, "user_id")
        external = self.external_dependencies()
        wiring = bind_references(self.nodes, run_id)
        for name, task in self.nodes.items():  # a mapped task's instances: {id}[i]
            if task.expand:
                last = f"{run_id}:{name}[{task.max_map_length - 1}]"
                validate_identifier(last, f"the id of mapped task {name!r}'s last instance")
        now = time.time()
        records: list[Task] = []
        for name in self.order():
            template = self.nodes[name]
            depends_on = [f"{run_id}:{up}" for up in self.upstreams(name)]
            records.append(
                clone_task(
                    template,
                    task_id=f"{run_id}:{name}",
                    run_id=run_id,
                    name=name,
                    depends_on=depends_on + external.get(name, []),
                    user_id=user_id or template.user_id,
                    created_at=now,
                    **wiring.get(name, {}),
                )
            )
        return records

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible description (for ``--dry-run`` displays)."""
        return {
            "nodes": {name: _describe(task) for name, task in self.nodes.items()},
            "edges": [[a, b] for a, b in sorted(self.edges)],
            "heads": list(self.heads),
            "tails": list(self.tails),
            "groups": sorted(self.groups),
            "external_dependencies": self.external_dependencies(),
        }


def _as_pipeline(item: object) -> Pipeline:
    if isinstance(item, Pipeline):
        return item
    as_pipeline = getattr(item, "__fairque_pipeline__", None)
    if as_pipeline is not None:  # a TaskGroup
        made: Pipeline = as_pipeline()
        return made
    if isinstance(item, Task):
        if getattr(item, "_upstreams", ()):
            return _taskflow(item)
        return Pipeline(
            {node_name(item): item}, frozenset(), (node_name(item),), (node_name(item),)
        )
    raise TypeError(
        f"a pipeline is built from Tasks and Pipelines, not {type(item).__name__}; "
        "call the @task function first: extract() >> load()"
    )


def _merge(left: Mapping[str, Task], right: Mapping[str, Task]) -> dict[str, Task]:
    merged = dict(left)
    for name, task in right.items():
        existing = merged.setdefault(name, task)
        if existing is not task:
            raise DagError(
                f"two different tasks are named {name!r} in one pipeline; give one of them "
                f"its own task_id (@task(task_id=...) or task.with_options(task_id=...))"
            )
    return merged


def _resolve(nodes: Mapping[str, Task], dependency: str) -> str | None:
    return resolve_node(nodes, dependency)


def _taskflow(last: Task) -> Pipeline:
    """The graph of a task that takes other tasks' return values (TaskFlow): it and its
    upstreams, recursively; a second task of the same name is named ``name__1``, ...
    (references name tasks by id, so renaming keeps them). Heads: the tasks taking
    no return value; tail: ``last``."""
    nodes: dict[str, Task] = {}
    seen: dict[int, str] = {}

    def visit(task: Task) -> str:
        if id(task) in seen:
            return seen[id(task)]
        for upstream in getattr(task, "_upstreams", ()):
            visit(upstream)
        name, n = node_name(task), 0
        while name in nodes:
            n += 1
            name = f"{node_name(task)}__{n}"
        nodes[name] = task if name == node_name(task) else clone_task(task, name=name)
        seen[id(task)] = name
        return name

    tail = visit(last)
    graph = Pipeline(nodes)
    heads = tuple(n for n in nodes if not graph.upstreams(n))
    return Pipeline(nodes, graph.edges, heads, (tail,))


def _implied_edges(nodes: Mapping[str, Task]) -> set[tuple[str, str]]:
    edges: set[tuple[str, str]] = set()
    for name, task in nodes.items():
        for dependency in task.depends_on:
            upstream = _resolve(nodes, dependency)
            if upstream is not None:
                edges.add((upstream, name))
    return edges


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _describe(task: Task) -> dict[str, Any]:
    data = task.to_dict()
    return {key: data[key] for key in _TEMPLATE_FIELDS}


__all__ = ["Pipeline", "clone_task", "node_name"]
