"""DAG runs on the queue: triggering one, pausing a DAG, and the graph view of a DAG
or of one of its runs (for rendering)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fairque.core.errors import DagError
from fairque.core.models import TaskRecord, validate_identifier
from fairque.dag.model import DAG
from fairque.dag.render import GraphView, NodeView, XComEdge, mapped_summary
from fairque.queue import control, runs
from fairque.queue.calls import PipelineCall
from fairque.queue.runs import RunEnd, RunHandle, RunInfo
from fairque.queue.sync_queue import TaskQueue


def manual_run_id(dag_id: str, now: float | None = None) -> str:
    """The id of a run triggered by hand: ``{dag_id}__manual__{UTC time}`` (``now``:
    epoch seconds, this machine's clock when not given; :func:`trigger` passes the
    server's)."""
    return runs.manual_run_id(dag_id, now if now is not None else time.time())


def scheduled_run_id(dag_id: str, logical_date: datetime) -> str:
    """The id of a scheduled run: ``{dag_id}__{logical date, ISO, UTC}``; the same tick
    always gives the same id, so a run can be created only once."""
    return runs.tick_run_id(dag_id, logical_date)


def trigger(
    queue: TaskQueue,
    dag: DAG,
    *,
    conf: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    run_id: str | None = None,
    logical_date: datetime | None = None,
    tick: tuple[str, float] | None = None,
    data_interval: tuple[datetime, datetime] | None = None,
) -> RunHandle:
    """Check ``conf`` against the DAG's params, then write one run atomically.

    ``tenant`` overrides the DAG's (whose fair share the run uses); ``tick`` marks a run
    the scheduler fires (see :func:`~fairque.queue.runs.run_fields`). The logical date
    and the run id default to the server's time (``TIME``), not this machine's;
    ``data_interval`` (start, end) defaults to the logical date for both. Tasks read
    them as ``current_task().logical_date``, ``.data_interval_start`` and
    ``.data_interval_end``. Beyond the DAG's ``max_active_runs`` active runs, the run is
    created QUEUED and its tasks start when an earlier run ends. Raises DagConfError
    (nothing written) for a bad conf, RunExistsError for a used run id.
    """
    user = validate_identifier(tenant, "user_id") if tenant is not None else dag.tenant
    merged = dag.check_conf(conf)
    if logical_date is None or run_id is None:
        now = queue.run_pipeline(control.server_time())
        logical_date = logical_date or datetime.fromtimestamp(now, tz=timezone.utc)
        run_id = run_id or manual_run_id(dag.dag_id, now)
    tasks = dag.compile(
        run_id,
        user_id=user,
        conf=merged,
        logical_date=logical_date,
        data_interval=data_interval,
    )
    return queue.enqueue_tasks(
        tasks,
        run_id,
        dag_id=dag.dag_id,
        logical_date=logical_date.astimezone(timezone.utc).isoformat(),
        conf=merged,
        tenant=user,
        tick=tick,
        on_end=RunEnd(dag.dagrun_timeout_seconds, dag.on_failure_callback, dag.on_success_callback),
        dag_snapshot=dag_snapshot(dag),
        max_active_runs=dag.max_active_runs,
    )


def dag_snapshot(dag: DAG) -> dict[str, Any]:
    """The DAG's structure as a run keeps it: tasks in order with their callables and
    trigger rules, edges, task groups, branch and sensor tasks (``kinds``), params, and
    ``version``, the first 16 hex digits of the SHA-256
    of its file (of this structure when the file cannot be read)."""
    snapshot: dict[str, Any] = {
        "dag_id": dag.dag_id,
        "source": dag.source,
        "tasks": dag.task_names,
        "callables": {name: task.func for name, task in dag.pipeline.nodes.items()},
        "trigger_rules": {
            name: str(getattr(task.trigger_rule, "value", task.trigger_rule))
            for name, task in dag.pipeline.nodes.items()
        },
        "edges": [[a, b] for a, b in sorted(dag.pipeline.edges)],
        "groups": sorted(dag.pipeline.groups),
        "kinds": task_kinds(dag),
        "params": {name: spec.to_dict() for name, spec in dag.params.items()},
    }
    try:
        content = Path(dag.source).read_bytes() if dag.source else None
    except OSError:
        content = None
    if content is None:
        content = json.dumps(snapshot, sort_keys=True, default=str).encode()
    snapshot["version"] = hashlib.sha256(content).hexdigest()[:16]
    return snapshot


def task_kinds(dag: DAG) -> dict[str, str]:
    """``branch`` or ``sensor`` for the tasks that are one (renders name them)."""
    kinds = {}
    for name, task in dag.pipeline.nodes.items():
        if task.branch or task.sensor is not None:
            kinds[name] = "branch" if task.branch else "sensor"
    return kinds


def _mapped(dag: DAG, name: str, task: TaskRecord | None, run: RunInfo | None) -> str | None:
    """The summary drawn on a mapped task's node (its instances are not drawn apart)."""
    template = dag.pipeline.nodes.get(name)
    count = task.map_count if task is not None else None
    if count is None and (template is None or not template.expand):
        return None
    states = (
        []
        if run is None
        else [t.display_state if t else None for n, t in run.tasks.items() if _of(n, name)]
    )
    return mapped_summary(count, states)


def _of(instance: str, name: str) -> bool:
    return instance.startswith(f"{name}[") and instance.endswith("]")


def set_paused(queue: TaskQueue, dag_id: str, paused: bool) -> None:
    """Pause (the schedule does not fire) or unpause a DAG."""
    queue.run_pipeline(control.set_dag_paused(queue.keys, dag_id, paused))


def paused_dags(queue: TaskQueue) -> set[str]:
    """The ids of the paused DAGs."""
    return queue.run_pipeline(control.paused_dags(queue.keys))


def latest_runs(queue: TaskQueue, dag_ids: Sequence[str], limit: int) -> dict[str, list[RunInfo]]:
    """The newest ``limit`` runs of each DAG, newest first, with their tasks, in three
    round trips whatever the number of DAGs (``fairque dag list`` of a thousand DAGs)."""
    per_dag = [queue.calls.run_ids(dag_id, limit) for dag_id in dag_ids]
    replies = queue.run_pipeline(
        PipelineCall([c for call in per_dag for c in call.commands], lambda r: r)
    )
    ids = {
        dag_id: call.parse([reply])
        for dag_id, call, reply in zip(dag_ids, per_dag, replies, strict=True)
    }
    wanted = [run_id for found in ids.values() for run_id in found]
    read: list[RunInfo | None] = queue.run_pipeline(queue.calls.run_records(wanted))
    records = {run_id: info for run_id, info in zip(wanted, read, strict=True) if info}
    infos = list(records.values())
    task_ids = [task_id for info in infos for task_id in info.task_ids.values()]
    tasks: list[TaskRecord | None] = []
    if task_ids:
        tasks = queue.run_pipeline(queue.calls.task_records(task_ids))
    left = iter(tasks)
    for info in infos:
        info.tasks = {name: next(left) for name in info.task_ids}
    return {dag_id: [records[i] for i in found if i in records] for dag_id, found in ids.items()}


def graph_view(
    dag: DAG, run: RunInfo | None = None, lineage: list[dict[str, Any]] | None = None
) -> GraphView:
    """The DAG's graph; with a run, coloured by task state and with its real lineage,
    drawn from the DAG as the run kept it (its snapshot) when it has one, so a changed
    file does not change how an old run is drawn. DagError for a run of another DAG."""
    names = dag.task_names
    labels = {name: task.func or "" for name, task in dag.pipeline.nodes.items()}
    edges = sorted(dag.pipeline.edges)
    groups = sorted(dag.pipeline.groups)
    kinds = task_kinds(dag)
    if run is not None and run.dag_id != dag.dag_id:
        owner = f"of DAG {run.dag_id!r}" if run.dag_id else "of a pipeline, not of a DAG"
        raise DagError(f"run {run.run_id} is {owner}; render it with its own DAG")
    snapshot = run.dag_snapshot if run is not None else None
    if snapshot:
        names = list(snapshot["tasks"])
        labels = {name: func or "" for name, func in snapshot["callables"].items()}
        edges = sorted((a, b) for a, b in snapshot["edges"])
        groups = list(snapshot.get("groups", []))
        kinds = dict(snapshot.get("kinds", {}))
    labels = {
        name: f"{kinds[name]} · {label}" if name in kinds else label
        for name, label in labels.items()
    }
    nodes = []
    for name in names:
        task = run.tasks.get(name) if run is not None else None
        error = task.error.get("message") if task is not None and task.error else None
        nodes.append(
            NodeView(
                name=name,
                label=labels.get(name, ""),
                state=task.state if task is not None else None,
                attempts=task.attempts if task is not None else 0,
                duration=task.duration if task is not None else None,
                error=error,
                outcome=task.display_state if task is not None else None,
                mapped=_mapped(dag, name, task, run),
                pokes=task.pokes if task is not None else 0,
            )
        )
    if run is None:
        title = dag.dag_id
        xcom = [XComEdge(p, c, key) for p, key, c in dag.planned_lineage()]
    else:
        title = f"{dag.dag_id} — run {run.run_id} ({run.state})"
        if snapshot:
            title += f", DAG version {snapshot.get('version')}"
        xcom = [
            XComEdge(e["producer"] or "?", _drawn(e["consumer"], names), e["key"], e.get("bytes"))
            for e in lineage or []
            if e["kind"] == "pull"
        ]
        xcom = list({(x.producer, x.consumer, x.key): x for x in xcom}.values())
    return GraphView(title, nodes, edges, xcom, groups)


def _drawn(name: str, names: list[str]) -> str:
    """The node that draws task ``name``: a mapped task's instance ``NAME[i]`` is drawn
    as ``NAME``'s node."""
    base = name.rpartition("[")[0]
    return base if name.endswith("]") and base in names and _of(name, base) else name
