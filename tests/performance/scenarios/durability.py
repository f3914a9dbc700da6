"""The cost of ``durability: replicated``: the same calls with ``async`` and ``replicated``.

The scenario starts its own Sentinel group (tests/sentinel_group.py: a master, a replica
and three sentinels of the embedded Valkey, on loopback) and connects through
``redis+sentinel://``; the benchmark server is not used. Measured in this process, one
call at a time: pushes one per call, pushes in batches, and claim-then-finish of queued
tasks (``pop`` then ``finish``: two waited writes per task when replicated).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from fairque import FairQueueConfig, Task, TaskQueue
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem
from tests.sentinel_group import SentinelGroup

SCENARIO = "durability"
MODES = ("async", "replicated")
WARM_UP = 200


def run(bench: Bench, fairque: FairqueSystem) -> None:
    with tempfile.TemporaryDirectory() as folder, SentinelGroup(Path(folder)) as group:
        for _ in range(bench.reps):
            for mode in MODES:
                config = FairQueueConfig.create_default(redis=group.url, durability=mode)
                with TaskQueue(config) as queue, group.client("master") as master:
                    master.flushall()
                    _measure(bench, queue, mode)
    bench.say("through redis+sentinel:// to a master with one replica, in-process, on loopback")


def _measure(bench: Bench, queue: TaskQueue, mode: str) -> None:
    one, batch, size = bench.sizes.enqueue_one, bench.sizes.enqueue_batch, bench.sizes.batch_size
    for _ in range(WARM_UP):  # connections made, scripts loaded, caches warm
        queue.push(_task())
    _claim_and_finish(queue, WARM_UP)
    rate = one / _timed(lambda: [queue.push(_task()) for _ in range(one)])
    _add(bench, f"push one per call, {mode}", rate)
    rate = one / _timed(lambda: _claim_and_finish(queue, one))
    _add(bench, f"pop + finish one at a time, {mode}", rate)
    tasks = [[_task() for _ in range(size)] for _ in range(batch // size)]
    rate = batch / _timed(lambda: [queue.push_batch(b) for b in tasks])
    _add(bench, f"push batches of {size}, {mode}", rate)


def _task() -> Task:
    return Task.create("bench", func=NOOP)


def _claim_and_finish(queue: TaskQueue, count: int) -> None:
    for _ in range(count):
        task = queue.pop()
        assert task is not None, "the queue ran dry"
        queue.finish(task, None)


def _timed(work: object) -> float:
    started = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - started


def _add(bench: Bench, name: str, rate: float) -> None:
    bench.figures.add("fairque", SCENARIO, name, rate, "tasks/s", higher_is_better=True)
