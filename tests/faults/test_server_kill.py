"""A kill -9 of the embedded server loses nothing it acknowledged: the append-only file
is written before the server answers, and loaded when the next server starts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.server import EmbeddedServer
from fairque.server.process import pid_alive
from tests.timing import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def aof_written(url: str) -> bool:
    """True when the server holds nothing it has not written to its append-only file."""
    with redis.Redis.from_url(url) as client:
        info = client.info("persistence")
    return int(info["aof_buffer_length"]) == 0


def test_kill_9_of_the_server_then_start_keeps_the_tasks(state_dir: Path) -> None:
    server = EmbeddedServer(state_dir)
    with TaskQueue(FairQueueConfig.create_default(worker_id="kill")) as queue:
        task_ids = [queue.push(Task.create(user_id=f"user:{n % 3}"))["task_id"] for n in range(20)]
        url = queue.url
        wait_until(lambda: aof_written(url), 5, "the server to write its AOF buffer")
        status = server.status()
        assert status is not None and status.running

        os.kill(status.pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(status.pid), 5, "the killed server to exit")
        assert server.start() == url

        assert [queue.get_task(t).state for t in task_ids] == [TaskState.QUEUED] * 20
