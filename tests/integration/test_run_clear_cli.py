"""``fairque run clear`` end to end: a task fails until a flag file appears; clearing
the run resumes it on a real worker without executing its finished upstream again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque import FairQueueConfig, TaskQueue, TaskState, Worker
from fairque.cli.app import app
from fairque.queue.runs import RunState
from tests.integration import clear_tasks
from tests.timing import budget, wait_until

from .conftest import background_worker

S = TaskState


@pytest.fixture
def worker(redis_url: str, redis_client: object) -> Iterator[Worker]:
    with background_worker(redis_url, "clear-worker", allowed_modules=["tests"]) as running:
        yield running


@pytest.fixture
def queue(redis_url: str, redis_client: object) -> Iterator[TaskQueue]:
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as q:
        yield q


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    return CliRunner()


def test_run_clear_resumes_a_failed_run_without_rerunning_finished_upstreams(
    queue: TaskQueue, worker: Worker, cli: CliRunner, tmp_path: Path
) -> None:
    d = str(tmp_path)
    run = queue.enqueue(clear_tasks.extract(d) >> clear_tasks.flaky(d) >> clear_tasks.load(d))
    assert run.wait(budget(20)) == {"extract": S.FINISHED, "flaky": S.FAILED, "load": S.CANCELED}

    refused = cli.invoke(app, ["run", "clear", run.run_id], input="n\n")
    assert refused.exit_code == 1
    assert "clearing flaky, load" in refused.output
    assert queue.get_run(run.run_id).state is RunState.FAILED  # nothing changed

    (tmp_path / "flag").touch()
    done = cli.invoke(app, ["run", "clear", run.run_id, "--yes"])
    assert done.exit_code == 0, done.output
    wait_until(
        lambda: queue.get_run(run.run_id).state is RunState.SUCCESS, budget(20), "run success"
    )
    assert clear_tasks.calls(tmp_path) == ["extract", "flaky", "flaky", "load"]
    assert run.result("flaky") == 20  # the XCom pushed by the first extract was kept
    assert run.task("flaky").attempts == 2


def test_run_clear_refuses_a_run_with_nothing_to_clear(
    queue: TaskQueue, cli: CliRunner, tmp_path: Path
) -> None:
    run = queue.enqueue(clear_tasks.load(str(tmp_path)))
    out = cli.invoke(app, ["run", "clear", run.run_id, "--yes"])
    assert out.exit_code == 1
    assert "no failed or upstream-canceled task" in out.output
    out = cli.invoke(app, ["run", "clear", run.run_id, "--task", "load", "--yes"])
    assert out.exit_code == 1  # a queued task is not cleared
    assert "task 'load' is queued" in out.output
    out = cli.invoke(app, ["run", "clear", "no-such-run", "--yes"])
    assert out.exit_code == 1 and "no-such-run" in out.output


def test_a_manual_trigger_beyond_max_active_runs_waits_for_the_running_run(
    queue: TaskQueue,
    worker: Worker,
    cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "limited.yaml").write_text(
        "dag_id: limited\nmax_active_runs: 1\ntasks:\n"
        f'  gate: {{callable: "tests.integration.clear_tasks:gate", '
        f'kwargs: {{directory: "{tmp_path}"}}}}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("FAIRQUE_DAGS_FOLDER", str(dags))
    monkeypatch.setenv("FAIRQUE_ALLOWED_MODULES", "tests")
    ids = []
    for _ in range(2):
        out = cli.invoke(app, ["dag", "trigger", "limited", "--json"])
        assert out.exit_code == 0, out.output
        ids.append(json.loads(out.output[out.output.index("{") :])["run_id"])
    first, second = ids
    wait_until(
        lambda: queue.get_run(first).state is RunState.RUNNING, budget(10), "first run starts"
    )
    assert queue.get_run(second).state is RunState.QUEUED
    assert queue.get_task(f"{second}:gate").state is S.DEFERRED
    (tmp_path / "open").touch()
    wait_until(
        lambda: queue.get_run(second).state is RunState.SUCCESS, budget(20), "second run ends"
    )
    a, b = queue.get_run(first), queue.get_run(second)
    assert a.state is RunState.SUCCESS
    assert b.started_at is not None and a.ended_at is not None and b.started_at >= a.ended_at
