"""Attempt logs under faults: a worker killed mid-task keeps what it shipped (at least
every second), and a Redis outage while a task writes loses none of its lines."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from fairque import AsyncWorker, FairQueueConfig, RedisConfig, TaskQueue, TaskState, Worker
from tests.integration import logjobs
from tests.integration.procs import Procs
from tests.integration.proxy import CuttableProxy
from tests.integration.test_task_logs import in_thread
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture
def queue(redis_url: str, redis_client: redis.Redis) -> Iterator[TaskQueue]:
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as q:
        yield q


def test_a_worker_killed_mid_task_keeps_what_it_shipped(queue: TaskQueue, procs: Procs) -> None:
    worker = procs.worker("logs-kill")
    run = queue.enqueue(logjobs.slow_talker(60))
    wait_until(
        lambda: "before the kill" in run.logs("slow_talker"),
        budget(15),
        lambda: f"the first line to be shipped{procs.tails()}",
    )
    worker.kill_group()
    assert run.task("slow_talker").state is TaskState.STARTED
    assert run.logs("slow_talker") == "before the kill\n"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_redis_outage_while_a_task_writes_loses_no_line(
    kind: str, queue: TaskQueue, proxy: CuttableProxy
) -> None:
    redis_config = replace(
        RedisConfig.from_url(proxy.url), socket_timeout=1.0, socket_connect_timeout=1.0
    )
    config = FairQueueConfig.create_default(
        redis=redis_config,
        worker_id=f"{kind}-log-outage",
        allowed_modules=["tests"],
        poll_interval_seconds=0.05,
    )
    worker: Worker | AsyncWorker
    if kind == "sync":
        worker = Worker(config)
        thread = worker.start_background()
    else:
        worker = AsyncWorker(config)
        thread = in_thread(worker)
    try:
        run = queue.enqueue(logjobs.chatty("out", lines=12, pause=0.25))
        wait_until(lambda: "out line 1" in run.logs("chatty"), 10, "the first lines")
        proxy.cut()
        wait_until(lambda: run.task("chatty").state is TaskState.STARTED, 5, "running")
        threading.Event().wait(1.5)  # the task keeps writing while Redis is away
        proxy.restore()
        assert run.wait(timeout=budget(20)) == {"chatty": TaskState.FINISHED}
        text = run.logs("chatty")
    finally:
        worker.stop(graceful=False)
        thread.join(budget(10))
        if isinstance(worker, Worker):
            worker.queue.close()
    for n in range(12):
        assert f"out line {n}\n" in text
    assert text.index("out line 0") < text.index("out line 11") < text.index("out to stderr")
