"""DAGs at scale (issue 13): the due index, batched firing, several schedulers at once,
lag recorded and alerted, and a prompt stop, on a real server."""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import redis

from fairque import FairQueueConfig, TaskQueue
from fairque.core.keys import Keys
from fairque.dag.runs import set_paused
from fairque.monitoring.alerts import AlertThresholds, evaluate
from fairque.queue import control
from fairque.queue.firing import lag_summary
from fairque.scheduler.scheduler import WAKE_MARGIN, TaskScheduler
from tests.performance.dag_folder import write_dags
from tests.timing import budget, wait_until

from .conftest import ConfigFactory
from .procs import CLI, Proc, Procs
from .test_scheduler import UTC, Clock, _dag_file, make_scheduler

__all__ = ["make_scheduler"]  # the fixture, imported for the tests below

NOON = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def _due(client: redis.Redis, keys: Keys) -> dict[str, float]:
    pairs: list[tuple[bytes, float]] = client.zrange(keys.dags_due, 0, -1, withscores=True)  # type: ignore[assignment]
    return {k.decode(): float(v) for k, v in pairs}


def _seen(
    make_scheduler: Callable[..., TaskScheduler], folder: Path
) -> tuple[TaskScheduler, Clock]:
    """A scheduler on ``folder`` with a clock at NOON, after its first pass (every DAG seen)."""
    clock = Clock(NOON)
    scheduler = make_scheduler(clock, dags_folder=folder)
    scheduler.run_once()
    return scheduler, clock


def _yaml(folder: Path, dag_id: str, top: str, task: str) -> None:
    """A per-minute DAG file of one task, with extra ``top`` and ``task`` YAML lines."""
    folder.mkdir(exist_ok=True)
    text = f"dag_id: {dag_id}\nschedule: '* * * * *'\n{top}tasks:\n  only:\n"
    text += f"    callable: 'examples.etl:backup_data'\n{task}"
    (folder / f"{dag_id}.yaml").write_text(text)


def _runs_by_dag(queue: TaskQueue) -> Counter[str]:
    return Counter(r.dag_id or "" for r in queue.list_runs(limit=10_000))


def test_the_due_index_follows_the_folder_and_pauses(
    make_scheduler: Callable[..., TaskScheduler],
    tmp_path: Path,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    folder = tmp_path / "dags"
    _dag_file(folder, "hourly", cron="0 * * * *")
    _dag_file(folder, "leaving")
    clock = Clock(NOON)
    scheduler = make_scheduler(clock, dags_folder=folder)
    assert scheduler.run_once() == []  # first seen: cursors set, next ticks indexed
    due = _due(redis_client, keys)
    assert due == {
        "hourly": datetime(2026, 1, 1, 13, tzinfo=UTC).timestamp(),
        "leaving": datetime(2026, 1, 1, 12, 1, tzinfo=UTC).timestamp(),
    }
    (folder / "leaving.yaml").unlink()
    _dag_file(folder, "hourly", cron="*/5 * * * *")  # its schedule changed
    _dag_file(folder, "newcomer")
    assert scheduler.dags is not None
    scheduler.dags.reload()
    scheduler.run_once()
    due = _due(redis_client, keys)
    assert sorted(due) == ["hourly", "newcomer"]  # the removed file left the index
    assert due["hourly"] == datetime(2026, 1, 1, 12, 5, tzinfo=UTC).timestamp()
    set_paused(scheduler.queue, "newcomer", True)
    clock.advance(minutes=5)
    assert [r.split("__")[0] for r in scheduler.run_once()] == ["hourly"]
    # the paused DAG's tick was skipped: its cursor moved and its next tick is indexed
    assert (
        _due(redis_client, keys)["newcomer"] == datetime(2026, 1, 1, 12, 6, tzinfo=UTC).timestamp()
    )
    set_paused(scheduler.queue, "newcomer", False)
    clock.advance(minutes=1)
    assert [r.split("__")[0] for r in scheduler.run_once()] == ["newcomer"]


def _commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_config")


def test_an_idle_pass_costs_the_same_whatever_the_number_of_dags(
    make_scheduler: Callable[..., TaskScheduler],
    tmp_path: Path,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    def idle_pass(count: int) -> int:
        redis_client.flushdb()
        folder = tmp_path / f"dags{count}"
        write_dags(folder, count, tasks=2, schedule="0 0 * * *")  # daily: idle at noon
        scheduler = make_scheduler(Clock(NOON), dags_folder=folder)
        scheduler.run_once()  # first sight of every DAG: cursors and next ticks
        assert scheduler.dags is not None
        while not scheduler.dags.all_compiled:  # idle passes compile the run templates
            scheduler.run_once()
        scheduler.run_once()
        redis_client.config_resetstat()
        scheduler.run_once()
        assert not redis_client.zrangebyscore(keys.dags_due, "-inf", NOON.timestamp())
        return _commands(redis_client)

    # housekeeping, the lock, the task schedules and one claim: 5 DAGs or 80, the same
    assert idle_pass(5) == idle_pass(80)


def test_the_next_pass_starts_when_the_first_dag_falls_due(
    make_scheduler: Callable[..., TaskScheduler],
    tmp_path: Path,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    # tick_seconds of 5 s and DAGs due in 3 s: the loop waits 3 s, not 5 (a tick used to
    # be fired up to tick_seconds late: 0.1 s on average with the default 0.2 s)
    folder = tmp_path / "dags"
    write_dags(folder, 3, tasks=2, schedule="33 * * * * *")  # NOON is 12:00:30: due 12:00:33
    clock = Clock(NOON)
    scheduler = make_scheduler(clock, dags_folder=folder, tick_seconds=5.0)
    assert scheduler.pause_seconds() == 5.0  # nothing indexed yet
    scheduler.run_once()
    due = min(_due(redis_client, keys).values())
    assert due == NOON.timestamp() + 3
    assert scheduler.pause_seconds() == pytest.approx(3 + WAKE_MARGIN)
    clock.advance(seconds=1.5)
    assert scheduler.pause_seconds() == pytest.approx(1.5 + WAKE_MARGIN)
    clock.advance(seconds=2.0)  # due already, not fired (no pass): a whole tick, no busy loop
    assert scheduler.pause_seconds() == 5.0
    assert make_scheduler(Clock(NOON), tick_seconds=5.0).pause_seconds() == 5.0  # no DAGs


def test_a_bad_dag_among_many_good_ones_fires_nothing_and_holds_back_nothing(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    ids = write_dags(folder, 30, tasks=3, schedule="* * * * *")
    _yaml(folder, "broken", "params:\n  day: {type: string}\n", "")
    scheduler, clock = _seen(make_scheduler, folder)
    clock.advance(minutes=1)
    fired = scheduler.run_once()
    assert sorted(r.split("__")[0] for r in fired) == ids  # every good one, once
    errors = scheduler.queue.get_stats()["schedule_errors"]
    assert list(errors) == ["dag:broken"] and "day" in errors["dag:broken"]["reason"]
    run = scheduler.queue.get_run(fired[0])  # made from the run template: real ids and dates
    assert run.logical_date == "2026-01-01T12:01:00+00:00"
    assert all(t is not None and t.run_id == run.run_id for t in run.tasks.values())
    record = next(t for t in run.tasks.values() if t is not None)
    assert record.task_id.startswith(run.run_id + ":")
    assert run.dag_snapshot is not None and run.dag_snapshot["dag_id"] == run.dag_id
    clock.advance(minutes=1)
    assert len(scheduler.run_once()) == 30  # the next tick as well; broken still fails
    assert _runs_by_dag(scheduler.queue)["broken"] == 0


def test_a_run_template_renders_jinja_arguments_for_each_tick(
    make_scheduler: Callable[..., TaskScheduler], tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    _yaml(folder, "dated", "", "    kwargs: {day: '{{ ds }}'}\n")
    scheduler, clock = _seen(make_scheduler, folder)
    clock.advance(minutes=1)
    (first,) = scheduler.run_once()
    clock.advance(days=1)
    (second,) = scheduler.run_once()
    records = [scheduler.queue.get_run(r).tasks["only"] for r in (first, second)]
    assert [t.kwargs if t else None for t in records] == [
        {"day": "2026-01-01"},
        {"day": "2026-01-02"},
    ]


def test_lag_is_recorded_alerted_and_warned_about(
    make_scheduler: Callable[..., TaskScheduler],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    keys: Keys,
) -> None:
    folder = tmp_path / "dags"
    _dag_file(folder, "late")
    _dag_file(folder, "later")
    clock = Clock(NOON)
    scheduler = make_scheduler(clock, dags_folder=folder)
    scheduler.run_once()
    clock.advance(minutes=1)  # 12:01:30: the 12:01 tick fires 30 s late
    with caplog.at_level(logging.WARNING, logger="fairque.scheduler.scheduler"):
        assert len(scheduler.run_once()) == 2
    assert "cannot keep up: 2 of 2 DAG run(s) created late (worst 30.0 s" in caplog.text
    stats = scheduler.queue.get_stats()
    lag = stats["scheduler_lag"]
    # recorded against the scheduler's clock (30 s late), judged against the server's
    # (the test clock is in the past): widen the window to see the samples
    assert lag["ticks"]["count"] == 0
    keys = scheduler.keys
    raw: list[list[str]] = [
        scheduler.queue.redis.lrange(key, 0, -1)  # type: ignore[misc]
        for key in (keys.scheduler_lag, keys.scheduler_passes)
    ]
    summary = lag_summary(raw[0], raw[1], clock.now.timestamp(), 300)
    assert summary["ticks"]["count"] == 2
    assert summary["ticks"]["p50"] == summary["ticks"]["max"] == pytest.approx(30.0, abs=0.5)
    assert set(summary["dags"]) == {"late", "later"}
    assert summary["passes"]["count"] == 1
    view = {**stats, "scheduler_lag": summary}
    alerts = evaluate(view, AlertThresholds(max_tick_lag_seconds=10), lock_held=True)
    (alert,) = [a for a in alerts if a.name == "tick_lag"]
    assert alert.value == pytest.approx(30.0, abs=0.5) and "threshold 10 s" in alert.message
    assert not [
        a for a in evaluate(view, AlertThresholds(), lock_held=True) if a.name == "tick_lag"
    ]


def test_health_alerts_when_ticks_fire_late(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path, keys: Keys
) -> None:
    import subprocess

    now = float(redis_client.time()[0])
    entries = [f"{now - 1:.3f} slow_dag {lag:.3f}" for lag in (40.0, 45.0, 50.0)]
    redis_client.lpush(keys.scheduler_lag, *entries)
    redis_client.lpush(keys.scheduler_passes, f"{now - 1:.3f} s0:abc 2.5 3")
    argv = [*CLI, "health", "--redis-url", redis_url]
    late = subprocess.run([*argv, "--max-tick-lag", "20"], capture_output=True, text=True)
    assert late.returncode == 1, late.stdout + late.stderr
    assert "tick_lag" in late.stdout and "slow_dag" in late.stdout
    assert "DAG tick lag" in late.stdout
    fine = subprocess.run([*argv, "--max-tick-lag", "60"], capture_output=True, text=True)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as queue:
        from fairque.monitoring.metrics import QueueDepthCollector, UserLabels

        families = {m.name: m for m in QueueDepthCollector(queue, UserLabels()).collect()}
    lag = families["fairque_scheduler_tick_lag_seconds"]
    samples = {s.labels["stat"]: s.value for s in lag.samples}
    assert samples == {"p50": 45.0, "p99": 50.0, "max": 50.0}


# --- processes ---------------------------------------------------------------------------

EVERY_2_SECONDS = "*/2 * * * * *"


def _scheduler(procs: Procs, name: str, folder: Path, *options: str) -> Proc:
    argv = [*CLI, "scheduler", "--dags-folder", str(folder), "--redis-url", procs.redis_url]
    return procs.start(name, [*argv, "--tick", "0.1", "--log-level", "INFO", *options])


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _ticks(queue: TaskQueue) -> Counter[tuple[str, str]]:
    return Counter((r.dag_id or "", r.logical_date or "") for r in queue.list_runs(limit=10_000))


@pytest.mark.slow
def test_two_schedulers_fire_every_dag_once_per_tick_and_one_takes_over(
    procs: Procs, tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    folder = tmp_path / "dags"
    ids = write_dags(folder, 40, tasks=3, schedule=EVERY_2_SECONDS)
    options = ("--lock-ttl", "1", "--batch-size", "4")  # small batches: both share a tick
    first = _scheduler(procs, "s1", folder, *options)
    second = _scheduler(procs, "s2", folder, *options)
    config = FairQueueConfig.create_default(redis=redis_url)
    with TaskQueue(config) as queue:
        wait_until(lambda: len(_ticks(queue)) >= 40 * 4, 90, procs.tails)  # start-up: untimed
        passes: list[str] = queue.redis.lrange(keys.scheduler_passes, 0, -1)  # type: ignore[assignment]
        tokens = {entry.split(" ")[1] for entry in passes}
        assert len(tokens) == 2, passes  # both fired: active-active
        first.popen.kill()
        killed_at = queue.run_pipeline(control.server_time())

        def each_fired_after_the_kill() -> bool:
            fired = {d for d, t in _ticks(queue) if _epoch(t) > killed_at + 2}
            return fired == set(ids)

        wait_until(each_fired_after_the_kill, 15, procs.tails)
        counts = _ticks(queue)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    by_tick = Counter(t for _, t in counts)
    assert all(n <= 40 for n in by_tick.values())
    assert second.alive()


@pytest.mark.slow
def test_sigterm_stops_a_scheduler_mid_pass_within_a_second(
    procs: Procs, tmp_path: Path, redis_url: str, redis_client: redis.Redis, keys: Keys
) -> None:
    folder = tmp_path / "dags"
    write_dags(folder, 3, tasks=2, schedule=EVERY_2_SECONDS)
    proc = _scheduler(procs, "s1", folder)
    wait_until(lambda: redis_client.hlen(keys.schedule_cursors) >= 3, 90, procs.tails)
    wait_until(lambda: redis_client.get(keys.scheduler_lock), 10, procs.tails)
    marker = tmp_path / "loading"
    (folder / "slow_to_load.py").write_text(  # a reload that takes 30 s: the pass is stuck
        f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(30)\n"
    )
    wait_until(marker.exists, 10, procs.tails)
    proc.send(signal.SIGTERM)
    sent = time.monotonic()
    code = proc.wait_exit(10)
    took = time.monotonic() - sent
    assert code == 0, proc.tail()
    assert took < budget(1.0), f"stopped {took:.2f} s after SIGTERM"
    assert redis_client.get(keys.scheduler_lock) is None  # released: another takes over now


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_a_bad_batch_size_is_refused(make_config: ConfigFactory, size: object) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TaskScheduler(make_config(), batch_size=size)  # type: ignore[arg-type]


def test_run_templates_follow_the_dag_file_and_come_back_when_lost(
    make_scheduler: Callable[..., TaskScheduler],
    tmp_path: Path,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    folder = tmp_path / "dags"
    path = _dag_file(folder, "etl")
    scheduler, clock = _seen(make_scheduler, folder)
    clock.advance(minutes=1)
    (first,) = scheduler.run_once()
    assert redis_client.exists(keys.dag_template("etl"))
    path.write_text(path.read_text().replace("examples.etl:backup_data", "examples.etl:cleanup"))
    assert scheduler.dags is not None
    scheduler.dags.reload()  # a new version of the file: a new template
    clock.advance(minutes=1)
    (second,) = scheduler.run_once()
    redis_client.delete(keys.dag_template("etl"))  # lost (a flush, a failover): stored again
    clock.advance(minutes=1)
    (third,) = scheduler.run_once()
    funcs = [scheduler.queue.get_run(r).tasks["only"] for r in (first, second, third)]
    assert [t.func if t else None for t in funcs] == [
        "examples.etl:backup_data",
        "examples.etl:cleanup",
        "examples.etl:cleanup",
    ]
    versions = {scheduler.queue.get_run(r).dag_snapshot["version"] for r in (first, second)}  # type: ignore[index]
    assert len(versions) == 2


def test_run_scripts_keeps_each_calls_error_to_itself(make_config: ConfigFactory) -> None:
    import asyncio

    from fairque import AsyncTaskQueue, Task

    def calls(queue: TaskQueue | AsyncTaskQueue, tag: str) -> list[object]:
        good = queue.calls.push([Task.create("u", task_id=f"{tag}-a")])
        again = queue.calls.push([Task.create("u", task_id=f"{tag}-a")])  # still active
        broken = queue.calls.advance("x", 1.0)
        broken = type(broken)(broken.script, broken.keys, ["x"], broken.parse)  # no tick: Lua error
        return [good, again, broken, queue.calls.push([Task.create("u", task_id=f"{tag}-b")])]

    with TaskQueue(make_config()) as queue:
        replies = queue.run_scripts(calls(queue, "sync"))  # type: ignore[arg-type]

    async def run() -> list[object]:
        async with AsyncTaskQueue(make_config()) as aqueue:
            return await aqueue.run_scripts(calls(aqueue, "async"))  # type: ignore[arg-type]

    for found in (replies, asyncio.run(run())):
        kinds = [type(r).__name__ for r in found]
        assert kinds == ["dict", "DuplicateTaskError", "ScriptError", "dict"], found
