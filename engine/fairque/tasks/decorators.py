"""``@task`` and ``@xcom_task``: module-level functions become task factories.

Calling a decorated function does not run it: it returns a :class:`FunctionTask` (a
:class:`~fairque.core.models.Task`) that records the function's import path
(``"module:qualname"``) and the call's arguments as JSON. Calling *that* task runs the
function here, in-process; pushing it to a queue runs it on a worker, which imports the
function by its path. Hence only plain module-level functions are accepted, and those
of a running script are pushed only when importing the script is harmless (see
:func:`task`).

Options are checked when decorating, arguments when calling; both raise a
:class:`~fairque.core.errors.TaskError` subclass that names the problem.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, cast, overload

from fairque.core.errors import TaskError, shorten
from fairque.core.imports import resolve_function
from fairque.core.models import (
    DEFAULT_MAX_MAP_LENGTH,
    DEFAULT_QUEUE,
    Priority,
    Setter,
    Task,
    TriggerRule,
    new_task_id,
    task_fields,
    to_json,
)
from fairque.tasks.context import XComBackend, ainvoke, check_xcom_key, invoke, local_xcom
from fairque.tasks.dataflow import (
    MappedCall,
    TaskOutput,
    encode_argument,
    reference_to,
    task_references,
)
from fairque.tasks.importpath import import_path, unpushable
from fairque.tasks.pipeline import Pipeline, PipelineLike, clone_task, collected

P = ParamSpec("P")
R = TypeVar("R")

_WITH_OPTIONS = frozenset(spec.name for spec in task_fields(Setter.OPTIONS))
_LIST_OPTIONS = frozenset(
    spec.name for spec in task_fields(Setter.OPTIONS) if isinstance(spec.default, list)
)
_DECORATOR_FIELDS = task_fields(Setter.DECORATOR)


class FunctionTask(Task, Generic[R]):
    """A Task made by calling an ``@task`` function; ``task()`` runs it in-process.

    It serialises exactly like a plain Task: the function itself is kept outside the
    dataclass fields (re-imported from ``func`` if a copy lost it).
    """

    _function: Callable[..., Any] | None = None
    _upstreams: tuple[Task, ...] = ()
    """The tasks whose return values this one takes as arguments (TaskFlow)."""

    @property
    def function(self) -> Callable[..., Any]:
        """The wrapped function (imported from ``func`` when not at hand)."""
        if self._function is None:
            self._function = resolve_function(str(self.func), ["*"])
        return self._function

    def __call__(self, *, xcom: XComBackend | None = None) -> R:
        """Run the function with the task's arguments inside a TaskContext and return
        its result; XCom goes to ``xcom`` or the process-wide in-memory XCom. Inside a
        running event loop use ``await task.run_async()`` instead."""
        self._alone("call")
        return cast(R, invoke(self, self.function, xcom or local_xcom()))

    def _alone(self, what: str) -> None:
        """TaskError when this task takes other tasks' return values and was not wired
        into a run (its references have no XCom key yet)."""
        unwired = [ref.task for ref in task_references(self) if ref.key is None]
        if unwired:
            ups = ", ".join(repr(up.label) for up in self._upstreams) or repr(unwired[0])
            raise TaskError(
                f"cannot {what} task {self.label!r} on its own: it takes the return value of "
                f"{ups}. Run the whole graph: queue.enqueue(task) (one run on the workers), "
                "a DAG (DAG(dag_id=..., pipeline=task)) or run_in_process(task)"
            )

    def __getitem__(self, key: str) -> TaskOutput:
        """``task["key"]``: the value under ``key`` of this task's dict return value, as
        an argument of another task."""
        return TaskOutput(self, key)

    def __fairque_run__(self) -> Pipeline | None:
        """The graph ``queue.enqueue`` runs: with the upstreams this task takes return
        values from (None when it takes none)."""
        return Pipeline.of(self) if self._upstreams else None

    def __fairque_task__(self) -> FunctionTask[R]:
        """This task, for ``queue.push``; a TaskError when a worker must not import its
        function (a script's function: see :func:`import_path`)."""
        problem = unpushable(str(self.func))
        if problem:
            raise TaskError(f"cannot push task {self.task_id!r}: {problem}")
        self._alone("push")
        return self

    async def run_async(self, *, xcom: XComBackend | None = None) -> R:
        """Like ``task()`` from async code: an ``async def`` function is awaited here."""
        self._alone("call")
        return cast(R, await ainvoke(self, self.function, xcom or local_xcom()))

    def with_options(self, **options: Any) -> FunctionTask[R]:
        """A validated copy with other options (``user_id``, ``priority``, ``task_id``,
        ``depends_on``, ...); a new ``task_id`` also renames the task unless ``name`` is
        given. The original is never changed."""
        unknown = sorted(set(options) - _WITH_OPTIONS)
        if unknown:
            raise TaskError(f"unknown option(s) {unknown}; use {sorted(_WITH_OPTIONS)}")
        changes = dict(options)
        if "task_id" in changes and "name" not in changes:
            changes["name"] = changes["task_id"]
        for key in _LIST_OPTIONS & changes.keys():
            changes[key] = _names(changes[key], key)
        copied = clone_task(self, **changes)
        collected(copied, replacing=self)  # in a TaskGroup, the copy stands for this task
        return copied

    def __rshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(self).then(other)

    def __lshift__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(other).then(self)

    def __or__(self, other: Task | Pipeline | PipelineLike) -> Pipeline:
        return Pipeline.of(self).union(other)


@dataclass(frozen=True)
class TaskOptions:
    """The validated options of an ``@task``, copied into every task it makes.

    ``values`` holds the field table's :attr:`~fairque.core.models.Setter.DECORATOR`
    fields by field name (``task_id`` None: every call gets a fresh id).
    """

    values: Mapping[str, Any]

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> TaskOptions:
        """Options from ``@task``'s keywords (named by the table's ``key``: ``xcom_push``)."""
        values: dict[str, Any] = {}
        for spec in _DECORATOR_FIELDS:
            value = keywords.get(spec.key, None if spec.required else spec.default)
            values[spec.name] = _names(value, spec.key) if isinstance(spec.default, list) else value
        return cls(values)

    def __post_init__(self) -> None:
        values = dict(self.values)
        for key in (values["xcom_push_key"], *values["xcom_pulls"]):
            if key is not None:
                check_xcom_key(key)
        if not isinstance(values["enable_xcom"], bool):
            raise TaskError(
                f"enable_xcom must be True or False, not {shorten(values['enable_xcom'])}"
            )
        task_id = values.pop("task_id")
        probe = Task(task_id=task_id or "probe", **values)
        probe.validate()
        normalised = {name: getattr(probe, name) for name in values}
        object.__setattr__(self, "values", MappingProxyType({"task_id": task_id, **normalised}))

    @property
    def task_id(self) -> str | None:
        """The fixed id (and name) of every task made, or None for a fresh id per call."""
        return cast("str | None", self.values["task_id"])

    def task_fields(self) -> dict[str, Any]:
        """Fresh keyword arguments for a Task (lists are new on every call)."""
        fresh = {k: copy.deepcopy(v) for k, v in self.values.items() if k != "task_id"}
        fresh["enable_xcom"] = fresh["enable_xcom"] or bool(
            fresh["xcom_push_key"] or fresh["xcom_pulls"]
        )
        return fresh


class TaskFunction(Generic[P, R]):
    """An ``@task`` function: calling it returns a :class:`FunctionTask` (it does not
    run the function). Keeps the function's name, docstring and signature;
    ``__fairque_function__`` is the function itself (what a worker runs)."""

    def __init__(
        self, function: Callable[P, Any], options: TaskOptions, push_key: str | None = None
    ) -> None:
        self.func_path = import_path(function)
        self.__fairque_function__ = function
        self.options = options
        self.push_key = push_key or options.values["xcom_push_key"]
        self.is_async = inspect.iscoroutinefunction(function)
        self._signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> FunctionTask[R]:
        """A new task that will call the function with these (JSON) arguments; another
        task (or ``task["key"]``) as an argument, also inside lists and dicts, passes
        its return value when the task runs, and runs before it."""
        return self._make(args, kwargs)

    def _make(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], mapped: str | None = None
    ) -> FunctionTask[Any]:
        upstreams: list[Task] = []
        json_args, json_kwargs = self._encode(args, kwargs, upstreams, mapped)
        expand = {}
        if mapped is not None:
            expand = {mapped: json_kwargs.pop(mapped)}
        fields = self.options.task_fields()
        fields["depends_on"] += [up.task_id for up in upstreams]
        made: FunctionTask[Any] = FunctionTask(
            task_id=self.options.task_id or new_task_id(),
            name=self.options.task_id or self.__fairque_function__.__name__,
            func=self.func_path,
            args=json_args,
            kwargs=json_kwargs,
            expand=expand,
            **fields,
        )
        made._function = self.__fairque_function__
        made._upstreams = tuple(upstreams)
        made.validate()
        collected(made)  # to the TaskGroup being built, if any
        return made

    def partial(self, **kwargs: Any) -> MappedCall[R]:
        """Arguments shared by every instance of a mapped task: ``f.partial(x=1).expand(
        item=g())``."""
        return MappedCall(self, kwargs)

    def expand(self, **mapped: Any) -> FunctionTask[list[R]]:
        """A mapped task: ``f.expand(item=g())`` runs ``f`` once per element of ``g``'s
        return value (a list), as instances ``f[0]``, ``f[1]``, ... created when ``g``
        ends; a task taking it as an argument gets the list of their results, in order."""
        made: FunctionTask[list[R]] = MappedCall(self, {}).expand(**mapped)
        return made

    def __repr__(self) -> str:
        return f"<TaskFunction {self.func_path}>"

    def __fairque_task__(self) -> FunctionTask[R]:
        """What ``queue.push(f)`` (or ``enqueue``, ``add_schedule``) makes of an ``@task``
        function that was not called: ``f()`` when it needs no arguments, else a
        TaskError that says to call it first."""
        name = self.__fairque_function__.__name__
        required = [
            p.name
            for p in self._signature.parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            raise TaskError(
                f"{name} is an @task function, not a task, and needs arguments "
                f"({', '.join(required)}): call it first, e.g. queue.push({name}(...))"
            )
        make = cast("Callable[[], FunctionTask[R]]", self)
        return make().__fairque_task__()

    def __rshift__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def __lshift__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def __or__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def _encode(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        upstreams: list[Task],
        mapped: str | None = None,
    ) -> tuple[list[Any], dict[str, Any]]:
        """Check the call against the signature and every argument for JSON; return the
        arguments as a worker will see them (decoded JSON, other tasks as references
        (:mod:`fairque.core.refs`), those tasks added to ``upstreams``)."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.func_path}: {e}") from None
        for name, value in bound.arguments.items():
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                for i, item in enumerate(value):
                    self._check_argument(f"*{name}[{i}]", item)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                for key, item in value.items():
                    self._check_argument(key, item, key == mapped)
            else:
                self._check_argument(name, value, name == mapped)
        json_args = encode_argument(list(args), upstreams)
        json_kwargs = encode_argument(dict(kwargs), upstreams)
        return json.loads(to_json(json_args, "args")), json.loads(to_json(json_kwargs, "kwargs"))

    def _check_argument(self, name: str, value: object, mapped: bool = False) -> None:
        if mapped and reference_to(value) is None:
            raise TaskError(
                f"{self.func_path}.expand({name}=...) maps over another task's return value "
                f"(a task call, or task['key']), not {shorten(value)}; for a list known "
                "now, call the task once per element"
            )
        to_json(encode_argument(value, []), f"argument {name!r} of task {self.func_path}")


class TaskDecorator:
    """``@task(...)`` with options: applied to a function, returns a TaskFunction."""

    def __init__(self, options: TaskOptions, push_key: str | None = None) -> None:
        self.options = options
        self.push_key = push_key

    @overload
    def __call__(self, func: Callable[P, Awaitable[R]]) -> TaskFunction[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> TaskFunction[P, R]: ...

    def __call__(self, func: Callable[P, Any]) -> TaskFunction[P, Any]:
        return TaskFunction(func, self.options, self.push_key)


@overload
def task(func: Callable[P, Awaitable[R]], /) -> TaskFunction[P, R]: ...


@overload
def task(func: Callable[P, R], /) -> TaskFunction[P, R]: ...


@overload
def task(
    func: None = None,
    /,
    *,
    task_id: str | None = None,
    user_id: str = "default",
    priority: Priority | int | str = Priority.NORMAL,
    max_retries: int | None = None,
    retry_delay_seconds: float | None = None,
    timeout_seconds: float | None = None,
    depends_on: Sequence[str] | str | None = None,
    enable_xcom: bool = False,
    trigger_rule: TriggerRule = "all_success",
    xcom_push: str | None = None,
    xcom_pulls: Sequence[str] | None = None,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    queue: str = DEFAULT_QUEUE,
    pool: str | None = None,
) -> TaskDecorator: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    task_id: str | None = None,
    user_id: str = "default",
    priority: Priority | int | str = Priority.NORMAL,
    max_retries: int | None = None,
    retry_delay_seconds: float | None = None,
    timeout_seconds: float | None = None,
    depends_on: Sequence[str] | str | None = None,
    enable_xcom: bool = False,
    trigger_rule: TriggerRule = "all_success",
    xcom_push: str | None = None,
    xcom_pulls: Sequence[str] | None = None,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    queue: str = DEFAULT_QUEUE,
    pool: str | None = None,
) -> TaskFunction[..., Any] | TaskDecorator:
    """Make a module-level function a task factory; use as ``@task`` or ``@task(...)``.

    ``task_id`` fixes the id (and name) of every task made; without it each call gets a
    fresh id and the function's name. ``depends_on`` names upstream tasks,
    ``trigger_rule`` says when the task may run once they ended, ``xcom_push`` pushes
    the return value under that key, ``xcom_pulls`` declares the keys it reads (both
    imply ``enable_xcom``), ``max_map_length`` caps the instances of its mapped tasks
    (``f.expand(...)``), ``queue`` routes the task to the workers serving that queue, ``pool``
    makes it take a slot of that pool while it runs.

    A function of the script being run (``python my_script.py``, module ``__main__``) is
    accepted and recorded as ``my_script:function``: calling its tasks and running them
    in-process work. Pushing one raises a TaskError naming the fix unless the script's
    top level only defines things (imports, ``def``, ``class``, assignments without
    calls, ``if __name__ == "__main__":`` blocks), since a worker (started in the
    script's folder with ``--allowed-modules my_script``) imports the script to run it.
    """
    keywords = dict(locals())
    del keywords["func"]
    options = TaskOptions.from_keywords(keywords)
    decorator = TaskDecorator(options)
    return decorator if func is None else decorator(func)


def xcom_task(
    push_key: str,
    auto_xcom: bool = True,
    *,
    task_id: str | None = None,
    user_id: str = "default",
    priority: Priority | int | str = Priority.NORMAL,
    max_retries: int | None = None,
    retry_delay_seconds: float | None = None,
    timeout_seconds: float | None = None,
    depends_on: Sequence[str] | str | None = None,
    trigger_rule: TriggerRule = "all_success",
    xcom_pulls: Sequence[str] | None = None,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    queue: str = DEFAULT_QUEUE,
    pool: str | None = None,
) -> TaskDecorator:
    """``@task`` with XCom on whose return value is pushed under ``push_key``.

    With ``auto_xcom=False`` nothing is pushed automatically: the function pushes
    ``push_key`` itself with ``xcom_push`` (the key stays on ``TaskFunction.push_key``).
    """
    keywords = dict(locals())
    del keywords["push_key"], keywords["auto_xcom"]
    check_xcom_key(push_key)
    decorator = task(**keywords, enable_xcom=True, xcom_push=push_key if auto_xcom else None)
    return TaskDecorator(decorator.options, push_key)


def _names(value: Sequence[str] | str | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence):
        raise TaskError(f"{what} must be a list of names, not {shorten(value)}")
    return list(value)


def _not_called(function: TaskFunction[Any, Any]) -> TypeError:
    name = function.__fairque_function__.__name__
    return TypeError(
        f"{name} is a task function, not a task: call it first, e.g. {name}() >> other()"
    )
