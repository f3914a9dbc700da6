"""Tenant policies obeyed by real worker processes: weighted shares, a cap across two
workers, a rate limit, and fairness by worker time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import redis

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.models import TaskRecord
from tests.integration.procs import CounterSampler, Procs
from tests.timing import budget, wait_until

pytestmark = pytest.mark.slow

JOBS = "tests.integration.jobs"
STARTUP = 60.0


def _config_file(tmp_path: Path, workers: list[tuple[str, int]], fairness: str = "count") -> Path:
    lines = ["workers:"]
    for worker_id, slots in workers:
        lines += [
            f"  - id: {worker_id}",
            '    assigned_users: ["*"]',
            "    poll_interval_seconds: 0.1",
            f"    max_concurrent_tasks: {slots}",
        ]
    lines += ["queue:", f"  fairness: {fairness}"]
    path = tmp_path / "fairque.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(procs: Procs, path: Path, *worker_ids: str) -> None:
    for worker_id in worker_ids:
        procs.worker(worker_id, "--config", str(path))


def _tasks(user: str, count: int, func: str = "noop", **kwargs: object) -> list[Task]:
    return [Task.create(user, func=f"{JOBS}:{func}", kwargs=dict(kwargs)) for _ in range(count)]


def _records(queue: TaskQueue, ids: list[str]) -> list[TaskRecord]:
    records = queue.run_pipeline(queue.calls.task_records(ids))
    return [r for r in records if r is not None]


def _wait_done(queue: TaskQueue, procs: Procs, ids: list[str], timeout: float) -> None:
    def done() -> bool:
        states = queue.run_pipeline(queue.calls.states(ids))
        return all(s is not None and not s.is_active for s in states.values())

    wait_until(done, timeout, lambda: f"{len(ids)} tasks to end{procs.tails()}")


def test_weights_1_2_3_on_two_workers(procs: Procs, tmp_path: Path, redis_url: str) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    weights = {"w1": 1, "w2": 2, "w3": 3}
    for user, weight in weights.items():
        queue.set_tenant_policy(user, weight=weight)
    ids = [r for user in weights for r in queue.push_batch(_tasks(user, 400))["task_ids"]]
    _start(procs, _config_file(tmp_path, [("a", 4), ("b", 4)]), "a", "b")
    _wait_done(queue, procs, ids, budget(STARTUP))
    order = sorted(_records(queue, ids), key=lambda r: r.claim_token)
    first = Counter(r.user_id for r in order[:600])  # all three still backlogged
    for user, weight in weights.items():
        assert abs(first[user] / 600 - weight / 6) <= 0.03, first
    queue.close()


def test_a_cap_of_2_holds_across_two_workers_of_8(
    procs: Procs, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    queue.set_tenant_policy("capped", max_running=2)
    capped = queue.push_batch(_tasks("capped", 30, "sleep_then", seconds=0.1))["task_ids"]
    free = queue.push_batch(_tasks("free", 300, "sleep_then", seconds=0.005))["task_ids"]
    with CounterSampler(redis_client, queue.keys.stats, "started capped") as sampler:
        _start(procs, _config_file(tmp_path, [("a", 8), ("b", 8)]), "a", "b")
        _wait_done(queue, procs, capped + free, budget(STARTUP))
    assert max(sampler.samples) == 2, Counter(sampler.samples)
    # The free tenant used the other 14 slots meanwhile: it ended before the capped one,
    # which needs 15 rounds of 0.1 s.
    records = _records(queue, capped + free)
    free_end = max(r.finished_at or 0 for r in records if r.user_id == "free")
    capped_end = max(r.finished_at or 0 for r in records if r.user_id == "capped")
    assert free_end < capped_end, (free_end, capped_end)
    assert int(redis_client.hget(queue.keys.stats, "started capped") or 0) == 0
    queue.close()


def test_a_rate_of_20_per_second_while_another_tenant_runs_unthrottled(
    procs: Procs, tmp_path: Path, redis_url: str
) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    queue.set_tenant_policy("limited", rate="20/s")
    limited = queue.push_batch(_tasks("limited", 40))["task_ids"]
    free = queue.push_batch(_tasks("free", 300))["task_ids"]
    _start(procs, _config_file(tmp_path, [("a", 4), ("b", 4)]), "a", "b")
    _wait_done(queue, procs, limited + free, budget(STARTUP))
    records = _records(queue, limited + free)
    starts = sorted(r.started_at or 0 for r in records if r.user_id == "limited")
    assert starts[-1] - starts[0] >= 39 / 20 * 0.95  # 39 intervals of 50 ms at least
    assert starts[-1] - starts[0] <= budget(39 / 20 + 1.5)  # and no long stalls
    free_end = max(r.finished_at or 0 for r in records if r.user_id == "free")
    assert free_end < starts[-1]  # the other tenant was not held back
    queue.close()


def test_time_fairness_shares_worker_seconds(procs: Procs, tmp_path: Path, redis_url: str) -> None:
    config = FairQueueConfig.create_default(redis=redis_url)
    config.queue.fairness = "time"
    queue = TaskQueue(config)
    long_ids = queue.push_batch(_tasks("long", 60, "sleep_then", seconds=0.3))["task_ids"]
    short_ids = queue.push_batch(_tasks("short", 2000, "sleep_then", seconds=0.01))["task_ids"]
    _start(procs, _config_file(tmp_path, [("a", 4)], fairness="time"), "a")

    def started(ids: list[str]) -> int:
        states = queue.run_pipeline(queue.calls.states(ids))
        return sum(1 for s in states.values() if s is not None and s.value != "queued")

    wait_until(lambda: started(long_ids) >= 25, budget(STARTUP), lambda: procs.tails())
    records = _records(queue, long_ids + short_ids)
    ended = [r for r in records if r.duration is not None and r.started_at is not None]
    first = min(r.started_at or 0 for r in ended)
    last_long = max(r.started_at or 0 for r in ended if r.user_id == "long")
    window = [r for r in ended if (r.started_at or 0) <= last_long - 0.3]
    assert window and first < last_long
    work = Counter()
    for r in window:
        work[r.user_id] += r.duration or 0.0
    share = work["long"] / (work["long"] + work["short"])
    assert 0.4 <= share <= 0.6, (work, len(window))
    queue.close()
