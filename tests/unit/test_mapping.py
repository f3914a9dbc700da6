"""Task mapping without Redis: how ``expand`` is declared (Python and YAML), refused
when malformed, run in-process (``fairque dag test``) and drawn. On real workers:
tests/integration/test_dynamic_dags.py."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from examples.dynamic import list_files, process_file, summarize

from fairque import TaskState
from fairque.core.errors import TaskError
from fairque.core.models import TaskRecord
from fairque.core.refs import Ref
from fairque.dag import DAG, validate_dag_file
from fairque.dag.render import NodeView, mapped_summary, to_mermaid
from fairque.dag.runs import graph_view
from fairque.queue.runs import RunInfo
from fairque.tasks import Pipeline, run_in_process
from tests.integration import dynamic_tasks as dt

ALLOWED = ("examples", "tests")
S = TaskState


def test_expand_records_the_mapped_argument_and_partial_the_shared_ones() -> None:
    mapped = process_file.partial(prefix="p/").expand(path=list_files(3))
    assert mapped.kwargs == {"prefix": "p/"}
    ((arg, marker),) = mapped.expand.items()
    assert arg == "path" and Ref.of(marker["__fairque_from__"]).task == mapped._upstreams[0].task_id
    records = {r.name: r for r in Pipeline.of(summarize(mapped)).compile("r")}
    assert records["process_file"].expand == {
        "path": Ref("list_files", "list_files.return_value", None, "r:list_files").marker()
    }
    assert records["process_file"].depends_on == ["r:list_files"]


def test_a_fan_out_of_50_in_process_reduces_in_order() -> None:
    run = run_in_process(dt.total(dt.square.partial(offset=1).expand(n=dt.numbers(50))))
    assert run.succeeded, run.errors
    assert run.results["total"] == {"count": 50, "values": [i * i + 1 for i in range(50)]}
    assert run.instances("square") == [f"square[{i}]" for i in range(50)]
    assert run.tasks["square[7]"].map_index == 7


def test_an_empty_list_skips_in_process() -> None:
    run = run_in_process(dt.total(dt.square.expand(n=dt.numbers(0))))
    assert run.states == {"numbers": S.FINISHED, "square": S.CANCELED, "total": S.CANCELED}
    assert "empty list" in run.errors["square"]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (dt.numbers(6), "a list of 6 elements, more than max_map_length 5"),
        (dt.not_a_list(), "not a list"),
    ],
)
def test_a_value_that_cannot_be_mapped_fails_the_upstream(source: object, words: str) -> None:
    mapped = dt.square.expand(n=source).with_options(max_map_length=5)
    run = run_in_process(dt.total(mapped))
    upstream = "numbers" if "6 elements" in words else "not_a_list"
    assert run.states[upstream] is S.FAILED and words in run.errors[upstream]
    assert run.states["square"] is S.CANCELED


def test_a_failing_instance_is_retried_and_one_that_keeps_failing_fails_the_task() -> None:
    run = run_in_process(dt.total(dt.flaky_square.expand(n=dt.numbers(5))))
    assert run.results["total"]["values"] == [0, 1, 4, 9, 16]
    assert run.attempts["flaky_square[3]"] == 2
    broken = run_in_process(dt.total(dt.broken_square.expand(n=dt.numbers(4))))
    assert broken.states["broken_square[2]"] is S.FAILED
    assert broken.states["broken_square"] is S.FAILED
    assert "broken_square[2] failed" in broken.errors["broken_square"]
    assert broken.states["total"] is S.CANCELED


def test_max_map_length_must_be_a_positive_integer() -> None:
    with pytest.raises(TaskError, match="max_map_length"):
        dt.square.expand(n=dt.numbers(1)).with_options(max_map_length=0)


def test_a_mapped_task_with_long_instance_ids_is_refused() -> None:
    mapped = dt.square.expand(n=dt.numbers(1)).with_options(name="s" * 150)
    with pytest.raises(Exception, match=r"\[1023\]"):
        DAG(dag_id="d" * 30, pipeline=dt.total(mapped))


def test_yaml_expand_problems_are_located(tmp_path: Path) -> None:
    path = tmp_path / "dag.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            dag_id: m
            tasks:
              files:
                callable: "examples.dynamic:list_files"
              one:
                callable: "examples.dynamic:process_file"
                expand: {path: [a, b]}
              two:
                callable: "examples.dynamic:process_file"
                expand: {path: {from: filez}}
              three:
                callable: "examples.dynamic:process_file"
                expand: {path: {from: files}}
                partial: {path: x}
              four:
                callable: "examples.dynamic:process_file"
                partial: {path: x}
            """
        ),
        encoding="utf-8",
    )
    found = {(p.line, p.message.split(";")[0][:40]) for p in validate_dag_file(path, ALLOWED)}
    messages = " | ".join(p.message for p in validate_dag_file(path, ALLOWED))
    assert "expand maps argument 'path' over another task's return value" in messages
    assert "'filez', which is not a task of this DAG (did you mean 'files'?)" in messages
    assert "argument 'path' is in both partial and expand" in messages
    assert "partial gives the shared arguments of a mapped task: add expand" in messages
    assert {line for line, _ in found} >= {7, 10, 13}


def test_render_draws_a_mapped_task_as_one_node_with_its_summary() -> None:
    dag = DAG(dag_id="m", pipeline=summarize(process_file.expand(path=list_files())))
    view = graph_view(dag)
    (node,) = [n for n in view.nodes if n.name == "process_file"]
    assert node.mapped == "mapped"
    assert "process_file" in to_mermaid(view) and "mapped" in to_mermaid(view)
    assert mapped_summary(3, [S.FINISHED, S.FAILED, S.FINISHED]) == (
        "mapped x3: 1 failed, 2 finished"
    )
    assert "mapped x3" in to_mermaid(
        type(view)(view.title, [NodeView("p", mapped="mapped x3")], [], [])
    )


def test_expand_over_a_declared_non_list_return_type_is_refused(tmp_path: Path) -> None:
    from examples.dynamic import extract

    with pytest.raises(Exception, match=r"declares it returns dict, not a list"):
        DAG(dag_id="m", pipeline=process_file.expand(path=extract()))
    DAG(dag_id="ok", pipeline=process_file.expand(path=extract()["rows"]))  # a key: unknown type
    path = tmp_path / "dag.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            dag_id: m
            tasks:
              rows: {callable: "examples.dynamic:extract"}
              each:
                callable: "examples.dynamic:process_file"
                expand: {path: {from: rows}}
            """
        ),
        encoding="utf-8",
    )
    (problem,) = validate_dag_file(path, ALLOWED)
    assert (problem.line, problem.column) == (6, 14)
    assert "whose callable declares it returns dict, not a list" in problem.message


def test_a_mapped_node_counts_its_instances_as_run_show_shows_them() -> None:
    dag = DAG(dag_id="m", pipeline=summarize(process_file.expand(path=list_files())))
    mapped = dag.pipeline.nodes["process_file"]
    instance = TaskRecord.of(mapped, state=S.CANCELED)
    tasks: dict[str, TaskRecord | None] = {
        "process_file": TaskRecord.of(mapped, state=S.DEFERRED, map_count=3),
        "process_file[0]": TaskRecord.of(mapped, state=S.FINISHED),
        "process_file[1]": replace(instance, skipped=True),  # a soft_fail sensor's timeout
        "process_file[2]": instance,  # canceled by hand
    }
    run = RunInfo(run_id="r", task_ids={}, dag_id="m", tasks=tasks)
    (node,) = [n for n in graph_view(dag, run).nodes if n.name == "process_file"]
    assert node.mapped == "mapped x3: 1 canceled, 1 finished, 1 skipped"
    assert mapped_summary(2, ["upstream_failed", None]) == "mapped x2: 1 gone, 1 upstream_failed"
