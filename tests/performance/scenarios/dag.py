"""DAG task-to-task latency: from an upstream's finish to its dependent's start.

A chain of 20 no-op ``@task`` steps (``step00 >> step01 >> ...``) enqueued with
``queue.enqueue`` and run by one idle worker. Two measures of each edge:

- the step functions' own clocks: the upstream function's return to the dependent
  function's start (microseconds; it includes recording the upstream's finish, which
  releases the dependent, and claiming and dispatching the dependent);
- the task records' server timestamps, ``finished_at`` of the upstream to ``started_at``
  of the dependent (the server keeps them to the millisecond).
"""

from __future__ import annotations

import functools
import itertools
import operator

from tests.performance.common import percentile
from tests.performance.context import Bench
from tests.performance.dag_steps import CHAIN_LENGTH, chain_steps
from tests.performance.systems import FairqueSystem

SCENARIO = "dag"
P50 = "upstream end to dependent start p50"
P99 = "upstream end to dependent start p99"
SERVER_P50 = "finished_at to started_at p50 (server ms)"
RUN_SECONDS = 60.0


def run(bench: Bench, fairque: FairqueSystem) -> None:
    bench.flush()
    fairque.use_layout(fairque.layouts[0], ["bench"])
    with fairque.worker():
        _chain_gaps(fairque, RUN_SECONDS)  # warm-up: start-up and imports
        for _ in range(bench.reps):
            gaps: list[float] = []
            server_gaps: list[float] = []
            for _ in range(bench.sizes.dag_chains):
                measured, by_server = _chain_gaps(fairque, bench.sizes.scenario_cap)
                gaps += measured
                server_gaps += by_server
            note = f"{len(gaps)} edges"
            for name, values, q in (
                (P50, gaps, 50),
                (P99, gaps, 99),
                (SERVER_P50, server_gaps, 50),
            ):
                bench.figures.add(
                    "fairque",
                    SCENARIO,
                    name,
                    percentile(values, q) * 1000,
                    "ms",
                    higher_is_better=False,
                    note=note,
                )
    bench.flush()


def _chain_gaps(fairque: FairqueSystem, timeout: float) -> tuple[list[float], list[float]]:
    pipeline = functools.reduce(operator.rshift, [step() for step in chain_steps])
    handle = fairque.queue.enqueue(pipeline, user_id="bench")
    handle.wait(timeout=timeout)
    records = [handle.task(f"step{i:02d}") for i in range(CHAIN_LENGTH)]
    gaps: list[float] = []
    server_gaps: list[float] = []
    for upstream, dependent in itertools.pairwise(records):
        if upstream.finished_at is None or dependent.started_at is None:
            raise RuntimeError(f"chain {handle.run_id} did not complete")
        gaps.append(dependent.result["start"] - upstream.result["end"])
        server_gaps.append(dependent.started_at - upstream.finished_at)
    return gaps, server_gaps
