"""Worker and AsyncWorker in this process: function and payload tasks, failures,
timeouts, concurrency, import rules, wake-up, graceful stop and cancellation.

Each scenario runs with both workers (the ``kind`` fixture); only the I/O differs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fairque import (
    AsyncWorker,
    FairQueueConfig,
    Task,
    TaskHandler,
    TaskQueue,
    TaskRecord,
    TaskState,
    Worker,
)
from tests.integration import jobs
from tests.timing import budget, wait_until

from .conftest import ConfigFactory

JOBS = "tests.integration.jobs"


class Running:
    """A worker of either kind running in the background of a test."""

    def __init__(self, kind: str, config: FairQueueConfig, handler: TaskHandler | None) -> None:
        self.kind = kind
        if kind == "sync":
            self.worker: Worker | AsyncWorker = Worker(config, handler)
            self._thread = self.worker.start_background()  # type: ignore[union-attr]
        else:
            self.worker = AsyncWorker(config, handler)
            self._thread = threading.Thread(target=asyncio.run, args=(self._main(),))
            self._thread.start()

    async def _main(self) -> None:
        assert isinstance(self.worker, AsyncWorker)
        await self.worker.run()
        await self.worker.queue.close()

    def stop(self, graceful: bool = True) -> None:
        self.worker.stop(graceful)

    def join(self, timeout: float = 10) -> bool:
        self._thread.join(budget(timeout))
        return not self._thread.is_alive()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def queue(make_config: ConfigFactory) -> Iterator[TaskQueue]:
    with TaskQueue(make_config()) as q:
        yield q


@pytest.fixture
def start(make_config: ConfigFactory, kind: str) -> Iterator[Callable[..., Running]]:
    """Start a worker of the test's kind; stopped at teardown."""
    started: list[Running] = []

    def run(handler: TaskHandler | None = None, **settings: Any) -> Running:
        settings.setdefault("allowed_modules", ["tests"])
        settings.setdefault("poll_interval_seconds", 0.1)
        settings.setdefault("worker_id", f"{kind}-{len(started)}")
        worker = Running(kind, make_config(**settings), handler)
        started.append(worker)
        return worker

    yield run
    for worker in started:
        worker.stop(graceful=False)
    for worker in started:
        assert worker.join(), "worker did not stop"
    if isinstance(started[0].worker, Worker) if started else False:
        for worker in started:
            worker.worker.queue.close()  # type: ignore[union-attr]


def state_of(queue: TaskQueue, task_id: str) -> TaskState | None:
    return queue.get_task(task_id).state


def ended(queue: TaskQueue, task_id: str) -> Callable[[], bool]:
    return lambda: bool((s := state_of(queue, task_id)) and s.is_terminal)


def ends_within_a_second(queue: TaskQueue, task_id: str, began: float) -> None:
    """The task ends within a (scaled) second of ``began``: the worker did not wait for
    its poll interval."""
    wait_until(ended(queue, task_id), 4)
    assert time.monotonic() - began < budget(1.0)


def func_task(name: str, *args: Any, **options: Any) -> Task:
    return Task.create("u", func=f"{JOBS}:{name}", args=list(args), **options)


def test_function_tasks_run_and_results_are_recorded(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start()
    ids = [queue.push(func_task("add", n, 10))["task_id"] for n in range(5)]
    for task_id in ids:
        wait_until(ended(queue, task_id), 5)
    records = [queue.get_task(i) for i in ids]
    assert [r.result for r in records] == [10, 11, 12, 13, 14]
    assert all(r.state is TaskState.FINISHED and r.duration is not None for r in records)


def test_async_functions_run(queue: TaskQueue, start: Callable[..., Running]) -> None:
    start()
    task_id = queue.push(func_task("async_sleep_then", 0.01, {"v": 1}))["task_id"]
    wait_until(ended(queue, task_id), 5)
    assert queue.get_task(task_id).result == {"v": 1}


def test_async_tasks_use_awaitable_xcom_on_either_worker(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start()
    task_id = queue.push(func_task("async_xcom_round_trips", 3))["task_id"]
    wait_until(ended(queue, task_id), 5)
    assert queue.get_task(task_id).result == 0 + 1 + 2
    lineage = queue.run_pipeline(queue.calls.lineage("user:u"))
    assert [(e["kind"], e["key"]) for e in lineage] == [
        (kind, f"k{n}") for n in range(3) for kind in ("push", "pull")
    ]


def test_a_raising_task_is_retried_then_failed_with_its_error(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start()
    task_id = queue.push(func_task("boom", "bad", max_retries=2, retry_delay_seconds=0.05))[
        "task_id"
    ]
    wait_until(ended(queue, task_id), 5)
    record = queue.get_task(task_id)
    assert record.state is TaskState.FAILED and record.attempts == 3
    assert record.error is not None and record.error["type"] == "ValueError"
    assert record.error["message"] == "bad" and "in boom" in record.error["traceback"]


def test_a_task_that_succeeds_on_its_third_attempt_keeps_all_three(
    queue: TaskQueue, start: Callable[..., Running], tmp_path: Path, kind: str
) -> None:
    start()
    counter = str(tmp_path / "executions")
    task = func_task("fail_times", counter, 2, max_retries=3, retry_delay_seconds=0.05)
    task_id = queue.push(task)["task_id"]
    wait_until(ended(queue, task_id), 5)
    record = queue.get_task(task_id)
    assert (record.state, record.result, record.error) == (TaskState.FINISHED, 3, None)
    history = record.attempt_history
    assert [(a["attempt"], a["outcome"]) for a in history] == [
        (1, "failed"),
        (2, "failed"),
        (3, "finished"),
    ]
    assert [a["error"]["message"] for a in history[:2]] == [
        "execution 1 fails",
        "execution 2 fails",
    ]
    assert "in fail_times" in history[0]["error"]["traceback"]
    assert all(a["worker"] == f"{kind}-0" for a in history)
    assert all(a["duration"] is not None and a["duration"] >= 0 for a in history)


def test_a_task_past_its_timeout_fails_and_frees_its_slot(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(max_concurrent_tasks=1)
    slow = queue.push(func_task("sleep_then", 3, timeout_seconds=0.2, max_retries=0))["task_id"]
    quick = queue.push(func_task("add", 1, 1))["task_id"]
    started = time.monotonic()
    wait_until(ended(queue, quick), 5)
    assert time.monotonic() - started < budget(2)  # did not wait for the 3 s task
    record = queue.get_task(slow)
    assert record.state is TaskState.FAILED
    assert record.error is not None and record.error["type"] == "TaskTimeoutError"


def test_max_concurrent_tasks_is_never_exceeded(
    queue: TaskQueue, start: Callable[..., Running], kind: str
) -> None:
    jobs.GAUGE.reset()
    start(max_concurrent_tasks=3)
    name = "gauged" if kind == "sync" else "async_gauged"
    ids = [queue.push(func_task(name, 0.1))["task_id"] for _ in range(10)]
    for task_id in ids:
        wait_until(ended(queue, task_id), 5)
    assert jobs.GAUGE.peak == 3


def test_a_function_outside_allowed_modules_is_refused_and_never_run(
    queue: TaskQueue, start: Callable[..., Running], tmp_path: Path
) -> None:
    start()
    target = tmp_path / "hacked"
    task = Task.create("u", func="pathlib:Path.touch", args=[str(target)], max_retries=3)
    queue.push(task)
    wait_until(ended(queue, task.task_id), 5)
    record = queue.get_task(task.task_id)
    assert record.state is TaskState.FAILED and record.attempts == 1  # not retried
    assert record.error is not None and "allowed_modules" in record.error["message"]
    assert not target.exists()


@pytest.mark.parametrize(
    ("attribute", "args"),
    [("os.system", ["touch {target}"]), ("subprocess.run", [["touch", "{target}"]])],
)
def test_a_path_through_a_module_the_task_module_imports_runs_nothing(
    queue: TaskQueue,
    start: Callable[..., Running],
    tmp_path: Path,
    attribute: str,
    args: list[Any],
) -> None:
    """tests.unit.bypass_tasks is allowed (under "tests") and imports os and subprocess;
    its module objects are not a way to reach them."""
    start()
    target = tmp_path / "hacked"
    filled = json.loads(json.dumps(args).replace("{target}", str(target)))
    task = Task.create("u", func=f"tests.unit.bypass_tasks:{attribute}", args=filled)
    queue.push(task)
    wait_until(ended(queue, task.task_id), 5)
    record = queue.get_task(task.task_id)
    assert record.state is TaskState.FAILED and record.attempts == 1  # not retried
    assert record.error is not None
    module = attribute.partition(".")[0]
    assert f"module {module!r} is not in allowed_modules" in record.error["message"]
    assert not target.exists()


def test_a_result_that_is_not_json_fails_the_task(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start()
    task_id = queue.push(func_task("not_json"))["task_id"]
    wait_until(ended(queue, task_id), 5)
    record = queue.get_task(task_id)
    assert record.state is TaskState.FAILED
    assert record.error is not None and "JSON" in record.error["message"]


def test_a_lone_surrogate_in_a_result_or_an_error_fails_the_task_not_the_worker(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    running = start()
    result_id = queue.push(func_task("not_utf8_name"))["task_id"]
    error_id = queue.push(func_task("not_utf8_error", max_retries=0))["task_id"]
    wait_until(ended(queue, result_id), 5)
    wait_until(ended(queue, error_id), 5)
    result = queue.get_task(result_id)
    assert result.state is TaskState.FAILED
    assert result.error is not None and "surrogate" in result.error["message"]
    error = queue.get_task(error_id)
    assert error.state is TaskState.FAILED and error.error is not None
    assert error.error["message"] == "no file caf\\udce9"  # escaped, readable
    later = queue.push(func_task("add", 1, 2))["task_id"]
    wait_until(ended(queue, later), 5)
    assert queue.get_task(later).result == 3
    assert running.join(0.01) is False  # still running


class Recorder(TaskHandler):
    """Handles payload tasks and records the hooks it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.results: dict[str, Any] = {}

    def _process_task(self, task: Task) -> bool:
        if task.func is None:
            self.set_result({"handled": task.payload["action"]})
            return task.payload["action"] != "refuse"
        return super()._process_task(task)

    def on_task_success(self, task: TaskRecord, duration: float) -> None:
        self.events.append(("success", task.task_id))
        self.results[task.task_id] = task.result

    def on_task_failure(self, task: Task, error: Exception, duration: float) -> None:
        self.events.append(("failure", task.task_id))


def test_a_custom_handler_runs_payload_tasks_and_hooks(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    handler = Recorder()
    start(handler)
    ok = queue.push(Task.create("u", payload={"action": "ship"}))["task_id"]
    refused = queue.push(Task.create("u", payload={"action": "refuse"}, max_retries=0))["task_id"]
    fn = queue.push(func_task("add", 2, 2))["task_id"]
    for task_id in (ok, refused, fn):
        wait_until(ended(queue, task_id), 5)
    assert queue.get_task(ok).result == {"handled": "ship"}
    assert queue.get_task(refused).state is TaskState.FAILED
    assert queue.get_task(fn).result == 4
    assert sorted(handler.events) == sorted(
        [("success", ok), ("failure", refused), ("success", fn)]
    )
    assert handler.results == {ok: {"handled": "ship"}, fn: 4}  # the hook's record has it


class OnlyTrue(TaskHandler):
    """The README's handler shape: payload tasks return True without a result."""

    def _process_task(self, task: TaskRecord) -> bool:
        if task.payload.get("action") == "custom_processing":
            return True
        return super()._process_task(task)


def test_a_handler_returning_only_true_keeps_function_results(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(OnlyTrue())
    payload = queue.push(Task.create("u", payload={"action": "custom_processing"}))["task_id"]
    fn = queue.push(func_task("add", 20, 22))["task_id"]
    for task_id in (payload, fn):
        wait_until(ended(queue, task_id), 5)
    assert queue.get_task(payload).state is TaskState.FINISHED
    assert queue.get_task(payload).result is None
    assert queue.get_task(fn).result == 42


def test_payload_task_without_a_handler_fails_clearly(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start()
    task_id = queue.push(Task.create("u", payload={"x": 1}, max_retries=0))["task_id"]
    wait_until(ended(queue, task_id), 5)
    record = queue.get_task(task_id)
    assert record.error is not None and "_process_task" in record.error["message"]


def test_an_idle_worker_wakes_on_push_not_on_its_poll(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(poll_interval_seconds=5.0)
    time.sleep(0.2)  # let it settle into waiting on its queues
    began = time.monotonic()
    ends_within_a_second(queue, queue.push(func_task("noop"))["task_id"], began)


def test_an_ending_task_wakes_the_idle_loop_not_its_poll(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(poll_interval_seconds=5.0)
    task_id = queue.push(func_task("sleep_then", 0.2, "done"))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 4)
    ends_within_a_second(queue, task_id, time.monotonic())


def test_a_push_wakes_a_worker_that_is_busy_with_free_slots(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(poll_interval_seconds=5.0, max_concurrent_tasks=2)
    long_id = queue.push(func_task("sleep_then", 2.0, "long"))["task_id"]
    wait_until(lambda: state_of(queue, long_id) is TaskState.STARTED, 4)
    time.sleep(0.1)  # the loop sleeps again, one task running
    began = time.monotonic()
    ends_within_a_second(queue, queue.push(func_task("noop"))["task_id"], began)


def test_stop_wakes_an_idle_worker_at_once(start: Callable[..., Running]) -> None:
    worker = start(poll_interval_seconds=5.0)
    time.sleep(0.2)  # waiting on its sockets
    began = time.monotonic()
    worker.stop()
    assert worker.join(4)
    assert time.monotonic() - began < budget(1.0)


def test_it_polls_when_notifications_are_lost(
    queue: TaskQueue, start: Callable[..., Running], kind: str
) -> None:
    worker = start(poll_interval_seconds=0.2)
    time.sleep(0.1)
    queue.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    task_id = queue.push(func_task("noop"))["task_id"]
    wait_until(ended(queue, task_id), 3)
    # The worker counts the task once the script that ended it has returned.
    wait_until(lambda: worker.worker.core.processed >= 1, 1, "the worker to count it")


def test_steals_only_when_its_own_users_are_idle(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    queue.push_batch([func_task("sleep_then", 0.05, "other") for _ in range(3)])
    mine = [Task.create("mine", func=f"{JOBS}:sleep_then", args=[0.05, "mine"]) for _ in range(3)]
    for task in mine:
        queue.push(task)
    start(assigned_users=["mine"], steal_targets=["u"], max_concurrent_tasks=1)
    wait_until(lambda: queue.get_stats()["tasks_finished"] == 6, 5)
    order = sorted(
        (queue.get_task(t).started_at or 0, queue.get_task(t).user_id)
        for t in queue.redis.zrange(queue.keys.state("finished"), 0, -1)
    )
    assert [user for _, user in order][:3] == ["mine"] * 3


def test_graceful_stop_lets_running_tasks_finish(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    worker = start()
    task_id = queue.push(func_task("sleep_then", 0.3, "done"))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 5)
    worker.stop()
    assert worker.join(5)
    assert queue.get_task(task_id).state is TaskState.FINISHED


def test_after_the_grace_period_running_tasks_are_handed_back(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    worker = start(shutdown_grace_seconds=0.2)
    task_id = queue.push(func_task("sleep_then", 5, "late"))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 5)
    began = time.monotonic()
    worker.stop()
    assert worker.join(5)
    assert time.monotonic() - began < budget(2)
    record = queue.get_task(task_id)
    assert record.state is TaskState.QUEUED and record.attempts == 0


def _short_tasks_seen(queue: TaskQueue, worker: Running) -> None:
    """Run one quick task, so the worker knows its tasks are short (it claims ahead)."""
    wait_until(ended(queue, queue.push(func_task("noop"))["task_id"]), 5)
    wait_until(lambda: worker.worker.core.prefetching(), 2, "the worker to claim ahead")


def test_tasks_claimed_ahead_are_started_and_handed_back_unrun_by_a_graceful_stop(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    worker = start(max_concurrent_tasks=1, prefetch_tasks=2, prefetch_below_seconds=5.0)
    _short_tasks_seen(queue, worker)
    slow = queue.push(func_task("sleep_then", 1.0, "slow"))["task_id"]
    wait_until(lambda: state_of(queue, slow) is TaskState.STARTED, 5)
    ahead = [queue.push(func_task("add", n, 1))["task_id"] for n in range(3)]
    claimed = lambda: [state_of(queue, i) for i in ahead]  # noqa: E731
    wait_until(lambda: claimed().count(TaskState.STARTED) == 2, 5, "two tasks claimed ahead")
    assert claimed().count(TaskState.QUEUED) == 1  # one slot + two ahead, no more
    assert state_of(queue, slow) is TaskState.STARTED  # they wait behind it
    worker.stop()
    assert worker.join(5)
    assert queue.get_task(slow).state is TaskState.FINISHED
    records = [queue.get_task(i) for i in ahead]
    assert [r.state for r in records] == [TaskState.QUEUED] * 3
    assert [r.attempts for r in records] == [0, 0, 0]  # never ran, no attempt spent


def test_a_task_claimed_ahead_is_timed_from_its_start_and_times_out(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    worker = start(
        max_concurrent_tasks=1,
        prefetch_tasks=1,
        prefetch_below_seconds=5.0,
        poll_interval_seconds=5.0,  # only the wake-up can bring the loop in time
    )
    _short_tasks_seen(queue, worker)
    first = queue.push(func_task("sleep_then", 0.5, "first"))["task_id"]
    wait_until(lambda: state_of(queue, first) is TaskState.STARTED, 5)
    late = queue.push(func_task("sleep_then", 5, timeout_seconds=0.3, max_retries=0))["task_id"]
    wait_until(lambda: state_of(queue, late) is TaskState.STARTED, 5, "a claim ahead")
    wait_until(ended(queue, first), 5)
    began = time.monotonic()
    wait_until(ended(queue, late), 5)
    assert time.monotonic() - began < budget(2.0)  # 0.3 s from its start, not 5 s
    record = queue.get_task(late)
    assert record.state is TaskState.FAILED and "timeout" in (record.error or {}).get("message", "")


@pytest.mark.slow
def test_a_task_claimed_ahead_goes_back_when_the_running_one_turns_long(
    queue: TaskQueue, start: Callable[..., Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairque.worker import runtime

    monkeypatch.setattr(runtime, "AHEAD_WAIT_SECONDS", 0.15)
    worker = start(max_concurrent_tasks=1, prefetch_tasks=1, prefetch_below_seconds=0.6)
    _short_tasks_seen(queue, worker)
    slow = queue.push(func_task("sleep_then", 2.0, "slow"))["task_id"]
    wait_until(lambda: state_of(queue, slow) is TaskState.STARTED, 5)
    began = time.monotonic()
    behind = queue.push(func_task("add", 1, 1))["task_id"]
    # Claimed ahead while the slow one had run less than 0.6 s, handed back after
    # 0.15 s of waiting, and no longer claimed ahead once the slow one has run 0.6 s:
    # it waits in its queue, free for another worker, until the slot frees.
    wait_until(lambda: queue.get_task(behind).claim_token > 0, 5, "a claim ahead")
    time.sleep(max(0.0, began + 0.9 - time.monotonic()))
    for _ in range(2):
        assert state_of(queue, behind) is TaskState.QUEUED
        assert state_of(queue, slow) is TaskState.STARTED
        time.sleep(0.3)  # a claim again would show within the worker's next turns
    wait_until(ended(queue, behind), 5)
    record = queue.get_task(behind)
    assert record.state is TaskState.FINISHED and record.attempts == 1


def test_a_second_stop_request_stops_at_once(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    worker = start(shutdown_grace_seconds=30)
    task_id = queue.push(func_task("sleep_then", 5))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 5)
    worker.stop()
    worker.stop(graceful=False)
    assert worker.join(3)
    assert queue.get_task(task_id).state is TaskState.QUEUED


@pytest.mark.parametrize(
    ("job", "seconds"),
    [("sleep_then", 0.5), ("until_canceled", 8.0)],  # the second ends once it sees it
)
def test_canceling_a_running_task_ends_it_canceled(
    queue: TaskQueue, start: Callable[..., Running], job: str, seconds: float
) -> None:
    start(lease_seconds=0.3)
    task_id = queue.push(func_task(job, seconds))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 5)
    assert queue.cancel(task_id) == "requested"
    wait_until(ended(queue, task_id), 4)
    assert queue.get_task(task_id).state is TaskState.CANCELED


def test_leases_are_renewed_while_a_long_task_runs(
    queue: TaskQueue, start: Callable[..., Running]
) -> None:
    start(lease_seconds=0.3)
    task_id = queue.push(func_task("sleep_then", 1.2, "kept"))["task_id"]
    wait_until(lambda: state_of(queue, task_id) is TaskState.STARTED, 5)
    for _ in range(8):  # another party reclaiming expired leases finds none
        time.sleep(0.1)
        assert queue.reclaim_expired() == (0, 0)
    wait_until(ended(queue, task_id), 5)
    record = queue.get_task(task_id)
    assert record.result == "kept" and record.recoveries == 0


def test_a_live_worker_keeps_a_heartbeat_record(
    queue: TaskQueue, start: Callable[..., Running], kind: str
) -> None:
    from fairque.monitoring.health import check_health, live_workers

    worker = start(assigned_users=["alice"])
    wait_until(lambda: len(live_workers(queue)) == 1, 5)
    (info,) = live_workers(queue)
    assert info.id == f"{kind}-0" and info.assigned_users == ["alice"]
    queue.push(Task.create("bob", task_id="lonely"))
    report = check_health(queue)
    assert report.unserved_users == ["bob"] and not report.ok
    worker.stop()
    assert worker.join(5)
    assert live_workers(queue) == []


def test_each_task_end_is_logged_with_its_fields(
    queue: TaskQueue, start: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fairque.worker")
    start()
    ok = queue.push(func_task("add", 1, 2, task_id="ok"))["task_id"]
    bad = queue.push(func_task("boom", "bad", max_retries=1, retry_delay_seconds=0.05))["task_id"]

    def lines(task_id: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "task_id", None) == task_id]

    wait_until(lambda: len(lines(ok)) == 1 and len(lines(bad)) == 3, 5)
    (done,) = lines(ok)
    assert done.levelno == logging.INFO and done.name == "fairque.worker.tasklog"
    assert done.getMessage().startswith(f"task ok ({JOBS}:add) of u finished in ")
    assert done.user_id == "u" and done.attempt == 1 and done.duration >= 0  # type: ignore[attr-defined]
    first, retry, last = lines(bad)
    assert [first.levelno, retry.levelno, last.levelno] == [
        logging.ERROR,
        logging.WARNING,
        logging.ERROR,
    ]
    assert "failed in" in first.getMessage() and "ValueError: bad" in first.getMessage()
    assert first.exc_info is not None and first.exc_info[1] is not None
    assert "in boom" in caplog.text  # the traceback is in the log
    assert "retry 1 of 1 scheduled" in retry.getMessage()
    assert last.attempt == 2  # type: ignore[attr-defined]
