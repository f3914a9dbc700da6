"""Checking DAG files without running anything: every problem, located by line:column.

The checks on a YAML document are pure functions of its data and node tree:
schema errors (with did-you-mean for unknown keys), duplicate keys, task ids too long
(the longest id a run by tick or by hand makes), dependencies on unknown tasks,
self-dependencies, cycles (the whole path), ``flow`` syntax, cron (one that never fires
is refused), timezone, params, and callables (imported to check they exist and are allowed; never
called). :func:`validate_dag_file` and :func:`validate_paths` apply them, through the
loader, to files and folders. Where things are and what the document says:
:mod:`fairque.dag.document`; the checks that depend on code: :mod:`fairque.dag.codechecks`
(their names are importable from here too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fairque.core.errors import DagCycleError, FlowSyntaxError
from fairque.core.graph import cycles
from fairque.core.schemas import MAX_NODES, did_you_mean, expansion_problem, schema_problems
from fairque.dag.codechecks import (
    branch_targets,
    callable_problems,
    callable_report,
    callable_uses,
    code_places,
    code_problems,
    expand_types,
    import_callable,
    located_callable_problems,
    located_callables,
    located_code_problems,
)
from fairque.dag.document import (
    Path_,
    Problem,
    entry_node,
    flows,
    graph_edges,
    in_document,
    in_file_order,
    json_pointer,
    locate,
    string_list,
    tasks_of,
    value_node,
)
from fairque.dag.flow import parse_flow, unknown_names
from fairque.dag.groups import flatten, group_specs
from fairque.dag.params import PARAM_TYPES
from fairque.dag.references import reference_problems
from fairque.dag.rules import dependency_problems as dag_dependency_problems
from fairque.dag.rules import param_problems, placeholder_problems, schedule_problems
from fairque.dag.shorthands import expand_shorthands, shorthand_problems
from fairque.queue.runs import task_id_problem

if TYPE_CHECKING:
    from fairque.dag.cache import DagCache

SCHEMA = "dag.schema.json"
_REQUIRED = re.compile(r"^is invalid: '(.+)' is a required property$")


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
        problems.append(locate(file, root, path, text))
    return problems


def _subject(path: Path_) -> str:
    """What a schema message is about: ``the document``, ``priority``, ``depends_on[0]``."""
    if not path:
        return "the document"
    if isinstance(path[-1], int):
        return f"{path[-2]}[{path[-1]}]" if len(path) > 1 else f"item {path[-1]}"
    return str(path[-1])


# --- what the document means ------------------------------------------------------------


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
                problems.append(locate(file, root, (section,), text))
    return problems


def task_id_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Tasks whose ids in the DAG's runs (``{dag_id}__{time}:{name}``, the longest a
    scheduled or manual run makes) would pass the length limit of ids."""
    dag_id = data.get("dag_id") if isinstance(data, dict) else None
    if not isinstance(dag_id, str):
        return []  # the schema reports it
    found = [(name, task_id_problem(dag_id, name)) for name in tasks_of(data)]
    return [locate(file, root, ("tasks", name), text) for name, text in found if text]


def _known(data: Any) -> set[str]:
    """The names a dependency or a flow may use: tasks and (flattened) groups."""
    return {*tasks_of(data), *group_specs(data)}


def dependency_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """``depends_on`` entries naming no task (or group) of the DAG, and tasks depending
    on themselves."""
    tasks = tasks_of(data)
    depends_on = {name: string_list(spec.get("depends_on")) for name, spec in tasks.items()}
    return [
        locate(file, root, ("tasks", name, "depends_on", i), _or_group(data, text))
        for name, i, text in dag_dependency_problems(depends_on, _known(data))
    ]


def _or_group(data: Any, text: str) -> str:
    """A message about an unknown task, saying "task or group" in a DAG with groups."""
    if not group_specs(data):
        return text
    return text.replace(
        "which is not a task of this DAG", "which is not a task or group of this DAG"
    )


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
                locate(
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
    problem = locate(file, root, path, str(error))
    node = value_node(root, path)
    if isinstance(node, yaml.ScalarNode) and node.start_mark.line == node.end_mark.line:
        quote = 1 if node.style in ("'", '"') else 0
        column = node.start_mark.column + quote + error.column
        return Problem(file, node.start_mark.line + 1, column, problem.pointer, problem.message)
    return problem


def reference_check(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """``{from: ...}`` references to unknown tasks, and malformed ``expand`` (see
    :mod:`fairque.dag.references`); cycles they close are :func:`cycle_problems`'."""
    return [locate(file, root, path, text) for path, text in reference_problems(tasks_of(data))]


def cycle_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """One problem per group of tasks that depend on each other in a circle, with the
    whole cycle as a path ``a -> b -> c -> a`` (self-dependencies are reported apart)."""
    edges = {(a, b) for a, b in graph_edges(data) if a != b}
    return [
        locate(file, root, ("tasks", cycle[0]), str(DagCycleError(cycle)))
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
    for name, spec in tasks_of(data).items():
        values = {key: spec.get(key) for key in ("args", "kwargs")}
        found.extend(
            (("tasks", name, *where), text)
            for where, text in placeholder_problems(name, values, names)
        )
    return [locate(file, root, path, text) for path, text in found if text]


# --- callables ---------------------------------------------------------------------------


def file_problems(file: str, data: Any, root: yaml.Node | None) -> list[Problem]:
    """Every problem of one parsed YAML DAG document that depends on the file alone
    (all but the callables, which depend on the code they name), in file order."""
    if data is None:
        return [Problem(file, None, None, "", "the file is empty; a DAG needs dag_id and tasks")]
    shorthands = [locate(file, root, path, text) for path, text in shorthand_problems(data)]
    data = expand_shorthands(data)  # external_dag: its callable and kwargs
    flat = flatten(data, root)  # task groups as prefixed tasks, nodes kept
    problems = [
        *shorthands,
        *duplicate_keys(file, root),
        *schema_check(file, data, root),
        *name_problems(file, data, root),
        *(locate(file, root, path, text) for path, text in flat.problems),
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
    problems += [in_document(flat, p) for p in on_flat]
    return in_file_order(problems)


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
