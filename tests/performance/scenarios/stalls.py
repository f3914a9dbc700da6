"""No call stalls the server: the worst PING of another client while fairque writes a
large batch, releases many dependents and writes a large DAG run (issue 18, item 5).

A separate process (its own GIL) PINGs the server in a loop on its own connection and
keeps the slowest reply; fairque's big operations run meanwhile, in bounded steps of
``queue.step_size`` (see "Large batches" in the README). The figures are the worst PING
(ms) and each operation's wall time.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event

import redis

from fairque import Task, TaskQueue
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "stalls"
TARGET_MS = 20.0
SETTLE_SECONDS = 0.3  # the pinger's start-up, before the timed operation


def batch_name(count: int) -> str:
    return f"worst PING during a {count:,}-task batch (1 root + dependents)"


def release_name(count: int) -> str:
    return f"worst PING during a {count:,}-dependent release"


def run_name(count: int) -> str:
    return f"worst PING during a {count:,}-task DAG run's write"


def _ping(url: str, stop: Event, worst: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    client = redis.Redis.from_url(url)
    slowest = 0.0
    while not stop.is_set():
        began = time.perf_counter()
        client.ping()
        slowest = max(slowest, time.perf_counter() - began)
        time.sleep(0.001)
    worst.put(slowest)


def worst_ping(url: str, operation: Callable[[], object]) -> tuple[float, float]:
    """(worst PING of another process's client in ms, the operation's wall time in s)."""
    context = multiprocessing.get_context("spawn")
    stop, worst = context.Event(), context.Queue()
    pinger = context.Process(target=_ping, args=(url, stop, worst), daemon=True)
    pinger.start()
    time.sleep(SETTLE_SECONDS)
    began = time.perf_counter()
    operation()
    wall = time.perf_counter() - began
    stop.set()
    slowest = float(worst.get(timeout=30))
    pinger.join(timeout=10)
    return slowest * 1000, wall


def run(bench: Bench, fairque: FairqueSystem) -> None:
    for _ in range(bench.reps):
        run_once(bench, fairque.queue)
    bench.flush()


def run_once(bench: Bench, queue: TaskQueue) -> None:
    """One repetition: the batch, its release, the DAG run."""
    count, run_size = bench.sizes.stall_tasks, bench.sizes.stall_run
    step = f"step_size {queue.config.queue.step_size}"
    bench.flush()
    queue.push(Task.create("other", func=NOOP, task_id="warm-up"))  # library loaded
    batch = [Task.create("bench", func=NOOP, task_id="root")]
    batch += [
        Task.create("bench", func=NOOP, task_id=f"d{i}", depends_on=["root"])
        for i in range(count - 1)
    ]
    _add(bench, batch_name(count), step, lambda: queue.push_batch(batch))
    claimed = [queue.pop(), queue.pop()]  # the warm-up and the root, in either order
    root = next(t for t in claimed if t is not None and t.task_id == "root")

    def release() -> None:
        queue.finish(root, None)
        while queue.continue_steps():  # what a worker's loop does, one step per turn
            pass

    _add(bench, release_name(count - 1), step, release)
    bench.flush()
    half = run_size // 2  # pairs: a task and one dependent of it
    tasks = [Task.create("bench", func=NOOP, task_id=f"run:t{i}") for i in range(half)]
    tasks += [
        Task.create("bench", func=NOOP, task_id=f"run:j{i}", depends_on=[f"run:t{i}"])
        for i in range(half)
    ]
    _add(bench, run_name(len(tasks)), step, lambda: queue.enqueue_tasks(tasks, "run", dag_id="d"))


def _add(bench: Bench, name: str, step: str, operation: Callable[[], object]) -> None:
    ping_ms, wall = worst_ping(bench.redis_url, operation)
    note = f"{step}; the operation took {wall:.2f} s; target < {TARGET_MS:.0f} ms"
    bench.figures.add("fairque", SCENARIO, name, ping_ms, "ms", higher_is_better=False, note=note)
