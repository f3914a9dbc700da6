"""The import rule for task functions (fairque.core.imports): the bypass catalogue, the
allowlist's whole-segment prefixes, and the same answer in every caller."""

from __future__ import annotations

import sys

import pytest

from fairque.core.errors import DagError, TaskImportError
from fairque.core.imports import (
    ImportProblem,
    import_problems,
    parse_import_path,
    resolve_class,
    resolve_function,
)
from fairque.dag.validate import import_callable
from tests.unit import bypass_tasks

MODULE = "tests.unit.bypass_tasks"
ALLOWED = [MODULE]

# attribute path inside MODULE -> words in the refusal
CATALOGUE = {
    "os.system": "module 'os' is not in allowed_modules",
    "subprocess.run": "module 'subprocess' is not in allowed_modules",
    "builtins.eval": "module 'builtins' is not in allowed_modules",
    "sys.modules": "module 'sys' is not in allowed_modules",
    "importlib.import_module": "module 'importlib' is not in allowed_modules",
    "__import__": "names starting with '__' are never imported",
    "__builtins__": "names starting with '__' are never imported",
    "Greeter.__init__": "names starting with '__' are never imported",
    "Greeter.hello": "Greeter is a class, not a module",
    "Greeter.static": "Greeter is a class, not a module",
    "Greeter": "is a class, not a function",
    "run": "defined in module 'subprocess', which is not in allowed_modules",
    "dumps": "defined in module 'json', which is not in allowed_modules",
    "sample_tasks.add": "module 'tests.unit.sample_tasks' is not in allowed_modules",
    "fake": "is a FakeWrapper, not a function",
    "CALLS": "is a list, not a function",
}


@pytest.fixture(autouse=True)
def _no_calls_yet() -> None:
    """Other tests (``dag test`` of a good file) may have run ``fine`` in this process."""
    bypass_tasks.CALLS.clear()


@pytest.mark.parametrize("attribute", sorted(CATALOGUE))
def test_the_bypass_catalogue_is_refused(attribute: str) -> None:
    path = f"{MODULE}:{attribute}"
    (problem,) = import_problems(path, ALLOWED)
    assert CATALOGUE[attribute] in problem.message
    with pytest.raises(TaskImportError, match="task function"):
        resolve_function(path, ALLOWED)
    with pytest.raises(DagError, match="callable"):
        import_callable(path, ALLOWED)
    assert bypass_tasks.CALLS == []


@pytest.mark.parametrize(
    "path",
    ["os:system", "builtins:eval", "subprocess:run", "importlib:import_module", "sys:exit"],
)
def test_a_disallowed_module_is_refused_before_import(path: str) -> None:
    (problem,) = import_problems(path, ALLOWED)
    module = path.partition(":")[0]
    assert problem.module == module
    assert f"--allowed-modules {module} or FAIRQUE_ALLOWED_MODULES={module}" in problem.message


def test_builtins_are_refused_even_when_every_module_is_allowed() -> None:
    (problem,) = import_problems("os:system", ["*"])
    assert "not a function written in Python" in problem.message
    (problem,) = import_problems("builtins:eval", ["*"])
    assert "not a function written in Python" in problem.message


def test_a_module_is_not_imported_when_it_is_not_allowed() -> None:
    sys.modules.pop("tests.unit.never_imported", None)
    (problem,) = import_problems("tests.unit.never_imported:f", ["examples"])
    assert problem.module == "tests.unit.never_imported"
    assert "tests.unit.never_imported" not in sys.modules


def test_plain_and_task_functions_resolve() -> None:
    assert resolve_function(f"{MODULE}:fine", ALLOWED) is bypass_tasks.fine
    assert resolve_function(f"{MODULE}:wrapped", ["tests"]) is (
        bypass_tasks.wrapped.__fairque_function__
    )
    assert import_callable(f"{MODULE}:wrapped", ["tests"]) is bypass_tasks.wrapped
    assert import_problems(f"{MODULE}:fine", ["tests.unit"]) == []


def test_a_dotted_path_through_an_allowed_submodule() -> None:
    path = "tests.unit:bypass_tasks.fine"
    assert resolve_function(path, ["tests.unit"]) is bypass_tasks.fine
    (problem,) = import_problems("tests:unit.bypass_tasks.fine", ["tests.unit"])
    assert problem.module == "tests"


def test_a_class_for_a_handler_follows_the_same_rule() -> None:
    assert resolve_class(f"{MODULE}:Greeter", ALLOWED) is bypass_tasks.Greeter
    with pytest.raises(TaskImportError, match="not a class"):
        resolve_class(f"{MODULE}:fine", ALLOWED)
    with pytest.raises(TaskImportError, match="module 'subprocess'"):
        resolve_class(f"{MODULE}:subprocess.Popen", ALLOWED)


@pytest.mark.parametrize(
    "path",
    ["", "nocolon", ":f", "m:", "m:f-g", "m::f", "a b:f", "m:f.", 42],
)
def test_malformed_paths(path: object) -> None:
    assert isinstance(parse_import_path(path), str)
    (problem,) = import_problems(path, ["*"])  # type: ignore[arg-type]
    assert isinstance(problem, ImportProblem) and problem.module is None
    assert "is not an import path 'module:function'" in problem.message


def test_a_task_checks_the_syntax_when_created_and_the_rest_on_import() -> None:
    from fairque.core.errors import TaskError
    from fairque.core.models import Task

    with pytest.raises(TaskError, match="is not an import path 'module:function'"):
        Task.create("u", func=f"{MODULE}:os-system")
    assert Task.create("u", func=f"{MODULE}:__import__").func  # refused on import
