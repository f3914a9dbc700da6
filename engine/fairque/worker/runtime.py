"""What Worker and AsyncWorker share: the bookkeeping of running tasks and timers,
the turning of an outcome into the script call that records it, and the observer hook
(metrics). No I/O here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fairque.core.config import FairQueueConfig
from fairque.core.errors import (
    LeaseLostError,
    PayloadError,
    TaskTimeoutError,
    WorkerShutdownError,
    XComError,
    is_retryable,
)
from fairque.core.models import TaskRecord, TaskState, to_json
from fairque.queue import heartbeat
from fairque.queue.base import error_record
from fairque.queue.calls import (
    PipelineCall,
    QueueCalls,
    ScriptCall,
    Settlement,
    new_claim_id,
)
from fairque.queue.results import Settled
from fairque.tasks.context import Attempt, encode_xcom
from fairque.worker.capture import AttemptLog, LogBatch, LogShipper
from fairque.worker.tasklog import log_task_end
from fairque.worker.threads import SlotQueue

logger = logging.getLogger(__name__)


AHEAD_WAIT_SECONDS = 1.0
"""How long a task claimed ahead of a free slot may wait for one before it is handed
back to the front of its queue (its tasks turned long meanwhile)."""


@dataclass
class Running:
    """A claimed task this worker is running, and the attempt its code reports to."""

    task: TaskRecord
    started: float  # monotonic: when it was claimed, then when it began to run
    deadline: float | None  # monotonic time of its timeout (None until it runs)
    attempt: Attempt
    log: AttemptLog | None = None  # what the attempt writes (``run logs``)
    begun: bool = False  # it runs (else it was claimed ahead and waits for a slot)

    def begin(self) -> None:
        """Note that the task starts running now: its timeout counts from here (a task
        claimed ahead of a free slot waits without one)."""
        self.started = now = time.monotonic()
        self.begun = True
        timeout = self.task.timeout_seconds
        self.deadline = now + timeout if timeout else None


def _tenant_of(entry: Running) -> str:
    return entry.task.user_id


@dataclass(frozen=True)
class Outcome:
    """How one run of a task ended."""

    task: TaskRecord
    ok: bool
    duration: float
    result: Any = None
    error: BaseException | None = None

    @property
    def retryable(self) -> bool:
        """False for failures a retry cannot mend (a disallowed or missing function)."""
        return is_retryable(self.error)


class WorkerObserver:
    """Hook told what a worker does (e.g. :class:`~fairque.monitoring.metrics.WorkerMetrics`).

    Every method does nothing; a subclass overrides what it needs. Calls come from the
    worker's loop; an exception raised by one is logged and ignored.
    """

    def claimed(self, task: TaskRecord) -> None:
        """A task was claimed (its record as read at the claim)."""

    def settled(self, outcome: Outcome, result: Settled) -> None:
        """A run's outcome was recorded: ``result.state`` is the task's state after it
        (SCHEDULED for a retry), or a LeaseLostError when the outcome was discarded."""

    def reclaimed(self, requeued: int, failed: int) -> None:
        """This worker took back tasks whose lease expired (``reclaim_expired``)."""


@dataclass(frozen=True)
class Stop:
    """A request to stop, put in a worker's inbox (a second one is not graceful)."""

    graceful: bool


WAKE = object()
"""Put in a worker's inbox when a user gets ready tasks."""

InboxItem = Outcome | Stop | object


@dataclass
class WorkerCore:
    """Slots, timers and counters of one worker, for its sync or async shell."""

    config: FairQueueConfig
    running: dict[str, Running] = field(default_factory=dict)
    pending: list[Outcome] = field(default_factory=list)
    processed: int = 0
    failed: int = 0
    started_at: float = field(default_factory=time.time)
    observer: WorkerObserver = field(default_factory=WorkerObserver)
    stopping: bool = False
    stop_deadline: float | None = None
    gave_up: bool = False
    steps_left: bool = False  # bounded work is left over (see TaskQueue.continue_steps)
    _next_renewal: float = 0.0
    _next_maintenance: float = 0.0
    _next_heartbeat: float = 0.0
    _unanswered: ScriptCall[Any] | None = None
    _claim_id: str | None = None  # of the unanswered call, else of the last answered one
    _next_token: float | None = None  # when a rate-limited tenant's next token is due
    _mean_duration: float | None = None  # of the recent runs (exponential, 1/8 each)

    def __post_init__(self) -> None:
        self.worker = self.config.worker
        self.calls = QueueCalls(self.config)
        self.max_xcom_bytes = self.config.queue.max_xcom_bytes
        self.logs = LogShipper(self.calls, self.worker.max_log_bytes)
        self.slots: SlotQueue[Running] = SlotQueue(
            self.worker.max_concurrent_tasks, owner=_tenant_of
        )
        """``max_concurrent_tasks`` tasks run at once; those claimed ahead wait."""

    # --- slots -----------------------------------------------------------------------

    def free_slots(self) -> int:
        """How many more tasks may be claimed now: the free slots, plus up to
        ``prefetch_tasks`` (default: half as many as the slots) ahead of them while the
        recent tasks were short."""
        if self.stopping:
            return 0
        room = self.worker.max_concurrent_tasks
        if self.prefetching():
            room += self.worker.claim_ahead
        return max(0, room - len(self.running))

    def prefetching(self) -> bool:
        """True while tasks are claimed ahead of free slots: the worker's recent tasks ran
        shorter than ``prefetch_below_seconds`` on average (none yet: no), and none of
        those running now has run longer."""
        mean, limit = self._mean_duration, self.worker.prefetch_below_seconds
        if not self.worker.claim_ahead or mean is None or mean >= limit:
            return False
        since = time.monotonic() - limit
        return all(r.started > since for r in self.running.values() if r.begun)

    def claimed(self, task: TaskRecord) -> Running:
        """Note a claimed task as held (waiting for a slot; see :meth:`place`)."""
        log = self.logs.open(task.task_id, task.attempts)
        entry = Running(task, time.monotonic(), None, Attempt(task), log)
        self.running[task.task_id] = entry
        self._notify(self.observer.claimed, task)
        return entry

    def place(self, tasks: list[TaskRecord]) -> list[Running]:
        """Note claimed tasks as held and give each a slot; returns those that start
        now (begun: run each on a thread or job of its own); the rest wait, in turns
        by tenant, for a task of this worker to end (:meth:`next_after`)."""
        started = [entry for entry in map(self.claimed, tasks) if self.slots.offer(entry)]
        for entry in started:
            entry.begin()
        return started

    def next_after(self, entry: Running) -> Running | None:
        """By the thread or job that ran ``entry``: the waiting task to run next on it
        (begun), or None."""
        following = self.slots.next_after(entry)
        if following is not None:
            following.begin()
        return following

    def abandon(self, entries: list[Running]) -> list[Running]:
        """Tasks given up (timeout, lost lease) free their slots; returns the waiting
        tasks that take them (begun: start each)."""
        taking = [f for entry in entries if (f := self.slots.abandon(entry)) is not None]
        for entry in taking:
            entry.begin()
        return taking

    def let_go_waiting(self) -> list[Running]:
        """The tasks claimed ahead to hand back to the front of their queues, unrun: all
        of them once stopping, else those that waited for a slot longer than
        AHEAD_WAIT_SECONDS (the running tasks turned long: a worker with a free slot
        should have them). They are no longer held from here (nor renewed), so should
        the hand-back fail, their leases bring them back."""
        if self.stopping:
            entries = self.slots.take_waiting()
        else:
            due = time.monotonic() - AHEAD_WAIT_SECONDS
            entries = self.slots.take_waiting(lambda entry: entry.started < due)
        for entry in entries:
            self.running.pop(entry.task.task_id, None)
        return entries

    def finished(self, outcome: Outcome) -> bool:
        """Take a run's outcome; False if the task was already given up (timeout, lost)."""
        entry = self.running.get(outcome.task.task_id)
        if entry is None or entry.task.claim_token != outcome.task.claim_token:
            return False
        del self.running[outcome.task.task_id]
        self.pending.append(outcome)
        self._note_duration(outcome.duration)
        return True

    def _note_duration(self, duration: float) -> None:
        mean = self._mean_duration
        self._mean_duration = duration if mean is None else mean + (duration - mean) / 8

    def take(self, item: InboxItem) -> bool:
        """Apply one inbox item; True when it was the accepted outcome of a running task."""
        if isinstance(item, Outcome):
            return self.finished(item)
        if isinstance(item, Stop):
            self.begin_stop(None if item.graceful else 0.0)
        return False

    def beat_call(self) -> PipelineCall[None]:
        """The call refreshing this worker's heartbeat record."""
        return heartbeat.beat(
            self.calls.keys,
            self.worker,
            running=sorted(self.running),
            processed=self.processed,
            failed=self.failed,
            started_at=self.started_at,
        )

    def timed_out(self) -> list[Running]:
        """Give up the tasks past their timeout; each gets a failure outcome."""
        now = time.monotonic()
        late = [r for r in self.running.values() if r.deadline is not None and now > r.deadline]
        for entry in late:
            del self.running[entry.task.task_id]
            error = TaskTimeoutError(
                f"task {entry.task.task_id!r} ran longer than its timeout of "
                f"{entry.task.timeout_seconds} s"
            )
            self.pending.append(Outcome(entry.task, False, now - entry.started, error=error))
            self._note_duration(now - entry.started)
            logger.warning("%s", error)
        return late

    def lease_report(self, report: dict[str, str]) -> list[Running]:
        """Apply a lease renewal reply; returns the tasks whose lease was lost."""
        lost = [self.running.pop(i) for i, word in report.items() if word == "lost"]
        for entry in lost:
            logger.warning(
                "lost the lease of task %s (it was reclaimed, canceled or deleted); "
                "its outcome will not be recorded",
                entry.task.task_id,
            )
        for task_id, word in report.items():
            if word == "cancel" and task_id in self.running:
                self.running[task_id].attempt.cancel_requested = True
        return lost

    def log_batch(self) -> LogBatch | None:
        """The attempt logs to send now (before the ended attempts are recorded, so a
        reader who sees a task ended sees its whole log), or None."""
        return self.logs.due(self.running, force=bool(self.pending))

    # --- timers ----------------------------------------------------------------------

    def renewal_due(self) -> bool:
        """True when the running tasks' leases should be renewed (every lease / 3)."""
        return self._due("_next_renewal", self.worker.lease_seconds / 3) and bool(self.running)

    def maintenance_due(self) -> bool:
        """True when due retries should be promoted and expired leases reclaimed."""
        return self._due("_next_maintenance", self.worker.poll_interval_seconds)

    @property
    def maintenance_limit(self) -> int:
        """Tasks promoted or reclaimed per call: half a step, like a release, so no call
        stalls the server."""
        return self.config.queue.half_step

    def maintained(self, promoted: int, reclaimed: int) -> None:
        """After a maintenance pass: when a call did its whole limit, more is due at
        once, so the next turn of the loop maintains again."""
        if max(promoted, reclaimed) >= self.maintenance_limit:
            self._next_maintenance = 0.0

    def heartbeat_due(self) -> bool:
        """True when the worker's liveness record should be refreshed."""
        return self._due("_next_heartbeat", self.worker.heartbeat_seconds)

    def _due(self, attribute: str, interval: float) -> bool:
        now = time.monotonic()
        if now < getattr(self, attribute):
            return False
        setattr(self, attribute, now + interval)
        return True

    def wait_time(self) -> float:
        """How long the loop may sleep before a timer or a timeout needs it."""
        if self.steps_left:
            return 0.0
        now = time.monotonic()
        moments = [self._next_maintenance, self._next_heartbeat]
        if self.running:
            moments += [self._next_renewal, now + self.logs.wait_time()]
        moments += [r.deadline for r in self.running.values() if r.deadline is not None]
        if self.stop_deadline is not None:
            moments.append(self.stop_deadline)
        if self._next_token is not None and self.free_slots():
            moments.append(self._next_token)  # a rate-limited tenant may be served then
        return max(0.0, min(min(moments) - now, self.worker.poll_interval_seconds))

    # --- stopping --------------------------------------------------------------------

    def begin_stop(self, grace: float | None = None) -> None:
        """Stop claiming; running tasks may finish until the grace period ends."""
        if grace is None:
            grace = self.worker.shutdown_grace_seconds
        deadline = time.monotonic() + grace
        if self.stop_deadline is None or deadline < self.stop_deadline:
            self.stop_deadline = deadline
        self.stopping = True

    def grace_over(self) -> bool:
        """True when stopping and the grace period has ended."""
        return self.stop_deadline is not None and time.monotonic() >= self.stop_deadline

    def retry_wait(self, delay: float) -> float:
        """How long to wait after a failed cycle: ``delay`` (the backoff), but never past
        the end of the grace period, when the worker must hand back or give up."""
        if self.stop_deadline is None:
            return delay
        return max(0.0, min(delay, self.stop_deadline - time.monotonic()))

    def give_up(self, error: BaseException) -> WorkerShutdownError | None:
        """After a failed cycle (Redis unreachable): None to retry, or, when the worker is
        stopping and its grace period is over, the error that ends its loop. Giving up
        forgets the tasks still held (logged at ERROR): their leases bring them back."""
        if not (self.stopping and self.grace_over()):
            return None
        held = sorted({*self.running, *(o.task.task_id for o in self.pending)})
        self.running.clear()
        self.pending.clear()
        self.gave_up = True
        logger.error(
            "worker %s gives up its tasks after the grace period, Redis being unreachable "
            "(%s); still held: %s; they return to their queues when their leases expire",
            self.worker.id,
            error,
            ", ".join(held) or "none",
        )
        return WorkerShutdownError(self.worker.id, held, error)

    def done(self) -> bool:
        """True when stopping, nothing runs and every outcome is recorded."""
        return self.stopping and not self.running and not self.pending

    # --- recording -------------------------------------------------------------------

    def settlement(self, outcome: Outcome) -> Settlement:
        """What ``settle`` records for ``outcome``: a result that is not JSON (or too big
        for its XCom key) fails the task instead, without a retry."""
        task = outcome.task
        if outcome.ok:
            try:
                if task.xcom_push_key:
                    encode_xcom(task.xcom_push_key, outcome.result, self.max_xcom_bytes)
                result = outcome.result
                data = (
                    "null"
                    if result is None
                    else to_json(result, f"result of task {task.task_id!r}")
                )
                return Settlement(True, task.task_id, task.claim_token, data, outcome.duration)
            except (PayloadError, XComError) as e:
                outcome = Outcome(task, False, outcome.duration, error=e)
        assert outcome.error is not None
        error = to_json(error_record(outcome.error), "error")
        return Settlement(
            False, task.task_id, task.claim_token, error, outcome.duration, outcome.retryable
        )

    def settle_call(self, max_tasks: int) -> ScriptCall[Any]:
        """One call recording every pending outcome and claiming up to ``max_tasks``.

        While the last one went unanswered (its reply was lost, so it may have recorded
        outcomes and claimed tasks), that same call again: under its claim id the
        server answers what it did instead of doing it twice (see ``QueueCalls.settle``).
        """
        if self._unanswered is None:
            settlements = [self.settlement(o) for o in self.pending]
            answered, self._claim_id = self._claim_id, new_claim_id()
            call = self.calls.settle(self.worker, settlements, max_tasks, self._claim_id, answered)
            parse = call.parse

            def parse_noting_tokens(reply: Any) -> Any:
                due_ms = int(reply[2]) if len(reply) > 2 else -1
                self._next_token = time.monotonic() + due_ms / 1000 if due_ms >= 0 else None
                return parse(reply)

            self._unanswered = ScriptCall(call.script, call.keys, call.args, parse_noting_tokens)
        return self._unanswered

    def settled(self, results: list[Settled]) -> None:
        """Drop the outcomes Redis now has (the first ``len(results)``), and count them."""
        self._unanswered = None
        for outcome, result in zip(self.pending, results, strict=False):
            self._notify(self.observer.settled, outcome, result)
            log_task_end(outcome, result)
            if isinstance(result, LeaseLostError):
                logger.warning("outcome of task %s discarded: %s", result.task_id, result)
            elif result.state is TaskState.FINISHED:
                self.processed += 1
            elif result.state is TaskState.SCHEDULED and outcome.ok:
                pass  # a sensor's poke said "not yet"
            elif result.state is not TaskState.CANCELED or not outcome.ok:
                self.failed += 1
        del self.pending[: len(results)]

    def reclaimed(self, requeued: int, failed: int) -> None:
        """Tell the observer what ``reclaim_expired`` took back."""
        if requeued or failed:
            self._notify(self.observer.reclaimed, requeued, failed)

    def _notify(self, hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:
            logger.exception("worker observer %s failed", type(self.observer).__name__)

    def leases(self) -> list[tuple[str, int]]:
        """(task id, claim token) of every running task, for lease renewal."""
        return [(r.task.task_id, r.task.claim_token) for r in self.running.values()]
