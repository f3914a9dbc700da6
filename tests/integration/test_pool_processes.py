"""Pools and a DAG's max_active_tasks obeyed by real worker processes: at most that many
tasks run at once across two workers of 8, sampled every 10 ms, while other work is
served meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.models import TaskRecord, TaskState
from fairque.dag.loader import load_dag_file
from fairque.dag.runs import trigger
from tests.integration.procs import CounterSampler, Procs
from tests.timing import budget, wait_until

pytestmark = pytest.mark.slow

JOBS = "tests.integration.jobs"
STARTUP = 60.0


def _most_at_once(records: list[TaskRecord]) -> int:
    """The most runs overlapping in time, from their start and end (server clock)."""
    edges = sorted(
        [(r.started_at or 0, 1) for r in records] + [(r.finished_at or 0, -1) for r in records],
        key=lambda e: (e[0], e[1]),
    )
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _run_two_workers_of_8(
    procs: Procs,
    queue: TaskQueue,
    redis_client: redis.Redis,
    gate: str,
    gated_ids: list[str],
    free_ids: list[str],
) -> list[TaskRecord]:
    """Run every task on two workers of 8 slots while sampling the started tasks of
    ``gate`` (a pool, or ``dag=<id>``) every 10 ms; check that at most 2 ran at once (by
    the samples and by the records' times) and that the free tasks were served meanwhile.
    Returns the gated tasks' records."""

    def all_ended() -> bool:
        states = queue.run_pipeline(queue.calls.states(gated_ids + free_ids))
        return all(s is not None and not s.is_active for s in states.values())

    with CounterSampler(redis_client, queue.keys.pools_running, gate) as sampler:
        procs.worker("a", "-c", "8")
        procs.worker("b", "-c", "8")
        wait_until(all_ended, budget(STARTUP), procs.tails)
    assert max(sampler.samples) == 2, sorted(set(sampler.samples))
    records = [r for r in queue.run_pipeline(queue.calls.task_records(gated_ids)) if r]
    assert all(r.state is TaskState.FINISHED for r in records)
    assert _most_at_once(records) <= 2
    # The other 14 slots served the free tenant meanwhile: it ended before the gated
    # tasks, which need many rounds of 0.1 s.
    free_records = [r for r in queue.run_pipeline(queue.calls.task_records(free_ids)) if r]
    assert max(r.finished_at or 0 for r in free_records) < max(r.finished_at or 0 for r in records)
    assert int(redis_client.hget(queue.keys.pools_running, gate) or 0) == 0
    return records


def test_a_pool_of_2_holds_across_two_workers_of_8(
    procs: Procs, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    queue.set_pool("gpu", 2)
    pooled = [
        Task.create(u, func=f"{JOBS}:sleep_then", kwargs={"seconds": 0.1}, pool="gpu")
        for u in ("a", "b", "c")
        for _ in range(10)
    ]
    free = [
        Task.create("free", func=f"{JOBS}:sleep_then", kwargs={"seconds": 0.005})
        for _ in range(300)
    ]
    pooled_ids = queue.push_batch(pooled)["task_ids"]
    free_ids = queue.push_batch(free)["task_ids"]

    records = _run_two_workers_of_8(procs, queue, redis_client, "gpu", pooled_ids, free_ids)
    # Shared fairly among tenants: each got some of the first six pool starts.
    first_six = sorted(records, key=lambda r: r.started_at or 0)[:6]
    assert {r.user_id for r in first_six} == {"a", "b", "c"}
    queue.close()


def test_a_dags_max_active_tasks_holds_across_two_workers_of_8(
    procs: Procs, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    tasks = "\n".join(
        f"  t{i}:\n    callable: {JOBS}:sleep_then\n    kwargs: {{seconds: 0.1}}" for i in range(12)
    )
    path = tmp_path / "wide.yaml"
    path.write_text(f"dag_id: wide\nmax_active_tasks: 2\ntasks:\n{tasks}\n")
    (dag,) = load_dag_file(path).dags
    queue = TaskQueue(FairQueueConfig.create_default(redis=redis_url))
    runs = [trigger(queue, dag, run_id=f"wide__{i}") for i in range(2)]
    dag_ids = [task_id for run in runs for task_id in run.task_ids.values()]
    free = [
        Task.create("free", func=f"{JOBS}:sleep_then", kwargs={"seconds": 0.005})
        for _ in range(300)
    ]
    free_ids = queue.push_batch(free)["task_ids"]

    records = _run_two_workers_of_8(procs, queue, redis_client, "dag=wide", dag_ids, free_ids)
    assert len(records) == 24
    queue.close()
