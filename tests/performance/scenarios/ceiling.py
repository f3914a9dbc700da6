"""The Redis ceiling on this machine: a single redis-py client, one command at a time.

Measured once before every other scenario (the suite does that), so that its
repetitions sample the machine's state across the whole run; each fairque rate is
shown as a share of the median.
"""

from __future__ import annotations

import time

from tests.performance.context import Bench

SCENARIO = "ceiling"
EVALSHA = "EVALSHA trivial script"
LPUSH_RPOP = "LPUSH/RPOP"
KEY = "bench:ceiling"


def run_once(bench: Bench) -> None:
    """One repetition: EVALSHA of ``return 1``, then alternating LPUSH/RPOP, in ops/s."""
    ops = bench.sizes.ceiling_ops
    client = bench.client
    bench.flush()
    script = client.register_script("return 1")
    script()  # loaded once: the loop measures EVALSHA only
    started = time.perf_counter()
    for _ in range(ops):
        script()
    rate = ops / (time.perf_counter() - started)
    bench.figures.add("fairque", SCENARIO, EVALSHA, rate, "ops/s", higher_is_better=True)
    pairs = ops // 2
    started = time.perf_counter()
    for _ in range(pairs):
        client.lpush(KEY, "x")
        client.rpop(KEY)
    rate = 2 * pairs / (time.perf_counter() - started)
    bench.figures.add("fairque", SCENARIO, LPUSH_RPOP, rate, "ops/s", higher_is_better=True)
    bench.flush()


def run(bench: Bench) -> None:
    """``bench.reps`` repetitions in a row (when the ceiling is the only scenario)."""
    for _ in range(bench.reps):
        run_once(bench)
