"""Sensors on real workers and in-process (``dag test``): "not yet" sends the task back
to SCHEDULED so a one-slot worker runs other tasks meanwhile; a timeout fails it or,
with soft_fail, skips it; a sensor that raises fails like any task (with retries)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fairque import AsyncWorker, Pipeline, TaskState, Worker
from fairque.monitoring.metrics import OUTCOMES, outcome_label
from fairque.queue.results import FailOutcome, FinishOutcome
from fairque.tasks import run_in_process
from tests.integration import control_tasks as dt
from tests.timing import budget, wait_until

from .conftest import ConfigFactory, QueueFactory, background_worker

S = TaskState


@pytest.fixture
def one_slot(redis_url: str, redis_client: object) -> Iterator[Worker]:
    """A worker with a single slot."""
    with background_worker(
        redis_url,
        "w-one-slot",
        allowed_modules=["tests"],
        max_concurrent_tasks=1,
        poll_interval_seconds=0.05,
    ) as running:
        yield running


@pytest.mark.slow
def test_a_waiting_sensor_frees_the_only_slot_for_another_task(
    make_queue: QueueFactory, one_slot: Worker, tmp_path: Path
) -> None:
    target = tmp_path / "arrives-later.csv"
    queue = make_queue()
    waiting = queue.enqueue(dt.wait_file(str(target)))
    wait_until(lambda: waiting.task("wait_file").pokes >= 1, 10, "the sensor's first poke")
    other = queue.enqueue(dt.busy(2.0))
    wait_until(lambda: other.task("busy").state is S.STARTED, 10, "the other task to start")
    assert waiting.task("wait_file").state is S.SCHEDULED  # waiting without a slot
    target.write_text("a,b\n")  # the file arrives while the other task runs
    assert other.wait(timeout=budget(30)) == {"busy": S.FINISHED}
    assert waiting.wait(timeout=budget(30)) == {"wait_file": S.FINISHED}
    sensor, busy = waiting.task("wait_file"), other.task("busy")
    assert sensor.pokes >= 1 and sensor.attempts == 1  # pokes are not attempts
    assert sensor.first_poke_at is not None and busy.started_at is not None
    assert busy.finished_at is not None and sensor.finished_at is not None
    assert sensor.first_poke_at <= busy.started_at < busy.finished_at <= sensor.finished_at
    assert waiting.result("wait_file") is True


def test_a_sensor_times_out_or_is_skipped_with_soft_fail(
    make_queue: QueueFactory, one_slot: Worker
) -> None:
    pipeline = Pipeline.of(dt.never() >> dt.left(), dt.never_soft() >> dt.right())
    run = make_queue().enqueue(pipeline)
    run.wait(timeout=budget(30))
    never, soft = run.task("never"), run.task("never_soft")
    assert never.state is S.FAILED and never.attempts == 1 and never.pokes >= 2
    assert never.error is not None and never.error["type"] == "SensorTimeoutError"
    assert "not met within 0.6 s of its first poke" in never.error["message"]
    assert run.task("left").display_state == "upstream_failed"
    assert soft.state is S.CANCELED and soft.display_state == "skipped"
    assert soft.error is not None and "soft_fail" in soft.error["message"]
    assert [a["outcome"] for a in soft.attempt_history] == ["skipped"]  # as the task shows
    assert [a["outcome"] for a in never.attempt_history] == ["failed"]
    assert run.task("right").display_state == "skipped"  # all_success after a skip


def test_a_sensor_that_raises_fails_with_retries(
    make_queue: QueueFactory, one_slot: Worker
) -> None:
    run = make_queue().enqueue(dt.broken_sensor())
    assert run.wait(timeout=budget(30)) == {"broken_sensor": S.FAILED}
    record = run.task("broken_sensor")
    assert record.attempts == 2 and record.pokes == 0
    assert record.error is not None and record.error["type"] == "RuntimeError"


def test_a_sensor_value_becomes_its_result(make_queue: QueueFactory, one_slot: Worker) -> None:
    run = make_queue().enqueue(dt.pokes_then_value(time.time() + 0.3))
    assert run.wait(timeout=budget(30)) == {"pokes_then_value": S.FINISHED}
    assert set(run.result("pokes_then_value")) == {"met_at"}
    assert run.task("pokes_then_value").pokes >= 1


def test_sensors_in_process(tmp_path: Path) -> None:
    target = tmp_path / "later.txt"
    creator = threading.Timer(0.3, target.write_text, args=("x",))
    creator.start()
    try:
        run = run_in_process(
            Pipeline.of(
                dt.wait_file(str(target)), dt.never() >> dt.left(), dt.never_soft() >> dt.right()
            )
        )
    finally:
        creator.cancel()
    shown = {name: record.display_state for name, record in run.tasks.items()}
    assert shown == {
        "wait_file": "finished",
        "never": "failed",
        "left": "upstream_failed",
        "never_soft": "skipped",
        "right": "skipped",
    }
    assert "SensorTimeoutError" in run.errors["never"] and run.attempts["never"] == 1
    broken = run_in_process(dt.broken_sensor())
    assert broken.attempts["broken_sensor"] == 2 and broken.states["broken_sensor"] is S.FAILED


def test_an_async_worker_pokes_sensors_and_follows_branches(
    make_config: ConfigFactory, make_queue: QueueFactory
) -> None:
    config = make_config(worker_id="w-async", allowed_modules=["tests"], poll_interval_seconds=0.05)
    pipeline = Pipeline.of(
        dt.pokes_then_value(time.time() + 0.3), dt.choose("right") >> (dt.left() | dt.right())
    )
    run = make_queue().enqueue(pipeline)

    async def drive() -> AsyncWorker:
        worker = AsyncWorker(config)
        running = worker.start_background()
        try:
            await asyncio.to_thread(run.wait, budget(20))
        finally:
            worker.stop(graceful=False)
            await running
            await worker.queue.close()
        return worker

    worker = asyncio.run(drive())
    shown = {name: run.task(name).display_state for name in run.task_ids}
    assert shown == {
        "pokes_then_value": "finished",
        "choose": "finished",
        "left": "skipped",
        "right": "finished",
    }
    assert run.task("pokes_then_value").pokes >= 1
    assert worker.core.failed == 0 and worker.core.processed == 3  # a poke is neither


def test_a_poke_has_its_own_metrics_label() -> None:
    assert outcome_label(FinishOutcome(S.SCHEDULED)) == "poked"
    assert outcome_label(FailOutcome(S.SCHEDULED, retry_at=1.0)) == "retried"
    assert "poked" in OUTCOMES
