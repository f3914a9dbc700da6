"""Graph rendering: DOT and Mermaid text, escaping of hostile names, files by suffix.

The DOT output is checked by parsing it with the small DOT lexer and parser below (no
new dependency), and, when Graphviz ``dot`` is installed, by rendering a real SVG.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fairque.core.errors import FairQueueError
from fairque.core.models import TaskState
from fairque.dag.render import (
    PLANNED,
    STATE_COLORS,
    GraphView,
    GraphvizMissingError,
    NodeView,
    UnsupportedFormatError,
    XComEdge,
    format_bytes,
    format_duration,
    render,
    to_dot,
    to_mermaid,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")

HOSTILE = [
    'a"];evil[label="x',
    "<b>bold</b>",
    "line1\nline2",
    "back\\slash\\",
    "{x|y} ]; n0 -> n1 // c",
    '&amp; #quot; %%{init: {"theme": "dark"}}%%',
    "tab\there\x00nul it's",
    "é 中 `tick`",
]


def cleaned(text: str) -> str:
    """What a label shows for ``text``: control characters become one space."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", text)


# --- a minimal DOT lexer and parser ---------------------------------------------------

_ID = re.compile(r"[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*|-?(?:\.\d+|\d+(?:\.\d*)?)")


def dot_tokens(src: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: id, qstring (lexer-unescaped), html, edgeop or punctuation."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(src):
        c = src[i]
        if c.isspace():
            i += 1
        elif src.startswith(("->", "--"), i):
            out.append(("edgeop", src[i : i + 2]))
            i += 2
        elif c in "{}[];=,":
            out.append((c, c))
            i += 1
        elif c == '"':
            i = _qstring(src, i + 1, out)
        elif c == "<":
            i = _html_string(src, i, out)
        elif m := _ID.match(src, i):
            out.append(("id", m.group()))
            i = m.end()
        else:
            raise AssertionError(f"unexpected {c!r} at {i}: {src[i : i + 40]!r}")
    return out


def _qstring(src: str, i: int, out: list[tuple[str, str]]) -> int:
    buf: list[str] = []
    while True:
        assert i < len(src), "unterminated quoted string"
        if src.startswith('\\"', i):
            buf.append('"')
            i += 2
        elif src.startswith("\\\\", i):
            buf.append("\\\\")
            i += 2
        elif src[i] == '"':
            out.append(("qstring", "".join(buf)))
            return i + 1
        else:
            buf.append(src[i])
            i += 1


def _html_string(src: str, i: int, out: list[tuple[str, str]]) -> int:
    depth, start = 0, i
    while True:
        assert i < len(src), "unterminated HTML string"
        depth += {"<": 1, ">": -1}.get(src[i], 0)
        i += 1
        if depth == 0:
            out.append(("html", src[start + 1 : i - 1]))
            return i


@dataclass
class Dot:
    """What a DOT digraph declares."""

    defaults: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    nodes: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, tuple[str, str]]]] = field(default_factory=list)


def parse_dot(src: str) -> Dot:
    """Parse the DOT subset graphviz.Digraph writes; fail on anything else."""
    toks = dot_tokens(src)
    assert toks[0] == ("id", "digraph") and toks[2] == ("{", "{") and toks[-1] == ("}", "}")
    dot, pos = Dot(), 3
    while pos < len(toks) - 1:
        kind, text = toks[pos]
        assert kind == "id", f"statement starts with {toks[pos]}"
        if text in ("graph", "node", "edge"):
            attrs, pos = _attrs(toks, pos + 1)
            dot.defaults.setdefault(text, {}).update(attrs)
        elif toks[pos + 1][0] == "edgeop":
            assert toks[pos + 1][1] == "->" and toks[pos + 2][0] == "id"
            head = toks[pos + 2][1]
            attrs, pos = _attrs(toks, pos + 3)
            dot.edges.append((text, head, attrs))
        else:
            assert text not in dot.nodes, f"node {text} declared twice"
            dot.nodes[text], pos = _attrs(toks, pos + 1)
        if toks[pos][0] == ";":
            pos += 1
    for up, down, _ in dot.edges:
        assert up in dot.nodes and down in dot.nodes
    return dot


def _attrs(toks: list[tuple[str, str]], pos: int) -> tuple[dict[str, tuple[str, str]], int]:
    attrs: dict[str, tuple[str, str]] = {}
    if toks[pos][0] != "[":
        return attrs, pos
    pos += 1
    while toks[pos][0] != "]":
        key, eq, value = toks[pos : pos + 3]
        assert key[0] == "id" and eq[0] == "=" and value[0] in ("id", "qstring", "html")
        attrs[key[1]] = value
        pos += 3
        if toks[pos][0] in ",;":
            pos += 1
    return attrs, pos + 1


def edge_targets(src: str) -> list[tuple[str, str]]:
    """(tail, head) of each edge statement, read directly from the tokens."""
    toks = dot_tokens(src)
    return [
        (toks[i - 1][1], toks[i + 1][1]) for i, (kind, _) in enumerate(toks) if kind == "edgeop"
    ]


def html_text(value: tuple[str, str]) -> ET.Element:
    """An HTML-like label as an XML element; fails if the label is not well formed."""
    kind, text = value
    assert kind == "html"
    return ET.fromstring(f"<label>{text}</label>")


# --- views -----------------------------------------------------------------------------


def etl_run() -> GraphView:
    return GraphView(
        title="orders_etl — run run_1a2b (failed)",
        nodes=[
            NodeView("extract", "examples.etl:extract_data", TaskState.FINISHED, 1, 1.2),
            NodeView("transform", "examples.etl:transform_data", TaskState.STARTED, 2, 0.5),
            NodeView("validate", "examples.etl:validate_data", TaskState.FAILED, 3, 2.0, "boom"),
            NodeView("load", "examples.etl:load_data", TaskState.CANCELED),
            NodeView("q", state=TaskState.QUEUED),
            NodeView("d", state=TaskState.DEFERRED),
            NodeView("s", state=TaskState.SCHEDULED),
            NodeView("p"),
            NodeView("sk", state=TaskState.CANCELED, outcome="skipped"),
            NodeView("uf", state=TaskState.CANCELED, outcome="upstream_failed"),
        ],
        edges=[
            ("extract", "transform"),
            ("extract", "validate"),
            ("transform", "load"),
            ("validate", "load"),
        ],
        xcom=[XComEdge("extract", "transform", "extracted", 36), XComEdge("extract", "load", "k")],
    )


def ids_by_name(dot: Dot) -> dict[str, str]:
    return {html_text(attrs["label"]).findtext("B") or "": nid for nid, attrs in dot.nodes.items()}


# --- DOT -------------------------------------------------------------------------------


def test_dot_nodes_colours_and_labels() -> None:
    view = etl_run()
    dot = parse_dot(to_dot(view))
    assert dot.defaults["graph"]["rankdir"] == ("id", "LR")
    assert list(dot.nodes) == [f"n{i}" for i in range(len(view.nodes))]
    ids = ids_by_name(dot)
    for node in view.nodes:
        attrs = dot.nodes[ids[node.name]]
        style = PLANNED if node.state is None else node.outcome or node.state.value
        fill, border = STATE_COLORS[style]
        assert attrs["fillcolor"][1] == fill and attrs["color"][1] == border
        text = " ".join(html_text(attrs["label"]).itertext())
        assert text.startswith(node.name)
        if node.state is not None:
            assert style in text
        assert node.label in text
    extract = " ".join(html_text(dot.nodes[ids["extract"]]["label"]).itertext())
    assert "finished · attempt 1 · 1.20 s" in extract
    validate = " ".join(html_text(dot.nodes[ids["validate"]]["label"]).itertext())
    assert "attempt 3" in validate and "boom" in validate
    assert dot.nodes[ids["validate"]]["tooltip"][1] == "boom"
    assert "dashed" in dot.nodes[ids["load"]]["style"][1]
    assert "dashed" in dot.nodes[ids["p"]]["style"][1]
    assert "attempt" not in " ".join(html_text(dot.nodes[ids["p"]]["label"]).itertext())
    assert len(set(STATE_COLORS.values())) == len(STATE_COLORS) == 10
    assert "dashed" in dot.nodes[ids["sk"]]["style"][1]


def test_dot_dependency_and_xcom_edges() -> None:
    view = etl_run()
    dot = parse_dot(to_dot(view))
    ids = ids_by_name(dot)
    deps = [(u, d) for u, d, attrs in dot.edges if "style" not in attrs]
    assert deps == [(ids[u], ids[d]) for u, d in view.edges]
    xcom = [(u, d, attrs) for u, d, attrs in dot.edges if "style" in attrs]
    extract = ids["extract"]
    assert [(u, d) for u, d, _ in xcom] == [(extract, ids["transform"]), (extract, ids["load"])]
    measured, planned = xcom[0][2], xcom[1][2]
    for attrs in (measured, planned):
        assert attrs["style"][1] == "dashed" and attrs["constraint"][1] == "false"
    assert html_text(measured["label"]).text == "extracted · 36 B"
    assert html_text(planned["label"]).text == "k"
    assert measured["color"] != planned["color"]


def test_dot_dedupes_edges_and_adds_nodes_named_only_by_edges() -> None:
    view = GraphView("t", [NodeView("a")], [("a", "b"), ("a", "b")], [XComEdge("b", "c", "x")])
    dot = parse_dot(to_dot(view))
    assert len(dot.nodes) == 3
    assert len(dot.edges) == 2


@pytest.mark.parametrize("name", HOSTILE)
def test_dot_escapes_hostile_text(name: str) -> None:
    view = GraphView(
        title=name,
        nodes=[NodeView(name, name, TaskState.FAILED, 1, 1.0, name), NodeView("other")],
        edges=[(name, "other")],
        xcom=[XComEdge(name, "other", name, 5)],
    )
    src = to_dot(view)
    dot = parse_dot(src)
    assert list(dot.nodes) == ["n0", "n1"]
    assert edge_targets(src) == [("n0", "n1"), ("n0", "n1")]
    label = html_text(dot.nodes["n0"]["label"])
    assert label.findtext("B") == cleaned(name)
    assert next(f.text for f in label.iter("FONT")) == cleaned(name)
    assert html_text(dot.defaults["graph"]["label"]).findtext("B") == cleaned(name)
    assert html_text(dot.edges[1][2]["label"]).text == f"{cleaned(name)} · 5 B"
    tooltip = dot.nodes["n0"]["tooltip"][1]
    assert tooltip.replace("\\\\", "\\") == cleaned(name)
    assert "evil" not in dot.nodes


@needs_dot
def test_real_dot_accepts_hostile_names(tmp_path: Path) -> None:
    nodes = [NodeView(h, h, TaskState.FAILED, 2, 1.5, h) for h in HOSTILE]
    edges = [(HOSTILE[i], HOSTILE[i + 1]) for i in range(len(HOSTILE) - 1)]
    xcom = [XComEdge(HOSTILE[0], h, h, 10) for h in HOSTILE[1:]]
    out = render(GraphView("; ".join(HOSTILE), nodes, edges, xcom), tmp_path / "g.svg")
    svg = ET.fromstring(out.read_bytes())
    groups = [g.get("class") for g in svg.iter("{http://www.w3.org/2000/svg}g")]
    assert groups.count("node") == len(HOSTILE)
    assert groups.count("edge") == len(edges) + len(xcom)
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    for h in HOSTILE:
        assert cleaned(h) in texts


# --- Mermaid ---------------------------------------------------------------------------

_NODE_LINE = re.compile(r'    (n\d+)\["([^"]*)"\]')
_ALLOWED_TAGS = re.compile(r"</?b>|<br/>|</?small>")


def mermaid_unescape(text: str) -> str:
    named = {"quot": '"', "amp": "&", "lt": "<", "gt": ">"}
    return re.sub(
        r"#(\w+);", lambda m: named.get(m[1]) or chr(int(m[1])), _ALLOWED_TAGS.sub("\n", text)
    )


def test_mermaid_structure() -> None:
    view = etl_run()
    lines = to_mermaid(view).splitlines()
    assert lines[:4] == [
        "---",
        'title: "orders_etl \\u2014 run run_1a2b (failed)"',
        "---",
        "flowchart LR",
    ]
    node_lines = [m for line in lines if (m := _NODE_LINE.fullmatch(line))]
    assert [m[1] for m in node_lines] == [f"n{i}" for i in range(len(view.nodes))]
    assert node_lines[0][2] == (
        "<b>extract</b><br/>finished · attempt 1 · 1.20 s<br/>"
        "<small>examples.etl:extract_data</small>"
    )
    deps = [line for line in lines if " --> " in line]
    assert deps == ["    n0 --> n1", "    n0 --> n2", "    n1 --> n3", "    n2 --> n3"]
    assert '    n0 -.->|"extracted · 36 B"| n1' in lines
    assert '    n0 -.->|"k"| n3' in lines
    assert "    linkStyle 4 stroke:#7c3aed,color:#7c3aed" in lines
    assert "    linkStyle 5 stroke:#c4b5fd,color:#c4b5fd" in lines
    for style, (fill, border) in STATE_COLORS.items():
        assert any(
            line.startswith(f"    classDef {style} fill:{fill},stroke:{border}") for line in lines
        )
    assert "    class n0 finished" in lines and "    class n7 planned" in lines


@pytest.mark.parametrize("name", HOSTILE)
def test_mermaid_escapes_hostile_text(name: str) -> None:
    view = GraphView(name, [NodeView(name, name, error=name)], [], [XComEdge(name, name, name)])
    text = to_mermaid(view)
    assert "%%" not in text
    lines = text.splitlines()
    assert lines[3] == "flowchart LR" and len(lines) == 9
    node = _NODE_LINE.fullmatch(lines[4])
    assert node is not None
    body = node[2]
    assert not re.search(r'["\[\]{}|`%<>]', _ALLOWED_TAGS.sub("", body))
    assert mermaid_unescape(body).split("\n")[1] == cleaned(name)
    edge = re.fullmatch(r'    n0 -\.->\|"([^"]*)"\| n0', lines[5])
    assert edge is not None and mermaid_unescape(edge[1]) == cleaned(name)


# --- files -----------------------------------------------------------------------------


def test_render_text_formats(tmp_path: Path) -> None:
    view = etl_run()
    assert render(view, tmp_path / "g.dot").read_text(encoding="utf-8") == to_dot(view)
    assert render(view, tmp_path / "g.MMD").read_text(encoding="utf-8") == to_mermaid(view)


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_render_image_without_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    target = tmp_path / f"g{suffix}"
    with pytest.raises(GraphvizMissingError) as info:
        render(etl_run(), target)
    message = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in message
    assert ".dot" in message and ".mmd" in message
    assert isinstance(info.value, FairQueueError)
    assert not target.exists()


@needs_dot
def test_render_svg_and_png(tmp_path: Path) -> None:
    svg = render(etl_run(), tmp_path / "g.svg").read_bytes()
    assert svg.lstrip().startswith((b"<?xml", b"<svg"))
    assert b"extracted \xc2\xb7 36 B" in svg
    assert render(etl_run(), tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["g.pdf", "g", "g.dot.txt"])
def test_render_unknown_suffix(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsupportedFormatError) as info:
        render(etl_run(), tmp_path / name)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FairQueueError)
    for suffix in (".dot", ".mmd", ".svg", ".png"):
        assert suffix in str(info.value)
    assert not (tmp_path / name).exists()


def test_formatting_helpers() -> None:
    sizes = (0, 36, 1536, 3 * 1024**2)
    assert [format_bytes(n) for n in sizes] == ["0 B", "36 B", "1.5 KiB", "3.0 MiB"]
    assert format_duration(1.2) == "1.20 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
    assert format_duration(-1) == "0.00 s" and format_duration(float("nan")) == "?"
