"""The import rule for task functions: which ``module:function`` paths may be imported.

Workers, ``fairque dag validate``, ``fairque dag test``, in-process runs and a worker's
``--handler`` all apply this one rule:

- the path is ``module:name`` or ``module:sub.name``: dotted identifiers, no segment
  starting with ``__`` (so no ``__import__``, ``__builtins__``, ``__init__``);
- the module lies under an ``allowed`` prefix, matched on whole dotted segments
  (``mytasks`` allows ``mytasks.sub``, not ``mytasks_evil``; ``*`` allows every module),
  or is one of fairque's own task modules (:data:`BUILT_IN_MODULES`: the built-in
  sensors); nothing is imported when it does not;
- the attribute path goes through module objects only, each of them allowed
  (``mytasks:sub.f`` for the allowed submodule ``mytasks.sub``); it never goes through a
  disallowed module (``mytasks:os.system``) nor into a class (``mytasks:Cls.method``);
- the object reached is a plain Python function (``def`` or ``async def``, never a
  builtin, a class or another callable), or an ``@task`` wrapper of one, and the
  function's own ``__module__`` is allowed: a function re-exported from a disallowed
  module (``from subprocess import run`` in ``mytasks``) is refused.

:func:`import_problems` returns what is wrong (empty when the path is fine);
:func:`resolve_function` is its raising form, used where a task is about to run.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from fairque.core.errors import TaskImportError, shorten

ALLOWED_MODULES_ENV = "FAIRQUE_ALLOWED_MODULES"
DEFAULT_ALLOWED_MODULES = ("examples", "dags")
BUILT_IN_MODULES = ("fairque.sensors",)
"""fairque's own task modules, allowed whatever ``allowed_modules`` says."""
WRAPPED_ATTRIBUTE = "__fairque_function__"
"""Set by ``@task`` on its wrapper: the function a worker runs."""

Kind = Literal["function", "class"]


def default_allowed_modules() -> list[str]:
    """``$FAIRQUE_ALLOWED_MODULES`` (comma-separated prefixes) when set, else the
    project's own ``examples`` and ``dags``."""
    return split_modules(os.environ.get(ALLOWED_MODULES_ENV, "")) or list(DEFAULT_ALLOWED_MODULES)


def split_modules(text: str) -> list[str]:
    """The prefixes of a comma-separated list such as ``"myapp.tasks, billing"``."""
    return [p.strip() for p in text.split(",") if p.strip()]


def module_allowed(allowed: Sequence[str], module: str) -> bool:
    """True if ``module`` lies under one of the ``allowed`` prefixes ("*" allows all):
    ``a.b`` allows ``a.b`` and ``a.b.c``, not ``a.bc``."""
    if module in BUILT_IN_MODULES:
        return True
    return any(p == "*" or module == p or module.startswith(p + ".") for p in allowed)


def allow_hint(module: str) -> str:
    """How to allow ``module``, for messages."""
    return f"allow it with --allowed-modules {module} or {ALLOWED_MODULES_ENV}={module}"


@dataclass(frozen=True)
class ImportProblem:
    """Why ``path`` may not be imported. ``module`` is set when the reason is that this
    module is not allowed (so a report can name each such module once)."""

    path: str
    message: str
    module: str | None = None

    def __str__(self) -> str:
        return self.message


def parse_import_path(path: object) -> tuple[str, list[str]] | str:
    """``(module, attribute parts)`` of ``"module:a.b"``, or why it is not such a path
    (the syntax only: what may be imported is :func:`find_object`'s business)."""
    text = path if isinstance(path, str) else ""
    module, _, attribute = text.partition(":")
    if not module or not attribute:
        return f"{shorten(path)} is not an import path 'module:function'"
    parts = [*module.split("."), *attribute.split(".")]
    if not all(part.isidentifier() for part in parts):
        return f"{shorten(path)} is not an import path 'module:function' (dotted Python names)"
    return module, attribute.split(".")


def not_allowed(path: str, module: str, allowed: Sequence[str]) -> ImportProblem:
    """The problem of a module outside ``allowed``."""
    return ImportProblem(
        path,
        f"{shorten(path)}: module {module!r} is not in allowed_modules {list(allowed)}; "
        f"{allow_hint(module)}",
        module,
    )


def find_object(path: str, allowed: Sequence[str], kind: Kind = "function") -> Any:
    """The object ``path`` names (an ``@task`` function stays wrapped), or the
    :class:`ImportProblem` that forbids it. Imports the module (and only when it is
    allowed) but never calls what it finds."""
    parsed = parse_import_path(path)
    if isinstance(parsed, str):
        return ImportProblem(str(path), parsed)
    module_name, attributes = parsed
    private = [p for p in (*module_name.split("."), *attributes) if p.startswith("__")]
    if private:
        return ImportProblem(
            path,
            f"{shorten(path)} names {private[0]!r}; names starting with '__' are never imported",
        )
    if not module_allowed(allowed, module_name):
        return not_allowed(path, module_name, allowed)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as e:
        return ImportProblem(path, f"{shorten(path)}: cannot import {module_name!r}: {e}")
    for i, part in enumerate(attributes):
        if not isinstance(target, ModuleType):
            where = ".".join(attributes[:i])
            return ImportProblem(
                path,
                f"{shorten(path)}: {where} is a {_kind_of(target)}, not a module; "
                f"name a module-level {kind} (e.g. module:{kind})",
            )
        if not module_allowed(allowed, target.__name__):
            return not_allowed(path, target.__name__, allowed)
        if part not in vars(target) and not _import_submodule(target, part):
            from fairque.core.schemas import did_you_mean  # jsonschema: only when needed

            names = [n for n in vars(target) if not n.startswith("_")]
            hint = did_you_mean(part, names)
            return ImportProblem(path, f"{shorten(path)}: {target.__name__} has no {part!r}{hint}")
        target = vars(target)[part]
    return _checked(path, target, allowed, kind)


def _kind_of(value: Any) -> str:
    return "class" if inspect.isclass(value) else type(value).__name__


def _import_submodule(package: ModuleType, name: str) -> bool:
    """Import ``package.name`` when the package has such a submodule; True if it did."""
    if not hasattr(package, "__path__"):
        return False
    try:
        importlib.import_module(f"{package.__name__}.{name}")
    except Exception:  # no such submodule, or it does not import: "has no 'name'"
        return False
    return name in vars(package)


def _checked(path: str, target: Any, allowed: Sequence[str], kind: Kind) -> Any:
    """``target`` when it is what ``kind`` asks for and its own module is allowed."""
    inner = getattr(target, WRAPPED_ATTRIBUTE, target) if kind == "function" else target
    if kind == "function":
        fits = inspect.isfunction(inner) and (inner is target or not inspect.isclass(target))
    else:
        fits = inspect.isclass(inner)
    if not fits:
        return ImportProblem(
            path,
            f"{shorten(path)} is a {_kind_of(target)}, not a {kind} written in Python "
            f"(only {'functions defined with def' if kind == 'function' else 'classes'} "
            "in allowed modules may be named)",
        )
    home = getattr(inner, "__module__", None)
    if not isinstance(home, str) or not module_allowed(allowed, home):
        return ImportProblem(
            path,
            f"{shorten(path)} is defined in module {home!r}, which is not in allowed_modules "
            f"{list(allowed)}; {allow_hint(str(home))}",
            str(home),
        )
    return target


def import_problems(
    path: str, allowed: Sequence[str], kind: Kind = "function"
) -> list[ImportProblem]:
    """What forbids importing ``path`` under ``allowed`` (empty when it is fine)."""
    found = find_object(path, allowed, kind)
    return [found] if isinstance(found, ImportProblem) else []


def resolve_function(path: str, allowed: Sequence[str]) -> Callable[..., Any]:
    """The function ``path`` names, unwrapped from its ``@task`` wrapper;
    TaskImportError when :func:`import_problems` finds anything wrong."""
    found = find_object(path, allowed)
    if isinstance(found, ImportProblem):
        raise TaskImportError(f"task function {found.message}")
    return getattr(found, WRAPPED_ATTRIBUTE, found)  # type: ignore[no-any-return]


def resolve_class(path: str, allowed: Sequence[str]) -> type:
    """The class ``path`` names, under the same rule (for a worker's ``--handler``)."""
    found = find_object(path, allowed, "class")
    if isinstance(found, ImportProblem):
        raise TaskImportError(f"class {found.message}")
    return found  # type: ignore[no-any-return]


__all__ = [
    "ALLOWED_MODULES_ENV",
    "DEFAULT_ALLOWED_MODULES",
    "ImportProblem",
    "allow_hint",
    "default_allowed_modules",
    "find_object",
    "import_problems",
    "module_allowed",
    "not_allowed",
    "parse_import_path",
    "resolve_class",
    "resolve_function",
    "split_modules",
]
