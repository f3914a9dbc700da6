"""AsyncTaskQueue: the asyncio twin of TaskQueue (redis.asyncio), same calls and rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from fairque.core.config import FairQueueConfig
from fairque.core.errors import FairQueueError
from fairque.core.models import Task, TaskRecord, TaskState
from fairque.core.tenants import ShareTotals, TenantPolicy
from fairque.queue import pools, steps, tenants
from fairque.queue.base import (
    CONNECTION_RETRIES,
    Command,
    QueueBase,
    error_record,
    fcall,
    function_missing,
    leases_of,
    load_library,
    merge_retried,
    retried,
    script_commands,
)
from fairque.queue.calls import PipelineCall, PushPlan, ScriptCall, one_pushed
from fairque.queue.connection import async_client, close_async_client
from fairque.queue.pushable import MakesTask
from fairque.queue.results import BatchPushResult, FailOutcome, PushResult, Stats
from fairque.queue.runs import (
    AsyncRunHandle,
    Compilable,
    RunEnd,
    RunInfo,
    compile_run,
    new_run_id,
    run_fields,
)

T = TypeVar("T")


class AsyncTaskQueue(QueueBase):
    """The asyncio form of :class:`~fairque.queue.sync_queue.TaskQueue`.

    Use ``async with AsyncTaskQueue(config) as queue:`` (which checks the connection), or
    call :meth:`ping` first and :meth:`close` at the end. Same semantics as TaskQueue.
    """

    def __init__(
        self,
        config: FairQueueConfig | None = None,
        *,
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        super().__init__(config, connect=client is None)
        retry = Retry(NoBackoff(), CONNECTION_RETRIES)
        self.redis: redis.asyncio.Redis = client or async_client(
            self.url, retry=retry, **self._client_options()
        )

    async def __aenter__(self) -> AsyncTaskQueue:
        await self.ping()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection pool."""
        await close_async_client(self.redis)

    async def ping(self) -> None:
        """Check that the server answers."""
        with self._guard("connect"):
            await self.redis.ping()

    async def run_script(self, call: ScriptCall[T]) -> T:
        """Run a script call built by :class:`~fairque.queue.calls.QueueCalls`."""
        wait_ms = self._replica_wait(call.script)
        with self._guard(f"run {call.script}", call.script):
            if wait_ms is None:
                try:
                    reply = await self._execute(fcall(call))
                except redis.exceptions.ResponseError as e:
                    if not function_missing(e):
                        raise
                    await self._execute(load_library())
                    reply = await self._execute(fcall(call))
            else:  # WAIT must follow the write on its connection: one pipeline
                reply, replicas = await self._send([call], wait_ms)
                for answer in (reply, replicas):
                    if isinstance(answer, Exception):
                        raise answer
        result = call.parse(reply)
        if wait_ms is not None:
            self._check_replicated(call.script, replicas, result)
        return result

    async def run_scripts(self, calls: Sequence[ScriptCall[T]]) -> list[T | FairQueueError]:
        """Send many script calls in one round trip (a pipeline, not a transaction).

        Each call stands alone: its parsed reply, or the error it met (a ScriptError,
        or what its parser raises, e.g. RunExistsError) in its place, so one bad call
        does not spoil the others. RedisUnavailableError (raised) when the server
        cannot be reached. With ``durability: replicated`` one WAIT follows them all.
        """
        if not calls:
            return []
        wait_ms = self._batch_wait(calls)
        with self._guard(f"run {len(calls)} scripts"):
            replies = await self._send(calls, wait_ms)
        return self._replies(calls, replies, wait_ms)

    async def _send(self, calls: Sequence[ScriptCall[Any]], wait_ms: int | None) -> list[Any]:
        """The replies of ``calls`` (and WAIT's) in one pipeline, errors in place; calls
        that met an unloaded library are sent again once it is loaded."""
        replies = await self._pipeline(script_commands(calls, wait_ms))
        again = retried(replies, wait_ms)
        if not again:
            return replies
        await self._execute(load_library())
        second = await self._pipeline(script_commands([calls[i] for i in again], wait_ms))
        return merge_retried(replies, again, second)

    async def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)

    async def _execute(self, command: Command) -> Any:
        return await self.redis.execute_command(*command)  # type: ignore[no-untyped-call]

    async def run_pipeline(self, call: PipelineCall[T]) -> T:
        """Send a pipeline call built by :class:`~fairque.queue.calls.QueueCalls`."""
        with self._guard("send commands"):
            pipe = self.redis.pipeline(transaction=call.atomic)
            for command in call.commands:
                pipe.execute_command(*command)
            replies = await pipe.execute()
        return call.parse(replies)

    async def subscribe_ready(self) -> AsyncReadyListener:
        """Listen for the notices that a user got ready tasks (Pub/Sub); close it after."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            with self._guard("subscribe to ready notices"):
                await pubsub.subscribe(self.keys.ready_channel)
        except FairQueueError:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return AsyncReadyListener(self, pubsub)

    # --- producing -------------------------------------------------------------------

    async def push(self, task: Task | MakesTask) -> PushResult:
        """Add one task (an ``@task`` function taking no arguments is called first).

        Returns ``{"success": True, "task_id": ..., "state": ...}``.
        """
        return one_pushed(await self.push_plan(self.calls.plan_push([task])))

    async def push_batch(self, tasks: Sequence[Task | MakesTask]) -> BatchPushResult:
        """Add many tasks, all or none: in one round trip up to ``queue.step_size``
        tasks, a larger batch in bounded steps (see "Large batches" in the README).

        Returns ``{"success": True, "count", "task_ids", "states"}``.
        """
        return await self.push_plan(self.calls.plan_push(tasks))

    async def push_plan(self, plan: PushPlan) -> BatchPushResult:
        """Write a planned push (see :meth:`QueueCalls.plan_push`), all or none: in one
        call up to ``queue.step_size`` tasks, else in bounded steps."""
        return await self._drive(steps.push(self.calls, plan))  # type: ignore[no-any-return]

    async def enqueue(
        self,
        pipeline: Compilable | Task | MakesTask,
        *,
        user_id: str | None = None,
        run_id: str | None = None,
    ) -> AsyncRunHandle:
        """Write one run of ``pipeline`` (its tasks and dependencies) in one atomic step.

        Each run gets its own records ``{run_id}:{name}``; ``user_id`` overrides whose
        fair share the run uses. Returns a handle to wait for the run and read results.
        """
        run = run_id or new_run_id()
        return await self.enqueue_tasks(compile_run(pipeline, run, user_id), run, tenant=user_id)

    async def enqueue_tasks(
        self,
        tasks: Sequence[Task],
        run_id: str,
        *,
        dag_id: str | None = None,
        logical_date: str | None = None,
        conf: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        tick: tuple[str, float] | None = None,
        on_end: RunEnd | None = None,
        dag_snapshot: Mapping[str, Any] | None = None,
        max_active_runs: int | None = None,
        max_active_tasks: int | None = None,
    ) -> AsyncRunHandle:
        """Write a compiled run and its record at once; RunExistsError if the run exists
        (or, for a scheduler's ``tick``, its cursor passed that tick: see :func:`run_fields`).
        ``dag_snapshot`` is the DAG's structure as the run was created (kept with the run)."""
        task_ids = {t.label: t.task_id for t in tasks}
        fields = run_fields(
            task_ids,
            dag_id=dag_id,
            logical_date=logical_date,
            conf=conf,
            tenant=tenant,
            tick=tick,
            on_end=on_end,
            dag_snapshot=dag_snapshot,
        )
        plan = self.calls.plan_push(
            tasks, (run_id, dag_id, fields), max_active_runs, max_active_tasks
        )
        await self.push_plan(plan)
        return AsyncRunHandle(self, run_id, task_ids)

    async def get_run(self, run_id: str) -> RunInfo:
        """A run's record and tasks; RunNotFoundError for an unknown id."""
        return await self._drive(steps.get_run(self.calls, run_id))  # type: ignore[no-any-return]

    async def list_runs(
        self, dag_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[RunInfo]:
        """The newest runs (of one DAG, or of all), newest first, after the ``offset``
        newest (for paging)."""
        flow = steps.list_runs(self.calls, dag_id, limit, offset)
        return await self._drive(flow)  # type: ignore[no-any-return]

    async def cancel_run(self, run_id: str) -> RunInfo:
        """Cancel every task of the run that has not ended; returns the run.
        RunEndedError (nothing changed) for a run that has ended."""
        return await self._drive(steps.cancel_run(self.calls, run_id))  # type: ignore[no-any-return]

    async def watch_runs(self, limit: int = 500) -> list[RunInfo]:
        """Time out the watched runs (a DAG's ``dagrun_timeout_seconds``) past their
        deadline, and return those that ended since the last call, each to one caller
        only: the caller runs their callbacks (workers do, see ``fairque.worker.callbacks``)."""
        return await self._drive(steps.watch_runs(self.calls, limit))  # type: ignore[no-any-return]

    async def clear_run(
        self, run_id: str, tasks: Sequence[str] | None = None, downstream: bool = True
    ) -> RunInfo:
        """Put the run's failed and upstream-canceled tasks (or the tasks named in
        ``tasks``), with their downstream when ``downstream``, back to run again inside
        the same run, in one atomic step; finished tasks keep their results and XCom.
        Returns the run; ClearError (nothing changed) when there is nothing to clear or
        a chosen task is queued or started."""
        flow = steps.clear_run(self.calls, run_id, tasks, downstream)
        return await self._drive(flow)  # type: ignore[no-any-return]

    async def _drive(self, flow: steps.Steps) -> Any:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                call = flow.throw(error) if error else flow.send(reply)
            except StopIteration as done:
                return done.value
            error = None
            try:
                if isinstance(call, ScriptCall):
                    reply = await self.run_script(call)
                else:
                    reply = await self.run_pipeline(call)
            except FairQueueError as e:
                error = e

    # --- consuming -------------------------------------------------------------------

    async def pop(self, *, claim_id: str | None = None) -> TaskRecord | None:
        """Claim the next task for this config's worker, or None when there is none."""
        tasks = await self.pop_many(1, claim_id=claim_id)
        return tasks[0] if tasks else None

    async def pop_many(self, max_tasks: int, *, claim_id: str | None = None) -> list[TaskRecord]:
        """Claim up to ``max_tasks`` tasks in one round trip, in fair order.

        A call that raised RedisUnavailableError may still have claimed tasks (its
        reply was lost): pass a ``claim_id`` of your own and, after such an error, call
        again with the same id to get the tasks it claimed (nothing new is claimed).
        """
        return await self.run_script(self.calls.pop(self.config.worker, max_tasks, claim_id))

    async def finish(
        self, task: TaskRecord, result: Any = None, *, duration: float = 0.0
    ) -> TaskState:
        """Record success; raises LeaseLostError if the lease was lost meanwhile."""
        return await self.run_script(
            self.calls.finish(task.task_id, task.claim_token, result, duration)
        )

    async def fail(
        self,
        task: TaskRecord,
        error: BaseException | str | dict[str, Any],
        *,
        duration: float = 0.0,
        retryable: bool = True,
    ) -> FailOutcome:
        """Record failure: SCHEDULED for a retry with backoff, or FAILED when spent."""
        call = self.calls.fail(
            task.task_id, task.claim_token, error_record(error), duration, retryable=retryable
        )
        return await self.run_script(call)

    async def requeue(self, task: TaskRecord) -> TaskState:
        """Hand a claimed task back to the front of its queue at once."""
        return await self.run_script(self.calls.requeue(task.task_id, task.claim_token))

    async def extend_lease(
        self, tasks: TaskRecord | Sequence[TaskRecord], lease_seconds: float | None = None
    ) -> dict[str, str]:
        """Renew leases; maps each task id to 'ok', 'cancel' or 'lost'."""
        seconds = lease_seconds or self.config.worker.lease_seconds
        return await self.run_script(self.calls.extend(leases_of(tasks), seconds))

    # --- managing --------------------------------------------------------------------

    async def get_task(self, task_id: str) -> TaskRecord:
        """The task's current record; raises TaskNotFoundError for an unknown id."""
        return await self.run_pipeline(self.calls.get_task(task_id))

    async def cancel(self, task_id: str, reason: str = "canceled by user") -> str:
        """Cancel a task: 'canceled', or 'requested' when it is running."""
        return await self.run_script(self.calls.cancel(task_id, reason))

    async def delete_task(self, task_id: str) -> TaskState:
        """Remove a task entirely; returns the state it was in."""
        return await self.run_script(self.calls.delete(task_id))

    async def wait_for(
        self, task_ids: Sequence[str], timeout: float = 30.0, poll: float = 0.02
    ) -> dict[str, TaskState | None]:
        """Wait until every task has ended (or is unknown); returns their states.

        Raises TimeoutError naming the tasks still active after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            states = await self.run_pipeline(self.calls.states(task_ids))
            active = [i for i, s in states.items() if s is not None and s.is_active]
            if not active:
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"tasks still active after {timeout} s: {active[:10]}")
            await asyncio.sleep(poll)

    async def get_stats(self) -> Stats:
        """Counts per state overall (``tasks_active``, ``states``, ``totals`` of ended
        tasks since the start) and per user (``users``: counts per state, queued per
        priority, the age of its next task), tasks ended in the last minute
        (``throughput_per_second``) and ``oldest_queued_age`` (seconds); see
        :class:`~fairque.queue.results.Stats`."""
        return await self._drive(steps.stats(self.calls))  # type: ignore[no-any-return]

    # --- tenant policies (see fairque.core.tenants) ----------------------------------

    async def set_tenant_policy(
        self,
        user_id: str,
        *,
        weight: float | None = None,
        max_running: int | str | None = None,
        rate: float | str | None = None,
        burst: int | None = None,
    ) -> TenantPolicy:
        """See :meth:`TaskQueue.set_tenant_policy`."""
        call = tenants.set_policy(
            self.calls, user_id, weight=weight, max_running=max_running, rate=rate, burst=burst
        )
        await self.run_script(call)
        return await self.get_tenant_policy(user_id)

    async def unset_tenant_policy(self, user_id: str, *fields: str) -> TenantPolicy:
        """See :meth:`TaskQueue.unset_tenant_policy`."""
        await self.run_script(tenants.unset_policy(self.calls, user_id, fields))
        return await self.get_tenant_policy(user_id)

    async def set_pool(self, name: str, slots: int) -> None:
        """See :meth:`TaskQueue.set_pool`."""
        await self.run_script(pools.set_pool(self.calls, name, slots))

    async def unset_pool(self, name: str) -> None:
        """See :meth:`TaskQueue.unset_pool`."""
        await self.run_script(pools.unset_pool(self.calls, name))

    async def list_pools(self) -> list[dict[str, Any]]:
        """See :meth:`TaskQueue.list_pools`."""
        return await self.run_pipeline(pools.list_pools(self.calls))

    async def get_tenant_policy(self, user_id: str) -> TenantPolicy:
        """See :meth:`TaskQueue.get_tenant_policy`."""
        return await self.run_pipeline(tenants.get_policy(self.calls, user_id))

    async def list_tenants(self, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """See :meth:`TaskQueue.list_tenants`."""
        return await self._drive(tenants.list_tenants(self.calls, offset, limit))  # type: ignore[no-any-return]

    async def tenant_share_totals(self) -> ShareTotals:
        """See :meth:`TaskQueue.tenant_share_totals`."""
        return await self.run_script(tenants.share_totals(self.calls))

    async def tenant_page(self, users: Sequence[str], totals: ShareTotals) -> list[dict[str, Any]]:
        """See :meth:`TaskQueue.tenant_page`."""
        return await self._drive(tenants.tenant_page(self.calls, users, totals))  # type: ignore[no-any-return]

    async def continue_steps(self) -> bool:
        """Carry on one step of the bounded work left over (the rest of a large release
        or of a batch's opening; a batch whose producer stopped before its commit);
        True while more is left. Workers call it with their periodic work."""
        pending, given_up = await self.run_script(self.calls.continue_steps())
        return pending + given_up > 0

    async def promote_due(self, limit: int = 1000) -> int:
        """Queue SCHEDULED tasks whose time has come; returns how many."""
        return await self.run_script(self.calls.promote(limit))

    async def reclaim_expired(self, limit: int = 1000) -> tuple[int, int]:
        """Take back tasks whose lease expired; returns (requeued, failed)."""
        max_recoveries = self.config.worker.max_recoveries
        return await self.run_script(self.calls.reclaim(limit, max_recoveries))

    async def trim_runs(self, limit: int = 100) -> int:
        """Forget up to ``limit`` runs that ended more than ``run_retention_seconds`` ago
        (record, task records, XCom, lineage); returns how many. Workers and schedulers
        call it with their periodic work."""
        return (await self.run_script(self.calls.trim(limit)))[0]


class AsyncReadyListener:
    """A subscription to the ready notices of an :class:`AsyncTaskQueue`."""

    def __init__(self, queue: AsyncTaskQueue, pubsub: redis.asyncio.client.PubSub) -> None:
        self._queue = queue
        self._pubsub = pubsub

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notice; True when one arrived."""
        with self._queue._guard("listen for ready notices"):
            return await self._pubsub.get_message(timeout=timeout) is not None

    async def close(self) -> None:
        """End the subscription and give its connection back."""
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
