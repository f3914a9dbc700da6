"""Draw a DAG, or one of its runs, as Graphviz DOT, Mermaid, SVG or PNG.

Pure rendering: the input is plain data (:class:`GraphView`) that the caller builds
from a DAG definition (the planned graph) or from a run's task records (states,
attempts, durations, XCom sizes). No Redis and no DAG loading here.

Every text that may come from a user file (title, names, callables, errors, XCom keys)
goes through one escaping function per output language: DOT labels are HTML-like with
full :func:`html.escape`, Mermaid labels use Mermaid's ``#entity;`` codes. Node ids are
generated (``n0``, ``n1``, ...), so no name ever appears as a DOT or Mermaid identifier.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import graphviz

from fairque.core.errors import FairQueueError
from fairque.core.models import TaskState

PLANNED = "planned"
"""Style name of a node without a state (a graph drawn before any run)."""
SKIPPED = "skipped"
UPSTREAM_FAILED = "upstream_failed"

STATE_COLORS: dict[str, tuple[str, str]] = {
    PLANNED: ("#f8fafc", "#94a3b8"),
    TaskState.SCHEDULED.value: ("#ede9fe", "#7c3aed"),
    TaskState.QUEUED.value: ("#dbeafe", "#2563eb"),
    TaskState.DEFERRED.value: ("#ffedd5", "#ea580c"),
    TaskState.STARTED.value: ("#fef9c3", "#ca8a04"),
    TaskState.FINISHED.value: ("#dcfce7", "#16a34a"),
    TaskState.FAILED.value: ("#fee2e2", "#dc2626"),
    TaskState.CANCELED.value: ("#e5e7eb", "#4b5563"),
    SKIPPED: ("#fce7f3", "#db2777"),
    UPSTREAM_FAILED: ("#ffedd5", "#c2410c"),
}
"""Fill and border colour per node style: ``"planned"``, each task state, and the two
kinds of CANCELED tasks drawn apart: ``"skipped"`` and ``"upstream_failed"``."""
_DASHED = frozenset({PLANNED, TaskState.CANCELED.value, SKIPPED, UPSTREAM_FAILED})

SUPPORTED_SUFFIXES = (".dot", ".mmd", ".svg", ".png")

_TEXT_COLOR = "#111827"
_MUTED_COLOR = "#4b5563"
_ERROR_COLOR = "#b91c1c"
_DEPENDENCY_COLOR = "#6b7280"
_XCOM_COLOR = "#7c3aed"
_XCOM_PLANNED_COLOR = "#c4b5fd"
_FONT = "Helvetica"
_XCOM_EDGE = {"style": "dashed", "constraint": "false", "arrowhead": "vee"}
_ERROR_LIMIT = 80
_TOOLTIP_LIMIT = 500
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]+")
_MERMAID_ENTITIES = str.maketrans(
    {c: f"#{ord(c)};" for c in "#%`{}[]|"} | {'"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;"}
)
"""Mermaid's ``#entity;`` codes for every character that could end or change a label."""


class RenderError(FairQueueError):
    """A graph could not be rendered."""


class UnsupportedFormatError(RenderError, ValueError):
    """The output file's suffix is not one of :data:`SUPPORTED_SUFFIXES`."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        shown = repr(suffix) if suffix else "a file without a suffix"
        super().__init__(f"cannot render to {shown}; use one of {', '.join(SUPPORTED_SUFFIXES)}")


class GraphvizMissingError(RenderError):
    """The Graphviz ``dot`` program, needed for SVG and PNG, is not installed."""

    def __init__(self, image_format: str) -> None:
        self.format = image_format
        super().__init__(
            f"rendering to .{image_format} needs the Graphviz 'dot' program, which is not "
            "on PATH; install it (apt-get install graphviz, brew install graphviz or "
            "conda install graphviz), or write -o FILE.dot or -o FILE.mmd, which need "
            "no Graphviz"
        )


@dataclass(frozen=True)
class NodeView:
    """One task as drawn: its name, callable and, after a run, how it went."""

    name: str
    label: str = ""
    state: TaskState | None = None
    attempts: int = 0
    duration: float | None = None
    error: str | None = None
    outcome: str | None = None
    """The record's ``display_state``: ``skipped`` or ``upstream_failed`` for those
    CANCELED tasks (drawn apart), else the state."""
    link: str | None = None
    """Where the node leads when clicked (SVG only; the dashboard opens the task)."""
    mapped: str | None = None
    """A mapped task (drawn as one node): its instance count and their states, e.g.
    ``mapped x50: 48 finished, 2 failed`` (see :func:`mapped_summary`)."""
    pokes: int = 0
    """A sensor's "not yet" pokes so far (not attempts)."""

    @property
    def style(self) -> str:
        """Key into :data:`STATE_COLORS`: ``"skipped"`` or ``"upstream_failed"`` for those
        CANCELED tasks, else the state's value, or ``"planned"``."""
        if self.state is None:
            return PLANNED
        if self.outcome in (SKIPPED, UPSTREAM_FAILED):
            return self.outcome
        return TaskState(self.state).value


@dataclass(frozen=True)
class XComEdge:
    """An XCom value pushed by ``producer`` and pulled by ``consumer``."""

    producer: str
    consumer: str
    key: str
    bytes: int | None = None

    @property
    def text(self) -> str:
        """Edge label, e.g. ``extracted · 36 B`` (just the key when planned)."""
        return self.key if self.bytes is None else f"{self.key} · {format_bytes(self.bytes)}"


@dataclass(frozen=True)
class GraphView:
    """A whole graph: title, nodes, dependency edges (upstream, downstream) and XCom."""

    title: str
    nodes: Sequence[NodeView]
    edges: Sequence[tuple[str, str]]
    xcom: Sequence[XComEdge] = ()
    groups: Sequence[str] = ()
    """Task groups by full name (``ingest``, ``ingest.raw``): a task ``ingest.fetch`` is
    drawn inside the cluster (DOT) or subgraph (Mermaid) of ``ingest``."""


def group_tree(view: GraphView) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Where each node and group goes: (members per group, child groups per group), the
    top level under ``""``. A name goes to the longest group that prefixes it + ``.``."""
    groups = sorted(set(view.groups), key=lambda g: (g.count("."), g))

    def home(name: str) -> str:
        found = [g for g in groups if name.startswith(g + ".")]
        return max(found, key=len) if found else ""

    members: dict[str, list[str]] = {g: [] for g in ["", *groups]}
    children: dict[str, list[str]] = {g: [] for g in ["", *groups]}
    for group in groups:
        children[home(group)].append(group)
    for name in _node_ids(view):
        members[home(name)].append(name)
    return members, children


def format_bytes(size: int) -> str:
    """``36 B``, ``1.5 KiB``, ``2.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    units = ("KiB", "MiB", "GiB", "TiB")
    for unit in units[:-1]:
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} {units[-1]}"


def format_duration(seconds: float) -> str:
    """``1.20 s``, ``2 min 05 s``, ``1 h 02 min``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _clean(text: str, limit: int | None = None) -> str:
    """One printable line: control characters and lone surrogates replaced, truncated."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _UNSAFE.sub(" ", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _status(node: NodeView) -> str:
    """``failed · attempt 2 · 1.20 s``, or ``""`` for a planned node."""
    parts = [] if node.state is None else [node.style]
    if node.attempts > 0:
        parts.append(f"attempt {node.attempts}")
    if node.pokes > 0:
        parts.append(f"{node.pokes} poke{'s' if node.pokes != 1 else ''}")
    if node.duration is not None:
        parts.append(format_duration(node.duration))
    if node.mapped:
        parts.append(node.mapped)
    return " · ".join(parts)


def mapped_summary(count: int | None, states: Sequence[TaskState | str | None] = ()) -> str:
    """How a mapped task is summed up on its node: ``mapped`` before it expanded, else
    ``mapped xN`` and how many of its instances are in each state (as shown:
    ``TaskRecord.display_state``, so skipped and upstream_failed apart from canceled)."""
    if count is None:
        return "mapped"
    counts = Counter(
        "gone" if s is None else s.value if isinstance(s, TaskState) else s for s in states
    )
    detail = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"mapped x{count}" + (f": {detail}" if detail else "")


def _node_ids(view: GraphView) -> dict[str, tuple[str, NodeView]]:
    """Name -> (generated id, node); names seen only in edges become planned nodes."""
    nodes: dict[str, NodeView] = {}
    for node in view.nodes:
        nodes.setdefault(node.name, node)
    ends = [*view.edges, *((x.producer, x.consumer) for x in view.xcom)]
    for name in (name for edge in ends for name in edge):
        nodes.setdefault(name, NodeView(name))
    return {name: (f"n{i}", node) for i, (name, node) in enumerate(nodes.items())}


# --- DOT -----------------------------------------------------------------------------


def _h(text: str, limit: int | None = None) -> str:
    """Text escaped for a DOT HTML-like label."""
    return html.escape(_clean(text, limit), quote=True)


def _small(text: str, color: str) -> str:
    return f'<FONT POINT-SIZE="9" COLOR="{color}">{text}</FONT>'


def _dot_label(node: NodeView) -> str:
    lines = [f"<B>{_h(node.name)}</B>"]
    if status := _status(node):
        lines.append(_h(status))
    if node.label:
        lines.append(_small(_h(node.label), _MUTED_COLOR))
    if node.error:
        lines.append(_small(_h(node.error, _ERROR_LIMIT), _ERROR_COLOR))
    return "<" + "<BR/>".join(lines) + ">"


def _digraph(view: GraphView) -> graphviz.Digraph:
    graph = graphviz.Digraph(
        "fairque",
        graph_attr={
            "rankdir": "LR",
            "label": f"<<B>{_h(view.title)}</B>>",
            "labelloc": "t",
            "fontname": _FONT,
            "bgcolor": "white",
        },
        node_attr={"shape": "box", "fontname": _FONT, "fontsize": "11", "margin": "0.15,0.08"},
        edge_attr={"fontname": _FONT, "fontsize": "9", "color": _DEPENDENCY_COLOR},
    )
    ids = _node_ids(view)
    members, children = group_tree(view)

    def place(target: graphviz.Digraph, group: str) -> None:
        for name in members[group]:
            node_id, node = ids[name]
            fill, border = STATE_COLORS[node.style]
            dashed = ",dashed" if node.style in _DASHED else ""
            attrs = {"style": f"rounded,filled{dashed}", "fillcolor": fill, "color": border}
            if node.error:
                attrs["tooltip"] = graphviz.escape(_clean(node.error, _TOOLTIP_LIMIT))
            if node.link:
                attrs["href"] = node.link
            target.node(node_id, _dot_label(node), fontcolor=_TEXT_COLOR, **attrs)
        for child in children[group]:
            with target.subgraph(name=f"cluster_{len(cluster_ids)}") as sub:
                cluster_ids.append(child)
                sub.attr(label=f"<<B>{_h(child)}</B>>", style="rounded,dashed", color=_MUTED_COLOR)
                sub.attr(fontname=_FONT, fontsize="10", labeljust="l")
                place(sub, child)

    cluster_ids: list[str] = []
    place(graph, "")
    for upstream, downstream in dict.fromkeys(view.edges):
        graph.edge(ids[upstream][0], ids[downstream][0])
    for x in view.xcom:
        color = _XCOM_COLOR if x.bytes is not None else _XCOM_PLANNED_COLOR
        edge = {"label": f"<{_h(x.text)}>", "color": color, "fontcolor": color, **_XCOM_EDGE}
        graph.edge(ids[x.producer][0], ids[x.consumer][0], **edge)
    return graph


def to_dot(view: GraphView) -> str:
    """The graph as Graphviz DOT source (left to right, nodes coloured by state)."""
    source: str = _digraph(view).source
    return source


def to_image(view: GraphView, image_format: str) -> bytes:
    """The graph rendered by Graphviz ``dot`` as ``svg`` or ``png`` bytes."""
    if shutil.which("dot") is None:
        raise GraphvizMissingError(image_format)
    try:
        data: bytes = _digraph(view).pipe(format=image_format)
    except graphviz.ExecutableNotFound as e:
        raise GraphvizMissingError(image_format) from e
    except graphviz.CalledProcessError as e:
        stderr = e.stderr.decode("utf-8", "replace") if isinstance(e.stderr, bytes) else ""
        raise RenderError(f"Graphviz dot failed: {stderr.strip() or e}") from e
    return data


# --- Mermaid -------------------------------------------------------------------------


def _m(text: str, limit: int | None = None) -> str:
    """Text escaped for a quoted Mermaid label."""
    return _clean(text, limit).translate(_MERMAID_ENTITIES)


def _mermaid_label(node: NodeView) -> str:
    lines = [f"<b>{_m(node.name)}</b>"]
    if status := _status(node):
        lines.append(_m(status))
    if node.label:
        lines.append(f"<small>{_m(node.label)}</small>")
    if node.error:
        lines.append(f"<small>{_m(node.error, _ERROR_LIMIT)}</small>")
    return '"' + "<br/>".join(lines) + '"'


def _mermaid_styles(
    ids: dict[str, tuple[str, NodeView]], n_deps: int, view: GraphView
) -> list[str]:
    by_style: dict[str, list[str]] = {}
    for node_id, node in ids.values():
        by_style.setdefault(node.style, []).append(node_id)
    lines = []
    for style, members in by_style.items():
        fill, border = STATE_COLORS[style]
        dash = ",stroke-dasharray:4 3" if style in _DASHED else ""
        lines.append(f"classDef {style} fill:{fill},stroke:{border},color:{_TEXT_COLOR}{dash}")
        lines.append(f"class {','.join(members)} {style}")
    for planned in (False, True):
        links = [str(n_deps + i) for i, x in enumerate(view.xcom) if (x.bytes is None) is planned]
        if links:
            color = _XCOM_PLANNED_COLOR if planned else _XCOM_COLOR
            lines.append(f"linkStyle {','.join(links)} stroke:{color},color:{color}")
    return lines


def _mermaid_subgraphs(
    ids: dict[str, tuple[str, NodeView]],
    members: dict[str, list[str]],
    children: dict[str, list[str]],
    group: str,
) -> list[str]:
    """The ``subgraph ... end`` blocks of ``group``'s child groups, nested."""
    lines = []
    for child in children[group]:
        lines.append(f'subgraph g{list(members).index(child)}["{_m(child)}"]')
        lines += [f"  {ids[n][0]}[{_mermaid_label(ids[n][1])}]" for n in members[child]]
        lines += [f"  {line}" for line in _mermaid_subgraphs(ids, members, children, child)]
        lines.append("end")
    return lines


def to_mermaid(view: GraphView) -> str:
    """The graph as a Mermaid ``flowchart LR`` (GitHub and most wikis draw it)."""
    ids = _node_ids(view)
    lines = []
    if view.title:
        title = json.dumps(_clean(view.title)).replace("%", "\\u0025")
        lines += ["---", f"title: {title}", "---"]
    lines.append("flowchart LR")
    members, children = group_tree(view)
    body = [f"{ids[name][0]}[{_mermaid_label(ids[name][1])}]" for name in members[""]]
    body += _mermaid_subgraphs(ids, members, children, "")
    deps = list(dict.fromkeys(view.edges))
    body += [f"{ids[up][0]} --> {ids[down][0]}" for up, down in deps]
    body += [f'{ids[x.producer][0]} -.->|"{_m(x.text)}"| {ids[x.consumer][0]}' for x in view.xcom]
    body += _mermaid_styles(ids, len(deps), view)
    lines += [f"    {line}" for line in body]
    return "\n".join(lines) + "\n"


# --- files ---------------------------------------------------------------------------

_TEXT_WRITERS: dict[str, Callable[[GraphView], str]] = {".dot": to_dot, ".mmd": to_mermaid}


def render(view: GraphView, path: Path) -> Path:
    """Write the graph to ``path``, in the format its suffix names; return the path.

    ``.dot`` and ``.mmd`` always work; ``.svg`` and ``.png`` need Graphviz ``dot``
    (:class:`GraphvizMissingError` otherwise). Other suffixes raise
    :class:`UnsupportedFormatError`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _TEXT_WRITERS:
        path.write_text(_TEXT_WRITERS[suffix](view), encoding="utf-8")
    elif suffix in (".svg", ".png"):
        path.write_bytes(to_image(view, suffix[1:]))
    else:
        raise UnsupportedFormatError(path.suffix)
    return path
