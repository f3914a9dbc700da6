"""Python DAG files: importing them as a worker would, and leaving no trace.

A Python DAG file is imported (never cached: what it builds depends on every module it
imports) inside :func:`import_scope`, which also serves the YAML files' callables; its
functions must be importable by a worker under their own module name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from fairque.dag.bag import LoadResult, failed
from fairque.dag.model import DAG
from fairque.dag.validate import Problem, callable_report

PRIVATE_PREFIX = "_fairque_dag_"
"""Module names given to Python DAG files outside a package."""

AllowedModules = Sequence[str]


def worker_roots(file: Path) -> list[Path]:
    """The folders a worker started here imports task modules from: ``sys.path``, the
    current folder and the DAG folder's parent."""
    entries = [*sys.path, str(Path.cwd()), str(file.resolve().parent.parent)]
    return list(dict.fromkeys(Path(entry or ".").resolve() for entry in entries))


@contextmanager
def import_scope(file: Path) -> Iterator[list[Path]]:
    """Load ``file`` with :func:`worker_roots` on ``sys.path`` (yielded); afterwards
    ``sys.path`` is as it was, and every module imported meanwhile that ``sys.path`` and
    the current folder would not find under its own name (a Python DAG file's private
    module, a module next to it) is dropped from ``sys.modules``, so whether a later
    file validates never depends on which files were loaded before it."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    roots = worker_roots(file)
    for folder in roots:
        _on_sys_path(folder)
    try:
        yield roots
    finally:
        sys.path[:] = saved_path
        lasting = [Path(entry or ".").resolve() for entry in (*saved_path, str(Path.cwd()))]
        for name in set(sys.modules) - saved_modules:
            module = sys.modules.get(name)
            if module is not None and not found_under(module, lasting):
                del sys.modules[name]


def found_under(module: ModuleType, roots: Sequence[Path]) -> bool:
    """True if ``module`` is the file that importing its name from ``roots`` gives
    (True for modules without a file: builtins, namespace packages)."""
    where = getattr(module, "__file__", None)
    if not where:
        return True
    path = Path(where).resolve()
    path = path.parent if path.stem == "__init__" else path.with_name(path.name.split(".")[0])
    parts = module.__name__.split(".")
    for root in roots:
        if path.is_relative_to(root) and list(path.relative_to(root).parts) == parts:
            return True
    return False


def load_python(file: Path, allowed: AllowedModules, roots: Sequence[Path]) -> LoadResult:
    name = str(file)
    try:
        module = import_dag_module(file)
    except SyntaxError as e:
        return failed(file, f"invalid Python: {e.msg}", e.lineno, e.offset)
    except Exception as e:
        return failed(
            file, f"importing the file failed: {type(e).__name__}: {e}", _line_in(file, e)
        )
    dags = [
        dag if dag.source else dataclasses.replace(dag, source=name)
        for dag in dict.fromkeys(v for v in vars(module).values() if isinstance(v, DAG))
    ]
    if not dags:
        return failed(
            file, "defines no DAG at module level (e.g. dag = DAG(dag_id=..., pipeline=...))"
        )
    problems = [
        Problem(name, None, None, "", f"DAG {dag_id!r}: task {task_name!r}: {error}")
        for (dag_id, task_name), error in _callable_errors(dags, allowed, roots)
    ]
    if problems:
        return LoadResult(name, problems=problems)
    return LoadResult(name, dags, lines={dag.dag_id: None for dag in dags})


def _callable_errors(
    dags: Sequence[DAG], allowed: AllowedModules, roots: Sequence[Path]
) -> list[tuple[tuple[str, str], str]]:
    """Per (dag_id, task name): why a worker could not run its function. Payload-only
    tasks (no ``func``) are for a custom TaskHandler and are not checked."""
    errors: list[tuple[tuple[str, str], str]] = []
    uses: list[tuple[tuple[str, str], str]] = []
    for dag in dags:
        for task_name, task in dag.pipeline.nodes.items():
            if task.func is None:
                continue
            unreachable = unimportable(task.func, roots)
            if unreachable:
                errors.append(((dag.dag_id, task_name), unreachable))
            else:
                uses.append(((dag.dag_id, task_name), task.func))
    return errors + callable_report(uses, allowed)


def unimportable(path: str, roots: Sequence[Path]) -> str | None:
    """Why a worker could not import the already-imported module of ``path`` by its
    name from ``roots`` (see :func:`worker_roots`), or None. That is the case of a
    function defined in a Python DAG file outside a package (loaded under a private
    name) and of a module found only through the DAG file's own folder."""
    module_name = path.partition(":")[0]
    module = sys.modules.get(module_name)
    if module is None or found_under(module, roots):
        return None
    if module_name.startswith(PRIVATE_PREFIX):
        where = "in the DAG file itself, which is not in a package"
    else:
        where = f"in module {module_name!r}, found only through the DAG file's folder"
    return (
        f"function {path.partition(':')[2]!r} is defined {where}, so a worker cannot import "
        "it; move it to an importable module (a package under allowed_modules) and import "
        "it from the DAG file"
    )


def import_dag_module(file: Path) -> ModuleType:
    """Import (or re-import) a Python DAG file and return its module.

    A file in a package folder (one with ``__init__.py``, like the repository's
    ``dags/``) is imported as ``<folder>.<stem>`` with the folder's parent on
    ``sys.path``, so workers import its task functions by the same path. Any other file
    gets a private module name; its folder and the folder's parent go on ``sys.path``.
    """
    path = file.resolve()
    package = _package_name(path)
    if package is not None:
        module = _import_in_package(path, package)
        if module is not None:
            return module
    return _import_private(path)


def _package_name(path: Path) -> str | None:
    folder = path.parent
    if not (folder / "__init__.py").is_file():
        return None
    if not (folder.name.isidentifier() and path.stem.isidentifier()):
        return None
    return f"{folder.name}.{path.stem}"


def _import_in_package(path: Path, name: str) -> ModuleType | None:
    """The module ``name`` when it is this very file, freshly executed; else None."""
    _on_sys_path(path.parent.parent, first=True)
    existing = sys.modules.get(name)
    if existing is not None and _same_file(existing, path):
        return importlib.reload(existing)
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name in (name, name.partition(".")[0]):
            return None
        raise
    return module if _same_file(module, path) else None


def _import_private(path: Path) -> ModuleType:
    _on_sys_path(path.parent.parent)
    _on_sys_path(path.parent)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"{PRIVATE_PREFIX}{digest}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _same_file(module: ModuleType, path: Path) -> bool:
    where = getattr(module, "__file__", None)
    return where is not None and Path(where).resolve() == path


def _on_sys_path(folder: Path, first: bool = False) -> None:
    entry = str(folder)
    if entry not in sys.path:
        if first:
            sys.path.insert(0, entry)
        else:
            sys.path.append(entry)


def _line_in(file: Path, error: BaseException) -> int | None:
    """The line of ``file`` where ``error`` was raised (its last frame in the file)."""
    path = file.resolve()
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename and Path(frame.filename).resolve() == path
    ]
    return lines[-1] if lines else None


__all__ = [
    "PRIVATE_PREFIX",
    "found_under",
    "import_dag_module",
    "import_scope",
    "load_python",
    "unimportable",
    "worker_roots",
]
