"""Where things are in a YAML DAG document, and what it says: :class:`Problem` (a
message at ``file:line:column`` with a JSON pointer), locating a path in the node tree
(of the document, or of its flattened form, pointing back into the document), and the
readers the checks share: its tasks, its flow expressions and its graph's edges."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from fairque.core.errors import FlowSyntaxError
from fairque.dag.flow import Flow, parse_flow
from fairque.dag.groups import Flat, expand, group_specs
from fairque.dag.references import reference_edges

Path_ = tuple[str | int, ...]


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


def locate(file: str, root: yaml.Node | None, path: Path_, message: str) -> Problem:
    node = entry_node(root, path)
    mark = None if node is None else node.start_mark
    line = None if mark is None else mark.line + 1
    column = None if mark is None else mark.column + 1
    return Problem(file, line, column, json_pointer(path), message)


def in_file_order(problems: Sequence[Problem]) -> list[Problem]:
    """``problems`` sorted by line and column (unknown places first)."""
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def in_document(flat: Flat, problem: Problem) -> Problem:
    """``problem`` found on the flat data, its pointer naming the place in the document:
    ``/tasks/g.a/depends_on/0`` -> ``/groups/g/tasks/a/depends_on/0``."""
    _, section, name, *rest = [*problem.pointer.split("/", 3), "", ""][:4]
    name = name.replace("~1", "/").replace("~0", "~")
    if section != "tasks" or name not in flat.origins:
        return problem
    pointer = json_pointer(flat.origins[name]) + ("/" + rest[0] if rest[0] else "")
    return dataclasses.replace(problem, pointer=pointer)


def tasks_of(data: Any) -> dict[str, dict[str, Any]]:
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        return {}
    return {str(name): spec for name, spec in tasks.items() if isinstance(spec, dict)}


def string_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def flows(data: Any) -> list[tuple[Path_, str]]:
    """The document's flow expressions with their paths (``/flow`` or ``/flow/i``)."""
    flow = data.get("flow") if isinstance(data, dict) else None
    if isinstance(flow, str):
        return [(("flow",), flow)]
    if isinstance(flow, list):
        return [(("flow", i), text) for i, text in enumerate(flow) if isinstance(text, str)]
    return []


def graph_edges(data: Any) -> set[tuple[str, str]]:
    """Every (upstream, downstream) edge between known tasks, from depends_on, flow and
    references to return values (``{from: task}``); a group stands for its leaves
    upstream and its roots downstream (see :mod:`fairque.dag.groups`)."""
    tasks = tasks_of(data)
    groups = group_specs(data)
    known = {*tasks, *groups}
    links = {
        (upstream, name)
        for name, spec in tasks.items()
        for upstream in string_list(spec.get("depends_on"))
        if upstream in known
    }
    links |= {
        (upstream, name)
        for name, spec in groups.items()
        for upstream in string_list(spec.get("depends_on"))
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


__all__ = [
    "Path_",
    "Problem",
    "entry_node",
    "flows",
    "graph_edges",
    "in_document",
    "in_file_order",
    "json_pointer",
    "locate",
    "string_list",
    "tasks_of",
    "value_node",
]
