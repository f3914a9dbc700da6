"""A tenant's cap and a pool's slots across worker crashes: a reclaimed task frees its
slot exactly once."""

from __future__ import annotations

import time

import pytest
import redis

from fairque import Task, TaskQueue
from fairque.core.models import TaskState
from tests.faults.conftest import Figures
from tests.integration.procs import CounterSampler, Procs
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

JOBS = "tests.integration.jobs"
LEASE = 1.0


def _kill_one_holding_the_slot(
    procs: Procs,
    queue: TaskQueue,
    redis_client: redis.Redis,
    figures: Figures,
    tasks: list[Task],
    counter: tuple[str, str],
) -> None:
    """Run ``tasks`` (limited to one running at once; ``counter`` is the hash field
    counting them) on a worker killed while it holds the slot, then on a second worker:
    the count never goes above one, comes back to zero, and one task was recovered."""
    ids = queue.push_batch(tasks)["task_ids"]
    lease = ("--lease-seconds", str(LEASE), "--concurrency", "4")

    def all_finished() -> bool:
        states = queue.run_pipeline(queue.calls.states(ids)).values()
        return all(s is TaskState.FINISHED for s in states)

    with CounterSampler(redis_client, *counter) as sampler:
        running = sampler.samples
        first = procs.worker("slot-a", *lease)
        wait_until(lambda: 1 in running, budget(60), lambda: f"a start{procs.tails()}")
        first.kill_group()  # its task stays STARTED, holding the slot, until its lease expires
        killed_at = time.monotonic()
        procs.worker("slot-b", *lease)
        wait_until(all_finished, budget(60), lambda: f"every task to finish{procs.tails()}")
    assert max(running) == 1 and min(running) == 0, sorted(set(running))
    assert int(redis_client.hget(*counter) or 0) == 0
    records = queue.run_pipeline(queue.calls.task_records(ids))
    assert sum(r.recoveries for r in records if r is not None) == 1
    figures(tasks=len(ids), kills=1, seconds=round(time.monotonic() - killed_at, 2))


def test_a_killed_workers_capped_task_frees_its_slot_once(
    procs: Procs, queue: TaskQueue, redis_client: redis.Redis, figures: Figures
) -> None:
    queue.set_tenant_policy("capped", max_running=1)
    tasks = [
        Task.create("capped", func=f"{JOBS}:sleep_then", kwargs={"seconds": 0.3}) for _ in range(6)
    ]
    counter = (queue.keys.stats, "started capped")
    _kill_one_holding_the_slot(procs, queue, redis_client, figures, tasks, counter)


def test_a_killed_workers_pool_task_frees_its_slot_once(
    procs: Procs, queue: TaskQueue, redis_client: redis.Redis, figures: Figures
) -> None:
    queue.set_pool("gpu", 1)
    tasks = [
        Task.create(user, func=f"{JOBS}:sleep_then", kwargs={"seconds": 0.3}, pool="gpu")
        for user in ("a", "b", "a", "b", "a", "b")
    ]
    counter = (queue.keys.pools_running, "gpu")
    _kill_one_holding_the_slot(procs, queue, redis_client, figures, tasks, counter)
