"""The DAG model: construction checks, params and conf, compilation, planned lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from fairque import Priority, Task, task
from fairque.core.errors import (
    DagConfError,
    DagCycleError,
    DagError,
    TaskError,
    UnknownDependencyError,
)
from fairque.dag import DAG, ParamSpec, Problem, TaskInfo
from fairque.dag.model import (
    NO_DEFAULT,
    make_croniter,
    placeholders,
    schedule_problem,
    substitute,
    timezone_problem,
)
from fairque.dag.validate import json_pointer
from fairque.tasks import Pipeline
from tests.unit import sample_tasks as st


@task(task_id="flaky_high", priority="VERY_HIGH", max_retries=5)
def flaky_high() -> None:
    """A task whose own options beat the DAG's default_args."""


@task(task_id="producer")
def producer() -> list[int]:
    return [1, 2]


@task(task_id="consumer")
def consumer() -> int:
    return 0


def etl(**options: Any) -> DAG:
    """The seed's ETL as a Python DAG, with ``options`` passed to DAG."""
    pipeline = st.extract_data() >> (st.transform_data() | st.validate_data()) >> st.load_data()
    return DAG(dag_id="etl", pipeline=pipeline, **options)


PARAMS = {
    "source": ParamSpec("string", default="database", enum=("database", "api")),
    "limit": ParamSpec("integer"),
    "ratio": {"type": "number", "default": 0.5},
    "dry": ParamSpec("boolean", default=False),
    "tags": ParamSpec("array", default=[]),
    "extra": ParamSpec("object", default=None),
}


# --- construction ------------------------------------------------------------------------


def test_a_python_dag_has_its_tasks_in_topological_order() -> None:
    dag = etl(tenant="user:1")
    assert dag.task_names == ["extract", "transform", "validate", "load"]
    assert dag.tenant == "user:1"
    assert (dag.schedule, dag.timezone, dag.catchup, dag.max_active_runs) == (
        None,
        "UTC",
        False,
        16,
    )


def test_a_single_task_is_wrapped_in_a_pipeline() -> None:
    dag = DAG(dag_id="one", pipeline=st.extract_data())
    assert isinstance(dag.pipeline, Pipeline)
    assert dag.task_names == ["extract"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"dag_id": "has space"}, "dag_id 'has space' is invalid"),
        ({"schedule": "61 * * * *"}, "out of range"),
        ({"schedule": "* * * * * * *"}, "has 7 fields"),
        ({"timezone": "Nowhere/Land"}, "unknown timezone 'Nowhere/Land'"),
        ({"max_active_runs": 0}, "max_active_runs must be 1 or more"),
        ({"params": {"n": {"type": "integer", "default": "x"}}}, "default must be an integer"),
        ({"params": {"n": {"type": "int"}}}, "type 'int' is unknown"),
        ({"default_args": {"retries": 2}}, "unknown default_args key 'retries'"),
    ],
)
def test_construction_refuses_bad_fields(options: dict[str, Any], match: str) -> None:
    values: dict[str, Any] = {"dag_id": "etl", **options}
    with pytest.raises(DagError, match=match):
        DAG(pipeline=Pipeline.of(st.extract_data()), **values)


def test_construction_refuses_a_cycle_with_its_path() -> None:
    a = Task(task_id="a", user_id="u", depends_on=["c"])
    b = Task(task_id="b", user_id="u", depends_on=["a"])
    c = Task(task_id="c", user_id="u", depends_on=["b"])
    with pytest.raises(DagCycleError) as caught:
        DAG(dag_id="loop", pipeline=Pipeline.of(a, b, c))
    assert caught.value.cycle[0] == caught.value.cycle[-1]
    assert "a -> b -> c -> a" in str(caught.value)


def test_construction_refuses_an_unknown_dependency() -> None:
    lonely = Task(task_id="lonely", user_id="u", depends_on=["ghost"])
    with pytest.raises(UnknownDependencyError, match="ghost"):
        DAG(dag_id="ghosts", pipeline=lonely)


def test_construction_refuses_a_placeholder_for_no_param() -> None:
    with pytest.raises(DagError, match=r"no param 'sorce' \(did you mean 'source'\?\)"):
        DAG(
            dag_id="p",
            pipeline=st.add(x="{{ params.sorce }}", y=1),  # type: ignore[arg-type]
            params={"source": ParamSpec(default="x")},
        )


def test_default_args_fill_only_what_a_python_task_leaves_unset() -> None:
    pipeline = st.extract_data() >> flaky_high()
    dag = DAG(
        dag_id="d",
        pipeline=pipeline,
        default_args={"priority": "HIGH", "max_retries": 2, "timeout_seconds": 9},
    )
    extract, flaky = dag.pipeline.nodes["extract"], dag.pipeline.nodes["flaky_high"]
    assert (extract.priority, extract.max_retries, extract.timeout_seconds) == (
        Priority.HIGH,
        2,
        9,
    )
    assert (flaky.priority, flaky.max_retries) == (Priority.VERY_HIGH, 5)
    # the templates passed in are untouched
    assert pipeline.nodes["extract"].max_retries is None


def test_schedule_and_timezone_helpers() -> None:
    assert schedule_problem("*/5 * * * *") is None
    assert schedule_problem("30 */5 * * * *") is None
    assert "has 1 field;" in (schedule_problem("@daily") or "")  # as the scheduler: no aliases
    assert "has 4 fields" in (schedule_problem("* * * *") or "")
    assert "invalid" in (schedule_problem("0 0 30 2 *") or "")  # 30 February never comes
    assert timezone_problem("Europe/Paris") is None
    assert timezone_problem("Mars/Base") is not None
    start = datetime(2024, 1, 1, 0, 0, 0)
    # 6 fields: the seconds field comes first
    assert make_croniter("30 */5 * * * *", start).get_next(datetime) == datetime(
        2024, 1, 1, 0, 0, 30
    )
    assert make_croniter("*/5 * * * *", start).get_next(datetime) == datetime(2024, 1, 1, 0, 5)


def test_problem_formatting() -> None:
    full = Problem("d.yaml", 7, 5, "/tasks/load/depends_on/0", "unknown task")
    assert str(full) == "d.yaml:7:5: unknown task [at /tasks/load/depends_on/0]"
    assert str(Problem("d.yaml", 7, None, "", "bad")) == "d.yaml:7: bad"
    assert str(Problem("d.yaml", None, None, "", "bad")) == "d.yaml: bad"
    assert full.to_dict()["pointer"] == "/tasks/load/depends_on/0"
    assert json_pointer(("tasks", "a/b~c", 0)) == "/tasks/a~1b~0c/0"


# --- params and conf -----------------------------------------------------------------------


def test_check_conf_merges_over_defaults() -> None:
    dag = etl(params=PARAMS)
    merged = dag.check_conf({"limit": 10, "source": "api"})
    assert merged == {
        "source": "api",
        "limit": 10,
        "ratio": 0.5,
        "dry": False,
        "tags": [],
        "extra": None,
    }
    assert dag.check_conf(merged) == merged  # checking a merged conf again is harmless
    assert dag.params["ratio"] == ParamSpec("number", default=0.5)
    assert dag.params["limit"].required and dag.params["limit"].default is NO_DEFAULT


def test_check_conf_lists_every_problem() -> None:
    dag = etl(params=PARAMS)
    with pytest.raises(DagConfError) as caught:
        dag.check_conf({"source": "ftp", "ratio": "half", "dry": 1, "sorce": "x"})
    problems = caught.value.problems
    assert any("unknown param 'sorce' (did you mean 'source'?)" in p for p in problems)
    assert any("param 'limit' is required" in p for p in problems)
    assert any("param 'source' must be one of" in p and '"ftp"' in p for p in problems)
    assert any("param 'ratio' must be a number" in p for p in problems)
    assert any("param 'dry' must be true or false, not 1" in p for p in problems)
    assert len(problems) == 5
    assert caught.value.dag_id == "etl"
    assert str(caught.value).startswith("conf for DAG 'etl' is invalid: ")


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "x", 1),
        ("integer", 3, 3.5),
        ("integer", -1, True),
        ("number", 2.5, "2.5"),
        ("number", 2, float("nan")),
        ("boolean", True, "true"),
        ("object", {"a": 1}, [1]),
        ("array", [1], {"a": 1}),
    ],
)
def test_param_types(kind: str, good: object, bad: object) -> None:
    spec = ParamSpec(kind)
    assert spec.check(good) is None
    assert spec.check(bad) is not None


def test_null_is_accepted_only_for_a_param_whose_default_is_null() -> None:
    assert ParamSpec("object", default=None).check(None) is None
    assert ParamSpec("object").check(None) is not None


def test_conf_must_be_a_mapping() -> None:
    with pytest.raises(DagConfError, match="conf must be a mapping"):
        etl().check_conf(["a"])  # type: ignore[arg-type]


def test_a_dag_without_params_refuses_any_conf_key() -> None:
    with pytest.raises(DagConfError, match="unknown param 'x'; known: none"):
        etl().check_conf({"x": 1})
    assert etl().check_conf(None) == {}


# --- compilation ---------------------------------------------------------------------------


def test_compile_gives_one_record_per_task_with_run_scoped_ids() -> None:
    dag = etl(tenant="user:1")
    records = dag.compile("run-1")
    assert [r.task_id for r in records] == [
        "run-1:extract",
        "run-1:transform",
        "run-1:validate",
        "run-1:load",
    ]
    by_name = {r.name: r for r in records}
    assert sorted(by_name["load"].depends_on) == ["run-1:transform", "run-1:validate"]
    assert all(r.run_id == "run-1" and r.user_id == "user:1" for r in records)
    assert all(r.payload["conf"] == {} and set(r.payload) == {"conf", "dates"} for r in records)
    # two runs of the same DAG never share a task id
    assert {r.task_id for r in dag.compile("run-2")}.isdisjoint(r.task_id for r in records)


def test_compile_puts_the_conf_in_payloads_and_substitutes_params() -> None:
    dag = DAG(
        dag_id="p",
        pipeline=st.add(x="{{ params.a }}", y="{{params.b}}"),  # type: ignore[arg-type]
        params={"a": ParamSpec("integer", default=1), "b": ParamSpec("integer")},
    )
    (record,) = dag.compile("r", conf={"b": 41})
    assert record.kwargs == {"x": 1, "y": 41}
    assert record.payload["conf"] == {"a": 1, "b": 41}
    # the template still holds the placeholders
    assert dag.pipeline.nodes["add"].kwargs == {"x": "{{ params.a }}", "y": "{{params.b}}"}


def test_substitution_replaces_only_whole_strings_at_any_depth() -> None:
    params = {"n": 5, "tags": ["x"]}
    value = {
        "n": "{{ params.n }}",
        "text": "n is {{ params.n }}",
        "deep": [{"t": "{{ params.tags }}"}],
    }
    assert substitute(value, params) == {
        "n": 5,
        "text": "n is {{ params.n }}",
        "deep": [{"t": ["x"]}],
    }
    assert placeholders(value) == ["n", "tags"]


def test_compile_user_override_and_bad_conf() -> None:
    dag = etl(tenant="user:1", params={"n": ParamSpec("integer")})
    records = dag.compile("r", user_id="user:2", conf={"n": 1})
    assert {r.user_id for r in records} == {"user:2"}
    with pytest.raises(DagConfError):
        dag.compile("r", conf={})
    with pytest.raises(TaskError, match="run_id"):
        dag.compile("bad run id", conf={"n": 1})


def test_pipeline_for_binds_the_conf_for_in_process_runs() -> None:
    dag = DAG(
        dag_id="p",
        pipeline=st.add(x="{{ params.a }}", y=2),  # type: ignore[arg-type]
        params={"a": ParamSpec("integer", default=1)},
    )
    bound = dag.pipeline_for({"a": 40})
    assert bound.nodes["add"].kwargs == {"x": 40, "y": 2}
    assert bound.nodes["add"]() == 42  # a FunctionTask stays callable


# --- lineage --------------------------------------------------------------------------------


def test_planned_lineage_from_declared_pushes_and_pulls() -> None:
    dag = DAG(
        dag_id="lineage",
        pipeline=(
            producer().with_options(xcom_push_key="numbers")
            >> consumer().with_options(xcom_pulls=["numbers", "hand", "nobody"])
        ),
        task_info={"producer": TaskInfo(xcom_pushes=("hand",))},
    )
    assert dag.planned_lineage() == [
        ("producer", "numbers", "consumer"),
        ("producer", "hand", "consumer"),
    ]


def test_planned_lineage_prefers_upstream_producers() -> None:
    def t(name: str, **options: Any) -> Task:
        return Task(task_id=name, user_id="u", **options)

    dag = DAG(
        dag_id="lineage",
        pipeline=Pipeline.of(
            t("a", xcom_push_key="k"),
            t("b", xcom_push_key="k", depends_on=["a"]),
            t("c", xcom_pulls=["k"], depends_on=["b"]),
            t("elsewhere", xcom_push_key="k"),
            t("orphan", xcom_pulls=["k"], depends_on=["elsewhere"]),
        ),
    )
    lineage = dag.planned_lineage()
    assert [x for x in lineage if x[2] == "c"] == [("a", "k", "c"), ("b", "k", "c")]
    assert [x for x in lineage if x[2] == "orphan"] == [("elsewhere", "k", "orphan")]


def test_to_dict_is_json() -> None:
    import json

    data = etl(params=PARAMS, schedule="0 9 * * *").to_dict()
    json.dumps(data)
    assert data["tasks"] == ["extract", "transform", "validate", "load"]
    assert data["params"]["limit"] == {"type": "integer", "description": ""}


def test_a_dag_whose_runs_would_make_ids_too_long_is_refused() -> None:
    with pytest.raises(DagError, match="the limit is 200"):
        DAG(dag_id="d" * 180, pipeline=Task.create("default", func="examples.etl:backup_data"))
