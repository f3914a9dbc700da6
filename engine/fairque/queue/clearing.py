"""Which tasks of a run ``clear_run`` puts back to run again (pure, no Redis).

By default: every FAILED task and every task CANCELED because an upstream ended badly
(error type ``UpstreamFailed``), with everything downstream of them. Named tasks may be
cleared instead, also FINISHED ones (a successful run's task re-runs with its
downstream). clear.lua checks the same states again inside its atomic step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    instances = _instances(records)
    edges += [(i, mapped) for mapped, ids in instances.items() for i in ids]
    if tasks is None:
        chosen = {task_id for task_id, record in records.items() if _needs_clearing(record)}
    else:
        unknown = [name for name in tasks if name not in info.task_ids]
        if unknown:
            raise ClearError(info.run_id, f"no task named {', '.join(map(repr, unknown))}")
        chosen = {info.task_ids[name] for name in tasks}
        chosen |= {i for mapped in chosen & instances.keys() for i in instances[mapped]}
    if downstream:
        chosen |= {d for task_id in list(chosen) for d in reachable(edges, task_id)}
    _refuse_remapping(info.run_id, records, instances, chosen, by_id)
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
        tasks=[(i, instances.get(i) or list(records[i].depends_on)) for i in order],  # type: ignore[union-attr]
    )


def _instances(records: Mapping[str, TaskRecord | None]) -> dict[str, list[str]]:
    """The instances of each expanded mapped task (by id, in index order): a mapped task
    waits for its instances (``id[i]``), so clearing one clears the mapped task, and
    clearing the mapped task by name clears every instance."""
    found: dict[str, list[str]] = {}
    for task_id, record in records.items():
        if record is not None and record.map_count:
            found[task_id] = [f"{task_id}[{i}]" for i in range(record.map_count)]
    return {k: [i for i in ids if i in records] for k, ids in found.items()}


def _refuse_remapping(
    run_id: str,
    records: Mapping[str, TaskRecord | None],
    instances: Mapping[str, list[str]],
    chosen: set[str],
    by_id: Mapping[str, str],
) -> None:
    """ClearError when an upstream of an expanded mapped task would run again: its new
    list could have another length than the instances made from the first one."""
    for mapped in instances.keys() & chosen:
        record = records[mapped]
        ups = [u for u in (record.depends_on if record else []) if u in chosen]
        if ups:
            raise ClearError(
                run_id,
                f"{by_id[ups[0]]!r} would run again, but the mapped task {by_id[mapped]!r} was "
                f"already expanded over its list; clear {by_id[mapped]!r} (its instances run "
                "again over the same list) or trigger a new run",
            )
