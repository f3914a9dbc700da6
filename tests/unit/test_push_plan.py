"""PushPlan: how a push is weighed and cut into steps (pure, no Redis; see stage.lua)."""

from __future__ import annotations

import pytest

from fairque import FairQueueConfig, Task
from fairque.queue.calls import LINKS_PER_WRITE, PushPlan, QueueCalls


def _plan(tasks: list[Task]) -> PushPlan:
    return QueueCalls(FairQueueConfig.create_default(redis="redis://localhost:6379/0")).plan_push(
        tasks
    )


def _upstreams(part: list[object]) -> list[object]:
    count = int(str(part[3]))
    return part[4 : 4 + count]


def test_a_plan_weighs_a_task_each_and_ten_links_as_one() -> None:
    ups = [Task.create("u", task_id=f"up{i}") for i in range(25)]
    join = Task.create("u", task_id="join", depends_on=[t.task_id for t in ups])
    assert _plan(ups).weight() == 25
    assert _plan([*ups, join]).weight() == 25 + 1 + 25 // LINKS_PER_WRITE


@pytest.mark.parametrize("step_size", [1, 2, 3, 7, 100])
def test_steps_keep_every_part_in_order_and_within_the_step(step_size: int) -> None:
    ups = [Task.create("u", task_id=f"up{i}") for i in range(40)]
    join = Task.create("u", task_id="join", depends_on=[t.task_id for t in ups])
    plan = _plan([*ups, join])
    steps = plan.steps(step_size)
    parts = [part for step in steps for part in step]
    assert [index for index, _ in parts][:40] == list(range(40))  # the upstreams first
    joined = [args for index, args in parts if index == 40]
    assert [u for args in joined for u in _upstreams(args)] == [t.task_id for t in ups]
    assert joined[0][-1] != -1 and all(args[-1] == -1 for args in joined[1:])  # fields once
    for step in steps:
        cost = sum(1 + len(_upstreams(args)) // LINKS_PER_WRITE for _, args in step)
        assert step and (cost <= step_size or len(step) == 1)


def test_a_task_without_upstreams_is_one_part() -> None:
    plan = _plan([Task.create("u", task_id="solo")])
    assert plan.steps(1) == [[(0, plan.task_args[0])]]
