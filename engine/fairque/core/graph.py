"""Dependency graphs as plain data: cycles and topological order (pure, no Redis).

A graph is its node names and its ``(upstream, downstream)`` edges. The standard
library's :mod:`graphlib` finds cycles and does the ordering; pipelines, DAG files and
pushed batches all use these functions, so a cycle reads the same everywhere: a closed
path starting at its smallest name, ``["a", "b", "c", "a"]``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from graphlib import CycleError, TopologicalSorter

from fairque.core.errors import DagCycleError

Edge = tuple[str, str]


def _sorter(nodes: Iterable[str], edges: Iterable[Edge]) -> TopologicalSorter[str]:
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in sorted(set(nodes)):
        sorter.add(node)
    for upstream, downstream in sorted(set(edges)):
        sorter.add(downstream, upstream)
    return sorter


def _closed(path: list[str]) -> list[str]:
    """The closed path ``path`` (first node repeated last) rotated to start at its
    smallest node."""
    ring = path[:-1]
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]


def find_cycle(nodes: Iterable[str], edges: Iterable[Edge]) -> list[str] | None:
    """A cycle as a closed path (``["a", "b", "a"]``), or None when there is none."""
    try:
        _sorter(nodes, edges).prepare()
    except CycleError as e:
        return _closed(list(e.args[1]))
    return None


def topological_order(
    nodes: Iterable[str], edges: Iterable[Edge], rank: Callable[[str], int] | None = None
) -> list[str]:
    """Every node after its upstreams; among the nodes ready at once, the smallest
    ``rank`` first (default: by name). DagCycleError naming the cycle if there is one."""
    names = sorted(set(nodes) | {n for edge in edges for n in edge})
    order_of = rank or {name: i for i, name in enumerate(names)}.__getitem__
    sorter = _sorter(names, edges)
    try:
        sorter.prepare()
    except CycleError as e:
        raise DagCycleError(_closed(list(e.args[1]))) from None
    ready: list[tuple[int, str]] = []
    order: list[str] = []
    while True:
        for node in sorter.get_ready():
            heapq.heappush(ready, (order_of(node), node))
        if not ready:
            return order
        node = heapq.heappop(ready)[1]
        order.append(node)
        sorter.done(node)


def reachable(edges: Iterable[Edge], start: str, backwards: bool = False) -> set[str]:
    """The nodes reachable from ``start`` along the edges (against them when
    ``backwards``: its ancestors), ``start`` excluded unless on a cycle."""
    following: dict[str, list[str]] = {}
    for a, b in edges:
        source, target = (b, a) if backwards else (a, b)
        following.setdefault(source, []).append(target)
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in following.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def ancestors(edges: Iterable[Edge], node: str) -> set[str]:
    """Every node with a path to ``node``."""
    return reachable(edges, node, backwards=True)


def cycles(nodes: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """One cycle (a closed path) per group of nodes that depend on each other in a
    circle (a strongly connected component with an edge), in order of their first node."""
    remaining = set(nodes) | {n for edge in edges for n in edge}
    links = set(edges)
    found: list[list[str]] = []
    while (cycle := find_cycle(remaining, links)) is not None:
        found.append(cycle)
        group = reachable(links, cycle[0]) & ancestors(links, cycle[0])
        remaining -= group
        links = {(a, b) for a, b in links if a in remaining and b in remaining}
    return sorted(found)


__all__ = ["ancestors", "cycles", "find_cycle", "reachable", "topological_order"]
