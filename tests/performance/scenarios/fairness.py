"""Fairness: the noisy neighbour, and Jain's index for users with equal backlogs.

Peers run each layout their users use to share a worker: one shared queue, and one
queue per user where their worker can listen on several (figure names then end with
``PER_USER_SUFFIX``); fairque has a single layout, its round robin over users.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from tests.performance.common import Deadline, percentile, wait_until, windowed_jain
from tests.performance.context import Bench
from tests.performance.systems import PER_USER, System

NOISY = "noisy"
JAIN = "jain"
PER_USER_SUFFIX = " (queue per user)"
HEAVY = "H"
START_SECONDS = 60.0


def wait_name(stat: str, backlog: int, layout: str) -> str:
    return f"L wait {stat}, H={backlog:,}" + _suffix(layout)


def jain_name(kind: str, layout: str) -> str:
    return f"Jain's index, {kind}" + _suffix(layout)


def _suffix(layout: str) -> str:
    return PER_USER_SUFFIX if layout == PER_USER else ""


@dataclass(frozen=True)
class Waits:
    """Push-to-start waits of the light users' tasks; unserved ones count until the end."""

    values: list[float]
    unserved: int

    def stat(self, q: float) -> tuple[float, bool]:
        """The q-th percentile in ms, and whether it is only a lower bound."""
        censored = self.unserved > len(self.values) * (1 - q / 100)
        return percentile(self.values, q) * 1000, censored


def run_noisy(bench: Bench, system: System) -> None:
    """H has a backlog; L1..Ln push one task each every interval while one worker drains."""
    for layout in system.layouts:
        for backlog in bench.sizes.noisy_backlogs:
            unserved = 0
            for _ in range(bench.fairness_reps(system.name)):
                waits = _noisy_once(bench, system, layout, backlog)
                unserved += waits.unserved
                _add_waits(bench, system.name, layout, backlog, waits)
            if unserved:
                bench.notes.append(
                    f"{system.name}{_suffix(layout)}: light users' tasks were still waiting "
                    f"when time ran out at H={backlog:,}; larger backlogs were not run (their "
                    "waits can only be longer)"
                )
                break
    bench.flush()


def _add_waits(bench: Bench, system: str, layout: str, backlog: int, waits: Waits) -> None:
    for label, q in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
        value, censored = waits.stat(q)
        note = f"{waits.unserved} of {len(waits.values)} not started" if censored else ""
        name = wait_name(label, backlog, layout)
        bench.figures.add(
            system, NOISY, name, value, "ms", higher_is_better=False, censored=censored, note=note
        )


def _noisy_once(bench: Bench, system: System, layout: str, backlog: int) -> Waits:
    sizes = bench.sizes
    lights = [f"L{i + 1}" for i in range(sizes.light_users)]
    bench.flush()
    system.use_layout(layout, [HEAVY, *lights])
    system.fill(HEAVY, backlog)
    pushed: dict[str, float] = {}
    with system.worker():
        wait_until(lambda: system.remaining() < backlog, START_SECONDS, f"{system.name} to start")
        ticks = round(sizes.noisy_seconds / sizes.light_interval)
        next_tick = time.perf_counter()
        for tick in range(ticks):
            for light in lights:
                token = f"{light}:{tick}"
                pushed[token] = time.time()
                system.push_stamp(token, light)
            next_tick += sizes.light_interval
            time.sleep(max(0.0, next_tick - time.perf_counter()))
        grace = Deadline(sizes.noisy_grace)
        while bench.sink_size() < len(pushed) and not grace.passed:
            time.sleep(0.01)
        started = dict(bench.sink())
        ended = time.time()
    values = [started.get(token, ended) - at for token, at in pushed.items()]
    return Waits(values, sum(1 for token in pushed if token not in started))


def run_jain(bench: Bench, system: System) -> None:
    """Users with equal backlogs, queued one user after the other, drained by one worker;
    Jain's index of each window of served tasks (mean and worst window)."""
    sizes = bench.sizes
    users = [f"u{i}" for i in range(sizes.jain_users)]
    total = sizes.jain_users * sizes.jain_tasks
    for layout in system.layouts:
        for _ in range(bench.fairness_reps(system.name)):
            bench.flush()
            system.use_layout(layout, users)
            for user in users:
                system.fill(
                    user, sizes.jain_tasks, [f"{user}:{i}" for i in range(sizes.jain_tasks)]
                )
            with system.worker():
                wait_until(bench.sink_size, START_SECONDS, f"{system.name} to start")
                deadline = Deadline(sizes.scenario_cap)
                while bench.sink_size() < total and not deadline.passed:
                    time.sleep(0.05)
                order = [token.partition(":")[0] for token, _ in bench.sink()]
            indices = windowed_jain(order, users, sizes.jain_window)
            if not indices:
                raise RuntimeError(f"{system.name}: fewer than {sizes.jain_window} tasks served")
            note = f"{len(indices)} windows of {sizes.jain_window}"
            for kind, value in (("mean", statistics.mean(indices)), ("worst", min(indices))):
                bench.figures.add(
                    system.name,
                    JAIN,
                    jain_name(f"{kind} window", layout),
                    value,
                    "index",
                    higher_is_better=True,
                    note=note,
                )
    bench.flush()
