"""Run retention on a real server: trim.lua forgets runs that ended more than
``run_retention_seconds`` ago (record, task records, XCom, lineage, index entries), in
bounded batches, keeps active runs and scheduler ticks its cursor has not passed, and
memory returns to its baseline after 10,000 runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
import redis

from fairque import Task, TaskQueue, TaskState
from fairque.core.errors import RunExistsError
from fairque.core.keys import Keys
from fairque.queue.calls import Settlement
from fairque.queue.runs import RunHandle, run_fields
from fairque.queue.scripts import script_source
from fairque.scheduler.scheduler import TaskScheduler
from tests.timing import budget, wait_until

from .conftest import ConfigFactory, QueueFactory

RETENTION = budget(0.3)  # seconds a run is kept after it ended, in these tests
DEADLINE = 10  # seconds (wait_until scales it)


def one_task_run(queue: TaskQueue, run_id: str, **tick: tuple[str, float]) -> RunHandle:
    """A run of one task (no worker needed: the test claims and ends it)."""
    task = Task.create("alice", task_id=f"{run_id}:only", run_id=run_id, name="only")
    return queue.enqueue_tasks([task], run_id, tenant="alice", **tick)


def create_runs(queue: TaskQueue, count: int, batch: int = 1000) -> None:
    """``count`` one-task runs, their pushes sent ``batch`` at a time in a pipeline."""
    client = queue.redis
    push = client.register_script(script_source("push"))
    for start in range(0, count, batch):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + batch, count)):
            run_id = f"run{i}"
            task = Task.create("alice", task_id=f"{run_id}:only", run_id=run_id, name="only")
            fields = run_fields({"only": task.task_id}, tenant="alice")
            call = queue.calls.push([task], run=(run_id, None, fields))
            push(keys=call.keys, args=call.args, client=pipe)
        assert all(reply[0] == "ok" for reply in pipe.execute())


def finish_all(queue: TaskQueue, batch: int = 1000) -> int:
    """Claim and finish every queued task, ``batch`` at a time (settle: one round trip
    records the last batch and claims the next); returns how many."""
    worker = queue.config.worker
    settlements: list[Settlement] = []
    done = 0
    while True:
        _, claimed = queue.run_script(queue.calls.settle(worker, settlements, batch))
        done += len(settlements)
        if not claimed:
            return done
        settlements = [Settlement(True, t.task_id, t.claim_token, "null", 0.0) for t in claimed]


def trim_until(queue: TaskQueue, condition: object, what: str | Callable[[], str]) -> None:
    """Run the periodic trim until ``condition()`` holds (runs age past the retention)."""

    def trimmed() -> bool:
        queue.trim_runs(1000)
        return bool(condition())  # type: ignore[operator]

    wait_until(trimmed, DEADLINE, what)


def keys_of(client: redis.Redis, keys: Keys) -> set[str]:
    """Every key but the workers' claim records (``fq:claim:*``), which expire with their
    lease on their own and belong to no run."""
    claims = keys.claim("")
    return {k.decode() for k in client.keys("*") if not k.decode().startswith(claims)}


@pytest.mark.both_queues
def test_an_ended_run_and_all_it_left_are_forgotten_after_the_retention(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(run_retention_seconds=RETENTION)
    one_task_run(queue, "warm_up")  # the keys every queue keeps (stats, clock, users)
    finish_all(queue)
    trim_until(queue, lambda: not redis_client.exists(queue.keys.run("warm_up")), "the warm-up run")
    baseline = keys_of(redis_client, queue.keys)

    run = one_task_run(queue, "r1")
    queue.run_script(queue.calls.xcom_push("r1", "k", '"v"', "only"))
    assert queue.run_script(queue.calls.xcom_pull("r1", "k", "other")) == '"v"'
    finish_all(queue)
    assert len(run.lineage()) == 2
    assert queue.trim_runs() == 0  # it ended just now: kept for the retention
    assert {
        queue.keys.run("r1"),
        queue.keys.task("r1:only"),
        queue.keys.xcom("r1"),
        queue.keys.lineage("r1"),
    } <= keys_of(redis_client, queue.keys)
    trim_until(
        queue,
        lambda: keys_of(redis_client, queue.keys) == baseline,
        lambda: (
            f"the run to be forgotten: left {sorted(keys_of(redis_client, queue.keys) ^ baseline)}"
        ),
    )
    assert queue.list_runs() == []
    assert redis_client.zcard(queue.keys.state(TaskState.FINISHED)) == 0


@pytest.mark.both_queues
def test_active_runs_stay_and_runs_go_in_bounded_batches(make_queue: QueueFactory) -> None:
    queue = make_queue(run_retention_seconds=RETENTION)
    for i in range(250):
        one_task_run(queue, f"r{i}")
    finish_all(queue)
    one_task_run(queue, "still_queued")
    time.sleep(RETENTION)  # every run is older than the retention now
    assert [queue.trim_runs(100) for _ in range(4)] == [100, 100, 50, 0]
    assert [r.run_id for r in queue.list_runs()] == ["still_queued"]
    finish_all(queue)
    assert queue.trim_runs() == 0  # ended just now: its retention starts at its end
    wait_until(lambda: queue.trim_runs() == 1, DEADLINE, "the last run to be trimmed")
    assert queue.list_runs() == []


def test_a_call_stops_after_ten_steps_of_tasks(make_queue: QueueFactory) -> None:
    queue = make_queue(run_retention_seconds=RETENTION, step_size=1)  # 10 tasks per call
    for i in range(3):
        tasks = [Task.create("alice", task_id=f"w{i}:t{n}", run_id=f"w{i}") for n in range(6)]
        queue.enqueue_tasks(tasks, f"w{i}")
    finish_all(queue)
    time.sleep(RETENTION)
    assert [queue.trim_runs(100) for _ in range(3)] == [2, 1, 0]  # 6 + 6 tasks, then 6
    assert queue.list_runs() == []


@pytest.mark.both_queues
def test_a_scheduler_tick_is_created_once_even_after_retention(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    queue = make_queue(run_retention_seconds=RETENTION)
    queue.run_script(queue.calls.advance("sched", 900.0))  # as due_ticks does first
    one_task_run(queue, "sched__t1000", tick=("sched", 1000.0))
    finish_all(queue)
    time.sleep(RETENTION)
    assert queue.trim_runs() == 0  # the cursor has not passed the tick: kept
    assert redis_client.exists(queue.keys.run("sched__t1000"))
    queue.run_script(queue.calls.advance("sched", 1000.0))
    trim_until(
        queue, lambda: not redis_client.exists(queue.keys.run("sched__t1000")), "the tick's run"
    )
    with pytest.raises(RunExistsError):  # the cursor says the tick was handled
        one_task_run(queue, "sched__t1000", tick=("sched", 1000.0))
    with pytest.raises(RunExistsError):  # so was every tick before it
        one_task_run(queue, "sched__t950", tick=("sched", 950.0))
    one_task_run(queue, "sched__t1100", tick=("sched", 1100.0))  # a tick ahead fires
    # A run id without a tick is free again once its run was forgotten.
    one_task_run(queue, "manual")
    finish_all(queue)
    trim_until(queue, lambda: not redis_client.exists(queue.keys.run("manual")), "the manual run")
    one_task_run(queue, "manual")


@pytest.mark.slow
def test_memory_returns_to_its_baseline_after_ten_thousand_runs(
    make_queue: QueueFactory, redis_client: redis.Redis
) -> None:
    # Claim records (what a settle call took, kept one lease for a lost reply) expire
    # with the lease: a short one lets them go too.
    queue = make_queue(run_retention_seconds=budget(0.5), result_ttl_seconds=1, lease_seconds=1)
    one_task_run(queue, "warm_up")  # the keys every queue keeps (stats, clock, users)
    finish_all(queue)
    trim_until(queue, lambda: not redis_client.exists(queue.keys.run("warm_up")), "the warm-up run")

    def used() -> int:
        return int(redis_client.info("memory")["used_memory"])

    base_keys, base_memory = keys_of(redis_client, queue.keys), used()
    create_runs(queue, 10_000)
    assert finish_all(queue) == 10_000
    grown = used() - base_memory
    assert grown > 2_000_000, grown  # the runs really took memory
    trim_until(
        queue, lambda: keys_of(redis_client, queue.keys) == base_keys, "every run to be forgotten"
    )
    claims = queue.keys.claim("*")
    wait_until(lambda: not redis_client.keys(claims), DEADLINE, "the claim records to expire")
    # Freed memory shows at once; the keyspace's hash tables shrink on the server's cron.
    wait_until(
        lambda: used() - base_memory < 0.02 * grown,
        DEADLINE,
        lambda: f"memory back within 2% of {grown} bytes: {used() - base_memory} above",
    )


def test_a_tick_whose_cursor_did_not_move_is_not_fired_again_after_retention(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    """A scheduler that created a tick's run and died before moving the cursor: its
    successor finds the tick due again, even after the run ended and its retention
    passed, and must not fire it twice."""
    scheduler = TaskScheduler(make_config(run_retention_seconds=RETENTION), clock=Clock())
    try:
        sid = scheduler.add_schedule("0 9 * * *", Task.create("system", task_id="report"))
        schedule = scheduler.get_schedule(sid)
        schedule.created_at = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc).timestamp()
        redis_client.hset(scheduler.keys.schedules, sid, schedule.to_json())
        (run_id,) = scheduler.run_once()
        # The crash: the cursor stays where it was before the tick.
        redis_client.hset(scheduler.keys.schedule_cursors, sid, repr(schedule.created_at))
        finish_all(scheduler.queue)
        time.sleep(RETENTION)
        assert scheduler.queue.trim_runs() == 0  # kept: its tick is still ahead of the cursor
        assert scheduler.run_once() == []  # the successor finds the run: not fired again
        trim_until(
            scheduler.queue, lambda: not redis_client.exists(scheduler.keys.run(run_id)), run_id
        )
        assert scheduler.run_once() == []
    finally:
        scheduler.close()


class Clock:
    """A fixed clock an hour after the first tick of the schedule above."""

    def __call__(self) -> datetime:
        return datetime(2026, 1, 1, 9, 0, 1, tzinfo=timezone.utc)


def test_a_lineage_log_keeps_its_newest_ten_thousand_events(make_queue: QueueFactory) -> None:
    """A user's standalone scope lives while the user is busy: its log must not grow."""
    queue = make_queue()
    pull = queue.redis.register_script(script_source("xcom_pull"))
    queue.run_script(queue.calls.xcom_push("user:alice", "k", '"v"', "producer"))
    pipe = queue.redis.pipeline(transaction=False)
    for i in range(10_000):
        call = queue.calls.xcom_pull("user:alice", "k", f"c{i}")
        pull(keys=call.keys, args=call.args, client=pipe)
    pipe.execute()
    events = queue.run_pipeline(queue.calls.lineage("user:alice"))
    assert len(events) == 10_000
    assert events[0]["consumer"] == "c0" and events[-1]["consumer"] == "c9999"
