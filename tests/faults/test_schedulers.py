"""Two ``fairque scheduler`` processes on one per-second schedule: the lock holder is
killed with SIGKILL and the other carries on, each tick fired exactly once; and a bad
schedule stored beside good ones stops neither scheduler nor the good schedules."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections import Counter
from datetime import datetime

import pytest

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.scheduler.scheduler import TaskScheduler
from tests.faults.conftest import Figures
from tests.integration.procs import CLI, Proc, Procs
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

LOCK_TTL = 1.0


def add_every_second(redis_url: str, schedule_id: str) -> None:
    scheduler = TaskScheduler(FairQueueConfig.create_default(redis=redis_url))
    try:
        task = Task.create("system", task_id=f"{schedule_id}_task", payload={"s": schedule_id})
        scheduler.add_schedule("* * * * * *", task, schedule_id=schedule_id, catchup=True)
    finally:
        scheduler.close()


def start_schedulers(procs: Procs, redis_url: str, count: int) -> list[Proc]:
    options = ["--no-dags", "--redis-url", redis_url, "--tick", "0.1"]
    return [
        procs.start(f"scheduler-{n}", [*CLI, "scheduler", *options, "--lock-ttl", str(LOCK_TTL)])
        for n in range(count)
    ]


def holder(queue: TaskQueue, schedulers: list[Proc]) -> Proc | None:
    """The scheduler process whose token is in the lock (it logs it when it starts)."""
    token = queue.redis.get(queue.keys.scheduler_lock)
    if not token:
        return None
    return next((p for p in schedulers if f"scheduler {token} started" in p.output()), None)


def fired(queue: TaskQueue) -> list[float]:
    """The logical times of every run fired so far, in seconds since the epoch."""
    runs = queue.list_runs(limit=10_000)
    return sorted(datetime.fromisoformat(r.logical_date or "").timestamp() for r in runs)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def stop(schedulers: list[Proc]) -> list[int]:
    """SIGTERM the live ones; the exit codes of all."""
    for proc in schedulers:
        if proc.alive():
            proc.send(signal.SIGTERM)
    return [proc.wait_exit(budget(10)) for proc in schedulers]


@pytest.mark.timeout(budget(90))
def test_the_lock_holder_killed_the_other_scheduler_fires_each_tick_once(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    started = time.monotonic()
    add_every_second(redis_url, "tick")
    schedulers = start_schedulers(procs, redis_url, 2)
    first = wait_until(
        lambda: len(fired(queue)) >= 2 and holder(queue, schedulers),
        20,
        procs.tails,
    )
    before = len(fired(queue))
    first.kill_group()  # SIGKILL: the lock stays until its TTL runs out
    killed = time.monotonic()
    wait_until(lambda: len(fired(queue)) > before, 15, procs.tails)
    handover = time.monotonic() - killed
    second = wait_until(lambda: holder(queue, schedulers), 5, procs.tails)
    wait_until(lambda: len(fired(queue)) >= before + 4, 15, procs.tails)
    codes = stop([second])
    times = fired(queue)
    twice = {t: n for t, n in Counter(times).items() if n > 1}
    figures(
        schedulers=2,
        kills=1,
        ticks=len(times),
        fired_twice=len(twice),
        missed=sum(int(g) - 1 for g in gaps(times) if g > 1),
        handover_seconds=handover,
        lock_ttl=LOCK_TTL,
        seconds=time.monotonic() - started,
    )
    assert second is not first and codes == [0], procs.tails()
    assert first.popen.returncode == -signal.SIGKILL
    assert not twice, twice
    assert gaps(times) and max(gaps(times)) == 1.0, gaps(times)  # none missed either


@pytest.mark.timeout(budget(60))
def test_a_bad_schedule_beside_good_ones_stops_no_scheduler(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    started = time.monotonic()
    for schedule_id in ("good_a", "bad", "good_b"):
        add_every_second(redis_url, schedule_id)
    # As an older version (or a hand) could have stored it: a cron that never fires.
    stored = json.loads(queue.redis.hget(queue.keys.schedules, "bad") or "{}")
    stored["cron_expr"] = "0 0 31 2 *"
    queue.redis.hset(queue.keys.schedules, "bad", json.dumps(stored))
    schedulers = start_schedulers(procs, redis_url, 2)

    def good_ticks() -> Counter[str]:
        return Counter(r.run_id.split("__")[0] for r in queue.list_runs(limit=10_000))

    try:
        wait_until(
            lambda: min(good_ticks()["good_a"], good_ticks()["good_b"]) >= 4,
            12,
            procs.tails,
        )
    finally:
        alive = sum(p.alive() for p in schedulers)
        ticks = good_ticks()
        figures(
            schedulers=2,
            alive=alive,
            good_a_ticks=ticks["good_a"],
            good_b_ticks=ticks["good_b"],
            bad_ticks=ticks["bad"],
            seconds=time.monotonic() - started,
        )
    assert alive == 2, procs.tails()
    assert ticks["bad"] == 0
    assert stop(schedulers) == [0, 0], procs.tails()
