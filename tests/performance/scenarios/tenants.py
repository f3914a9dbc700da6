"""Tenant policies (fairque only): weighted shares, fairness by worker time, cap
adherence, rate accuracy, and what policies cost a claim at 10,000 active tenants; pool
adherence and round robin across a worker's queues (issue 15 items 5, 6).

Shares are read from the task records afterwards: the claim order is the order of the
claim tokens (one counter for every claim), the worker time of a task its ``duration``.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

from fairque import Task
from fairque.core.models import TaskRecord
from fairque.queue import tenants
from tests.integration.procs import CounterSampler
from tests.performance.common import Deadline, measure_drain
from tests.performance.context import Bench
from tests.performance.procs import WorkerProcess
from tests.performance.systems import NOOP, FairqueSystem

SCENARIO = "tenants"
SLEEP = "tests.performance.jobs:sleep"
WEIGHTS = {"w1": 1, "w2": 2, "w3": 3}
POLL = 0.01  # seconds between two samples of a capped tenant's running count
CAP = 2
RATE = 20.0
COST_TENANTS = 10_000


def _quick(bench: Bench) -> bool:
    return bench.sizes.scenario_cap < 10


@contextlib.contextmanager
def _workers(
    bench: Bench, fairque: FairqueSystem, processes: int, yaml: str = "", *options: str
) -> Iterator[WorkerProcess]:
    argv = fairque.worker_argv() if processes == 1 else fairque.processes_argv(processes)
    assert argv is not None  # fairque has a multi-process worker
    argv = [*argv, *options]
    if yaml:
        path = bench.launcher.folder / "tenants.yaml"
        path.write_text(yaml)
        argv += ["--config", str(path)]
    with bench.launcher.running(f"fairque-tenants-x{processes}", argv) as worker:
        yield worker


def _push(
    fairque: FairqueSystem,
    user: str,
    count: int,
    func: str = NOOP,
    options: Mapping[str, str] | None = None,
    **kw: object,
) -> list[str]:
    """Push ``count`` tasks of ``user`` running ``func(**kw)``; ``options`` are Task
    options (``queue``, ``pool``)."""
    ids: list[str] = []
    for done in range(0, count, 1000):
        size = min(1000, count - done)
        tasks = [
            Task.create(user, func=func, kwargs=dict(kw), **(options or {})) for _ in range(size)
        ]
        ids += fairque.queue.push_batch(tasks)["task_ids"]
    return ids


def _records(fairque: FairqueSystem, ids: Sequence[str]) -> list[TaskRecord]:
    found: list[TaskRecord] = []
    for start in range(0, len(ids), 2000):
        chunk = fairque.queue.run_pipeline(
            fairque.queue.calls.task_records(ids[start : start + 2000])
        )
        found += [r for r in chunk if r is not None]
    return found


def _wait_started(fairque: FairqueSystem, ids: Sequence[str], count: int, cap: float) -> None:
    deadline = Deadline(cap)
    while not deadline.passed:
        states = fairque.queue.run_pipeline(fairque.queue.calls.states(ids))
        if sum(1 for s in states.values() if s is not None and s.value != "queued") >= count:
            return
        time.sleep(0.05)


def run_weighted(bench: Bench, fairque: FairqueSystem) -> None:
    """Weights 1:2:3 with deep backlogs on 2 worker processes: the largest gap between a
    tenant's share of the claims (while all three are backlogged) and weight / 6."""
    per_tenant = 1_000 if _quick(bench) else 4_000
    measured = per_tenant  # the first claims: w3 (half of them) is still backlogged
    for _ in range(bench.reps):
        bench.flush()
        ids: list[str] = []
        for user, weight in WEIGHTS.items():
            fairque.queue.set_tenant_policy(user, weight=weight)
            ids += _push(fairque, user, per_tenant)
        with _workers(bench, fairque, 2):
            _wait_started(fairque, ids, measured + 50, bench.sizes.scenario_cap * 6)
        order = sorted(
            (r for r in _records(fairque, ids) if r.claim_token), key=lambda r: r.claim_token
        )
        counts = Counter(r.user_id for r in order[:measured])
        error = max(abs(counts[u] / measured - w / 6) for u, w in WEIGHTS.items())
        bench.figures.add(
            "fairque",
            SCENARIO,
            f"weights 1:2:3, 2 worker processes: largest share error over {measured:,} claims",
            error * 100,
            "pp",
            higher_is_better=False,
        )
    bench.flush()


def run_time_fairness(bench: Bench, fairque: FairqueSystem) -> None:
    """``fairness: time``: a tenant of long tasks and one of short tasks (100x shorter),
    one worker of 8 slots; the long tenant's share of the worker seconds (target 50%)."""
    long_s, short_s = (0.2, 0.002) if _quick(bench) else (1.0, 0.01)
    seconds = 4.0 if _quick(bench) else 30.0
    for _ in range(bench.reps):
        bench.flush()
        slots = 8
        count_long = int(seconds * slots / long_s) + 8
        long_ids = _push(fairque, "long", count_long, SLEEP, seconds=long_s)
        short_ids = _push(fairque, "short", int(seconds * slots / short_s), SLEEP, seconds=short_s)
        with _workers(bench, fairque, 1, "queue:\n  fairness: time\n"):
            time.sleep(seconds)  # the measurement's length, then records are read
        records = [r for r in _records(fairque, long_ids + short_ids) if r.duration is not None]
        if not records:
            continue
        first = min(r.started_at or 0 for r in records)
        cut = first + seconds * 0.8  # runs started in the window, ended before the stop
        work = Counter[str]()
        for r in records:
            if (r.started_at or 0) <= cut:
                work[r.user_id] += r.duration or 0.0
        total = work["long"] + work["short"]
        bench.figures.add(
            "fairque",
            SCENARIO,
            f"fairness: time, {long_s:g} s vs {short_s * 1000:g} ms tasks: long tenant's share",
            100 * work["long"] / total if total else 0.0,
            "% of worker time",
            higher_is_better=False,
        )
    bench.flush()


def run_cap(bench: Bench, fairque: FairqueSystem) -> None:
    """max_running 2 on 2 worker processes of 8 slots: the most tasks of the capped
    tenant seen running at once (sampled every 10 ms)."""

    def setup() -> list[str]:
        fairque.queue.set_tenant_policy("capped", max_running=CAP)
        return _push(fairque, "capped", 200, SLEEP, seconds=0.02)

    counter = (fairque.queue.keys.stats, "started capped")
    _most_running(bench, fairque, setup, counter, f"max_running {CAP}")


def _most_running(
    bench: Bench,
    fairque: FairqueSystem,
    setup: Callable[[], list[str]],
    counter: tuple[str, str],
    label: str,
) -> None:
    """``setup`` pushes the limited tasks (and sets the limit); beside a no-op tenant, 2
    worker processes of 8 slots run them while ``counter`` (hash key, field: their
    running count) is sampled every 10 ms; the figure is the most seen at once."""
    for _ in range(bench.reps):
        bench.flush()
        limited = setup()
        _push(fairque, "free", 5_000 if _quick(bench) else 20_000)
        sampler = CounterSampler(bench.client, *counter, POLL)
        with _workers(bench, fairque, 2), sampler:
            _wait_started(fairque, limited, len(limited), bench.sizes.scenario_cap * 4)
        bench.figures.add(
            "fairque",
            SCENARIO,
            f"{label}, 2 processes x 8 slots: most running at once (sampled)",
            max(sampler.samples, default=0),
            "tasks",
            higher_is_better=False,
            note=f"{len(sampler.samples)} samples",
        )
    bench.flush()


def run_rate(bench: Bench, fairque: FairqueSystem) -> None:
    """rate 20/s beside an unthrottled tenant: the limited tenant's starts per second."""
    count = 40 if _quick(bench) else 100
    for _ in range(bench.reps):
        bench.flush()
        fairque.queue.set_tenant_policy("limited", rate=f"{RATE:g}/s")
        limited = _push(fairque, "limited", count)
        _push(fairque, "free", 5_000)
        with _workers(bench, fairque, 1):
            _wait_started(fairque, limited, count, count / RATE * 3 + 10)
        starts = sorted(r.started_at or 0 for r in _records(fairque, limited) if r.started_at)
        span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
        bench.figures.add(
            "fairque",
            SCENARIO,
            f"rate {RATE:g}/s: measured starts/s over {count} tasks",
            (len(starts) - 1) / span if span else 0.0,
            "starts/s",
            higher_is_better=False,
        )
    bench.flush()


def run_policy_cost(bench: Bench, fairque: FairqueSystem) -> None:
    """Claims/s of one worker at 10,000 active tenants, without policies and with a
    (non-binding) weight, cap and rate on every tenant: the cost of policies."""
    total = bench.sizes.users_drain
    for _ in range(bench.reps):
        rates = {}
        for label in ("without", "with"):
            bench.flush()
            if label == "with":
                for start in range(0, COST_TENANTS, 500):
                    for i in range(start, start + 500):
                        fairque.queue.run_script(
                            tenants.set_policy(
                                fairque.queue.calls,
                                f"u{i}",
                                weight=1 + i % 3,
                                max_running=1_000,
                                rate=1_000_000,
                            )
                        )
            for done in range(0, total, 1000):
                size = min(1000, total - done)
                fairque.queue.push_batch(
                    [Task.create(f"u{(done + i) % COST_TENANTS}", func=NOOP) for i in range(size)]
                )
            with fairque.worker():
                rate = measure_drain(fairque.remaining, total, bench.sizes.scenario_cap)
            rates[label] = rate.per_second
            bench.figures.add(
                "fairque",
                SCENARIO,
                f"claims/s at {COST_TENANTS:,} active tenants, {label} policies",
                rate.per_second,
                "tasks/s",
                higher_is_better=True,
            )
        bench.figures.add(
            "fairque",
            SCENARIO,
            "policies' cost at 10,000 tenants (target <= 15% slower)",
            100 * (1 - rates["with"] / rates["without"]) if rates["without"] else 0.0,
            "% slower",
            higher_is_better=False,
        )
    bench.flush()


def run_pool(bench: Bench, fairque: FairqueSystem) -> None:
    """A pool of 2 slots on 2 worker processes of 8 slots: the most tasks of the pool
    seen running at once (sampled every 10 ms), tasks of 20 ms shared by 3 tenants
    beside a no-op tenant."""

    def setup() -> list[str]:
        fairque.queue.set_pool("gpu", CAP)
        return [
            task_id
            for user in ("p1", "p2", "p3")
            for task_id in _push(fairque, user, 70, SLEEP, {"pool": "gpu"}, seconds=0.02)
        ]

    counter = (fairque.queue.keys.pools_running, "gpu")
    _most_running(bench, fairque, setup, counter, f"pool of {CAP} slots")


def run_queue_round_robin(bench: Bench, fairque: FairqueSystem) -> None:
    """One worker process serving ``--queues a,b`` with deep backlogs in both: the
    largest gap, in percentage points, between queue a's share of a window of 100 claims
    (claim-token order) and 50%, over the first claims."""
    per_queue = 1_000 if _quick(bench) else 4_000
    for _ in range(bench.reps):
        bench.flush()
        ids = [
            task_id
            for name in ("a", "b")
            for task_id in _push(fairque, f"user-{name}", per_queue, options={"queue": name})
        ]
        with _workers(bench, fairque, 1, "", "--queues", "a,b"):
            _wait_started(fairque, ids, per_queue, bench.sizes.scenario_cap * 4)
        order = sorted(
            (r for r in _records(fairque, ids) if r.claim_token), key=lambda r: r.claim_token
        )[:per_queue]
        windows = [order[i : i + 100] for i in range(0, len(order) - 99, 100)]
        gaps = [abs(sum(r.queue == "a" for r in w) / len(w) - 0.5) for w in windows]
        bench.figures.add(
            "fairque",
            SCENARIO,
            "queues a,b, one worker: largest gap of a's share from 50% per 100 claims",
            100 * max(gaps, default=0.5),
            "pp",
            higher_is_better=False,
            note=f"{len(windows)} windows",
        )
    bench.flush()
