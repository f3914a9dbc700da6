"""A worker told to stop while Redis is unreachable, and a claim whose reply is lost.

The first is issue 11 item 5, the second item 6.
"""

from __future__ import annotations

import signal
import time

import pytest

from fairque import TaskQueue
from fairque.core.models import TaskState
from tests.faults.conftest import Figures
from tests.faults.dropper import SETTLE_EMPTY, ReplyDropper
from tests.faults.tally import executions, push_all, recording_tasks, tally
from tests.integration.procs import Procs
from tests.integration.proxy import CuttableProxy
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

MODES = pytest.mark.parametrize("mode", [[], ["--async"]], ids=["sync", "async"])
GRACE = 1.0  # the worker's --shutdown-grace
LEASE = 2.0


@MODES
@pytest.mark.timeout(budget(60))
def test_sigterm_during_an_outage_exits_after_the_grace_and_the_lease_brings_the_task_back(
    procs: Procs,
    queue: TaskQueue,
    proxy: CuttableProxy,
    redis_url: str,
    figures: Figures,
    mode: list[str],
) -> None:
    started = time.monotonic()
    tasks = recording_tasks(redis_url, 1, 1, 3.0, prefix="term")
    task_id = tasks[0].task_id
    options = ("--lease-seconds", str(LEASE), "--shutdown-grace", str(GRACE), *mode)
    worker = procs.worker("term-cut", *options, redis_url=proxy.url)
    push_all(queue, tasks)
    wait_until(lambda: executions(queue).total() == 1, 10, procs.tails)

    proxy.cut()
    worker.send(signal.SIGTERM)
    signalled = time.monotonic()
    try:
        code = worker.wait_exit(budget(GRACE + 8))
    finally:
        exited = time.monotonic() - signalled
        figures(seconds_after_sigterm=exited, grace=GRACE, still_running=worker.alive())
    assert code != 0, f"exit code 0 though the task was never handed back{worker.tail()}"
    assert task_id in worker.output(), f"the worker did not name the task it held{worker.tail()}"

    procs.worker("term-after", "--lease-seconds", str(LEASE), *mode)
    wait_until(lambda: queue.get_task(task_id).state is TaskState.FINISHED, 20, procs.tails)
    result = tally(queue, tasks)
    figures(
        exit_code=code,
        executions=result.executions,
        reclaims=result.reclaims,
        seconds=time.monotonic() - started,
    )
    assert result.problems == [], result.problems
    assert (result.executions, result.reclaims) == (2, 1)


@pytest.mark.timeout(budget(60))
def test_a_claim_whose_reply_was_lost_costs_no_attempt(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("the proxy needs a redis://host:port server")
    started = time.monotonic()
    tasks = recording_tasks(redis_url, 1, 1, 0.0, prefix="lost", max_retries=0)
    task_id = tasks[0].task_id
    with ReplyDropper(redis_url, "settle", SETTLE_EMPTY) as dropper:
        worker = procs.worker("lost-reply", "--lease-seconds", str(LEASE), redis_url=dropper.url)
        push_all(queue, tasks)  # the worker's claim runs; its reply is lost on the way

        def ended() -> bool:
            state = queue.get_task(task_id).state
            return state is not None and state.is_terminal

        try:
            wait_until(ended, LEASE + 15, procs.tails)
        finally:
            record = queue.get_task(task_id)
            figures(
                replies_dropped=dropper.dropped,
                state=record.state,
                attempts=record.attempts,
                recoveries=record.recoveries,
                executions=executions(queue).total(),
                seconds=time.monotonic() - started,
            )
    assert dropper.dropped == 1
    assert record.state is TaskState.FINISHED, (record.error, worker.tail())
    assert (record.attempts, executions(queue).total()) == (1, 1), worker.tail()
