"""Enqueue throughput: one task per call, and in batches where the API has them."""

from __future__ import annotations

from tests.performance.context import Bench
from tests.performance.systems import System

SCENARIO = "enqueue"
ONE = "one task per call"


def batch_name(size: int) -> str:
    return f"batches of {size}"


def run(bench: Bench, system: System) -> None:
    sizes = bench.sizes
    system.use_layout(system.layouts[0], ["bench"])
    for _ in range(bench.reps):
        bench.flush()
        seconds = system.time_enqueue_one(sizes.enqueue_one, "bench")
        bench.figures.add(
            system.name,
            SCENARIO,
            ONE,
            sizes.enqueue_one / seconds,
            "tasks/s",
            higher_is_better=True,
        )
        bench.flush()
        batched = system.time_enqueue_batch(sizes.enqueue_batch, sizes.batch_size, "bench")
        if batched is not None:
            bench.figures.add(
                system.name,
                SCENARIO,
                batch_name(sizes.batch_size),
                sizes.enqueue_batch / batched,
                "tasks/s",
                higher_is_better=True,
            )
    bench.flush()
