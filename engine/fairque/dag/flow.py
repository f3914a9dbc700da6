"""The ``flow`` expressions of YAML DAG files: ``extract >> (transform | validate) >> load``.

A tiny grammar of our own, parsed by hand and never evaluated as Python::

    flow   := chain ('|' chain)*
    chain  := atom (('>>' | '<<') atom)*      # left-associative
    atom   := NAME | '(' flow ')'
    NAME   := [A-Za-z0-9_.-]+

Precedence is Python's, so a flow means exactly what the same text means between
Tasks in a Python DAG file: ``>>`` and ``<<`` bind tighter than ``|``, and
``a >> b | c`` is ``(a >> b) | c``. Write ``a >> (b | c)`` to fan out.
Semantics are the Pipeline operators': ``x >> y`` links every tail of ``x`` to every
head of ``y``; ``x << y`` is ``y >> x``; ``x | y`` puts both side by side.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container
from dataclasses import dataclass

from fairque.core.errors import FlowSyntaxError

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_EXPECT_ATOM = "a task name or '('"
_EXPECT_OPERATOR = "'>>', '<<', '|' or the end"


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``name``, ``>>``, ``<<``, ``|``, ``(``, ``)`` or ``end``."""

    kind: str
    text: str
    column: int  # 1-based


@dataclass(frozen=True)
class Flow:
    """A parsed flow: its task names (in order of appearance), edges, heads and tails."""

    names: tuple[str, ...]
    edges: frozenset[tuple[str, str]]
    heads: tuple[str, ...]
    tails: tuple[str, ...]

    def then(self, other: Flow) -> Flow:
        """``self >> other``."""
        links = {(tail, head) for tail in self.tails for head in other.heads}
        return Flow(
            _unique(self.names + other.names),
            self.edges | other.edges | links,
            self.heads,
            other.tails,
        )

    def beside(self, other: Flow) -> Flow:
        """``self | other``."""
        return Flow(
            _unique(self.names + other.names),
            self.edges | other.edges,
            _unique(self.heads + other.heads),
            _unique(self.tails + other.tails),
        )


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``, ending with an ``end`` token; FlowSyntaxError for a
    character that belongs to no token."""
    tokens: list[Token] = []
    i = 0
    while i < len(expression):
        char = expression[i]
        if char.isspace():
            i += 1
            continue
        two = expression[i : i + 2]
        if two in (">>", "<<"):
            tokens.append(Token(two, two, i + 1))
            i += 2
        elif char in "|()":
            tokens.append(Token(char, char, i + 1))
            i += 1
        elif match := _NAME.match(expression, i):
            tokens.append(Token("name", match.group(), i + 1))
            i = match.end()
        else:
            expected = "'>>' or '<<'" if char in "<>" else "a task name, '>>', '<<', '|' or '('"
            raise FlowSyntaxError(expression, i + 1, repr(char), expected)
    tokens.append(Token("end", "", len(expression) + 1))
    return tokens


class _Parser:
    """Recursive descent over the tokens; one method per grammar rule."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokenize(expression)
        self.position = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def fail(self, expected: str) -> FlowSyntaxError:
        token = self.current
        found = "end of the expression" if token.kind == "end" else repr(token.text)
        return FlowSyntaxError(self.expression, token.column, found, expected)

    def parse(self) -> Flow:
        flow = self.flow()
        if self.current.kind != "end":
            raise self.fail(_EXPECT_OPERATOR)
        return flow

    def flow(self) -> Flow:
        result = self.chain()
        while self.current.kind == "|":
            self.position += 1
            result = result.beside(self.chain())
        return result

    def chain(self) -> Flow:
        result = self.atom()
        while self.current.kind in (">>", "<<"):
            operator = self.current.kind
            self.position += 1
            right = self.atom()
            result = result.then(right) if operator == ">>" else right.then(result)
        return result

    def atom(self) -> Flow:
        token = self.current
        if token.kind == "name":
            self.position += 1
            return Flow((token.text,), frozenset(), (token.text,), (token.text,))
        if token.kind == "(":
            self.position += 1
            inner = self.flow()
            if self.current.kind != ")":
                raise self.fail("')' or an operator")
            self.position += 1
            return inner
        raise self.fail(_EXPECT_ATOM)


@functools.lru_cache(maxsize=1024)
def parse_flow(expression: str) -> Flow:
    """Parse one flow expression; FlowSyntaxError names the column and what was expected.

    Task names are not checked here (see :func:`unknown_names`). A Flow is immutable:
    an expression met again (checked, then built; many DAG files alike) is parsed once.
    """
    return _Parser(expression).parse()


def unknown_names(flow: Flow, tasks: Container[str]) -> list[str]:
    """The names used in ``flow`` that are not in ``tasks``, in order of appearance."""
    return [name for name in flow.names if name not in tasks]


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


__all__ = ["Flow", "FlowSyntaxError", "Token", "parse_flow", "tokenize", "unknown_names"]
