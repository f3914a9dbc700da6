"""Workers killed with SIGKILL in a loop, and a worker stopped (SIGSTOP) past its lease.

Every task logs its executions (tests/faults/tally.py); at the end each one FINISHED
once, ran at least once and at most once per claim, and its record counts exactly one
claim per attempt (``attempts == 1 + recoveries``).
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import pytest

from fairque import TaskQueue
from fairque.core.models import TaskState
from tests.faults.conftest import Figures
from tests.faults.tally import finished_count, push_all, recording_tasks, tally
from tests.integration.procs import Proc, Procs
from tests.timing import budget, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TASKS, TENANTS, WORKERS = 2000, 50, 3
LEASE = 1.0  # seconds: a killed worker's tasks are reclaimed this long after the kill
TASK_SECONDS = 0.03  # each task's run, so that kills land in the middle of tasks
KILL_EVERY = (0.5, 1.2)  # seconds between two kills, drawn at random
KILL_PHASE = 30.0  # the most seconds of kills; then the workers finish in peace


def start_worker(procs: Procs, slot: int, generation: int, *options: str) -> Proc:
    return procs.worker(
        f"kill-{slot}-{generation}",
        *("--lease-seconds", str(LEASE), "--concurrency", "8", "--max-recoveries", "1000"),
        *options,
    )


@pytest.mark.timeout(budget(150))
def test_kill_9_in_a_loop_loses_and_doubles_no_task(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    started = time.monotonic()
    tasks = recording_tasks(redis_url, TASKS, TENANTS, TASK_SECONDS)
    push_all(queue, tasks)
    workers = [start_worker(procs, slot, 0) for slot in range(WORKERS)]
    generations = Counter[int]()
    kills = 0
    rng = random.Random(11)
    kill_until = time.monotonic() + budget(KILL_PHASE)
    while finished_count(queue) < TASKS and time.monotonic() < kill_until:
        time.sleep(rng.uniform(*KILL_EVERY))  # the pace of the kills, not a wait
        slot = rng.randrange(WORKERS)
        workers[slot].kill_group()  # SIGKILL, then reaped
        assert workers[slot].popen.returncode == -signal.SIGKILL
        kills += 1
        generations[slot] += 1
        workers[slot] = start_worker(procs, slot, generations[slot])
    killing = time.monotonic() - started

    wait_until(
        lambda: finished_count(queue) == TASKS,
        budget(60),
        lambda: f"all {TASKS} tasks to finish (have {finished_count(queue)}){procs.tails()}",
    )
    result = tally(queue, tasks)
    stats = {k: int(v) for k, v in queue.redis.hgetall(queue.keys.stats).items()}
    figures(
        tasks=TASKS,
        tenants=TENANTS,
        workers=WORKERS,
        kills=kills,
        executions=result.executions,
        reclaims=result.reclaims,
        ran_more_than_once=result.ran_more_than_once,
        claimed_not_run=result.claimed_not_run,
        kill_seconds=killing,
        seconds=time.monotonic() - started,
    )
    assert result.problems == [], result.problems[:20]
    for n in range(TENANTS):
        user = f"tenant-{n:02d}"
        assert stats.get(f"finished {user}") == TASKS // TENANTS, (user, stats)
        assert stats.get(f"queued {user}", 0) == stats.get(f"started {user}", 0) == 0
    assert kills > 0 and result.reclaims > 0, "no kill landed in the middle of a task"
    assert result.executions == TASKS + result.reclaims - result.claimed_not_run


@pytest.mark.timeout(budget(60))
def test_a_worker_stopped_past_its_lease_cannot_record_what_another_worker_took_over(
    procs: Procs, queue: TaskQueue, redis_url: str, figures: Figures
) -> None:
    started = time.monotonic()
    count = 4
    tasks = recording_tasks(redis_url, count, 2, 2.0, prefix="stop")
    stopped = start_worker(procs, 0, 0)
    push_all(queue, tasks)
    ids = [t.task_id for t in tasks]

    def all_started_by(worker_id: str) -> bool:
        records = [queue.get_task(i) for i in ids]
        return all(r.state is TaskState.STARTED and r.worker_id == worker_id for r in records)

    wait_until(lambda: all_started_by("kill-0-0"), 10, procs.tails)
    stopped.send(signal.SIGSTOP)
    paused_at = time.monotonic()
    other = start_worker(procs, 1, 0)
    wait_until(
        lambda: all(queue.get_task(i).state is TaskState.FINISHED for i in ids),
        budget(20),
        procs.tails,
    )
    taken_over = {i: queue.get_task(i) for i in ids}
    assert {r.worker_id for r in taken_over.values()} == {"kill-1-0"}

    stopped.send(signal.SIGCONT)
    paused = time.monotonic() - paused_at
    refusals = [f"lost the lease of task {i}" for i in ids]
    discards = [f"outcome of task {i} discarded" for i in ids]

    def gave_up() -> int:
        text = stopped.output()
        return sum(a in text or b in text for a, b in zip(refusals, discards, strict=True))

    wait_until(lambda: gave_up() == count, 10, lambda: stopped.tail())
    result = tally(queue, tasks)
    figures(
        tasks=count,
        stopped_seconds=paused,
        lease_seconds=LEASE,
        executions=result.executions,
        reclaims=result.reclaims,
        outcomes_refused=gave_up(),
        seconds=time.monotonic() - started,
    )
    assert result.problems == [], result.problems
    assert (result.executions, result.reclaims) == (2 * count, count)
    for task_id, before in taken_over.items():
        after = queue.get_task(task_id)  # the resumed worker changed nothing
        assert (after.state, after.worker_id, after.claim_token) == (
            TaskState.FINISHED,
            "kill-1-0",
            before.claim_token,
        )
        assert after.finished_at == before.finished_at
    assert stopped.alive() and other.alive(), procs.tails()
