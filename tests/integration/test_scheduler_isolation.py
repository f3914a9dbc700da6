"""One bad schedule or DAG cannot stop the scheduler, and schedules start on the server's
clock: never-firing crons and over-long ids refused when added; bad entries already in
Redis skipped, logged once, reported by ``health`` and retried; a client clock an hour off
changes nothing."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from fairque import FairQueueConfig, Task, TaskQueue
from fairque.core.errors import CronError, TaskError
from fairque.monitoring.alerts import AlertThresholds, evaluate
from fairque.scheduler.scheduler import TaskScheduler
from fairque.scheduler.schedules import Schedule
from tests.timing import budget, wait_until

from .test_scheduler import Clock, _dag_file, logical_dates, make_scheduler, report

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]
__all__ = ["make_scheduler"]  # the fixture, shared with test_scheduler


# --- refused when added ------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_refused_by_add_schedule(
    make_scheduler: Callable[..., TaskScheduler], cron: str
) -> None:
    scheduler = make_scheduler()
    with pytest.raises(CronError, match="never fires"):
        scheduler.add_schedule(cron, report())
    assert scheduler.list_schedules() == []


def test_a_schedule_whose_run_ids_are_too_long_is_refused(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    scheduler = make_scheduler()
    with pytest.raises(TaskError, match="limit is 200"):
        scheduler.add_schedule("* * * * *", report(), schedule_id="s" * 180)
    assert scheduler.list_schedules() == []


# --- bad schedules already in Redis ------------------------------------------------------


def _raw(scheduler: TaskScheduler, schedule_id: str, text: str) -> None:
    """Store a schedule as an older version or a hand edit might have: unchecked."""
    scheduler.queue.redis.hset(scheduler.keys.schedules, schedule_id, text)


def _bad_schedules(scheduler: TaskScheduler, created: datetime) -> dict[str, str]:
    good = Schedule("x", "* * * * *", report(), created_at=created.timestamp())
    variants = {
        "never": {"cron_expr": "0 0 31 2 *"},
        "nowhere": {"timezone": "Nowhere/City"},
        "long": {"task": {**good.task.to_dict(), "task_id": "t" * 190, "name": "t" * 190}},
    }
    texts = {"broken": "{not json"}
    for sid, change in variants.items():
        data = {**json.loads(good.to_json()), "schedule_id": sid, **change}
        texts[sid] = json.dumps(data)
    for sid, text in texts.items():
        _raw(scheduler, sid, text)
    return texts


def test_bad_stored_schedules_are_skipped_reported_and_retried(
    make_scheduler: Callable[..., TaskScheduler], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    scheduler = make_scheduler(clock)
    _raw(
        scheduler,
        "good",
        Schedule("good", "* * * * *", report(), created_at=clock.now.timestamp()).to_json(),
    )
    _bad_schedules(scheduler, clock.now)
    with caplog.at_level(logging.WARNING, logger="fairque.scheduler"):
        for minute in range(1, 4):
            clock.advance(minutes=1)
            fired = scheduler.run_once()
            assert [r.split("__")[0] for r in fired] == ["good"], minute
    assert len(logical_dates(scheduler.queue)) == 3
    warned = [r.getMessage() for r in caplog.records if "failing" in r.getMessage()]
    assert len(warned) == 4, warned  # once per bad schedule, not once per pass
    errors = scheduler.queue.get_stats()["schedule_errors"]
    assert sorted(errors) == [
        "schedule:broken",
        "schedule:long",
        "schedule:never",
        "schedule:nowhere",
    ]
    assert "never fires" in errors["schedule:never"]["reason"]
    assert errors["schedule:never"]["failures"] == 3
    alerts = evaluate(scheduler.queue.get_stats(), AlertThresholds(), lock_held=True)
    messages = {a.subject: a.message for a in alerts if a.name == "schedule_failing"}
    assert messages["schedule:nowhere"].startswith("schedule nowhere failing: ")
    # mended or removed: the entry goes away; the mended one fires from then on
    good = Schedule("never", "* * * * *", report(), created_at=clock.now.timestamp())
    _raw(scheduler, "never", good.to_json())
    scheduler.remove_schedule("broken")
    clock.advance(minutes=1)
    assert sorted(r.split("__")[0] for r in scheduler.run_once()) == ["good", "never"]
    errors = scheduler.queue.get_stats()["schedule_errors"]
    assert sorted(errors) == ["schedule:long", "schedule:nowhere"]


def test_health_and_stats_name_the_failing_schedules(
    make_scheduler: Callable[..., TaskScheduler], redis_url: str
) -> None:
    from typer.testing import CliRunner

    from fairque.cli.app import app

    scheduler = make_scheduler(Clock(datetime(2026, 1, 1, tzinfo=UTC)))
    _raw(scheduler, "broken", "{not json")
    scheduler.run_once()
    result = CliRunner().invoke(app, ["health", "--redis-url", redis_url])
    assert result.exit_code == 1
    assert "schedule_failing: schedule broken failing: JSONDecodeError" in result.output
    result = CliRunner().invoke(app, ["queue", "stats", "--json", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    assert "schedule:broken" in json.loads(result.output)["schedule_errors"]
    result = CliRunner().invoke(app, ["queue", "stats", "--redis-url", redis_url])
    assert "schedule:broken failing (1 passes): JSONDecodeError" in result.output
    scheduler.remove_schedule("broken")
    assert CliRunner().invoke(app, ["health", "--redis-url", redis_url]).exit_code == 0


def test_without_catchup_a_schedule_mended_hours_later_fires_its_latest_tick(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    scheduler = make_scheduler(clock)
    _raw(scheduler, "late", json.dumps({"schedule_id": "late"}))  # unreadable
    scheduler.run_once()
    clock.advance(hours=5, seconds=30)  # failing all along; then mended
    late = Schedule(
        "late", "* * * * * *", report(), created_at=datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    )
    _raw(scheduler, "late", late.to_json())
    assert scheduler.run_once() == ["late__2026-01-01T05:00:30Z"]


def test_a_background_scheduler_keeps_firing_beside_bad_schedules(
    make_scheduler: Callable[..., TaskScheduler],
) -> None:
    scheduler = make_scheduler(tick_seconds=0.05)
    scheduler.add_schedule("* * * * * *", report(), schedule_id="every_second")
    _bad_schedules(scheduler, datetime.now(UTC) - timedelta(minutes=5))
    thread = scheduler.start_background()
    wait_until(
        lambda: len(logical_dates(scheduler.queue)) >= 2,
        10,
        "two ticks of the good schedule",
    )
    assert thread.is_alive() and scheduler.error is None
    assert len(scheduler.queue.get_stats()["schedule_errors"]) == 4


@pytest.mark.slow
def test_a_scheduler_process_survives_bad_schedules(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """(``redis_client`` empties the database: runs of earlier tests would count.)"""
    config = FairQueueConfig.create_default(redis=redis_url)
    setup = TaskScheduler(config)
    setup.add_schedule("* * * * * *", report(), schedule_id="every_second")
    # Created minutes ago, so each bad schedule is due (and fails) at once, whatever
    # the second of the minute the test starts at.
    _bad_schedules(setup, datetime.now(UTC) - timedelta(minutes=5))
    setup.close()
    log = (tmp_path / "scheduler.log").open("wb")
    command = [sys.executable, "-m", "fairque.cli.app", "scheduler", "--no-dags"]
    command += ["--redis-url", redis_url, "--tick", "0.1"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    try:
        with TaskQueue(config) as queue:
            wait_until(
                lambda: len(queue.list_runs(limit=100)) >= 3 or proc.poll() is not None,
                20,
                "three ticks of the good schedule",
            )
            assert proc.poll() is None, (tmp_path / "scheduler.log").read_text()[-2000:]
            assert len(queue.get_stats()["schedule_errors"]) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=budget(10))
        log.close()
    assert code == 0, (tmp_path / "scheduler.log").read_text()[-2000:]


# --- DAGs --------------------------------------------------------------------------------


NEEDS_CONF = """\
dag_id: needs_conf
schedule: "* * * * *"
params:
  day:
    type: string
tasks:
  only:
    callable: "examples.etl:backup_data"
"""


def test_a_dag_failing_at_fire_time_does_not_hold_the_others_back(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    _dag_file(folder, "aaa_fine")
    _dag_file(folder, "zzz_fine")
    (folder / "needs_conf.yaml").write_text(NEEDS_CONF)  # a required param: no run has it
    clock = Clock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    scheduler = make_scheduler(clock, dags_folder=folder)
    assert scheduler.dags is not None
    long_names = scheduler.dags.dags["aaa_fine"]
    object.__setattr__(long_names, "dag_id", "x" * 185)  # as loaded by an older version
    scheduler.dags.dags = {"x" * 185: long_names, **scheduler.dags.dags}
    scheduler.run_once()
    clock.advance(minutes=1)
    started = time.monotonic()
    fired = scheduler.run_once()
    assert time.monotonic() - started < budget(2)
    assert [r.split("__")[0] for r in fired] == ["zzz_fine"]
    errors = scheduler.queue.get_stats()["schedule_errors"]
    assert sorted(errors) == ["dag:needs_conf", "dag:" + "x" * 185]
    assert "day" in errors["dag:needs_conf"]["reason"]
    alerts = evaluate(scheduler.queue.get_stats(), AlertThresholds(), lock_held=True)
    assert any(a.message.startswith("DAG needs_conf failing: ") for a in alerts)
    clock.advance(minutes=1)
    assert [r.split("__")[0] for r in scheduler.run_once()] == ["zzz_fine"]


# --- the server's clock ------------------------------------------------------------------


@pytest.fixture
def skew_client_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move this process's clock (``time.time`` and ``datetime.now`` in fairque's
    modules) by some seconds; the server's clock stays right."""

    def skew(seconds: float) -> None:
        real_time = time.time

        class Skewed(datetime):
            @classmethod
            def now(cls, tz: object = None) -> Skewed:  # type: ignore[override]
                return cls.fromtimestamp(real_time() + seconds, tz)  # type: ignore[arg-type]

        monkeypatch.setattr(time, "time", lambda: real_time() + seconds)
        for name, module in list(sys.modules.items()):
            if name.startswith("fairque") and getattr(module, "datetime", None) is datetime:
                monkeypatch.setattr(module, "datetime", Skewed)

    return skew


@pytest.mark.parametrize("hours", [1, -1])
def test_a_client_clock_an_hour_off_changes_nothing(
    make_scheduler: Callable[..., TaskScheduler],
    skew_client_clock: Callable[[float], None],
    hours: int,
) -> None:
    scheduler = make_scheduler()
    server_now = scheduler.clock().timestamp()
    skew_client_clock(hours * 3600)
    sid = scheduler.add_schedule("* * * * * *", report(), catchup=True)
    assert abs(scheduler.get_schedule(sid).created_at - server_now) < 5
    fired: list[str] = []

    def two_ticks() -> bool:
        fired.extend(scheduler.run_once())
        time.sleep(0.05)
        return len(fired) >= 2

    wait_until(two_ticks, 10, "two ticks of a per-second schedule")
    ticks = [datetime.fromisoformat(d).timestamp() for d in logical_dates(scheduler.queue)]
    assert min(ticks) > server_now - 1  # nothing from before the schedule existed
    assert len(ticks) <= 4


def test_a_manual_dag_run_is_stamped_by_the_server(
    make_queue: Callable[..., TaskQueue], skew_client_clock: Callable[[float], None]
) -> None:
    from fairque.dag.model import DAG
    from fairque.dag.runs import trigger
    from fairque.queue import control

    queue = make_queue()
    server_now = queue.run_pipeline(control.server_time())
    skew_client_clock(-3600)
    dag = DAG(dag_id="by_hand", pipeline=Task.create("default", func="examples.etl:backup_data"))
    handle = trigger(queue, dag)
    logical = queue.get_run(handle.run_id).logical_date
    assert logical is not None
    assert abs(datetime.fromisoformat(logical).timestamp() - server_now) < 5
    stamp = handle.run_id.split("__manual__")[1]
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(moment.timestamp() - server_now) < 5
