"""AsyncWorker: the asyncio twin of Worker.

``async def`` task functions run concurrently on the event loop (up to
``max_concurrent_tasks``), other functions in threads. Timeouts cancel the coroutine.
XCom goes through the worker's asyncio connection (``await axcom_pull(key)``); the
worker opens no blocking client.
The bookkeeping and every rule come from :class:`~fairque.worker.runtime.WorkerCore`;
only the I/O differs from :class:`~fairque.worker.sync_worker.Worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from fairque.core.backoff import Backoff
from fairque.core.config import FairQueueConfig
from fairque.core.errors import (
    FairQueueError,
    LeaseLostError,
    QueueError,
    RedisCommandError,
    RedisUnavailableError,
)
from fairque.core.process import stop_on_signals
from fairque.queue import heartbeat
from fairque.queue.async_queue import AsyncTaskQueue
from fairque.tasks.xcom import AsyncRedisXCom
from fairque.worker import capture
from fairque.worker.callbacks import call_run_callbacks
from fairque.worker.execute import run_task_async
from fairque.worker.handler import TaskHandler
from fairque.worker.runtime import WAKE, InboxItem, Outcome, Running, Stop, WorkerCore
from fairque.worker.threads import in_background

logger = logging.getLogger(__name__)


class AsyncWorker:
    """Runs tasks from the fair queue on an event loop until stopped.

    ``await worker.start()`` runs until :meth:`stop` or SIGTERM/SIGINT (handlers are
    installed in the main thread); ``worker.start_background()`` returns an
    ``asyncio.Task``. Stopping follows the same rules as Worker.
    """

    def __init__(
        self,
        config: FairQueueConfig | None = None,
        handler: TaskHandler | None = None,
        *,
        queue: AsyncTaskQueue | None = None,
    ) -> None:
        self.config = config or FairQueueConfig.create_default()
        self.handler = handler or TaskHandler()
        self.queue = queue or AsyncTaskQueue(self.config)
        self.core = WorkerCore(self.config)
        self.worker_id = self.config.worker.id
        self._inbox: asyncio.Queue[InboxItem] | None = None
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._early_stop: Stop | None = None
        self._listening = False

    async def __aenter__(self) -> AsyncWorker:
        await self.queue.ping()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.queue.close()

    # --- control ---------------------------------------------------------------------

    async def start(self) -> None:
        """Process tasks until stopped; returns after a clean shutdown."""
        with stop_on_signals(self.stop, asyncio.get_running_loop(), logger):
            await self.run()

    def start_background(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task of the running loop."""
        return asyncio.get_running_loop().create_task(self.run())

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to stop (safe from any thread)."""
        item = Stop(graceful)
        if self._loop is None or self._inbox is None:
            self._early_stop = item
            return
        if not self._loop.is_closed():  # a closed loop means the worker has ended
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, item)

    # --- the loop --------------------------------------------------------------------

    async def run(self) -> None:
        """The worker loop, on the running event loop; errors are handled as in
        :meth:`Worker.run <fairque.worker.sync_worker.Worker.run>` (a RedisCommandError
        also cancels the running task functions, as does giving up after the grace
        period: WorkerShutdownError)."""
        self._loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        xcom = AsyncRedisXCom(self.queue, self._loop)
        self.handler.bind(self.config.worker.allowed_modules, xcom)
        if self._early_stop is not None:
            self._inbox.put_nowait(self._early_stop)
        logger.info("async worker %s started", self.worker_id)
        self._listening = True
        listener = asyncio.create_task(self._listen())
        backoff = Backoff(logger, f"worker {self.worker_id}")
        capture.install()
        try:
            while not self.core.done():
                try:
                    await self._cycle()
                    backoff.succeeded()
                except RedisCommandError as e:
                    logger.critical("worker %s stops: %s", self.worker_id, e)
                    for task_id in list(self._jobs):
                        self._cancel_job(task_id)
                    raise
                except (RedisUnavailableError, QueueError) as e:
                    ended = self.core.give_up(e)
                    if ended is not None:
                        for task_id in list(self._jobs):
                            self._cancel_job(task_id)
                        raise ended from e
                    await self._wait(self.core.retry_wait(backoff.failed(e)))
        finally:
            self.core.slots.take_waiting()  # never run once the loop is over: leases return them
            self._listening = False  # redis-py may swallow the cancellation of a read
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if not self.core.gave_up:
                await self._retire()
            capture.uninstall()
            logger.info("async worker %s stopped", self.worker_id)

    async def _cycle(self) -> None:
        await self._hand_back_waiting()
        if self.core.stopping and self.core.grace_over():
            await self._hand_back()
        await self._maintain()
        await self._ship_logs()
        await self._settle(self.core.free_slots())
        if not self.core.done():
            await self._wait(self.core.wait_time())

    async def _ship_logs(self) -> None:
        """Send what the attempts wrote: every second, and before their end is recorded."""
        batch = self.core.log_batch()
        if batch is not None:
            await self.queue.run_pipeline(batch.call)
            batch.done()

    async def _settle(self, free: int) -> None:
        """Record what ended and claim up to ``free`` tasks: one round trip."""
        if not (free or self.core.pending):
            return
        results, tasks = await self.queue.run_script(self.core.settle_call(free))
        self.core.settled(results)
        for entry in self.core.place(tasks):
            self._start_job(entry)

    def _start_job(self, entry: Running) -> None:
        self._jobs[entry.task.task_id] = asyncio.create_task(self._execute(entry))

    async def _execute(self, entry: Running) -> None:
        outcome = await run_task_async(self.handler, entry.attempt, entry.log)
        assert self._inbox is not None
        self._inbox.put_nowait(outcome)
        following = self.core.next_after(entry)
        if following is not None:
            self._start_job(following)
            if following.deadline is not None:
                self._inbox.put_nowait(WAKE)  # the loop's wait was set before this timeout

    def _abandon(self, entries: list[Running]) -> None:
        """The loop gave these up (timeout, lost lease): cancel them, free their slots."""
        for entry in entries:
            self._cancel_job(entry.task.task_id)
        for entry in self.core.abandon(entries):
            self._start_job(entry)

    async def _hand_back_waiting(self) -> None:
        """Hand the tasks claimed ahead that are due back to their queues, unrun."""
        for entry in self.core.let_go_waiting():
            with contextlib.suppress(LeaseLostError):
                await self.queue.requeue(entry.task)

    async def _wait(self, timeout: float) -> None:
        assert self._inbox is not None
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except asyncio.TimeoutError:
            return
        while True:
            self._take(item)
            try:
                item = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                return

    def _take(self, item: InboxItem) -> None:
        if self.core.take(item):
            assert isinstance(item, Outcome)
            self._jobs.pop(item.task.task_id, None)

    async def _maintain(self) -> None:
        core = self.core
        if core.renewal_due():
            call = core.calls.extend(core.leases(), self.config.worker.lease_seconds)
            self._abandon(core.lease_report(await self.queue.run_script(call)))
        self._abandon(core.timed_out())
        if core.maintenance_due():
            promoted = await self.queue.promote_due(core.maintenance_limit)
            requeued, failed = await self.queue.reclaim_expired(core.maintenance_limit)
            core.reclaimed(requeued, failed)
            core.maintained(promoted, requeued + failed)
            await self.queue.trim_runs()
            ended = await self.queue.watch_runs()
            if ended:
                in_background(call_run_callbacks, ended, self.config.worker.allowed_modules)
            core.steps_left = True
        if core.steps_left:  # one bounded step per turn of the loop, until none is left
            core.steps_left = await self.queue.continue_steps()
        if core.heartbeat_due():
            await self.queue.run_pipeline(self.core.beat_call())

    def _cancel_job(self, task_id: str) -> None:
        job = self._jobs.pop(task_id, None)
        if job is not None:
            job.cancel()

    async def _hand_back(self) -> None:
        for entry in list(self.core.running.values()):
            self._cancel_job(entry.task.task_id)
            try:
                await self.queue.requeue(entry.task)
                logger.warning("handed task %s back to its queue", entry.task.task_id)
            except LeaseLostError:
                pass
            del self.core.running[entry.task.task_id]

    async def _retire(self) -> None:
        try:
            await self._ship_logs()
            await self._settle(0)
            await self.queue.run_pipeline(heartbeat.retire(self.queue.keys, self.worker_id))
        except (RedisUnavailableError, QueueError) as e:
            logger.warning("worker %s could not sign off: %s", self.worker_id, e)

    async def _listen(self) -> None:
        """Wake the loop whenever a user gets ready tasks (Pub/Sub), until the loop ends."""
        assert self._inbox is not None
        while self._listening:
            try:
                listener = await self.queue.subscribe_ready()
                try:
                    while self._listening:
                        if await listener.wait(0.5):
                            self._inbox.put_nowait(WAKE)
                finally:
                    await listener.close()
            except FairQueueError:
                await asyncio.sleep(1.0)
