"""TaskScheduler on a real server: schedules in Redis, ticks with a controllable clock,
catchup, DST, pause, the lock, and several scheduler processes firing once per tick."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from fairque import FairQueueConfig, Task, TaskQueue, TaskState
from fairque.core.errors import CronError, ScheduleNotFoundError
from fairque.scheduler.scheduler import TaskScheduler
from tests.timing import budget, wait_until

from .conftest import ConfigFactory

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def make_scheduler(make_config: ConfigFactory) -> Iterator[Callable[..., TaskScheduler]]:
    made: list[TaskScheduler] = []

    def make(
        clock: Clock | None = None, settings: dict[str, Any] | None = None, **options: object
    ) -> TaskScheduler:
        config = make_config(worker_id=f"s{len(made)}", **(settings or {}))
        scheduler = TaskScheduler(config, clock=clock, **options)  # type: ignore[arg-type]
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stop()  # a background one ends, then closes
        if scheduler.join(5):
            scheduler.close()


def report() -> Task:
    return Task.create("system", payload={"report_type": "daily"}, task_id="daily_report")


def logical_dates(queue: TaskQueue) -> list[str]:
    return sorted(r.logical_date or "" for r in queue.list_runs(limit=1000))


def test_add_list_pause_resume_remove(make_scheduler: Callable[..., TaskScheduler]) -> None:
    scheduler = make_scheduler()
    sid = scheduler.add_schedule("0 9 * * *", report(), timezone="UTC")
    (stored,) = scheduler.list_schedules()
    assert stored.schedule_id == sid and stored.cron_expr == "0 9 * * *"
    assert stored.task.payload == {"report_type": "daily"}
    scheduler.pause(sid)
    assert scheduler.get_schedule(sid).paused
    scheduler.resume(sid)
    assert not scheduler.get_schedule(sid).paused
    again = make_scheduler()  # a restarted scheduler finds it in Redis
    assert [s.schedule_id for s in again.list_schedules()] == [sid]
    scheduler.remove_schedule(sid)
    assert scheduler.list_schedules() == []
    with pytest.raises(ScheduleNotFoundError):
        scheduler.remove_schedule(sid)


@pytest.mark.parametrize(
    ("cron", "zone"), [("0 9 * *", "UTC"), ("0 25 * * *", "UTC"), ("0 9 * * *", "Nowhere/City")]
)
def test_bad_cron_or_zone_is_refused_when_added(
    make_scheduler: Callable[..., TaskScheduler], cron: str, zone: str
) -> None:
    scheduler = make_scheduler()
    with pytest.raises(CronError):
        scheduler.add_schedule(cron, report(), timezone=zone)
    assert scheduler.list_schedules() == []


def test_each_tick_fires_once_and_pushes_a_copy_of_the_task(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    clock = Clock(datetime(2026, 1, 1, 8, 0, tzinfo=UTC))
    scheduler = make_scheduler(clock)
    scheduler.add_schedule("0 9 * * *", report())
    _created_at(scheduler, clock.now)
    assert scheduler.run_once() == []
    clock.advance(hours=1, seconds=1)
    (run_id,) = scheduler.run_once()
    assert scheduler.run_once() == []  # the same tick never fires twice
    run = scheduler.queue.get_run(run_id)
    assert run.logical_date == "2026-01-01T09:00:00+00:00"
    (task,) = run.tasks.values()
    assert task is not None and task.payload == {"report_type": "daily"}
    assert task.user_id == "system"


def _created_at(scheduler: TaskScheduler, moment: datetime) -> None:
    """Backdate every schedule to ``moment`` (the clock in these tests is simulated)."""
    for schedule in scheduler.list_schedules():
        schedule.created_at = moment.timestamp()
        scheduler.queue.redis.hset(
            scheduler.keys.schedules, schedule.schedule_id, schedule.to_json()
        )


@pytest.mark.parametrize(
    ("catchup", "expected"), [(False, ["03:00"]), (True, ["00:00", "01:00", "02:00", "03:00"])]
)
def test_catchup_after_downtime(
    make_scheduler: Callable[..., TaskScheduler], catchup: bool, expected: list[str]
) -> None:
    clock = Clock(datetime(2026, 1, 1, 0, 0, tzinfo=UTC) - timedelta(minutes=30))
    scheduler = make_scheduler(clock)
    scheduler.add_schedule("0 * * * *", report(), catchup=catchup)
    _created_at(scheduler, clock.now)
    scheduler.run_once()
    clock.advance(hours=3, minutes=40)  # the scheduler was down for four ticks
    scheduler.run_once()
    assert [d[11:16] for d in logical_dates(scheduler.queue)] == expected


def test_catchup_is_bounded(make_scheduler: Callable[..., TaskScheduler]) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    scheduler = make_scheduler(clock, catchup_limit=5)
    scheduler.add_schedule("* * * * *", report(), catchup=True)
    _created_at(scheduler, clock.now)
    clock.advance(minutes=30)
    assert len(scheduler.run_once()) == 5  # oldest first, the rest on later passes
    assert len(scheduler.run_once()) == 5
    assert logical_dates(scheduler.queue)[0].endswith("00:01:00+00:00")


def test_dst_days_fire_once_with_a_moving_clock(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    clock = Clock(datetime(2026, 3, 27, 12, tzinfo=UTC))
    scheduler = make_scheduler(clock)
    scheduler.add_schedule("30 2 * * *", report(), timezone="Europe/Berlin", catchup=True)
    _created_at(scheduler, clock.now)
    for _ in range(4 * 24 * 4):  # four days in quarter hours
        clock.advance(minutes=15)
        scheduler.run_once()
    assert logical_dates(scheduler.queue) == [
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:30:00+00:00",  # 03:30 CEST: the skipped 02:30, once
        "2026-03-30T00:30:00+00:00",
        "2026-03-31T00:30:00+00:00",
    ]


def test_a_paused_schedule_does_not_fire(make_scheduler: Callable[..., TaskScheduler]) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    scheduler = make_scheduler(clock)
    sid = scheduler.add_schedule("* * * * *", report())
    _created_at(scheduler, clock.now)
    scheduler.pause(sid)
    clock.advance(minutes=3)
    assert scheduler.run_once() == []
    scheduler.resume(sid)
    clock.advance(minutes=1)
    assert len(scheduler.run_once()) == 1  # only the new tick, not the missed ones


def test_only_the_lock_owner_fires_and_a_successor_carries_on(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    first, second = make_scheduler(clock), make_scheduler(clock)
    first.add_schedule("* * * * *", report(), catchup=True)
    _created_at(first, clock.now)
    clock.advance(minutes=2)
    assert len(first.run_once()) == 2
    clock.advance(minutes=1)
    assert second.run_once() == []  # stands by: first holds the lock
    first.close()  # releases the lock
    clock.advance(minutes=1)
    assert len(second.run_once()) == 2  # minute 3 (missed by first) and minute 4
    dates = logical_dates(second.queue)
    assert len(dates) == len(set(dates)) == 4


LOCK_TTL = 1.0


def _spawn(redis_url: str, log: BinaryIO) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fairque.cli.app",
            "scheduler",
            "--no-dags",
            "--redis-url",
            redis_url,
            "--tick",
            "0.1",
            "--lock-ttl",
            str(LOCK_TTL),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


@pytest.mark.slow
def test_three_scheduler_processes_fire_each_tick_exactly_once(
    redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    config = FairQueueConfig.create_default(redis=redis_url)
    setup = TaskScheduler(config)
    setup.add_schedule("* * * * * *", report(), catchup=True)  # every second
    setup.close()
    paths = [tmp_path / f"s{i}.log" for i in range(3)]
    logs = [path.open("wb") for path in paths]
    procs = [_spawn(redis_url, log) for log in logs]

    def tails() -> str:
        return "\n".join(path.read_text()[-1500:] for path in paths)

    try:
        # Start-up is not timed: wait (generously) until every process runs its loop.
        wait_until(lambda: all("started" in p.read_text() for p in paths), 90, tails)
        wait_until(lambda: _lock_owner(redis_url) and _run_count(config) >= 2, 10, tails)
        owner = _lock_owner(redis_url)
        victim = next(p for p in procs if p.pid == owner)
        os.kill(victim.pid, signal.SIGKILL)  # the owner dies mid-run
        killed = time.monotonic()
        before = _run_count(config)
        wait_until(lambda: _lock_owner(redis_url) not in (None, owner), 10, tails)
        takeover = time.monotonic() - killed  # the lock expires, a standby takes it
        assert takeover < LOCK_TTL + budget(1.5), f"took over after {takeover:.1f} s\n{tails()}"
        wait_until(lambda: _run_count(config) >= before + 3, 10, tails)  # and fires on
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=budget(10)) for proc in procs]
        for log in logs:
            log.close()
    assert sorted(codes) == sorted([0, 0, -signal.SIGKILL]), tails()
    with TaskQueue(config) as queue:
        dates = [r.logical_date or "" for r in queue.list_runs(limit=1000)]
    counts = Counter(dates)
    assert counts and max(counts.values()) == 1, counts  # never twice
    seconds = sorted(datetime.fromisoformat(d).timestamp() for d in dates)
    gaps = [b - a for a, b in itertools.pairwise(seconds)]
    assert gaps and max(gaps) == 1.0, gaps  # and none missed, across the handover
    assert len(seconds) >= 5


def _lock_owner(redis_url: str) -> int | None:
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        token = queue.redis.get(queue.keys.scheduler_lock)
    return int(str(token).split(":")[0].removeprefix("scheduler-")) if token else None


def _run_count(config: FairQueueConfig) -> int:
    with TaskQueue(config) as queue:
        return len(queue.list_runs(limit=1000))


DAG_YAML = """\
dag_id: {dag_id}
schedule: "{cron}"
catchup: {catchup}
max_active_runs: {max_active}
tasks:
  only:
    callable: "examples.etl:backup_data"
"""


def _dag_file(
    folder: Path, dag_id: str, cron: str = "* * * * *", catchup: bool = False, max_active: int = 16
) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{dag_id}.yaml"
    path.write_text(
        DAG_YAML.format(
            dag_id=dag_id, cron=cron, catchup=str(catchup).lower(), max_active=max_active
        )
    )
    return path


def test_dag_schedules_fire_runs_named_after_their_tick(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    _dag_file(folder, "every_minute", catchup=True)
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, dags_folder=folder)
    assert scheduler.run_once() == []  # first seen now: nothing before it fires
    clock.advance(minutes=2)
    fired = scheduler.run_once()
    assert fired == ["every_minute__2026-01-01T12:01:00Z", "every_minute__2026-01-01T12:02:00Z"]
    assert scheduler.run_once() == []
    run = scheduler.queue.get_run(fired[0])
    assert run.dag_id == "every_minute" and run.logical_date == "2026-01-01T12:01:00+00:00"


def test_a_dag_larger_than_the_step_size_fires_its_runs_in_steps(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    tasks = "".join(f"  t{i}:\n    callable: examples.etl:backup_data\n" for i in range(7))
    tasks += "  last:\n    callable: examples.etl:backup_data\n    depends_on: [t0, t6]\n"
    (folder / "wide.yaml").write_text(f'dag_id: wide\nschedule: "* * * * *"\ntasks:\n{tasks}')
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, {"step_size": 3}, dags_folder=folder)
    scheduler.run_once()
    clock.advance(minutes=1)
    (fired,) = scheduler.run_once()
    assert scheduler.run_once() == []  # created once
    queue = scheduler.queue
    assert not queue.redis.exists(queue.keys.dag_template("wide"))  # not one fire.lua call
    run = queue.get_run(fired)
    states = {name: task.state for name, task in run.tasks.items() if task is not None}
    assert len(states) == 8
    assert states.pop("last") is TaskState.DEFERRED
    assert set(states.values()) == {TaskState.QUEUED}


def test_max_active_runs_holds_new_runs_back(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    _dag_file(folder, "one_at_a_time", max_active=1)
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, dags_folder=folder)
    scheduler.run_once()
    clock.advance(minutes=1)
    (first,) = scheduler.run_once()
    clock.advance(minutes=1)
    assert scheduler.run_once() == []  # no worker: the first run is unfinished
    scheduler.queue.cancel_run(first)
    clock.advance(seconds=1)  # a DAG waiting for a slot is looked at again every second
    assert len(scheduler.run_once()) == 1


def test_scheduled_runs_obey_the_dags_max_active_tasks(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    path = _dag_file(tmp_path / "dags", "narrow", catchup=True)
    path.write_text(path.read_text().replace("tasks:", "max_active_tasks: 1\ntasks:"))
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, dags_folder=tmp_path / "dags")
    scheduler.run_once()
    clock.advance(minutes=2)
    assert len(scheduler.run_once()) == 2  # two runs, one task each, both ready
    queue = scheduler.queue
    first = queue.pop()
    assert first is not None and queue.pop() is None  # the DAG's one slot is taken
    queue.finish(first)
    second = queue.pop()
    assert second is not None and second.run_id != first.run_id
    queue.finish(second)


def test_paused_dags_do_not_fire_and_changed_files_are_reloaded(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    from fairque.dag.runs import set_paused

    folder = tmp_path / "dags"
    _dag_file(folder, "quiet")
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, dags_folder=folder)
    set_paused(scheduler.queue, "quiet", True)
    scheduler.run_once()
    clock.advance(minutes=2)
    assert scheduler.run_once() == []
    _dag_file(folder, "newcomer")
    assert scheduler.dags is not None
    scheduler.dags.reload()
    assert "newcomer" in scheduler.dags.dags
    scheduler.run_once()
    clock.advance(minutes=1)
    assert [r.split("__")[0] for r in scheduler.run_once()] == ["newcomer"]
