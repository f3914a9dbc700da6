"""One rule, one place: a DAG built in Python, a DAG file checked by ``dag validate``
and the scheduler refuse the same things with the same words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fairque.core.errors import CronError, DagError, UnknownDependencyError
from fairque.dag import DAG, validate_dag_file
from fairque.scheduler.cron import check_cron, check_timezone
from tests.unit import sample_tasks as st

# (DAG keyword arguments, the same in a YAML document)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "out-of-range cron": ({"schedule": "61 * * * *"}, {"schedule": "61 * * * *"}),
    "never-firing cron": ({"schedule": "0 0 30 2 *"}, {"schedule": "0 0 30 2 *"}),
    "cron fields": ({"schedule": "* * *"}, {"schedule": "* * *"}),
    "timezone": ({"timezone": "Mars/Base"}, {"timezone": "Mars/Base"}),
    "param default": (
        {"params": {"n": {"type": "integer", "default": "x"}}},
        {"params": {"n": {"type": "integer", "default": "x"}}},
    ),
    "param enum": (
        {"params": {"n": {"type": "integer", "enum": [1, "two"]}}},
        {"params": {"n": {"type": "integer", "enum": [1, "two"]}}},
    ),
    "placeholder": (
        {"params": {"source": {"default": "db"}}, "kwargs": {"y": "{{ params.sorce }}"}},
        {"params": {"source": {"default": "db"}}, "kwargs": {"y": "{{ params.sorce }}"}},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dag_and_dag_validate_give_the_same_message(case: str, tmp_path: Path) -> None:
    python, document = CASES[case]
    kwargs = python.pop("kwargs", None)
    task = st.add(1, 2) if kwargs is None else st.add(1, **kwargs)
    with pytest.raises(DagError) as raised:
        DAG(dag_id="shared", pipeline=task.with_options(task_id="t"), **python)
    yaml_task: dict[str, Any] = {"callable": "tests.unit.sample_tasks:add", "args": [1]}
    if "kwargs" in document:
        yaml_task["kwargs"] = document.pop("kwargs")
    file = tmp_path / "shared.yaml"
    file.write_text(yaml.safe_dump({"dag_id": "shared", **document, "tasks": {"t": yaml_task}}))
    (problem,) = validate_dag_file(file, ["tests"])
    assert problem.message in str(raised.value)


@pytest.mark.parametrize("expression", ["61 * * * *", "0 0 30 2 *", "* * *", "@daily"])
def test_the_scheduler_refuses_what_a_dag_refuses_in_the_same_words(expression: str) -> None:
    with pytest.raises(CronError) as scheduler:
        check_cron(expression)
    with pytest.raises(DagError) as dag:
        DAG(dag_id="d", pipeline=st.add(1, 2), schedule=expression)
    assert str(scheduler.value) in str(dag.value)
    with pytest.raises(CronError) as zone:
        check_timezone("Mars/Base")
    with pytest.raises(DagError) as dag_zone:
        DAG(dag_id="d", pipeline=st.add(1, 2), timezone="Mars/Base")
    assert str(zone.value) in str(dag_zone.value)


def test_dependencies_follow_one_rule(tmp_path: Path) -> None:
    file = tmp_path / "deps.yaml"
    file.write_text(
        "dag_id: deps\ntasks:\n"
        "  t: {callable: 'tests.unit.sample_tasks:add', args: [1], depends_on: [t]}\n"
    )
    (problem,) = validate_dag_file(file, ["tests"])
    with pytest.raises(DagError) as raised:
        DAG(dag_id="deps", pipeline=st.add(1).with_options(task_id="t", depends_on=["t"]))
    assert problem.message in str(raised.value)
    file.write_text(
        "dag_id: deps\ntasks:\n"
        "  t: {callable: 'tests.unit.sample_tasks:add', args: [1], depends_on: [ghost]}\n"
    )
    (problem,) = validate_dag_file(file, ["tests"])
    assert "depends on 'ghost', which is not a task of this DAG" in problem.message
    with pytest.raises(UnknownDependencyError) as unknown:
        DAG(dag_id="deps", pipeline=st.add(1).with_options(task_id="t", depends_on=["ghost"]))
    assert unknown.value.missing == ["ghost"]
