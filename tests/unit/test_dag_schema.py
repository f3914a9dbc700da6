"""schemas/dag.schema.json: a valid 2020-12 schema, documented, accepting every example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fairque.core.models import TRIGGER_RULES, Priority
from fairque.core.schemas import load_schema, parse_yaml, schema_problems
from fairque.dag.model import DEFAULT_ARG_KEYS, PARAM_TYPES

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "schemas" / "dag.schema.json"
EXAMPLES = sorted((REPO / "dags").glob("*.yaml")) + sorted(
    (Path(__file__).parent / "dag_files" / "valid").glob("*.yaml")
)


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "urn:fairque:schema:dag"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert load_schema("dag.schema.json") == schema


def _properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{where}/{name}", sub))
        for key, sub in node.items():
            found.extend(_properties(sub, f"{where}/{key}"))
    return found


def test_every_property_has_a_title_and_a_description() -> None:
    schema = load_schema("dag.schema.json")
    for where, sub in _properties(schema):
        target = sub
        if "$ref" in sub and "description" not in sub:
            target = schema["$defs"][sub["$ref"].rsplit("/", 1)[-1]]
        assert target.get("title"), where
        assert target.get("description"), where


def test_every_object_refuses_unknown_keys() -> None:
    schema = load_schema("dag.schema.json")
    for name in ("task", "param"):
        assert schema["$defs"][name]["additionalProperties"] is False
    assert schema["properties"]["default_args"]["additionalProperties"] is False


def test_the_schema_follows_the_code() -> None:
    schema = load_schema("dag.schema.json")
    assert schema["$defs"]["triggerRule"]["enum"] == list(TRIGGER_RULES)
    assert schema["$defs"]["param"]["properties"]["type"]["enum"] == list(PARAM_TYPES)
    assert sorted(schema["properties"]["default_args"]["properties"]) == sorted(DEFAULT_ARG_KEYS)
    priorities = schema["$defs"]["priority"]["enum"]
    assert all(p.name in priorities and p.value in priorities for p in Priority)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_schema_accepts_every_example(path: Path) -> None:
    text = path.read_text()
    if path.parent.name == "dags":
        assert text.startswith("# yaml-language-server: $schema=../schemas/dag.schema.json\n")
    data, _ = parse_yaml(text)
    assert schema_problems(data, "dag.schema.json") == []


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"tasks": {"a": {"callable": "m:f"}}}, (), "'dag_id' is a required property"),
        ({"dag_id": "x"}, (), "'tasks' is a required property"),
        ({"dag_id": "x", "tasks": {}}, ("tasks",), "should be non-empty"),
        ({"dag_id": "x y", "tasks": {"a": {"callable": "m:f"}}}, ("dag_id",), "does not match"),
        ({"dag_id": "x", "tasks": {"a": {"callable": "no colon"}}}, ("tasks", "a", "callable"), ""),
        ({"dag_id": "x", "tasks": {"a": {}}}, ("tasks", "a"), "'callable' is a required"),
        (
            {"dag_id": "x", "tasks": {"a": {"callable": "m:f", "trigger_rule": "sometimes"}}},
            ("tasks", "a", "trigger_rule"),
            "is not one of",
        ),
        (
            {"dag_id": "x", "tasks": {"a": {"callable": "m:f", "priority": 7}}},
            ("tasks", "a", "priority"),
            "is not one of",
        ),
        (
            {"dag_id": "x", "tasks": {"a b": {"callable": "m:f"}}},
            ("tasks",),
            "does not match",
        ),
        (
            {"dag_id": "x", "tenant": "*", "tasks": {"a": {"callable": "m:f"}}},
            ("tenant",),
            "",
        ),
        (
            {"dag_id": "x", "flow": 3, "tasks": {"a": {"callable": "m:f"}}},
            ("flow",),
            "",
        ),
        (
            {"dag_id": "x", "default_args": {"retries": 1}, "tasks": {"a": {"callable": "m:f"}}},
            ("default_args", "retries"),
            "did you mean 'max_retries'?",
        ),
    ],
)
def test_the_schema_rejects(document: dict[str, Any], path: tuple[str, ...], words: str) -> None:
    problems = schema_problems(document, "dag.schema.json")
    assert problems, document
    assert any(p == path and words in m for p, m in problems), problems
