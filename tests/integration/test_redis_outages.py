"""Redis errors met by the long-running loops, on the real server: a scheduler and
workers whose connection is cut (a TCP proxy closes it) carry on when it comes back,
warning once per outage; a Lua error is a ScriptError naming its script, and ends the
loops instead of being retried forever."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from fairque import AsyncWorker, FairQueueConfig, Task, TaskQueue, TaskState, Worker
from fairque.core.errors import RedisUnavailableError, ScriptError
from fairque.core.keys import Keys, key_tag
from fairque.queue.calls import ScriptCall
from fairque.scheduler.scheduler import TaskScheduler
from tests.timing import budget, wait_until

from .conftest import ConfigFactory
from .proxy import CuttableProxy

JOBS = "tests.integration.jobs"
ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0  # seconds any condition below may take on a busy machine


@pytest.fixture
def queue(make_config: ConfigFactory) -> Iterator[TaskQueue]:
    """A queue straight to the server (never cut)."""
    with TaskQueue(make_config()) as q:
        yield q


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="fairque")
    return caplog


def messages(logs: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    """What ``logger`` and its children logged at ``level``."""
    return [
        r.getMessage()
        for r in logs.records
        if (r.name == logger or r.name.startswith(logger + ".")) and r.levelno == level
    ]


def retries(logs: pytest.LogCaptureFixture, logger: str) -> int:
    """Failed attempts after the first of an outage (logged at DEBUG by the backoff)."""
    return sum("failed:" in m for m in messages(logs, logger, logging.DEBUG))


class Background:
    """A worker of either kind running its loop on a thread; keeps what ended it."""

    def __init__(self, kind: str, config: FairQueueConfig) -> None:
        self.worker: Worker | AsyncWorker = (
            Worker(config) if kind == "sync" else AsyncWorker(config)
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            if isinstance(self.worker, Worker):
                self.worker.run()
            else:
                asyncio.run(self._run_async(self.worker))
        except BaseException as e:
            self.error = e
        finally:
            if isinstance(self.worker, Worker):
                self.worker.queue.close()

    async def _run_async(self, worker: AsyncWorker) -> None:
        try:
            await worker.run()
        finally:
            await worker.queue.close()

    def stop(self) -> bool:
        self.worker.stop(graceful=False)
        self.thread.join(10)
        return not self.thread.is_alive()


@pytest.fixture
def run_worker() -> Iterator[Callable[[str, FairQueueConfig], Background]]:
    started: list[Background] = []

    def run(kind: str, config: FairQueueConfig) -> Background:
        started.append(Background(kind, config))
        return started[-1]

    yield run
    for background in started:
        assert background.stop(), "worker did not stop"


def worker_config(url: str, kind: str) -> FairQueueConfig:
    return FairQueueConfig.create_default(
        redis=url, worker_id=f"{kind}-outage", allowed_modules=["tests"], poll_interval_seconds=0.05
    )


def add(queue: TaskQueue, a: int, b: int) -> str:
    task = Task.create("u", func=f"{JOBS}:add", args=[a, b])
    return str(queue.push(task)["task_id"])


def finished(queue: TaskQueue, task_id: str) -> Callable[[], bool]:
    return lambda: queue.get_task(task_id).state is TaskState.FINISHED


# --- outages: cut, then restored ------------------------------------------------------


def test_the_scheduler_keeps_firing_after_its_connection_is_cut_and_restored(
    proxy: CuttableProxy, queue: TaskQueue, logs: pytest.LogCaptureFixture
) -> None:
    config = FairQueueConfig.create_default(redis=proxy.url, worker_id="sched-outage")
    now = [datetime.now(timezone.utc)]  # moved by hand: a tick whenever the test wants one
    scheduler = TaskScheduler(config, clock=lambda: now[0], tick_seconds=0.05)
    scheduler.add_schedule("* * * * *", Task.create("system", task_id="beat"))
    scheduler.start_background()
    try:
        now[0] += timedelta(minutes=1)
        wait_until(lambda: len(queue.list_runs(limit=1000)) == 1, WAIT, "the first run")
        proxy.cut()
        wait_until(lambda: retries(logs, "fairque.scheduler") >= 2, WAIT, "retries")
        now[0] += timedelta(minutes=1)
        proxy.restore()
        wait_until(lambda: len(queue.list_runs(limit=1000)) == 2, WAIT, "a run after the cut")
        assert scheduler.error is None
        assert scheduler._thread is not None and scheduler._thread.is_alive()
    finally:
        scheduler.stop()
        assert scheduler.join(10)
    warnings = messages(logs, "fairque.scheduler", logging.WARNING)
    assert len([w for w in warnings if "unreachable" in w]) == 1, warnings  # once per outage
    infos = messages(logs, "fairque.scheduler", logging.INFO)
    assert any("answers again" in m for m in infos), infos


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_worker_carries_on_after_its_connection_is_cut_and_restored(
    kind: str,
    proxy: CuttableProxy,
    queue: TaskQueue,
    run_worker: Callable[[str, FairQueueConfig], Background],
    logs: pytest.LogCaptureFixture,
) -> None:
    background = run_worker(kind, worker_config(proxy.url, kind))
    first = add(queue, 1, 2)
    wait_until(finished(queue, first), WAIT, "the first task")
    proxy.cut()  # the worker's pooled connections die with it
    wait_until(lambda: retries(logs, "fairque.worker") >= 2, WAIT, "retries")
    second = add(queue, 3, 4)
    proxy.restore()
    wait_until(finished(queue, second), WAIT, "a task after the cut")
    assert queue.get_task(second).result == 7
    assert background.thread.is_alive() and background.error is None
    warnings = messages(logs, "fairque.worker", logging.WARNING)
    assert len([w for w in warnings if "unreachable" in w]) == 1, warnings


def test_a_queue_call_during_an_outage_is_a_redis_unavailable_error(
    proxy: CuttableProxy,
) -> None:
    with TaskQueue(FairQueueConfig.create_default(redis=proxy.url)) as cut_queue:
        proxy.cut()
        with pytest.raises(RedisUnavailableError, match=r"cannot run pop: .* unreachable"):
            cut_queue.pop()
        proxy.restore()
        assert cut_queue.pop() is None  # a fresh connection; the pooled one died


# --- bugs: a Lua error is not retried -------------------------------------------------


def test_a_lua_error_is_a_script_error_naming_the_script(queue: TaskQueue) -> None:
    good = queue.calls.advance("s1", 1.0)
    missing_tick = ScriptCall(good.script, good.keys, good.args[:1], good.parse)  # a bug
    with pytest.raises(ScriptError) as caught:
        queue.run_script(missing_tick)  # Lua: tonumber(nil) > number
    assert caught.value.script == "advance"
    assert "user_function" in caught.value.message, caught.value.message  # a Lua error
    assert "(advance.lua:" in caught.value.message  # where in the .lua files
    assert not isinstance(caught.value, RedisUnavailableError)
    assert queue.run_script(good) == 1.0  # the connection is fine: nothing to retry


def test_the_scheduler_stops_on_a_script_error(
    make_config: ConfigFactory, redis_client: redis.Redis, logs: pytest.LogCaptureFixture
) -> None:
    scheduler = TaskScheduler(make_config(worker_id="sched-bug"), tick_seconds=0.05)
    redis_client.hset(scheduler.keys.scheduler_lock, "not", "a string")  # lock.lua fails
    scheduler.start_background()
    assert scheduler.join(5), "the scheduler retried a bug"
    assert isinstance(scheduler.error, ScriptError) and scheduler.error.script == "lock"
    (critical,) = messages(logs, "fairque.scheduler", logging.CRITICAL)
    assert "cannot run lock" in critical and "WRONGTYPE" in critical


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_worker_stops_on_a_script_error(
    kind: str,
    redis_client: redis.Redis,
    redis_url: str,
    run_worker: Callable[[str, FairQueueConfig], Background],
    logs: pytest.LogCaptureFixture,
) -> None:
    config = worker_config(redis_url, kind)
    scheduled = Keys(config.queue.prefix, key_tag(redis_url)).state(TaskState.SCHEDULED)
    redis_client.set(scheduled, "not a sorted set")  # promote.lua fails
    background = run_worker(kind, config)
    background.thread.join(5)
    assert not background.thread.is_alive(), "the worker retried a bug"
    assert isinstance(background.error, ScriptError) and background.error.script == "promote"
    (critical,) = messages(logs, "fairque.worker", logging.CRITICAL)
    assert "cannot run promote" in critical


@pytest.mark.slow
def test_the_scheduler_command_exits_1_on_a_script_error(
    redis_url: str, redis_client: redis.Redis
) -> None:
    keys = Keys(FairQueueConfig.create_default(redis=redis_url).queue.prefix, key_tag(redis_url))
    redis_client.hset(keys.scheduler_lock, "not", "a string")  # lock.lua fails
    command = [sys.executable, "-m", "fairque.cli.app", "scheduler", "--no-dags"]
    done = subprocess.run(
        [*command, "--redis-url", redis_url, "--tick", "0.05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=budget(50),
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "CRITICAL" in done.stderr and "cannot run lock" in done.stderr, done.stderr[-2000:]
