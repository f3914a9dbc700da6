"""Where push-to-start goes on an idle worker: the breakdown in README.md.

    uv run python tests/performance/push_to_start.py [--samples 150] [--gap 0.02]

One ``fairque worker`` process (as the latency scenario runs it) on a private embedded
Valkey; tasks are pushed one at a time, ``--gap`` seconds apart, and for each the
medians of three moments after the push call began are printed: the push call
returned (client), the task was claimed (its ``started_at``, written by the claim
script from the server clock, millisecond resolution), and the task's first line ran
(the stamp it sends back, as in the latency scenario).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if __name__ == "__main__":  # run as a script: import the suite from the repository root
    sys.path[0] = _ROOT

import redis  # noqa: E402

from fairque import FairQueueConfig, Task, TaskQueue  # noqa: E402
from fairque.server import EmbeddedServer  # noqa: E402
from tests.performance.jobs import (  # noqa: E402
    NOOP_BODY,
    SINK,
    URL_ENV,
    parse_entry,
    stamped_job,
)

START_SECONDS = 60.0  # the worker's start-up, awaited with a first task


def measure(url: str, samples: int, gap: float) -> list[tuple[float, float, float]]:
    """Per task: seconds from the push call to its return, its claim and its start."""
    env = {**os.environ, "FAIRQUE_REDIS_URL": url, URL_ENV: url}
    argv = [sys.executable, "-m", "fairque.cli.app", "worker", "--users", "*"]
    argv += ["--concurrency", "8", "--allowed-modules", "tests.performance"]
    quiet = subprocess.DEVNULL
    worker = subprocess.Popen(argv, env=env, cwd=_ROOT, stdout=quiet, stderr=quiet)
    func = f"tests.performance.jobs:{stamped_job(NOOP_BODY)}"
    rows: list[tuple[float, float, float]] = []
    try:
        with TaskQueue(FairQueueConfig.create_default(redis=url)) as queue:
            sink = redis.Redis.from_url(url)
            queue.push(Task.create("bench", func=func, args=["warm-up"]))
            if sink.blpop([SINK], timeout=START_SECONDS) is None:
                raise TimeoutError(f"no task started within {START_SECONDS} s")
            for n in range(samples):
                time.sleep(gap)
                began = time.time()
                task_id = queue.push(Task.create("bench", func=func, args=[str(n)]))["task_id"]
                returned = time.time()
                reply = sink.blpop([SINK], timeout=10)
                if reply is None:
                    raise TimeoutError(f"task {n} did not start within 10 s")
                _, started = parse_entry(reply[1])
                claimed = float(queue.get_task(task_id).started_at or "nan")
                rows.append((returned - began, claimed - began, started - began))
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--gap", type=float, default=0.02)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, EmbeddedServer(folder, durable=False) as url:
        rows = measure(url, args.samples, args.gap)
    names = ("push call returned", "claimed (server clock, 1 ms resolution)", "task started")
    for index, name in enumerate(names):
        print(f"{name}: p50 {statistics.median(row[index] for row in rows) * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
