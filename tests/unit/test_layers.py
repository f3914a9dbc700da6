"""Layers import downward only: every ``import`` in the package, read with ``ast``.

Function-level imports, ``if TYPE_CHECKING:`` imports and the modules named in a
package's lazy ``_EXPORTS`` table count as well: a lower layer that needs a higher one,
even lazily or for a type, has its dependency upside down.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import fairque

PACKAGE_DIR = Path(fairque.__file__).parent

LEVELS = {
    "core": 0,
    "lua": 0,
    "server": 0,
    "queue": 1,
    "tasks": 2,
    "worker": 3,
    "dag": 3,
    "sensors": 3,  # fairque/sensors.py: built-in sensor tasks
    "scheduler": 4,
    "monitoring": 5,
    "cli": 6,
    "demo": 6,  # fairque/demo.py
    "ui": 6,
    "fairque": 7,  # fairque/__init__.py: the public names of every layer
}
"""Level of each top-level part of the package: a part imports parts of its own level
or lower, never a higher one."""

ONLY = {"core": {"core"}, "server": {"server", "core"}}
"""Parts held tighter than their level: core is the base, and the server (infrastructure)
imports core only."""

APART = {frozenset({"worker", "dag"}), frozenset({"worker", "scheduler"})}
"""Parts that never import each other whatever their levels: workers run tasks, while
DAGs and the scheduler only queue them."""


def part_of(module: str) -> str:
    """``fairque.queue.calls`` -> ``queue``; ``fairque.demo`` -> ``demo``; ``fairque``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in the file ``path`` of the package."""
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), is_package=path.name == "__init__.py")


def imports_in(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``, at any depth."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base == "fairque":  # `from fairque import queue` names a part
                for alias in node.names:
                    yield node.lineno, f"fairque.{alias.name}" if alias.name in LEVELS else base
            else:
                yield node.lineno, base
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for value in node.value.values if names_exports(node) else []:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.lineno, value.value


def names_exports(node: ast.Assign) -> bool:
    """True for ``_EXPORTS = ...``, a lazy package's table of name -> module."""
    return any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets)


def allowed(importer: str, imported: str) -> bool:
    """May module ``importer`` import module ``imported`` (both in fairque)?"""
    own, other = part_of(importer), part_of(imported)
    if own == other:
        return True
    if own in ONLY:
        return other in ONLY[own]
    if frozenset({own, other}) in APART:
        return False
    return LEVELS[other] <= LEVELS[own]


def upward_imports() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        importer = module_name(path)
        for line, imported in imported_modules(path):
            if imported.split(".")[0] != "fairque":
                continue
            if not allowed(importer, imported):
                found.append((importer, line, imported))
    return found


def test_every_part_of_the_package_has_a_level() -> None:
    parts = {part_of(module_name(p)) for p in PACKAGE_DIR.rglob("*.py")}
    assert parts - set(LEVELS) == set(), "give each new part a level in LEVELS"


def test_no_module_imports_a_higher_layer() -> None:
    found = [f"{module}:{line} imports {imported}" for module, line, imported in upward_imports()]
    assert found == []


def test_the_checker_sees_upward_lazy_and_relative_imports() -> None:
    source = (
        "from fairque.core.models import Task\n"
        "def later():\n"
        "    from fairque.worker.sync_worker import Worker\n"
        "    import fairque.cli.app\n"
        "    from . import calls\n"
        "    from fairque import tasks, task\n"
        "_EXPORTS = {'Worker': 'fairque.worker.sync_worker'}\n"
    )
    seen = [m for _, m in imports_in(source, "fairque.queue.example", is_package=False)]
    assert {m: allowed("fairque.queue.example", m) for m in seen} == {
        "fairque.core.models": True,
        "fairque.worker.sync_worker": False,
        "fairque.cli.app": False,
        "fairque.queue": True,
        "fairque.tasks": False,
        "fairque": False,
    }
    assert len(seen) == 7  # sync_worker twice: imported, and named in _EXPORTS
    assert not allowed("fairque.worker.x", "fairque.dag.model")
    assert not allowed("fairque.scheduler.x", "fairque.worker.signals")
    assert not allowed("fairque.core.x", "fairque.server")
    assert not allowed("fairque.server.x", "fairque.queue.calls")
    assert allowed("fairque.server.x", "fairque.core.errors")
    assert allowed("fairque.cli.x", "fairque.demo")
    assert allowed("fairque.monitoring.x", "fairque.worker.runtime")
