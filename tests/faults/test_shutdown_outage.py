"""A worker asked to stop while Redis is unreachable still stops: the hand-back of its
tasks is bounded by the grace period, after which it gives up, logs at ERROR the tasks
it held (their leases bring them back) and ends with a WorkerShutdownError; a second
stop request ends it at once, even in the middle of its retries."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.config import RedisConfig
from fairque.core.errors import WorkerShutdownError
from tests.integration.procs import REPO_ROOT
from tests.integration.proxy import CuttableProxy
from tests.integration.test_redis_outages import Background, messages
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

WAIT = 10.0  # seconds, times $FAIRQUE_TEST_TIME_SCALE (budget)
JOBS = "tests.integration.jobs"


@pytest.fixture
def queue(redis_url: str) -> Iterator[TaskQueue]:
    """A queue straight to the server (never cut)."""
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as q:
        yield q


def config_for(url: str, kind: str, grace: float) -> FairQueueConfig:
    redis_config = replace(
        RedisConfig.from_url(url), socket_timeout=1.0, socket_connect_timeout=1.0
    )
    return FairQueueConfig.create_default(
        redis=redis_config,
        worker_id=f"{kind}-stop-outage",
        allowed_modules=["tests"],
        poll_interval_seconds=0.05,
        shutdown_grace_seconds=grace,
    )


def long_task(queue: TaskQueue, kind: str) -> str:
    func = f"{JOBS}:sleep_then" if kind == "sync" else f"{JOBS}:async_sleep_then"
    return str(queue.push(Task.create("u", func=func, args=[60]))["task_id"])


def running(queue: TaskQueue, task_id: str) -> Callable[[], bool]:
    return lambda: queue.get_task(task_id).state is TaskState.STARTED


def stopped_in_an_outage(
    kind: str, proxy: CuttableProxy, queue: TaskQueue, grace: float
) -> tuple[Background, str]:
    """A worker running a long task, asked to stop (gracefully) once Redis is cut."""
    background = Background(kind, config_for(proxy.url, kind, grace))
    task_id = long_task(queue, kind)
    wait_until(running(queue, task_id), WAIT, "the task to run")
    proxy.cut()
    background.worker.stop()
    return background, task_id


def ended(background: Background, timeout: float) -> float:
    """Seconds the worker took to end (fails after ``timeout``)."""
    start = time.monotonic()
    background.thread.join(timeout)
    assert not background.thread.is_alive(), "the worker did not stop during the outage"
    return time.monotonic() - start


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_worker_stopped_during_an_outage_gives_up_after_the_grace_period(
    kind: str, proxy: CuttableProxy, queue: TaskQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fairque")
    background, task_id = stopped_in_an_outage(kind, proxy, queue, grace=0.5)
    ended(background, budget(WAIT))
    assert isinstance(background.error, WorkerShutdownError), background.error
    assert background.error.task_ids == [task_id]
    errors = messages(caplog, "fairque.worker", logging.ERROR)
    assert any(task_id in m and "lease" in m for m in errors), errors
    assert queue.get_task(task_id).state is TaskState.STARTED  # back when its lease ends


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_second_stop_ends_a_worker_at_once_during_an_outage(
    kind: str, proxy: CuttableProxy, queue: TaskQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fairque")
    background, task_id = stopped_in_an_outage(kind, proxy, queue, grace=60.0)
    wait_until(
        lambda: sum("failed:" in m for m in messages(caplog, "fairque.worker", logging.DEBUG)),
        WAIT,
        "retries",
    )
    background.worker.stop(graceful=False)
    assert ended(background, budget(WAIT)) < budget(3.0)  # one connect timeout at most
    assert isinstance(background.error, WorkerShutdownError)
    assert background.error.task_ids == [task_id]


@pytest.mark.parametrize(
    ("kind", "grace", "signals", "processes"),
    [
        ("sync", "0.5", 1, 1),
        ("async", "0.5", 1, 1),
        ("sync", "600", 2, 1),  # the second SIGTERM cuts the grace period short
        ("async", "600", 2, 1),
        ("sync", "0.5", 1, 2),  # the supervisor passes the code on
    ],
)
def test_the_worker_command_exits_3_when_sigterm_comes_during_an_outage(
    kind: str, grace: str, signals: int, processes: int, proxy: CuttableProxy, queue: TaskQueue
) -> None:
    command = [sys.executable, "-m", "fairque.cli.app", "worker", "--redis-url", proxy.url]
    command += ["--allowed-modules", "tests", "--shutdown-grace", grace, "--poll-interval", "0.05"]
    command += ["--processes", str(processes)]
    if kind == "async":
        command.append("--async")
    task_id = long_task(queue, kind)
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(running(queue, task_id), 3 * WAIT, "the task to run")
        proxy.cut()
        process.send_signal(signal.SIGTERM)
        if signals == 2:
            with pytest.raises(subprocess.TimeoutExpired):
                process.wait(1.0)  # still in its grace period
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=budget(3 * WAIT))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 3, stderr[-3000:]
    assert "ERROR" in stderr and task_id in stderr, stderr[-3000:]
