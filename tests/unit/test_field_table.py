"""The task field table (the Task field declarations in core/models.py) and the places
that cannot read it, checked against it.

Adding a task option: add its row to the field table (an ``option(...)`` declaration in
the Task class of ``engine/fairque/core/models.py``) and a test. Codecs, defaults,
Task.create's options, ``with_options``, ``default_args`` keys, YAML task keys and
pipeline templates follow by themselves. These tests then name what is left to touch by hand:

- ``@task`` and ``@xcom_task`` keyword parameters (engine/fairque/tasks/decorators.py),
  spelled out for typing, when the row has ``Setter.DECORATOR``;
- ``schemas/dag.schema.json`` (task properties, ``default_args``), when the row has
  ``Setter.YAML`` or ``Setter.DEFAULT_ARGS``;
- ``_full_task()`` in tests/unit/test_models.py, which sets every field (its test says so);
- and, only if the queue must act on the option, the Lua scripts that read the hash.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from fairque.core.fields import JSON, FieldSpec, Setter
from fairque.core.models import RECORD_DEFAULTS, TASK_FIELDS, Priority, Task, task_fields
from fairque.dag.model import DEFAULT_ARG_KEYS
from fairque.tasks.decorators import task, xcom_task

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "dag.schema.json").read_text(encoding="utf-8")
)
TABLE = (
    "the field table (the field declarations of Task and TaskRecord in "
    "engine/fairque/core/models.py)"
)
YAML_ONLY_KEYS = {"xcom_pushes", "description", "partial", "external_dag"}  # not Task fields


def _keywords(function: Any) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _default_agrees(spec: FieldSpec, declared: Any) -> bool:
    """The signature's default means the table's: equal, None for an empty list, or any
    default of a field the table requires (the decorator's own, e.g. user "default")."""
    return spec.required or declared == spec.default or (declared is None and spec.default == [])


def test_task_keywords_are_the_decorator_rows_of_the_table() -> None:
    expected = {spec.key: spec for spec in task_fields(Setter.DECORATOR)}
    params = _keywords(task)
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    assert not missing and not extra, (
        f"@task's keyword parameters (both signatures of task() in "
        f"engine/fairque/tasks/decorators.py) must be the Setter.DECORATOR rows of {TABLE}, "
        f"by key: missing {missing}, extra {extra}"
    )
    for key, param in params.items():
        assert _default_agrees(expected[key], param.default), (
            f"@task's default for {key!r} is {param.default!r}; {TABLE} says "
            f"{expected[key].default!r}"
        )


def test_xcom_task_keywords_are_the_decorator_rows_but_its_own() -> None:
    own = {"enable_xcom", "xcom_push"}  # always on; the positional push_key
    expected = {spec.key for spec in task_fields(Setter.DECORATOR)} - own
    params = set(_keywords(xcom_task))
    assert params == expected, (
        f"xcom_task()'s keyword parameters (engine/fairque/tasks/decorators.py) must be the "
        f"Setter.DECORATOR rows of {TABLE} except {sorted(own)}: missing "
        f"{sorted(expected - params)}, extra {sorted(params - expected)}"
    )


def test_the_schema_task_properties_are_the_yaml_rows_of_the_table() -> None:
    properties = set(SCHEMA["$defs"]["task"]["properties"])
    expected = {spec.key for spec in task_fields(Setter.YAML)} | YAML_ONLY_KEYS
    assert properties == expected, (
        f"schemas/dag.schema.json $defs.task.properties must be the Setter.YAML rows of "
        f"{TABLE} (by key) plus {sorted(YAML_ONLY_KEYS)}: missing "
        f"{sorted(expected - properties)}, extra {sorted(properties - expected)}"
    )
    required = [spec.key for spec in task_fields(Setter.YAML) if spec.name == "func"]
    assert SCHEMA["$defs"]["task"]["required"] == required


def test_the_schema_default_args_are_the_default_args_rows_of_the_table() -> None:
    properties = set(SCHEMA["properties"]["default_args"]["properties"])
    assert properties == set(DEFAULT_ARG_KEYS), (
        f"schemas/dag.schema.json default_args.properties must be the Setter.DEFAULT_ARGS "
        f"rows of {TABLE}"
    )
    assert properties <= set(SCHEMA["$defs"]["task"]["properties"])  # a task may override


def test_every_row_says_who_sets_it_and_queue_rows_are_not_settable() -> None:
    for spec in TASK_FIELDS:
        assert spec.setters, f"{spec.name}: every row of {TABLE} names its setters"
        if spec.setters & Setter.QUEUE:
            assert spec.setters == Setter.QUEUE, f"{spec.name}: QUEUE rows are read-only"
        assert not spec.required or spec.setters & Setter.TASK


def test_with_options_and_yaml_rows_may_also_be_set_on_a_task() -> None:
    user = Setter.OPTIONS | Setter.DECORATOR | Setter.YAML | Setter.DEFAULT_ARGS
    for spec in task_fields(user):
        assert spec.setters & Setter.TASK, f"{spec.name}: settable by a user, so by Task too"


def test_sparse_rows_have_a_default_to_leave_out() -> None:
    for spec in TASK_FIELDS:
        if spec.sparse:
            assert not spec.required and spec.default is not None, spec.name


def test_every_row_round_trips_through_its_codec() -> None:
    samples: dict[str, Any] = {"priority": Priority.HIGH}
    for spec in TASK_FIELDS:
        value = samples.get(spec.name, spec.default)
        if value is None or spec.required or (spec.has_factory and not spec.sparse):
            continue
        text = spec.codec.encode(value)
        assert isinstance(text, str)
        assert spec.codec.decode(text) == value, spec.name
    assert JSON.decode(JSON.encode({"a": [1]})) == {"a": [1]}


def test_create_accepts_exactly_the_task_rows() -> None:
    settable = {spec.name for spec in task_fields(Setter.TASK)}
    made = Task.create("u", task_id="t", xcom_pulls=["k"], execute_after=1.0)
    assert made.xcom_pulls == ["k"]
    assert {"task_id", "user_id", "created_at"} <= settable
    assert not settable & {spec.name for spec in task_fields(Setter.QUEUE)}


def test_the_scripts_read_a_left_out_field_as_the_table_says() -> None:
    """A record leaves out a NORMAL priority and the library's retry defaults; the
    scripts' constants for them (lua/_common.lua) must say the same."""
    common = (Path(__file__).parents[2] / "engine/fairque/lua/_common.lua").read_text("utf-8")
    assert f"local NORMAL = '{int(Priority.NORMAL)}'" in common
    retries, delay = RECORD_DEFAULTS["max_retries"], RECORD_DEFAULTS["retry_delay_seconds"]
    assert f"local MAX_RETRIES, RETRY_DELAY = '{retries}', '{delay}'" in common
    spec = {s.name: s for s in TASK_FIELDS}
    assert spec["priority"].sparse and spec["priority"].default is Priority.NORMAL
