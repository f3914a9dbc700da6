"""Jinja2 templates in a DAG task's ``args`` and ``kwargs``.

Every string holding ``{{``, ``{%`` or ``{#`` is a template, rendered when a run's task
records are compiled (trigger, scheduler, ``dag test``) in a sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`, strict undefined): a template sees
only :data:`TEMPLATE_VARIABLES`, cannot reach attributes starting with ``_`` nor mutate
what it is given, and an unknown name is an error, never an empty string. A string that
is exactly ``{{ params.NAME }}`` keeps that param's value as is (a number stays a number);
every other template renders to a string.
"""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fairque.core.errors import DagError
from fairque.core.schemas import did_you_mean

#: The names a template may use.
TEMPLATE_VARIABLES = (
    "params",
    "conf",
    "ds",
    "ds_nodash",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "run_id",
    "dag_id",
)

_WHOLE_PARAM = re.compile(r"^\{\{\s*params\.([A-Za-z0-9_.-]+)\s*\}\}$")
_MARKERS = ("{{", "{%", "{#")
_MAX_OUTPUT = 1_048_576  # characters one template, or one * or ** in it, may produce

Where = tuple[str | int, ...]


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` bounded so that a template cannot build a
    huge string or number (``{{ 'a' * 10**12 }}``)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > 1000:
                raise SecurityError("exponent too large in a template")
            return operator.pow(left, right)
        if isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple)):
            count = right if isinstance(left, (str, list, tuple)) else left
            size = len(left if isinstance(left, (str, list, tuple)) else right)
            if isinstance(count, int) and count * size > _MAX_OUTPUT:
                raise SecurityError("repetition too large in a template")
        return operator.mul(left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.globals = {"range": _ENV.globals["range"]}  # no lipsum, cycler, joiner, namespace


class _Date(datetime):
    """A UTC datetime that prints as ISO 8601 (``2026-01-02T00:00:00+00:00``)."""

    def __str__(self) -> str:
        return self.isoformat()


def _date(value: datetime) -> _Date:
    utc = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return _Date.fromtimestamp(utc.timestamp(), tz=timezone.utc)


@dataclass(frozen=True)
class TemplateContext:
    """What one run's templates see."""

    dag_id: str
    run_id: str
    params: Mapping[str, Any]
    logical_date: datetime
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    def variables(self) -> dict[str, Any]:
        """The template variables (the data interval defaults to the logical date)."""
        logical = _date(self.logical_date)
        params = copy.deepcopy(dict(self.params))
        return {
            "params": params,
            "conf": params,
            "ds": logical.strftime("%Y-%m-%d"),
            "ds_nodash": logical.strftime("%Y%m%d"),
            "logical_date": logical,
            "data_interval_start": _date(self.data_interval_start or logical),
            "data_interval_end": _date(self.data_interval_end or logical),
            "run_id": self.run_id,
            "dag_id": self.dag_id,
        }


def whole_param(text: str) -> str | None:
    """NAME when ``text`` is exactly ``{{ params.NAME }}`` (rendered to the value as is)."""
    match = _WHOLE_PARAM.match(text)
    return match.group(1) if match else None


def is_template(value: Any) -> bool:
    """True for a string holding Jinja2 syntax."""
    return isinstance(value, str) and any(m in value for m in _MARKERS)


def render(value: Any, context: TemplateContext, task: str = "?", where: Where = ()) -> Any:
    """``value`` (a task's args or kwargs, at any depth) with every template rendered.

    Raises DagError naming the task and where in its values for a template that does not
    parse, uses an unknown name, or tries what the sandbox forbids."""
    variables = context.variables()

    def one(text: str, where: Where) -> Any:
        name = whole_param(text)
        if name is not None and name in variables["params"]:
            return copy.deepcopy(variables["params"][name])
        try:
            rendered = _ENV.from_string(text).render(variables)
        except (TemplateError, SecurityError) as e:  # SecurityError is a TemplateError
            raise DagError(f"task {task!r} {_where(where)}: {_explain(e)}") from e
        if len(rendered) > _MAX_OUTPUT:
            raise DagError(f"task {task!r} {_where(where)}: template output too large")
        return rendered

    return _map(value, one, where)


def problems(value: Any, params: Collection[str]) -> list[tuple[Where, str]]:
    """``(where, message)`` for each template in ``value`` that does not parse, uses a
    name outside :data:`TEMPLATE_VARIABLES` or a ``params.NAME`` naming no param
    (``where``: the path from ``value`` to the string)."""
    found: list[tuple[Where, str]] = []
    for where, text in _templates(value, ()):
        name = whole_param(text)
        if name is not None:  # also a param name Jinja2 would not parse (``a-b``)
            if name not in params:
                found.append((where, _no_param("params", name, params)))
            continue
        try:
            tree = _ENV.parse(text)
        except TemplateSyntaxError as e:
            found.append((where, f"template syntax error: {_explain(e)}"))
            continue
        for name in sorted(meta.find_undeclared_variables(tree)):
            if name not in TEMPLATE_VARIABLES and name not in _ENV.globals:
                found.append((where, f"unknown template variable {name!r}{_known()}"))
        for node in tree.find_all(nodes.Getattr):
            target = node.node
            if (
                isinstance(target, nodes.Name)
                and target.name in ("params", "conf")
                and node.attr not in params
            ):
                found.append((where, _no_param(target.name, node.attr, params)))
    return found


def _no_param(variable: str, name: str, params: Collection[str]) -> str:
    return f"{{{{ {variable}.{name} }}}} names no param {name!r}{did_you_mean(name, params)}"


def _known() -> str:
    return f"; known: {', '.join(TEMPLATE_VARIABLES)}"


def _explain(error: Exception) -> str:
    lineno = getattr(error, "lineno", None)
    at = f" (line {lineno} of the template)" if lineno else ""
    if isinstance(error, SecurityError):
        return f"refused by the template sandbox: {error}{at}"
    return f"{type(error).__name__}: {error}{at}"


def _where(where: Where) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where).lstrip(".")


def _templates(value: Any, where: Where) -> Iterator[tuple[Where, str]]:
    if is_template(value):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _templates(item, (*where, str(key)))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _templates(item, (*where, i))


def _map(value: Any, one: Callable[[str, Where], Any], where: Where) -> Any:
    if is_template(value):
        return one(value, where)
    if isinstance(value, Mapping):
        return {k: _map(v, one, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map(v, one, (*where, i)) for i, v in enumerate(value)]
    return value
