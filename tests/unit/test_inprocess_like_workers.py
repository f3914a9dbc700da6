"""``run_in_process`` (``dag test``) honours timeouts and retries as workers do."""

from __future__ import annotations

import asyncio
import threading
import time

from fairque import TaskState, task
from fairque.core.errors import TaskTimeoutError
from fairque.tasks import Pipeline, current_task, run_in_process, xcom_pull, xcom_push
from tests.timing import budget, wait_until

STOPPED = threading.Event()
LATE_PUSH: list[str] = []
TRIES: dict[str, int] = {}


@task(task_id="sleepy", timeout_seconds=0.2, max_retries=1)
def sleepy() -> str:
    """Runs until asked to stop (as a worker asks a timed-out task)."""
    deadline = time.monotonic() + budget(10)
    while not current_task().cancel_requested and time.monotonic() < deadline:
        time.sleep(0.01)
    STOPPED.set()
    return "too late"


@task(task_id="async_sleepy", timeout_seconds=0.2, max_retries=0)
async def async_sleepy() -> str:
    await asyncio.sleep(budget(5))
    return "too late"


@task(task_id="late_pusher", timeout_seconds=0.3, max_retries=1)
def late_pusher() -> str:
    """Attempt 1 outlives its timeout, then tries to push; attempt 2 pushes at once."""
    TRIES["late"] = TRIES.get("late", 0) + 1
    if TRIES["late"] == 1:
        while not current_task().cancel_requested:
            time.sleep(0.01)
        try:
            xcom_push("value", "from the timed-out attempt")
        except Exception as e:
            LATE_PUSH.append(type(e).__name__)
        return "late"
    xcom_push("value", "from attempt 2")
    return "on time"


@task(task_id="reader")
def reader() -> str:
    return str(xcom_pull("value"))


@task(task_id="always_fails", max_retries=2, retry_delay_seconds=0.1)
def always_fails() -> None:
    raise ValueError("no")


@task(task_id="pulls_nothing", max_retries=3)
def pulls_nothing() -> None:
    xcom_pull("never_pushed")


def test_a_sync_task_past_its_timeout_fails_is_retried_and_asked_to_stop() -> None:
    STOPPED.clear()
    started = time.monotonic()
    run = run_in_process(sleepy())
    assert time.monotonic() - started < budget(2)
    assert run.states == {"sleepy": TaskState.FAILED}
    assert run.attempts == {"sleepy": 2}
    assert run.errors["sleepy"] == (
        f"{TaskTimeoutError.__name__}: task 'sleepy' ran longer than its timeout of 0.2 s"
    )
    assert len(run.attempt_errors["sleepy"]) == 2
    wait_until(STOPPED.is_set, 2, "the timed-out attempt to see cancel_requested")


def test_an_async_task_past_its_timeout_fails() -> None:
    started = time.monotonic()
    run = run_in_process(async_sleepy())
    assert time.monotonic() - started < budget(2)
    assert run.states == {"async_sleepy": TaskState.FAILED}
    assert "TaskTimeoutError" in run.errors["async_sleepy"]


def test_a_timed_out_attempt_cannot_push_to_xcom() -> None:
    LATE_PUSH.clear()
    TRIES.clear()
    run = run_in_process(late_pusher() >> reader())
    assert run.attempts["late_pusher"] == 2
    assert run.results == {"late_pusher": "on time", "reader": "from attempt 2"}
    wait_until(lambda: LATE_PUSH == ["XComError"], 2, "the late push to be refused")


def test_retries_wait_as_workers_do() -> None:
    started = time.monotonic()
    run = run_in_process(always_fails())
    elapsed = time.monotonic() - started
    assert run.attempts == {"always_fails": 3}
    assert run.attempt_errors["always_fails"] == ["ValueError: no"] * 3
    assert 0.1 + 0.2 <= elapsed < budget(2)  # 0.1 * 2^0 then 0.1 * 2^1
    # the queue defaults apply to a task that sets no delay
    flaky = always_fails().with_options(retry_delay_seconds=None, max_retries=1)
    started = time.monotonic()
    run_in_process(Pipeline.of(flaky), default_retry_delay_seconds=0.25)
    assert time.monotonic() - started >= 0.25


def test_failures_a_retry_cannot_mend_are_not_retried() -> None:
    run = run_in_process(pulls_nothing(), default_retry_delay_seconds=5)
    assert run.attempts == {"pulls_nothing": 1}
    assert "XComNotFoundError" in run.errors["pulls_nothing"]
