"""Fault tests with real ``fairque worker`` processes: kill -9, SIGSTOP, poison tasks,
SIGTERM, a Redis restart, the ``--processes`` supervisor and ``fairque health``.

Every wait polls a condition with a deadline; process logs (tmp_path/<name>.log) are
shown in assertion messages, and every process started is killed at teardown. A time
budget starts once the processes it concerns are up (their heartbeat is seen), so the
start-up of an interpreter (2-4 s on a busy machine) is never inside one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from fairque import FairQueueConfig, TaskQueue
from fairque.core.models import Task, TaskState
from fairque.monitoring.health import live_workers
from fairque.server import find_server_binary
from fairque.server.process import free_port, local_client, pid_alive
from tests.integration.procs import (
    Proc,
    Procs,
    boot_clock,
    group_members,
    read_runs,
    run_cli,
    started_on_boot_clock,
)
from tests.timing import budget, wait_until

pytestmark = pytest.mark.slow

JOBS = "tests.integration.jobs"
MODES = pytest.mark.parametrize("mode", [[], ["--async"]], ids=["sync", "async"])
# Deadlines (scaled), never time budgets: a fairque process can take 15 s and more to start
# on two cores shared with other loads, and a task waited for may need a start-up first.
STARTUP = 90.0
TASK_WAIT = 90.0


@pytest.fixture
def queue(redis_url: str, redis_client: redis.Redis) -> Iterator[TaskQueue]:
    """The test's own connection, to push tasks and read their records."""
    with TaskQueue(FairQueueConfig.create_default(redis=redis_url)) as connection:
        yield connection


def push(queue: TaskQueue, function: str, *args: Any, user: str = "u", **options: Any) -> str:
    """Push a task running ``tests.integration.jobs:<function>(*args)``; returns its id."""
    task = Task.create(user, func=f"{JOBS}:{function}", args=list(args), **options)
    queue.push(task)
    return task.task_id


def wait_state(
    queue: TaskQueue, task_id: str, state: TaskState, procs: Procs, timeout: float = TASK_WAIT
) -> Task:
    """Wait until the task is in ``state`` and return its record."""

    def reached() -> Task | None:
        task = queue.get_task(task_id)
        return task if task.state is state else None

    return wait_until(
        reached,
        timeout,
        lambda: f"task {task_id} to be {state} (it is {queue.get_task(task_id)}){procs.tails()}",
    )


def wait_started(
    log: Path, count: int, procs: Procs, timeout: float = STARTUP
) -> list[tuple[str, int]]:
    """Wait until the run log has ``count`` lines and return them."""

    def runs() -> list[tuple[str, int]] | None:
        found = read_runs(log)
        return found if len(found) >= count else None

    return wait_until(
        runs, timeout, lambda: f"{count} run(s) in {log} (have {read_runs(log)}){procs.tails()}"
    )


def wait_acknowledged(queue: TaskQueue, task_id: str, procs: Procs) -> None:
    """Wait until the task's holder renewed its lease once: from then on a lost run
    counts as an attempt (an expiry before it costs a recovery only)."""

    def acked() -> bool:
        return bool(queue.redis.hget(queue.keys.task(task_id), "acked") == "1")

    wait_until(acked, TASK_WAIT, lambda: f"task {task_id}'s lease to be renewed{procs.tails()}")


def wait_logged(proc: Proc, text: str, timeout: float = 5.0) -> None:
    """Wait until ``text`` appears in the process's output."""
    wait_until(lambda: text in proc.output(), timeout, lambda: f"{text!r} in{proc.tail()}")


def live_pids(queue: TaskQueue) -> dict[str, int]:
    """Worker id -> pid of the workers with a heartbeat record and a live process."""
    return {w.id: w.pid for w in live_workers(queue) if pid_alive(w.pid)}


def wait_up(queue: TaskQueue, procs: Procs, *worker_ids: str) -> dict[str, int]:
    """Wait until exactly these workers are live (their loop has beaten once); their pids.

    A worker's first loop pass reclaims expired leases, beats and claims tasks, so from
    here on its start-up is over and a time budget may start.
    """

    def up() -> dict[str, int] | None:
        pids = live_pids(queue)
        return pids if sorted(pids) == sorted(worker_ids) else None

    return wait_until(
        up, STARTUP, lambda: f"live workers {worker_ids} (have {live_pids(queue)}){procs.tails()}"
    )


def ping(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


# --- 1 & 7: kill -9 in the middle of a task --------------------------------------------


@MODES
def test_a_task_whose_worker_is_killed_is_finished_by_another_worker(
    procs: Procs, queue: TaskQueue, tmp_path: Path, mode: list[str]
) -> None:
    lease = 1.0
    log = tmp_path / "runs.log"
    a = procs.worker("kill-a", "--lease-seconds", str(lease), *mode)
    task_id = push(queue, "mark", str(log), "t1", 2.0, max_retries=3)
    assert wait_started(log, 1, procs) == [("t1", a.pid)]
    wait_acknowledged(queue, task_id, procs)

    a.send(signal.SIGKILL)
    killed_at = time.time()
    assert a.wait_exit(5) == -signal.SIGKILL
    b = procs.worker("kill-b", "--lease-seconds", str(lease), *mode)
    wait_up(queue, procs, "kill-b")
    b_up_at = time.time()

    done = wait_state(queue, task_id, TaskState.FINISHED, procs)
    assert read_runs(log) == [("t1", a.pid), ("t1", b.pid)], procs.tails()
    assert (done.attempts, done.recoveries) == (2, 1)
    assert (done.worker_id, done.claim_token, done.result) == ("kill-b", 2, "t1")
    history = [(a["worker"], a["attempt"], a["outcome"]) for a in done.attempt_history]
    assert history == [("kill-a", 1, "lease_expired"), ("kill-b", 2, "finished")]
    assert done.error is None
    assert done.started_at is not None and done.finished_at is not None
    # B took the task over as soon as both the lease had run out and B was up ...
    takeover = done.started_at - max(killed_at + lease, b_up_at)
    assert takeover < budget(1.0), f"took over {takeover:.1f} s late{procs.tails()}"
    # ... and finished it one run of the task (2 s) later.
    assert done.finished_at - done.started_at < 2.0 + budget(1.0), procs.tails()


# --- 2: a worker paused past its lease cannot overwrite the new run ---------------------


@MODES
def test_a_paused_worker_cannot_record_a_task_another_worker_took_over(
    procs: Procs, queue: TaskQueue, tmp_path: Path, mode: list[str]
) -> None:
    log = tmp_path / "runs.log"
    a = procs.worker("pause-a", "--lease-seconds", "1", *mode)
    task_id = push(queue, "mark", str(log), "t1", 2.5, max_retries=3)
    assert wait_started(log, 1, procs) == [("t1", a.pid)]
    wait_acknowledged(queue, task_id, procs)
    a.send(signal.SIGSTOP)

    b = procs.worker("pause-b", "--lease-seconds", "1", *mode)
    done = wait_state(queue, task_id, TaskState.FINISHED, procs)
    assert read_runs(log) == [("t1", a.pid), ("t1", b.pid)], procs.tails()
    assert (done.worker_id, done.claim_token, done.attempts, done.recoveries) == (
        "pause-b",
        2,
        2,
        1,
    )

    a.send(signal.SIGCONT)
    resumed = time.monotonic()
    refusals = (f"outcome of task {task_id} discarded", f"lost the lease of task {task_id}")

    def a_gave_up() -> bool:
        return any(text in a.output() for text in refusals)

    wait_until(
        lambda: a_gave_up() or time.monotonic() - resumed >= budget(3.0),
        6.0,
        lambda: f"worker A to react after SIGCONT{a.tail()}",
    )
    final = queue.get_task(task_id)
    assert (final.state, final.worker_id, final.claim_token) == (TaskState.FINISHED, "pause-b", 2)
    assert (final.finished_at, final.attempts, final.recoveries) == (done.finished_at, 2, 1)
    assert a_gave_up(), f"A never noticed it lost the task{a.tail()}"
    assert a.alive(), a.tail()


# --- 3: a poison task that kills its worker every time ---------------------------------


def test_a_poison_task_fails_when_its_recoveries_are_spent_and_the_pool_lives_on(
    procs: Procs, queue: TaskQueue
) -> None:
    supervisor = procs.worker(
        "poison", "--processes", "2", "--max-recoveries", "1", "--lease-seconds", "0.5"
    )
    wait_up(queue, procs, "poison-1", "poison-2")
    task_id = push(queue, "die_hard", max_retries=5)

    failed = wait_state(queue, task_id, TaskState.FAILED, procs)
    assert failed.error is not None and failed.error["type"] == "LeaseExpired", failed.error
    # each run kills its worker, so each is a recovery and max_recoveries ends it; a run
    # counts as an attempt only if a lease renewal got in before the kill (timing)
    assert failed.recoveries == 2 and failed.attempts <= 2, (failed.attempts, failed.recoveries)

    after = push(queue, "add", 1, 2)
    assert wait_state(queue, after, TaskState.FINISHED, procs).result == 3

    def children() -> list[int] | None:
        pids = [w.pid for w in live_workers(queue) if pid_alive(w.pid)]
        running = set(group_members(supervisor.pid)) - {supervisor.pid}
        return pids if len(pids) == 2 and set(pids) == running else None

    restarted = wait_until(
        children, STARTUP, lambda: f"both children to be back{supervisor.tail()}"
    )
    assert supervisor.output().count("exited with 13") == 2, supervisor.tail()
    supervisor.send(signal.SIGTERM)
    assert supervisor.wait_exit(10) == 0, supervisor.tail()
    assert not [pid for pid in restarted if pid_alive(pid)], supervisor.tail()
    assert group_members(supervisor.pid) == []


# --- 4: SIGTERM during a task ----------------------------------------------------------


@MODES
def test_sigterm_lets_the_running_task_finish_then_exits_0(
    procs: Procs, queue: TaskQueue, tmp_path: Path, mode: list[str]
) -> None:
    log = tmp_path / "runs.log"
    worker = procs.worker("term", *mode)
    task_id = push(queue, "mark", str(log), "t1", 1.0)
    wait_started(log, 1, procs)

    worker.send(signal.SIGTERM)
    assert worker.wait_exit(10) == 0, worker.tail()
    task = queue.get_task(task_id)
    assert (task.state, task.attempts, task.worker_id) == (TaskState.FINISHED, 1, "term")
    assert live_workers(queue) == [], "the worker did not sign off"


def send_in_turn(worker: Proc, signals: list[signal.Signals]) -> None:
    """Send the signals in turn, each once the worker has logged the one before."""
    previous: signal.Signals | None = None
    for sig in signals:
        if previous is not None:
            wait_logged(worker, f"received {previous.name}")
        worker.send(sig)
        previous = sig


@MODES
@pytest.mark.parametrize(
    ("grace", "signals"),
    [("0.3", [signal.SIGTERM]), ("30", [signal.SIGTERM, signal.SIGINT])],
    ids=["grace-over", "second-signal"],
)
def test_a_stopped_worker_hands_its_task_back_for_another_worker(
    procs: Procs,
    queue: TaskQueue,
    tmp_path: Path,
    mode: list[str],
    grace: str,
    signals: list[signal.Signals],
) -> None:
    log = tmp_path / "runs.log"
    lease = ("--lease-seconds", "30")
    worker = procs.worker("stop-a", *lease, "--shutdown-grace", grace, *mode)
    task_id = push(queue, "mark", str(log), "t1", 10.0, max_retries=3)
    wait_started(log, 1, procs)

    send_in_turn(worker, signals)
    signalled = time.monotonic()
    assert worker.wait_exit(5) == 0, worker.tail()
    assert time.monotonic() - signalled < budget(2.0), worker.tail()
    task = queue.get_task(task_id)
    assert (task.state, task.attempts, task.recoveries) == (TaskState.QUEUED, 0, 0)
    assert f"handed task {task_id} back" in worker.output(), worker.tail()

    # No lease (30 s) to wait for: a new worker takes the task as soon as it is up.
    other = procs.worker("stop-b", *lease, *mode)
    wait_up(queue, procs, "stop-b")
    runs = wait_started(log, 2, procs, timeout=2.0)
    assert runs == [("t1", worker.pid), ("t1", other.pid)]
    task = queue.get_task(task_id)
    assert (task.state, task.attempts, task.worker_id) == (TaskState.STARTED, 1, "stop-b")


# --- 5: Redis restarted under a running worker -----------------------------------------


@MODES
def test_a_worker_survives_a_redis_restart(procs: Procs, tmp_path: Path, mode: list[str]) -> None:
    data = tmp_path / "redis-data"
    data.mkdir()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server_argv = [
        *(find_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
        *("--dir", str(data), "--save", "", "--appendonly", "no"),
    ]
    first = procs.start("redis-first", server_argv)
    wait_until(lambda: ping(url), 10.0, lambda: f"the server to answer{first.tail()}")
    config = FairQueueConfig.create_default(redis=url)
    log = tmp_path / "runs.log"
    worker = procs.worker("restart", "--lease-seconds", "5", *mode, redis_url=url)
    with TaskQueue(config) as queue:
        task_id = push(queue, "mark", str(log), "t1", 2.0)
        wait_started(log, 1, procs)
        assert queue.get_task(task_id).state is TaskState.STARTED

    # SHUTDOWN drops the connection; a client that retried would hold the outage open.
    with local_client(port, 5.0) as admin, contextlib.suppress(redis.ConnectionError):
        admin.shutdown(save=True)
    assert first.wait_exit(10) == 0, first.tail()
    time.sleep(0.5)  # the outage itself, not a wait for a condition
    second = procs.start("redis-second", server_argv)
    wait_until(lambda: ping(url), 10.0, lambda: f"the server to answer again{second.tail()}")

    with TaskQueue(config) as queue:
        done = wait_state(queue, task_id, TaskState.FINISHED, procs)
        assert (done.result, done.attempts, done.worker_id) == ("t1", 1, "restart")
        later = push(queue, "add", 2, 3)
        assert wait_state(queue, later, TaskState.FINISHED, procs).result == 5
    assert read_runs(log) == [("t1", worker.pid)], "the task ran again"
    assert worker.alive(), worker.tail()
    assert "unreachable" in worker.output(), f"the worker never saw the outage{worker.tail()}"


# --- 6: the --processes supervisor restarts a killed child -----------------------------


def listed_workers(redis_url: str) -> dict[str, int]:
    """``fairque worker list --json``: worker id -> pid."""
    done = run_cli("worker", "list", "--json", "--redis-url", redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    return {w["id"]: w["pid"] for w in json.loads(done.stdout)}


def test_the_supervisor_restarts_a_killed_child(
    procs: Procs, queue: TaskQueue, redis_url: str
) -> None:
    supervisor = procs.worker("pool", "--processes", "3")
    ids = ["pool-1", "pool-2", "pool-3"]
    first = wait_up(queue, procs, *ids)
    assert listed_workers(redis_url) == first
    assert set(first.values()) <= set(group_members(supervisor.pid))

    victim = first["pool-2"]
    os.kill(victim, signal.SIGKILL)
    killed = boot_clock()

    def restarted() -> dict[str, int] | None:
        pids = live_pids(queue)
        return pids if sorted(pids) == ids and pids["pool-2"] != victim else None

    again = wait_until(
        restarted,
        STARTUP,
        lambda: f"pool-2 to come back (have {live_pids(queue)}){supervisor.tail()}",
    )
    # The backoff: from the death to the start of the new process (not its start-up).
    backoff = started_on_boot_clock(again["pool-2"]) - killed
    assert 0.5 - 0.05 <= backoff < 0.5 + budget(1.0), f"{backoff:.2f} s{supervisor.tail()}"
    assert listed_workers(redis_url) == again
    assert {again["pool-1"], again["pool-3"]} == {first["pool-1"], first["pool-3"]}
    assert not pid_alive(victim)

    supervisor.send(signal.SIGTERM)
    assert supervisor.wait_exit(10) == 0, supervisor.tail()
    assert group_members(supervisor.pid) == []


@pytest.mark.timeout(300)  # four rounds of two children starting and crashing
def test_the_supervisor_stops_at_once_during_a_restart_backoff(procs: Procs) -> None:
    # Children that cannot start (the handler is not a TaskHandler) crash in a loop.
    supervisor = procs.worker("crashing", "--processes", "2", "--handler", f"{JOBS}:noop")

    def both_in_a_4s_backoff() -> bool:
        # Each child's fourth crash starts a 4 s backoff; then no child is running.
        backoffs = supervisor.output().count("restarting in 4.0 s")
        return backoffs == 2 and group_members(supervisor.pid) == [supervisor.pid]

    wait_until(both_in_a_4s_backoff, 2 * STARTUP, lambda: f"4 s backoffs{supervisor.tail()}")
    supervisor.send(signal.SIGTERM)
    signalled = time.monotonic()
    assert supervisor.wait_exit(15) == 0, supervisor.tail()
    elapsed = time.monotonic() - signalled  # its own exit included (slow under load)
    assert elapsed < budget(2.0), f"exited {elapsed:.1f} s after SIGTERM{supervisor.tail()}"


# --- 8: fairque health -----------------------------------------------------------------


def test_health_reports_users_no_live_worker_serves(
    procs: Procs, queue: TaskQueue, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    procs.worker("alice-only", "--users", "alice", "--concurrency", "1")
    # Busy past the end of the test (three CLI processes, each slow to start under load).
    push(queue, "mark", str(log), "busy", 600.0, user="alice")
    wait_started(log, 1, procs)
    push(queue, "noop", user="alice")  # waits behind the busy one, served by the worker

    healthy = run_cli("health", "--redis-url", redis_url)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "healthy" in healthy.stdout and "unhealthy" not in healthy.stdout

    push(queue, "noop", user="bob")
    unhealthy = run_cli("health", "--redis-url", redis_url)
    assert unhealthy.returncode == 1, unhealthy.stdout + unhealthy.stderr
    assert "bob" in unhealthy.stdout and "unhealthy" in unhealthy.stdout
    report = run_cli("health", "--json", "--redis-url", redis_url)
    assert report.returncode == 1, report.stdout + report.stderr
    as_json = json.loads(report.stdout)
    assert as_json["unserved_users"] == ["bob"]
    assert as_json["queued_by_user"] == {"alice": 1, "bob": 1}
    assert [w["id"] for w in as_json["workers"]] == ["alice-only"]


def test_health_fails_when_redis_is_unreachable() -> None:
    done = run_cli("health", "--redis-url", "redis://127.0.0.1:1/0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error" in done.stderr and "unreachable" in done.stderr, done.stderr
