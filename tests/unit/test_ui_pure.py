"""The dashboard's pure parts: the trigger form's conf, paging, charts, host rules."""

from __future__ import annotations

from typing import Any

import pytest

from fairque.core.errors import DagConfError, FairQueueError
from fairque.dag.model import DAG, ParamSpec
from fairque.tasks.decorators import task
from fairque.ui.actions import conf_from_form
from fairque.ui.charts import Samples, line_chart
from fairque.ui.data import BadQueryError, Page, TenantQuery
from fairque.ui.security import is_loopback, session_value


@task(task_id="step")
def step() -> None:
    """A step of the test DAG."""


def _dag() -> DAG:
    params = {
        "name": ParamSpec("string", default="x"),
        "n": ParamSpec("integer", default=1),
        "ratio": ParamSpec("number", default=0.5),
        "flag": ParamSpec("boolean", default=False),
        "mode": ParamSpec("integer", default=1, enum=(1, 2)),
        "tags": ParamSpec("array", default=[]),
    }
    return DAG(dag_id="d", pipeline=step(), params=params)


def test_form_fields_are_converted_by_the_param_type() -> None:
    form: dict[str, Any] = {
        "param.name": "ann",
        "param.n": "3",
        "param.ratio": "2.5",
        "param.flag": "true",
        "param.mode": "2",
        "param.tags": '["a"]',
    }
    conf = conf_from_form(_dag(), form)
    assert conf == {"name": "ann", "n": 3, "ratio": 2.5, "flag": True, "mode": 2, "tags": ["a"]}
    assert _dag().check_conf(conf)["n"] == 3


def test_empty_fields_keep_the_defaults_and_bad_values_reach_check_conf() -> None:
    dag = _dag()
    assert conf_from_form(dag, {"param.n": "", "conf": ""}) is None
    conf = conf_from_form(dag, {"param.n": "three"})
    with pytest.raises(DagConfError, match="must be an integer"):
        dag.check_conf(conf)
    assert conf_from_form(dag, {"conf": '{"name": "z"}', "param.n": "2"}) == {"name": "z", "n": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "--conf is not valid JSON"), ("[1]", "--conf must be a JSON object")],
)
def test_bad_conf_json_is_refused_as_by_the_cli(text: str, message: str) -> None:
    with pytest.raises(FairQueueError, match=message):
        conf_from_form(_dag(), {"conf": text})


def test_paging_and_queries_refuse_bad_values() -> None:
    assert Page.parse(None, None) == Page(1, 50)
    assert Page.parse("3", "10").offset == 20
    assert Page(2, 10).info(25) == {"page": 2, "per_page": 10, "total": 25, "pages": 3}
    for number, size in (("0", None), ("x", None), (None, "501"), (None, "-1")):
        with pytest.raises(BadQueryError):
            Page.parse(number, size)
    with pytest.raises(BadQueryError, match="sort must be one of"):
        TenantQuery(sort="age")


def test_chart_points_scale_into_the_box_and_samples_are_bounded() -> None:
    chart = line_chart([0.0, 5.0, 10.0], width=100, height=20)
    assert chart.points == "0.0,18.0 50.0,10.0 100.0,2.0"
    assert chart.peak == 10.0 and chart.latest == 10.0
    assert line_chart([]).points == ""
    samples = Samples(maxlen=3, every=1.0)
    for t in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0):
        samples.record({"server_time": t, "throughput_per_second": t, "oldest_queued_age": None})
    assert [s.at for s in samples.snapshot()] == [2.0, 3.0, 4.0]


def test_loopback_and_session_rules() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", ""))
    assert session_value("s3cret") != session_value("other")
    assert "s3cret" not in session_value("s3cret")
