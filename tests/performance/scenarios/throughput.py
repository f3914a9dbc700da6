"""Processing throughput of no-op tasks: a pre-filled queue drained by worker processes.

The rate is the steady state seen from outside (see ``common.measure_drain``): the
same measurement for every system, without counting process start-up.
"""

from __future__ import annotations

import os

from fairque import Task
from tests.performance.common import measure_drain
from tests.performance.context import Bench
from tests.performance.systems import NOOP, FairqueSystem, System

SCENARIO = "throughput"
ONE_WORKER = "1 worker process"
FILL_CHUNK = 1_000


def processes_name(count: int) -> str:
    return f"{count} worker processes"


def users_name(users: int) -> str:
    return f"1 worker, {users:,} users"


def run(bench: Bench, system: System) -> None:
    """One worker process of ``system`` draining no-op tasks of one user."""
    total = bench.sizes.drain
    system.use_layout(system.layouts[0], ["bench"])
    for _ in range(bench.reps):
        bench.flush()
        system.fill("bench", total)
        with system.worker():
            rate = measure_drain(system.remaining, total, bench.sizes.scenario_cap)
        note = f"{rate.tasks} tasks in {rate.seconds:.1f} s" + (
            " (time cap)" if rate.capped else ""
        )
        bench.figures.add(
            system.name,
            SCENARIO,
            ONE_WORKER,
            rate.per_second,
            "tasks/s",
            higher_is_better=True,
            note=note,
        )
    bench.flush()


def run_processes(bench: Bench, fairque: FairqueSystem) -> None:
    """``fairque worker --processes N`` with N = the machine's CPU count."""
    count = os.cpu_count() or 1
    total = bench.sizes.drain * 2
    fairque.use_layout(fairque.layouts[0], ["bench"])
    for _ in range(bench.reps):
        bench.flush()
        fairque.fill("bench", total)
        with fairque.workers(count):
            rate = measure_drain(fairque.remaining, total, bench.sizes.scenario_cap)
        bench.figures.add(
            "fairque",
            SCENARIO,
            processes_name(count),
            rate.per_second,
            "tasks/s",
            higher_is_better=True,
        )
    bench.flush()


def run_users(bench: Bench, fairque: FairqueSystem) -> None:
    """One worker draining tasks spread round robin over 1, 100 and 10,000 users."""
    total = bench.sizes.users_drain
    for users in bench.sizes.user_counts:
        for _ in range(bench.reps):
            bench.flush()
            _fill_users(fairque, total, users)
            with fairque.worker():
                rate = measure_drain(fairque.remaining, total, bench.sizes.scenario_cap)
            bench.figures.add(
                "fairque",
                SCENARIO,
                users_name(users),
                rate.per_second,
                "tasks/s",
                higher_is_better=True,
            )
    bench.flush()


def _fill_users(fairque: FairqueSystem, total: int, users: int) -> None:
    for done in range(0, total, FILL_CHUNK):
        size = min(FILL_CHUNK, total - done)
        tasks = [Task.create(f"u{(done + i) % users}", func=NOOP) for i in range(size)]
        fairque.queue.push_batch(tasks)
