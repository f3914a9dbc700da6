"""Jinja2 templates in DAG task args/kwargs: rendering, the sandbox, validation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from fairque.core.errors import DagError
from fairque.dag import DAG, ParamSpec
from fairque.dag.templates import TemplateContext, problems, render
from fairque.dag.validate import validate_dag_file
from tests.unit import sample_tasks as st

LOGICAL = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
CONTEXT = TemplateContext(
    dag_id="d", run_id="d__r", params={"region": "eu", "n": 3, "tags": ["a"]}, logical_date=LOGICAL
)


def _dag(**kwargs: Any) -> DAG:
    return DAG(
        dag_id="report",
        pipeline=st.add(**kwargs),
        params={"region": ParamSpec(default="eu"), "n": ParamSpec("integer", default=2)},
    )


def test_partial_templates_render_with_params_ds_and_run_variables() -> None:
    dag = _dag(x="report for {{ params.region }} on {{ ds }}", y=1)
    (record,) = dag.compile("report__r1", conf={"region": "us"}, logical_date=LOGICAL)
    assert record.kwargs["x"] == "report for us on 2026-03-04"
    value = {
        "all": "{{ ds_nodash }} {{ run_id }} {{ dag_id }} {{ conf.region }}",
        "dates": ["{{ logical_date }}", "{{ data_interval_start }}|{{ data_interval_end }}"],
        "fmt": "{{ logical_date.strftime('%Y/%m') }}",
        "loop": "{% for t in params.tags %}<{{ t }}>{% endfor %}",
        "comment": "a{# note #}b",
    }
    assert render(value, CONTEXT) == {
        "all": "20260304 d__r d eu",
        "dates": [
            "2026-03-04T05:06:07+00:00",
            "2026-03-04T05:06:07+00:00|2026-03-04T05:06:07+00:00",
        ],
        "fmt": "2026/03",
        "loop": "<a>",
        "comment": "ab",
    }


def test_a_data_interval_is_passed_through() -> None:
    start, end = (
        datetime(2026, 3, 3, tzinfo=timezone.utc),
        datetime(2026, 3, 4, tzinfo=timezone.utc),
    )
    dag = _dag(x="{{ data_interval_start }}/{{ data_interval_end }}", y=1)
    (record,) = dag.compile("r", logical_date=start, data_interval=(start, end))
    assert record.kwargs["x"] == "2026-03-03T00:00:00+00:00/2026-03-04T00:00:00+00:00"


def test_a_whole_param_keeps_its_type_and_other_strings_are_untouched() -> None:
    assert render(
        ["{{ params.n }}", "{{params.tags}}", "{{ params.n }}!", "plain { }"], CONTEXT
    ) == [
        3,
        ["a"],
        "3!",
        "plain { }",
    ]
    # a non-string value is never a template
    assert render({"k": 5, "l": None}, CONTEXT) == {"k": 5, "l": None}


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ params.__class__ }}",
        "{{ logical_date.__class__.__init__.__globals__ }}",
        "{{ run_id.__len__() }}",
        "{{ ''.format.__self__ }}",
        "{{ '{0.__class__}'.format(run_id) }}",
        "{{ cycler }}",
        "{{ joiner }}",
        "{{ lipsum.__globals__ }}",
        "{{ params.update({'n': 1}) }}",
        "{{ params.tags.append(1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 99999999 }}",
    ],
)
def test_the_sandbox_refuses_python_internals(template: str) -> None:
    with pytest.raises(DagError, match=r"task 't' x: "):
        render({"x": template}, CONTEXT, "t")
    assert CONTEXT.params == {"region": "eu", "n": 3, "tags": ["a"]}


def test_an_unknown_name_is_an_error_never_an_empty_string() -> None:
    with pytest.raises(DagError, match=r"task 't' args\[1\]: UndefinedError: 'nope' is undefined"):
        render(["ok", "{{ nope }}"], CONTEXT, "t", ("args",))
    with pytest.raises(DagError, match="has no attribute 'missing'"):
        render("{{ params.region.missing }}", CONTEXT, "t")


def test_problems_reports_syntax_unknown_variables_and_params() -> None:
    value = {
        "a": "{{ ds }} {{ params.region }}{% for i in range(2) %}{{ i }}{% endfor %}",
        "b": ["{{ oops }}", "{% for %}"],
        "c": {"d": "{{ params.regon }} and {{ conf.n }}"},
        "e": "{{ params.sorce }}",
    }
    found = problems(value, ["region", "n", "source"])
    assert [where for where, _ in found] == [("b", 0), ("b", 1), ("c", "d"), ("e",)]
    assert "unknown template variable 'oops'; known: params, conf, ds" in found[0][1]
    assert found[1][1].startswith("template syntax error: TemplateSyntaxError: ")
    assert "(line 1 of the template)" in found[1][1]
    assert "names no param 'regon' (did you mean 'region'?)" in found[2][1]
    assert "names no param 'sorce' (did you mean 'source'?)" in found[3][1]


def test_a_dag_refuses_a_broken_template_when_built() -> None:
    with pytest.raises(DagError, match="template syntax error"):
        _dag(x="{{ ds ", y=1)
    with pytest.raises(DagError, match="unknown template variable 'yesterday_ds'"):
        _dag(x="{{ yesterday_ds }}", y=1)


def test_a_template_failing_at_compile_names_dag_task_and_place() -> None:
    dag = _dag(x="on {{ params.region.missing }}", y=1)
    with pytest.raises(DagError, match=r"DAG 'report': task 'add' kwargs.x: UndefinedError"):
        dag.compile("r")


def test_dag_validate_locates_template_problems(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        "dag_id: t\n"
        "params: {region: {default: eu}}\n"
        "tasks:\n"
        "  a:\n"
        "    callable: 'tests.unit.sample_tasks:add'\n"
        "    args: [1, '{{ ds }} {{ tomorrow }}']\n"
        "    kwargs:\n"
        "      y: '{% if ds %}'\n"
    )
    found = validate_dag_file(file, ["tests"])
    assert [(p.line, p.column, p.pointer) for p in found] == [
        (6, 15, "/tasks/a/args/1"),
        (8, 7, "/tasks/a/kwargs/y"),
    ]
    assert "unknown template variable 'tomorrow'" in found[0].message
    assert "template syntax error" in found[1].message
    assert str(found[0]).startswith(f"{file}:6:15")
