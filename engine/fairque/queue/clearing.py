"""Which tasks of a run ``clear_run`` puts back to run again (pure, no Redis).

By default: every FAILED task and every task CANCELED because an upstream ended badly
(error type ``UpstreamFailed``), with everything downstream of them. Named tasks may be
cleared instead, also FINISHED ones (a successful run's task re-runs with its
downstream). clear.lua checks the same states again inside its atomic step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fairque.core.errors import ClearError
from fairque.core.graph import reachable, topological_order
from fairque.core.models import TaskRecord, TaskState
from fairque.queue.runs import RunInfo

#: States a task may be cleared from (a DEFERRED task is only relinked).
CLEARABLE = frozenset(
    {TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELED, TaskState.DEFERRED}
)


@dataclass(frozen=True)
class ClearPlan:
    """The tasks to clear, upstreams first: their names and (id, upstream ids) pairs."""

    run_id: str
    names: list[str]
    tasks: list[tuple[str, list[str]]]


def _needs_clearing(task: TaskRecord | None) -> bool:
    if task is None:
        return False
    if task.state is TaskState.FAILED:
        return True
    return task.state is TaskState.CANCELED and bool(
        task.error and task.error.get("type") == "UpstreamFailed"
    )


def clear_plan(
    info: RunInfo, tasks: Sequence[str] | None = None, downstream: bool = True
) -> ClearPlan:
    """What :meth:`TaskQueue.clear_run` would clear in ``info``; ClearError when there is
    nothing to clear, a name is unknown, or a chosen task is active or its record gone."""
    by_id = {task_id: name for name, task_id in info.task_ids.items()}
    records = {info.task_ids[name]: record for name, record in info.tasks.items()}
    edges = [
        (up, task_id)
        for task_id, record in records.items()
        if record is not None
        for up in record.depends_on
        if up in by_id
    ]
    if tasks is None:
        chosen = {task_id for task_id, record in records.items() if _needs_clearing(record)}
    else:
        unknown = [name for name in tasks if name not in info.task_ids]
        if unknown:
            raise ClearError(info.run_id, f"no task named {', '.join(map(repr, unknown))}")
        chosen = {info.task_ids[name] for name in tasks}
    if downstream:
        chosen |= {d for task_id in list(chosen) for d in reachable(edges, task_id)}
    if not chosen:
        raise ClearError(info.run_id, "no failed or upstream-canceled task to clear")
    order = [i for i in topological_order(records, edges) if i in chosen]
    for task_id in order:
        record = records[task_id]
        if record is None or record.state is None:
            raise ClearError(info.run_id, f"the record of task {by_id[task_id]!r} is gone")
        if record.state not in CLEARABLE:
            raise ClearError(
                info.run_id, f"task {by_id[task_id]!r} is {record.state} (wait for it to end)"
            )
    return ClearPlan(
        run_id=info.run_id,
        names=[by_id[i] for i in order],
        tasks=[(i, list(records[i].depends_on)) for i in order],  # type: ignore[union-attr]
    )
