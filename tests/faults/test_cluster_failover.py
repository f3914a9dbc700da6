"""A Redis Cluster failover under load: the master serving fairque's hash slot is killed
(SIGKILL) with tasks queued and running; its replica takes over; the workers (one sync,
one async process), the scheduler process and the producer carry on through
``redis+cluster://``; the killed node is started again and rejoins as the new master's
replica.

Every push was acknowledged with ``durability: replicated`` (FAIRQUE_DURABILITY, which
the worker processes inherit), so every task finishes; each task logs its executions to
a file, and none ran more often than once plus its recorded lease reclaims.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.scheduler.scheduler import TaskScheduler
from tests.cluster_group import ClusterGroup
from tests.faults.conftest import Figures
from tests.faults.tally import finished_count, tally
from tests.faults.test_sentinel_failover import (
    AFTER,
    BEFORE,
    LEASE,
    all_finished,
    answers,
    fired_after,
    mark_tasks,
    push_through_failover,
)
from tests.integration.procs import CLI, Procs, read_runs
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.mark.timeout(budget(150))
def test_slot_master_killed_under_load_replicated_tasks_all_finish_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    started = time.monotonic()
    monkeypatch.setenv("FAIRQUE_DURABILITY", "replicated")
    log = tmp_path / "runs.log"
    with ClusterGroup(tmp_path / "cluster") as group:
        procs = Procs(tmp_path, group.url)
        config = FairQueueConfig.create_default(redis=group.url)
        try:
            with TaskQueue(config) as queue:
                scheduler = TaskScheduler(config)
                try:
                    tick = Task.create("system", task_id="tick", func="tests.integration.jobs:noop")
                    scheduler.add_schedule("* * * * * *", tick, schedule_id="every-second")
                finally:
                    scheduler.close()
                before = mark_tasks(log, "b", BEFORE)
                queue.push_batch(before)  # replicated: on the replica when this returns

                options = ["--lease-seconds", str(LEASE), "--concurrency", "4"]
                options += ["--max-recoveries", "1000"]
                procs.worker("failover-sync", *options)
                procs.worker("failover-async", *options, "--async")
                procs.start("scheduler", [*CLI, "scheduler", "--no-dags", "--redis-url", group.url])
                wait_until(
                    lambda: finished_count(queue) >= BEFORE // 4,
                    90,
                    lambda: f"a quarter of the tasks to finish{procs.tails()}",
                )
                running = len(queue.redis.zrange(queue.keys.state("started"), 0, -1))

                old_master = group.fairque_master()
                assert old_master is not None
                killed_at = time.monotonic()
                group.kill(old_master)
                new_master = group.wait_failover(old_master, 30)
                failover = time.monotonic() - killed_at
                promoted_at = time.time()
                group.restart(old_master)  # it rejoins as the new master's replica
                wait_until(lambda: group.replicas_of(new_master) >= 1, 30, "a replica to rejoin")

                after = mark_tasks(log, "a", AFTER)
                push_through_failover(queue, after)
                tasks = before + after
                ids = [t.task_id for t in tasks]
                wait_until(
                    lambda: answers(lambda: all_finished(queue, ids)),
                    60,
                    lambda: f"every task to finish{procs.tails()}",
                )
                wait_until(
                    lambda: answers(lambda: fired_after(queue, promoted_at + 1)),
                    30,
                    lambda: f"the scheduler to fire after the failover{procs.tails()}",
                )
                runs = Counter(token for token, _ in read_runs(log))
                result = tally(queue, tasks, runs)
                alive = [p.name for p in procs.started if p.alive()]
        finally:
            procs.kill_all()
    figures(
        tasks=len(tasks),
        running_at_kill=running,
        failover_seconds=failover,
        executions=result.executions,
        reclaims=result.reclaims,
        ran_more_than_once=result.ran_more_than_once,
        seconds=time.monotonic() - started,
    )
    assert result.problems == [], result.problems[:20]
    assert running > 0, "the kill landed when no task was running"
    assert alive == ["failover-sync", "failover-async", "scheduler"]
    assert set(runs) == {t.task_id for t in tasks}
