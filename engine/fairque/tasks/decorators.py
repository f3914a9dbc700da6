"""``@task`` and ``@xcom_task``: module-level functions become task factories.

Calling a decorated function does not run it: it returns a :class:`FunctionTask` (a
:class:`~fairque.core.models.Task`) that records the function's import path
(``"module:qualname"``) and the call's arguments as JSON. Calling *that* task runs the
function here, in-process; pushing it to a queue runs it on a worker, which imports the
function by its path. Hence only plain module-level functions are accepted.

Options are checked when decorating, arguments when calling; both raise a
:class:`~fairque.core.errors.TaskError` subclass that names the problem.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, cast, overload

from fairque.core.errors import TaskError
from fairque.core.imports import resolve_function
from fairque.core.models import Priority, Task, TaskState, new_task_id, to_json
from fairque.tasks.context import XComBackend, ainvoke, check_xcom_key, invoke, local_xcom
from fairque.tasks.pipeline import Pipeline, clone_task

P = ParamSpec("P")
R = TypeVar("R")

_WITH_OPTIONS = frozenset(
    {
        "task_id",
        "name",
        "user_id",
        "priority",
        "payload",
        "depends_on",
        "max_retries",
        "retry_delay_seconds",
        "timeout_seconds",
        "execute_after",
        "trigger_rule",
        "enable_xcom",
        "xcom_push_key",
        "xcom_pulls",
        "run_id",
    }
)


class FunctionTask(Task, Generic[R]):
    """A Task made by calling an ``@task`` function; ``task()`` runs it in-process.

    It serialises exactly like a plain Task: the function itself is kept outside the
    dataclass fields (re-imported from ``func`` if a copy lost it).
    """

    _function: Callable[..., Any] | None = None

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
        return cast(R, invoke(self, self.function, xcom or local_xcom()))

    async def run_async(self, *, xcom: XComBackend | None = None) -> R:
        """Like ``task()`` from async code: an ``async def`` function is awaited here."""
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
        if "priority" in changes:
            changes["priority"] = Priority.parse(changes["priority"])
        for key in ("depends_on", "xcom_pulls"):
            if key in changes:
                changes[key] = _names(changes[key], key)
        return clone_task(self, **changes)

    def with_state(self, state: TaskState) -> FunctionTask[R]:
        """A copy in another state, still callable."""
        return clone_task(self, state=state)

    def __rshift__(self, other: Task | Pipeline) -> Pipeline:
        return Pipeline.of(self).then(other)

    def __lshift__(self, other: Task | Pipeline) -> Pipeline:
        return Pipeline.of(other).then(self)

    def __or__(self, other: Task | Pipeline) -> Pipeline:
        return Pipeline.of(self).union(other)


@dataclass(frozen=True)
class TaskOptions:
    """The validated options of an ``@task``, copied into every task it makes."""

    task_id: str | None = None
    user_id: str = "default"
    priority: Priority = Priority.NORMAL
    max_retries: int | None = None
    retry_delay_seconds: float | None = None
    timeout_seconds: float | None = None
    depends_on: tuple[str, ...] = ()
    enable_xcom: bool = False
    trigger_rule: str = "all_success"
    xcom_push_key: str | None = None
    xcom_pulls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in (self.xcom_push_key, *self.xcom_pulls):
            if key is not None:
                check_xcom_key(key)
        if not isinstance(self.enable_xcom, bool):
            raise TaskError(f"enable_xcom must be True or False, not {self.enable_xcom!r}")
        probe = Task(task_id=self.task_id or "probe", **self.task_fields())
        probe.validate()

    def task_fields(self) -> dict[str, Any]:
        """Fresh keyword arguments for a Task (lists are new on every call)."""
        return {
            "user_id": self.user_id,
            "priority": self.priority,
            "max_retries": self.max_retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "depends_on": list(self.depends_on),
            "enable_xcom": self.enable_xcom or bool(self.xcom_push_key or self.xcom_pulls),
            "trigger_rule": self.trigger_rule,
            "xcom_push_key": self.xcom_push_key,
            "xcom_pulls": list(self.xcom_pulls),
        }


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
        self.push_key = push_key or options.xcom_push_key
        self.is_async = inspect.iscoroutinefunction(function)
        self._signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> FunctionTask[R]:
        """A new task that will call the function with these (JSON) arguments."""
        json_args, json_kwargs = self._encode(args, kwargs)
        made: FunctionTask[R] = FunctionTask(
            task_id=self.options.task_id or new_task_id(),
            name=self.options.task_id or self.__fairque_function__.__name__,
            func=self.func_path,
            args=json_args,
            kwargs=json_kwargs,
            **self.options.task_fields(),
        )
        made._function = self.__fairque_function__
        made.validate()
        return made

    def __repr__(self) -> str:
        return f"<TaskFunction {self.func_path}>"

    def __rshift__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def __lshift__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def __or__(self, other: object) -> NoReturn:
        raise _not_called(self)

    def _encode(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """Check the call against the signature and every argument for JSON; return the
        arguments as a worker will see them (decoded JSON)."""
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
                    self._check_argument(key, item)
            else:
                self._check_argument(name, value)
        return json.loads(to_json(list(args), "args")), json.loads(to_json(dict(kwargs), "kwargs"))

    def _check_argument(self, name: str, value: object) -> None:
        to_json(value, f"argument {name!r} of task {self.func_path}")


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
    trigger_rule: str = "all_success",
    xcom_push: str | None = None,
    xcom_pulls: Sequence[str] | None = None,
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
    trigger_rule: str = "all_success",
    xcom_push: str | None = None,
    xcom_pulls: Sequence[str] | None = None,
) -> TaskFunction[..., Any] | TaskDecorator:
    """Make a module-level function a task factory; use as ``@task`` or ``@task(...)``.

    ``task_id`` fixes the id (and name) of every task made; without it each call gets a
    fresh id and the function's name. ``depends_on`` names upstream tasks,
    ``trigger_rule`` says when the task may run once they ended, ``xcom_push`` pushes
    the return value under that key, ``xcom_pulls`` declares the keys it reads (both
    imply ``enable_xcom``).
    """
    options = TaskOptions(
        task_id=task_id,
        user_id=user_id,
        priority=Priority.parse(priority),
        max_retries=max_retries,
        retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds,
        depends_on=tuple(_names(depends_on, "depends_on")),
        enable_xcom=enable_xcom,
        trigger_rule=trigger_rule,
        xcom_push_key=xcom_push,
        xcom_pulls=tuple(_names(xcom_pulls, "xcom_pulls")),
    )
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
    trigger_rule: str = "all_success",
    xcom_pulls: Sequence[str] | None = None,
) -> TaskDecorator:
    """``@task`` with XCom on whose return value is pushed under ``push_key``.

    With ``auto_xcom=False`` nothing is pushed automatically: the function pushes
    ``push_key`` itself with ``xcom_push`` (the key stays on ``TaskFunction.push_key``).
    """
    check_xcom_key(push_key)
    decorator = task(
        task_id=task_id,
        user_id=user_id,
        priority=priority,
        max_retries=max_retries,
        retry_delay_seconds=retry_delay_seconds,
        timeout_seconds=timeout_seconds,
        depends_on=depends_on,
        enable_xcom=True,
        trigger_rule=trigger_rule,
        xcom_push=push_key if auto_xcom else None,
        xcom_pulls=xcom_pulls,
    )
    return TaskDecorator(decorator.options, push_key)


def import_path(function: object) -> str:
    """``"module:qualname"`` for a module-level function, or a TaskError saying why a
    worker could not import it and what to do instead."""
    if not inspect.isfunction(function):
        raise TaskError(
            f"@task needs a function defined with def at module level, not {function!r} "
            f"({type(function).__name__}): a worker imports task functions by their "
            "'module:function' path"
        )
    qualname, module = function.__qualname__, function.__module__
    if function.__name__ == "<lambda>":
        raise TaskError(
            f"@task cannot wrap a lambda (in module {module}): a worker imports task "
            "functions by 'module:function' and a lambda has no name; define it with def "
            "at module level"
        )
    if "<locals>" in qualname:
        raise TaskError(
            f"@task cannot wrap {qualname!r} (module {module}): it is defined inside another "
            "function, so a worker cannot import it; move it to module level"
        )
    if "." in qualname:
        raise TaskError(
            f"@task cannot wrap {qualname!r} (module {module}): it is defined in a class, "
            "and a worker imports only module-level functions; move it out of the class"
        )
    if not module:
        raise TaskError(f"@task cannot wrap {qualname!r}: it has no __module__ to import from")
    if module == "__main__":
        module = _main_module(qualname)
    return f"{module}:{qualname}"


def _main_module(qualname: str) -> str:
    """The importable name of ``__main__`` when run with ``python -m``; else refuse."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name
    raise TaskError(
        f"@task cannot wrap {qualname!r}: it is defined in the script being run (__main__), "
        "which a worker cannot import; move it into a module (e.g. my_tasks.py) and import "
        "it from the script, or run the script with python -m package.module"
    )


def _names(value: Sequence[str] | str | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence):
        raise TaskError(f"{what} must be a list of names, not {value!r}")
    return list(value)


def _not_called(function: TaskFunction[Any, Any]) -> TypeError:
    name = function.__fairque_function__.__name__
    return TypeError(
        f"{name} is a task function, not a task: call it first, e.g. {name}() >> other()"
    )
