"""Redis memory per queued task: INFO used_memory before and after queuing N tasks."""

from __future__ import annotations

from fairque import Task
from tests.performance.common import used_memory
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "memory"
NO_PAYLOAD = "per queued task, no payload"
KB_PAYLOAD = "per queued task, 1 KB payload"
CHUNK = 1_000
MEMORY_REPS = 1  # the figure is deterministic to a few bytes; a repetition costs 10 s


def run(bench: Bench, fairque: FairqueSystem) -> None:
    total = bench.sizes.memory_tasks
    for _ in range(MEMORY_REPS):
        for name, payload in ((NO_PAYLOAD, None), (KB_PAYLOAD, {"data": "x" * 1024})):
            fairque.queue.push(Task.create("bench", func=NOOP))  # scripts loaded, keys exist
            bench.flush()
            before = used_memory(bench.client)
            for done in range(0, total, CHUNK):
                size = min(CHUNK, total - done)
                fairque.queue.push_batch(
                    [Task.create("bench", func=NOOP, payload=payload) for _ in range(size)]
                )
            after = used_memory(bench.client)
            bench.figures.add(
                "fairque",
                SCENARIO,
                name,
                (after - before) / total,
                "bytes",
                higher_is_better=False,
                note=f"{total:,} tasks",
            )
    bench.flush()
