"""Latency from push to start on an idle worker.

One task at a time: the harness notes ``time.time()`` just before the push call, the
task notes ``time.time()`` first thing and sends it back through the sink list; the next
task is pushed only after that one started and a short pause, so the worker is idle.
"""

from __future__ import annotations

import time

from tests.performance.common import Deadline, percentile
from tests.performance.context import Bench
from tests.performance.jobs import SINK, body_name, parse_entry
from tests.performance.systems import System

SCENARIO = "latency"
P50 = "push to start p50"
P99 = "push to start p99"
START_SECONDS = 60.0  # the worker's start-up, awaited with a first task
TASK_SECONDS = 10.0  # the longest one task may take to start on an idle worker


def run(bench: Bench, system: System) -> None:
    for body in bench.bodies:
        run_body(bench, system, body)


def run_body(bench: Bench, system: System, body: str) -> None:
    """Push-to-start of tasks with ``body`` (the stamp is the first thing either does)."""
    bench.flush()
    system.use_layout(system.layouts[0], ["bench"])
    with system.worker() as worker:
        system.push_stamp("warm-up", "bench", body)
        if bench.client.blpop([SINK], timeout=START_SECONDS) is None:
            raise TimeoutError(
                f"{system.name}: no task started within {START_SECONDS} s\n" + worker.tail()
            )
        for rep in range(bench.reps):
            waits = _sample(bench, system, rep, body)
            bench.figures.add(
                system.name,
                SCENARIO,
                body_name(P50, body),
                percentile(waits, 50) * 1000,
                "ms",
                higher_is_better=False,
                note=f"{len(waits)} samples",
            )
            bench.figures.add(
                system.name,
                SCENARIO,
                body_name(P99, body),
                percentile(waits, 99) * 1000,
                "ms",
                higher_is_better=False,
            )
    bench.flush()


def _sample(bench: Bench, system: System, rep: int, body: str) -> list[float]:
    waits: list[float] = []
    deadline = Deadline(bench.sizes.scenario_cap)
    for i in range(bench.sizes.latency_samples):
        time.sleep(bench.sizes.latency_gap)
        token = f"{rep}:{i}"
        pushed = time.time()
        system.push_stamp(token, "bench", body)
        reply = bench.client.blpop([SINK], timeout=TASK_SECONDS)
        if reply is None:
            raise TimeoutError(f"{system.name}: task {token} did not start in {TASK_SECONDS} s")
        got, started = parse_entry(reply[1])
        if got != token:
            raise RuntimeError(f"{system.name}: expected task {token}, got {got}")
        waits.append(started - pushed)
        if deadline.passed and len(waits) >= 10:
            break
    return waits
