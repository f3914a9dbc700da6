"""The embedded server keeps what it was given: an append-only file in the state folder,
loaded on start, so ``fairque server stop`` then ``start`` loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.cli.app import app
from fairque.core.errors import ConfigValueError, RedisUnavailableError
from fairque.scheduler.scheduler import TaskScheduler
from fairque.server import EmbeddedServer

REPO_ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def cli(*args: str) -> str:
    """Run a ``fairque`` command in-process; its stdout (the test fails on a non-zero exit)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def status_json() -> dict[str, object]:
    result = runner.invoke(app, ["server", "status", "--json"])
    return dict(json.loads(result.stdout))


@pytest.fixture
def queue(state_dir: Path) -> Iterator[TaskQueue]:
    """A queue on the state folder's embedded server (started by the first call)."""
    with TaskQueue(FairQueueConfig.create_default(worker_id="durable")) as opened:
        yield opened


@pytest.mark.slow
def test_stop_then_start_keeps_tasks_runs_schedules_and_results(
    queue: TaskQueue, state_dir: Path
) -> None:
    url = queue.url
    pushed = {queue.push(Task.create(user_id=f"user:{n}"))["task_id"] for n in (1, 2)}
    record = queue.pop()
    assert record is not None
    queue.finish(record, {"answer": 42})
    (queued,) = pushed - {record.task_id}
    run = json.loads(
        cli("dag", "trigger", "fan_out_in", "--json", "--dags-folder", str(REPO_ROOT / "dags"))
    )
    scheduler = TaskScheduler(FairQueueConfig.create_default())
    try:
        schedule_id = scheduler.add_schedule(
            "0 9 * * *", Task.create(user_id="system"), schedule_id="daily"
        )
    finally:
        scheduler.close()

    assert "stopped" in cli("server", "stop")
    assert cli("server", "start").strip() == url  # the same port, when it is still free

    assert queue.get_task(queued).state == TaskState.QUEUED
    assert queue.get_task(record.task_id).state == TaskState.FINISHED
    assert queue.get_task(record.task_id).result == {"answer": 42}
    assert queue.get_run(run["run_id"]).dag_id == "fan_out_in"
    scheduler = TaskScheduler(FairQueueConfig.create_default())
    try:
        assert scheduler.get_schedule(schedule_id).cron_expr == "0 9 * * *"
    finally:
        scheduler.close()


@pytest.mark.slow
def test_a_queue_kept_open_across_a_restart_reconnects_and_sees_its_tasks(
    queue: TaskQueue, state_dir: Path
) -> None:
    task_id = queue.push(Task.create(user_id="user:1"))["task_id"]
    server = EmbeddedServer(state_dir)

    assert server.stop() is True
    with pytest.raises(RedisUnavailableError):
        queue.get_task(task_id)
    server.start()

    assert queue.get_task(task_id).state == TaskState.QUEUED
    popped = queue.pop()
    assert popped is not None and popped.task_id == task_id


def test_status_shows_where_the_data_lives_and_how_big_it_is(
    queue: TaskQueue, state_dir: Path
) -> None:
    queue.push(Task.create(user_id="user:1", payload={"blob": "x" * 10_000}))

    shown = status_json()
    assert shown["persistence"] == "aof everysec"
    assert shown["data_dir"] == str(state_dir / "data")
    assert isinstance(shown["data_bytes"], int) and shown["data_bytes"] > 10_000
    table = cli("server", "status")
    for word in ("persistence", "aof everysec", "data", str(state_dir / "data")):
        assert word in table


def test_ephemeral_server_keeps_nothing(state_dir: Path) -> None:
    url = cli("server", "start", "--ephemeral").strip()
    with redis.Redis.from_url(url) as client:
        client.set("k", "v")
        assert client.config_get("appendonly")["appendonly"] == "no"
    assert status_json()["persistence"] == "none"
    cli("server", "stop")

    url = cli("server", "start").strip()
    with redis.Redis.from_url(url) as client:
        assert client.get("k") is None


def test_appendfsync_comes_from_the_environment(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRQUE_SERVER_APPENDFSYNC", "always")
    with EmbeddedServer(state_dir) as url, redis.Redis.from_url(url) as client:
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert status_json()["persistence"] == "aof always"

    monkeypatch.setenv("FAIRQUE_SERVER_APPENDFSYNC", "sometimes")
    with pytest.raises(ConfigValueError, match="FAIRQUE_SERVER_APPENDFSYNC"):
        EmbeddedServer(state_dir).start()


@pytest.mark.slow
def test_start_waits_while_the_server_loads_a_large_file(state_dir: Path) -> None:
    server = EmbeddedServer(state_dir)
    with redis.Redis.from_url(server.start()) as client:
        for batch in range(10):
            client.mset({f"k{batch}:{n}": "x" * 100 for n in range(20_000)})
    server.stop()

    # far too short for loading 200,000 keys; the server gets 1 s per MiB on top
    url = server.start(timeout=0.2)

    with redis.Redis.from_url(url) as client:
        assert client.dbsize() == 200_000
