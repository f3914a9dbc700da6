"""The checks of a YAML DAG document that depend on code, not on the file alone: the
functions it names (imported to check they exist and are allowed; never called), the
return types its ``expand`` arguments map over, and the literal names its branch tasks
return. They run on the document with task groups flattened, and are placed where the
file has them; the DAG cache keeps their places, never their results."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import yaml

from fairque.core.errors import DagError
from fairque.core.imports import ImportProblem, find_object, import_problems
from fairque.dag.branching import branch_problems
from fairque.dag.document import (
    Path_,
    Problem,
    graph_edges,
    in_document,
    json_pointer,
    locate,
    tasks_of,
)
from fairque.dag.groups import Flat, flatten
from fairque.dag.references import expand_type_problems
from fairque.dag.rules import RUN_CALLBACKS
from fairque.dag.shorthands import expand_shorthands


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
        for name, spec in tasks_of(data).items()
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
    for name, spec in tasks_of(data).items():
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
    """:func:`locate` for a path into the flat data: placed by the flat node tree,
    its pointer naming the place in the document (inside its group)."""
    return in_document(flat, locate(file, flat.root, path, message))


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
    tasks = tasks_of(data)

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
    for name, spec in tasks_of(flat.data).items():
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


__all__ = [
    "branch_targets",
    "callable_problems",
    "callable_report",
    "callable_uses",
    "code_places",
    "code_problems",
    "code_view",
    "expand_types",
    "import_callable",
    "located_callable_problems",
    "located_callables",
    "located_code_problems",
]
