"""Statistics, alerts, ``fairque health`` and Prometheus metrics against the real server."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from fairque import FairQueueConfig, Task, TaskQueue, TaskState, Worker, WorkerConfig
from fairque.cli.app import app
from fairque.monitoring.alerts import Alert, AlertMonitor, AlertThresholds
from fairque.monitoring.metrics import WorkerMetrics
from fairque.monitoring.stats import collect
from fairque.queue import heartbeat
from fairque.scheduler.scheduler import TaskScheduler
from fairque.worker.runtime import Outcome, WorkerObserver
from tests.timing import budget, wait_until

from .conftest import ConfigFactory
from .procs import Procs

JOBS = "tests.integration.jobs"
UNREACHABLE = "redis://127.0.0.1:1/0"


def job(user: str, name: str, *args: Any, **options: Any) -> Task:
    return Task.create(user, func=f"{JOBS}:{name}", args=list(args), **options)


@pytest.fixture
def queue(make_config: ConfigFactory) -> Iterator[TaskQueue]:
    with TaskQueue(make_config()) as q:
        yield q


@pytest.fixture
def start(make_config: ConfigFactory) -> Iterator[Callable[..., Worker]]:
    """Start in-process Workers (fast polling and heartbeats); stopped at teardown."""
    started: list[Worker] = []

    def run(observer: WorkerObserver | None = None, **settings: Any) -> Worker:
        settings.setdefault("allowed_modules", ["tests"])
        settings.setdefault("poll_interval_seconds", 0.05)
        settings.setdefault("heartbeat_seconds", 0.1)
        settings.setdefault("worker_id", f"w{len(started)}")
        worker = Worker(make_config(**settings))
        if observer is not None:
            worker.core.observer = observer
        started.append(worker)
        worker.start_background()
        return worker

    yield run
    for worker in started:
        worker.stop(graceful=False)
    for worker in started:
        assert worker.join(budget(10)), "worker did not stop"
        worker.queue.close()


def register_worker(queue: TaskQueue, *users: str) -> None:
    """Write the liveness record of a worker serving ``users`` (no worker runs)."""
    config = WorkerConfig(id="+".join(users), assigned_users=list(users))
    beat = heartbeat.beat(
        queue.keys, config, running=[], processed=0, failed=0, started_at=time.time()
    )
    queue.run_pipeline(beat)


def end_tasks(queue: TaskQueue, user: str, finished: int, failed: int) -> None:
    """Push, claim and end tasks through the queue API (no retries)."""
    for _ in range(finished + failed):
        queue.push(Task.create(user, max_retries=0))
    for i in range(finished + failed):
        task = queue.pop()
        assert task is not None
        if i < finished:
            queue.finish(task, "ok")
        else:
            queue.fail(task, "bad")


# --- statistics ------------------------------------------------------------------------


def test_stats_count_queued_tasks_per_priority_and_states_per_user(queue: TaskQueue) -> None:
    for priority in (1, 3, 3, 6):
        queue.push(Task.create("alice", priority))
    upstream = queue.push(Task.create("bob"))["task_id"]
    queue.push(Task.create("bob", depends_on=[upstream]))
    queue.push(Task.create("bob", execute_after=time.time() + 3600))
    queue.cancel(queue.push(Task.create("carol"))["task_id"], "test")

    stats = collect(queue)
    alice, bob, carol = (stats["users"][u] for u in ("alice", "bob", "carol"))
    assert alice["queued"] == 4 and alice["queued_by_priority"] == {"1": 1, "3": 2, "6": 1}
    assert alice["next_task_age"] >= 0
    assert (bob["queued"], bob["deferred"], bob["scheduled"]) == (1, 1, 1)
    assert carol.get("queued", 0) == 0 and carol["canceled"] == 1
    assert "next_task_age" not in carol
    assert stats["tasks_queued"] == 5 and stats["tasks_active"] == 7
    assert stats["workers"] == []


def test_the_next_tasks_age_and_the_oldest_age_grow(queue: TaskQueue) -> None:
    queue.push(Task.create("alice"))
    first = collect(queue)
    age = first["users"]["alice"]["next_task_age"]
    wait_until(lambda: collect(queue)["users"]["alice"]["next_task_age"] >= age + 0.2, 10)
    later = collect(queue)
    assert later["oldest_queued_age"] >= first["oldest_queued_age"] + 0.2


def test_throughput_counts_the_tasks_ended_in_the_last_minute(
    queue: TaskQueue, start: Callable[..., Worker]
) -> None:
    start()
    for n in range(5):
        queue.push(job("u", "add", n, 1))
    for _ in range(2):
        queue.push(job("u", "boom", max_retries=0))
    wait_until(
        lambda: queue.get_stats()["tasks_finished"] + queue.get_stats()["tasks_failed"] == 7, 10
    )
    stats = collect(queue)
    assert stats["ended_last_minute"] == {"finished": 5, "failed": 2}
    assert stats["throughput_per_second"] == pytest.approx(7 / 60)
    assert (stats["users"]["u"]["finished"], stats["users"]["u"]["failed"]) == (5, 2)


def test_the_load_of_a_running_worker(queue: TaskQueue, start: Callable[..., Worker]) -> None:
    start(max_concurrent_tasks=2, worker_id="busy")
    for _ in range(3):
        queue.push(job("u", "sleep_then", 3))

    def full() -> list[dict[str, Any]]:
        workers: list[dict[str, Any]] = collect(queue)["workers"]
        return workers if workers and workers[0]["running"] == 2 else []

    wait_until(full, 10)
    (entry,) = full()
    assert entry["id"] == "busy" and entry["max_concurrent_tasks"] == 2
    assert entry["load"] == 1.0 and entry["assigned_users"] == ["*"]
    assert entry["host"] == socket.gethostname()
    assert 0 <= entry["last_seen_age"] < 5
    assert collect(queue)["users"]["u"]["queued"] == 1


def test_queue_stats_prints_tables_and_json(queue: TaskQueue, redis_url: str) -> None:
    register_worker(queue, "alice")
    queue.push(Task.create("alice", 5))
    runner = CliRunner()
    shown = runner.invoke(app, ["queue", "stats", "--redis-url", redis_url], env={"COLUMNS": "160"})
    assert shown.exit_code == 0, shown.output
    assert "1 active tasks" in shown.output and "p5" in shown.output
    assert "alice" in shown.output and "1 live workers" in shown.output
    listed = runner.invoke(app, ["queue", "stats", "--json", "--redis-url", redis_url])
    stats = json.loads(listed.output)
    assert stats["users"]["alice"]["queued_by_priority"] == {"5": 1}
    assert [w["id"] for w in stats["workers"]] == ["alice"]


# --- alerts ----------------------------------------------------------------------------


def test_each_alert_fires_above_its_threshold_and_not_at_it(
    queue: TaskQueue, make_config: ConfigFactory
) -> None:
    register_worker(queue, "*")
    end_tasks(queue, "bob", finished=4, failed=6)
    for _ in range(3):
        queue.push(Task.create("alice"))

    def fired(**thresholds: Any) -> list[str]:
        return [a.name for a in AlertMonitor(queue, AlertThresholds(**thresholds)).check()]

    assert fired() == []
    assert fired(max_queue_depth_per_user=3) == []
    assert fired(max_queue_depth_per_user=2) == ["queue_depth"]
    assert fired(max_failure_rate=0.6) == []
    assert fired(max_failure_rate=0.5) == ["failure_rate"]
    assert fired(max_oldest_age_seconds=3600) == []
    time.sleep(0.05)
    assert fired(max_oldest_age_seconds=0.01) == ["oldest_age"]
    assert fired(require_scheduler_lock=True) == ["scheduler_lock"]
    scheduler = TaskScheduler(make_config())
    try:
        assert scheduler.holds_lock()
        assert fired(require_scheduler_lock=True) == []
    finally:
        scheduler.close()
    assert fired(require_scheduler_lock=True) == ["scheduler_lock"]


def test_an_unserved_user_fires_until_a_worker_serves_it(queue: TaskQueue) -> None:
    queue.push(Task.create("bob"))
    register_worker(queue, "alice")
    (alert,) = AlertMonitor(queue).check()
    assert (alert.name, alert.subject, alert.value) == ("unserved", "bob", 1)
    register_worker(queue, "bob")
    assert AlertMonitor(queue).check() == []


def test_alerts_are_logged_and_every_callback_is_called(
    queue: TaskQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue.push(Task.create("bob"))
    seen: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("callback bug")

    monitor = AlertMonitor(queue, callbacks=[broken, seen.append])
    with caplog.at_level(logging.WARNING, logger="fairque.monitoring.alerts"):
        alerts = monitor.check()
    assert [a.name for a in alerts] == ["unserved"] and seen == alerts
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["fairque.monitoring.alerts"]
    assert "bob has 1 queued task(s)" in warnings[0].getMessage()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "callback" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_the_monitor_runs_until_stopped_and_reports_an_unreachable_redis(
    queue: TaskQueue, redis_url: str
) -> None:
    queue.push(Task.create("bob"))
    seen: list[Alert] = []
    stop = threading.Event()
    monitor = AlertMonitor(queue, callbacks=[seen.append])
    thread = threading.Thread(target=monitor.run, args=(0.02, stop))
    thread.start()
    wait_until(lambda: len(seen) >= 3, 10)
    stop.set()
    thread.join(budget(5))
    assert not thread.is_alive() and {a.name for a in seen} == {"unserved"}

    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as cut_off:
        reachable, cut_off.redis = cut_off.redis, cut_off.redis.from_url(UNREACHABLE)
        reachable.close()
        (alert,) = AlertMonitor(cut_off).check()
    assert alert.name == "redis_unreachable" and "unreachable" in alert.message


# --- fairque health --------------------------------------------------------------------


def health(redis_url: str, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["health", "--redis-url", redis_url, *options])
    return result.exit_code, result.output


def test_health_is_ok_when_every_user_with_queued_tasks_is_served(
    queue: TaskQueue, redis_url: str
) -> None:
    register_worker(queue, "alice")
    queue.push(Task.create("alice"))
    code, output = health(redis_url)
    assert code == 0, output
    assert "live workers: 1" in output and "healthy" in output and "unhealthy" not in output


def test_health_fails_for_an_unserved_user(queue: TaskQueue, redis_url: str) -> None:
    register_worker(queue, "alice")
    queue.push(Task.create("bob"))
    code, output = health(redis_url)
    assert code == 1 and "unserved: bob has 1 queued task(s)" in output and "unhealthy" in output


def test_health_fails_when_a_queue_is_deeper_than_allowed(queue: TaskQueue, redis_url: str) -> None:
    register_worker(queue, "*")
    for _ in range(3):
        queue.push(Task.create("alice"))
    assert health(redis_url, "--max-queue-depth", "3")[0] == 0
    code, output = health(redis_url, "--max-queue-depth", "2")
    assert code == 1 and "queue_depth: user alice has 3 queued tasks" in output


def test_health_fails_when_too_many_tasks_fail(queue: TaskQueue, redis_url: str) -> None:
    end_tasks(queue, "alice", finished=4, failed=6)
    assert health(redis_url, "--max-failure-rate", "0.6")[0] == 0
    code, output = health(redis_url, "--max-failure-rate", "0.5", "--json")
    assert code == 1
    report = json.loads(output)
    assert report["ok"] is False and [a["name"] for a in report["alerts"]] == ["failure_rate"]
    assert report["alerts"][0]["value"] == 0.6 and report["unserved_users"] == []


def test_health_fails_when_tasks_wait_too_long(queue: TaskQueue, redis_url: str) -> None:
    register_worker(queue, "*")
    queue.push(Task.create("alice"))
    assert health(redis_url, "--max-oldest-age", "3600")[0] == 0
    time.sleep(0.05)
    code, output = health(redis_url, "--max-oldest-age", "0.01")
    assert code == 1 and "oldest_age" in output


def test_health_can_require_a_scheduler_holding_the_lock(
    redis_url: str, make_config: ConfigFactory
) -> None:
    assert health(redis_url)[0] == 0
    code, output = health(redis_url, "--require-scheduler")
    assert code == 1 and "scheduler_lock: no scheduler holds" in output
    scheduler = TaskScheduler(make_config(worker_id="sched"))
    try:
        assert scheduler.holds_lock()
        code, output = health(redis_url, "--require-scheduler")
        assert code == 0 and "scheduler lock: sched:" in output
    finally:
        scheduler.close()


def test_health_fails_with_a_clear_message_when_redis_is_unreachable() -> None:
    code, output = health(UNREACHABLE)
    assert code == 1 and "error" in output and "unreachable" in output


# --- Prometheus metrics ----------------------------------------------------------------


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples at ``/metrics``: {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=budget(5)) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_worker_metrics_are_served(
    queue: TaskQueue, make_config: ConfigFactory, start: Callable[..., Worker]
) -> None:
    orphan = queue.push(job("u", "add", 1, 1))["task_id"]
    with TaskQueue(make_config(lease_seconds=0.2)) as crashed:
        assert crashed.pop() is not None  # claimed, never ended: its lease expires
    for n in range(3):
        queue.push(job("u", "add", n, 1))
    queue.push(job("u", "boom", max_retries=0))
    queue.push(job("u", "boom", max_retries=1, retry_delay_seconds=0.05))
    for _ in range(2):
        queue.push(Task.create("idle"))  # nobody serves idle

    metrics = WorkerMetrics(queue)
    server = metrics.serve(0, "127.0.0.1")
    try:
        start(metrics, assigned_users=["u"])
        wait_until(lambda: queue.get_stats()["users"]["u"].get("finished", 0) == 4, 10)
        wait_until(lambda: queue.get_stats()["users"]["u"].get("failed", 0) == 2, 10)
        assert queue.get_task(orphan).recoveries == 1
        samples = scrape(server.port)
    finally:
        server.close()

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("fairque_tasks_total", outcome="finished") == 4
    assert value("fairque_tasks_total", outcome="failed") == 2
    assert value("fairque_tasks_total", outcome="retried") == 1
    assert value("fairque_tasks_total", outcome="lease_lost") == 0
    assert value("fairque_task_duration_seconds_count") == 7
    assert value("fairque_task_duration_seconds_bucket", le="+Inf") == 7
    assert value("fairque_lease_reclaims_total", result="requeued") == 1
    assert value("fairque_lease_reclaims_total", result="failed") == 0
    # first runs only: the retry and the recovered task do not say when they were ready
    assert value("fairque_task_wait_seconds_count", user="u") == 5
    assert value("fairque_queue_depth", user="idle", state="queued") == 2
    assert value("fairque_queue_depth", user="u", state="queued") == 0
    assert value("fairque_queue_oldest_age_seconds") > 0
    assert value("fairque_queue_stats_up") == 1
    assert value("fairque_pending_steps") == 0


def test_user_labels_are_bounded(queue: TaskQueue) -> None:
    for user in ("a", "b", "c"):
        queue.push(Task.create(user))
    metrics = WorkerMetrics(queue, max_user_labels=2)
    server = metrics.serve(0, "127.0.0.1")
    try:
        samples = scrape(server.port)
    finally:
        server.close()
    depths = {
        dict(labels)["user"]: v
        for (name, labels), v in samples.items()
        if name == "fairque_queue_depth" and dict(labels)["state"] == "queued"
    }
    assert depths == {"a": 1, "b": 1, "other": 1}
    assert metrics.users("a") == "a" and metrics.users("zed") == "other"


def test_a_raising_observer_never_stops_the_worker(
    queue: TaskQueue, start: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(WorkerObserver):
        def claimed(self, task: Task) -> None:
            raise RuntimeError("observer bug")

        def settled(self, outcome: Outcome, result: Any) -> None:
            raise RuntimeError("observer bug")

    start(Broken())
    ids = [queue.push(job("u", "add", n, 1))["task_id"] for n in range(3)]
    wait_until(lambda: all(queue.get_task(i).state is TaskState.FINISHED for i in ids), 10)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all("observer Broken failed" in m for m in errors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_fairque_worker_serves_metrics_on_its_port(
    queue: TaskQueue, redis_url: str, tmp_path: Any
) -> None:
    procs = Procs(tmp_path, redis_url)
    port = free_port()
    try:
        proc = procs.worker("metered", "--metrics-port", str(port))
        queue.push(job("u", "add", 1, 2))

        def finished() -> float:
            try:
                return scrape(port).get(("fairque_tasks_total", (("outcome", "finished"),)), 0)
            except OSError:
                return 0

        wait_until(finished, 90, proc.tail)  # the worker's start-up included
    finally:
        procs.kill_all()


def test_metrics_port_without_prometheus_client_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setattr(sys, "path", [*sys.path])  # the worker command prepends its folder
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "fairque.monitoring.metrics")
    result = CliRunner().invoke(
        app, ["worker", "--metrics-port", "0", "--redis-url", redis_url, "--worker-id", "m"]
    )
    assert result.exit_code == 1
    assert "pip install 'fairque[metrics]'" in " ".join(result.output.split())


def test_tenant_policy_gauges_are_served(queue: TaskQueue) -> None:
    queue.set_tenant_policy("capped", max_running=1, weight=2, rate="10/s", burst=3)
    for user in ("capped", "capped", "free"):
        queue.push(Task.create(user))
    assert {t.user_id for t in queue.pop_many(3)} == {"capped", "free"}
    metrics = WorkerMetrics(queue)
    server = metrics.serve(0, "127.0.0.1")
    try:
        samples = scrape(server.port)
    finally:
        server.close()

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("fairque_tenant_running", user="capped") == 1
    assert value("fairque_tenant_max_running", user="capped") == 1
    assert ("fairque_tenant_max_running", (("user", "free"),)) not in samples  # unlimited
    assert value("fairque_tenant_weight", user="capped") == 2
    assert 1.9 <= value("fairque_tenant_tokens", user="capped") <= 3
    assert value("fairque_tenant_share", user="free") == 0.5
    assert value("fairque_tenant_fair_share", user="capped") == pytest.approx(2 / 3, abs=1e-3)
    assert 0 < value("fairque_tenants_jain_index") <= 1
