"""No call stalls the server: the worst PING of another client while fairque writes a
large batch, releases many dependents and writes a large DAG run whose last task joins
half of its tasks (issue 18, item 5); and, reported on its own, while ``clear_run`` puts
a large failed run back to run (one call, not bounded yet: see the perf README).

A separate process (its own GIL) PINGs the server in a loop on its own connection and
keeps the slowest reply; fairque's big operations run meanwhile, in bounded steps of
``queue.step_size`` (see "Large batches" in the README). The figures are the worst PING
(ms), the longest command the server ran meanwhile (its latency monitor: our calls'
share of the wait) and, in the notes, each operation's wall time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event

import redis

from fairque import Task, TaskQueue
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "stalls"
TARGET_MS = 20.0
SETTLE_SECONDS = 0.3  # the pinger's start-up, before the timed operation
LATENCY_MS = 1  # the server's latency monitor threshold while measuring
PROBE_NICENESS = -10  # the pinger's priority boost (root only): on 2 cores the client,
# the server and the pinger are three busy processes, and a starved pinger would time
# the OS scheduler, not the server


def batch_name(count: int) -> str:
    return f"worst PING during a {count:,}-task batch (1 root + dependents)"


def release_name(count: int) -> str:
    return f"worst PING during a {count:,}-dependent release"


def run_name(count: int) -> str:
    return f"worst PING during a {count:,}-task DAG run's write (a join of half of them)"


def clear_name(count: int) -> str:
    return f"worst PING during clear_run of a {count:,}-task failed run"


def _ping(url: str, stop: Event, worst: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with contextlib.suppress(OSError):  # a probe the OS does not starve, where allowed
        os.nice(PROBE_NICENESS)
    client = redis.Redis.from_url(url)
    slowest = 0.0
    while not stop.is_set():
        began = time.perf_counter()
        client.ping()
        slowest = max(slowest, time.perf_counter() - began)
        time.sleep(0.001)
    worst.put(slowest)


def longest_command(client: redis.Redis) -> float:
    """The longest command the server ran since the last LATENCY RESET (ms; 0 when none
    took LATENCY_MS or more): what fairque's own calls cost, apart from the rest of the
    PING's wait (the machine, the append-only file)."""
    for event in client.execute_command("LATENCY", "LATEST"):
        if event[0] in (b"command", "command"):
            return float(event[3])
    return 0.0


@dataclass(frozen=True)
class Stall:
    """What one operation did to the other clients."""

    ping_ms: float  # the worst PING of another process's client
    longest_ms: float  # the longest command the server ran meanwhile
    wall: float  # the operation's wall time (s)
    forks: int  # forks of the server meanwhile (an append-only file rewrite, a save)


def worst_ping(url: str, operation: Callable[[], object]) -> Stall:
    """Run ``operation`` while another process PINGs the server; what it measured."""
    client = redis.Redis.from_url(url)
    forks = int(client.info("stats")["total_forks"])
    client.config_set("latency-monitor-threshold", LATENCY_MS)
    client.execute_command("LATENCY", "RESET")
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
    stall = Stall(
        slowest * 1000,
        longest_command(client),
        wall,
        int(client.info("stats")["total_forks"]) - forks,
    )
    client.close()
    return stall


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
    half = run_size // 2  # pairs (a task and one dependent of it), and a join of all
    tasks = [Task.create("bench", func=NOOP, task_id=f"run:t{i}") for i in range(half)]
    tasks += [
        Task.create("bench", func=NOOP, task_id=f"run:j{i}", depends_on=[f"run:t{i}"])
        for i in range(half - 1)
    ]
    ups = [t.task_id for t in tasks[:half]]
    tasks.append(Task.create("bench", func=NOOP, task_id="run:join", depends_on=ups))
    _add(bench, run_name(len(tasks)), step, lambda: queue.enqueue_tasks(tasks, "run", dag_id="d"))
    bench.flush()
    _fail_a_run(queue, "failed", run_size)
    _add(bench, clear_name(run_size), step, lambda: queue.clear_run("failed"))


def _fail_a_run(queue: TaskQueue, run_id: str, size: int) -> None:
    """A run of ``size`` independent tasks, every one FAILED (for clear_run)."""
    tasks = [Task.create("bench", func=NOOP, task_id=f"{run_id}:t{i}") for i in range(size)]
    queue.enqueue_tasks(tasks, run_id)
    while queue.continue_steps():
        pass
    while claimed := queue.pop_many(500):
        for task in claimed:
            queue.fail(task, "failed for the clear", retryable=False)


def _add(bench: Bench, name: str, step: str, operation: Callable[[], object]) -> None:
    stall = worst_ping(bench.redis_url, operation)
    note = f"{step}; the operation took {stall.wall:.2f} s; target < {TARGET_MS:.0f} ms"
    if stall.forks:  # copy-on-write slows every write while the child lives
        note += f"; the server forked {stall.forks}x meanwhile (AOF rewrite)"
    bench.figures.add(
        "fairque", SCENARIO, name, stall.ping_ms, "ms", higher_is_better=False, note=note
    )
    bench.figures.add(
        "fairque",
        SCENARIO,
        name.replace("worst PING", "longest call on the server"),
        stall.longest_ms,
        "ms",
        higher_is_better=False,
        note=f"LATENCY LATEST (resolution 1 ms); {step}",
    )
