"""What ``dag validate`` can check about a branch task before any run: that it has
direct downstream tasks, and that every task name its function returns *literally*
(``return "a"``, ``return ["a", "b"]``) is one of them. Names computed at run time are
checked when the branch runs (lua/_dynamic.lua). The function is read, never called."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Collection, Iterator
from typing import Any

from fairque.core.imports import WRAPPED_ATTRIBUTE
from fairque.tasks.dynamic import branch_choice


def literal_targets(function: Any) -> list[str]:
    """The task names ``function`` returns as string literals (alone, or in a list or
    tuple of literals), in source order; [] when its source cannot be read."""
    target = getattr(function, WRAPPED_ATTRIBUTE, function)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(target)))
    except (OSError, TypeError, SyntaxError):
        return []
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    names: list[str] = []
    for node in _returns(tree.body[0]):
        value = node.value
        items = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        names += [
            i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)
        ]
    return list(dict.fromkeys(names))


def _returns(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The return statements of ``function`` itself (not of functions nested in it)."""
    stack: list[ast.AST] = list(reversed(function.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None:
            yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def branch_problems(name: str, function: Any, downstream: Collection[str]) -> list[str]:
    """Why branch task ``name`` (running ``function``) cannot work with these direct
    ``downstream`` tasks: it has none, or it returns a literal name that is not one (nor
    one inside its own task group, nor a task group leading to some of them)."""
    if not downstream:
        return [f"branch task {name!r} has no downstream tasks to choose from"]
    known = ", ".join(sorted(downstream))
    return [
        f"branch task {name!r} returns {target!r}, which is not one of its direct "
        f"downstream tasks ({known})"
        for target in literal_targets(function)
        if not branch_choice(name, target, downstream)
    ]


__all__ = ["branch_problems", "literal_targets"]
