"""Return values as arguments (TaskFlow): the marker encoding, the graph a call builds,
the wiring at compile time, YAML ``{from: ...}`` references and their validation, and
whole chains run in-process. Runs on workers: tests/integration/test_dynamic_dags.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from examples.dynamic import extract, list_files, load, process_file, summarize, transform

from fairque import TaskState
from fairque.core import refs
from fairque.core.errors import DagError, TaskError
from fairque.core.refs import Ref
from fairque.dag import DAG, validate_dag_file
from fairque.dag.loader import load_dag_file
from fairque.queue.runs import compile_run
from fairque.tasks import Pipeline, run_in_process
from fairque.tasks.context import MemoryXCom
from fairque.tasks.dataflow import call_arguments

ALLOWED = ("examples",)


def test_markers_round_trip_and_a_users_lookalike_dict_is_escaped() -> None:
    lookalike = {refs.FROM: {"task": "x"}}
    literal = {refs.LITERAL: [1]}
    value = [Ref("a").marker(), {"n": lookalike, "m": literal, "plain": {"from": "a"}}]
    encoded = refs.encode([value[0], value[1]], lambda v: None)
    assert encoded[1]["n"] == {refs.LITERAL: lookalike}
    assert encoded[1]["m"] == {refs.LITERAL: literal}
    assert [r.task for r in refs.references(encoded)] == []  # escaped: never a reference
    resolved = refs.resolve(encoded, lambda ref: 42)
    assert resolved[1] == {"n": lookalike, "m": literal, "plain": {"from": "a"}}


def test_resolve_replaces_markers_at_any_depth() -> None:
    value = {"a": [Ref("x").marker(), {"b": Ref("y", path="k").marker()}]}
    got = refs.resolve(value, lambda ref: f"{ref.task}:{ref.path}")
    assert got == {"a": ["x:None", {"b": "y:k"}]}


def test_a_call_with_a_task_argument_builds_the_chain() -> None:
    chain = load(transform(extract()["rows"]), source="s")
    graph = Pipeline.of(chain)
    assert set(graph.nodes) == {"extract", "transform", "load"}
    assert sorted(graph.edges) == [("extract", "transform"), ("transform", "load")]
    assert graph.heads == ("extract",) and graph.tails == ("load",)


def test_nested_references_in_lists_and_dicts_and_repeated_names() -> None:
    both = summarize([process_file("file_001.csv"), {"x": process_file("file_002.csv")}])
    graph = Pipeline.of(both)
    assert set(graph.nodes) == {"process_file", "process_file__1", "summarize"}
    records = {r.name: r for r in graph.compile("r1")}
    args = records["summarize"].args[0]
    assert refs.references(args) == [
        Ref("process_file", "process_file.return_value"),
        Ref("process_file__1", "process_file__1.return_value"),
    ]
    assert records["process_file"].xcom_push_key == "process_file.return_value"
    assert set(records["summarize"].depends_on) == {"r1:process_file", "r1:process_file__1"}


def test_compile_wires_references_to_xcom_keys_and_keeps_an_own_push_key() -> None:
    source = extract().with_options(xcom_push_key="mine")
    records = {r.name: r for r in Pipeline.of(transform(source["rows"])).compile("r")}
    marker = records["transform"].args[0]
    assert marker == Ref("extract", "mine", "rows").marker()
    assert records["transform"].enable_xcom and records["transform"].xcom_pulls == ["mine"]


def test_run_in_process_passes_return_values() -> None:
    run = run_in_process(load(transform(extract()["rows"], factor=3)), allowed_modules=ALLOWED)
    assert run.succeeded, run.errors
    assert run.results["load"] == {"source": "?", "count": 5, "total": 450}
    pulls = [(e.producer, e.consumer) for e in run.lineage if e.kind == "pull"]
    assert pulls == [("extract", "transform"), ("transform", "load")]


def test_a_failing_upstream_cancels_the_consumer_in_process() -> None:
    run = run_in_process(load(transform(extract()["nope"])), allowed_modules=ALLOWED)
    assert run.states["transform"] is TaskState.FAILED
    assert "key 'nope'" in run.errors["transform"]
    assert run.states["load"] is TaskState.CANCELED


def test_such_a_task_alone_cannot_be_pushed_or_called_but_enqueue_takes_its_graph() -> None:
    chain = load(transform(extract()["rows"]))
    with pytest.raises(TaskError, match=r"queue\.enqueue\(task\)"):
        chain.__fairque_task__()
    with pytest.raises(TaskError, match="on its own"):
        chain()
    names = [r.name for r in compile_run(chain, "run1", None)]
    assert names == ["extract", "transform", "load"]


def test_bad_arguments_are_refused_when_calling() -> None:
    with pytest.raises(TaskError, match="maps over another task's return value"):
        process_file.expand(path=["a", "b"])
    with pytest.raises(TaskError, match="exactly one argument"):
        process_file.expand(path=list_files(), prefix=list_files())
    with pytest.raises(TaskError, match="both partial and expand"):
        process_file.partial(path="x").expand(path=list_files())
    with pytest.raises(TaskError, match="indexed by a key"):
        extract()[0]  # type: ignore[index]


def test_a_reference_to_a_task_outside_the_dag_is_refused() -> None:
    lonely = extract()
    consumer = transform(lonely["rows"])
    with pytest.raises(DagError, match="not a task of this pipeline or DAG"):
        DAG(dag_id="d", pipeline=Pipeline({"transform": consumer}))


def test_call_arguments_reads_xcom_and_fails_clearly_on_a_bad_key() -> None:
    (record,) = [
        r for r in Pipeline.of(transform(extract()["rows"])).compile("r") if r.name == "transform"
    ]
    xcom = MemoryXCom()
    xcom.push("r", "extract.return_value", {"rows": [1]}, "extract")
    assert call_arguments(record, xcom) == ([[1]], {})
    xcom.push("r", "extract.return_value", [1], "extract")
    with pytest.raises(TaskError, match="key 'rows'"):
        call_arguments(record, xcom)


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dag.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_yaml_references_are_dependencies_and_run_in_process(tmp_path: Path) -> None:
    path = _yaml(
        tmp_path,
        """\
        dag_id: chain
        tasks:
          load:
            callable: "examples.dynamic:load"
            kwargs: {rows: {from: transform}, source: {from: extract, key: source}}
          transform:
            callable: "examples.dynamic:transform"
            args: [{from: extract, key: rows}]
          extract:
            callable: "examples.dynamic:extract"
            kwargs: {source: {from_: not a reference}}
        """,
    )
    result = load_dag_file(path, ALLOWED)
    assert result.ok, result.problems
    dag = result.dags[0]
    assert dag.task_names == ["extract", "transform", "load"]
    assert ("extract", "extract.return_value", "load") in dag.planned_lineage()
    run = run_in_process(dag.pipeline_for(), allowed_modules=ALLOWED)
    assert run.results["load"]["count"] == 5
    assert run.results["load"]["source"] == {"from_": "not a reference"}


def test_validate_locates_unknown_references_and_cycles_they_close(tmp_path: Path) -> None:
    path = _yaml(
        tmp_path,
        """\
        dag_id: bad
        tasks:
          a:
            callable: "examples.dynamic:extract"
            kwargs: {source: {from: b}}
          b:
            callable: "examples.dynamic:load"
            kwargs:
              rows: {from: a}
              source: {from: nowhere}
        """,
    )
    found = [(p.line, p.column, p.message) for p in validate_dag_file(path, ALLOWED)]
    assert (3, 3, "dependency cycle: a -> b -> a") in found
    assert any(
        line == 10 and col == 7 and "'nowhere', which is not a task" in text
        for line, col, text in found
    ), found
