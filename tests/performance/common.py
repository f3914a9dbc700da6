"""What every scenario shares: settings per mode, figures, statistics and waiting."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.005
WORKER_SLOTS = 8  # concurrent tasks per worker process, where a system takes a number

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; ``full()`` for a real run, ``quick()`` for a smoke test."""

    enqueue_one: int
    enqueue_batch: int
    batch_size: int
    drain: int
    users_drain: int
    user_counts: tuple[int, ...]
    latency_samples: int
    latency_gap: float
    noisy_backlogs: tuple[int, ...]
    noisy_seconds: float
    noisy_grace: float
    light_users: int
    light_interval: float
    jain_users: int
    jain_tasks: int
    jain_window: int
    dag_chains: int
    memory_tasks: int
    ui_tenants: int
    ui_tasks: int
    ui_runs: int
    dag_file_counts: tuple[int, ...]  # generated YAML DAG files (10 tasks each)
    ceiling_ops: int
    stall_tasks: int  # a batch of 1 root + dependents, then their release
    stall_run: int  # tasks of one DAG run
    scenario_cap: float  # the longest any one measurement may take, in seconds

    @classmethod
    def full(cls) -> Sizes:
        return cls(
            enqueue_one=5_000,
            enqueue_batch=20_000,
            batch_size=100,
            drain=10_000,
            users_drain=20_000,
            user_counts=(1, 100, 10_000),
            latency_samples=200,
            latency_gap=0.02,
            noisy_backlogs=(2_000, 20_000, 200_000),
            noisy_seconds=3.0,
            noisy_grace=8.0,
            light_users=5,
            light_interval=0.05,
            jain_users=10,
            jain_tasks=1_000,
            jain_window=100,
            dag_chains=5,
            memory_tasks=100_000,
            ui_tenants=10_000,
            ui_tasks=100_000,
            ui_runs=1_000,
            dag_file_counts=(100, 1_000, 5_000),
            ceiling_ops=10_000,
            stall_tasks=50_000,
            stall_run=10_000,
            scenario_cap=10.0,
        )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            enqueue_one=1_000,
            enqueue_batch=2_000,
            batch_size=100,
            drain=2_000,
            users_drain=10_000,
            user_counts=(1, 100, 10_000),
            latency_samples=30,
            latency_gap=0.02,
            noisy_backlogs=(2_000, 20_000),
            noisy_seconds=1.5,
            noisy_grace=5.0,
            light_users=5,
            light_interval=0.05,
            jain_users=10,
            jain_tasks=200,
            jain_window=50,
            dag_chains=2,
            memory_tasks=10_000,
            ui_tenants=1_000,
            ui_tasks=10_000,
            ui_runs=100,
            dag_file_counts=(100,),
            ceiling_ops=4_000,
            stall_tasks=5_000,
            stall_run=2_000,
            scenario_cap=5.0,
        )


@dataclass
class Figure:
    """One measured figure of one system, with every repetition."""

    system: str
    scenario: str
    name: str
    unit: str
    higher_is_better: bool
    reps: list[float] = field(default_factory=list)
    censored: bool = False  # a lower bound: some samples were not served in time
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.name)

    @property
    def median(self) -> float:
        return statistics.median(self.reps) if self.reps else math.nan

    @property
    def low(self) -> float:
        return min(self.reps) if self.reps else math.nan

    @property
    def high(self) -> float:
        return max(self.reps) if self.reps else math.nan

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median=self.median, min=self.low, max=self.high)
        return data


class Figures:
    """The figures of a run, created on first use and filled rep by rep."""

    def __init__(self) -> None:
        self.items: list[Figure] = []
        self._index: dict[tuple[str, str, str], Figure] = {}

    def add(
        self,
        system: str,
        scenario: str,
        name: str,
        value: float,
        unit: str,
        *,
        higher_is_better: bool,
        censored: bool = False,
        note: str = "",
    ) -> Figure:
        key = (system, scenario, name)
        figure = self._index.get(key)
        if figure is None:
            figure = Figure(system, scenario, name, unit, higher_is_better, note=note)
            self._index[key] = figure
            self.items.append(figure)
        figure.reps.append(float(value))
        figure.censored = figure.censored or censored
        if note:
            figure.note = note
        return figure

    def get(self, system: str, scenario: str, name: str) -> Figure | None:
        return self._index.get((system, scenario, name))

    def of(self, system: str) -> list[Figure]:
        return [f for f in self.items if f.system == system]


# --- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def jain_index(shares: Sequence[float]) -> float:
    """Jain's fairness index of ``shares``: 1.0 when equal, 1/n when one takes all."""
    total = sum(shares)
    squares = sum(s * s for s in shares)
    return (total * total) / (len(shares) * squares) if squares else math.nan


def windowed_jain(order: Sequence[str], users: Sequence[str], window: int) -> list[float]:
    """Jain's index of each full window of ``window`` consecutive services in ``order``."""
    indices: list[float] = []
    for start in range(0, len(order) - window + 1, window):
        served = order[start : start + window]
        indices.append(jain_index([served.count(u) for u in users]))
    return indices


# --- time -------------------------------------------------------------------------------


class Deadline:
    """A moment ``seconds`` from now."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @property
    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


def wait_until(condition: Callable[[], T], seconds: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; TimeoutError after ``seconds``."""
    deadline = Deadline(seconds)
    while True:
        value = condition()
        if value:
            return value
        if deadline.passed:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class DrainRate:
    """A steady-state drain rate: ``tasks`` left the queue in ``seconds``."""

    tasks: int
    seconds: float
    capped: bool

    @property
    def per_second(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else math.nan


def measure_drain(remaining: Callable[[], int], total: int, cap: float) -> DrainRate:
    """Watch a pre-filled queue drain and return its steady-state rate.

    The window opens once the worker has taken its first 2% of the tasks (so process
    start-up and warm-up are not counted) and closes when 90% are done or after ``cap``
    seconds, whichever comes first: prefetching at the tail does not count either.
    """
    open_at = total - max(20, total // 50)
    close_at = total // 10
    start_deadline = Deadline(60.0)
    while (left := remaining()) > open_at:
        if start_deadline.passed:
            raise TimeoutError(f"no worker took a task within 60 s ({left} of {total} left)")
        time.sleep(POLL_SECONDS)
    t0, r0 = time.perf_counter(), left
    deadline = Deadline(cap)
    while left > close_at and not deadline.passed:
        time.sleep(POLL_SECONDS)
        left = remaining()
    return DrainRate(r0 - left, time.perf_counter() - t0, capped=left > close_at)


# --- the server -------------------------------------------------------------------------


def server_version(client: redis.Redis) -> str:
    """``valkey 8.1.1`` or ``redis 7.2.4``, from INFO server."""
    info = client.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"redis {info.get('redis_version', '?')}"


def used_memory(client: redis.Redis) -> int:
    """INFO memory's used_memory, in bytes."""
    return int(client.info("memory")["used_memory"])
