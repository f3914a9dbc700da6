"""The flow grammar of YAML DAG files: precedence, associativity, errors (no eval)."""

from __future__ import annotations

import pytest

from fairque import Task
from fairque.core.errors import DagError, FlowSyntaxError
from fairque.dag.flow import parse_flow, tokenize, unknown_names
from fairque.tasks import Pipeline


def node(name: str) -> Pipeline:
    return Pipeline.of(Task(task_id=name, user_id="u"))


a, b, c, d, e = (node(n) for n in "abcde")


def pairs(*text: str) -> frozenset[tuple[str, str]]:
    """``pairs("a>b", "b>c")`` as a set of (upstream, downstream) edges."""
    return frozenset((p.split(">")[0], p.split(">")[1]) for p in text)


@pytest.mark.parametrize(
    ("expression", "python"),
    [
        ("a >> b >> c", a >> b >> c),
        ("a >> (b | c) >> d", a >> (b | c) >> d),
        ("a >> b | c", (a >> b) | c),  # >> binds tighter than |, as in Python
        ("a | b >> c", a | (b >> c)),
        ("a << b << c", a << b << c),  # left-associative: c >> b >> a
        ("a << b >> c", (a << b) >> c),
        ("(a | b) >> (c | d) >> e", (a | b) >> (c | d) >> e),
        ("a >> (b >> c | d) >> e", a >> ((b >> c) | d) >> e),
        ("((a))", a),
    ],
)
def test_flow_means_what_the_python_operators_mean(expression: str, python: Pipeline) -> None:
    flow = parse_flow(expression)
    assert flow.edges == python.edges
    assert set(flow.heads) == set(python.heads)
    assert set(flow.tails) == set(python.tails)


def test_fan_out_and_in() -> None:
    flow = parse_flow("extract >> (transform | validate) >> load")
    assert flow.edges == pairs(
        "extract>transform", "extract>validate", "transform>load", "validate>load"
    )
    assert flow.names == ("extract", "transform", "validate", "load")
    assert (flow.heads, flow.tails) == (("extract",), ("load",))


def test_reverse_chain() -> None:
    assert parse_flow("load << transform << extract").edges == pairs(
        "extract>transform", "transform>load"
    )


def test_names_may_hold_dots_dashes_and_digits_and_whitespace_is_free() -> None:
    flow = parse_flow("  step-1>>step.2\n>>\tstep_3 ")
    assert flow.edges == pairs("step-1>step.2", "step.2>step_3")


def test_tokens_carry_their_column() -> None:
    tokens = tokenize("a >> (b|c)")
    assert [(t.kind, t.column) for t in tokens] == [
        ("name", 1),
        (">>", 3),
        ("(", 6),
        ("name", 7),
        ("|", 8),
        ("name", 9),
        (")", 10),
        ("end", 11),
    ]


@pytest.mark.parametrize(
    ("expression", "column", "found", "expected"),
    [
        ("extract >> )", 12, "')'", "a task name or '('"),
        ("a >> (b | c", 12, "end of the expression", "')' or an operator"),
        ("a >> ", 6, "end of the expression", "a task name or '('"),
        ("", 1, "end of the expression", "a task name or '('"),
        ("a b", 3, "'b'", "'>>', '<<', '|' or the end"),
        ("a > b", 3, "'>'", "'>>' or '<<'"),
        ("a >> b, c", 7, "','", "a task name, '>>', '<<', '|' or '('"),
        ("a || b", 4, "'|'", "a task name or '('"),
        ("a >> ()", 7, "')'", "a task name or '('"),
        ("a) >> b", 2, "')'", "'>>', '<<', '|' or the end"),
    ],
)
def test_syntax_errors_name_the_column_and_what_was_expected(
    expression: str, column: int, found: str, expected: str
) -> None:
    with pytest.raises(FlowSyntaxError) as caught:
        parse_flow(expression)
    error = caught.value
    assert isinstance(error, DagError)
    assert (error.column, error.found, error.expected) == (column, found, expected)
    assert error.expression == expression
    assert str(error) == f"flow: unexpected {found} at column {column} (expected {expected})"


def test_the_example_message() -> None:
    with pytest.raises(FlowSyntaxError, match=r"^flow: unexpected '\)' at column 12 \(expected"):
        parse_flow("extract >> )")


def test_never_evaluates_python() -> None:
    with pytest.raises(FlowSyntaxError):
        parse_flow("__import__('os').system('true')")


def test_unknown_names() -> None:
    flow = parse_flow("a >> (b | x) >> y")
    assert unknown_names(flow, {"a", "b"}) == ["x", "y"]
    assert unknown_names(flow, {"a", "b", "x", "y"}) == []
