"""Runs: a pipeline (or any graph of tasks) enqueued as one unit, and its handle.

``queue.enqueue(pipeline)`` compiles the graph into task records ``{run_id}:{name}``
and writes them all in one atomic push, so the same pipeline can run many times at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from fairque.core.errors import QueueError
from fairque.core.models import MAX_ID_LENGTH, Task, TaskRecord, TaskState, to_json
from fairque.queue.pushable import MakesTask, as_task

if TYPE_CHECKING:
    from fairque.queue.async_queue import AsyncTaskQueue
    from fairque.queue.sync_queue import TaskQueue


class Compilable(Protocol):
    """Anything that turns into a run's task records (a Pipeline, a DAG)."""

    def compile(self, run_id: str, *, user_id: str | None = None) -> list[Task]:
        """Task records of one run, upstreams first."""
        ...


def new_run_id() -> str:
    """A fresh run id."""
    return f"run_{uuid.uuid4().hex[:16]}"


def tick_run_id(owner: str, tick: datetime) -> str:
    """The run id of one tick of a schedule or a DAG (``owner``, its id):
    ``{owner}__{tick, UTC, to the second}``. The same tick always gives the same id, so
    its run can be created only once."""
    return f"{owner}__{tick.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def manual_run_id(owner: str, moment: float) -> str:
    """The id of a run of ``owner`` (a DAG id) triggered by hand at ``moment`` (epoch
    seconds): ``{owner}__manual__{UTC time, to the microsecond}``."""
    utc = datetime.fromtimestamp(moment, tz=timezone.utc)
    return f"{owner}__manual__{utc.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


def task_id_problem(owner: str, name: str) -> str | None:
    """Why the tasks called ``name`` in the runs of ``owner`` (by tick or by hand) would
    get an id (``{run_id}:{name}``) over the limit of MAX_ID_LENGTH characters, or None.
    The runs' ids all have the same length, whatever their time."""
    longest = max(len(tick_run_id(owner, _SOME_TIME)), len(manual_run_id(owner, 0.0)))
    length = longest + 1 + len(name)
    if length <= MAX_ID_LENGTH:
        return None
    return (
        f"task {name!r} of {owner!r} would get ids of {length} characters "
        f"('{{run id}}:{name}'); the limit is {MAX_ID_LENGTH}: shorten the id or the name"
    )


_SOME_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)


def compile_run(
    item: Compilable | Task | MakesTask, run_id: str, user_id: str | None
) -> list[Task]:
    """The records of one run of ``item``; a lone Task (or what :func:`as_task` makes a
    Task of) becomes a run of one task, unless it takes other tasks' return values
    (``__fairque_run__()`` gives the graph with them: TaskFlow)."""
    make_run = getattr(item, "__fairque_run__", None)
    graph = make_run() if callable(make_run) else None
    if graph is not None:
        item = graph
    if isinstance(item, (Task, MakesTask)):
        item = as_task(item)
        name = item.label
        changes: dict[str, Any] = {"task_id": f"{run_id}:{name}", "run_id": run_id, "name": name}
        if user_id is not None:
            changes["user_id"] = user_id
        return [replace(item, **changes)]
    return item.compile(run_id, user_id=user_id)


class RunState(str, Enum):
    """The state of a run, derived from its tasks' states (see :func:`run_state`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        """True for success, failed and canceled."""
        return self in (RunState.SUCCESS, RunState.FAILED, RunState.CANCELED)


_WAITING = frozenset({TaskState.QUEUED, TaskState.DEFERRED, TaskState.SCHEDULED})


def run_state(
    tasks: Sequence[TaskRecord | None], canceled: bool = False, timed_out: bool = False
) -> RunState:
    """A run's state from its tasks (None: a record that expired).

    A run that ran past its ``dagrun_timeout_seconds`` is failed at once (its tasks
    asked to stop may still be ending). Else queued: no task has started yet. running:
    some task started, retries or waits while others ended. Once every task has ended:
    canceled if the run was canceled, failed if any task FAILED, else success. Tasks
    CANCELED by their trigger rule, a branch or a soft_fail sensor are skipped (not a
    failure: a run whose tasks all finished or were skipped succeeded), and a run whose
    failure was handled still reports failed: an ``all_done`` clean-up task at the end
    runs and is recorded, but does not turn a failed run into a success.
    """
    if timed_out:
        return RunState.FAILED
    known = [t for t in tasks if t is not None and t.state is not None]
    if any(t.state.is_active for t in known):  # type: ignore[union-attr]
        fresh = all(t.state in _WAITING and t.attempts == 0 for t in known)
        return RunState.QUEUED if fresh else RunState.RUNNING
    if canceled:
        return RunState.CANCELED
    if any(t.state is TaskState.FAILED for t in known):
        return RunState.FAILED
    return RunState.SUCCESS


@dataclass
class RunInfo:
    """A run's record and its tasks, as ``fairque run show`` presents it."""

    run_id: str
    task_ids: dict[str, str]
    dag_id: str | None = None
    logical_date: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    created_at: float | None = None
    canceled: bool = False
    tasks: dict[str, TaskRecord | None] = field(default_factory=dict)
    on_end: RunEnd = field(default_factory=lambda: RunEnd())
    timed_out: bool = False
    dag_snapshot: dict[str, Any] | None = None
    """A DAG's run: the DAG's structure when the run was created (tasks, edges,
    callables, params, ``version``: a hash of its file), as it ran."""

    @property
    def state(self) -> RunState:
        """Derived from the tasks (see :func:`run_state`)."""
        return run_state(list(self.tasks.values()), self.canceled, self.timed_out)

    def summary(self) -> dict[str, Any]:
        """What a run callback receives (JSON-compatible): id, DAG, state, logical date,
        conf, whether it timed out, and its failed tasks with their errors."""
        return {
            "run_id": self.run_id,
            "dag_id": self.dag_id,
            "state": self.state.value,
            "logical_date": self.logical_date,
            "conf": self.conf,
            "timed_out": self.timed_out,
            "failed_tasks": {
                name: t.error
                for name, t in self.tasks.items()
                if t is not None and t.state is TaskState.FAILED
            },
        }

    @property
    def started_at(self) -> float | None:
        """When its first task started."""
        times = [t.started_at for t in self.tasks.values() if t and t.started_at]
        return min(times) if times else None

    @property
    def ended_at(self) -> float | None:
        """When its last task ended, once the run has finished."""
        if not self.state.is_finished:
            return None
        times = [t.finished_at for t in self.tasks.values() if t and t.finished_at]
        return max(times) if times else None

    def to_dict(self, with_tasks: bool = True) -> dict[str, Any]:
        """JSON-compatible form (what ``--json`` prints)."""
        data: dict[str, Any] = {
            "run_id": self.run_id,
            "dag_id": self.dag_id,
            "logical_date": self.logical_date,
            "state": self.state.value,
            "tenant": self.tenant,
            "conf": self.conf,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "timed_out": self.timed_out,
        }
        if with_tasks:
            data["dag_snapshot"] = self.dag_snapshot
            data["tasks"] = {
                name: None if t is None else _task_view(t) for name, t in self.tasks.items()
            }
        return data


def _task_view(task: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "state": None if task.state is None else task.state.value,
        "outcome": task.display_state,
        "skipped": task.skipped,
        "upstream_failed": task.upstream_failed,
        "attempt_count": task.attempts,
        "pokes": task.pokes,
        "attempts": task.attempt_history,
        "duration": task.duration,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "result": task.result,
        "error": task.error,
        "worker_id": task.worker_id,
        "map_index": task.map_index,
        "map_count": task.map_count,
    }


@dataclass(frozen=True)
class RunEnd:
    """What a DAG asks of its runs' ends, copied onto each run's hash at trigger time:
    a timeout (seconds from the run's creation) and the ``module:function`` callbacks
    called once when the run ends (failed or canceled; success). A run with any of them
    is watched (``fq:runs:watched``, see watch.lua)."""

    dagrun_timeout_seconds: float | None = None
    on_failure_callback: str | None = None
    on_success_callback: str | None = None

    @property
    def watched(self) -> bool:
        """True when the run needs watching."""
        return any(value is not None for value in self.fields().values())

    def fields(self) -> dict[str, str]:
        """The run hash's fields for what is set."""
        values = (self.dagrun_timeout_seconds, self.on_failure_callback, self.on_success_callback)
        return {
            name: repr(float(value)) if isinstance(value, (int, float)) else value
            for name, value in zip(RUN_END_FIELDS, values, strict=True)
            if value is not None
        }

    @classmethod
    def of(cls, raw: Mapping[str, str]) -> RunEnd:
        """From a run's hash."""
        timeout = raw.get("dagrun_timeout_seconds")
        return cls(
            float(timeout) if timeout is not None else None,
            raw.get("on_failure_callback"),
            raw.get("on_success_callback"),
        )


RUN_END_FIELDS = ("dagrun_timeout_seconds", "on_failure_callback", "on_success_callback")


def run_fields(
    task_ids: Mapping[str, str],
    *,
    dag_id: str | None = None,
    logical_date: str | None = None,
    conf: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    tick: tuple[str, float] | None = None,
    on_end: RunEnd | None = None,
    dag_snapshot: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The string fields of a run's hash.

    ``tick`` (the schedule cursor's name, the tick's epoch seconds) marks a run the
    scheduler fired: push.lua refuses it once that cursor passed the tick, and trim.lua
    keeps it until then, so a tick fires once even after retention removed its run.
    """
    fields = {
        "task_ids": to_json(dict(task_ids), "task_ids"),
        "conf": to_json(dict(conf or {}), "conf"),
    }
    for name, value in (("dag_id", dag_id), ("logical_date", logical_date), ("tenant", tenant)):
        if value is not None:
            fields[name] = value
    if tick is not None:
        fields["schedule"], fields["tick"] = tick[0], repr(float(tick[1]))
    if on_end is not None:
        fields.update(on_end.fields())
    if dag_snapshot is not None:
        fields["dag_snapshot"] = to_json(dict(dag_snapshot), "dag_snapshot")
    return fields


def parse_run(run_id: str, raw: Mapping[str, str]) -> RunInfo:
    """A RunInfo (without tasks) from the run's hash."""
    return RunInfo(
        run_id=run_id,
        task_ids=json.loads(raw.get("task_ids", "{}")),
        dag_id=raw.get("dag_id"),
        logical_date=raw.get("logical_date"),
        conf=json.loads(raw.get("conf", "{}")),
        tenant=raw.get("tenant"),
        created_at=float(raw["created_at"]) if "created_at" in raw else None,
        canceled=raw.get("canceled") == "1",
        on_end=RunEnd.of(raw),
        timed_out=raw.get("timed_out") == "1",
        dag_snapshot=json.loads(raw["dag_snapshot"]) if "dag_snapshot" in raw else None,
    )


def ended_result(task: TaskRecord) -> Any:
    """The result of a FINISHED task; QueueError saying how it ended otherwise."""
    if task.state is TaskState.FINISHED:
        return task.result
    detail = f": {task.error.get('message')}" if task.error else ""
    raise QueueError(f"task {task.label!r} has no result: it is {task.state}{detail}")


def log_attempt(task: TaskRecord, attempt: int | None) -> int | None:
    """Which attempt's log to read: ``attempt``, else the latest (None: the task has not
    started yet). QueueError for an attempt the task never made."""
    if attempt is None:
        return task.attempts or None
    if isinstance(attempt, bool) or not 1 <= attempt <= task.attempts:
        raise QueueError(f"task {task.label!r} has no attempt {attempt}: it made {task.attempts}")
    return attempt


class _RunNames:
    """What both run handles share: a run's tasks by name, without I/O."""

    run_id: str
    task_ids: Mapping[str, str]

    def _by_name(self, by_id: dict[str, TaskState | None]) -> dict[str, TaskState | None]:
        return {name: by_id[i] for name, i in self.task_ids.items()}

    def _id(self, name: str) -> str:
        """The id of the task called ``name``; ``NAME[i]``, an instance of the mapped task
        NAME (created at run time), is ``{id of NAME}[i]``."""
        if name in self.task_ids:
            return self.task_ids[name]
        base, bracket, index = name[:-1].rpartition("[")
        if name.endswith("]") and bracket and index.isdigit() and base in self.task_ids:
            return f"{self.task_ids[base]}[{int(index)}]"
        raise QueueError(f"run {self.run_id} has no task {name!r}")


@dataclass(frozen=True)
class RunHandle(_RunNames):
    """A run in Redis: its id and its tasks by name."""

    queue: TaskQueue
    run_id: str
    task_ids: Mapping[str, str]

    def states(self) -> dict[str, TaskState | None]:
        """Each task's current state, by name."""
        return self._by_name(
            self.queue.run_pipeline(self.queue.calls.states(list(self.task_ids.values())))
        )

    def wait(self, timeout: float = 30.0) -> dict[str, TaskState | None]:
        """Wait until every task ended; returns each one's state by name."""
        return self._by_name(self.queue.wait_for(list(self.task_ids.values()), timeout=timeout))

    def task(self, name: str) -> TaskRecord:
        """The record of the task called ``name``."""
        return self.queue.get_task(self._id(name))

    def result(self, name: str) -> Any:
        """The result of the task called ``name`` (QueueError if it did not finish)."""
        return ended_result(self.task(name))

    def lineage(self) -> list[dict[str, Any]]:
        """Every XCom push and pull of the run, oldest first."""
        return self.queue.run_pipeline(self.queue.calls.lineage(self.run_id))

    def logs(self, name: str, attempt: int | None = None) -> str:
        """What the task called ``name`` wrote to stdout, stderr and ``logging`` during
        ``attempt`` (1, 2, ...; the latest when None): "" before it started."""
        task = self.task(name)
        number = log_attempt(task, attempt)
        if number is None:
            return ""
        return self.queue.run_pipeline(self.queue.calls.task_log(task.task_id, number))


@dataclass(frozen=True)
class AsyncRunHandle(_RunNames):
    """The asyncio form of :class:`RunHandle`: the same methods, awaited."""

    queue: AsyncTaskQueue
    run_id: str
    task_ids: Mapping[str, str]

    async def states(self) -> dict[str, TaskState | None]:
        """Each task's current state, by name."""
        call = self.queue.calls.states(list(self.task_ids.values()))
        return self._by_name(await self.queue.run_pipeline(call))

    async def wait(self, timeout: float = 30.0) -> dict[str, TaskState | None]:
        """Wait until every task ended; returns each one's state by name."""
        return self._by_name(
            await self.queue.wait_for(list(self.task_ids.values()), timeout=timeout)
        )

    async def task(self, name: str) -> TaskRecord:
        """The record of the task called ``name``."""
        return await self.queue.get_task(self._id(name))

    async def result(self, name: str) -> Any:
        """The result of the task called ``name`` (QueueError if it did not finish)."""
        return ended_result(await self.task(name))

    async def lineage(self) -> list[dict[str, Any]]:
        """Every XCom push and pull of the run, oldest first."""
        return await self.queue.run_pipeline(self.queue.calls.lineage(self.run_id))

    async def logs(self, name: str, attempt: int | None = None) -> str:
        """What the task called ``name`` wrote during ``attempt`` (see RunHandle.logs)."""
        task = await self.task(name)
        number = log_attempt(task, attempt)
        if number is None:
            return ""
        return await self.queue.run_pipeline(self.queue.calls.task_log(task.task_id, number))
