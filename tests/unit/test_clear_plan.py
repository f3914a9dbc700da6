"""clear_plan: which tasks of a run clear_run puts back (pure, no Redis)."""

from __future__ import annotations

import json

import pytest

from fairque.core.errors import ClearError
from fairque.core.models import TaskRecord
from fairque.queue.clearing import clear_plan
from fairque.queue.runs import RunInfo

UPSTREAM_FAILED = json.dumps({"type": "UpstreamFailed", "message": "", "traceback": ""})


def _run(**tasks: tuple[str, list[str], str | None]) -> RunInfo:
    """A run "r" whose tasks are given as name=(state, upstream names, error JSON)."""
    ids = {name: f"r:{name}" for name in tasks}
    records: dict[str, TaskRecord | None] = {}
    for name, (state, ups, error) in tasks.items():
        raw = {
            "user_id": "u",
            "state": state,
            "depends_on": json.dumps([ids[u] for u in ups]),
        }
        if error:
            raw["error"] = error
        records[name] = TaskRecord.from_hash(raw, ids[name])
    return RunInfo(run_id="r", task_ids=ids, tasks=records)


def test_by_default_failed_and_upstream_canceled_tasks_and_their_downstream() -> None:
    info = _run(
        a=("finished", [], None),
        b=("failed", ["a"], None),
        c=("canceled", ["b"], UPSTREAM_FAILED),
        d=("canceled", [], json.dumps({"type": "Canceled", "message": "", "traceback": ""})),
        e=("deferred", ["c", "f"], None),
        f=("started", [], None),
    )
    plan = clear_plan(info)
    assert plan.names == ["b", "c", "e"]  # upstreams first; d was canceled by hand
    assert plan.tasks[0] == ("r:b", ["r:a"])
    assert clear_plan(info, downstream=False).names == ["b", "c"]


def test_named_tasks_may_be_finished_ones_and_bring_their_downstream() -> None:
    info = _run(a=("finished", [], None), b=("finished", ["a"], None))
    assert clear_plan(info, ["a"]).names == ["a", "b"]
    assert clear_plan(info, ["a"], downstream=False).names == ["a"]


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (None, "no failed or upstream-canceled task"),
        (["x"], "no task named 'x'"),
        (["s"], "task 's' is started"),
    ],
)
def test_refusals(tasks: list[str] | None, message: str) -> None:
    info = _run(a=("finished", [], None), s=("started", [], None))
    with pytest.raises(ClearError, match=message):
        clear_plan(info, tasks)
