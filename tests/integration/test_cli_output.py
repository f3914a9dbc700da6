"""What the CLI prints for operators: help texts as written, tables that a pipe gets
whole, and the worker's log lines as JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.cli.app import app
from tests.timing import budget, wait_until

ROOT = Path(__file__).resolve().parents[2]
LONG_RUN_ID = "nightly-report-2026-12-01T02:00:00+00:00-manual-0123456789abcdef01234567"


@pytest.fixture
def queue(redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> TaskQueue:
    monkeypatch.setenv("FAIRQUE_REDIS_URL", redis_url)
    return TaskQueue(FairQueueConfig.create_default(redis=redis_url))


def test_help_texts_keep_their_square_brackets() -> None:
    out = " ".join(CliRunner().invoke(app, ["worker", "--help"]).output.split())
    assert "fairque[metrics]" in out
    assert "[default: ./.fairque]" in out and "[default: INFO]" in out
    out = " ".join(CliRunner().invoke(app, ["scheduler", "--help"]).output.split())
    assert "[default: ./dags]" in out


def test_run_list_prints_long_run_ids_whole_to_a_pipe(queue: TaskQueue, redis_url: str) -> None:
    assert len(LONG_RUN_ID) > 60
    with queue:
        queue.enqueue(Task.create("user:1", payload={"n": 1}), run_id=LONG_RUN_ID)
    result = CliRunner().invoke(app, ["run", "list"])
    assert result.exit_code == 0, result.output
    assert LONG_RUN_ID in result.output
    piped = subprocess.run(
        [sys.executable, "-m", "fairque.cli.app", "run", "list"],
        capture_output=True,
        text=True,
        timeout=budget(60),
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    line = next(line for line in piped.stdout.splitlines() if "nightly-report" in line)
    assert LONG_RUN_ID in line and "(pipeline)" in line and "queued" in line


def test_a_bad_log_format_is_a_clear_error(queue: TaskQueue) -> None:
    result = CliRunner().invoke(app, ["scheduler", "--log-format", "xml"])
    assert result.exit_code == 1
    assert "unknown log format 'xml'" in result.output


@pytest.mark.slow
def test_the_worker_logs_json_lines_with_the_task_fields(queue: TaskQueue, redis_url: str) -> None:
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "fairque.cli.app", "worker", "--log-format", "json"),
            *("--allowed-modules", "fairque.demo", "--poll-interval", "0.1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        with queue:
            task_id = queue.push(
                Task.create("user:7", func="fairque.demo:handle_order", args=["user:7", 1])
            )["task_id"]
            wait_until(  # the worker's start-up included
                lambda: queue.get_task(task_id).state is TaskState.FINISHED,
                90,
                "the worker to run the task",
            )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=budget(20))
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    (end,) = [line for line in lines if line.get("task_id") == task_id]
    assert end["level"] == "INFO" and end["logger"] == "fairque.worker.tasklog"
    assert end["user_id"] == "user:7" and end["func"] == "fairque.demo:handle_order"
    assert end["attempt"] == 1 and end["duration"] >= 0 and end["state"] == "finished"
    assert "finished in" in end["message"]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
