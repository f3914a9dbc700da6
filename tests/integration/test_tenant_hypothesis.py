"""Random tenant policy changes while tasks are claimed, ended and handed back never
let a tenant start a task at its cap, and never lose a task (Hypothesis)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.models import TaskRecord, TaskState

USERS = ("a", "b", "c")
caps = st.one_of(st.none(), st.integers(0, 3), st.just("unlimited"))
policy_change = st.tuples(
    st.just("set"),
    st.sampled_from((*USERS, "*")),
    st.one_of(st.none(), st.sampled_from((0.5, 1, 3))),
    caps,
    st.one_of(st.none(), st.sampled_from(("1000/s", "unlimited", "50/s"))),
)
operation = st.one_of(
    policy_change,
    st.tuples(st.just("unset"), st.sampled_from((*USERS, "*"))),
    st.tuples(st.just("push"), st.sampled_from(USERS), st.integers(1, 4)),
    st.tuples(st.just("pop"), st.integers(1, 5)),
    st.tuples(st.just("end"), st.integers(0, 10), st.sampled_from(("finish", "fail", "requeue"))),
)


@pytest.fixture
def tenant_queue(redis_url: str) -> TaskQueue:
    return TaskQueue(FairQueueConfig.create_default(redis=redis_url, default_max_retries=0))


def _running(client: redis.Redis, queue: TaskQueue, user: str) -> int:
    return int(client.hget(queue.keys.stats, f"started {user}") or 0)


class Run:
    """Applies operations, checking the cap at every claim."""

    def __init__(self, queue: TaskQueue, client: redis.Redis) -> None:
        self.queue, self.client = queue, client
        self.pushed: list[str] = []
        self.held: list[TaskRecord] = []

    def apply(self, op: tuple[Any, ...]) -> None:
        queue = self.queue
        if op[0] == "set" and any(v is not None for v in op[2:]):
            queue.set_tenant_policy(op[1], weight=op[2], max_running=op[3], rate=op[4])
        elif op[0] == "unset":
            queue.unset_tenant_policy(op[1])
        elif op[0] == "push":
            self.pushed += queue.push_batch([Task.create(op[1]) for _ in range(op[2])])["task_ids"]
        elif op[0] == "pop":
            self.pop(op[1])
        elif op[0] == "end" and self.held:
            self.end(self.held.pop(op[1] % len(self.held)), op[2])

    def pop(self, count: int) -> None:
        before = {u: _running(self.client, self.queue, u) for u in USERS}
        caps_now = {u: self.queue.get_tenant_policy(u).max_running for u in USERS}
        claimed = self.queue.pop_many(count)
        self.held += claimed
        for user, n in Counter(t.user_id for t in claimed).items():
            cap = caps_now[user]
            assert cap is None or before[user] + n <= cap, (user, before, n, cap)

    def end(self, task: TaskRecord, how: str) -> None:
        if how == "finish":
            self.queue.finish(task)
        elif how == "fail":
            self.queue.fail(task, RuntimeError("x"))
        else:
            self.queue.requeue(task)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operation, max_size=30))
def test_random_policy_changes_never_break_a_cap_or_lose_a_task(
    tenant_queue: TaskQueue, redis_client: redis.Redis, ops: list[tuple[Any, ...]]
) -> None:
    redis_client.flushdb()
    run = Run(tenant_queue, redis_client)
    for op in ops:
        run.apply(op)
    queue = tenant_queue
    for task in run.held:
        queue.finish(task)
    for user in (*USERS, "*"):
        queue.unset_tenant_policy(user)
    while claimed := queue.pop_many(10):
        for task in claimed:
            queue.finish(task)
    states = queue.run_pipeline(queue.calls.states(run.pushed))
    assert all(s in (TaskState.FINISHED, TaskState.FAILED) for s in states.values()), states
    assert all(_running(redis_client, queue, u) == 0 for u in USERS)
