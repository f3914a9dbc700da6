"""Redis memory per queued task: INFO used_memory before and after queuing N tasks; the
note of the no-payload figure splits it (MEMORY USAGE of one task's record, and of the
user's queue per task)."""

from __future__ import annotations

import redis

from fairque import Task, TaskQueue
from tests.performance.common import used_memory
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "memory"
NO_PAYLOAD = "per queued task, no payload"
KB_PAYLOAD = "per queued task, 1 KB payload"
CHUNK = 1_000
MEMORY_REPS = 1  # the figure is deterministic to a few bytes; a repetition costs 10 s
USER = "bench"


def run(bench: Bench, fairque: FairqueSystem) -> None:
    total = bench.sizes.memory_tasks
    for _ in range(MEMORY_REPS):
        for name, payload in ((NO_PAYLOAD, None), (KB_PAYLOAD, {"data": "x" * 1024})):
            fairque.queue.push(Task.create(USER, func=NOOP))  # scripts loaded, keys exist
            bench.flush()
            before = used_memory(bench.client)
            ids: list[str] = []
            for done in range(0, total, CHUNK):
                size = min(CHUNK, total - done)
                tasks = [Task.create(USER, func=NOOP, payload=payload) for _ in range(size)]
                ids += fairque.queue.push_batch(tasks)["task_ids"]
            after = used_memory(bench.client)
            note = f"{total:,} tasks"
            if payload is None:
                note += "; " + _split(bench.client, fairque.queue, ids[-1], total)
            bench.figures.add(
                "fairque",
                SCENARIO,
                name,
                (after - before) / total,
                "bytes",
                higher_is_better=False,
                note=note,
            )
    bench.flush()


def _split(client: redis.Redis, queue: TaskQueue, task_id: str, total: int) -> str:
    """Where a queued task's bytes are: its record (key and hash) and its queue entry."""
    record = client.memory_usage(queue.keys.task(task_id)) or 0
    entries = client.memory_usage(queue.keys.normal(USER), samples=0) or 0
    return f"record {record} B, queue entry {entries / total:.0f} B (MEMORY USAGE)"
