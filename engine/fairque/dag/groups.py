"""Task groups in YAML DAG files: ``groups:`` flattened into prefixed tasks.

A group has ``tasks`` (named inside it), optional nested ``groups``, ``default_args``
(filled into its tasks' keys they leave unset: the task wins, an inner group wins over
an outer one, any group over the DAG's ``default_args``), ``depends_on`` (tasks or
groups its roots wait for) and a ``description``. Its tasks are named
``<group>.<task>`` (``ingest.fetch``; nested: ``ingest.raw.fetch``). Inside a group a
``depends_on`` name (and a ``{from: name}`` reference) is looked up in the group first,
then in each enclosing group, then at the top. A group is a dependency as a whole:
``depends_on: [ingest]`` or the flow ``ingest >> report`` puts every *leaf* of
``ingest`` (a member with no downstream member) before every *root* of ``report`` (a
member with no upstream member).

:func:`flatten` rewrites a document into the form without groups that the checks of
:mod:`fairque.dag.validate` and the loader read: every task under ``tasks`` by its full
name, with its YAML node kept so that problems keep their file:line:col, and
``groups`` as ``{full name: {"tasks": [...], "depends_on": [...]}}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from fairque.core.refs import is_yaml_ref
from fairque.core.schemas import did_you_mean
from fairque.dag.references import ARGUMENT_KEYS

Path_ = tuple[str | int, ...]
Edge = tuple[str, str]


@dataclass
class Flat:
    """A document flattened: its data and node tree, and what flattening found wrong."""

    data: Any
    root: yaml.Node | None
    problems: list[tuple[Path_, str]] = field(default_factory=list)
    origins: dict[str, Path_] = field(default_factory=dict)
    """Each task's path in the document, by its full name (``g.a`` -> groups/g/tasks/a),
    so that a problem found on the flat data points at what the file says."""


def has_groups(data: Any) -> bool:
    """True when the document declares task groups."""
    return isinstance(data, dict) and isinstance(data.get("groups"), dict) and bool(data["groups"])


def task_count(section: Any) -> int:
    """How many tasks a document (or a group) declares, its groups' included: as many as
    the DAG built from it has (``dag list`` shows it without building the DAG)."""
    if not isinstance(section, dict):
        return 0
    tasks, groups = section.get("tasks"), section.get("groups")
    inner = groups.values() if isinstance(groups, dict) else ()
    return (len(tasks) if isinstance(tasks, dict) else 0) + sum(map(task_count, inner))


def group_specs(data: Any) -> dict[str, dict[str, Any]]:
    """The flattened groups of a flattened document: full name -> tasks, depends_on."""
    groups = data.get("groups") if isinstance(data, dict) else None
    return groups if isinstance(groups, dict) else {}


def flatten(data: Any, root: yaml.Node | None) -> Flat:
    """The document without ``groups:`` (see the module's notes); unchanged without them."""
    if not has_groups(data):
        return Flat(data, root)
    walker = _Walker(data, root)
    walker.walk(data, (), "")
    walker.resolve()
    flat = {k: v for k, v in data.items() if k not in ("tasks", "groups")}
    flat["tasks"] = {name: spec for name, (spec, _, _) in walker.tasks.items()}
    flat["groups"] = {
        name: {"tasks": members, "depends_on": walker.group_deps.get(name, [])}
        for name, members in walker.members.items()
    }
    origins = {name: path for name, (_, path, _) in walker.tasks.items()}
    return Flat(flat, walker.flat_root(), walker.problems, origins)


class _Walker:
    """Collects tasks and groups at every depth, with their paths and nodes."""

    def __init__(self, data: dict[str, Any], root: yaml.Node | None) -> None:
        self.data = data
        self.root = root
        self.tasks: dict[str, tuple[dict[str, Any], Path_, str]] = {}  # full -> spec, path, scope
        self.key_nodes: dict[str, tuple[yaml.Node | None, yaml.Node | None]] = {}
        self.members: dict[str, list[str]] = {}
        self.group_paths: dict[str, tuple[Path_, str]] = {}  # full -> path, enclosing scope
        self.group_deps: dict[str, list[str]] = {}
        self.problems: list[tuple[Path_, str]] = []
        self.defaults: dict[str, dict[str, Any]] = {"": {}}

    def walk(self, section: Mapping[str, Any], path: Path_, scope: str) -> None:
        """Record the tasks and groups of one level (the document, or a group)."""
        tasks = section.get("tasks")
        for name, spec in tasks.items() if isinstance(tasks, dict) else ():
            if isinstance(spec, dict):
                self._task(str(name), spec, (*path, "tasks", str(name)), scope)
        groups = section.get("groups")
        for name, spec in groups.items() if isinstance(groups, dict) else ():
            if isinstance(spec, dict):
                self._group(str(name), spec, (*path, "groups", str(name)), scope)

    def _claim(self, full: str, path: Path_, what: str) -> bool:
        if full in self.tasks or full in self.members:
            other = "task" if full in self.tasks else "group"
            self.problems.append(
                (path, f"{what} name {full!r} is also the name of a {other}; each must be unique")
            )
            return False
        return True

    def _task(self, name: str, spec: dict[str, Any], path: Path_, scope: str) -> None:
        full = f"{scope}.{name}" if scope else name
        if not self._claim(full, path, "task"):
            return
        merged = copy.deepcopy(spec)
        for key, value in self.defaults[scope].items():
            merged.setdefault(key, copy.deepcopy(value))
        self.tasks[full] = (merged, path, scope)
        for group in _enclosing(scope):
            self.members[group].append(full)

    def _group(self, name: str, spec: dict[str, Any], path: Path_, scope: str) -> None:
        full = f"{scope}.{name}" if scope else name
        if not self._claim(full, path, "group"):
            return
        self.members[full] = []
        self.group_paths[full] = (path, scope)
        defaults = spec.get("default_args")
        inner = dict(self.defaults[scope])
        inner.update(defaults if isinstance(defaults, dict) else {})
        self.defaults[full] = inner
        self.walk(spec, path, full)
        if not self.members[full]:
            self.problems.append((path, f"group {full!r} has no tasks"))

    def lookup(self, name: str, scope: str) -> str:
        """The full name ``name`` means inside ``scope`` (as written when nothing matches)."""
        for prefix in (*_enclosing(scope), ""):
            full = f"{prefix}.{name}" if prefix else name
            if full in self.tasks or full in self.members:
                return full
        return name

    def resolve(self) -> None:
        """Rewrite every depends_on to full names; a task or group depending on a group
        that contains it is a cycle."""
        for full, (spec, path, scope) in self.tasks.items():
            for section in ARGUMENT_KEYS:  # {from: name} references, looked up the same way
                if scope and section in spec:
                    spec[section] = self._references(spec[section], scope)
            deps = spec.get("depends_on")
            if isinstance(deps, list):
                spec["depends_on"] = [
                    self.lookup(d, scope) if isinstance(d, str) else d for d in deps
                ]
                for i, dep in enumerate(spec["depends_on"]):
                    if dep in self.members and full in self.members[dep]:
                        self.problems.append(
                            (
                                (*path, "depends_on", i),
                                f"task {full!r} depends on group {dep!r}, which contains it: "
                                f"a cycle ({full} -> {dep} -> {full})",
                            )
                        )
        for full, (path, scope) in self.group_paths.items():
            spec = _at(self.data, path)
            deps = spec.get("depends_on") if isinstance(spec, dict) else None
            resolved = (
                [self.lookup(d, scope) for d in deps if isinstance(d, str)]
                if isinstance(deps, list)
                else []
            )
            self.group_deps[full] = resolved
            for i, dep in enumerate(resolved):
                known = set(self.tasks) | set(self.members)
                if dep == full or dep.startswith(full + ".") or full.startswith(dep + "."):
                    self.problems.append(
                        (
                            (*path, "depends_on", i),
                            f"group {full!r} depends on {dep!r}, which is itself, inside it or "
                            f"around it: a cycle",
                        )
                    )
                elif dep not in known:
                    self.problems.append(
                        (
                            (*path, "depends_on", i),
                            f"group {full!r} depends on {dep!r}, which is not a task or group "
                            f"of this DAG{did_you_mean(dep, known)}",
                        )
                    )

    def _references(self, value: Any, scope: str) -> Any:
        """``value`` with every ``{from: name}`` naming its task by full name."""
        if isinstance(value, dict):
            if is_yaml_ref(value) and isinstance(value.get("from"), str):
                return {**value, "from": self.lookup(value["from"], scope)}
            return {k: self._references(v, scope) for k, v in value.items()}
        if isinstance(value, list):
            return [self._references(v, scope) for v in value]
        return value

    def flat_root(self) -> yaml.Node | None:
        """A node tree matching the flat data: the top level as it is, ``tasks`` holding
        every task's own key and value nodes under its full name."""
        if not isinstance(self.root, yaml.MappingNode):
            return self.root
        pairs = []
        for full, (_, path, _) in self.tasks.items():
            key, value = _pair(self.root, path)
            if key is None or value is None:
                continue
            renamed = yaml.ScalarNode(key.tag, full, key.start_mark, key.end_mark)
            pairs.append((renamed, value))
        tasks_node = yaml.MappingNode(
            "tag:yaml.org,2002:map", pairs, self.root.start_mark, self.root.end_mark
        )
        top = [(k, v) for k, v in self.root.value if getattr(k, "value", None) not in ("tasks",)]
        tasks_key = yaml.ScalarNode(
            "tag:yaml.org,2002:str", "tasks", self.root.start_mark, self.root.end_mark
        )
        return yaml.MappingNode(
            self.root.tag, [*top, (tasks_key, tasks_node)], self.root.start_mark, self.root.end_mark
        )


def _enclosing(scope: str) -> list[str]:
    """``a.b.c`` -> ``["a.b.c", "a.b", "a"]``; ``""`` -> ``[]``."""
    parts = scope.split(".") if scope else []
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _pair(root: yaml.Node, path: Path_) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The key and value nodes of the mapping entry at ``path``."""
    node: yaml.Node | None = root
    key: yaml.Node | None = None
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            return None, None
        pairs = [(k, v) for k, v in node.value if getattr(k, "value", None) == str(part)]
        if not pairs:
            return None, None
        key, node = pairs[-1]
    return key, node


# --- edges through groups -------------------------------------------------------------------


def shapes(
    groups: Mapping[str, Mapping[str, Any]], edges: Iterable[Edge]
) -> dict[str, tuple[list[str], list[str]]]:
    """Each group's (roots, leaves) from the task edges between its members."""
    edge_list = list(edges)
    out: dict[str, tuple[list[str], list[str]]] = {}
    for name, spec in groups.items():
        members = list(spec.get("tasks", []))
        inside = set(members)
        internal = [(a, b) for a, b in edge_list if a in inside and b in inside]
        roots = [m for m in members if not any(b == m for _, b in internal)]
        leaves = [m for m in members if not any(a == m for a, _ in internal)]
        out[name] = (roots, leaves)
    return out


def expand(
    links: Iterable[Edge], groups: Mapping[str, Mapping[str, Any]], tasks: Iterable[str]
) -> set[Edge]:
    """Task edges from ``links`` between tasks or groups: a group upstream stands for its
    leaves, a group downstream for its roots. Groups are resolved innermost first, so a
    group's shape counts the edges through the groups nested in it."""
    known = set(tasks)
    links = list(links)
    direct = {(a, b) for a, b in links if a in known and b in known}
    resolved: dict[str, tuple[list[str], list[str]]] = {}
    for name in sorted(groups, key=lambda g: -g.count(".")):
        edges = direct | _through(links, resolved, known)
        resolved[name] = shapes({name: groups[name]}, edges)[name]
    return direct | _through(links, resolved, known)


def _through(
    links: list[Edge], resolved: Mapping[str, tuple[list[str], list[str]]], known: set[str]
) -> set[Edge]:
    out: set[Edge] = set()
    for a, b in links:
        ups = resolved[a][1] if a in resolved else [a] if a in known else []
        downs = resolved[b][0] if b in resolved else [b] if b in known else []
        if a in resolved or b in resolved:
            out |= {(u, d) for u in ups for d in downs}
    return out


__all__ = ["Flat", "expand", "flatten", "group_specs", "has_groups", "shapes", "task_count"]
