"""dag validate and DAG() on branch tasks (and the sensor option's bad values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairque import Task
from fairque.core.errors import DagError, TaskError
from fairque.dag import DAG, validate_dag_file
from fairque.dag.branching import literal_targets
from fairque.tasks import sensor
from tests.unit import branch_tasks as bt
from tests.unit import sample_tasks as st

BRANCH_DAG = """\
dag_id: br
flow: "pick >> (a | b)"
tasks:
  pick:
    callable: tests.unit.branch_tasks:{function}
    branch: {flag}
  a: {{callable: tests.unit.sample_tasks:add, args: [1]}}
  b: {{callable: tests.unit.sample_tasks:add, args: [2]}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "dag.yaml"
    file.write_text(text)
    return file


def test_literal_targets_are_read_from_the_source() -> None:
    assert literal_targets(bt.picks_a_or_ghost) == ["a", "ghost"]
    assert literal_targets(bt.picks_computed) == []
    assert literal_targets(bt.route) == ["a", "b"]
    assert literal_targets(len) == []


def test_validate_reports_a_literal_target_that_is_not_downstream(tmp_path: Path) -> None:
    file = _write(tmp_path, BRANCH_DAG.format(function="picks_a_or_ghost", flag="true"))
    (problem,) = validate_dag_file(file, ["tests"])
    assert (problem.line, problem.column, problem.pointer) == (6, 5, "/tasks/pick/branch")
    assert "returns 'ghost', which is not one of its direct downstream tasks (a, b)" in (
        problem.message
    )


def test_validate_accepts_computed_and_good_targets(tmp_path: Path) -> None:
    file = _write(tmp_path, BRANCH_DAG.format(function="picks_computed", flag="true"))
    assert validate_dag_file(file, ["tests"]) == []
    file = _write(tmp_path, BRANCH_DAG.format(function="picks_a_or_ghost", flag="false"))
    assert validate_dag_file(file, ["tests"]) == []  # not a branch: nothing to check


def test_validate_reports_a_branch_without_downstream_and_a_bad_flag(tmp_path: Path) -> None:
    lonely = (
        "dag_id: br\ntasks:\n  pick: {callable: 'tests.unit.branch_tasks:route', branch: true}\n"
    )
    (problem,) = validate_dag_file(_write(tmp_path, lonely), ["tests"])
    assert "branch task 'pick' has no downstream tasks to choose from" in problem.message
    (problem,) = validate_dag_file(
        _write(tmp_path, BRANCH_DAG.format(function="route", flag='"yes"')), ["tests"]
    )
    assert problem.pointer == "/tasks/pick/branch" and "true or false" in problem.message


def test_a_python_dag_refuses_the_same_branch() -> None:
    with pytest.raises(DagError, match="returns 'b', which is not one of its direct"):
        DAG(dag_id="br", pipeline=bt.route() >> st.add(1).with_options(task_id="a"))
    ok = DAG(
        dag_id="br",
        pipeline=bt.route()
        >> (st.add(1).with_options(task_id="a") | st.add(2).with_options(task_id="b")),
    )
    assert ok.pipeline.nodes["route"].branch is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poke_interval_seconds": 0}, "poke_interval_seconds must be a positive number"),
        ({"timeout_seconds": -1}, "timeout_seconds must be a positive number"),
        ({"timeout_seconds": "1h"}, "timeout_seconds must be a positive number"),
        ({"soft_fail": "no"}, "soft_fail must be true or false"),
    ],
)
def test_bad_sensor_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        sensor(**options)  # type: ignore[arg-type]
    with pytest.raises(TaskError, match=message):
        Task.create("u", sensor=options)
    with pytest.raises(TaskError, match=r"unknown sensor key\(s\) \['interval'\]"):
        Task.create("u", sensor={"interval": 5})
    with pytest.raises(TaskError, match="sensor must be a mapping"):
        Task.create("u", sensor=5)


def test_validate_locates_bad_sensor_options_in_yaml(tmp_path: Path) -> None:
    file = _write(
        tmp_path,
        "dag_id: s\ntasks:\n  w:\n    callable: fairque.sensors:file_exists\n"
        "    kwargs: {path: /tmp/x}\n"
        "    sensor: {poke_interval_seconds: 0, timeout: 5, soft_fail: maybe}\n",
    )
    problems = validate_dag_file(file, ["examples"])  # fairque.sensors is always allowed
    assert [(p.line, p.pointer) for p in problems] == [
        (6, "/tasks/w/sensor/poke_interval_seconds"),
        (6, "/tasks/w/sensor/timeout"),
        (6, "/tasks/w/sensor/soft_fail"),
    ]
    assert "did you mean 'timeout_seconds'?" in problems[1].message
    file.write_text(
        "dag_id: s\ntasks:\n  w:\n    callable: fairque.sensors:file_exists\n"
        "    kwargs: {path: /tmp/x}\n    sensor: {poke_interval_seconds: 5}\n"
    )
    assert validate_dag_file(file, ["examples"]) == []


GROUP_BRANCH_DAG = """\
dag_id: brg
groups:
  work:
    tasks:
      pick: {callable: tests.unit.branch_tasks:picks_ingest_or_small, branch: true}
      small: {callable: tests.unit.sample_tasks:add, args: [1], depends_on: [pick]}
    groups:
      ingest:
        depends_on: [pick]
        tasks:
          one: {callable: tests.unit.sample_tasks:add, args: [2]}
          two: {callable: tests.unit.sample_tasks:add, args: [3]}
tasks:
  report: {callable: tests.unit.sample_tasks:add, args: [4], depends_on: [work]}
"""


def test_validate_accepts_targets_named_inside_the_group_and_task_groups(tmp_path: Path) -> None:
    # `small` means work.small, `ingest` the group work.ingest (its roots are downstream)
    assert validate_dag_file(_write(tmp_path, GROUP_BRANCH_DAG), ["tests"]) == []
    ghost = GROUP_BRANCH_DAG.replace("depends_on: [pick]\n        tasks", "tasks")
    (problem,) = validate_dag_file(_write(tmp_path, ghost), ["tests"])
    assert (problem.line, problem.column) == (5, 71)
    assert "returns 'ingest', which is not one of its direct downstream tasks" in problem.message
