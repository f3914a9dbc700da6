"""TaskFlow: other tasks' return values as arguments, and task mapping, between Python
and the records (the marker encoding is :mod:`fairque.core.refs`).

- :func:`bind_references` (when a pipeline is compiled): each reference names its
  upstream by node name and its XCom key; upstreams taken as arguments push their return
  value under :func:`~fairque.core.refs.return_key` unless they set ``xcom_push``.
- :func:`call_arguments` / :func:`acall_arguments` (when the task runs): the arguments
  with every reference replaced by the upstream's value, pulled through XCom (so the
  pull is in the run's lineage); a mapped instance gets its element of the list.
- :func:`map_problem`: why a value cannot be mapped over (the same words as the Lua
  check in ``lua/_mapping.lua``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fairque.core import refs
from fairque.core.errors import DagError, TaskError, shorten
from fairque.core.models import Task
from fairque.core.refs import Ref

if TYPE_CHECKING:
    from fairque.tasks.context import XComBackend

R = TypeVar("R")


def resolve_node(nodes: Mapping[str, Task], name_or_id: str) -> str | None:
    """The node of ``nodes`` called ``name_or_id``, else the one with that task_id."""
    if name_or_id in nodes:
        return name_or_id
    for name in sorted(nodes):
        if nodes[name].task_id == name_or_id:
            return name
    return None


def task_references(task: Task) -> list[Ref]:
    """Every reference in a task's args, kwargs and expand, in order."""
    return refs.references([task.args, task.kwargs, task.expand])


def reference_edges(nodes: Mapping[str, Task]) -> set[tuple[str, str]]:
    """(upstream, consumer) for every reference between nodes; DagError for a reference
    to a task that is not a node."""
    edges: set[tuple[str, str]] = set()
    for name, task in nodes.items():
        for ref in task_references(task):
            upstream = resolve_node(nodes, ref.task)
            if upstream is None:
                raise DagError(
                    f"task {name!r} takes the return value of {ref.task!r}, which is not a "
                    "task of this pipeline or DAG"
                )
            edges.add((upstream, name))
    return edges


def bind_references(
    nodes: Mapping[str, Task], run_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per node name, the field changes that wire its references: markers naming the
    upstream's node and XCom key (and, in ``expand``, the upstream's id in run
    ``run_id``), XCom on, the keys in ``xcom_pulls``; upstreams get their ``xcom_push_key``.
    DagError for a reference to an unknown task."""
    edges = reference_edges(nodes)
    changes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for upstream in sorted({a for a, _ in edges}):
        task = nodes[upstream]
        keys[upstream] = task.xcom_push_key or refs.return_key(upstream)
        if task.xcom_push_key is None:
            changes[upstream] = {"xcom_push_key": keys[upstream], "enable_xcom": True}
    for name in sorted({b for _, b in edges}):
        task = nodes[name]

        def bound(ref: Ref, source: bool = False) -> Ref:
            upstream = resolve_node(nodes, ref.task) or ref.task
            where = f"{run_id}:{upstream}" if source and run_id is not None else None
            return Ref(upstream, keys[upstream], ref.path, where)

        pulls = [bound(r).key for r in task_references(task)]
        changes.setdefault(name, {}).update(
            args=refs.rewrite(task.args, bound),
            kwargs=refs.rewrite(task.kwargs, bound),
            expand={a: refs.rewrite(m, lambda r: bound(r, True)) for a, m in task.expand.items()},
            enable_xcom=True,
            xcom_pulls=list(dict.fromkeys([*task.xcom_pulls, *(k for k in pulls if k)])),
        )
    return changes


# --- calls --------------------------------------------------------------------------------


class TaskOutput:
    """``task["key"]``: the value under ``key`` of a task's dict return value, as an
    argument of another task (YAML's ``{from: task, key: key}``)."""

    def __init__(self, task: Task, path: str) -> None:
        if not isinstance(path, str):
            raise TaskError(f"a task's return value is indexed by a key (str), not {shorten(path)}")
        self.task = task
        self.path = path

    def __repr__(self) -> str:
        return f"TaskOutput({self.task.label!r}, {self.path!r})"


def reference_to(value: object) -> tuple[Ref, Task] | None:
    """The reference an argument stands for (a task call, or ``task["key"]``) and its
    upstream task; None for a plain value."""
    if isinstance(value, TaskOutput):
        return Ref(value.task.task_id, path=value.path), value.task
    if isinstance(value, Task):
        return Ref(value.task_id), value
    return None


def encode_argument(value: Any, upstreams: list[Task]) -> Any:
    """``value`` encoded (:func:`fairque.core.refs.encode`), the upstream tasks it
    references appended to ``upstreams``."""

    def to_ref(item: Any) -> Ref | None:
        found = reference_to(item)
        if found is None:
            return None
        if all(up is not found[1] for up in upstreams):
            upstreams.append(found[1])
        return found[0]

    return refs.encode(value, to_ref)


class MappedCall(Generic[R]):
    """``f.partial(...)``: a task function with arguments shared by every instance of
    the mapped task that ``.expand(...)`` makes."""

    def __init__(self, function: Any, shared: Mapping[str, Any]) -> None:
        self.function = function
        self.shared = dict(shared)

    def expand(self, **mapped: Any) -> Any:
        """The mapped task (see ``TaskFunction.expand``; a FunctionTask); one argument is mapped."""
        name = self.function.__fairque_function__.__name__
        if len(mapped) != 1:
            raise TaskError(f"{name}.expand() maps over exactly one argument, not {len(mapped)}")
        (arg,) = mapped
        if arg in self.shared:
            raise TaskError(f"{name}: argument {arg!r} is given to both partial and expand")
        return self.function._make((), {**self.shared, **mapped}, mapped=arg)


# --- running ---------------------------------------------------------------------------


def _keys(task: Task) -> list[str]:
    wanted: list[str] = []
    for ref in task_references(task):
        if ref.key is None:
            raise TaskError(
                f"task {task.label!r} takes the return value of {ref.task!r}, but was not "
                "compiled into a run: enqueue the whole graph (queue.enqueue) or put it in a DAG"
            )
        wanted.append(ref.key)
    return list(dict.fromkeys(wanted))


def _bind(task: Task, pulled: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    def value_of(ref: Ref) -> Any:
        value = pulled[str(ref.key)]
        if ref.path is None:
            return value
        if not isinstance(value, dict) or ref.path not in value:
            raise TaskError(
                f"task {task.label!r} takes key {ref.path!r} of the return value of "
                f"{ref.task!r}, which is {shorten(value)}"
            )
        return value[ref.path]

    args = refs.resolve(task.args, value_of)
    kwargs = refs.resolve(task.kwargs, value_of)
    index = getattr(task, "map_index", None)
    for arg, marker in task.expand.items():
        if index is None:
            raise TaskError(f"mapped task {task.label!r} runs only as its instances")
        items = refs.resolve(marker, value_of)
        problem = map_problem(items, task.max_map_length)
        if problem or index >= len(items):
            raise TaskError(f"task {task.label!r} maps over {problem or 'a shorter list'}")
        kwargs[arg] = items[index]
    return args, kwargs


def call_arguments(task: Task, backend: XComBackend) -> tuple[list[Any], dict[str, Any]]:
    """The arguments the task's function is called with: references replaced by the
    upstreams' values, pulled from ``backend`` in the task's scope."""
    if not (task.args or task.kwargs or task.expand):
        return task.args, task.kwargs
    pulled = {key: backend.pull(task.xcom_scope, key, task.label) for key in _keys(task)}
    return _bind(task, pulled)


async def acall_arguments(task: Task, backend: XComBackend) -> tuple[list[Any], dict[str, Any]]:
    """:func:`call_arguments` from async code (awaited pulls when the backend has them)."""
    if not (task.args or task.kwargs or task.expand):
        return task.args, task.kwargs
    pulled: dict[str, Any] = {}
    for key in _keys(task):
        apull = getattr(backend, "apull", None)  # an AsyncXComBackend
        if apull is not None:
            pulled[key] = await apull(task.xcom_scope, key, task.label)
        else:
            pulled[key] = backend.pull(task.xcom_scope, key, task.label)
    return _bind(task, pulled)


def map_problem(value: Any, max_length: int) -> str | None:
    """Why ``value`` cannot be mapped over (not a list, or longer than ``max_length``)."""
    if not isinstance(value, list):
        return f"{shorten(value)} ({_json_kind(value)}), not a list"
    if len(value) > max_length:
        return f"a list of {len(value)} elements, more than max_map_length {max_length}"
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


__all__ = [
    "MappedCall",
    "TaskOutput",
    "acall_arguments",
    "bind_references",
    "call_arguments",
    "encode_argument",
    "map_problem",
    "reference_edges",
    "reference_to",
    "resolve_node",
    "task_references",
]
