"""Run and DAG graphs as inline SVG, drawn by the renderer of ``fairque dag render``.

A DAG's run is drawn from its DAG (as the run kept it, see ``graph_view``); a run of a
pipeline, or of a DAG no longer in the folder, from its snapshot or its task records.
Drawings are cached by what they show (the states, attempts and lineage), so a page
polled every second runs Graphviz only when something changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fairque.dag.model import DAG
from fairque.dag.render import GraphView, NodeView, RenderError, XComEdge, to_image
from fairque.dag.runs import graph_view
from fairque.queue.runs import RunInfo

CACHE_SIZE = 256


def run_view(
    info: RunInfo, lineage: list[dict[str, Any]], dag: DAG | None, link: str = ""
) -> GraphView:
    """The graph of one run, coloured by state, with its XCom lineage; with ``link``
    (a URL ending in ``task=``), each node leads there with its name appended."""
    view = _view(info, lineage, dag)
    if not link:
        return view
    nodes = [replace(n, link=link + quote(n.name, safe="")) for n in view.nodes]
    return replace(view, nodes=nodes)


def _view(info: RunInfo, lineage: list[dict[str, Any]], dag: DAG | None) -> GraphView:
    if dag is not None and info.dag_id == dag.dag_id:
        return graph_view(dag, info, lineage)
    snapshot = info.dag_snapshot or {}
    names = list(snapshot.get("tasks") or info.task_ids)
    by_id = {task_id: name for name, task_id in info.task_ids.items()}
    if "edges" in snapshot:
        edges = sorted((str(a), str(b)) for a, b in snapshot["edges"])
    else:
        edges = sorted(
            (by_id.get(up, up), name)
            for name, task in info.tasks.items()
            if task is not None
            for up in task.depends_on
        )
    nodes = []
    for name in names:
        task = info.tasks.get(name)
        nodes.append(
            NodeView(
                name=name,
                label=(task.func or "") if task is not None else "",
                state=task.state if task is not None else None,
                attempts=task.attempts if task is not None else 0,
                duration=task.duration if task is not None else None,
                error=task.error.get("message") if task is not None and task.error else None,
                outcome=task.display_state if task is not None else None,
                pokes=task.pokes if task is not None else 0,
            )
        )
    xcom = [
        XComEdge(e["producer"] or "?", e["consumer"], e["key"], e.get("bytes"))
        for e in lineage
        if e["kind"] == "pull"
    ]
    title = f"{info.dag_id or 'pipeline'} — run {info.run_id} ({info.state})"
    return GraphView(title, nodes, edges, xcom, list(snapshot.get("groups", [])))


class SvgCache:
    """The latest drawings by content (LRU, thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def svg(self, view: GraphView) -> str:
        """The graph as SVG markup (no XML prolog, to sit inside HTML); a page shows the
        RenderError's text (e.g. how to install Graphviz) when it cannot be drawn."""
        key = repr(view)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        text = to_image(view, "svg").decode("utf-8")
        start = text.find("<svg")
        markup = text[start:] if start >= 0 else text
        with self._lock:
            self._items[key] = markup
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return markup


__all__ = ["RenderError", "SvgCache", "run_view"]
