"""Health of a deployment: live workers, users whose queued tasks no live worker can
take, and who holds the scheduler lock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fairque.queue import control, heartbeat
from fairque.queue.heartbeat import WorkerInfo
from fairque.queue.sync_queue import TaskQueue


@dataclass(frozen=True)
class HealthReport:
    """What ``fairque health`` reports; ``ok`` is False when some user is unserved."""

    workers: list[WorkerInfo]
    queued_by_user: dict[str, int]
    unserved_users: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every user with queued tasks has a live worker that serves it."""
        return not self.unserved_users

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return {
            "ok": self.ok,
            "workers": [w.to_dict() for w in self.workers],
            "queued_by_user": self.queued_by_user,
            "unserved_users": self.unserved_users,
        }


def live_workers(queue: TaskQueue) -> list[WorkerInfo]:
    """Workers whose heartbeat record has not expired, sorted by id."""
    ids = queue.run_pipeline(heartbeat.member_ids(queue.keys))
    if not ids:
        return []
    return queue.run_pipeline(heartbeat.records(queue.keys, ids))


def health_report(stats: Mapping[str, Any], workers: list[WorkerInfo]) -> HealthReport:
    """The report for ``queue.get_stats()`` and the live workers (no I/O)."""
    queued = {user: counts.get("queued", 0) for user, counts in stats["users"].items()}
    queued = {user: n for user, n in sorted(queued.items()) if n > 0}
    unserved = [user for user in queued if not any(w.serves(user) for w in workers)]
    return HealthReport(workers, queued, unserved)


def check_health(queue: TaskQueue) -> HealthReport:
    """Live workers, queued tasks per user, and the users no live worker serves."""
    workers = live_workers(queue)
    return health_report(queue.get_stats(), workers)


def scheduler_lock_owner(queue: TaskQueue) -> str | None:
    """The token of the scheduler holding the lock (``{worker id}:{nonce}``), or None."""
    return queue.run_pipeline(control.lock_owner(queue.keys))
