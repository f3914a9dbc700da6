"""A worker whose claim reply is lost: the settle call ran on the server (it recorded the
outcomes and claimed tasks) but the worker got an error instead of its reply. The worker
sends the same call again under the same claim id, gets what it claimed and runs it:
once, without waiting for the lease to expire and without spending an attempt."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fairque import AsyncWorker, Task, TaskQueue, TaskState, Worker
from fairque.core.errors import RedisUnavailableError
from fairque.queue.async_queue import AsyncTaskQueue
from fairque.queue.calls import ScriptCall
from tests.timing import budget, wait_until

from .conftest import ConfigFactory

T = TypeVar("T")


def _lose(call: ScriptCall[Any], reply: Any, lost: list[ScriptCall[Any]]) -> None:
    """Raise as a timed-out call would, the first time a settle claimed tasks."""
    if call.script == "settle" and reply[1] and not lost:
        lost.append(call)
        raise RedisUnavailableError("cannot run settle: the reply was lost (test)")


class LossyQueue(TaskQueue):
    """A TaskQueue that loses the reply of the first settle that claimed tasks."""

    lost: list[ScriptCall[Any]]

    def run_script(self, call: ScriptCall[T]) -> T:
        reply = super().run_script(call)
        _lose(call, reply, self.lost)
        return reply


class AsyncLossyQueue(AsyncTaskQueue):
    """An AsyncTaskQueue that loses the reply of the first settle that claimed tasks."""

    lost: list[ScriptCall[Any]]

    async def run_script(self, call: ScriptCall[T]) -> T:
        reply = await super().run_script(call)
        _lose(call, reply, self.lost)
        return reply


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_lost_claim_reply_is_recovered_and_the_task_runs_once(
    kind: str, make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(allowed_modules=["tests"], poll_interval_seconds=0.05, lease_seconds=30.0)
    log = tmp_path / "runs.log"
    func = "tests.integration.jobs:mark"
    task = Task.create("u", func=func, args=[str(log), "ran"], task_id="t", max_retries=0)
    lost: list[ScriptCall[Any]] = []
    with TaskQueue(config) as queue:
        queue.push(task)
        if kind == "sync":
            sync_queue = LossyQueue(config)
            sync_queue.lost = lost
            worker: Worker | AsyncWorker = Worker(config, queue=sync_queue)
            thread = worker.start_background()
        else:
            async_queue = AsyncLossyQueue(config)
            async_queue.lost = lost
            worker = AsyncWorker(config, queue=async_queue)

            async def main() -> None:
                assert isinstance(worker, AsyncWorker)
                await worker.run()
                await async_queue.close()

            thread = threading.Thread(target=asyncio.run, args=(main(),))
            thread.start()
        try:
            wait_until(lambda: queue.get_task("t").state is TaskState.FINISHED, 10, "t to finish")
        finally:
            worker.stop()
            thread.join(budget(10))
        assert not thread.is_alive()
        record = queue.get_task("t")
        assert len(lost) == 1  # the reply was lost once, and the task still ran
        assert (record.attempts, record.recoveries, record.result) == (1, 0, "ran")
        assert log.read_text().count("ran") == 1
        records = list(queue.redis.scan_iter(match=queue.keys.claim("*")))
        assert len(records) <= 1, records  # each answered call deletes the one before
