"""Finding and loading DAG files: YAML documents and Python modules in a folder.

Each file loads on its own, so a broken file is reported (as :class:`Problem` entries)
while the others still load; two DAGs with the same ``dag_id`` are both refused. The
folder is the argument, else ``$FAIRQUE_DAGS_FOLDER``, else ``dags/``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fairque.core import refs
from fairque.core.errors import DagFileError, FairQueueError
from fairque.core.imports import ImportProblem
from fairque.core.models import Setter, Task, task_fields
from fairque.core.schemas import line_of, parse_yaml_bytes, read_problem
from fairque.dag.bag import DagBag, LoadResult, collect, failed
from fairque.dag.cache import BuiltKey, DagCache, FolderCache
from fairque.dag.entries import DagRef, Inexact, YamlDoc
from fairque.dag.groups import flatten, group_specs
from fairque.dag.model import DAG, ParamSpec, TaskInfo
from fairque.dag.pyfiles import (
    PRIVATE_PREFIX,
    found_under,
    import_dag_module,
    import_scope,
    load_python,
    unimportable,
    worker_roots,
)
from fairque.dag.shorthands import expand_shorthands
from fairque.dag.validate import (
    Problem,
    code_places,
    file_problems,
    graph_edges,
    import_callable,
    in_file_order,
    located_callable_problems,
    located_callables,
    located_code_problems,
)
from fairque.tasks.decorators import TaskFunction
from fairque.tasks.pipeline import Pipeline

ENV_FOLDER = "FAIRQUE_DAGS_FOLDER"
DEFAULT_FOLDER = "dags"
MAX_FILE_BYTES = 1 << 20
YAML_SUFFIXES = (".yaml", ".yml")
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


# --- folders ------------------------------------------------------------------------------


def load_dags(
    folder: str | Path | None = None,
    allowed_modules: AllowedModules = ("*",),
    *,
    cache: DagCache | bool = False,
    lazy: bool = False,
) -> DagBag:
    """Every DAG in the folder (see :func:`dags_folder`); never raises for a bad file.

    ``cache``: True uses the state folder's DAG cache (:mod:`fairque.dag.cache`;
    ``$FAIRQUE_DAG_CACHE=off`` turns it off), or give a :class:`DagCache`: unchanged
    YAML files are then neither parsed nor checked again. ``lazy`` builds the DAGs of
    such files on first use of ``bag.dags[dag_id]``.
    """
    where = dags_folder(folder)
    if not where.is_dir():
        message = "DAG folder not found; use --dags-folder or FAIRQUE_DAGS_FOLDER"
        problem = Problem(str(where), None, None, "", message)
        return DagBag(where, problems=[problem], files={str(where): [problem]})
    bag = collect(LoadPass(allowed_modules, cache, lazy).load([(where, dag_files(where))]))
    bag.folder = where
    return bag


def load_paths(
    paths: Sequence[str | Path],
    allowed_modules: AllowedModules = ("*",),
    *,
    cache: DagCache | bool = False,
    lazy: bool = False,
) -> DagBag:
    """The DAGs of the given files and folders, as :func:`load_dags` for a folder."""
    groups: list[Group] = []
    seen: set[str] = set()
    for given in map(Path, paths):
        if given.is_dir():
            folder, files = given, dag_files(given)
        elif given.exists():
            folder, files = None, [given]
        else:
            groups.append(failed(given, "no such file or folder"))
            continue
        real = {file: _real_path(file) for file in files}
        groups.append((folder, [file for file in files if real[file] not in seen]))
        seen.update(real.values())
    return collect(LoadPass(allowed_modules, cache, lazy).load(groups))


@functools.lru_cache(maxsize=64)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _real_path(file: Path) -> str:
    """The file's real path (as ``resolve()``, with its folder's resolved once)."""
    if file.is_symlink():
        return str(file.resolve())
    return os.path.join(_real_folder(str(file.parent)), file.name)


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
    return LoadPass(allowed_modules).load([(None, [Path(path)])])[0]


Group = tuple[Path | None, list[Path]] | LoadResult
"""Files to load (with their folder when it was listed whole), or a result already."""


class LoadPass:
    """One load of some DAG files: each callable checked once, the files of one folder
    loaded in one :func:`import_scope`, and unchanged YAML files taken from ``cache``
    (see :func:`load_dags`)."""

    def __init__(
        self, allowed: AllowedModules, cache: DagCache | bool = False, lazy: bool = False
    ) -> None:
        self.allowed = list(allowed)
        found = DagCache.shared() if cache is True else cache or None
        self.cache = found if found is not None else DagCache(None)
        self.lazy = lazy
        self.checked: dict[str, list[ImportProblem]] = {}
        self.functions: dict[str, Any] = {}
        self.used: set[BuiltKey] = set()
        self._stamps: dict[str, list[int] | None] = {}

    def load(self, groups: Sequence[Group]) -> list[LoadResult]:
        """The result of every file, in order; then the cache is saved."""
        results: list[LoadResult] = []
        with ExitStack() as scope:
            parent: Path | None = None
            for group in groups:
                if isinstance(group, LoadResult):
                    results.append(group)
                    continue
                listed, files = group
                for file in files:
                    if file.parent != parent:
                        scope.close()
                        parent = file.parent
                        scope.enter_context(import_scope(file))
                        folder = self.cache.for_folder(parent, self.allowed)
                        folder.complete = folder.complete or listed is not None
                    results.append(self.file(file, folder))
        self.cache.save()
        self.cache.forget_built({r.path for r in results}, self.used)
        return results

    def file(self, file: Path, folder: FolderCache) -> LoadResult:
        """One file's result (inside the import scope of its folder)."""
        if file.suffix == ".py":
            with import_scope(file) as roots:  # forget what this file alone made importable
                return load_python(file, self.allowed, roots)
        if file.suffix not in YAML_SUFFIXES:
            return failed(file, f"not a DAG file: use {', '.join(YAML_SUFFIXES)} or .py")
        try:
            found = folder.find(file, MAX_FILE_BYTES)
            doc = None if found.entry is None else _doc_of(file, found.entry)
            if found.entry is not None and doc is None:
                folder.forget(file)
                found = folder.find(file, MAX_FILE_BYTES)
        except OSError as e:
            return failed(file, read_problem(e))
        if found.entry is not None and doc is not None:
            entry, sha = found.entry, found.entry["sha256"]
        else:
            folder.parsed.append(file.name)
            doc = read_doc(str(file), found.raw or b"")
            try:
                entry, sha = doc.to_entry(), found.sha256
            except Inexact:  # kept out of the cache: parsed every time
                return self.result(file, doc, {}, found.sha256)
            folder.put(file, entry, sha, found.identity)
        before = entry.get("built")
        result = self.result(file, doc, entry, sha)
        folder.dirty = folder.dirty or entry.get("built") != before
        return result

    def result(self, file: Path, doc: YamlDoc, entry: dict[str, Any], sha: str) -> LoadResult:
        """The file's result from its document: the callables checked now, the DAG
        taken from this process's memory, built, or (lazily) left to build on use when
        an earlier build under the same callable modules succeeded."""
        name = str(file)
        called = [
            *located_callable_problems(doc.callables, self.allowed, self.checked),
            *located_code_problems(name, doc.data, doc.places, self.allowed),
        ]
        if doc.problems or called:
            return LoadResult(name, problems=in_file_order([*doc.problems, *called]))
        lines = {doc.data["dag_id"]: doc.line}
        key: BuiltKey = (name, sha, tuple(self.allowed))
        self.used.add(key)
        stamps = self._module_stamps(doc)
        built = entry.get("built")
        if key not in self.cache.built and self.lazy and built and built["modules"] == stamps:
            if built["error"] is not None:
                return failed(file, built["error"])
            build = functools.partial(self._build, file, doc, key, True)
            return LoadResult(name, refs=[DagRef(doc.info(name), build)], lines=lines)
        try:
            dag = self._build(file, doc, key, False)
        except FairQueueError as e:
            entry["built"] = {"error": str(e), "modules": stamps}
            return failed(file, str(e))
        entry["built"] = {"error": None, "modules": stamps}
        return LoadResult(name, [dag], lines=lines)

    def _build(self, file: Path, doc: YamlDoc, key: BuiltKey, scoped: bool) -> DAG:
        dag = self.cache.built.get(key)
        if dag is None:
            with import_scope(file) if scoped else contextlib.nullcontext():
                dag = build_dag(doc.data, str(file), self.allowed, self.functions)
            self.cache.built[key] = dag
        return dag

    def _module_stamps(self, doc: YamlDoc) -> dict[str, list[int] | None]:
        """The file identity of each module the document's callables come from: a
        build that succeeded under the same modules succeeds again."""
        stamps: dict[str, list[int] | None] = {}
        for _, path in doc.callables:
            module = path.partition(":")[0]
            if module not in self._stamps:
                where = getattr(sys.modules.get(module), "__file__", None)
                try:
                    stat = os.stat(where) if where else None
                except OSError:
                    stat = None
                self._stamps[module] = None if stat is None else [stat.st_size, stat.st_mtime_ns]
            stamps[module] = self._stamps[module]
        return stamps


def _doc_of(file: Path, entry: dict[str, Any]) -> YamlDoc | None:
    """The document of a cache entry, or None for a malformed one (parsed again)."""
    try:
        doc = YamlDoc.from_entry(str(file), entry)
        sha = entry["sha256"]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return doc if isinstance(sha, str) else None


def read_doc(name: str, raw: bytes) -> YamlDoc:
    """What the bytes of the YAML DAG file ``name`` say, checked (all but callables)."""
    try:
        data, root = parse_yaml_bytes(name, raw, MAX_FILE_BYTES, DagFileError)
    except DagFileError as e:
        return YamlDoc([_file_problem(name, p) for p in e.problems])
    return YamlDoc(
        file_problems(name, data, root),
        located_callables(name, data, root),
        data,
        line_of(root, ["dag_id"]),
        code_places(name, data, root),
    )


def _file_problem(file: str, message: str) -> Problem:
    where = _YAML_WHERE.match(message)
    if where:
        return Problem(file, int(where[1]), int(where[2]), "", message[where.end() :])
    return Problem(file, None, None, "", message)


def build_dag(
    data: Mapping[str, Any],
    source: str,
    allowed: AllowedModules = ("*",),
    callables: dict[str, Any] | None = None,
) -> DAG:
    """The DAG of a YAML document that passed :func:`~fairque.dag.validate.document_problems`.

    An ``@task`` callable's decorator options are the base of its task, then
    ``default_args``, then the task's own keys; its decorator ``depends_on`` is ignored
    (the DAG file alone says what runs after what). ``callables`` (path -> function,
    filled here) lets a load of many files import each function once.
    """
    data = flatten(expand_shorthands(data), None).data  # external_dag; groups as prefixed tasks
    groups = group_specs(data)
    tenant = str(data.get("tenant", "default"))
    defaults = dict(data.get("default_args") or {})
    nodes: dict[str, Task] = {}
    info: dict[str, TaskInfo] = {}
    found = {} if callables is None else callables
    for name, spec in data["tasks"].items():
        path = spec["callable"]
        if path not in found:
            found[path] = import_callable(path, allowed)
        if groups and "depends_on" in spec:  # a group's edges come from graph_edges
            spec = {**spec, "depends_on": [d for d in spec["depends_on"] if d not in groups]}
        nodes[name], info[name] = _template(name, spec, found[path], defaults, tenant)
    edges = graph_edges(data)
    heads = tuple(n for n in nodes if not any(b == n for _, b in edges))
    tails = tuple(n for n in nodes if not any(a == n for a, _ in edges))
    return DAG(
        dag_id=data["dag_id"],
        pipeline=Pipeline(nodes, frozenset(edges), heads, tails, frozenset(groups)),
        description=data.get("description", ""),
        schedule=data.get("schedule"),
        timezone=data.get("timezone", "UTC"),
        catchup=data.get("catchup", False),
        max_active_runs=data.get("max_active_runs", 16),
        max_active_tasks=data.get("max_active_tasks"),
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


__all__ = [
    "DEFAULT_FOLDER",
    "ENV_FOLDER",
    "MAX_FILE_BYTES",
    "PRIVATE_PREFIX",
    "DagBag",
    "LoadPass",
    "LoadResult",
    "build_dag",
    "collect",
    "dag_files",
    "dags_folder",
    "found_under",
    "import_dag_module",
    "import_scope",
    "is_dag_file",
    "load_dag_file",
    "load_dags",
    "load_paths",
    "read_doc",
    "unimportable",
    "worker_roots",
]
