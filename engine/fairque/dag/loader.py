"""Finding and loading DAG files: YAML documents and Python modules in a folder.

Each file loads on its own, so a broken file is reported (as :class:`Problem` entries)
while the others still load; two DAGs with the same ``dag_id`` are both refused. The
folder is the argument, else ``$FAIRQUE_DAGS_FOLDER``, else ``dags/``.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from fairque.core import refs
from fairque.core.errors import DagFileError, DagNotFoundError, FairQueueError
from fairque.core.models import Setter, Task, task_fields
from fairque.core.schemas import did_you_mean, line_of, read_yaml_file
from fairque.dag.model import DAG, ParamSpec, TaskInfo
from fairque.dag.validate import (
    Problem,
    callable_report,
    document_problems,
    graph_edges,
    import_callable,
)
from fairque.tasks.decorators import TaskFunction
from fairque.tasks.pipeline import Pipeline

ENV_FOLDER = "FAIRQUE_DAGS_FOLDER"
DEFAULT_FOLDER = "dags"
MAX_FILE_BYTES = 1 << 20
YAML_SUFFIXES = (".yaml", ".yml")
PRIVATE_PREFIX = "_fairque_dag_"
"""Module names given to Python DAG files outside a package."""
_YAML_WHERE = re.compile(r"^line (\d+), column (\d+): ")

AllowedModules = Sequence[str]


def dags_folder(explicit: str | Path | None = None) -> Path:
    """The DAG folder: ``explicit``, else ``$FAIRQUE_DAGS_FOLDER``, else ``dags``."""
    if explicit is not None and str(explicit):
        return Path(explicit)
    return Path(os.environ.get(ENV_FOLDER, "").strip() or DEFAULT_FOLDER)


def is_dag_file(path: Path) -> bool:
    """True for ``*.yaml``, ``*.yml`` and ``*.py`` files not starting with ``_`` or ``.``."""
    return path.suffix in (*YAML_SUFFIXES, ".py") and not path.name.startswith(("_", "."))


def dag_files(folder: Path) -> list[Path]:
    """The DAG files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_dag_file(p))


@dataclass
class LoadResult:
    """What one file gave: its DAGs and its problems (a file with problems gives none)."""

    path: str
    dags: list[DAG] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int | None] = field(default_factory=dict)  # dag_id -> line of dag_id

    @property
    def ok(self) -> bool:
        """True when the file has no problem."""
        return not self.problems


@dataclass
class DagBag:
    """The DAGs of a folder (or of some paths) by id, and every problem found.

    ``files`` lists each file read with its own problems (``[]`` when it is fine).
    """

    folder: Path | None
    dags: dict[str, DAG] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, list[Problem]] = field(default_factory=dict)

    def get(self, dag_id: str) -> DAG:
        """The DAG ``dag_id``; DagNotFoundError (with a did-you-mean) otherwise."""
        if dag_id in self.dags:
            return self.dags[dag_id]
        hint = did_you_mean(dag_id, self.dags)
        known = ", ".join(sorted(self.dags)) or "none"
        raise DagNotFoundError(dag_id, f"{hint}; known: {known}")


# --- folders ------------------------------------------------------------------------------


def load_dags(folder: str | Path | None = None, allowed_modules: AllowedModules = ("*",)) -> DagBag:
    """Every DAG in the folder (see :func:`dags_folder`); never raises for a bad file."""
    where = dags_folder(folder)
    if not where.is_dir():
        message = "DAG folder not found; use --dags-folder or FAIRQUE_DAGS_FOLDER"
        problem = Problem(str(where), None, None, "", message)
        return DagBag(where, problems=[problem], files={str(where): [problem]})
    bag = collect([load_dag_file(p, allowed_modules) for p in dag_files(where)])
    bag.folder = where
    return bag


def load_paths(paths: Sequence[str | Path], allowed_modules: AllowedModules = ("*",)) -> DagBag:
    """The DAGs of the given files and folders, as :func:`load_dags` for a folder."""
    results: list[LoadResult] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            files = dag_files(given)
        elif given.exists():
            files = [given]
        else:
            results.append(_failed(given, "no such file or folder"))
            continue
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                results.append(load_dag_file(file, allowed_modules))
    return collect(results)


def collect(results: Sequence[LoadResult]) -> DagBag:
    """One DagBag from per-file results; a dag_id found more than once is refused
    everywhere, with a problem on each file naming the others."""
    owners: dict[str, list[tuple[LoadResult, DAG]]] = {}
    for result in results:
        for dag in result.dags:
            owners.setdefault(dag.dag_id, []).append((result, dag))
    bag = DagBag(None, files={r.path: list(r.problems) for r in results})
    for dag_id, found in owners.items():
        if len(found) == 1:
            bag.dags[dag_id] = found[0][1]
            continue
        for result, _ in found:
            others = ", ".join(sorted({r.path for r, _ in found} - {result.path})) or "this file"
            line = result.lines.get(dag_id)
            message = f"dag_id {dag_id!r} is also defined in {others}; both are refused"
            bag.files[result.path].append(
                Problem(result.path, line, 1 if line else None, "/dag_id" if line else "", message)
            )
    bag.problems = [p for found in bag.files.values() for p in found]
    return bag


# --- one file -------------------------------------------------------------------------------


def load_dag_file(path: str | Path, allowed_modules: AllowedModules = ("*",)) -> LoadResult:
    """The DAGs of one YAML or Python file, or the file's problems (never raises for a
    bad file). YAML files are safe-loaded, at most 1 MiB, alias bombs refused.

    Callables are imported as a worker started here would import them: the current
    folder and the DAG folder's parent are on ``sys.path`` while the file loads. Loading
    leaves no trace for the files loaded after it: ``sys.path`` is restored and modules
    that only the file's own folders made importable are forgotten (see
    :func:`import_scope`).
    """
    file = Path(path)
    with import_scope(file) as roots:
        if file.suffix in YAML_SUFFIXES:
            return _load_yaml(file, allowed_modules)
        if file.suffix == ".py":
            return _load_python(file, allowed_modules, roots)
    return _failed(file, f"not a DAG file: use {', '.join(YAML_SUFFIXES)} or .py")


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


def _failed(
    file: Path, message: str, line: int | None = None, column: int | None = None
) -> LoadResult:
    return LoadResult(str(file), problems=[Problem(str(file), line, column, "", message)])


def _load_yaml(file: Path, allowed: AllowedModules) -> LoadResult:
    name = str(file)
    try:
        data, root = read_yaml_file(name, MAX_FILE_BYTES, DagFileError)
    except DagFileError as e:
        return LoadResult(name, problems=[_file_problem(name, p) for p in e.problems])
    problems = document_problems(name, data, root, allowed)
    if problems:
        return LoadResult(name, problems=problems)
    try:
        dag = build_dag(data, name, allowed)
    except FairQueueError as e:
        return _failed(file, str(e))
    return LoadResult(name, [dag], lines={dag.dag_id: line_of(root, ["dag_id"])})


def _file_problem(file: str, message: str) -> Problem:
    where = _YAML_WHERE.match(message)
    if where:
        return Problem(file, int(where[1]), int(where[2]), "", message[where.end() :])
    return Problem(file, None, None, "", message)


def build_dag(data: Mapping[str, Any], source: str, allowed: AllowedModules = ("*",)) -> DAG:
    """The DAG of a YAML document that passed :func:`~fairque.dag.validate.document_problems`.

    An ``@task`` callable's decorator options are the base of its task, then
    ``default_args``, then the task's own keys; its decorator ``depends_on`` is ignored
    (the DAG file alone says what runs after what).
    """
    tenant = str(data.get("tenant", "default"))
    defaults = dict(data.get("default_args") or {})
    nodes: dict[str, Task] = {}
    info: dict[str, TaskInfo] = {}
    for name, spec in data["tasks"].items():
        target = import_callable(spec["callable"], allowed)
        nodes[name], info[name] = _template(name, spec, target, defaults, tenant)
    edges = graph_edges(data)
    heads = tuple(n for n in nodes if not any(b == n for _, b in edges))
    tails = tuple(n for n in nodes if not any(a == n for a, _ in edges))
    return DAG(
        dag_id=data["dag_id"],
        pipeline=Pipeline(nodes, frozenset(edges), heads, tails),
        description=data.get("description", ""),
        schedule=data.get("schedule"),
        timezone=data.get("timezone", "UTC"),
        catchup=data.get("catchup", False),
        max_active_runs=data.get("max_active_runs", 16),
        dagrun_timeout_seconds=data.get("dagrun_timeout_seconds"),
        on_failure_callback=data.get("on_failure_callback"),
        on_success_callback=data.get("on_success_callback"),
        start_date=data.get("start_date"),
        end_date=data.get("end_date"),
        tenant=tenant,
        params={k: ParamSpec.of(v) for k, v in (data.get("params") or {}).items()},
        default_args=defaults,
        source=source,
        task_info=info,
        defaults_applied=True,
    )


_DEFAULT_ARGS = task_fields(Setter.DEFAULT_ARGS)
_YAML_KEYS = task_fields(Setter.YAML)


def _template(
    name: str,
    spec: Mapping[str, Any],
    target: Any,
    defaults: Mapping[str, Any],
    tenant: str,
) -> tuple[Task, TaskInfo]:
    """One task template: decorator options, then default_args, then the task's keys."""
    options: dict[str, Any] = {}
    pushes = list(spec.get("xcom_pushes", []))
    if isinstance(target, TaskFunction):
        options = target.options.task_fields()
        del options["depends_on"], options["user_id"]
        if target.push_key and target.push_key != options["xcom_push_key"]:
            pushes.append(target.push_key)
    options.update({f.name: defaults[f.key] for f in _DEFAULT_ARGS if f.key in defaults})
    options.update({f.name: copy.deepcopy(spec[f.key]) for f in _YAML_KEYS if f.key in spec})
    _references(options, spec)
    options["enable_xcom"] = bool(
        options.get("enable_xcom")
        or options.get("xcom_push_key")
        or options.get("xcom_pulls")
        or pushes
    )
    task = Task(task_id=name, name=name, user_id=tenant, **options)
    task.validate()
    return task, TaskInfo(spec.get("description", ""), tuple(dict.fromkeys(pushes)))


def _references(options: dict[str, Any], spec: Mapping[str, Any]) -> None:
    """``{from: task}`` references in args, kwargs, expand (and ``partial``, shared
    kwargs of a mapped task's instances) as markers (:mod:`fairque.core.refs`); the DAG
    wires them to XCom keys."""
    for name in ("args", "kwargs", "expand"):
        if name in options:
            options[name] = refs.from_yaml(options[name])
    if "partial" in spec:
        options["kwargs"] = {**options.get("kwargs", {}), **refs.from_yaml(spec["partial"])}


# --- Python DAG files ------------------------------------------------------------------------


def _load_python(file: Path, allowed: AllowedModules, roots: Sequence[Path]) -> LoadResult:
    name = str(file)
    try:
        module = import_dag_module(file)
    except SyntaxError as e:
        return _failed(file, f"invalid Python: {e.msg}", e.lineno, e.offset)
    except Exception as e:
        return _failed(
            file, f"importing the file failed: {type(e).__name__}: {e}", _line_in(file, e)
        )
    dags = [
        dag if dag.source else dataclasses.replace(dag, source=name)
        for dag in dict.fromkeys(v for v in vars(module).values() if isinstance(v, DAG))
    ]
    if not dags:
        return _failed(
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
    "DEFAULT_FOLDER",
    "ENV_FOLDER",
    "MAX_FILE_BYTES",
    "DagBag",
    "LoadResult",
    "build_dag",
    "collect",
    "dag_files",
    "dags_folder",
    "import_dag_module",
    "is_dag_file",
    "load_dag_file",
    "load_dags",
    "load_paths",
]
