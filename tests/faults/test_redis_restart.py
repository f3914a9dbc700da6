"""Redis killed (SIGKILL) under a running worker and restarted from its append-only file:
every task finished before the crash stays finished, and every task queued survives and
finishes (each ran at least once, at most once per claim)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fairque import FairQueueConfig, TaskQueue
from fairque.core.models import TaskState
from fairque.server import find_server_binary
from fairque.server.process import free_port
from tests.faults.conftest import Figures
from tests.faults.tally import finished_count, push_all, recording_tasks, tally
from tests.integration.procs import Procs
from tests.integration.test_worker_processes import ping
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TASKS, TENANTS = 300, 10
OUTAGE = 0.5  # seconds between the crash and the restart


@pytest.mark.timeout(budget(120))
def test_queued_tasks_survive_a_crash_of_redis_with_aof(
    procs: Procs, tmp_path: Path, figures: Figures
) -> None:
    started = time.monotonic()
    data = tmp_path / "redis-data"
    data.mkdir()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        *(find_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)),
        *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
    ]
    first = procs.start("redis-first", argv)
    wait_until(lambda: ping(url), 10, lambda: f"the server to answer{first.tail()}")
    config = FairQueueConfig.create_default(redis=url)
    tasks = recording_tasks(url, TASKS, TENANTS, 0.02)
    with TaskQueue(config) as queue:
        push_all(queue, tasks)
        procs.worker("aof", "--lease-seconds", "2", "--concurrency", "4", redis_url=url)
        wait_until(lambda: finished_count(queue) >= TASKS // 5, 20, procs.tails)
        done_before = set(queue.redis.zrange(queue.keys.state(TaskState.FINISHED), 0, -1))
    first.kill_group()  # SIGKILL: nothing is saved on the way down
    time.sleep(OUTAGE)  # the outage itself, not a wait for a condition
    second = procs.start("redis-second", argv)
    wait_until(lambda: ping(url), 10, lambda: f"the server to answer again{second.tail()}")

    with TaskQueue(config) as queue:
        after = queue.redis.zrange(queue.keys.state(TaskState.FINISHED), 0, -1)
        still_done = done_before & set(after)
        survived = TASKS - len(after)
        wait_until(lambda: finished_count(queue) == TASKS, 60, procs.tails)
        result = tally(queue, tasks)
    figures(
        tasks=TASKS,
        finished_before_crash=len(done_before),
        unfinished_after_restart=survived,
        executions=result.executions,
        reclaims=result.reclaims,
        ran_more_than_once=result.ran_more_than_once,
        outage_seconds=OUTAGE,
        seconds=time.monotonic() - started,
    )
    assert still_done == done_before, sorted(done_before - still_done)[:10]
    assert survived > 0, "every task finished before the crash: nothing was tested"
    assert result.problems == [], result.problems[:20]
