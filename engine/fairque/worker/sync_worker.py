"""Worker: processes the fair queue with threads, leases, timeouts and graceful stop.

One loop thread owns every Redis call of the worker (claim, record, renew, maintain);
task functions run on daemon threads and send their outcome back through an inbox.
Between cycles the loop waits on two sockets itself: its Pub/Sub connection, which
says when a user gets ready tasks, and a wake-up socket that task threads and
:meth:`Worker.stop` write a byte to (only while the loop sleeps) after putting their
item in the inbox; the loop also polls every ``poll_interval_seconds`` in case a
notification is lost.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from queue import Empty, SimpleQueue
from types import TracebackType

from fairque.core.backoff import Backoff
from fairque.core.config import FairQueueConfig
from fairque.core.errors import (
    FairQueueError,
    LeaseLostError,
    QueueError,
    RedisCommandError,
    RedisUnavailableError,
    WorkerShutdownError,
)
from fairque.core.process import stop_on_signals
from fairque.queue import heartbeat
from fairque.queue.sync_queue import ReadyListener, TaskQueue
from fairque.tasks.xcom import RedisXCom
from fairque.worker import capture
from fairque.worker.callbacks import call_run_callbacks
from fairque.worker.execute import run_task
from fairque.worker.handler import TaskHandler
from fairque.worker.runtime import WAKE, InboxItem, Outcome, Running, Stop, WorkerCore
from fairque.worker.threads import DaemonPool, in_background

logger = logging.getLogger(__name__)


class Worker:
    """Runs tasks from the fair queue until stopped.

    ``start()`` blocks until :meth:`stop` is called or SIGTERM/SIGINT arrives (signal
    handlers are installed when it runs in the main thread); ``start_background()``
    runs the same loop on a thread and returns at once. On a graceful stop the worker
    claims nothing more, lets running tasks finish for ``shutdown_grace_seconds`` and
    hands the rest back to the front of their queues; a second signal stops at once.
    """

    def __init__(
        self,
        config: FairQueueConfig | None = None,
        handler: TaskHandler | None = None,
        *,
        queue: TaskQueue | None = None,
    ) -> None:
        self.config = config or FairQueueConfig.create_default()
        self.handler = handler or TaskHandler()
        self.queue = queue or TaskQueue(self.config)
        self.handler.bind(self.config.worker.allowed_modules, RedisXCom(self.queue))
        self.core = WorkerCore(self.config)
        self.worker_id = self.config.worker.id
        self._inbox: SimpleQueue[InboxItem] = SimpleQueue()
        self._pool = DaemonPool(f"fairque-{self.worker_id}")
        self._thread: threading.Thread | None = None
        self._sleeping = False  # the loop waits on its sockets: wake it with a byte
        self._wake_out: socket.socket | None = None  # written by other threads
        self._wake_in: socket.socket | None = None  # read by the loop
        self._listener: ReadyListener | None = None
        self._subscribe_after = 0.0  # monotonic; resubscribing waits after a failure
        self.error: RedisCommandError | WorkerShutdownError | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.join()
        self.queue.close()

    # --- control ---------------------------------------------------------------------

    def start(self) -> None:
        """Process tasks until stopped; blocks. Returns after a clean shutdown."""
        with stop_on_signals(self.stop, log=logger):
            self.run()

    def start_background(self) -> threading.Thread:
        """Run :meth:`run` on a daemon thread and return the thread; a RedisCommandError
        or WorkerShutdownError that ends the loop is kept in :attr:`error`."""
        self._thread = threading.Thread(target=self._run_kept, name=f"fairque-{self.worker_id}")
        self._thread.daemon = True
        self._thread.start()
        return self._thread

    def _run_kept(self) -> None:
        try:
            self.run()
        except (RedisCommandError, WorkerShutdownError) as e:  # logged by run
            self.error = e

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to stop (thread-safe and signal-safe)."""
        self._put(Stop(graceful))

    def _put(self, item: InboxItem) -> None:
        """Give the loop an item, and wake it if it sleeps (from any thread)."""
        self._inbox.put(item)
        out = self._wake_out
        if self._sleeping and out is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
                out.send(b"\0")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a background worker to end; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # --- the loop --------------------------------------------------------------------

    def run(self) -> None:
        """The worker loop, in the calling thread.

        It survives Redis outages: after a transient error (RedisUnavailableError) it
        waits with backoff (:class:`~fairque.core.backoff.Backoff`) and carries on. A
        RedisCommandError (ScriptError: a Lua error, a key of the wrong type) cannot be
        mended by a retry: it is logged at CRITICAL and raised, ending the loop; the
        tasks still running are not recorded, and go back to their queues when their
        leases expire. A stopping worker retries only until its grace period ends, then
        gives up (WorkerShutdownError, see the class docstring).
        """
        logger.info("worker %s started (%s)", self.worker_id, self.config.worker.assigned_users)
        self._wake_in, self._wake_out = socket.socketpair()
        for end in (self._wake_in, self._wake_out):
            end.setblocking(False)
        backoff = Backoff(logger, f"worker {self.worker_id}")
        capture.install()
        try:
            while not self.core.done():
                try:
                    self._cycle()
                    backoff.succeeded()
                except RedisCommandError as e:
                    logger.critical("worker %s stops: %s", self.worker_id, e)
                    raise
                except (RedisUnavailableError, QueueError) as e:
                    ended = self.core.give_up(e)
                    if ended is not None:
                        raise ended from e
                    self._wait(self.core.retry_wait(backoff.failed(e)))
        finally:
            self.core.slots.take_waiting()  # never run once the loop is over: leases return them
            self._unsubscribe()
            if not self.core.gave_up:
                self._retire()
            capture.uninstall()
            self._close_wake_sockets()
            logger.info("worker %s stopped", self.worker_id)

    def _cycle(self) -> None:
        self._hand_back_waiting()
        if self.core.stopping and self.core.grace_over():
            self._hand_back()
        self._maintain()
        self._ship_logs()
        self._settle(self.core.free_slots())
        if not self.core.done():
            self._wait(self.core.wait_time())

    def _ship_logs(self) -> None:
        """Send what the attempts wrote: every second, and before their end is recorded."""
        batch = self.core.log_batch()
        if batch is not None:
            self.queue.run_pipeline(batch.call)
            batch.done()

    def _settle(self, free: int) -> None:
        """Record what ended and claim up to ``free`` tasks: one round trip."""
        if not (free or self.core.pending):
            return
        results, tasks = self.queue.run_script(self.core.settle_call(free))
        self.core.settled(results)
        for entry in self.core.place(tasks):
            self._pool.run(self._execute, entry)

    def _execute(self, entry: Running | None) -> None:
        """On a task thread: run ``entry``, then each task claimed ahead that waits for a
        slot (a timeout of one of those wakes the loop, which times it)."""
        while entry is not None:
            try:
                outcome = run_task(self.handler, entry.attempt, entry.log)
            except BaseException as e:  # SystemExit or KeyboardInterrupt inside a task
                outcome = Outcome(entry.task, False, 0.0, error=e)
            self._put(outcome)
            entry = self.core.next_after(entry)
            if entry is not None and entry.deadline is not None:
                self._put(WAKE)

    def _abandon(self, entries: list[Running]) -> None:
        """The loop gave these up (timeout, lost lease): their threads free their slots."""
        for entry in self.core.abandon(entries):
            self._pool.run(self._execute, entry)

    def _hand_back_waiting(self) -> None:
        """Hand the tasks claimed ahead that are due back to their queues, unrun."""
        for entry in self.core.let_go_waiting():
            with contextlib.suppress(LeaseLostError):
                self.queue.requeue(entry.task)

    def _wait(self, timeout: float) -> None:
        """Take what the inbox holds; when empty, sleep on the loop's sockets first (up to
        ``timeout``) until a ready notice or a wake-up byte arrives."""
        self._sleeping = True
        try:
            if self._inbox.empty():  # after _sleeping is set: a later put sends a byte
                self._sleep(timeout)
        finally:
            self._sleeping = False
        self._drain_wake()
        while True:
            try:
                item = self._inbox.get_nowait()
            except Empty:
                return
            self.core.take(item)

    def _sleep(self, timeout: float) -> None:
        wake = self._wake_in
        listener = self._subscribed()
        if listener is None:
            if wake is not None:
                select.select([wake], [], [], timeout)
            return
        try:
            listener.wait(timeout, also=wake)
        except (FairQueueError, OSError, ValueError) as e:
            logger.debug("wake-up listener: %s; resubscribing", e)
            self._unsubscribe()
            self._subscribe_after = time.monotonic() + 1.0

    def _subscribed(self) -> ReadyListener | None:
        """The loop's subscription to ready notices, made (again) when needed."""
        if self._listener is None and time.monotonic() >= self._subscribe_after:
            try:
                self._listener = self.queue.subscribe_ready()
            except FairQueueError as e:
                logger.debug("wake-up listener: %s; polling meanwhile", e)
                self._subscribe_after = time.monotonic() + 1.0
        return self._listener

    def _unsubscribe(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(FairQueueError, OSError, ValueError):
                self._listener.close()
            self._listener = None

    def _drain_wake(self) -> None:
        wake = self._wake_in
        with contextlib.suppress(OSError):  # BlockingIOError: nothing (more) to read
            while wake is not None and wake.recv(4096):
                pass

    def _close_wake_sockets(self) -> None:
        out, wake = self._wake_out, self._wake_in
        self._wake_out = self._wake_in = None
        for end in (out, wake):
            if end is not None:
                end.close()

    def _maintain(self) -> None:
        core = self.core
        if core.renewal_due():
            call = core.calls.extend(core.leases(), self.config.worker.lease_seconds)
            self._abandon(core.lease_report(self.queue.run_script(call)))
        self._abandon(core.timed_out())
        if core.maintenance_due():
            promoted = self.queue.promote_due(core.maintenance_limit)
            requeued, failed = self.queue.reclaim_expired(core.maintenance_limit)
            core.reclaimed(requeued, failed)
            core.maintained(promoted, requeued + failed)
            self.queue.trim_runs()
            ended = self.queue.watch_runs()
            if ended:
                in_background(call_run_callbacks, ended, self.config.worker.allowed_modules)
            core.steps_left = True
        if core.steps_left:  # one bounded step per turn of the loop, until none is left
            core.steps_left = self.queue.continue_steps()
        if core.heartbeat_due():
            self.queue.run_pipeline(self.core.beat_call())

    def _hand_back(self) -> None:
        for entry in list(self.core.running.values()):
            try:
                self.queue.requeue(entry.task)
                logger.warning("handed task %s back to its queue", entry.task.task_id)
            except LeaseLostError:
                pass
            del self.core.running[entry.task.task_id]

    def _retire(self) -> None:
        try:
            self._ship_logs()
            self._settle(0)
            self.queue.run_pipeline(heartbeat.retire(self.queue.keys, self.worker_id))
        except (RedisUnavailableError, QueueError) as e:
            logger.warning("worker %s could not sign off: %s", self.worker_id, e)
