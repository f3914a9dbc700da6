"""SIGTERM/SIGINT in this process: Worker, AsyncWorker and TaskScheduler stop on them.

Each ``start()`` runs in the main thread (where handlers can be installed) while a helper
thread sends the signals with ``os.kill``. The test's own handler stays in place around
it, so a signal can never end pytest, and it must be back once ``start()`` returns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from fairque import AsyncWorker, FairQueueConfig, Task, TaskQueue, TaskState, Worker
from fairque.core.process import STOP_SIGNALS
from fairque.scheduler.scheduler import TaskScheduler
from tests.timing import budget, wait_until

from .conftest import ConfigFactory


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass


@pytest.fixture(autouse=True)
def own_handler() -> Iterator[None]:
    previous = {sig: signal.signal(sig, _ignore) for sig in STOP_SIGNALS}
    yield
    for sig, old in previous.items():
        signal.signal(sig, old)


class Sender(threading.Thread):
    """Sends SIGTERM to this process once each condition holds, in turn."""

    def __init__(self, *conditions: Callable[[], bool]) -> None:
        super().__init__(daemon=True)
        self.conditions = conditions
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            wait_until(lambda: signal.getsignal(signal.SIGTERM) is not _ignore, 10)
            for condition in self.conditions:
                wait_until(condition, 10)
                os.kill(os.getpid(), signal.SIGTERM)
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self) -> None:
        self.join(budget(10))
        assert self.error is None, self.error


AnyWorker = Worker | AsyncWorker


def run_worker(
    kind: str, config: FairQueueConfig, *conditions: Callable[[AnyWorker], bool]
) -> float:
    """Run a worker of ``kind`` with ``start()`` while signals come; seconds it ran."""
    began = time.monotonic()
    if kind == "sync":
        with Worker(config) as worker:
            sender = Sender(*(lambda c=c: c(worker) for c in conditions))
            worker.start()
    else:

        async def main() -> Sender:
            worker = AsyncWorker(config)
            sender = Sender(*(lambda c=c: c(worker) for c in conditions))
            try:
                await worker.start()
            finally:
                await worker.queue.close()
            return sender

        sender = asyncio.run(main())
    sender.finish()
    assert signal.getsignal(signal.SIGTERM) is _ignore, "the handler was not restored"
    assert signal.getsignal(signal.SIGINT) is _ignore, "the handler was not restored"
    return time.monotonic() - began


@pytest.fixture
def queue(make_config: ConfigFactory) -> Iterator[TaskQueue]:
    with TaskQueue(make_config()) as q:
        yield q


def sleeper(seconds: float) -> Task:
    return Task.create("u", func="tests.integration.jobs:sleep_then", args=[seconds, "done"])


def state_is(queue: TaskQueue, task_id: str, state: TaskState) -> Callable[[AnyWorker], bool]:
    return lambda worker: queue.get_task(task_id).state is state


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sigterm_stops_a_worker_after_its_running_task(
    make_config: ConfigFactory, queue: TaskQueue, kind: str
) -> None:
    config = make_config(allowed_modules=["tests"], poll_interval_seconds=0.05)
    task_id = queue.push(sleeper(0.3))["task_id"]
    run_worker(kind, config, state_is(queue, task_id, TaskState.STARTED))
    assert queue.get_task(task_id).state is TaskState.FINISHED


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_second_sigterm_stops_a_worker_at_once(
    make_config: ConfigFactory, queue: TaskQueue, kind: str
) -> None:
    config = make_config(
        allowed_modules=["tests"], poll_interval_seconds=0.05, shutdown_grace_seconds=30
    )
    task_id = queue.push(sleeper(10))["task_id"]
    started = state_is(queue, task_id, TaskState.STARTED)
    took = run_worker(kind, config, started, lambda worker: worker.core.stopping)
    assert took < budget(8), f"the worker waited for its task ({took:.1f} s)"
    record = queue.get_task(task_id)
    assert record.state is TaskState.QUEUED and record.attempts == 0


def test_sigterm_stops_the_scheduler(make_config: ConfigFactory) -> None:
    scheduler = TaskScheduler(make_config(), tick_seconds=0.05)
    try:
        sender = Sender(lambda: True)
        began = time.monotonic()
        scheduler.start()
        sender.finish()
        assert time.monotonic() - began < budget(5)
        assert signal.getsignal(signal.SIGTERM) is _ignore
    finally:
        scheduler.close()
