"""Tenant policies through the queue API: weights, caps, rates, the default policy,
live changes and bad values (in-process pops; real worker processes: tests/integration/
test_tenant_processes.py)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from fairque import Task, TaskQueue
from fairque.core.tenants import TenantPolicyError
from tests.timing import budget, wait_until

from .conftest import QueueFactory

pytestmark = pytest.mark.both_queues


def _push(queue: TaskQueue, user: str, count: int) -> None:
    queue.push_batch([Task.create(user, payload={"n": i}) for i in range(count)])


def test_weights_share_claims_in_proportion(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    for user, weight in (("w1", 1), ("w2", 2), ("w3", 3)):
        queue.set_tenant_policy(user, weight=weight)
        _push(queue, user, 1200)
    served = [t.user_id for t in queue.pop_many(1200)]
    served += [t.user_id for t in queue.pop_many(600)]
    for start in (0, 300, 600):  # any window of 1,200 claims (all backlogged)
        counts = Counter(served[start : start + 1200])
        for user, weight in (("w1", 1), ("w2", 2), ("w3", 3)):
            assert abs(counts[user] / 1200 - weight / 6) <= 0.03, (start, counts)


def test_default_policy_is_plain_round_robin(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("b", weight=1)  # an explicit weight of 1 changes nothing
    for user in ("a", "b", "c"):
        _push(queue, user, 20)
    served = [t.user_id for t in queue.pop_many(30)]
    for window in range(0, 30, 3):
        assert sorted(served[window : window + 3]) == ["a", "b", "c"]


def test_a_capped_tenant_never_runs_more_and_others_are_served(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("capped", max_running=2)
    _push(queue, "capped", 10)
    _push(queue, "free", 10)
    first = queue.pop_many(8)
    by_user = Counter(t.user_id for t in first)
    assert by_user == {"capped": 2, "free": 6}
    assert queue.pop_many(4) == [] or all(t.user_id == "free" for t in queue.pop_many(4))
    # Ending one of its tasks lets it back at once, for exactly one more.
    queue.finish(next(t for t in first if t.user_id == "capped"))
    again = queue.pop_many(3)
    assert [t.user_id for t in again].count("capped") == 1
    listed = {t["user_id"]: t for t in queue.list_tenants()["tenants"]}
    assert listed["capped"]["running"] == 2 and listed["capped"]["max_running"] == 2
    assert listed["capped"]["parked"] == ["capped"]


def test_requeue_fail_and_delete_free_the_slot(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("t", max_running=1)
    _push(queue, "t", 5)
    (task,) = queue.pop_many(3)
    queue.requeue(task)
    (task,) = queue.pop_many(3)
    queue.fail(task, RuntimeError("boom"))  # retried later: the slot is free now
    (task,) = queue.pop_many(3)
    queue.delete_task(task.task_id)
    (task,) = queue.pop_many(3)
    assert task.user_id == "t"
    assert queue.pop_many(3) == []


def test_raising_a_cap_lets_a_parked_tenant_back_at_once(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("t", max_running=0)  # 0: paused
    _push(queue, "t", 5)
    assert queue.pop_many(5) == []
    policy = queue.set_tenant_policy("t", max_running=3)
    assert policy.max_running == 3 and policy.own == ("max_running",)
    assert len(queue.pop_many(5)) == 3
    queue.unset_tenant_policy("t")
    assert len(queue.pop_many(5)) == 2


def test_the_default_policy_applies_to_tenants_without_their_own(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("*", max_running=1)
    queue.set_tenant_policy("vip", max_running="unlimited")
    for user in ("a", "b", "vip"):
        _push(queue, user, 4)
    by_user = Counter(t.user_id for t in queue.pop_many(12))
    assert by_user == {"a": 1, "b": 1, "vip": 4}
    assert queue.get_tenant_policy("a").max_running == 1
    assert queue.get_tenant_policy("vip").max_running is None
    queue.unset_tenant_policy("*")  # parked tenants are checked again at once
    assert Counter(t.user_id for t in queue.pop_many(12)) == {"a": 3, "b": 3}


def test_a_rate_limited_tenant_waits_for_its_tokens(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    queue.set_tenant_policy("slow", rate="5/s", burst=2)
    _push(queue, "slow", 20)
    _push(queue, "fast", 8)
    first = Counter(t.user_id for t in queue.pop_many(10))
    assert first == {"slow": 2, "fast": 8}  # the burst, then other tenants are served
    started = time.monotonic()
    got = wait_until(lambda: queue.pop_many(1), budget(3), "the next token")
    assert got[0].user_id == "slow"
    elapsed = time.monotonic() - started
    assert elapsed >= 0.1  # a token every 200 ms (the first came due ~200 ms after the burst)
    listed = {t["user_id"]: t for t in queue.list_tenants()["tenants"]}
    assert listed["slow"]["rate"] == 5.0 and listed["slow"]["tokens"] is not None


def test_policy_read_back_and_list(make_queue: QueueFactory) -> None:
    queue = make_queue(assigned_users=["*"])
    policy = queue.set_tenant_policy("acme", weight=3, max_running=5, rate="120/m", burst=4)
    assert (policy.weight, policy.max_running, policy.rate, policy.burst) == (3.0, 5, 2.0, 4)
    assert queue.get_tenant_policy("nobody").as_dict()["weight"] == 1.0
    _push(queue, "acme", 3)
    _push(queue, "other", 3)
    queue.pop_many(4)
    listing = queue.list_tenants()
    assert listing["total"] == 2 and [t["user_id"] for t in listing["tenants"]] == ["acme", "other"]
    acme = listing["tenants"][0]
    assert acme["served_last_minute"] == pytest.approx(3, abs=0.01)  # weight 3 vs 1
    assert acme["fair_share"] == pytest.approx(0.75)
    assert 0 < listing["jain_index"] <= 1
    page = queue.list_tenants(offset=1, limit=1)
    assert [t["user_id"] for t in page["tenants"]] == ["other"] and page["total"] == 2
    assert queue.unset_tenant_policy("acme", "rate").rate is None


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"weight": 0}, "weight"),
        ({"weight": -1}, "weight"),
        ({"weight": "heavy"}, "weight"),
        ({"max_running": -1}, "max_running"),
        ({"max_running": 1.5}, "max_running"),
        ({"rate": 0}, "rate"),
        ({"rate": "fast"}, "20/s"),
        ({"rate": "10/d"}, "rate"),
        ({"burst": 0}, "burst"),
        ({"burst": "unlimited"}, "burst"),
        ({}, "at least one"),
    ],
)
def test_bad_policy_values_are_refused(
    make_queue: QueueFactory, redis_client: redis.Redis, settings: dict[str, object], words: str
) -> None:
    queue = make_queue()
    with pytest.raises(TenantPolicyError, match=words):
        queue.set_tenant_policy("t", **settings)  # type: ignore[arg-type]
    assert redis_client.exists(queue.keys.tenant("t")) == 0


def test_bad_tenant_ids_and_fields_are_refused(make_queue: QueueFactory) -> None:
    queue = make_queue()
    with pytest.raises(ValueError, match="whitespace"):
        queue.set_tenant_policy("a b", weight=2)
    with pytest.raises(TenantPolicyError, match="not a policy field"):
        queue.unset_tenant_policy("a", "colour")
    with pytest.raises(ValueError, match="offset"):
        queue.list_tenants(offset=-1)
