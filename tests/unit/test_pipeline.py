"""Pipeline operators, validation and compilation (pure Python, no Redis)."""

from __future__ import annotations

import networkx as nx
import pytest

from fairque import Task
from fairque.core.errors import DagCycleError, DagError, TaskError
from fairque.tasks import FunctionTask, Pipeline
from tests.unit import sample_tasks as st


def edges(*pairs: str) -> frozenset[tuple[str, str]]:
    """``edges("a>b", "b>c")`` as a set of (upstream, downstream)."""
    return frozenset(tuple(pair.split(">")) for pair in pairs)  # type: ignore[misc]


def test_linear_pipeline() -> None:
    p = st.extract_data() >> st.transform_data() >> st.load_data()
    assert isinstance(p, Pipeline)
    assert p.edges == edges("extract>transform", "transform>load")
    assert (p.heads, p.tails) == (("extract",), ("load",))
    assert p.order() == ["extract", "transform", "load"]


def test_parallel_pipeline() -> None:
    p = st.extract_data() >> (st.transform_data() | st.validate_data()) >> st.load_data()
    assert p.edges == edges(
        "extract>transform", "extract>validate", "transform>load", "validate>load"
    )
    assert (p.heads, p.tails) == (("extract",), ("load",))


def test_reverse_pipeline() -> None:
    p = st.load_data() << st.transform_data() << st.extract_data()
    assert p.edges == edges("extract>transform", "transform>load")
    assert (p.heads, p.tails) == (("extract",), ("load",))
    assert p.order() == ["extract", "transform", "load"]


def test_lshift_keeps_heads_of_the_right_and_tails_of_the_left() -> None:
    p = st.load_data() << st.transform_data()
    assert (p.heads, p.tails) == (("transform",), ("load",))


def test_union_heads_and_tails() -> None:
    p = st.transform_data() | st.validate_data()
    assert p.edges == frozenset()
    assert (p.heads, p.tails) == (("transform", "validate"), ("transform", "validate"))


def test_complex_workflow_of_the_seed() -> None:
    p = (
        st.extract_data()
        >> (st.transform_data() | st.validate_data())
        >> (st.load_data() | st.backup_data())
        >> st.notify_completion()
    )
    assert p.edges == edges(
        "extract>transform",
        "extract>validate",
        "transform>load",
        "transform>backup",
        "validate>load",
        "validate>backup",
        "load>notify",
        "backup>notify",
    )
    assert (p.heads, p.tails) == (("extract",), ("notify",))
    assert p.order() == ["extract", "transform", "validate", "backup", "load", "notify"]


def test_operands_are_never_mutated() -> None:
    a, b, c = st.extract_data(), st.transform_data(), st.load_data()
    left = a >> b
    before = (dict(left.nodes), left.edges, left.heads, left.tails)
    snapshot = a.to_dict()
    combined = left >> c
    assert (dict(left.nodes), left.edges, left.heads, left.tails) == before
    assert a.to_dict() == snapshot
    assert len(combined) == 3
    assert len(left) == 2
    with pytest.raises(AttributeError):
        left.edges = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        left.nodes["x"] = c  # type: ignore[index]


def test_shared_subgraphs_compose_when_they_are_the_same_tasks() -> None:
    x, y, z, w = st.extract_data(), st.transform_data(), st.validate_data(), st.load_data()
    middle = y | z
    p = (x >> middle) | (middle >> w)
    assert p.edges == edges(
        "extract>transform", "extract>validate", "transform>load", "validate>load"
    )


def test_two_tasks_with_one_name_conflict() -> None:
    with pytest.raises(DagError, match=r"'extract'.*task_id"):
        st.extract_data() >> st.extract_data()


def test_a_renamed_copy_does_not_conflict() -> None:
    first = st.extract_data()
    second = first.with_options(task_id="extract_again")
    p = first >> second
    assert p.edges == edges("extract>extract_again")


def test_tasks_without_task_id_are_named_by_function() -> None:
    p = st.add(1) >> st.gather()
    assert p.edges == edges("add>gather")


def test_depends_on_inside_the_pipeline_adds_edges() -> None:
    a = st.add(1).with_options(task_id="a")
    b = st.add(2).with_options(task_id="b", depends_on=["a"])
    c = st.add(3).with_options(task_id="c", depends_on=[b.task_id, "outside", "other:1"])
    p = Pipeline.of(a, b, c)
    assert p.edges == edges("a>b", "b>c")
    assert p.external_dependencies() == {"c": ["outside", "other:1"]}


def test_depends_on_matches_a_task_id_too() -> None:
    a = st.add(1)
    b = st.add(2).with_options(task_id="b", depends_on=[a.task_id])
    assert Pipeline.of(a, b).edges == edges("add>b")


def test_plain_tasks_are_nodes_too() -> None:
    plain = Task.create("user:1", task_id="plain", func="tests.unit.sample_tasks:add", args=[1])
    named = Task.create("user:1", name="report", payload={"kind": "daily"})
    p = plain >> Pipeline.of(named)
    assert p.edges == edges("plain>report")
    q = st.extract_data() | plain
    assert set(q.nodes) == {"extract", "plain"}
    r = plain | Pipeline.of(named)
    assert (r.heads, r.tails) == (("plain", "report"), ("plain", "report"))
    s = plain << Pipeline.of(named)
    assert s.edges == edges("report>plain")


def test_operators_refuse_other_objects() -> None:
    with pytest.raises(TypeError, match="Tasks and Pipelines"):
        st.extract_data() >> 3  # type: ignore[operator]


def test_cycle_is_named_as_a_closed_path() -> None:
    a, b, c = st.extract_data(), st.transform_data(), st.load_data()
    p = a >> b >> c >> a
    with pytest.raises(DagCycleError) as caught:
        p.validate()
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["extract", "load", "transform"]
    assert " -> ".join(cycle) in str(caught.value)
    with pytest.raises(DagCycleError):
        p.compile("run-1")


def test_cycle_through_depends_on() -> None:
    a = st.add(1).with_options(task_id="a", depends_on=["b"])
    b = st.add(2).with_options(task_id="b")
    with pytest.raises(DagCycleError) as caught:
        (a >> b).order()
    assert caught.value.cycle in (["a", "b", "a"], ["b", "a", "b"])


def test_self_dependency() -> None:
    a = st.extract_data()
    with pytest.raises(DagError, match="'extract' depends on itself"):
        (a >> a).validate()
    own = st.add(1).with_options(task_id="me", depends_on=["me"])
    with pytest.raises(DagError, match="depends on itself"):
        Pipeline.of(own).validate()


def test_graph_is_a_networkx_digraph() -> None:
    p = st.extract_data() >> st.load_data()
    g = p.graph()
    assert isinstance(g, nx.DiGraph)
    assert list(g.edges) == [("extract", "load")]
    assert g.nodes["extract"]["task"] is p.nodes["extract"]


def test_compile_gives_run_scoped_records_in_order() -> None:
    p = st.extract_data() >> (st.transform_data() | st.validate_data()) >> st.load_data()
    records = p.compile("run-1", user_id="user:7")
    assert [r.task_id for r in records] == [
        "run-1:extract",
        "run-1:transform",
        "run-1:validate",
        "run-1:load",
    ]
    load = records[-1]
    assert load.depends_on == ["run-1:transform", "run-1:validate"]
    assert load.run_id == "run-1"
    assert load.name == "load"
    assert {r.user_id for r in records} == {"user:7"}
    assert records[0].depends_on == []
    assert all(isinstance(r, FunctionTask) for r in records)
    assert records[0]() == {"records": 1000}
    assert p.nodes["load"].task_id == "load"
    assert p.nodes["load"].run_id is None
    assert p.nodes["load"].user_id == "default"


def test_compiling_twice_gives_disjoint_records() -> None:
    p = st.extract_data() >> st.load_data()
    first, second = p.compile("r1"), p.compile("r2")
    assert {t.task_id for t in first}.isdisjoint({t.task_id for t in second})
    first[0].args.append("changed")
    assert second[0].args == []
    assert p.nodes["extract"].args == []


def test_compile_keeps_external_dependencies() -> None:
    a = st.add(1).with_options(task_id="a", depends_on=["nightly-import"])
    records = (a >> st.load_data()).compile("r")
    assert records[0].depends_on == ["nightly-import"]
    assert records[1].depends_on == ["r:a"]


def test_compile_refuses_a_bad_run_id() -> None:
    with pytest.raises(TaskError, match="run_id"):
        Pipeline.of(st.add(1)).compile("bad run")


def test_to_dict_describes_the_graph() -> None:
    p = st.xcom_extract("db") >> st.xcom_transform()
    data = p.to_dict()
    assert data["edges"] == [["xcom_extract", "transform_x"]]
    assert data["heads"] == ["xcom_extract"]
    node = data["nodes"]["xcom_extract"]
    assert node["func"] == "tests.unit.sample_tasks:xcom_extract"
    assert node["args"] == ["db"]
    assert node["xcom_push_key"] == "extracted_data"
    assert data["nodes"]["transform_x"]["xcom_pulls"] == ["extracted_data"]
    assert data["external_dependencies"] == {}
    assert "extract" in repr(p)
