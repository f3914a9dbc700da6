"""Run timeouts and run callbacks on real workers: a run past its dagrun_timeout_seconds
is failed, its waiting tasks canceled and its running ones stopped; on_failure_callback /
on_success_callback are called once per run end, by one worker, with the run's summary;
a failing or disallowed callback is logged and changes nothing else."""

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

from fairque import AsyncWorker, FairQueueConfig, TaskQueue, TaskState, Worker
from fairque.core.errors import DagError
from fairque.dag import DAG, validate_dag_file
from fairque.dag.runs import trigger
from fairque.queue.runs import RunState
from tests.integration import run_ends as re_
from tests.timing import budget, wait_until

from .conftest import ConfigFactory, QueueFactory
from .proxy import CuttableProxy

S = TaskState
CALLBACK = "tests.integration.run_ends:record"
LOG_PARAM = {"log": {"type": "string"}}

WorkerFactory = Callable[..., Worker]


@pytest.fixture
def start_worker(make_config: ConfigFactory) -> Iterator[WorkerFactory]:
    """Start background workers (fast maintenance); stopped at teardown."""
    started: list[Worker] = []

    def start(worker_id: str = "w0", **settings: Any) -> Worker:
        settings.setdefault("allowed_modules", ["tests"])
        config = make_config(worker_id=worker_id, poll_interval_seconds=0.05, **settings)
        worker = Worker(config)
        worker.start_background()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(graceful=False)
    for worker in started:
        assert worker.join(budget(10))
        worker.queue.close()


def _dag(pipeline: Any, **settings: Any) -> DAG:
    return DAG(dag_id="ends", pipeline=pipeline, params=LOG_PARAM, **settings)


def _ended(queue: TaskQueue, log: Path, count: int = 1) -> list[dict[str, Any]]:
    wait_until(lambda: len(re_.calls(log)) >= count, budget(10), "the run callback")
    return re_.calls(log)


def test_a_failed_run_calls_its_failure_callback_once_with_the_failed_tasks(
    make_queue: QueueFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    for n in range(3):  # three workers race for the run's end
        start_worker(f"w{n}")
    log = tmp_path / "calls.log"
    dag = _dag(
        re_.broken().with_options(task_id="load", max_retries=0)
        >> re_.ok().with_options(task_id="report"),
        on_failure_callback=CALLBACK,
        on_success_callback="tests.integration.run_ends:record_then_raise",
    )
    run = trigger(queue, dag, conf={"log": str(log)})
    (summary,) = _ended(queue, log)
    assert summary["run_id"] == run.run_id and summary["dag_id"] == "ends"
    assert summary["state"] == "failed" and summary["timed_out"] is False
    assert list(summary["failed_tasks"]) == ["load"]
    assert "broken on purpose" in summary["failed_tasks"]["load"]["message"]
    wait_until(lambda: queue.redis.zcard(queue.keys.runs_watched) == 0, budget(5), "unwatched")
    assert queue.watch_runs() == []  # claimed already: nobody gets it again
    assert len(re_.calls(log)) == 1


def test_a_successful_run_calls_its_success_callback_only(
    make_queue: QueueFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    start_worker()
    log = tmp_path / "calls.log"
    dag = _dag(
        re_.ok().with_options(task_id="a") >> re_.ok().with_options(task_id="b"),
        on_failure_callback="tests.integration.run_ends:record_then_raise",
        on_success_callback=CALLBACK,
    )
    trigger(queue, dag, conf={"log": str(log)})
    (summary,) = _ended(queue, log)
    assert summary["state"] == "success" and summary["failed_tasks"] == {}


def test_a_run_past_its_timeout_is_failed_waiting_tasks_canceled_running_ones_stopped(
    make_queue: QueueFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    start_worker(lease_seconds=0.6)  # a worker hears of a stop request when it renews
    log = tmp_path / "calls.log"
    dag = _dag(
        re_.until_stopped(budget(30)).with_options(task_id="slow")
        >> re_.ok().with_options(task_id="after"),
        dagrun_timeout_seconds=0.5,
        on_failure_callback=CALLBACK,
    )
    run = trigger(queue, dag, conf={"log": str(log)})
    wait_until(lambda: run.states()["slow"] is S.STARTED, budget(10), "slow to start")
    (summary,) = _ended(queue, log)
    assert summary["state"] == "failed" and summary["timed_out"] is True
    info = queue.get_run(run.run_id)
    assert info.state is RunState.FAILED and info.timed_out
    assert info.to_dict()["timed_out"] is True
    slow, after = run.task("slow"), run.task("after")
    assert slow.state is S.CANCELED  # asked to stop, it stopped
    assert after.state is S.CANCELED and after.error is not None
    assert after.error["type"] == "RunTimeout"
    assert "timeout of 0.5 s" in after.error["message"]


def test_a_timed_out_run_is_failed_at_once_even_while_a_task_still_runs(
    make_queue: QueueFactory,
) -> None:
    """No worker: the test plays one (pop, then watch_runs as its maintenance would)."""
    queue = make_queue()
    dag = _dag(re_.ok().with_options(task_id="a"), dagrun_timeout_seconds=0.2)
    run = trigger(queue, dag, conf={"log": "-"})
    claimed = queue.pop()
    assert claimed is not None
    wait_until(
        lambda: queue.watch_runs() == [] and queue.get_run(run.run_id).timed_out,
        budget(5),
        "the timeout",
    )
    info = queue.get_run(run.run_id)
    assert info.state is RunState.FAILED
    assert queue.get_task(claimed.task_id).cancel_requested
    queue.finish(claimed, "late")  # the worker ends it: CANCELED, as asked
    (ended,) = queue.watch_runs()
    assert ended.run_id == run.run_id and ended.state is RunState.FAILED
    assert run.task("a").state is S.CANCELED


def test_concurrent_watchers_claim_each_run_end_once(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    dag = _dag(re_.ok().with_options(task_id="a"), on_success_callback=CALLBACK)
    ids = {trigger(queue, dag, conf={"log": "-"}, run_id=f"r{n}").run_id for n in range(20)}
    assert queue.watch_runs() == []  # none ended yet
    while (task := queue.pop()) is not None:
        queue.finish(task, "ok")
    watchers = [make_queue() for _ in range(4)]
    got: list[list[str]] = [[] for _ in watchers]
    barrier = threading.Barrier(len(watchers))

    def watch(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            got[n] += [info.run_id for info in watchers[n].watch_runs(limit=3)]

    threads = [threading.Thread(target=watch, args=(n,)) for n in range(len(watchers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [run_id for ids_ in got for run_id in ids_]
    assert sorted(claimed) == sorted(ids)  # every end once, by one watcher


def test_a_canceled_run_calls_the_failure_callback(
    make_queue: QueueFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    log = tmp_path / "calls.log"
    dag = _dag(re_.ok().with_options(task_id="a"), on_failure_callback=CALLBACK)
    run = trigger(queue, dag, conf={"log": str(log)})
    queue.cancel_run(run.run_id)
    start_worker()
    (summary,) = _ended(queue, log)
    assert summary["state"] == "canceled"


def test_a_failing_callback_is_logged_and_changes_nothing(
    make_queue: QueueFactory,
    start_worker: WorkerFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fairque.worker.callbacks")
    queue = make_queue()
    start_worker()
    log = tmp_path / "calls.log"
    raising = _dag(
        re_.ok().with_options(task_id="a"),
        on_success_callback="tests.integration.run_ends:record_then_raise",
    )
    first = trigger(queue, raising, conf={"log": str(log)}, run_id="first")
    _ended(queue, log)
    wait_until(lambda: "callback failed on purpose" in caplog.text, budget(5), "the log")
    assert queue.get_run(first.run_id).state is RunState.SUCCESS
    later = _dag(re_.ok().with_options(task_id="a"), on_success_callback=CALLBACK)
    trigger(queue, later, conf={"log": str(log)}, run_id="second")
    assert [c["run_id"] for c in _ended(queue, log, 2)] == ["first", "second"]


def test_a_callback_outside_allowed_modules_is_logged_not_called(
    make_queue: QueueFactory,
    start_worker: WorkerFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = make_queue()
    start_worker(allowed_modules=["tests.integration.run_ends"])
    dag = _dag(re_.ok().with_options(task_id="a"), on_success_callback="os:getcwd")
    run = trigger(queue, dag, conf={"log": str(tmp_path / "calls.log")})
    wait_until(lambda: "callback not called" in caplog.text, budget(10), "the refusal")
    assert "not in allowed_modules" in caplog.text
    assert queue.get_run(run.run_id).state is RunState.SUCCESS


def test_a_killed_worker_does_not_lose_the_callback(
    make_queue: QueueFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    """A worker that claimed the last task dies (its lease expires); the worker that
    reclaims and reruns the task sees the run end and calls the callback once."""
    queue = make_queue(lease_seconds=0.3)
    log = tmp_path / "calls.log"
    dag = _dag(re_.ok().with_options(task_id="a"), on_success_callback=CALLBACK)
    trigger(queue, dag, conf={"log": str(log)})
    assert queue.pop() is not None  # the "killed" worker: it never settles
    start_worker(lease_seconds=0.3)
    (summary,) = _ended(queue, log)
    assert summary["state"] == "success"


def test_runs_without_timeout_or_callbacks_are_not_watched(make_queue: QueueFactory) -> None:
    queue = make_queue()
    trigger(queue, _dag(re_.ok().with_options(task_id="a")), conf={"log": "-"})
    queue.enqueue(re_.ok())
    assert queue.redis.zcard(queue.keys.runs_watched) == 0


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"dagrun_timeout_seconds": 0}, "dagrun_timeout_seconds: must be a positive number"),
        ({"dagrun_timeout_seconds": -1.5}, "must be a positive number"),
        ({"dagrun_timeout_seconds": "10"}, "must be a positive number"),
        ({"dagrun_timeout_seconds": True}, "must be a positive number"),
        ({"dagrun_timeout_seconds": float("inf")}, "must be a positive number"),
        ({"on_failure_callback": "no_colon"}, "on_failure_callback: 'no_colon' is not an import"),
        ({"on_success_callback": "a b:c"}, "on_success_callback:"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(DagError, match=words.replace("(", r"\(")):
        _dag(re_.ok().with_options(task_id="a"), **settings)


def test_dag_validate_reports_bad_timeouts_and_callbacks_with_their_line(tmp_path: Path) -> None:
    file = tmp_path / "ends.yaml"
    file.write_text(
        "dag_id: ends\n"
        "dagrun_timeout_seconds: 0\n"
        "on_failure_callback: os:getcwd\n"
        "on_success_callback: nope\n"
        "tasks:\n"
        "  a: {callable: 'tests.integration.run_ends:ok'}\n"
    )
    problems = {p.line: p.message for p in validate_dag_file(file, ["tests"])}
    assert set(problems) == {2, 3, 4}, problems
    assert "not in allowed_modules" in problems[3]
    file.write_text(
        "dag_id: ends\n"
        "dagrun_timeout_seconds: 2.5\n"
        f"on_failure_callback: {CALLBACK}\n"
        "tasks:\n"
        "  a: {callable: 'tests.integration.run_ends:ok'}\n"
    )
    assert validate_dag_file(file, ["tests"]) == []


def test_an_async_worker_calls_run_callbacks_too(
    make_queue: QueueFactory, make_config: ConfigFactory, tmp_path: Path
) -> None:
    queue = make_queue()
    log = tmp_path / "calls.log"
    dag = _dag(re_.broken().with_options(task_id="a", max_retries=0), on_failure_callback=CALLBACK)
    trigger(queue, dag, conf={"log": str(log)})
    config = make_config(worker_id="aw", allowed_modules=["tests"], poll_interval_seconds=0.05)

    async def serve() -> None:
        worker = AsyncWorker(config)
        running = worker.start_background()
        try:
            while not re_.calls(log):
                await asyncio.sleep(0.02)
        finally:
            worker.stop(graceful=False)
            await running
            await worker.queue.close()

    asyncio.run(asyncio.wait_for(serve(), budget(10)))
    (summary,) = re_.calls(log)
    assert summary["state"] == "failed" and list(summary["failed_tasks"]) == ["a"]


@pytest.mark.slow
def test_a_dag_file_run_times_out_end_to_end_on_the_cli(
    redis_url: str,
    start_worker: WorkerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`dag trigger --wait` of a YAML DAG with a timeout and a failure callback exits 1,
    `run show --json` says failed and timed_out, and the callback ran once."""
    from typer.testing import CliRunner

    from fairque.cli.app import app

    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "slow.yaml").write_text(
        "dag_id: slow\n"
        "dagrun_timeout_seconds: 0.5\n"
        f"on_failure_callback: {CALLBACK}\n"
        "params: {log: {type: string}}\n"
        "tasks:\n"
        "  wait: {callable: 'tests.integration.jobs:until_canceled', args: [30]}\n"
    )
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    monkeypatch.setenv("FAIRQUE_DAGS_FOLDER", str(tmp_path / "dags"))
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "tests")
    start_worker(lease_seconds=0.6)
    log = tmp_path / "calls.log"
    cli = CliRunner()
    conf = f'{{"log": "{log}"}}'
    result = cli.invoke(app, ["dag", "trigger", "slow", "--conf", conf, "--wait", "--json"])
    assert result.exit_code == 1, result.output
    wait_until(lambda: len(re_.calls(log)) == 1, budget(10), "the callback")
    run_id = re_.calls(log)[0]["run_id"]
    shown = cli.invoke(app, ["run", "show", run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["state"] == "failed" and data["timed_out"] is True
    assert data["tasks"]["wait"]["state"] == "canceled"


@pytest.mark.slow
def test_redis_down_when_a_run_ends_delays_its_callback_and_calls_it_once(
    make_queue: QueueFactory, proxy: CuttableProxy, tmp_path: Path
) -> None:
    """The connection is cut while the run's last task runs: its outcome and the run's
    end wait for Redis; once back, the run ends and the callback is called once."""
    queue = make_queue()
    log = tmp_path / "calls.log"
    dag = _dag(re_.nap(0.5, "done").with_options(task_id="a"), on_success_callback=CALLBACK)
    run = trigger(queue, dag, conf={"log": str(log)})
    config = FairQueueConfig.create_default(
        redis=proxy.url, worker_id="cut", allowed_modules=["tests"], poll_interval_seconds=0.05
    )
    with Worker(config) as worker:
        worker.start_background()
        wait_until(lambda: run.states()["a"] is S.STARTED, budget(10), "the task to start")
        proxy.cut()
        time.sleep(1.0)  # the task ends during the cut: its outcome waits for Redis
        assert run.states()["a"] is S.STARTED and re_.calls(log) == []
        proxy.restore()
        (summary,) = _ended(queue, log)
        assert summary["state"] == "success"
        assert worker.error is None
    assert len(re_.calls(log)) == 1


def test_every_watched_run_gets_its_turn_beyond_the_limit(make_queue: QueueFactory) -> None:
    """Runs that go on do not hide the ended ones behind them: each look moves a run to
    the back of the watched set."""
    queue = make_queue()
    dag = _dag(re_.ok().with_options(task_id="a"), on_success_callback=CALLBACK)
    for n in range(5):  # triggered first, never end
        trigger(queue, dag, conf={"log": "-"}, run_id=f"long{n}")
    started = [queue.pop() for _ in range(5)]
    assert all(started)
    for n in range(3):
        trigger(queue, dag, conf={"log": "-"}, run_id=f"short{n}")
    while (task := queue.pop()) is not None:
        queue.finish(task, "ok")
    claimed: list[str] = []
    for _ in range(5):
        claimed += [info.run_id for info in queue.watch_runs(limit=2)]
    assert sorted(claimed) == ["short0", "short1", "short2"]
    assert queue.redis.zcard(queue.keys.runs_watched) == 5


def test_a_held_runs_timeout_starts_when_it_gets_its_slot(make_queue: QueueFactory) -> None:
    """max_active_runs=1: the second run waits for a slot without its clock running."""
    queue = make_queue()
    dag = _dag(re_.ok().with_options(task_id="a"), max_active_runs=1, dagrun_timeout_seconds=0.3)
    first = trigger(queue, dag, conf={"log": "-"}, run_id="first")
    second = trigger(queue, dag, conf={"log": "-"}, run_id="second")
    assert queue.redis.hget(queue.keys.run(second.run_id), "timeout_at") is None
    task = queue.pop()
    assert task is not None and task.run_id == first.run_id
    time.sleep(0.4)  # past the first run's deadline; the second has none yet
    queue.finish(task, "ok")  # ends the first run (success: it ended before it was looked at)
    assert queue.get_task(f"{second.run_id}:a").state is S.QUEUED  # the second starts
    assert queue.redis.hget(queue.keys.run(second.run_id), "timeout_at") is not None
    assert [i.run_id for i in queue.watch_runs()] == ["first"]
    assert not queue.get_run(second.run_id).timed_out
    wait_until(
        lambda: queue.watch_runs() == [] and queue.get_run(second.run_id).timed_out,
        budget(5),
        "the second run's timeout",
    )
    assert queue.get_run(second.run_id).state is RunState.FAILED


def test_clearing_a_run_watches_it_again_and_its_next_end_calls_back_again(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    dag = _dag(re_.broken().with_options(task_id="a", max_retries=0), on_failure_callback=CALLBACK)
    run = trigger(queue, dag, conf={"log": "-"})
    task = queue.pop()
    assert task is not None
    queue.fail(task, "broken", retryable=False)
    assert [i.state for i in queue.watch_runs()] == [RunState.FAILED]
    assert queue.watch_runs() == []
    queue.clear_run(run.run_id)
    assert queue.redis.hget(queue.keys.run(run.run_id), "ended_at") is None
    assert queue.get_run(run.run_id).state in (RunState.QUEUED, RunState.RUNNING)
    again = queue.pop()
    assert again is not None
    queue.finish(again, "fixed")
    (ended,) = queue.watch_runs()
    assert ended.run_id == run.run_id and ended.state is RunState.SUCCESS
