"""Import paths of ``@task`` functions: ``"module:qualname"``, and whether a worker may
import a function of the script being run (``__main__``) without running the script's
top level again (see :func:`fairque.tasks.decorators.task`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import keyword
import sys
from pathlib import Path

from fairque.core.errors import TaskError


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
    if module != "__main__":
        return f"{module}:{qualname}"
    module, problem = _main_module(qualname)
    path = f"{module}:{qualname}"
    if problem:
        _UNPUSHABLE[path] = problem
    else:
        _UNPUSHABLE.pop(path, None)
    return path


def unpushable(path: str) -> str | None:
    """Why a worker must not import the script function ``path`` (and the fix), or None."""
    return _UNPUSHABLE.get(path)


_UNPUSHABLE: dict[str, str] = {}
"""Import paths of ``@task`` functions of the running script that a worker must not
import, with the reason and the fix (raised when such a task is pushed)."""


def _main_module(qualname: str) -> tuple[str, str | None]:
    """The module name a worker would import for a function of ``__main__``, and why it
    must not (None when it may).

    ``python -m pkg.mod`` gives ``pkg.mod`` (a module run by name is trusted to be
    importable). ``python path/script.py`` gives ``script``, the file's stem: a worker
    started in the script's folder imports it from there, which runs the script's top
    level again, so pushing is allowed only when that top level just defines things
    (:func:`_code_run_on_import` finds nothing).
    """
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    file = getattr(main, "__file__", None)
    fix = "move the @task functions into a module (e.g. my_tasks.py) and import them"
    if isinstance(spec_name, str) and spec_name and spec_name != "__main__":
        return spec_name, None
    if not isinstance(file, str):
        return "__main__", (
            f"{qualname} is defined in an interactive session or python -c, which a worker "
            f"cannot import: {fix}"
        )
    module = Path(file).stem
    if not module.isidentifier() or keyword.iskeyword(module):
        return "__main__", (
            f"{qualname} is defined in the script {file}, whose name is not a module name "
            f"a worker could import: {fix}, or rename the script (e.g. my_script.py)"
        )
    found = _code_run_on_import(file)
    if found is None:
        return module, None
    return module, (
        f"{qualname} is defined in the script {file}, which a worker would import as module "
        f"{module!r}, running the script's top level again ({found}). Fix: {fix} from the "
        f'script, or put the script\'s own code under `if __name__ == "__main__":` and run '
        f"the worker in the script's folder with `fairque worker --allowed-modules {module}`. "
        f"Calling the task here (e.g. {qualname}(...)()) works as it is"
    )


@functools.lru_cache(maxsize=8)
def _code_run_on_import(file: str) -> str | None:
    """Where importing ``file`` would do more than define things ("line N: ..."), or None.

    Allowed at the top level: a docstring, imports, ``def``/``class`` (any decorators),
    assignments without calls, ``pass`` and ``if __name__ == "__main__":`` blocks.
    """
    try:
        source = Path(file).read_text(encoding="utf-8")
        tree = ast.parse(source, file)
    except (OSError, SyntaxError, ValueError) as e:
        return f"the script cannot be read: {e}"
    lines = source.splitlines()
    for node in tree.body:
        if not _defines_only(node):
            return f"line {node.lineno}: `{lines[node.lineno - 1].strip()}`"
    return None


def _defines_only(node: ast.stmt) -> bool:
    quiet = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if isinstance(node, (*quiet, ast.Pass)):
        return True
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return node.value is None or not any(
            isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))
            for n in ast.walk(node.value)
        )
    if isinstance(node, ast.If):
        return ast.unparse(node.test).replace("'", '"') in (
            '__name__ == "__main__"',
            '"__main__" == __name__',
        )
    return False


__all__ = ["import_path", "unpushable"]
