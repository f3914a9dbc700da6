"""Enqueue throughput: one task per call, and in batches where the API has them."""

from __future__ import annotations

from tests.performance.context import Bench
from tests.performance.jobs import body_name
from tests.performance.systems import System

SCENARIO = "enqueue"
ONE = "one task per call"


def batch_name(size: int) -> str:
    return f"batches of {size}"


def run(bench: Bench, system: System) -> None:
    for body in bench.bodies:
        run_body(bench, system, body)


def run_body(bench: Bench, system: System, body: str) -> None:
    """Enqueue tasks with ``body`` (its arguments differ: the realistic body takes a line)."""
    sizes = bench.sizes
    system.use_layout(system.layouts[0], ["bench"])
    for _ in range(bench.reps):
        bench.flush()
        seconds = system.time_enqueue_one(sizes.enqueue_one, "bench", body)
        bench.figures.add(
            system.name,
            SCENARIO,
            body_name(ONE, body),
            sizes.enqueue_one / seconds,
            "tasks/s",
            higher_is_better=True,
        )
        bench.flush()
        batched = system.time_enqueue_batch(sizes.enqueue_batch, sizes.batch_size, "bench", body)
        if batched is not None:
            bench.figures.add(
                system.name,
                SCENARIO,
                body_name(batch_name(sizes.batch_size), body),
                sizes.enqueue_batch / batched,
                "tasks/s",
                higher_is_better=True,
            )
    bench.flush()
