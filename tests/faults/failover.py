"""The load both failover tests put on a server group, and what they check after.

:func:`failover_under_load` pushes tasks with ``durability: replicated``, starts a sync
and an async worker process and a scheduler process, calls ``fail_over`` (which kills
the master and waits for a replica to take over) while tasks are queued and running,
pushes more, and checks that every task ended once (plus recorded lease reclaims), that
the scheduler fired after the failover and that every process lived through it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import DuplicateTaskError, RedisUnavailableError
from fairque.scheduler.scheduler import TaskScheduler
from tests.faults.conftest import Figures
from tests.faults.tally import finished_count, tally
from tests.integration.procs import CLI, Procs, read_runs
from tests.timing import budget, wait_until

BEFORE, AFTER, TENANTS = 120, 30, 6  # tasks pushed before the kill, and after the failover
TASK_SECONDS = 0.2  # each task's run, so that the kill lands in the middle of tasks
LEASE = budget(10.0)  # seconds: longer than a failover, so running tasks keep their lease


def mark_tasks(log: Path, prefix: str, count: int) -> list[Task]:
    return [
        Task.create(
            f"tenant-{n % TENANTS}",
            task_id=f"{prefix}{n:03d}",
            func="tests.integration.jobs:mark",
            args=[str(log), f"{prefix}{n:03d}", TASK_SECONDS],
            max_retries=1000,
        )
        for n in range(count)
    ]


def answers(check: Callable[[], object]) -> object:
    """``check()``, or None while the queue cannot reach a master (during the failover)."""
    try:
        return check()
    except RedisUnavailableError:
        return None


def push_through_failover(queue: TaskQueue, tasks: list[Task]) -> None:
    """Push ``tasks`` (all or none), retrying while no master answers; a batch written by
    an attempt whose reply was lost is there already (DuplicateTaskError)."""

    def pushed() -> bool:
        try:
            queue.push_batch(tasks)
        except DuplicateTaskError:
            return True
        except RedisUnavailableError:
            return False
        return True

    wait_until(pushed, 30, "a push after the failover")


def all_finished(queue: TaskQueue, ids: list[str]) -> bool:
    states = queue.run_pipeline(queue.calls.states(ids))
    return all(state is TaskState.FINISHED for state in states.values())


def fired_after(queue: TaskQueue, since: float) -> bool:
    """True when the scheduler fired a tick later than ``since`` (epoch seconds)."""
    runs = queue.list_runs(limit=1000)
    return any(datetime.fromisoformat(r.logical_date or "").timestamp() > since for r in runs)


def failover_under_load(
    tmp_path: Path,
    url: str,
    fail_over: Callable[[], float],
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    """The scenario of the module docstring; ``fail_over`` returns the seconds from the
    kill to the promotion, and returns once the new master has a replica again."""
    started = time.monotonic()
    monkeypatch.setenv("FAIRQUE_DURABILITY", "replicated")
    log = tmp_path / "runs.log"
    procs = Procs(tmp_path, url)
    config = FairQueueConfig.create_default(redis=url)
    try:
        with TaskQueue(config) as queue:
            scheduler = TaskScheduler(config)
            try:
                tick = Task.create("system", task_id="tick", func="tests.integration.jobs:noop")
                scheduler.add_schedule("* * * * * *", tick, schedule_id="every-second")
            finally:
                scheduler.close()
            before = mark_tasks(log, "b", BEFORE)
            queue.push_batch(before)  # replicated: on a replica when this returns

            options = ["--lease-seconds", str(LEASE), "--concurrency", "4"]
            options += ["--max-recoveries", "1000"]
            procs.worker("failover-sync", *options)
            procs.worker("failover-async", *options, "--async")
            procs.start("scheduler", [*CLI, "scheduler", "--no-dags", "--redis-url", url])
            wait_until(
                lambda: finished_count(queue) >= BEFORE // 4,
                90,
                lambda: f"a quarter of the tasks to finish{procs.tails()}",
            )
            running = len(queue.redis.zrange(queue.keys.state("started"), 0, -1))
            failover = fail_over()
            promoted_at = time.time()

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
