"""Processing throughput: a pre-filled queue drained by worker processes, for each task
body (``--body``: the no-op, and the realistic one-round-trip body).

The rate is the steady state seen from outside (see ``common.measure_drain``): the
same measurement for every system, without counting process start-up. The multi-process
figure uses each system's recommended multi-process set-up where its CLI has one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager

from fairque import Task
from tests.performance.common import measure_drain
from tests.performance.context import Bench
from tests.performance.jobs import body_name
from tests.performance.procs import WorkerProcess
from tests.performance.systems import NOOP, FairqueSystem, System

SCENARIO = "throughput"
ONE_WORKER = "1 worker process"
FILL_CHUNK = 1_000


def processes_count() -> int:
    """N for the multi-process figure: the machine's CPU count, at least 2."""
    return max(2, os.cpu_count() or 1)


def processes_name(count: int) -> str:
    return f"{count} worker processes"


def users_name(users: int) -> str:
    return f"1 worker, {users:,} users"


def run(bench: Bench, system: System) -> None:
    """One worker process of ``system`` draining tasks of one user, for each body."""
    for body in bench.bodies:
        _drain(bench, system, body, bench.sizes.drain, ONE_WORKER, system.worker)


def run_processes(bench: Bench, system: System) -> None:
    """N worker processes (the system's recommended multi-process set-up), N = CPU count."""
    count = processes_count()
    if system.processes_argv(count) is None:
        return
    for body in bench.bodies:
        _drain(
            bench,
            system,
            body,
            bench.sizes.drain * 2,
            processes_name(count),
            lambda: system.workers(count),
        )


def _drain(
    bench: Bench,
    system: System,
    body: str,
    total: int,
    name: str,
    start: Callable[[], AbstractContextManager[WorkerProcess]],
) -> None:
    system.use_layout(system.layouts[0], ["bench"])
    for _ in range(bench.reps):
        bench.flush()
        system.fill("bench", total, body=body)
        with start():
            rate = measure_drain(system.remaining, total, bench.sizes.scenario_cap)
        note = f"{rate.tasks} tasks in {rate.seconds:.1f} s" + (
            " (time cap)" if rate.capped else ""
        )
        bench.figures.add(
            system.name,
            SCENARIO,
            body_name(name, body),
            rate.per_second,
            "tasks/s",
            higher_is_better=True,
            note=note,
        )
    bench.flush()


def run_users(bench: Bench, fairque: FairqueSystem) -> None:
    """One worker draining no-op tasks spread round robin over 1, 100 and 10,000 users."""
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
