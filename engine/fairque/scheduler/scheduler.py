"""TaskScheduler: cron schedules of tasks and DAGs, safe to run on many machines.

Every scheduler process does housekeeping (queues due SCHEDULED tasks, reclaims expired
leases). Task schedules (``add_schedule``) are fired by the one holding
``fq:scheduler:lock`` (a token with a TTL, renewed on every pass): active-standby. DAG
schedules are fired by every scheduler at once (active-active): each claims the DAGs
due now from a due index, so each DAG's tick is handled by one of them, and more
schedulers add capacity (:mod:`fairque.scheduler.dags`).

Ticks are fired by idempotent writes: a tick's run id comes from the schedule and the
tick's time, and a run can be created once only, so even two
schedulers that both believe they hold the lock cannot fire a tick twice. That holds
after retention (``run_retention_seconds``) removed the run: a tick's run is kept until
the schedule's cursor passed the tick, and from then on push refuses the tick. A cursor per
schedule (``fq:schedules:cursor``) records the last tick handled, so a scheduler taking
over carries on where the previous owner stopped.

Missed ticks (downtime, handover): with ``catchup`` off only the latest missed tick
fires; with it on every missed tick fires, oldest first, at most ``catchup_limit``
(default 100) per pass. A schedule seen for the first time starts from its creation
(task schedules) or from now (DAGs): nothing before that is fired. Paused schedules and
paused DAGs skip their ticks (unpausing does not fire the ones missed meanwhile).

Every time that decides what fires (a schedule's creation, "now", the cursors) is the
Redis server's clock (``TIME``), never the client's. Each schedule and DAG fires on its
own (:mod:`fairque.scheduler.failures`): a bad one is logged, reported and retried while
the others fire on time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fairque.core.backoff import Backoff
from fairque.core.config import FairQueueConfig
from fairque.core.errors import (
    FairQueueError,
    RedisCommandError,
    RunExistsError,
    ScheduleNotFoundError,
    TaskError,
)
from fairque.core.models import Task, validate_identifier
from fairque.core.process import stop_on_signals
from fairque.queue import control, firing
from fairque.queue.pushable import MakesTask, as_task
from fairque.queue.runs import compile_run, task_id_problem, tick_run_id
from fairque.queue.sync_queue import TaskQueue
from fairque.scheduler.cron import check_cron, check_timezone, fire_times, latest_fire
from fairque.scheduler.failures import Failures
from fairque.scheduler.schedules import Schedule

if TYPE_CHECKING:
    from fairque.scheduler.dags import DagSource

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

STOP_GRACE_SECONDS = 0.5
"""How long :meth:`TaskScheduler.start` lets a pass end after a stop before leaving it."""
WAKE_MARGIN = 0.002
"""Seconds past a due time that a pass waking for it starts (the server's clock and this
process's timer differ by about a millisecond: a pass a little early finds nothing due)."""


class TaskScheduler:
    """Fires cron schedules (``add_schedule``) and the schedules of DAG files."""

    def __init__(
        self,
        config: FairQueueConfig | None = None,
        *,
        dags_folder: str | Path | None = None,
        clock: Clock | None = None,
        tick_seconds: float = 0.2,
        lock_ttl_seconds: float = 3.0,
        catchup_limit: int = 100,
        lag_warning_seconds: float = 5.0,
        batch_size: int = 250,
    ) -> None:
        self.config = config or FairQueueConfig.create_default()
        self.queue = TaskQueue(self.config)
        self.keys = self.queue.keys
        self.dags: DagSource | None = None
        if dags_folder is not None:
            from fairque.scheduler.dags import DagSource  # DAG files only when asked for

            self.dags = DagSource(dags_folder)
        self.clock: Clock = clock or self._server_time
        self.tick_seconds = tick_seconds
        self.lock_ttl_seconds = lock_ttl_seconds
        self.catchup_limit = catchup_limit
        self.token = f"{self.config.worker.id}:{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: RedisCommandError | None = None
        self.failures = Failures()
        self.lag_warning_seconds = lag_warning_seconds
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.batch_size = batch_size
        """DAGs claimed per batch (the stop flag is checked between batches)."""

    # --- schedules -------------------------------------------------------------------

    def add_schedule(
        self,
        cron_expr: str,
        task: Task | MakesTask,
        timezone: str = "UTC",
        *,
        schedule_id: str | None = None,
        catchup: bool = False,
    ) -> str:
        """Store a schedule that pushes a copy of ``task`` at each tick; returns its id.

        A bad cron expression (one that never fires, such as ``0 0 31 2 *``) or an unknown
        time zone is refused (CronError) here, and so are ids that would make the tasks'
        ids too long (TaskError); an ``@task`` function is accepted as in ``queue.push``
        (see ``as_task``). The schedule starts now, on the server's clock.
        """
        check_cron(cron_expr)
        check_timezone(timezone)
        task = as_task(task)
        task.validate()
        sid = validate_identifier(schedule_id or f"sched_{uuid.uuid4().hex[:12]}", "schedule_id")
        problem = task_id_problem(sid, task.label)
        if problem:
            raise TaskError(problem)
        now = self.clock().timestamp()  # the server's clock unless a test gave its own
        schedule = Schedule(sid, cron_expr, task, timezone, catchup, created_at=now)
        self.queue.run_pipeline(control.put_schedule(self.keys, sid, schedule.to_json()))
        return sid

    def remove_schedule(self, schedule_id: str) -> None:
        """Delete a schedule; ScheduleNotFoundError if there is none."""
        if not self.queue.run_pipeline(control.remove_schedule(self.keys, schedule_id)):
            raise ScheduleNotFoundError(schedule_id)

    def get_schedule(self, schedule_id: str) -> Schedule:
        """One schedule; ScheduleNotFoundError if there is none."""
        text = self.queue.run_pipeline(control.schedule_text(self.keys, schedule_id))
        if text is None:
            raise ScheduleNotFoundError(schedule_id)
        return Schedule.from_json(text)

    def list_schedules(self) -> list[Schedule]:
        """Every stored schedule, by id; one that cannot be read is left out (logged;
        the scheduler reports it in ``fq:scheduler:errors``)."""
        found = []
        for sid, text in sorted(self.queue.run_pipeline(control.schedule_texts(self.keys)).items()):
            try:
                found.append(Schedule.from_json(text))
            except (ValueError, TypeError, KeyError, FairQueueError) as e:
                logger.warning("schedule %s cannot be read: %s", sid, e)
        return found

    def pause(self, schedule_id: str) -> None:
        """Stop a schedule from firing until :meth:`resume`."""
        self._set_paused(schedule_id, True)

    def resume(self, schedule_id: str) -> None:
        """Let a paused schedule fire again (missed ticks are not fired)."""
        self._set_paused(schedule_id, False)

    def _set_paused(self, schedule_id: str, paused: bool) -> None:
        schedule = self.get_schedule(schedule_id)
        schedule.paused = paused
        self.queue.run_pipeline(control.put_schedule(self.keys, schedule_id, schedule.to_json()))

    # --- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Run until :meth:`stop` or SIGTERM/SIGINT; blocks, then releases the lock.

        The loop runs on a thread while this one waits for a stop, so a stop is prompt
        even in the middle of a long pass (a large folder being loaded, a batch being
        fired): when the loop has not ended STOP_GRACE_SECONDS after the stop, the lock
        and the DAGs the pass had claimed are given back from here (another scheduler
        takes over at once; a run is created once whoever creates it) and this returns.
        A RedisCommandError that ended the loop is raised again.
        """
        with stop_on_signals(lambda graceful: self.stop(), log=logger):
            thread = self.start_background()
            while thread.is_alive() and not self._stop.wait(0.1):
                pass
            thread.join(STOP_GRACE_SECONDS)
            if thread.is_alive():
                self._abandon()
        if self.error is not None:
            raise self.error

    def _abandon(self) -> None:
        logger.warning(
            "scheduler %s: the pass did not end within %.1f s of the stop; giving back "
            "the lock and its claims",
            self.token,
            STOP_GRACE_SECONDS,
        )
        try:
            if self.dags is not None and self.dags.in_flight:
                claimed = dict(self.dags.in_flight)
                self.queue.run_pipeline(firing.set_due(self.keys, claimed))
            self.queue.run_script(self.queue.calls.unlock(self.keys.scheduler_lock, self.token))
        except FairQueueError as e:
            logger.warning("could not give back the lock and claims: %s", e)

    def start_background(self) -> threading.Thread:
        """Run :meth:`run` on a daemon thread and return it; a RedisCommandError that
        ends the loop is kept in :attr:`error`."""
        self._thread = threading.Thread(target=self._run_kept, name="fairque-scheduler")
        self._thread.daemon = True
        self._thread.start()
        return self._thread

    def _run_kept(self) -> None:
        try:
            self.run()
        except RedisCommandError as e:  # logged by run
            self.error = e

    def stop(self) -> None:
        """Ask the loop to end (thread-safe and signal-safe); a pass in progress ends
        after its current batch of DAGs."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a background scheduler to end; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Release the lock (if held) and the connection."""
        try:
            self.queue.run_script(self.queue.calls.unlock(self.keys.scheduler_lock, self.token))
        except FairQueueError as e:
            logger.warning("could not release the scheduler lock: %s", e)
        self.queue.close()

    def run(self) -> None:
        """The scheduler loop in the calling thread.

        A schedule or DAG that fails does not fail the pass (see
        :mod:`fairque.scheduler.failures`). The loop survives Redis outages and any other
        error of a pass: after a RedisUnavailableError (or anything else a pass raises,
        logged with its traceback) it waits with backoff
        (:class:`~fairque.core.backoff.Backoff`, from ``tick_seconds`` up to 5 s) and
        carries on. A RedisCommandError outside any one schedule (ScriptError in the
        housekeeping or the lock: a Lua error, a key of the wrong type) cannot be mended
        by a retry: it is logged at CRITICAL and raised, ending the loop (``fairque
        scheduler`` exits with code 1).
        """
        logger.info("scheduler %s started", self.token)
        backoff = Backoff(logger, f"scheduler {self.token}", initial=self.tick_seconds)
        try:
            while not self._stop.is_set():
                delay = self.tick_seconds
                try:
                    self.run_once()
                    backoff.succeeded()
                    delay = self.pause_seconds()
                except RedisCommandError as e:
                    logger.critical("scheduler %s stops: %s", self.token, e)
                    raise
                except FairQueueError as e:
                    delay = backoff.failed(e)
                except Exception as e:
                    logger.exception("scheduler %s: the pass failed", self.token)
                    delay = backoff.failed(e)
                self._stop.wait(delay)
        finally:
            self.close()
            logger.info("scheduler %s stopped", self.token)

    def pause_seconds(self) -> float:
        """Seconds to wait before the next pass: ``tick_seconds``, or less when the first
        DAG of the due index falls due sooner, so a tick is fired at its time rather than
        up to ``tick_seconds`` after it. A DAG due already (one the last pass left, e.g. a
        failing one) waits the whole ``tick_seconds``: never a busy loop."""
        if self.dags is None:
            return self.tick_seconds
        due = self.queue.run_pipeline(firing.next_due(self.keys))
        if due is None:
            return self.tick_seconds
        ahead = due - self.clock().timestamp()
        return min(self.tick_seconds, ahead + WAKE_MARGIN) if ahead > 0 else self.tick_seconds

    def holds_lock(self) -> bool:
        """Take or renew the lock; True while this scheduler owns it."""
        call = self.queue.calls.lock(self.keys.scheduler_lock, self.token, self.lock_ttl_seconds)
        return self.queue.run_script(call)

    def run_once(self) -> list[str]:
        """One pass: housekeeping, then fire what is due (task schedules as lock owner,
        the due DAGs in any case); returns the run ids created."""
        limit = self.queue.config.queue.half_step  # bounded calls
        self.queue.promote_due(limit)
        self.queue.reclaim_expired(limit)
        self.queue.trim_runs()
        leader = self.holds_lock()
        if not leader and self.dags is None:
            return []
        now = self.clock()
        self.failures.begin(now.timestamp())
        try:
            fired = self._fire_schedules(now) if leader else []
            if self.dags is not None:
                started = time.perf_counter()
                fired += self.dags.fire_due(self, now)
                self._record_pass(now, time.perf_counter() - started)
        except BaseException:
            self.failures.forget_written()
            raise
        put, drop = self.failures.end()
        if put or drop:
            self.queue.run_pipeline(control.update_schedule_errors(self.keys, put, drop))
        return fired

    def _fire_schedules(self, now: datetime) -> list[str]:
        texts = self.queue.run_pipeline(control.schedule_texts(self.keys))
        gone = [s for s in self.failures.failing if s.startswith("schedule:")]
        self.failures.forget(s for s in gone if s.removeprefix("schedule:") not in texts)
        return [
            run
            for sid, text in sorted(texts.items())
            for run in self.failures.attempt(
                f"schedule:{sid}", partial(self._fire_stored, text, now)
            )
        ]

    def _record_pass(self, now: datetime, seconds: float) -> None:
        """Record the pass's duration and its ticks' lags (when it fired any); warn
        when ticks fired later than ``lag_warning_seconds``."""
        assert self.dags is not None
        lags = self.dags.lags
        if not lags:
            return
        at = now.timestamp()
        self.queue.run_pipeline(firing.record_lag(self.keys, lags, at, self.token, seconds))
        late = [lag for _, lag in lags if lag > self.lag_warning_seconds]
        if late:
            logger.warning(
                "scheduler %s cannot keep up: %d of %d DAG run(s) created late (worst %.1f s "
                "after its tick, threshold %.1f s) in a pass of %.1f s; run more schedulers",
                self.token,
                len(late),
                len(lags),
                max(late),
                self.lag_warning_seconds,
                seconds,
            )

    # --- firing ----------------------------------------------------------------------

    def due_ticks(
        self, key: str, cron: str, zone_name: str, catchup: bool, start: float, now: datetime
    ) -> list[datetime]:
        """The ticks of one schedule to fire now, per its cursor and catchup policy."""
        cursor = self.queue.run_pipeline(control.cursor(self.keys, key))
        if cursor is None:
            self.advance(key, start)
        after = datetime.fromtimestamp(start if cursor is None else cursor, tz=timezone.utc)
        zone = check_timezone(zone_name)
        if catchup:
            return fire_times(cron, zone, after, now, limit=self.catchup_limit)
        latest = latest_fire(cron, zone, after, now)
        return [] if latest is None else [latest]

    def advance(self, key: str, tick: float) -> None:
        """Record ``tick`` as handled for ``key`` (the cursor only moves forward)."""
        self.queue.run_script(self.queue.calls.advance(key, tick))

    def _fire_stored(self, text: str, now: datetime) -> list[str]:
        return self._fire_schedule(Schedule.from_json(text), now)

    def _fire_schedule(self, schedule: Schedule, now: datetime) -> list[str]:
        ticks = self.due_ticks(
            schedule.schedule_id,
            schedule.cron_expr,
            schedule.timezone,
            schedule.catchup,
            schedule.created_at,
            now,
        )
        fired = []
        for tick in ticks:
            if not schedule.paused:
                run_id = tick_run_id(schedule.schedule_id, tick)
                if self._create(schedule, run_id, tick):
                    fired.append(run_id)
            self.advance(schedule.schedule_id, tick.timestamp())
        return fired

    def _create(self, schedule: Schedule, run_id: str, tick: datetime) -> bool:
        tasks = compile_run(schedule.task, run_id, None)
        try:
            self.queue.enqueue_tasks(
                tasks,
                run_id,
                logical_date=tick.isoformat(),
                tenant=schedule.task.user_id,
                tick=(schedule.schedule_id, tick.timestamp()),
            )
        except RunExistsError:
            return False
        logger.info(
            "fired schedule %s for %s: run %s, task %s",
            schedule.schedule_id,
            tick.isoformat(),
            run_id,
            tasks[0].task_id,
        )
        return True

    def _server_time(self) -> datetime:
        seconds = self.queue.run_pipeline(control.server_time())
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
