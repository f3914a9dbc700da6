"""Task groups: YAML ``groups:`` and Python ``TaskGroup`` give the same prefixed tasks,
group dependencies (leaves before roots), default_args and renders; ``dag validate``
locates unknown groups, name clashes and cycles through groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairque import TaskGroup
from fairque.core.errors import DagError, TaskError
from fairque.dag import DAG, validate_dag_file
from fairque.dag.loader import load_dag_file
from fairque.dag.render import to_dot, to_mermaid
from fairque.dag.runs import graph_view
from tests.unit import sample_tasks as st

HEAD = "dag_id: grouped\n"
TASK = "{callable: 'tests.unit.sample_tasks:add', args: [1]}"


def _yaml(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "grouped.yaml"
    file.write_text(HEAD + body)
    return file


GROUPED = f"""\
default_args: {{max_retries: 1, priority: 2}}
flow: "start >> ingest >> report"
groups:
  ingest:
    default_args: {{max_retries: 4}}
    tasks:
      fetch: {TASK}
      parse:
        callable: tests.unit.sample_tasks:add
        args: [2]
        depends_on: [fetch]
        max_retries: 0
    groups:
      raw:
        default_args: {{max_retries: 7}}
        tasks:
          dump: {{callable: 'tests.unit.sample_tasks:add', args: [3], depends_on: [fetch]}}
tasks:
  start: {TASK}
  report: {TASK}
  audit: {{callable: 'tests.unit.sample_tasks:add', args: [4], depends_on: [ingest.raw]}}
"""

EXPECTED_EDGES = {
    ("start", "ingest.fetch"),
    ("ingest.fetch", "ingest.parse"),
    ("ingest.fetch", "ingest.raw.dump"),
    ("ingest.parse", "report"),
    ("ingest.raw.dump", "report"),
    ("ingest.raw.dump", "audit"),
}


def test_yaml_groups_prefix_names_link_leaves_to_roots_and_apply_defaults(
    tmp_path: Path,
) -> None:
    file = _yaml(tmp_path, GROUPED)
    assert validate_dag_file(file, ["tests"]) == []
    (dag,) = load_dag_file(file, ["tests"]).dags
    nodes = dag.pipeline.nodes
    assert set(nodes) == {
        "start",
        "report",
        "audit",
        "ingest.fetch",
        "ingest.parse",
        "ingest.raw.dump",
    }
    assert set(dag.pipeline.edges) == EXPECTED_EDGES
    assert dag.pipeline.groups == {"ingest", "ingest.raw"}
    retries = {name: task.max_retries for name, task in nodes.items()}
    assert retries == {
        "start": 1,
        "report": 1,
        "audit": 1,
        "ingest.fetch": 4,  # the group's default wins over the DAG's
        "ingest.parse": 0,  # the task's own setting wins
        "ingest.raw.dump": 7,  # the inner group wins over the outer
    }
    assert {task.priority for task in nodes.values()} == {2}
    assert nodes["ingest.parse"].depends_on == ["ingest.fetch"]


def test_python_task_group_builds_the_same_graph() -> None:
    with TaskGroup("ingest", default_args={"max_retries": 4}) as ingest:
        fetch = st.add(1).with_options(task_id="fetch")
        fetch >> st.add(2).with_options(task_id="parse", max_retries=0)
        with TaskGroup("raw", default_args={"max_retries": 7}):
            pass_through = st.add(3).with_options(task_id="dump")
        assert pass_through.name == "dump"  # renamed when the group's block ends
    start, report = (
        st.add(1).with_options(task_id="start"),
        st.add(1).with_options(task_id="report"),
    )
    pipeline = start >> ingest >> report
    assert set(pipeline.nodes) == {
        "start",
        "report",
        "ingest.fetch",
        "ingest.parse",
        "ingest.raw.dump",
    }
    assert ("start", "ingest.fetch") in pipeline.edges and (
        "start",
        "ingest.raw.dump",
    ) in pipeline.edges
    assert ("ingest.parse", "report") in pipeline.edges and (
        "ingest.raw.dump",
        "report",
    ) in pipeline.edges
    assert pipeline.groups == {"ingest", "ingest.raw"}
    assert pipeline.nodes["ingest.raw.dump"].max_retries == 7
    assert pipeline.nodes["ingest.fetch"].max_retries == 4
    assert pipeline.nodes["ingest.parse"].max_retries == 0
    assert ingest.roots == ("ingest.fetch", "ingest.raw.dump") or set(ingest.roots) == {
        "ingest.fetch",
        "ingest.raw.dump",
    }
    dag = DAG(dag_id="grouped_py", pipeline=pipeline, default_args={"max_retries": 1})
    assert dag.pipeline.nodes["start"].max_retries == 1
    assert dag.pipeline.nodes["ingest.fetch"].max_retries == 4
    given = TaskGroup(
        "other", st.add(5).with_options(task_id="x") >> st.add(6).with_options(task_id="y")
    )
    assert set((given >> report).nodes) == {"other.x", "other.y", "report"}
    assert DAG(dag_id="just_a_group", pipeline=given).task_names == ["other.x", "other.y"]


def test_task_group_bad_input() -> None:
    with pytest.raises(TaskError, match=r"must not contain '\.'"):
        TaskGroup("a.b")
    with pytest.raises(TaskError, match="group_id"):
        TaskGroup("has space")
    with pytest.raises(DagError, match="unknown default_args key 'max_retry'"):
        TaskGroup("g", default_args={"max_retry": 1})
    with pytest.raises(DagError, match="has no tasks"), TaskGroup("empty"):
        pass
    early = TaskGroup("early")
    with pytest.raises(DagError, match="used before its `with` block ended"), early:
        st.add(1) >> early
    with pytest.raises(DagError, match="two different tasks are named 'add'"), TaskGroup("twice"):
        st.add(1)
        st.add(2)


def test_validate_locates_unknown_groups_clashes_and_cycles(tmp_path: Path) -> None:
    unknown = f"""\
groups:
  ingest:
    tasks:
      fetch: {TASK}
tasks:
  report: {{callable: 'tests.unit.sample_tasks:add', args: [1], depends_on: [ingets]}}
"""
    (problem,) = validate_dag_file(_yaml(tmp_path, unknown), ["tests"])
    assert (problem.line, problem.column) == (7, 77)
    assert "'ingets', which is not a task or group of this DAG (did you mean 'ingest'?)" in (
        problem.message
    )
    clash = f"""\
groups:
  report:
    tasks:
      fetch: {TASK}
tasks:
  report: {TASK}
"""
    problems = validate_dag_file(_yaml(tmp_path, clash), ["tests"])
    assert any("'report' is also the name of a" in p.message and p.line for p in problems)
    cycle = f"""\
flow: "ingest >> report"
groups:
  ingest:
    depends_on: [report]
    tasks:
      fetch: {TASK}
tasks:
  report: {TASK}
"""
    (problem,) = validate_dag_file(_yaml(tmp_path, cycle), ["tests"])
    assert "cycle" in problem.message and "ingest.fetch" in problem.message
    assert problem.line is not None
    inner = f"""\
groups:
  ingest:
    tasks:
      fetch: {TASK}
      parse: {{callable: 'tests.unit.sample_tasks:add', args: [1], depends_on: [ingest]}}
"""
    problems = validate_dag_file(_yaml(tmp_path, inner + "tasks:\n  t: " + TASK + "\n"), ["tests"])
    assert any(
        "depends on group 'ingest', which contains it" in p.message and p.line == 6
        for p in problems
    )


def test_renders_draw_groups_as_clusters_and_subgraphs(tmp_path: Path) -> None:
    (dag,) = load_dag_file(_yaml(tmp_path, GROUPED), ["tests"]).dags
    view = graph_view(dag)
    dot = to_dot(view)
    assert dot.count("subgraph cluster_") == 2 and "<B>ingest.raw</B>" in dot
    mermaid = to_mermaid(view)
    assert "subgraph g" in mermaid and '["ingest"]' in mermaid and '["ingest.raw"]' in mermaid
    assert mermaid.count("\n    end") + mermaid.count("\n      end") == 2


def test_a_group_depends_on_is_its_roots_waiting(tmp_path: Path) -> None:
    body = f"""\
groups:
  ingest:
    depends_on: [start]
    tasks:
      fetch: {TASK}
      parse: {{callable: 'tests.unit.sample_tasks:add', args: [2], depends_on: [fetch]}}
tasks:
  start: {TASK}
  report: {{callable: 'tests.unit.sample_tasks:add', args: [3], depends_on: [ingest]}}
"""
    file = _yaml(tmp_path, body)
    assert validate_dag_file(file, ["tests"]) == []
    (dag,) = load_dag_file(file, ["tests"]).dags
    assert set(dag.pipeline.edges) == {
        ("start", "ingest.fetch"),
        ("ingest.fetch", "ingest.parse"),
        ("ingest.parse", "report"),
    }
    assert dag.to_dict()["groups"] == ["ingest"]
    bad = body.replace("depends_on: [start]", "depends_on: [strat]")
    (problem,) = validate_dag_file(_yaml(tmp_path, bad), ["tests"])
    assert "group 'ingest' depends on 'strat', which is not a task or group" in problem.message
    assert problem.line == 4


def test_renders_name_branch_and_sensor_tasks(tmp_path: Path) -> None:
    from fairque.tasks import sensor
    from tests.unit import branch_tasks as bt

    pipeline = bt.route() >> (
        st.add(1).with_options(task_id="a") | st.add(2).with_options(task_id="b")
    )
    poke = sensor(st.add.__fairque_function__)  # the same function, as a sensor
    dag = DAG(dag_id="kinds", pipeline=pipeline | poke(3).with_options(task_id="wait"))
    mermaid = to_mermaid(graph_view(dag))
    assert "branch · tests.unit.branch_tasks:route" in mermaid
    assert "sensor · tests.unit.sample_tasks:add" in mermaid


def test_references_inside_a_group_name_their_siblings(tmp_path: Path) -> None:
    body = """\
groups:
  etl:
    tasks:
      fetch: {callable: 'tests.unit.sample_tasks:add', args: [1, 2]}
      double: {callable: 'tests.unit.sample_tasks:add', args: [{from: fetch}, 3]}
tasks:
  report: {callable: 'tests.unit.sample_tasks:add', args: [{from: etl.double}]}
"""
    file = _yaml(tmp_path, body)
    assert validate_dag_file(file, ["tests"]) == []
    (dag,) = load_dag_file(file, ["tests"]).dags
    assert set(dag.pipeline.edges) == {("etl.fetch", "etl.double"), ("etl.double", "report")}
    from fairque.tasks import run_in_process

    assert run_in_process(dag.pipeline_for()).results == {
        "etl.fetch": 3,
        "etl.double": 6,
        "report": 6,
    }


def test_validate_places_what_is_wrong_inside_a_group_where_the_file_says_it(
    tmp_path: Path,
) -> None:
    # the problems, inside a group: line:col, and a pointer into the document
    body = """\
groups:
  g:
    tasks:
      a: {callable: 'tests.unit.sample_tasks:extract_data'}
      b: {callable: 'tests.unit.sample_tasks:add', kwargs: {x: {from: ghost}}}
      m: {callable: 'tests.unit.sample_tasks:add', expand: {x: {from: a}}}
      c: {callable: 'tests.unit.sample_tasks:add', args: [1], depends_on: [nope]}
      d: {callable: 'tests.unit.sample_tasks:no_such_function'}
      e: {callable: 'tests.unit.sample_tasks:add', args: [{from: f}]}
      f: {callable: 'tests.unit.sample_tasks:add', args: [{from: e}]}
tasks:
  t: {callable: 'tests.unit.sample_tasks:add', args: [1]}
"""
    problems = validate_dag_file(_yaml(tmp_path, body), ["tests"])
    found = {(p.line, p.column, p.pointer): p.message for p in problems}
    assert sorted(found) == [
        (6, 61, "/groups/g/tasks/b/kwargs/x"),
        (7, 61, "/groups/g/tasks/m/expand/x"),
        (8, 76, "/groups/g/tasks/c/depends_on/0"),
        (9, 11, "/groups/g/tasks/d/callable"),
        (10, 7, "/groups/g/tasks/e"),
    ], found
    assert "'ghost', which is not a task of this DAG" in found[6, 61, "/groups/g/tasks/b/kwargs/x"]
    assert "not a list" in found[7, 61, "/groups/g/tasks/m/expand/x"]
    assert "cycle" in found[10, 7, "/groups/g/tasks/e"]
