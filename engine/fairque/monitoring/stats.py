"""The system view: the queue's statistics plus the load of every live worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairque.monitoring.health import live_workers
from fairque.queue.heartbeat import WorkerInfo
from fairque.queue.sync_queue import TaskQueue


def collect(queue: TaskQueue) -> dict[str, Any]:
    """``queue.get_stats()`` plus ``workers``: one entry per live worker (see
    :func:`worker_load`), sorted by id, and ``tenants``: the first tenants' policies and
    live figures (see ``TaskQueue.list_tenants``). JSON-compatible."""
    workers = live_workers(queue)
    view = system_view(queue.get_stats(), workers)
    view["tenants"] = queue.list_tenants(limit=TENANTS_SHOWN)
    return view


TENANTS_SHOWN = 50  # tenants (by user id) in the stats; `fairque tenant list` pages them


def system_view(stats: Mapping[str, Any], workers: list[WorkerInfo]) -> dict[str, Any]:
    """``stats`` (from ``get_stats``) with the ``workers`` entry added (no I/O)."""
    now = float(stats["server_time"])
    return {**stats, "workers": [worker_load(w, now) for w in workers]}


def worker_load(worker: WorkerInfo, now: float) -> dict[str, Any]:
    """One worker's entry: identity, the users it serves, running tasks and load
    (running / max_concurrent_tasks), its counters and how long ago it last beat
    (``last_seen_age``, seconds, measured against ``now``)."""
    running = len(worker.running)
    slots = worker.max_concurrent_tasks
    return {
        "id": worker.id,
        "host": worker.host,
        "pid": worker.pid,
        "assigned_users": worker.assigned_users,
        "steal_targets": worker.steal_targets,
        "queues": worker.queues,
        "running": running,
        "max_concurrent_tasks": slots,
        "load": round(running / slots, 3) if slots > 0 else 0.0,
        "processed": worker.processed,
        "failed": worker.failed,
        "last_seen_age": round(max(0.0, now - worker.last_seen), 3),
    }


def serves(worker: Mapping[str, Any], user_id: str) -> bool:
    """True if the worker entry of :func:`worker_load` may take ``user_id``'s tasks."""
    users = (*worker["assigned_users"], *worker["steal_targets"])
    return "*" in users or user_id in users
