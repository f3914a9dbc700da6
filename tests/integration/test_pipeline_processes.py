"""A pipeline survives the death of the worker running it (real processes)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from fairque import FairQueueConfig, TaskQueue, TaskState
from tests.integration import flows
from tests.integration.procs import Procs
from tests.timing import budget, wait_until

pytestmark = pytest.mark.slow


def test_a_run_finishes_when_its_worker_is_killed_midway(
    procs: Procs, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "middle.log"
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        run = queue.enqueue(flows.extract() >> flows.slow_middle(str(log), 2.0) >> flows.step(1))
        first = procs.worker("first", "--lease-seconds", "1")
        wait_until(lambda: log.exists() and log.read_text().strip(), 90, "the middle task to start")
        middle_key = queue.keys.task(f"{run.run_id}:slow_middle")
        # Once its holder renewed the lease, a lost run counts as an attempt (before, a
        # recovery only): kill it after that.
        wait_until(lambda: queue.redis.hget(middle_key, "acked") == "1", 30, "a lease renewal")
        first.send(signal.SIGKILL)
        procs.worker("second", "--lease-seconds", "1")
        states = run.wait(timeout=budget(90))  # the second worker's start-up included
        assert set(states.values()) == {TaskState.FINISHED}, states
        middle = run.task("slow_middle")
        assert middle.attempts == 2 and middle.recoveries == 1
        assert run.result("step") == 2
        assert len(log.read_text().split()) == 2  # it ran again on the second worker
