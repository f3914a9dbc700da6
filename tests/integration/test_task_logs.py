"""Logs per attempt: what a task writes to stdout, stderr and logging while it runs is
kept per attempt in Redis, read with ``run.logs`` and ``fairque run logs``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairque import AsyncWorker, TaskQueue, TaskState, Worker
from fairque.core.errors import QueueError
from fairque.worker.capture import truncation_marker
from tests.integration import logjobs
from tests.integration.procs import run_cli
from tests.timing import budget, wait_until

from .conftest import ConfigFactory

S = TaskState


@pytest.fixture
def queue(make_config: ConfigFactory) -> Iterator[TaskQueue]:
    with TaskQueue(make_config()) as connection:
        yield connection


def in_thread(worker: AsyncWorker) -> threading.Thread:
    """Run an AsyncWorker on its own event loop in a thread (its queue closed at the end)."""

    async def main() -> None:
        try:
            await worker.run()
        finally:
            await worker.queue.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    return thread


def start_worker(make_config: ConfigFactory, **settings: object) -> Worker:
    config = make_config(
        allowed_modules=["tests"], poll_interval_seconds=0.1, max_concurrent_tasks=4, **settings
    )
    worker = Worker(config)
    worker.start_background()
    return worker


@pytest.fixture
def worker(make_config: ConfigFactory) -> Iterator[Worker]:
    started = start_worker(make_config)
    yield started
    started.stop(graceful=False)
    assert started.join(budget(10))
    started.queue.close()


def test_each_attempt_keeps_its_own_lines(queue: TaskQueue, worker: Worker, tmp_path: Path) -> None:
    run = queue.enqueue(logjobs.flaky(str(tmp_path / "flag")))
    assert run.wait(timeout=budget(20)) == {"flaky": S.FINISHED}
    assert run.task("flaky").attempts == 2
    first, second = run.logs("flaky", attempt=1), run.logs("flaky", attempt=2)
    assert first == "attempt 1 starts\n"
    assert second == "attempt 2 starts\nattempt 2 succeeds\n"
    assert run.logs("flaky") == second  # the latest attempt by default


def test_stdout_stderr_and_logging_are_all_captured(queue: TaskQueue, worker: Worker) -> None:
    run = queue.enqueue(logjobs.chatty("a", lines=2))
    assert run.wait(timeout=budget(20)) == {"chatty": S.FINISHED}
    lines = run.logs("chatty").splitlines()
    assert lines[:3] == ["a line 0", "a line 1", "a to stderr"]
    assert lines[3].endswith("WARNING tests.logjobs: a via logging")
    assert len(lines) == 4  # the worker's own lines (task finished ...) are not in it


@pytest.mark.parametrize("kind", [Worker, AsyncWorker])
def test_thread_and_async_tasks_side_by_side_keep_their_own_lines(
    queue: TaskQueue, make_config: ConfigFactory, kind: type[Worker] | type[AsyncWorker]
) -> None:
    config = make_config(
        allowed_modules=["tests"], poll_interval_seconds=0.1, max_concurrent_tasks=4
    )
    target = kind(config)
    thread = in_thread(target) if isinstance(target, AsyncWorker) else target.start_background()
    try:
        run = queue.enqueue(
            logjobs.chatty("sync", lines=5, pause=0.05)
            | logjobs.achatty("async", lines=5, pause=0.05)
        )
        assert set(run.wait(timeout=budget(20)).values()) == {S.FINISHED}
        sync_log, async_log = run.logs("chatty"), run.logs("achatty")
    finally:
        target.stop(graceful=False)
        thread.join(budget(10))
        if isinstance(target, Worker):
            target.queue.close()
    assert [f"sync line {n}" for n in range(5)] == sync_log.splitlines()[:5]
    assert [f"async line {n}" for n in range(5)] == async_log.splitlines()[:5]
    assert "async" not in sync_log and "sync line" not in async_log.replace("async", "")


def test_a_log_is_cut_at_the_cap_with_a_visible_marker(
    queue: TaskQueue, make_config: ConfigFactory
) -> None:
    worker = start_worker(make_config, max_log_bytes=4096)
    try:
        run = queue.enqueue(logjobs.flood(20))
        assert run.wait(timeout=budget(20)) == {"flood": S.FINISHED}
        text = run.logs("flood")
    finally:
        worker.stop(graceful=False)
        worker.join(budget(10))
        worker.queue.close()
    assert text.endswith(truncation_marker(4096))
    assert len(text.encode()) == 4096 + len(truncation_marker(4096).encode())


def test_logs_of_a_task_not_started_are_empty_and_bad_names_are_refused(
    queue: TaskQueue,
) -> None:
    run = queue.enqueue(logjobs.chatty("x"))
    assert run.logs("chatty") == ""
    with pytest.raises(QueueError, match="has no task 'nope'"):
        run.logs("nope")
    for attempt in (0, 1, -1):
        with pytest.raises(QueueError, match=f"has no attempt {attempt}: it made 0"):
            run.logs("chatty", attempt=attempt)


def test_the_log_keys_expire_with_the_record(queue: TaskQueue, worker: Worker) -> None:
    run = queue.enqueue(logjobs.chatty("ttl"))
    run.wait(timeout=budget(20))
    task = run.task("chatty")
    ttl = queue.redis.ttl(queue.keys.task_log(task.task_id, 1))  # type: ignore[attr-defined]
    assert 0 < ttl <= queue.config.queue.result_ttl_seconds


@pytest.mark.slow
def test_cli_run_logs_prints_an_attempt_and_follows_a_running_task(
    queue: TaskQueue, worker: Worker, redis_url: str, tmp_path: Path
) -> None:
    run = queue.enqueue(logjobs.flaky(str(tmp_path / "flag")))
    run.wait(timeout=budget(20))
    one = run_cli("run", "logs", run.run_id, "flaky", "--attempt", "1", "--redis-url", redis_url)
    assert one.returncode == 0, one.stderr
    assert one.stdout == "attempt 1 starts\n"
    latest = run_cli("run", "logs", run.run_id, "flaky", "--redis-url", redis_url)
    assert latest.stdout == "attempt 2 starts\nattempt 2 succeeds\n"

    slow = queue.enqueue(logjobs.chatty("f", lines=6, pause=0.4))
    wait_until(lambda: slow.task("chatty").state is S.STARTED, budget(10), "chatty to start")
    followed = run_cli("run", "logs", slow.run_id, "chatty", "--follow", "--redis-url", redis_url)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines()[:7] == [*(f"f line {n}" for n in range(6)), "f to stderr"]
    assert slow.states() == {"chatty": S.FINISHED}


@pytest.mark.slow
def test_cli_run_logs_refuses_an_unknown_task_run_or_attempt(
    queue: TaskQueue, redis_url: str
) -> None:
    run = queue.enqueue(logjobs.chatty("x"))
    cases = [
        (run.run_id, "nope", [], "has no task 'nope'"),
        ("no-such-run", "chatty", [], "no-such-run"),
        (run.run_id, "chatty", ["--attempt", "3"], "has no attempt 3"),
    ]
    for run_id, name, extra, message in cases:
        done = run_cli("run", "logs", run_id, name, *extra, "--redis-url", redis_url)
        assert done.returncode == 1
        assert message in done.stderr.replace("\n", " ")


def test_a_cleared_task_logs_its_new_attempt_beside_the_old_one(
    queue: TaskQueue, worker: Worker, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"
    run = queue.enqueue(logjobs.until_flag(str(flag)))
    assert run.wait(timeout=budget(20)) == {"until_flag": S.FAILED}
    flag.touch()
    queue.clear_run(run.run_id)
    assert run.wait(timeout=budget(20)) == {"until_flag": S.FINISHED}
    assert run.logs("until_flag", attempt=1) == "flag present: False\n"
    assert run.logs("until_flag") == run.logs("until_flag", attempt=2) == "flag present: True\n"
