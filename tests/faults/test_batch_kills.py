"""A producer SIGKILLed in the middle of a large batch (written in steps, see "Large
batches" in the README): before the commit nothing of the batch is ever claimable and
the workers take the staged tasks back after the staging timeout; after the commit the
workers open the rest, and every task runs once."""

from __future__ import annotations

import sys
import time

import pytest

from fairque import TaskQueue
from fairque.core.models import TaskState
from tests.faults.conftest import Figures
from tests.faults.tally import EXECUTIONS, executions, finished_count
from tests.integration.procs import Proc, Procs
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

COUNT, STEP = 3000, 10  # 300 staging calls, then a commit and 600 opening calls
STAGING_TIMEOUT = 1.0  # seconds


def start_producer(procs: Procs, redis_url: str) -> Proc:
    argv = [sys.executable, "-m", "tests.faults.batch_producer", redis_url]
    return procs.start("producer", [*argv, str(COUNT), str(STEP), str(STAGING_TIMEOUT)])


def staged(queue: TaskQueue) -> int:
    return int(queue.redis.hget(queue.keys.stats, "deferred tenant-00") or 0)


@pytest.mark.timeout(budget(120))
def test_a_producer_killed_before_its_commit_leaves_nothing_behind(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    producer = start_producer(procs, redis_url)
    wait_until(lambda: staged(queue) >= 20, budget(60), lambda: f"staging{procs.tails()}")
    producer.kill_group()
    assert queue.redis.zcard(queue.keys.batches) == 1  # killed before its commit
    at_kill = queue.redis.zcard(queue.keys.state(TaskState.DEFERRED))
    assert queue.pop() is None  # staged tasks are not the queue's
    procs.worker("sweeper", "--max-recoveries", "10")
    wait_until(
        lambda: (
            queue.redis.zcard(queue.keys.batches) == 0
            and queue.redis.zcard(queue.keys.state(TaskState.DEFERRED)) == 0
        ),
        budget(30),
        lambda: f"the staged tasks to be taken back{procs.tails()}",
    )
    assert list(queue.redis.scan_iter(queue.keys.task("b*"))) == []
    assert queue.redis.llen(EXECUTIONS) == 0  # none ran
    assert queue.get_stats()["tasks_active"] == 0
    figures(staged_at_kill=at_kill, left_after_sweep=0)


@pytest.mark.timeout(budget(120))
def test_a_producer_killed_after_its_commit_has_every_task_run_once(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    producer = start_producer(procs, redis_url)
    committed = lambda: any(queue.redis.scan_iter(queue.keys.batch("*:committed")))  # noqa: E731
    wait_until(committed, budget(60), lambda: f"the commit{procs.tails()}")
    producer.kill_group()
    queued_at_kill = queue.get_stats()["states"]["queued"]
    started = time.monotonic()
    procs.worker("opener", "--concurrency", "8")
    wait_until(
        lambda: finished_count(queue) == COUNT,
        budget(60),
        lambda: f"all {COUNT} tasks to run (have {finished_count(queue)}){procs.tails()}",
    )
    runs = executions(queue)
    assert len(runs) == COUNT and set(runs.values()) == {1}  # each once
    assert queue.get_stats()["pending_steps"] == 0
    figures(
        tasks=COUNT,
        queued_at_kill=queued_at_kill,
        seconds_to_run_all=time.monotonic() - started,
    )
