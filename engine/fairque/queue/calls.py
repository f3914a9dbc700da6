"""Everything the sync and async queues share: script arguments and reply parsing.

A :class:`ScriptCall` names a Lua script, its KEYS and ARGV, and how to turn the reply
into a Python value or one of our exceptions; a :class:`PipelineCall` is a batch of plain
read commands sent in one pipeline. ``TaskQueue`` and ``AsyncTaskQueue`` only execute
these, so every rule lives here once.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fairque.core.config import FairQueueConfig, WorkerConfig, redis_location
from fairque.core.errors import (
    BatchGoneError,
    ClearError,
    DagError,
    DuplicateTaskError,
    InvalidStateError,
    LeaseLostError,
    PayloadError,
    QueueError,
    RunExistsError,
    TaskNotFoundError,
    UnknownDependencyError,
    UnknownPoolError,
)
from fairque.core.fields import utf8_size
from fairque.core.graph import topological_order
from fairque.core.keys import Keys, key_tag
from fairque.core.models import (
    DAG_GATE_PREFIX,
    DEFAULT_QUEUE,
    LANE_SEPARATOR,
    ORDER_FIELD,
    RECORD_DEFAULTS,
    Task,
    TaskRecord,
    TaskState,
    enqueued_time,
    to_json,
)
from fairque.queue.pushable import MakesTask, as_task
from fairque.queue.results import (
    BatchPushResult,
    FailOutcome,
    FinishOutcome,
    PushResult,
    Settled,
)
from fairque.queue.runs import RUN_END_FIELDS, RunInfo, parse_run

T = TypeVar("T")
Arg = str | int | float


@dataclass(frozen=True)
class ScriptCall(Generic[T]):
    """One run of a Lua script and the parser of its reply."""

    script: str
    keys: Sequence[str]
    args: Sequence[Arg]
    parse: Callable[[Any], T]


@dataclass(frozen=True)
class TenantSlice:
    """A page of tenants (see tenants.lua): how many match the search, the page's ids."""

    matching: int
    users: list[str]


@dataclass(frozen=True)
class PipelineCall(Generic[T]):
    """Plain commands sent together in one pipeline, and the parser of their replies;
    ``atomic`` wraps them in MULTI/EXEC so that no other client sees a state between."""

    commands: Sequence[tuple[Arg, ...]]
    parse: Callable[[list[Any]], T]
    atomic: bool = False


LINKS_PER_WRITE = 10
"""Upstreams linked for about the cost of one task written (a link is a state read and
two set adds): what a step's size counts them as."""


def _cost(links: int) -> int:
    """What writing a task (or a part of one) with ``links`` upstream links costs."""
    return 1 + links // LINKS_PER_WRITE


Part = tuple[int, list[Arg]]
"""Part of a staged task: its index in the plan's dependency order, and its arguments."""


@dataclass(frozen=True)
class PushPlan:
    """A checked push: the task ids as given (``ids``) and in dependency order
    (``ordered``), each task's arguments (in that order), the run's arguments and keys
    (empty without a run)."""

    ids: list[str]
    ordered: list[str]
    task_args: list[list[Arg]]
    run_args: list[Arg]
    run_keys: list[str]

    def parse(self, reply: Any) -> BatchPushResult:
        """push.lua's reply as the result of pushing ``ids``."""
        return self.result(_push_reply(reply))

    def weight(self) -> int:
        """The plan's cost in task writes (see :data:`LINKS_PER_WRITE`)."""
        return sum(_cost(int(args[3])) for args in self.task_args)

    def steps(self, step_size: int) -> list[list[Part]]:
        """The plan cut into steps of at most ``step_size`` writes (stage.lua): each a
        list of (task index in ``ordered``, the part's arguments). A task with more
        upstreams than one step links is cut into parts: its record with the first ones,
        then parts of more upstreams (their field count is -1)."""
        links = max(1, (step_size - 1) * LINKS_PER_WRITE)  # upstreams per part
        parts: list[tuple[int, Part]] = []
        for index, args in enumerate(self.task_args):
            count = int(args[3])
            head, deps, tail = args[:3], args[4 : 4 + count], args[4 + count :]
            first = deps[:links]
            parts.append((_cost(len(first)), (index, [*head, len(first), *first, *tail])))
            for at in range(links, count, links):
                more = deps[at : at + links]
                parts.append((_cost(len(more)), (index, [*head, len(more), *more, -1])))
        out: list[list[Part]] = [[]]
        load = 0
        for cost, part in parts:
            if out[-1] and load + cost > step_size:
                out.append([])
                load = 0
            out[-1].append(part)
            load += cost
        return out

    def result(self, ordered_states: Sequence[str]) -> BatchPushResult:
        """The result: the states (given in dependency order) of the tasks as given."""
        by_id = dict(zip(self.ordered, ordered_states, strict=True))
        states = [TaskState(by_id[i]).value for i in self.ids]
        return {"success": True, "count": len(self.ids), "task_ids": self.ids, "states": states}


@dataclass(frozen=True)
class Settlement:
    """How one claimed run ended, as ``settle`` records it: success with a result
    (``data`` is its JSON) or failure with an error (``data`` is the error's JSON)."""

    ok: bool
    task_id: str
    claim_token: int
    data: str
    duration: float
    retryable: bool = True


class QueueCalls:
    """Builds every queue operation for one configuration."""

    def __init__(self, config: FairQueueConfig) -> None:
        self.config = config
        self.keys = Keys(config.queue.prefix, key_tag(redis_location(config.redis.explicit_url())))
        k = self.keys
        self._common_keys = [*k.all_states(), k.stats, k.active_users, k.clock, k.all_users]
        q = config.queue
        self._common_args: list[Arg] = [
            *k.templates(),
            k.ready_channel,
            int(q.priority_aging_seconds * 1_000_000),
            int(q.result_ttl_seconds),
            k.xcom(""),
            k.lineage(""),
            int(q.xcom_ttl_seconds),
        ]
        # After each script's own keys and arguments (taken off by lua/_tenants.lua).
        self._tenant_keys = [k.tenant_default, k.tenants_parked]
        self._tenant_args: list[Arg] = [q.fairness, k.tenant("")]
        # Last of all (taken off by lua/_common.lua): the queue templates and the step
        # size; in KEYS the pending steps, the queue counts and the queued index.
        self._queue_args: list[Arg] = [*k.queue_templates(), q.step_size]
        self._last_keys = [k.pending_steps, k.queue_counts, k.queued_since, k.queued_seconds]
        self._queue_turn = 0  # which of the worker's queues a claim tries first

    def _worker_scope(self, worker: WorkerConfig) -> list[Arg]:
        """What a claim reads about the worker (see pop.lua): its assigned users and steal
        targets (each a count, then the ids), then its queues (a count, then the names),
        the one whose turn it is first (round robin, kept by :meth:`_took_turns`)."""
        args: list[Arg] = []
        n = len(worker.queues)
        turn = self._queue_turn % n
        queues = [*worker.queues[turn:], *worker.queues[:turn]]
        for group in (worker.assigned_users, worker.steal_targets, queues):
            args += [len(group), *group]
        return args

    def _took_turns(self, worker: WorkerConfig, claimed: Sequence[TaskRecord]) -> None:
        """The next claim starts with the queue after the last task's claimed."""
        if claimed and claimed[-1].queue in worker.queues:
            self._queue_turn = worker.queues.index(claimed[-1].queue) + 1

    def _call(
        self,
        script: str,
        args: Sequence[Arg],
        parse: Callable[[Any], T],
        extra_keys: Sequence[str] = (),
    ) -> ScriptCall[T]:
        """A run of ``script``: the common keys and arguments, the script's own
        (``extra_keys``, ``args``), then the tenant keys and arguments, then the queue
        templates."""
        keys = [*self._common_keys, *extra_keys, *self._tenant_keys, *self._last_keys]
        args = [*self._common_args, *args, *self._tenant_args, *self._queue_args]
        return ScriptCall(script, keys, args, parse)

    call = _call  # for the call builders of other modules (queue/tenants.py)

    def own_part(self, call: ScriptCall[Any]) -> tuple[list[str], list[Arg]]:
        """The script's own keys and arguments of a call built here: without the common
        ones before them and the tenant and queue ones after them (see :meth:`_call`)."""
        keys_end = len(call.keys) - len(self._tenant_keys) - len(self._last_keys)
        args_end = len(call.args) - len(self._tenant_args) - len(self._queue_args)
        return (
            list(call.keys[len(self._common_keys) : keys_end]),
            list(call.args[len(self._common_args) : args_end]),
        )

    # --- writes ----------------------------------------------------------------------

    def push(
        self,
        items: Sequence[Task | MakesTask],
        *,
        run: tuple[str, str | None, Mapping[str, str]] | None = None,
        max_active_runs: int | None = None,
        max_active_tasks: int | None = None,
    ) -> ScriptCall[BatchPushResult]:
        """Add the tasks of ``items`` atomically in one call (see :meth:`plan_push`,
        which checks them before any I/O; :mod:`~fairque.queue.steps` writes a batch
        larger than the step size in steps)."""
        return self.push_planned(self.plan_push(items, run, max_active_runs, max_active_tasks))

    def plan_push(
        self,
        items: Sequence[Task | MakesTask],
        run: tuple[str, str | None, Mapping[str, str]] | None = None,
        max_active_runs: int | None = None,
        max_active_tasks: int | None = None,
    ) -> PushPlan:
        """The arguments of a push of ``items`` (see :func:`~fairque.queue.pushable.as_task`),
        checked before any I/O.

        ``run`` (run id, DAG id or None, the run hash's fields) also creates the run's
        record, refused with RunExistsError when that run exists, or when it is a
        scheduler's tick (fields ``schedule`` and ``tick``) its schedule's cursor passed.
        ``max_active_runs`` (a DAG's run only): beyond that many active runs of the DAG,
        the run is created QUEUED and its tasks start when a slot frees (see push.lua).
        ``max_active_tasks`` (a DAG's run only): at most that many started tasks of the
        DAG across its runs (its gate ``dag=<dag id>``, see the gates in _common.lua).
        """
        if not items:
            raise QueueError("push_batch needs at least one task")
        tasks = [as_task(item) for item in items]
        run_key = self.keys.run(run[0]) if run is not None else None
        gate = None
        if run is not None and run[1] is not None and max_active_tasks is not None:
            gate = DAG_GATE_PREFIX + run[1]
        ordered = in_dependency_order(tasks)
        task_args = [self._push_args(task, run_key, gate) for task in ordered]
        run_args: list[Arg] = []
        extra: list[str] = []
        if run is not None:
            run_id, dag_id, fields = run
            k = self.keys
            if dag_id is not None and max_active_runs is not None:
                fields = {
                    **fields,
                    "max_active_runs": str(max_active_runs),
                    "slots_key": k.run_slots(dag_id),
                    "queued_key": k.queued_runs(dag_id),
                }
            if gate is not None:
                fields = {**fields, "dag_gate": gate, "max_active_tasks": str(max_active_tasks)}
            watched = any(name in fields for name in RUN_END_FIELDS)
            extra = self.run_keys(run_id, dag_id, watched)
            run_args = [run_id, len(fields), *(item for pair in fields.items() for item in pair)]
        ids = [t.task_id for t in tasks]
        return PushPlan(ids, [t.task_id for t in ordered], task_args, run_args, extra)

    def push_planned(self, plan: PushPlan) -> ScriptCall[BatchPushResult]:
        """The push of a whole plan in one call (see push.lua)."""
        args: list[Arg] = [len(plan.task_args), *itertools.chain.from_iterable(plan.task_args)]
        args += plan.run_args
        return self._call("push", args, plan.parse, plan.run_keys)

    # --- large batches (see stage.lua; driven by fairque.queue.steps) ----------------

    def stage(
        self, batch: str, plan: PushPlan, parts: Sequence[Part], done: int
    ) -> ScriptCall[list[str]]:
        """Stage one step of batch ``batch`` (one of :meth:`PushPlan.steps`; ``done``:
        the parts the steps before it staged; see stage.lua); the reply is the state of
        each part's task once the batch opens, as far as known. The first step of a run
        also refuses a run that exists (RunExistsError)."""
        q = self.config.queue
        args: list[Arg] = [batch, int(q.staging_timeout_seconds * 1000), done, len(parts)]
        args += itertools.chain.from_iterable(part for _, part in parts)
        keys: list[str] = []
        if done == 0 and plan.run_keys:
            args += plan.run_args
            keys = list(plan.run_keys)
        return self._call(
            "stage", args, lambda r: _parse_staged(r, batch), [*keys, self.keys.batches]
        )

    def commit(self, batch: str, plan: PushPlan) -> ScriptCall[dict[str, Any]]:
        """Make staged batch ``batch`` visible at once (see commit.lua); the reply is
        ``{"held": its run is held, "left": tasks left to open, "task_ids": the plan's}``."""
        args: list[Arg] = [batch, *plan.run_args]
        keys = [*plan.run_keys, self.keys.batches]
        return self._call("commit", args, lambda r: _parse_commit(r, batch, plan.ids), keys)

    def open_batch(self, batch: str) -> ScriptCall[int]:
        """Open the next step of committed batch ``batch``; the reply is how many of its
        tasks are left to open."""
        return self._call("open", [batch], int, [self.keys.batches])

    def unstage(self, batch: str) -> ScriptCall[int]:
        """Take back the next step of uncommitted batch ``batch``; the reply is how many
        of its tasks are left."""
        return self._call("unstage", [batch], int, [self.keys.batches])

    def continue_steps(self) -> ScriptCall[tuple[int, int]]:
        """One step of the bounded work left over (see continue.lua); the reply is
        (pending steps left, batches given up and not yet taken back)."""
        return self._call("continue", [], lambda r: (int(r[0]), int(r[1])), [self.keys.batches])

    def run_keys(self, run_id: str, dag_id: str | None, watched: bool) -> list[str]:
        """push.lua's KEYS[12...] for a run (``watched``: a DAG's run with a timeout or
        callbacks)."""
        k = self.keys
        found = [k.run(run_id), k.runs, k.runs_retention, k.schedule_cursors]
        if dag_id is not None:
            found.append(k.runs_of(dag_id))
            if watched:
                found.append(k.runs_watched)
        return found

    def fire(
        self,
        keys: Sequence[str],
        version: str,
        swaps: Sequence[tuple[str, str]],
    ) -> ScriptCall[BatchPushResult | None]:
        """Create a run from a run template stored in Redis (see fire.lua): ``keys`` are
        push's KEYS[12...] for this run then the template's key; ``swaps`` (stand-in,
        this run's text) are applied to every stored argument. Replies push's result
        (RunExistsError as push), or None when the template is missing or of another
        version (nothing written)."""
        args: list[Arg] = [version, len(swaps), *(part for pair in swaps for part in pair)]
        return self._call("fire", args, _parse_fire, keys)

    def push_one(self, task: Task | MakesTask) -> ScriptCall[PushResult]:
        """Add one task: :meth:`push` with the reply of a single task."""
        call = self.push([task])
        return ScriptCall(call.script, call.keys, call.args, lambda r: one_pushed(call.parse(r)))

    def _push_args(
        self, task: Task, run_key: str | None = None, gate: str | None = None
    ) -> list[Arg]:
        """One task as push.lua reads it: id, user, priority, the upstreams (count, ids),
        the record's fields (count, names and values); a run's task also names its run's
        key (``run_key``), which the script ending it counts down (see _common.lua), and a
        task of a DAG with max_active_tasks its DAG's gate (``gate``)."""
        task.recheck()  # made checked; to_hash encodes (and so checks) the JSON fields
        q = self.config.queue
        fields = task.to_hash()
        check_size(task.task_id, fields, q.max_payload_bytes)
        fields.setdefault("max_retries", str(q.default_max_retries))
        fields.setdefault("retry_delay_seconds", str(q.default_retry_delay_seconds))
        for name, encoded in _DEFAULT_TEXT.items():  # read back as that when missing
            if fields[name] == encoded:
                del fields[name]
        if task.expand:  # the scripts read a mapped task's limit (lua/_mapping.lua)
            fields.setdefault("max_map_length", str(task.max_map_length))
        if task.enable_xcom or task.xcom_push_key:
            fields["xcom_scope"] = task.xcom_scope
        if run_key is not None:
            fields["run_key"] = run_key
        if gate is not None:
            fields["dag_gate"] = gate
        return [
            *(task.task_id, task.user_id, int(task.priority), len(task.depends_on)),
            *task.depends_on,
            len(fields),
            *itertools.chain.from_iterable(fields.items()),
        ]

    def pop(
        self, worker: WorkerConfig, max_tasks: int = 1, claim_id: str | None = None
    ) -> ScriptCall[list[TaskRecord]]:
        """Claim up to ``max_tasks`` tasks for ``worker``, fairly, each with a lease.

        The call is named by ``claim_id`` (a new one when None): sent again with the same
        id after its reply was lost, it claims nothing new and answers the tasks it
        claimed that are still held (for one lease).
        """
        args: list[Arg] = [max_tasks, int(worker.lease_seconds * 1000), worker.id]
        args += self._worker_scope(worker)

        def parse(reply: Any) -> list[TaskRecord]:
            claimed = _parse_tasks(reply)
            self._took_turns(worker, claimed)
            return claimed

        return self._call("pop", args, parse, self._claim_keys(claim_id))

    def _claim_keys(self, claim_id: str | None) -> list[str]:
        """KEYS[12..13] of pop and settle: the token counter and the call's claim record."""
        return [self.keys.claim_tokens, self.keys.claim(claim_id or new_claim_id())]

    def finish(
        self, task_id: str, claim_token: int, result: Any, duration: float
    ) -> ScriptCall[TaskState]:
        """Record success of a claimed task (FINISHED, or CANCELED if asked meanwhile)."""
        result_json = to_json(result, f"result of task {task_id!r}")
        args: list[Arg] = [task_id, claim_token, result_json, _seconds(duration)]
        return self._call("finish", args, lambda r: _parse_end(r, task_id))

    def fail(
        self,
        task_id: str,
        claim_token: int,
        error: dict[str, Any],
        duration: float,
        *,
        retryable: bool = True,
    ) -> ScriptCall[FailOutcome]:
        """Record failure of a claimed task: retry later with backoff, or FAILED."""
        q = self.config.queue
        args: list[Arg] = [
            task_id,
            claim_token,
            to_json(error, "error"),
            _seconds(duration),
            random.random(),
            q.retry_backoff_max_seconds,
            "1" if retryable else "0",
        ]
        return self._call("fail", args, lambda r: _parse_fail(r, task_id))

    def settle(
        self,
        worker: WorkerConfig,
        settlements: Sequence[Settlement],
        max_tasks: int,
        claim_id: str | None = None,
        answered: str | None = None,
    ) -> ScriptCall[tuple[list[Settled], list[TaskRecord]]]:
        """Record ended runs and claim up to ``max_tasks`` new tasks in one round trip.

        The reply pairs each settlement with its result (a LeaseLostError instance when
        the lease was lost, not raised) and lists the claimed tasks. Sent again with the
        same ``claim_id`` after its reply was lost, it answers what it did the first time
        (see :meth:`pop`). ``answered`` is the claim id of the caller's previous call,
        whose reply arrived: its record is no longer needed and is deleted.
        """
        q = self.config.queue
        args: list[Arg] = [
            max_tasks,
            int(worker.lease_seconds * 1000),
            worker.id,
            q.retry_backoff_max_seconds,
            len(settlements),
        ]
        for s in settlements:
            kind = "ok" if s.ok else "fail"
            retry = "1" if s.retryable else "0"
            args += [
                kind,
                s.task_id,
                s.claim_token,
                s.data,
                _seconds(s.duration),
                random.random(),
                retry,
            ]
        args += self._worker_scope(worker)
        ended = [(s.task_id, s.ok) for s in settlements]
        keys = self._claim_keys(claim_id)
        if answered is not None:
            keys.append(self.keys.claim(answered))

        def parse(reply: Any) -> tuple[list[Settled], list[TaskRecord]]:
            settled, claimed = _parse_settle(reply, ended)
            self._took_turns(worker, claimed)
            return settled, claimed

        return self._call("settle", args, parse, keys)

    def requeue(self, task_id: str, claim_token: int) -> ScriptCall[TaskState]:
        """Hand a claimed task back to the front of its queue (graceful shutdown)."""
        return self._call("requeue", [task_id, claim_token], lambda r: _parse_end(r, task_id))

    def extend(
        self, leases: Sequence[tuple[str, int]], lease_seconds: float
    ) -> ScriptCall[dict[str, str]]:
        """Renew leases; the reply maps each task id to 'ok', 'cancel' or 'lost'."""
        args: list[Arg] = [int(lease_seconds * 1000)]
        for task_id, claim_token in leases:
            args += [task_id, claim_token]
        ids = [task_id for task_id, _ in leases]
        return self._call("extend", args, lambda r: dict(zip(ids, r, strict=True)))

    def cancel(self, task_id: str, reason: str) -> ScriptCall[str]:
        """Cancel a task; the reply is 'canceled', or 'requested' for a started task."""
        return self._call("cancel", [task_id, reason], lambda r: _parse_cancel(r, task_id))

    def clear(
        self, run_id: str, tasks: Sequence[tuple[str, Sequence[str]]], all_ids: Sequence[str]
    ) -> ScriptCall[list[str]]:
        """Put ``tasks`` ((id, upstream ids), upstreams first) of run ``run_id`` back to
        run again in one step (see clear.lua); ``all_ids`` are the run's task ids. The
        reply is each cleared task's new state; ClearError when one is active or gone."""
        args: list[Arg] = [run_id, len(tasks)]
        for task_id, deps in tasks:
            args += [task_id, len(deps), *deps]
        args += [len(all_ids), *all_ids]
        parse = lambda r: _parse_clear(r, run_id)  # noqa: E731
        return self._call("clear", args, parse, [self.keys.run(run_id), self.keys.runs_watched])

    def delete(self, task_id: str) -> ScriptCall[TaskState]:
        """Remove a task entirely; the reply is the state it was in."""
        return self._call("delete", [task_id], lambda r: _parse_end(r, task_id))

    def promote(self, limit: int) -> ScriptCall[int]:
        """Queue due SCHEDULED tasks; the reply is how many were queued."""
        return self._call("promote", [limit], lambda r: int(r[0]))

    def reclaim(self, limit: int, max_recoveries: int) -> ScriptCall[tuple[int, int]]:
        """Take back expired leases; the reply is (requeued, failed)."""
        return self._call("reclaim", [limit, max_recoveries], lambda r: (int(r[0]), int(r[1])))

    def watch_runs(self, limit: int) -> ScriptCall[tuple[list[str], list[str]]]:
        """Time out the late watched runs and claim those that ended (see watch.lua);
        the reply is (ended run ids, timed-out run ids)."""
        return self._call(
            "watch",
            [limit, self.keys.run("")],
            lambda r: (list(r[0]), list(r[1])),
            [self.keys.runs_watched],
        )

    def trim(self, limit: int) -> ScriptCall[tuple[int, int]]:
        """Forget up to ``limit`` runs that ended more than ``run_retention_seconds`` ago
        (see trim.lua); the reply is (removed, kept for later)."""
        k = self.keys
        retention_ms = int(self.config.queue.run_retention_seconds * 1000)
        args: list[Arg] = [retention_ms, limit, k.run(""), k.runs_of("")]
        extra = [k.runs, k.runs_retention, k.schedule_cursors]
        return self._call("trim", args, lambda r: (int(r[0]), int(r[1])), extra)

    # --- locks and cursors (scheduler) -----------------------------------------------

    def lock(self, key: str, token: str, ttl_seconds: float) -> ScriptCall[bool]:
        """Take or renew the lock ``key`` for ``token``; the reply says if it is ours."""
        args: list[Arg] = [token, max(1, int(ttl_seconds * 1000))]
        return ScriptCall("lock", [key], args, lambda r: r[0] in ("acquired", "renewed"))

    def unlock(self, key: str, token: str) -> ScriptCall[bool]:
        """Release the lock if ``token`` holds it; the reply says if it did."""
        return ScriptCall("unlock", [key], [token], lambda r: bool(r))

    def advance(self, schedule_id: str, tick: float, *more: tuple[str, float]) -> ScriptCall[float]:
        """Move a schedule's cursor forward to ``tick`` (never back), and those of
        ``more`` (schedule id, tick) pairs in the same call; replies the first cursor."""
        key = self.keys.schedule_cursors
        args: list[Arg] = [schedule_id, repr(tick)]
        for other, at in more:
            args += [other, repr(at)]
        return ScriptCall("advance", [key], args, lambda r: float(r))

    def claim_due(
        self, now: float, lease_seconds: float, limit: int
    ) -> ScriptCall[list[tuple[str, float]]]:
        """Claim up to ``limit`` DAGs of the due index due at ``now`` (epoch seconds) for
        ``lease_seconds``; replies (DAG id, the due time it had), earliest first."""
        args: list[Arg] = [repr(now), repr(lease_seconds), limit]
        return ScriptCall("claim_due", [self.keys.dags_due], args, _parse_due)

    # --- XCom ------------------------------------------------------------------------

    def xcom_push(
        self,
        scope: str,
        key: str,
        value_json: str,
        producer: str,
        holder: tuple[str, int] | None = None,
    ) -> ScriptCall[int]:
        """Store an XCom value (JSON text) and log the push; the reply is its size.

        ``holder`` (task id, claim token) is the claimed task pushing: refused with
        LeaseLostError when that claim is no longer held.
        """
        args: list[Arg] = [scope, key, value_json, producer, *(holder or ())]
        task_id = holder[0] if holder else ""
        return self._call("xcom_push", args, lambda r: int(_status(r, task_id, "xcom_push")[1]))

    def xcom_pull(
        self, scope: str, key: str, consumer: str, attempt: int | None = None
    ) -> ScriptCall[str | None]:
        """Read an XCom value's JSON text (None when missing) and log the pull, with the
        pulling ``attempt``'s number when a claimed task pulls."""
        args: list[Arg] = [scope, key, consumer, *(() if attempt is None else (attempt,))]
        return self._call("xcom_pull", args, lambda r: r[1] if r[0] == "ok" else None)

    def lineage(self, scope: str) -> PipelineCall[list[dict[str, Any]]]:
        """Every XCom push and pull of a scope, oldest first."""
        return PipelineCall(
            [("LRANGE", self.keys.lineage(scope), 0, -1)],
            lambda r: [json.loads(event) for event in r[0]],
        )

    # --- reads -----------------------------------------------------------------------

    def get_task(self, task_id: str) -> PipelineCall[TaskRecord]:
        """The task's current record."""
        return PipelineCall(
            [("HGETALL", self.keys.task(task_id))], lambda r: _parse_task(r, task_id)
        )

    def states(self, task_ids: Sequence[str]) -> PipelineCall[dict[str, TaskState | None]]:
        """The current state of each task (None for an unknown or expired id)."""
        commands: list[tuple[Arg, ...]] = [("HGET", self.keys.task(i), "state") for i in task_ids]
        return PipelineCall(
            commands,
            lambda r: {
                i: None if s is None else TaskState(s) for i, s in zip(task_ids, r, strict=True)
            },
        )

    def run_ids(self, dag_id: str | None, limit: int, offset: int = 0) -> PipelineCall[list[str]]:
        """The newest ``limit`` run ids after skipping ``offset``, of one DAG or of all."""
        key = self.keys.runs if dag_id is None else self.keys.runs_of(dag_id)
        return PipelineCall([("ZREVRANGE", key, offset, offset + limit - 1)], lambda r: list(r[0]))

    def run_count(self, dag_id: str | None) -> PipelineCall[int]:
        """How many runs are kept, of one DAG or of all (one ZCARD of the index)."""
        key = self.keys.runs if dag_id is None else self.keys.runs_of(dag_id)
        return PipelineCall([("ZCARD", key)], lambda r: int(r[0]))

    def run_records(self, run_ids: Sequence[str]) -> PipelineCall[list[RunInfo | None]]:
        """Each run's record without its tasks (None for an unknown run)."""
        commands: list[tuple[Arg, ...]] = [("HGETALL", self.keys.run(i)) for i in run_ids]
        return PipelineCall(
            commands,
            lambda r: [
                parse_run(i, raw) if raw else None for i, raw in zip(run_ids, r, strict=True)
            ],
        )

    def task_records(
        self, task_ids: Sequence[str], fields: Sequence[str] = ()
    ) -> PipelineCall[list[TaskRecord | None]]:
        """Each task's record (None for an unknown or expired id); with ``fields``, a
        record holding only those (the others at their defaults), for summaries."""
        if not fields:
            commands: list[tuple[Arg, ...]] = [("HGETALL", self.keys.task(i)) for i in task_ids]
            return PipelineCall(commands, lambda r: _records(task_ids, r))
        if "enqueued_at" in fields:  # which the stamp tells when the record leaves it out
            fields = [*fields, ORDER_FIELD]
        commands = [("HMGET", self.keys.task(i), *fields) for i in task_ids]

        def parse(replies: list[Any]) -> list[TaskRecord | None]:
            found = [
                {f: v for f, v in zip(fields, r, strict=True) if v is not None} for r in replies
            ]
            return _records(task_ids, found)

        return PipelineCall(commands, parse)

    def append_logs(self, chunks: Sequence[tuple[str, int, str]]) -> PipelineCall[None]:
        """Append captured output to attempt logs: ``(task_id, attempt, text)`` each,
        keeping every log key for ``result_ttl_seconds`` after its latest write."""
        ttl = int(self.config.queue.result_ttl_seconds)
        commands: list[tuple[Arg, ...]] = []
        for task_id, attempt, text in chunks:
            key = self.keys.task_log(task_id, attempt)
            commands.append(("APPEND", key, text))
            if ttl > 0:
                commands.append(("EXPIRE", key, ttl))
        return PipelineCall(commands, lambda _: None)

    def task_log(self, task_id: str, attempt: int) -> PipelineCall[str]:
        """What one attempt of a task wrote ("" when nothing was captured)."""
        return PipelineCall([("GET", self.keys.task_log(task_id, attempt))], lambda r: r[0] or "")

    def mark_run_canceled(self, run_id: str, canceled: bool = True) -> PipelineCall[None]:
        """Note on the run's record that it was canceled (or take the note back)."""
        key = self.keys.run(run_id)
        command: tuple[Arg, ...] = (
            ("HSET", key, "canceled", "1") if canceled else ("HDEL", key, "canceled")
        )
        return PipelineCall([command], lambda _: None)

    def stats(self) -> PipelineCall[dict[str, Any]]:
        """Counts per state (overall and per user, queued also per priority), totals,
        active users, tasks ended in the last minute, the oldest queued task's age, and
        the bounded work left over (see "Large batches" in the README)."""
        k = self.keys
        commands = [*self.state_reads(), ("HGETALL", k.stats), ("ZCARD", k.active_users)]
        commands += [("TIME",), ("HGETALL", k.queue_counts), ("LLEN", k.pending_steps)]
        commands += [("ZCARD", k.batches)]
        return PipelineCall(commands, _parse_stats)

    def state_reads(self) -> list[tuple[Arg, ...]]:
        """The reads of the count of each state and of the oldest queued task's stamp, in
        a pipeline's first :data:`STATE_READS` replies (see :func:`parse_state_reads`)."""
        k = self.keys
        return [
            *(("ZCARD", key) for key in k.all_states()),
            ("HGET", k.queued_seconds, "all"),
            ("ZRANGE", k.queued_since, 0, 0, "WITHSCORES"),
            ("ZRANGE", k.state(TaskState.QUEUED), 0, 0, "WITHSCORES"),
        ]

    def tenants(
        self, sort: str, descending: bool, search: str, offset: int, size: int
    ) -> ScriptCall[TenantSlice]:
        """One page of the tenants sorted by ``sort`` ("queued", "started" or "user") and
        filtered by ``search`` (a substring of the id, ASCII case ignored); see tenants.lua."""
        keys = [self.keys.all_users, self.keys.stats]
        args: list[Arg] = [sort, "desc" if descending else "asc", search, offset, size]

        def parse(reply: Any) -> TenantSlice:
            matching, *users = reply
            return TenantSlice(int(matching), [str(u) for u in users])

        return ScriptCall("tenants", keys, args, parse)

    def ended_since(self, since_ms: int) -> PipelineCall[dict[str, int]]:
        """How many tasks finished and failed since ``since_ms`` (server clock)."""
        ended = (TaskState.FINISHED, TaskState.FAILED)
        commands: list[tuple[Arg, ...]] = [
            ("ZCOUNT", self.keys.state(s), since_ms, "+inf") for s in ended
        ]
        return PipelineCall(
            commands, lambda r: {s.value: int(n) for s, n in zip(ended, r, strict=True)}
        )

    def queue_heads(self, users: Sequence[str]) -> PipelineCall[list[list[str]]]:
        """The next task of each user's CRITICAL list and sorted set (empty when none)."""
        commands: list[tuple[Arg, ...]] = []
        for user in users:
            critical, normal = self.keys.user_queues(user)
            commands += [("LRANGE", critical, 0, 0), ("ZRANGE", normal, 0, 0)]

        def parse(replies: list[Any]) -> list[list[str]]:
            return [replies[i] + replies[i + 1] for i in range(0, len(replies), 2)]

        return PipelineCall(commands, parse)

    def enqueued_times(self, task_ids: Sequence[str]) -> PipelineCall[list[float | None]]:
        """When each task was queued (server clock, seconds)."""
        commands: list[tuple[Arg, ...]] = [
            ("HMGET", self.keys.task(i), "enqueued_at", ORDER_FIELD) for i in task_ids
        ]
        return PipelineCall(commands, lambda r: [enqueued_time(*fields) for fields in r])


def new_claim_id() -> str:
    """A claim id no other pop or settle call uses."""
    return uuid.uuid4().hex


def in_dependency_order(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with every upstream inside the batch before its dependents.

    Refuses a task id given twice, a task depending on itself and a cycle.
    """
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.task_id in index:
            raise DuplicateTaskError(task.task_id, "in this batch twice")
        if task.task_id in task.depends_on:
            raise DagError(f"task {task.task_id!r} depends on itself")
        index[task.task_id] = i
    edges = [(up, t.task_id) for t in tasks for up in t.depends_on if up in index]
    if not edges:
        return list(tasks)
    order = topological_order(index, edges, index.__getitem__)
    return [tasks[index[task_id]] for task_id in order]


def _seconds(value: float) -> str:
    return f"{value:.6f}"


def _status(reply: Any, task_id: str, operation: str) -> list[str]:
    """Raise the exception a script's refusal stands for; return the reply otherwise."""
    code = reply[0]
    if code == "not_found":
        raise TaskNotFoundError(task_id)
    if code == "lease_lost":
        raise LeaseLostError(task_id)
    if code == "invalid":
        raise InvalidStateError(task_id, reply[1], operation)
    return list(reply)


def check_size(task_id: str, fields: Mapping[str, str], limit: int) -> None:
    """The size rule of a pushed task: the UTF-8 bytes of every field it sets, as encoded
    for its Redis hash (ids, payload, args, kwargs, func, name, XCom keys and every other
    field a user may set), at most ``limit`` (``queue.max_payload_bytes``). A lone
    surrogate in any of them is refused too (UTF-8 cannot encode it)."""
    joined = "".join(fields.values())
    if joined.isascii():  # the common case: one byte per character, no surrogate
        size = len(joined)
    else:
        size = sum(utf8_size(v, f"task {task_id!r}: {name}") for name, v in fields.items())
    if size > limit:
        largest = max(fields, key=lambda name: len(fields[name]))
        raise PayloadError(
            f"task {task_id!r}: its fields are {size} bytes encoded (the largest is "
            f"{largest}); the limit is {limit} (queue.max_payload_bytes)"
        )


def _parse_due(reply: Any) -> list[tuple[str, float]]:
    return [(str(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]


def _parse_fire(reply: Any) -> BatchPushResult | None:
    return None if reply[0] == "no_template" else _parse_push(reply, [])


def _parse_push(reply: Any, ids: list[str]) -> BatchPushResult:
    states = [TaskState(s).value for s in _push_reply(reply)]
    return {"success": True, "count": len(ids), "task_ids": ids, "states": states}


def _parse_staged(reply: Any, batch: str) -> list[str]:
    if reply[0] == "gone":
        raise BatchGoneError(batch)
    return [TaskState(s).value for s in _push_reply(reply)]


def _parse_commit(reply: Any, batch: str, ids: list[str]) -> dict[str, Any]:
    if reply[0] == "gone":
        raise BatchGoneError(batch)
    if reply[0] == "run_exists":
        raise RunExistsError(reply[1])
    return {"held": reply[1] == 1, "left": int(reply[2]), "task_ids": ids}


def _push_reply(reply: Any) -> list[str]:
    """The states of a push's (or a step's) reply; its refusal raised."""
    if reply[0] == "duplicate":
        raise DuplicateTaskError(reply[1], reply[2])
    if reply[0] == "unknown_dependency":
        raise UnknownDependencyError(reply[1], [reply[2]])
    if reply[0] == "run_exists":
        raise RunExistsError(reply[1])
    if reply[0] == "unknown_pool":
        raise UnknownPoolError(reply[1], reply[2])
    return [str(s) for s in reply[1]]


def one_pushed(pushed: BatchPushResult) -> PushResult:
    """The result of a push of one task, from the batch result of that push."""
    return {"success": True, "task_id": pushed["task_ids"][0], "state": pushed["states"][0]}


def _parse_end(reply: Any, task_id: str) -> TaskState:
    return TaskState(_status(reply, task_id, "end")[1])


def _parse_fail(reply: Any, task_id: str) -> FailOutcome:
    status = _status(reply, task_id, "fail")
    if status[0] == "retry":
        return FailOutcome(TaskState.SCHEDULED, retry_at=int(status[1]) / 1000)
    return FailOutcome(TaskState(status[1]))


def _parse_settle(
    reply: Any, ended: list[tuple[str, bool]]
) -> tuple[list[Settled], list[TaskRecord]]:
    results: list[Settled] = []
    for (task_id, ok), one in zip(ended, reply[0], strict=True):
        if one[0] == "lease_lost":
            results.append(LeaseLostError(task_id))
        elif ok:
            results.append(FinishOutcome(TaskState(one[1])))
        else:
            results.append(_parse_fail(one, task_id))
    return results, _parse_tasks(reply[1])


def _parse_clear(reply: Any, run_id: str) -> list[str]:
    code = reply[0]
    if code == "not_found":
        raise ClearError(run_id, f"the record of task {reply[1]!r} is gone")
    if code == "held":
        raise ClearError(run_id, "it is queued, waiting for a slot of max_active_runs")
    if code == "active":
        raise ClearError(run_id, f"task {reply[1]!r} is {reply[2]} (wait for it to end)")
    return list(reply[1])


def _parse_cancel(reply: Any, task_id: str) -> str:
    return _status(reply, task_id, "cancel")[1]


def _parse_tasks(reply: Any) -> list[TaskRecord]:
    return [TaskRecord.from_claim(flat) for flat in reply]


def _parse_task(replies: list[Any], task_id: str) -> TaskRecord:
    record = replies[0]
    if not record:
        raise TaskNotFoundError(task_id)
    return TaskRecord.from_hash(record, task_id)


def _records(task_ids: Sequence[str], hashes: Sequence[Any]) -> list[TaskRecord | None]:
    """The record of each id from its hash's fields (None where it has none)."""
    return [
        TaskRecord.from_hash(raw, i) if raw else None
        for i, raw in zip(task_ids, hashes, strict=True)
    ]


_PRIORITY_FIELDS = {f"p{p}" for p in range(1, 7)}
_DEFAULT_TEXT = {name: str(value) for name, value in RECORD_DEFAULTS.items()}  # as pushed


def queued_by_queue(queued: int, counts: Mapping[str, Any]) -> dict[str, int]:
    """Queued tasks per queue, from the count of every queued task and the counts of
    the queues other than the default one (``Keys.queue_counts``); empty queues left out."""
    by_queue: dict[str, int] = {}
    for lane, n in sorted(counts.items()):  # a lane: queue ~ gate ...
        if int(n) > 0:
            queue = lane.split(LANE_SEPARATOR)[0]
            by_queue[queue] = by_queue.get(queue, 0) + int(n)
    rest = queued - sum(by_queue.values())
    if rest > 0:
        by_queue[DEFAULT_QUEUE] = by_queue.get(DEFAULT_QUEUE, 0) + rest
    return dict(sorted(by_queue.items()))


STATE_READS = len(TaskState) + 3
"""How many replies :meth:`QueueCalls.state_reads` asks for."""


def parse_state_reads(replies: Sequence[Any], now: float) -> tuple[dict[str, int], float | None]:
    """The count of each state and the oldest queued task's age in seconds (None when
    nothing is queued) from the replies of :meth:`QueueCalls.state_reads`; ``now``: the
    server's clock. Tasks queued before the queued index count from their registry."""
    states = [s.value for s in TaskState]
    counts = dict(zip(states, (int(c) for c in replies[: len(states)]), strict=True))
    indexed, since, before = replies[len(states) : STATE_READS]
    counts[TaskState.QUEUED.value] += int(indexed or 0)
    oldest = [float(found[0][1]) for found in (since, before) if found]
    if not counts[TaskState.QUEUED.value] or not oldest:
        return counts, None
    return counts, max(0.0, now - min(oldest) / 1000)


def _parse_stats(replies: list[Any]) -> dict[str, Any]:
    n = STATE_READS
    seconds, micros = replies[n + 2]
    now = int(seconds) + int(micros) / 1_000_000
    counts, oldest = parse_state_reads(replies, now)
    per_user: dict[str, dict[str, Any]] = {}
    totals: dict[str, int] = {}
    for field, value in replies[n].items():
        scope, _, name = field.partition(" ")
        if scope == "total":
            totals[name] = int(value)
        elif scope in counts:
            per_user.setdefault(name, {})[scope] = int(value)
        elif scope in _PRIORITY_FIELDS and int(value):
            by_priority = per_user.setdefault(name, {}).setdefault("queued_by_priority", {})
            by_priority[scope[1:]] = int(value)
    return {
        "tasks_active": sum(counts[s.value] for s in TaskState if s.is_active),
        "states": counts,
        "totals": totals,
        "users": per_user,
        "active_users": int(replies[n + 1]),
        "queues": queued_by_queue(counts[TaskState.QUEUED.value], replies[n + 3]),
        "server_time": now,
        "oldest_queued_age": oldest,
        **{f"tasks_{name}": c for name, c in counts.items()},
        "pending_steps": int(replies[n + 4]),
        "batches_staging": int(replies[n + 5]),
    }
