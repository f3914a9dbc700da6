"""Checking DAG files without running anything: every problem, located by line:column.

The checks on a YAML document are pure functions of its data and node tree:
schema errors (with did-you-mean for unknown keys), duplicate keys, task ids too long
(the longest id a run by tick or by hand makes), dependencies on unknown tasks,
self-dependencies, cycles (the whole path), ``flow`` syntax, cron (one that never fires
is refused), timezone, params, and callables (imported to check they exist and are allowed; never
called). :func:`validate_dag_file` and :func:`validate_paths` apply them, through the
loader, to files and folders.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from fairque.core.errors import DagCycleError, DagError, FlowSyntaxError
from fairque.core.graph import cycles
from fairque.core.imports import ImportProblem, find_object, import_problems
from fairque.core.schemas import MAX_NODES, did_you_mean, expansion_problem, schema_problems
from fairque.dag.branching import branch_problems
from fairque.dag.flow import Flow, parse_flow, unknown_names
from fairque.dag.groups import Flat, expand, flatten, group_specs
from fairque.dag.model import (
    PARAM_TYPES,
    RUN_CALLBACKS,
    param_problems,
    placeholder_problems,
    schedule_problems,
)
from fairque.dag.model import dependency_problems as dag_dependency_problems
from fairque.dag.references import expand_type_problems, reference_edges, reference_problems
from fairque.dag.shorthands import expand_shorthands, shorthand_problems
from fairque.queue.runs import task_id_problem

if TYPE_CHECKING:
    from fairque.dag.cache import DagCache

SCHEMA = "dag.schema.json"

Path_ = tuple[str | int, ...]
_REQUIRED = re.compile(r"^is invalid: '(.+)' is a required property$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a DAG file, located as precisely as known.

    ``line``/``column`` are 1-based (None when unknown); ``pointer`` is a JSON pointer
    into the document (``/tasks/load/depends_on/0``), ``""`` for the whole file.
    """

    file: str
    line: int | None
    column: int | None
    pointer: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        at = f" [at {self.pointer}]" if self.pointer else ""
        return f"{where}: {self.message}{at}"

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-compatible data."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "message": self.message,
        }


def json_pointer(path: Sequence[str | int]) -> str:
    """The RFC 6901 pointer of ``path``: ``("tasks", "a/b", 0)`` -> ``/tasks/a~1b/0``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


# --- where things are in the YAML -----------------------------------------------------


def entry_node(root: yaml.Node | None, path: Sequence[str | int]) -> yaml.Node | None:
    """The node that best locates ``path``: the key of a mapping entry, the item of a
    list, else the nearest enclosing one found."""
    node, best = root, root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pairs = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
            if not pairs:
                return best
            best, node = pairs[-1]  # the last duplicate key wins, as in the data
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return best
            best = node = node.value[part]
        else:
            return best
    return best


def value_node(root: yaml.Node | None, path: Sequence[str | int]) -> yaml.Node | None:
    """The value node at ``path``, or None when the path is not in the tree."""
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pairs = [v for k, v in node.value if getattr(k, "value", None) == str(part)]
            node = pairs[-1] if pairs else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def _problem(file: str, root: yaml.Node | None, path: Path_, message: str) -> Problem:
    node = entry_node(root, path)
    mark = None if node is None else node.start_mark
    line = None if mark is None else mark.line + 1
    column = None if mark is None else mark.column + 1
    return Problem(file, line, column, json_pointer(path), message)


# --- the shape of the document ----------------------------------------------------------


def duplicate_keys(file: str, root: yaml.Node | None) -> list[Problem]:
    """One problem per repeated key of a mapping (YAML keeps only the last one silently).

    Keys brought in by a ``<<`` merge are not duplicates: overriding them is the point.
    """
    problems: list[Problem] = []
    for node, path in _mappings(root):
        first: dict[str, yaml.Node] = {}
        for key, _ in node.value:
            if key.start_mark.index < node.start_mark.index:
                continue  # merged in from an anchor defined earlier
            name = str(key.value)
            if name not in first:
                first[name] = key
                continue
            what = "task name" if path == ("tasks",) else "key"
            where = first[name].start_mark.line + 1
            problems.append(
                Problem(
                    file,
                    key.start_mark.line + 1,
                    key.start_mark.column + 1,
                    json_pointer((*path, name)),
                    f"duplicate {what} {name!r} (first at line {where}); each must be unique",
                )
            )
    return problems


def _mappings(root: yaml.Node | None) -> Iterator[tuple[yaml.MappingNode, Path_]]:
    """Every mapping node once (aliases are not followed twice), with its path."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, Path_]] = [] if root is None else [(root, ())]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            yield node, path
            stack.extend((v, (*path, str(k.value))) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, (*path, i)) for i, v in enumerate(node.value))


def schema_check(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Every way the document breaks ``dag.schema.json``, each at its line:column."""
    problems = []
    for path, message in schema_problems(data, SCHEMA):
        required = _REQUIRED.match(message)
        if required:
            text = f"missing required key {required.group(1)!r}"
        else:
            text = f"{_subject(path)} {message}"
        problems.append(_problem(file, root, path, text))
    return problems


def _subject(path: Path_) -> str:
    """What a schema message is about: ``the document``, ``priority``, ``depends_on[0]``."""
    if not path:
        return "the document"
    if isinstance(path[-1], int):
        return f"{path[-2]}[{path[-1]}]" if len(path) > 1 else f"item {path[-1]}"
    return str(path[-1])


# --- what the document means ------------------------------------------------------------


def _tasks(data: Any) -> dict[str, dict[str, Any]]:
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        return {}
    return {str(name): spec for name, spec in tasks.items() if isinstance(spec, dict)}


def _string_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def name_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Task and param names that YAML read as something else than a string (``on``,
    ``no`` and ``1`` become true, false and 1 unless quoted)."""
    problems = []
    for section in ("tasks", "params"):
        mapping = data.get(section) if isinstance(data, dict) else None
        for key in mapping if isinstance(mapping, dict) else ():
            if not isinstance(key, str):
                shown = str(key).lower() if isinstance(key, bool) else str(key)
                text = (
                    f"{section[:-1]} name {shown} is not a string (YAML reads it as "
                    f"{type(key).__name__}); put it in quotes"
                )
                problems.append(_problem(file, root, (section,), text))
    return problems


def task_id_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Tasks whose ids in the DAG's runs (``{dag_id}__{time}:{name}``, the longest a
    scheduled or manual run makes) would pass the length limit of ids."""
    dag_id = data.get("dag_id") if isinstance(data, dict) else None
    if not isinstance(dag_id, str):
        return []  # the schema reports it
    found = [(name, task_id_problem(dag_id, name)) for name in _tasks(data)]
    return [_problem(file, root, ("tasks", name), text) for name, text in found if text]


def _known(data: Any) -> set[str]:
    """The names a dependency or a flow may use: tasks and (flattened) groups."""
    return {*_tasks(data), *group_specs(data)}


def dependency_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """``depends_on`` entries naming no task (or group) of the DAG, and tasks depending
    on themselves."""
    tasks = _tasks(data)
    depends_on = {name: _string_list(spec.get("depends_on")) for name, spec in tasks.items()}
    return [
        _problem(file, root, ("tasks", name, "depends_on", i), _or_group(data, text))
        for name, i, text in dag_dependency_problems(depends_on, _known(data))
    ]


def _or_group(data: Any, text: str) -> str:
    """A message about an unknown task, saying "task or group" in a DAG with groups."""
    if not group_specs(data):
        return text
    return text.replace(
        "which is not a task of this DAG", "which is not a task or group of this DAG"
    )


def flows(data: Any) -> list[tuple[Path_, str]]:
    """The document's flow expressions with their paths (``/flow`` or ``/flow/i``)."""
    flow = data.get("flow") if isinstance(data, dict) else None
    if isinstance(flow, str):
        return [(("flow",), flow)]
    if isinstance(flow, list):
        return [(("flow", i), text) for i, text in enumerate(flow) if isinstance(text, str)]
    return []


def flow_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Flow expressions that do not parse (at the column where they broke, within the
    file when the string sits on one line) or that name unknown tasks."""
    tasks = _known(data)
    problems = []
    for path, text in flows(data):
        try:
            flow = parse_flow(text)
        except FlowSyntaxError as e:
            problems.append(_flow_problem(file, root, path, e))
            continue
        for name in unknown_names(flow, tasks):
            problems.append(
                _problem(
                    file,
                    root,
                    path,
                    _or_group(
                        data,
                        f"flow names {name!r}, which is not a task of this DAG"
                        f"{did_you_mean(name, tasks)}",
                    ),
                )
            )
    return problems


def _flow_problem(
    file: str, root: yaml.Node | None, path: Path_, error: FlowSyntaxError
) -> Problem:
    problem = _problem(file, root, path, str(error))
    node = value_node(root, path)
    if isinstance(node, yaml.ScalarNode) and node.start_mark.line == node.end_mark.line:
        quote = 1 if node.style in ("'", '"') else 0
        column = node.start_mark.column + quote + error.column
        return Problem(file, node.start_mark.line + 1, column, problem.pointer, problem.message)
    return problem


def graph_edges(data: Any) -> set[tuple[str, str]]:
    """Every (upstream, downstream) edge between known tasks, from depends_on, flow and
    references to return values (``{from: task}``); a group stands for its leaves
    upstream and its roots downstream (see :mod:`fairque.dag.groups`)."""
    tasks = _tasks(data)
    groups = group_specs(data)
    known = {*tasks, *groups}
    links = {
        (upstream, name)
        for name, spec in tasks.items()
        for upstream in _string_list(spec.get("depends_on"))
        if upstream in known
    }
    links |= {
        (upstream, name)
        for name, spec in groups.items()
        for upstream in _string_list(spec.get("depends_on"))
        if upstream in known
    }
    links |= reference_edges(tasks)
    for _, text in flows(data):
        try:
            flow: Flow = parse_flow(text)
        except FlowSyntaxError:
            continue
        links |= {(a, b) for a, b in flow.edges if a in known and b in known}
    return expand(links, groups, tasks) if groups else links


def reference_check(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """``{from: ...}`` references to unknown tasks, and malformed ``expand`` (see
    :mod:`fairque.dag.references`); cycles they close are :func:`cycle_problems`'."""
    return [_problem(file, root, path, text) for path, text in reference_problems(_tasks(data))]


def cycle_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """One problem per group of tasks that depend on each other in a circle, with the
    whole cycle as a path ``a -> b -> c -> a`` (self-dependencies are reported apart)."""
    edges = {(a, b) for a, b in graph_edges(data) if a != b}
    return [
        _problem(file, root, ("tasks", cycle[0]), str(DagCycleError(cycle)))
        for cycle in cycles((), edges)
    ]


def setting_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """A bad cron schedule or timezone, params whose default or enum do not fit their
    type, and templates that do not parse, use an unknown variable or a param that is
    not declared."""
    if not isinstance(data, dict):
        return []
    found: list[tuple[Path_, str]] = [
        ((where,), text)
        for where, text in schedule_problems(data.get("schedule"), data.get("timezone", "UTC"))
        if isinstance(data.get(where, ""), str)  # other types: the schema reports them
    ]
    given = data.get("params")
    params = {
        name: spec
        for name, spec in (given.items() if isinstance(given, dict) else ())
        if isinstance(spec, dict) and spec.get("type", "string") in PARAM_TYPES
    }  # other specs: the schema reports them
    found.extend((("params", name), text) for name, text in param_problems(params))
    names = given if isinstance(given, dict) else {}
    for name, spec in _tasks(data).items():
        values = {key: spec.get(key) for key in ("args", "kwargs")}
        found.extend(
            (("tasks", name, *where), text)
            for where, text in placeholder_problems(name, values, names)
        )
    return [_problem(file, root, path, text) for path, text in found if text]


# --- callables ---------------------------------------------------------------------------


def import_callable(path: str, allowed: Sequence[str]) -> Any:
    """The function named by ``module:function`` (an ``@task`` function stays wrapped),
    under the import rule of :mod:`fairque.core.imports`; DagError saying what forbids
    it otherwise. Nothing is imported from a module outside ``allowed``; the function is
    never called."""
    found = find_object(path, allowed)
    if isinstance(found, ImportProblem):
        raise DagError(f"callable {found.message}")
    return found


T = TypeVar("T")


def callable_report(
    uses: Sequence[tuple[T, str]],
    allowed: Sequence[str],
    checked: dict[str, list[ImportProblem]] | None = None,
) -> list[tuple[T, str]]:
    """``(where, message)`` for each ``(where, module:function)`` use that breaks the
    import rule; a module outside ``allowed`` is reported once, at its first use, with
    the other uses counted and how to allow it. ``checked`` (path -> problems, filled
    here) lets a pass over many files check each path once."""
    known = {} if checked is None else checked
    found: list[tuple[T, str]] = []
    first: dict[str, int] = {}
    repeats: dict[str, int] = {}
    for where, path in uses:
        if path not in known:
            known[path] = import_problems(path, allowed)
        for problem in known[path]:
            if problem.module is None:
                found.append((where, f"callable {problem.message}"))
            elif problem.module in first:
                repeats[problem.module] = repeats.get(problem.module, 0) + 1
            else:
                first[problem.module] = len(found)
                found.append((where, f"callable {problem.message}"))
    for module, count in repeats.items():
        where, message = found[first[module]]
        found[first[module]] = (where, f"{message} ({count} more use(s) of {module!r})")
    return found


def callable_uses(data: Any) -> list[tuple[Path_, str]]:
    """Where the document names a function (``module:function``), and which: each
    task's ``callable`` and the run callbacks (other values: the schema reports them)."""
    uses: list[tuple[Path_, str]] = [
        (("tasks", name, "callable"), spec["callable"])
        for name, spec in _tasks(data).items()
        if isinstance(spec.get("callable"), str) and ":" in spec["callable"]
    ]
    if isinstance(data, dict):
        uses += [
            ((key,), data[key])
            for key in RUN_CALLBACKS
            if isinstance(data.get(key), str) and ":" in data[key]
        ]
    return uses


def branch_targets(data: Any, allowed: Sequence[str]) -> list[tuple[Path_, str]]:
    """``(path, message)`` for each branch task without downstream tasks, or whose
    function returns a literal name that is not one of its direct downstream tasks (see
    :mod:`fairque.dag.branching`). Depends on code, like the callable checks."""
    edges = graph_edges(data)
    found: list[tuple[Path_, str]] = []
    for name, spec in _tasks(data).items():
        if spec.get("branch") is not True:
            continue
        path = spec.get("callable")
        target = find_object(path, allowed) if isinstance(path, str) and ":" in path else None
        function = None if isinstance(target, ImportProblem) else target
        downstream = {b for a, b in edges if a == name}
        found += [
            (("tasks", name, "branch"), text)
            for text in branch_problems(name, function, downstream)
        ]
    return found


def code_view(data: Any, root: yaml.Node | None) -> tuple[Any, yaml.Node | None]:
    """The document as the checks that depend on code see it: ``external_dag`` shorthands
    expanded and task groups flattened into prefixed tasks (nodes kept)."""
    flat = _code_flat(data, root)
    return flat.data, flat.root


def _code_flat(data: Any, root: yaml.Node | None) -> Flat:
    return flatten(expand_shorthands(data), root) if isinstance(data, dict) else Flat(data, root)


def _flat_problem(file: str, flat: Flat, path: Path_, message: str) -> Problem:
    """:func:`_problem` for a path into the flat data: placed by the flat node tree,
    its pointer naming the place in the document (inside its group)."""
    return _in_document(flat, _problem(file, flat.root, path, message))


def located_callables(file: str, data: Any, root: yaml.Node | None) -> list[tuple[Problem, str]]:
    """Each function the document names, with where it is named (a Problem with no
    message yet): what the callable checks need, without the document."""
    flat = _code_flat(data, root)
    uses = callable_uses(flat.data)
    return [(_flat_problem(file, flat, where, ""), path) for where, path in uses]


def located_callable_problems(
    uses: Sequence[tuple[Problem, str]],
    allowed: Sequence[str],
    checked: dict[str, list[ImportProblem]] | None = None,
) -> list[Problem]:
    """The problems of :func:`located_callables`' uses under ``allowed`` (see
    :func:`callable_report`)."""
    return [
        dataclasses.replace(where, message=text)
        for where, text in callable_report(uses, allowed, checked)
    ]


def callable_problems(
    file: str, data: Any, root: yaml.Node | None, allowed: Sequence[str]
) -> list[Problem]:
    """Callables that break the import rule (checked, not run); a disallowed module
    once, at its first use."""
    return located_callable_problems(located_callables(file, data, root), allowed)


def expand_types(data: Any, allowed: Sequence[str]) -> list[tuple[Path_, str]]:
    """``(path, message)`` for an ``expand`` over a task whose callable declares a return
    type that is not a list (callables that break the import rule are
    :func:`callable_problems`'). Depends on code, like the callable checks."""
    tasks = _tasks(data)

    def function_of(name: str) -> object:
        path = tasks[name].get("callable")
        found = find_object(path, allowed) if isinstance(path, str) and ":" in path else None
        return None if isinstance(found, ImportProblem) else found

    return expand_type_problems(tasks, function_of)


def code_problems(
    file: str, data: Any, root: yaml.Node | None, allowed: Sequence[str]
) -> list[Problem]:
    """:func:`expand_types` and :func:`branch_targets`, each at its line:column."""
    return located_code_problems(file, data, code_places(file, data, root), allowed)


def code_places(file: str, data: Any, root: yaml.Node | None) -> dict[str, Problem]:
    """Where each key of each task's ``expand`` and each ``branch`` flag is (a Problem
    with no message yet, by JSON pointer): what :func:`located_code_problems` needs to
    place its problems without the document's node tree."""
    flat = _code_flat(data, root)
    places = {}
    for name, spec in _tasks(flat.data).items():
        expand = spec.get("expand")
        paths: list[Path_] = (
            [("tasks", name, "expand", str(key)) for key in expand]
            if isinstance(expand, dict)
            else []
        )
        if "branch" in spec:
            paths.append(("tasks", name, "branch"))
        for path in paths:
            places[json_pointer(path)] = _flat_problem(file, flat, path, "")
    return places


def located_code_problems(
    file: str, data: Any, places: Mapping[str, Problem], allowed: Sequence[str]
) -> list[Problem]:
    """The problems of :func:`expand_types` and :func:`branch_targets`, placed by
    :func:`code_places`."""
    view, _ = code_view(data, None)
    found = []
    for path, text in [*expand_types(view, allowed), *branch_targets(view, allowed)]:
        pointer = json_pointer(path)
        where = places.get(pointer, Problem(file, None, None, pointer, ""))
        found.append(dataclasses.replace(where, message=text))
    return found


def file_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Every problem of one parsed YAML DAG document that depends on the file alone
    (all but the callables, which depend on the code they name), in file order."""
    if data is None:
        return [Problem(file, None, None, "", "the file is empty; a DAG needs dag_id and tasks")]
    shorthands = [_problem(file, root, path, text) for path, text in shorthand_problems(data)]
    data = expand_shorthands(data)  # external_dag: its callable and kwargs
    flat = flatten(data, root)  # task groups as prefixed tasks, nodes kept
    problems = [
        *shorthands,
        *duplicate_keys(file, root),
        *schema_check(file, data, root),
        *name_problems(file, data, root),
        *(_problem(file, root, path, text) for path, text in flat.problems),
    ]
    data, root = flat.data, flat.root
    on_flat = [
        *task_id_problems(file, data, root),
        *dependency_problems(file, data, root),
        *reference_check(file, data, root),
        *flow_problems(file, data, root),
        *cycle_problems(file, data, root),
        *setting_problems(file, data, root),
    ]
    problems += [_in_document(flat, p) for p in on_flat]
    return in_file_order(problems)


def _in_document(flat: Flat, problem: Problem) -> Problem:
    """``problem`` found on the flat data, its pointer naming the place in the document:
    ``/tasks/g.a/depends_on/0`` -> ``/groups/g/tasks/a/depends_on/0``."""
    _, section, name, *rest = [*problem.pointer.split("/", 3), "", ""][:4]
    name = name.replace("~1", "/").replace("~0", "~")
    if section != "tasks" or name not in flat.origins:
        return problem
    pointer = json_pointer(flat.origins[name]) + ("/" + rest[0] if rest[0] else "")
    return dataclasses.replace(problem, pointer=pointer)


def in_file_order(problems: Sequence[Problem]) -> list[Problem]:
    """``problems`` sorted by line and column (unknown places first)."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def document_problems(
    file: str, data: Any, root: yaml.Node | None, allowed: Sequence[str] = ("*",)
) -> list[Problem]:
    """Every problem of one parsed YAML DAG document, in file order."""
    if data is None:
        return file_problems(file, data, root)
    return in_file_order(
        [
            *file_problems(file, data, root),
            *callable_problems(file, data, root, allowed),
            *code_problems(file, data, root, allowed),
        ]
    )


# --- files and folders -------------------------------------------------------------------


def validate_dag_file(path: str | Path, allowed_modules: Sequence[str] = ("*",)) -> list[Problem]:
    """Every problem of one DAG file (YAML or Python); an empty list when it is valid."""
    from fairque.dag.loader import load_dag_file  # the loader builds on these checks

    return load_dag_file(path, allowed_modules).problems


def validate_paths(
    paths: Sequence[str | Path],
    allowed_modules: Sequence[str] = ("*",),
    *,
    cache: DagCache | bool = False,
) -> dict[str, list[Problem]]:
    """Problems per DAG file under ``paths`` (files, and folders' DAG files), every file
    listed (``[]`` when valid); a dag_id defined twice among them is a problem in each.
    ``cache`` as for :func:`~fairque.dag.loader.load_dags`."""
    from fairque.dag.loader import load_paths

    return dict(load_paths(paths, allowed_modules, cache=cache, lazy=True).files)


def problems_of(report: Mapping[str, Sequence[Problem]]) -> list[Problem]:
    """All problems of a :func:`validate_paths` report, in one list."""
    return [problem for found in report.values() for problem in found]


__all__ = [
    "MAX_NODES",
    "Problem",
    "branch_targets",
    "callable_problems",
    "callable_report",
    "callable_uses",
    "code_places",
    "code_problems",
    "cycle_problems",
    "dependency_problems",
    "document_problems",
    "duplicate_keys",
    "entry_node",
    "expand_types",
    "expansion_problem",
    "file_problems",
    "flow_problems",
    "graph_edges",
    "import_callable",
    "in_file_order",
    "json_pointer",
    "located_callable_problems",
    "located_callables",
    "located_code_problems",
    "name_problems",
    "problems_of",
    "reference_check",
    "schema_check",
    "setting_problems",
    "task_id_problems",
    "validate_dag_file",
    "validate_paths",
    "value_node",
]
