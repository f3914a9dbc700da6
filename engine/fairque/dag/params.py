"""A DAG's typed params: :class:`ParamSpec` (the YAML ``params:`` entries, or built in
Python), checked when a DAG is made and against every run's conf."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fairque.core.errors import DagError, shorten
from fairque.core.schemas import did_you_mean

PARAM_TYPES = ("string", "integer", "number", "boolean", "object", "array")


class _NoDefault:
    """The ``default`` of a ParamSpec that has none (the param is required)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class ParamSpec:
    """One typed DAG param. Without a ``default`` it is required in every run's conf.

    A default of ``None`` makes the param optional and lets a conf set it to null.
    """

    type: str = "string"
    default: Any = NO_DEFAULT
    description: str = ""
    enum: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, value: ParamSpec | Mapping[str, Any]) -> ParamSpec:
        """A ParamSpec from itself or from a mapping with the YAML keys."""
        if isinstance(value, ParamSpec):
            return value
        if not isinstance(value, Mapping):
            raise DagError(f"a param is a mapping such as {{type: string}}, not {shorten(value)}")
        unknown = sorted(set(value) - {"type", "default", "description", "enum"})
        if unknown:
            hint = did_you_mean(unknown[0], ["type", "default", "description", "enum"])
            raise DagError(f"unknown param key(s) {unknown}{hint}")
        enum = value.get("enum")
        return cls(
            type=value.get("type", "string"),
            default=value.get("default", NO_DEFAULT),
            description=value.get("description", ""),
            enum=None if enum is None else tuple(enum),
        )

    @property
    def required(self) -> bool:
        """True when a run's conf must give this param."""
        return self.default is NO_DEFAULT

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this param, or None."""
        if value is None and self.default is None:
            return None
        if not _type_ok(self.type, value):
            return f"must be {TYPE_WORDS.get(self.type, self.type)}, not {short_json(value)}"
        if self.enum is not None and value not in self.enum:
            allowed = ", ".join(short_json(v) for v in self.enum)
            return f"must be one of {allowed}, not {short_json(value)}"
        return None

    def problems(self) -> list[str]:
        """What is wrong with the spec itself (unknown type, default or enum of the wrong type)."""
        if self.type not in PARAM_TYPES:
            return [f"type {self.type!r} is unknown{did_you_mean(self.type, PARAM_TYPES)}"]
        found = [
            f"enum value {short_json(v)} must be {TYPE_WORDS[self.type]}"
            for v in self.enum or ()
            if not _type_ok(self.type, v)
        ]
        if not self.required and self.default is not None:
            problem = self.check(self.default)
            if problem:
                found.append(f"default {problem}")
        return found

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-compatible data (``default`` only when there is one)."""
        data: dict[str, Any] = {"type": self.type, "description": self.description}
        if not self.required:
            data["default"] = self.default
        if self.enum is not None:
            data["enum"] = list(self.enum)
        return data


TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


def _type_ok(kind: str, value: Any) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float)) and math.isfinite(value)
    checks: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "object": Mapping,
        "array": (list, tuple),
    }
    return kind in checks and isinstance(value, checks[kind])


def short_json(value: Any) -> str:
    """``value`` as short JSON text (its repr when it is not JSON), for messages."""
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["NO_DEFAULT", "PARAM_TYPES", "TYPE_WORDS", "ParamSpec", "short_json"]
